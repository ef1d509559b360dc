//! The user data a machine boots with: its Docker server certificate (issued by the manager's
//! CA, whose key stays on the manager) and a script that installs Docker when the AMI has none
//! (Ubuntu, Debian, Amazon Linux) and makes it listen on port 2376 with mutual TLS only.
//! Instances are launched with IMDSv2 required and a hop limit of 1, so a job container cannot
//! read this back from the instance metadata.

use crate::live::tls::Pair;

/// The script for a machine whose Docker certificate is `server` (signed by `ca_pem`).
pub fn script(ca_pem: &str, server: &Pair, port: u16) -> String {
    format!(
        r#"#!/bin/bash
# scalecast machine set-up: Docker on port {port} with mutual TLS (client certificates from
# the manager's CA only).
set -euo pipefail
dir=/etc/docker/scalecast
install -d -m 0700 "$dir"
umask 077
cat >"$dir/ca.pem" <<'SCALECAST_PEM'
{ca}SCALECAST_PEM
cat >"$dir/server.pem" <<'SCALECAST_PEM'
{cert}SCALECAST_PEM
cat >"$dir/server-key.pem" <<'SCALECAST_PEM'
{key}SCALECAST_PEM
if ! command -v dockerd >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q && apt-get install -y -q docker.io
  elif command -v dnf >/dev/null 2>&1; then
    dnf install -y docker
  elif command -v yum >/dev/null 2>&1; then
    yum install -y docker
  else
    echo "scalecast: no apt-get, dnf or yum to install Docker with" >&2
    exit 1
  fi
fi
mkdir -p /etc/systemd/system/docker.service.d
cat >/etc/systemd/system/docker.service.d/scalecast.conf <<SCALECAST_UNIT
[Service]
ExecStart=
ExecStart=$(command -v dockerd) -H unix:///var/run/docker.sock -H tcp://0.0.0.0:{port} --tlsverify --tlscacert $dir/ca.pem --tlscert $dir/server.pem --tlskey $dir/server-key.pem
SCALECAST_UNIT
systemctl daemon-reload
systemctl enable docker
systemctl restart docker
"#,
        ca = ensure_newline(ca_pem),
        cert = ensure_newline(&server.cert_pem),
        key = ensure_newline(&server.key_pem),
    )
}

fn ensure_newline(s: &str) -> String {
    if s.ends_with('\n') {
        s.to_string()
    } else {
        format!("{s}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_parses_carries_the_machines_pair_and_not_the_ca_key() {
        let dir = crate::testing::scratch("ud");
        let ca = crate::live::tls::Ca::open(&dir).unwrap();
        let pair = ca
            .issue_server(&crate::live::tls::server_name(3), &[])
            .unwrap();
        let s = script(ca.cert_pem(), &pair, 2376);
        assert!(s.contains(pair.cert_pem.trim()) && s.contains(pair.key_pem.trim()));
        assert!(s.contains(ca.cert_pem().trim()));
        let ca_key = std::fs::read_to_string(dir.join("ca/ca-key.pem")).unwrap();
        assert!(
            !s.contains(ca_key.trim()),
            "the CA key must never leave the manager"
        );
        assert!(s.contains("tcp://0.0.0.0:2376 --tlsverify"));
        let f = dir.join("user-data.sh");
        std::fs::write(&f, &s).unwrap();
        let ok = std::process::Command::new("bash")
            .arg("-n")
            .arg(&f)
            .status()
            .unwrap();
        assert!(ok.success(), "bash -n refuses the script");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
