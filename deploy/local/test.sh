#!/usr/bin/env bash
# `make test`: Postgres + NATS, build the binaries (the end-to-end tests start them) and the
# tests, then run every test in the workspace. Exits with the test runner's status.
# Extra arguments go to the runner (e.g. `make test ARGS='-E test(config)'` with nextest).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=deploy/local/services.sh
. "$here/services.sh"
cd "$NEXUS_ROOT"

bash "$here/stack.sh" up
# Tests and benchmarks run under the development rules (built-in keys, local mail and billing).
export NEXUS_ENVIRONMENT=${NEXUS_ENVIRONMENT:-development}

# The gateway's shared rate limiter is tested against a real Redis at 127.0.0.1:6379: reuse one
# that answers, else start a private one that keeps nothing on disk.
if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  if command -v redis-server >/dev/null; then
    echo "redis 127.0.0.1:6379: starting (no persistence)"
    redis-server --port 6379 --bind 127.0.0.1 --save '' --appendonly no --daemonize yes >/dev/null
  else
    echo "warning: no Redis at 127.0.0.1:6379 and no redis-server (apt-get install redis-server);" \
      "the shared rate-limit tests will fail" >&2
  fi
else
  echo "redis 127.0.0.1:6379: reused"
fi

# crates/testkit reads NEXUS_TEST_DATABASE_URL / NEXUS_TEST_NATS_URL (defaults: 127.0.0.1:5432
# and :4222). When the stack lives elsewhere, point the tests at it too.
if [[ -z ${NEXUS_TEST_DATABASE_URL:-} && (-n ${NEXUS_DATABASE__ADMIN_URL:-} || -n ${NEXUS_DATABASE__ADMIN_URL_FILE:-}) ]]; then
  admin_url=$(nexus_admin_db_url)
  admin_url=${admin_url%%\?*}
  read -r host port < <(url_host_port "$admin_url" 5432)
  case $host in *:*) host="[$host]" ;; esac
  rest=${admin_url#*://}
  rest=${rest%%/*}
  userinfo=
  if [[ $rest == *@* ]]; then userinfo=${rest%@*}@; fi
  export NEXUS_TEST_DATABASE_URL="postgres://$userinfo$host:$port/postgres"
fi
if [[ -z ${NEXUS_TEST_NATS_URL:-} && -n ${NEXUS_NATS__URL:-} ]]; then
  export NEXUS_TEST_NATS_URL=$NEXUS_NATS__URL
fi

if ! python3 -c 'import grpc, grpc_reflection' 2>/dev/null; then
  echo "note: the gRPC reflection test needs Python's grpcio: python3 -m pip install grpcio==1.85.1 grpcio-reflection==1.85.1 (.ci/run does)" >&2
fi

echo "building (cargo build --workspace --bins --tests)..."
cargo build --workspace --bins --tests

if cargo nextest --version >/dev/null 2>&1; then
  runner=(cargo nextest run --workspace --no-fail-fast)
else
  echo "cargo-nextest is not installed (cargo install cargo-nextest --locked); using cargo test" >&2
  runner=(cargo test --workspace --no-fail-fast)
fi
echo "running: ${runner[*]}${*:+ $*}"
status=0
if (($#)) || [[ ${NEXUS_CONTRACT:-1} == 0 ]]; then
  # A filtered run (ARGS) or NEXUS_CONTRACT=0: the Rust tests only, their summary the last line.
  "${runner[@]}" "$@" || status=$?
  exit "$status"
fi

# Then the API contract test over the whole stack (deploy/local/contract.sh). The runner's
# closing summary is repeated last, so the final line still counts the Rust tests.
mkdir -p "$NEXUS_LOCAL"
runner_log=$NEXUS_LOCAL/test-runner.log
"${runner[@]}" 2>&1 | tee "$runner_log" || status=${PIPESTATUS[0]}
contract=0
NEXUS_CONTRACT_BUILD=0 bash "$here/contract.sh" || contract=$?
if ((contract)); then echo "contract test FAILED (exit $contract)" >&2; fi
# The Kubernetes manifests (deploy/local/manifests.sh): schemas, invariants, planted breakages.
manifests=0
bash "$here/manifests.sh" || manifests=$?
if ((manifests)); then echo "manifest test FAILED (exit $manifests)" >&2; fi
if ((contract == 0 && manifests)); then contract=$manifests; fi
summary=$(grep -E '^ *Summary .* tests? run|^test result:' "$runner_log" | tail -n 1 || true)
if [[ -n $summary ]]; then echo "$summary"; fi
if ((status == 0 && contract)); then status=$contract; fi
exit "$status"
