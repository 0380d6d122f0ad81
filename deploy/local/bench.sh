#!/usr/bin/env bash
# `make bench`: Postgres + NATS, then every benchmark in the workspace (benches that need the
# stack find it at the usual NEXUS_* URLs), then BENCHMARKS.md from the figures they recorded
# (nexus_testkit::bench). Exits with cargo bench's status.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=deploy/local/services.sh
. "$here/services.sh"
cd "$NEXUS_ROOT"

bash "$here/stack.sh" up
# Tests and benchmarks run under the development rules (built-in keys, local mail and billing).
export NEXUS_ENVIRONMENT=${NEXUS_ENVIRONMENT:-development}
mkdir -p .local/bench
export NEXUS_BENCH_RESULTS=$NEXUS_ROOT/.local/bench/results.jsonl
: >"$NEXUS_BENCH_RESULTS"
status=0
cargo bench --workspace --bench '*' "$@" || status=$?
python3 "$here/bench_report.py" "$NEXUS_BENCH_RESULTS" "${NEXUS_BENCH_REPORT:-$NEXUS_ROOT/BENCHMARKS.md}" "$status"
exit "$status"
