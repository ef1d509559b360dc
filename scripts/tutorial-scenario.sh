# Sourced by the measuring scripts: `tutorial_scenario TRACE` prints the scenario they all
# measure (the tutorial's config.toml, lognormal boots, seed 1) over TRACE (a path, relative
# to where the scenario is written, or absolute). Run from the repository's root.
tutorial_scenario() {
  cat <<TOML
[runner]
config = "$PWD/scenarios/tutorial/config.toml"
[trace]
path = "$1"
[sim]
seed = 1
[machine]
boot_seconds = { median = 90, p95 = 180 }
TOML
}

# `e2e_setup BINARY` makes target/e2e/ with the 100-day trace of about 193,000 jobs (made once,
# by BINARY: name the newest, as an older release's `trace synth` writes a queued duration for
# every job, which makes newer builds also report the observed waits) and scenario.toml over it.
e2e_setup() {
  local work=$PWD/target/e2e
  mkdir -p "$work"
  [ -f "$work/t100.csv" ] ||
    "$1" trace synth --days 100 --jobs-per-day 1930 --seed 3 --out "$work/t100.csv" > /dev/null
  tutorial_scenario t100.csv > "$work/scenario.toml"
}
