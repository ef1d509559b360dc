#!/usr/bin/env bash
# Peak memory of `scalecast simulate` on a one-million-job and a ten-million-job trace file
# (the README quotes both). Makes the traces in a temporary folder (about 0.14 and 1.4 GB),
# runs the tutorial's settings with concurrent and limit raised so the fleet can carry that
# load, and prints the peak RSS and the time of each. One variant: the trace is streamed
# through the run as it is read, and none of its jobs is kept, so memory stays flat however
# long it is (with other variants, up to SCALECAST_MAX_JOBS_IN_MEMORY jobs, 2 million, are
# kept for them at 32 bytes a job).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tutorial-scenario.sh
cargo build --release --quiet
bin=$PWD/target/release/scalecast
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for spec in "one-million 365" "ten-million 3650"; do
  set -- $spec
  "$bin" trace synth --days "$2" --jobs-per-day 2740 --seed 3 --out "$work/$1.csv"
  tutorial_scenario "$1.csv" > "$work/$1.toml"
  /usr/bin/time -v "$bin" simulate "$work/$1.toml" --set concurrent=200 --set limit=200 \
    --json "$work/out.json" --quiet 2> "$work/time.txt"
  echo "$1 jobs:"
  grep -E "Maximum resident set size|Elapsed" "$work/time.txt"
  python3 -c "import json,sys; v=json.load(open(sys.argv[1]))['variants'][0]; print('  jobs', v['jobs'], 'unfinished', v['jobs_unfinished'])" "$work/out.json"
  rm -f "$work/$1.csv"
done
