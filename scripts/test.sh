#!/usr/bin/env bash
# The project's test command: start the services the tests need, run every test with every
# feature (live mode included), stop the services whatever happened.
set -euo pipefail
cd "$(dirname "$0")/.."
# The trap first: a service that fails to start must not leave the one started before it.
trap 'bash scripts/test-services.sh stop' EXIT
bash scripts/test-services.sh start
cargo test --locked --all-features "$@"
