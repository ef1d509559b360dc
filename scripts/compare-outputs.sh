#!/usr/bin/env bash
# Whether two scalecast binaries give byte-identical outputs: every shipped scenario with each
# engine (the table on standard output, the JSON, the report's files, a cost split by stage
# and its CSV), one and two threads, and the 100-day trace of scripts/end-to-end.sh with and
# without spot interruptions and failed creates. Prints each case and whether it matched;
# exits 1 if any differs. For a change that must not move any result (issue 11's rule).
#
#   bash scripts/compare-outputs.sh OLD_BINARY NEW_BINARY
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$#" -eq 2 ] || { echo "usage: $0 OLD_BINARY NEW_BINARY" >&2; exit 2; }
old=$(realpath "$1")
new=$(realpath "$2")
work=$PWD/target/compare-outputs
rm -rf "$work"
mkdir -p "$work"
source scripts/tutorial-scenario.sh
e2e_setup "$new"
e2e=$PWD/target/e2e
tutorial_scenario "$e2e/t100.csv" > "$work/t100.toml"
sed 's/^\[machine\]$/[machine]\ninterruptions_per_hour = 0.05\ncreate_failure_probability = 0.02/' \
  "$work/t100.toml" > "$work/t100-spot.toml"

failed=0
# run NAME ARGS...: both binaries, each in a directory of its own; compares everything written.
run() {
  local name=$1
  shift
  for side in old new; do
    local bin=$old
    [ "$side" = new ] && bin=$new
    local dir="$work/$side/$name"
    mkdir -p "$dir"
    (cd "$dir" && "$bin" "$@" > stdout.txt 2> stderr.txt) || echo "exit $?" >> "$dir/stdout.txt"
    # Progress and timings go to standard error; only the results are compared.
    rm -f "$dir/stderr.txt"
  done
  if diff -r "$work/old/$name" "$work/new/$name" > /dev/null; then
    echo "same       $name"
  else
    echo "DIFFERENT  $name"
    failed=1
  fi
}

for sc in scenarios/*/scenario.toml; do
  s=$(basename "$(dirname "$sc")")
  for engine in scalecast docker-machine; do
    for threads in 1 2; do
      run "$s-$engine-$threads" simulate "$PWD/$sc" --set "engine=$engine" --threads "$threads" \
        --json out.json --report report
    done
    run "$s-$engine-by-stage" simulate "$PWD/$sc" --set "engine=$engine" --by stage \
      --by-csv by.csv --json out.json
  done
done
for t in t100 t100-spot; do
  for engine in scalecast docker-machine; do
    run "$t-$engine" simulate "$work/$t.toml" --set concurrent=200 --set limit=200 \
      --set "engine=$engine" --json out.json
  done
done
exit $failed
