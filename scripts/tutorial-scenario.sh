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
