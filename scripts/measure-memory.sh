#!/usr/bin/env bash
# Peak memory of `scalecast simulate` on a ten-million-job trace (the README quotes it).
# Makes the trace in a temporary folder (about 1.4 GB), runs the tutorial's settings with
# concurrent and limit raised so the fleet can carry that load, and prints the peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=$PWD/target/release/scalecast
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin" trace synth --days 3650 --jobs-per-day 2740 --seed 3 --out "$work/ten-million.csv"
cat > "$work/scenario.toml" <<TOML
[runner]
config = "$PWD/scenarios/tutorial/config.toml"
[trace]
path = "ten-million.csv"
[sim]
seed = 1
[machine]
boot_seconds = { median = 90, p95 = 180 }
TOML
/usr/bin/time -v "$bin" simulate "$work/scenario.toml" --set concurrent=200 --set limit=200 \
  --json "$work/out.json" --quiet 2> "$work/time.txt"
grep -E "Maximum resident set size|Elapsed" "$work/time.txt"
python3 -c "import json,sys; v=json.load(open(sys.argv[1]))['variants'][0]; print('jobs', v['jobs'], 'unfinished', v['jobs_unfinished'])" "$work/out.json"
