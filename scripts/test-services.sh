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
#
# dockerd (Debian's docker.io) plays the machines: started as root with its own data root,
# exec root and pid file, no iptables and no bridge (nothing here may touch the host's
# network), vfs storage, and mutual TLS on a free port of 127.0.0.1 with a server certificate
# issued by scalecast's own CA (`scalecast live ca`, into target/test-services/docker/state/ca).
# No registry is reachable: the test image is imported from a busybox rootfs
# (busybox-static), as scalecast-test/busybox:1 and as the helper stand-in
# scalecast-test/helper:1. The tests read target/test-services/docker.url (tcp://127.0.0.1:PORT)
# and copy the CA from docker/state/ca into their daemons' state directories.
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

# Stop the process whose PID is in FILE: SIGTERM, then SIGKILL after WAIT tenths of a second.
stop_pid() {
  local file=$1 wait=$2
  if [ -f "$file" ]; then
    local pid
    pid=$(cat "$file")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 "$wait"); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$file"
  fi
}

stop_moto() {
  stop_pid "$dir/moto.pid" 50
  rm -f "$dir/moto.url"
}

start_docker() {
  if ! command -v dockerd >/dev/null 2>&1 || ! [ -x /bin/busybox ]; then
    echo "installing docker.io and busybox-static (Debian)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q docker.io busybox-static >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null && apt-get install -y -q docker.io busybox-static >/dev/null; }
  fi
  stop_docker
  local d="$PWD/$dir/docker"
  rm -rf "$d"
  mkdir -p "$d/state" "$d/certs"
  # scalecast's own CA issues the daemon's certificate: a wildcard over the machines' names
  # (every machine of a test resolves to this dockerd) and 127.0.0.1.
  cargo build --quiet --locked --all-features --bin scalecast
  target/debug/scalecast live ca --state "$d/state" --server "*.machines.scalecast.internal" \
    --ip 127.0.0.1 --out "$d/certs" >/dev/null
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  dockerd --iptables=false --ip6tables=false --bridge=none --storage-driver=vfs \
    --data-root "$d/data" --exec-root "$d/exec" --pidfile "$d/dockerd.pid" \
    -H "unix://$d/docker.sock" -H "tcp://127.0.0.1:$port" \
    --tlsverify --tlscacert "$d/certs/ca.pem" --tlscert "$d/certs/cert.pem" \
    --tlskey "$d/certs/key.pem" >"$d/dockerd.log" 2>&1 &
  echo $! >"$dir/dockerd.pid"
  local ready=""
  for _ in $(seq 1 150); do
    if /usr/bin/docker -H "unix://$d/docker.sock" version >/dev/null 2>&1; then ready=1; break; fi
    sleep 0.2
  done
  if [ -z "$ready" ]; then
    echo "dockerd did not start; its log:" >&2
    cat "$d/dockerd.log" >&2
    stop_docker
    return 1
  fi
  # The test image: busybox and its applets, imported (no registry).
  local rootfs="$d/rootfs"
  mkdir -p "$rootfs/bin" "$rootfs/tmp"
  cp /bin/busybox "$rootfs/bin/busybox"
  for applet in sh echo cat sleep ls printf seq true false test env mkdir rm ln; do
    ln -sf busybox "$rootfs/bin/$applet"
  done
  tar -C "$rootfs" -c . | /usr/bin/docker -H "unix://$d/docker.sock" import - scalecast-test/busybox:1 >/dev/null
  # The helper stand-in: the same, with a gitlab-runner-helper that says how it was called
  # (GitLab's helper image has the real one, and git).
  mkdir -p "$rootfs/usr/bin"
  printf '#!/bin/sh\necho "gitlab-runner-helper $*"\n' >"$rootfs/usr/bin/gitlab-runner-helper"
  chmod +x "$rootfs/usr/bin/gitlab-runner-helper"
  tar -C "$rootfs" -c . | /usr/bin/docker -H "unix://$d/docker.sock" import - scalecast-test/helper:1 >/dev/null
  echo "tcp://127.0.0.1:$port" >"$dir/docker.url"
  echo "dockerd listening on tcp://127.0.0.1:$port with TLS (pid $(cat "$dir/dockerd.pid"))" >&2
}

stop_docker() {
  stop_pid "$dir/dockerd.pid" 100
  rm -f "$dir/docker.url"
  # A dockerd killed hard (here after 10 s, or with the whole session) leaves its mounts
  # behind (its data root, network namespaces), which would make the next start's rm fail:
  # unmount what is left under its directory, deepest first.
  local d="$PWD/$dir/docker"
  awk -v d="$d" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/mounts | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

mkdir -p "$dir"
case "${1:-}" in
  start) start_moto; start_docker ;;
  stop) stop_moto; stop_docker ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
