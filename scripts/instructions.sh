#!/usr/bin/env bash
# Instructions executed by each thread of `scalecast simulate` on the end-to-end scenario (the
# 100-day trace of scripts/end-to-end.sh, one variant, `scalecast` engine, then
# `docker-machine`), counted by callgrind: unlike wall-clock time, the same count for the same
# binary and inputs whatever else the machine is doing, so a change to the simulation loop can
# be judged in one run rather than in many timed ones. The main thread reads the trace (and
# keeps the run's books and makes its machine draws); the second runs the simulation, which is
# the end-to-end critical path (docs/performance.md).
#
#   bash scripts/instructions.sh [BINARY...]   (default: a release build with line tables in
#                                               target/prof, for callgrind_annotate)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind > /dev/null || { echo "valgrind not found: apt-get install valgrind" >&2; exit 2; }
if [ "$#" -eq 0 ]; then
  CARGO_PROFILE_RELEASE_DEBUG=line-tables-only CARGO_TARGET_DIR=target/prof \
    cargo build --release --locked --quiet
  set -- "$PWD/target/prof/release/scalecast"
fi
source scripts/tutorial-scenario.sh
e2e_setup "${@: -1}"
work=$PWD/target/e2e
for bin in "$@"; do
  echo "$bin"
  for engine in scalecast docker-machine; do
    out=$work/callgrind-$engine
    rm -f "$out"*
    (cd "$work" && valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$out" \
      "$bin" simulate scenario.toml --set concurrent=200 --set limit=200 --set "engine=$engine" \
      --json "$work/instructions-$engine.json" --quiet > /dev/null 2> "$work/valgrind.log") ||
      { cat "$work/valgrind.log" >&2; exit 1; }
    read_ir=$(sed -n 's/^summary: //p' "$out-01")
    run_ir=$(sed -n 's/^summary: //p' "$out-02")
    awk -v e="$engine" -v r="$read_ir" -v s="$run_ir" \
      'BEGIN { printf "  %-15s reading thread %6.1f M   run thread %7.1f M instructions\n", e, r / 1e6, s / 1e6 }'
  done
done
echo "per function: callgrind_annotate $work/callgrind-scalecast-02"
