#!/usr/bin/env bash
# End-to-end time of `scalecast simulate` on a 100-day trace of about 193,000 jobs (one
# variant, the tutorial's settings with concurrent and limit raised to carry the load), as a
# whole process (wall clock), and split into reading and checking, simulating and writing the
# output (SCALECAST_TIMINGS=1); then the same scenario with the docker-machine engine, and how
# many times the scalecast one that costs. Makes the trace once in target/e2e/. With several
# binaries (an older release, say), runs them in turns, side by side, and says whether their
# JSON results are byte-identical.
#
#   bash scripts/end-to-end.sh [RUNS] [BINARY...]   (default: 11 runs, target/release/scalecast)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-11}
shift || true
if [ "$#" -eq 0 ]; then
  cargo build --release --quiet
  set -- "$PWD/target/release/scalecast"
fi
source scripts/tutorial-scenario.sh
e2e_setup "${@: -1}"
work=$PWD/target/e2e
python3 - "$runs" "$work" "$@" <<'PY'
import collections, os, statistics, subprocess, sys, time
runs, work, bins = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
wall = collections.defaultdict(list)
parts = collections.defaultdict(lambda: collections.defaultdict(list))
engines = ["scalecast", "docker-machine"]
for r in range(runs):
    for engine in engines:
        for i, b in enumerate(bins):
            out = f"{work}/out-{i}-{engine}.json"
            t = time.perf_counter()
            p = subprocess.run([b, "simulate", f"{work}/scenario.toml", "--set", "concurrent=200",
                                "--set", "limit=200", "--set", f"engine={engine}",
                                "--json", out, "--quiet"],
                               env={**os.environ, "SCALECAST_TIMINGS": "1"},
                               capture_output=True, text=True, check=True)
            wall[(b, engine)].append((time.perf_counter() - t) * 1e3)
            for line in p.stderr.splitlines():
                if line.startswith("timing: ") and engine == "scalecast":
                    what, ms = line[8:].rsplit(" ", 2)[0], float(line.split()[-2])
                    parts[b][what].append(ms)
print(f"{runs} runs each, in turns; a {os.path.getsize(work + '/t100.csv') / 1e6:.1f} MB trace")
for b in bins:
    print(b)
    for engine in engines:
        w = wall[(b, engine)]
        print(f"  {'whole process, ' + engine + ' engine':43} median {statistics.median(w):7.1f} ms  (min {min(w):.1f}, max {max(w):.1f})")
    for what, v in parts[b].items():
        print(f"    {what:41} median {statistics.median(v):7.1f} ms")
    ratio = statistics.median(wall[(b, 'docker-machine')]) / statistics.median(wall[(b, 'scalecast')])
    print(f"  docker-machine / scalecast: {ratio:.2f}")
if len(bins) > 1:
    for engine in engines:
        first = open(f"{work}/out-0-{engine}.json", "rb").read()
        same = all(open(f"{work}/out-{i}-{engine}.json", "rb").read() == first for i in range(1, len(bins)))
        print(f"JSON results byte-identical ({engine}):", "yes" if same else "NO")
PY
