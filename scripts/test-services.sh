#!/usr/bin/env bash
# The real services the tests use, installed and started here, stopped by their PIDs.
#
#   bash scripts/test-services.sh start   # install (once) and start; prints where they listen
#   bash scripts/test-services.sh stop    # stop what `start` started
#
# moto's server (EC2, S3) comes from PyPI into a virtualenv under target/test-services/, and
# listens on a free port of 127.0.0.1. The tests read its address from
# target/test-services/moto.url (or SCALECAST_MOTO_URL); a test that finds neither fails and
# names this script.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=target/test-services
venv="$dir/venv"
moto_version="5.2.5"

start_moto() {
  if ! "$venv/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$moto_version')" 2>/dev/null; then
    echo "installing moto[server]==$moto_version into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$moto_version"
  fi
  stop_moto
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$dir/moto.log" 2>&1 &
  echo $! >"$dir/moto.pid"
  for _ in $(seq 1 100); do
    if python3 - "$port" <<'PY' 2>/dev/null; then
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/moto-api/", timeout=1)
PY
      echo "http://127.0.0.1:$port" >"$dir/moto.url"
      echo "moto listening on http://127.0.0.1:$port (pid $(cat "$dir/moto.pid"))" >&2
      return 0
    fi
    sleep 0.2
  done
  echo "moto did not start; its log:" >&2
  cat "$dir/moto.log" >&2
  stop_moto
  return 1
}

stop_moto() {
  if [ -f "$dir/moto.pid" ]; then
    local pid
    pid=$(cat "$dir/moto.pid")
    kill "$pid" 2>/dev/null || true
    # Wait for it to go; after five seconds, SIGKILL.
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$dir/moto.pid"
  fi
  rm -f "$dir/moto.url"
}

mkdir -p "$dir"
case "${1:-}" in
  start) start_moto ;;
  stop) stop_moto ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
