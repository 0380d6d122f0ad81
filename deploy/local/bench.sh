#!/usr/bin/env bash
# `make bench`: Postgres + NATS, then every benchmark in the workspace (benches that need the
# stack find it at the usual NEXUS_* URLs). Exits with cargo bench's status.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=deploy/local/services.sh
. "$here/services.sh"
cd "$NEXUS_ROOT"

bash "$here/stack.sh" up
# Tests and benchmarks run under the development rules (built-in keys, local mail and billing).
export NEXUS_ENVIRONMENT=${NEXUS_ENVIRONMENT:-development}
status=0
cargo bench --workspace --bench '*' "$@" || status=$?
exit "$status"
