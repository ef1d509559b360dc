#!/usr/bin/env bash
# End-to-end time of `scalecast simulate` on a 100-day trace of about 193,000 jobs (one
# variant, the tutorial's settings with concurrent and limit raised to carry the load), as a
# whole process, split into reading and checking, simulating and writing the output
# (SCALECAST_TIMINGS=1). Makes the trace once in target/e2e/; prints each run and the medians.
#
#   bash scripts/end-to-end.sh [RUNS] [BINARY]      (default: 11 runs, target/release/scalecast)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-11}
bin=${2:-}
if [ -z "$bin" ]; then
  cargo build --release --quiet
  bin=$PWD/target/release/scalecast
fi
work=$PWD/target/e2e
mkdir -p "$work"
[ -f "$work/t100.csv" ] || "$bin" trace synth --days 100 --jobs-per-day 1930 --seed 3 --out "$work/t100.csv"
cat > "$work/scenario.toml" <<TOML
[runner]
config = "$PWD/scenarios/tutorial/config.toml"
[trace]
path = "t100.csv"
[sim]
seed = 1
[machine]
boot_seconds = { median = 90, p95 = 180 }
TOML
for _ in $(seq 1 "$runs"); do
  SCALECAST_TIMINGS=1 "$bin" simulate "$work/scenario.toml" --set concurrent=200 --set limit=200 \
    --json "$work/out.json" --quiet 2>&1 >/dev/null | grep '^timing:'
done | python3 -c '
import sys, collections, statistics
t = collections.defaultdict(list)
for line in sys.stdin:
    what, ms = line[len("timing: "):].rsplit(" ", 2)[0], float(line.split()[-2])
    t[what].append(ms)
for what, v in t.items():
    print(f"{what:45} median {statistics.median(v):7.1f} ms  (min {min(v):.1f}, max {max(v):.1f}, {len(v)} runs)")
'
