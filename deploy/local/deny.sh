#!/usr/bin/env bash
# `make deny`: cargo deny over the workspace with the root deny.toml: licenses, bans (one version
# of each crate unless deny.toml says why not), sources (crates.io only), and security advisories.
#
# Advisories: cargo-deny reads the RustSec database from a git clone that it refreshes from the
# database's git host, which the build machines and CI cannot reach. So the clone is never
# fetched here (`cargo deny --offline`): when a copy is on disk (NEXUS_ADVISORY_DB, default
# $CARGO_HOME/advisory-dbs, the layout cargo-deny itself writes) the advisories are checked
# against it and its date is printed; when there is none, the advisories check is skipped and
# the output says so plainly. Nothing here reports advisories as checked when they were not.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/../.."

if ! command -v cargo-deny >/dev/null; then
  echo "deny: cargo-deny is not installed (cargo install cargo-deny --locked)" >&2
  exit 1
fi

export NEXUS_ADVISORY_DB=${NEXUS_ADVISORY_DB:-${CARGO_HOME:-$HOME/.cargo}/advisory-dbs}
db=
for dir in "$NEXUS_ADVISORY_DB"/advisory-db-*/; do
  if [[ -d $dir/crates ]]; then
    db=${dir%/}
    break
  fi
done

cargo deny check "$@" bans licenses sources
if [[ -n $db ]]; then
  when=$(git -C "$db" log -1 --format=%cs 2>/dev/null || echo "an unknown date")
  echo "deny: advisories: checking against the local RustSec copy $db (as of $when; not refreshed: offline)"
  # --offline: never fetch the database (nor crates: the check above has them).
  cargo deny --offline check "$@" advisories
else
  echo "deny: advisories: SKIPPED (offline): no RustSec database copy under $NEXUS_ADVISORY_DB, and its git host is unreachable from this network; bans, licenses and sources were checked"
fi
