#!/usr/bin/env bash
# The project's test command: start the services the tests need, run every test with every
# feature (live mode included), stop the services whatever happened.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/test-services.sh start
trap 'bash scripts/test-services.sh stop' EXIT
cargo test --locked --all-features "$@"
