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
# The video pipeline's benchmark renders with ffmpeg (the fake D-ID serves real MP4s): say so up
# front instead of failing after every other benchmark has run.
for tool in ffmpeg ffprobe; do
  command -v "$tool" >/dev/null || {
    echo "make bench: $tool is missing (apt-get install ffmpeg; .ci/run installs it for make test)" >&2
    exit 1
  }
done
# Tests and benchmarks run under the development rules (built-in keys, local mail and billing).
export NEXUS_ENVIRONMENT=${NEXUS_ENVIRONMENT:-development}
mkdir -p .local/bench
export NEXUS_BENCH_RESULTS=$NEXUS_ROOT/.local/bench/results.jsonl
: >"$NEXUS_BENCH_RESULTS"
status=0
cargo bench --workspace --bench '*' "$@" || status=$?
python3 "$here/bench_report.py" "$NEXUS_BENCH_RESULTS" "${NEXUS_BENCH_REPORT:-$NEXUS_ROOT/BENCHMARKS.md}" "$status"
exit "$status"
