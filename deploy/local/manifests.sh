#!/usr/bin/env bash
# The manifest test (`make manifests`; `make test` runs it too): renders every overlay of k8s/
# with kubectl's kustomize, validates each resource against the Kubernetes JSON schemas and
# checks the fleet's invariants on the rendered YAML (deploy/local/manifest_check.py), then
# breaks the prod render in known ways and fails unless every breakage is caught. Then the
# Dockerfiles (hadolint) and deploy/compose.yaml (docker compose config).
# Tools are pinned in ops-requirements.txt and installed into .local/ops/venv.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=deploy/local/services.sh
. "$here/services.sh"
cd "$NEXUS_ROOT"

work=$NEXUS_LOCAL/ops
venv=$work/venv
reqs=$here/ops-requirements.txt
if [[ ! -x $venv/bin/kubectl ]] || ! cmp -s "$reqs" "$venv/requirements.txt"; then
  echo "manifests: installing the pinned tools into $venv"
  rm -rf "$venv"
  mkdir -p "$work"
  python3 -m venv "$venv" || { echo "python3 -m venv failed (Debian: apt-get install python3-venv)" >&2; exit 2; }
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$reqs"
  cp "$reqs" "$venv/requirements.txt"
fi

rendered=$work/rendered
rm -rf "$rendered"
mkdir -p "$rendered"
for overlay in k8s/overlays/*/; do
  name=$(basename "$overlay")
  "$venv/bin/kubectl" kustomize "$overlay" >"$rendered/$name.yaml"
done
"$venv/bin/python" "$here/manifest_check.py" k8s "$rendered" --self-test
echo "manifests: every overlay valid, every invariant held, every planted breakage caught"

# Migrations stay expand/contract: nothing the previous release reads is dropped or renamed.
"$venv/bin/python" "$here/migration_check.py" "$NEXUS_ROOT" --self-test

# The images' Dockerfiles, linted (no container engine is needed for that).
"$venv/bin/hadolint" deploy/Dockerfile deploy/backup/Dockerfile
echo "dockerfiles: hadolint clean"

# compose.yaml: Compose v2 validates it as it is; Debian's docker-compose 1.29 knows every key but
# the top-level `name` (newer than it), so it checks the rest.
if docker compose version >/dev/null 2>&1; then
  docker compose -f deploy/compose.yaml config -q
  echo "compose: docker compose config valid"
elif command -v docker-compose >/dev/null; then
  grep -v '^name: ' deploy/compose.yaml >"$work/compose.yaml"
  sed -i "s|context: \.\.|context: $NEXUS_ROOT|; s|\./observability/|$NEXUS_ROOT/deploy/observability/|" "$work/compose.yaml"
  docker-compose -f "$work/compose.yaml" config -q
  echo "compose: docker-compose config valid"
else
  echo "compose: not validated (neither docker compose nor docker-compose is installed)"
fi
