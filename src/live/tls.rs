//! The daemon's certificate authority: the trust between the manager and each machine's Docker.
//!
//! `STATE/ca/` holds the CA (`ca.pem`, `ca-key.pem`), and the manager's client certificate
//! (`client.pem`, `client-key.pem`), made on first start. The CA key never leaves the manager:
//! each machine gets its own server certificate and key, issued before it is launched and handed
//! over in its user data. A machine's certificate names the machine
//! (`m<ID>.machines.scalecast.internal`), not an address (the address is known only after the
//! launch), and the manager checks that name whatever address it dials. A machine's pair is
//! kept in `STATE/ca/machines/` until the machine goes, so a create made again sends the same
//! user data. Keys are ECDSA P-256; the key files are mode 0600.

use crate::core::MachineId;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The CA's folder inside the state directory.
pub const CA_DIR: &str = "ca";
/// The folder inside the CA's where each machine's server pair is kept until it goes.
pub const MACHINES_DIR: &str = "machines";
/// The DNS suffix of the machines' certificate names.
pub const MACHINE_DOMAIN: &str = "machines.scalecast.internal";

/// The name a machine's Docker certificate carries, and that the manager checks.
pub fn server_name(machine: MachineId) -> String {
    format!("m{machine}.{MACHINE_DOMAIN}")
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("{0}: not a usable certificate or key: {1}")]
    Bad(String, String),
    #[error("issuing a certificate: {0}")]
    Issue(#[from] rcgen::Error),
}

/// A certificate and its key, both PEM.
#[derive(Clone, Debug)]
pub struct Pair {
    pub cert_pem: String,
    pub key_pem: String,
}

/// What a client needs to talk to a machine's Docker: the CA to trust and its own pair.
#[derive(Clone, Debug)]
pub struct ClientFiles {
    pub ca_pem: String,
    pub client: Pair,
}

/// The loaded CA, ready to issue.
pub struct Ca {
    dir: PathBuf,
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ca({})", self.dir.display())
    }
}

fn ca_params() -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "scalecast");
    dn.push(DnType::CommonName, "scalecast machines CA");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p
}

/// Valid from a day ago (clocks differ) for `years`.
fn validity(p: &mut CertificateParams, years: i32) {
    use chrono::Datelike;
    let from = chrono::Utc::now() - chrono::Duration::days(1);
    p.not_before = rcgen::date_time_ymd(from.year(), from.month() as u8, from.day() as u8);
    // The 1st of the month, so that 29 February never lands on a year without it.
    p.not_after = rcgen::date_time_ymd(from.year() + years, from.month() as u8, 1);
}

fn write_file(path: &Path, text: &str, secret: bool) -> Result<(), TlsError> {
    let io = |e| TlsError::Io(path.display().to_string(), e);
    crate::report::output::write_atomic(path, text.as_bytes()).map_err(io)?;
    if secret {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    Ok(())
}

fn read_file(path: &Path) -> Result<Option<String>, TlsError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(TlsError::Io(path.display().to_string(), e)),
    }
}

impl Ca {
    /// The CA of `state`, made (with the manager's client certificate) when there is none.
    pub fn open(state: &Path) -> Result<Ca, TlsError> {
        let dir = state.join(CA_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| TlsError::Io(dir.display().to_string(), e))?;
        let (cert_path, key_path) = (dir.join("ca.pem"), dir.join("ca-key.pem"));
        let ca = match (read_file(&cert_path)?, read_file(&key_path)?) {
            (Some(cert_pem), Some(key_pem)) => {
                let key = KeyPair::from_pem(&key_pem)
                    .map_err(|e| TlsError::Bad(key_path.display().to_string(), e.to_string()))?;
                Ca {
                    issuer: Issuer::new(ca_params(), key),
                    cert_pem,
                    dir,
                }
            }
            (None, None) => {
                let key = KeyPair::generate()?;
                let mut params = ca_params();
                validity(&mut params, 10);
                let cert = params.self_signed(&key)?;
                // The key first: a CA certificate without its key is of no use.
                write_file(&key_path, &key.serialize_pem(), true)?;
                write_file(&cert_path, &cert.pem(), false)?;
                Ca {
                    issuer: Issuer::new(ca_params(), key),
                    cert_pem: cert.pem(),
                    dir,
                }
            }
            (Some(_), None) => {
                return Err(TlsError::Bad(
                    key_path.display().to_string(),
                    "missing while ca.pem exists (restore both, or remove both to make a new CA)"
                        .into(),
                ));
            }
            (None, Some(_)) => {
                return Err(TlsError::Bad(
                    cert_path.display().to_string(),
                    "missing while ca-key.pem exists".into(),
                ));
            }
        };
        if read_file(&ca.dir.join("client.pem"))?.is_none()
            || read_file(&ca.dir.join("client-key.pem"))?.is_none()
        {
            let pair = ca.issue_client()?;
            write_file(&ca.dir.join("client-key.pem"), &pair.key_pem, true)?;
            write_file(&ca.dir.join("client.pem"), &pair.cert_pem, false)?;
        }
        Ok(ca)
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A server certificate for a machine's Docker, named `name`, and for `ips` too (tests
    /// and hand-made hosts dial an address; the manager checks the name).
    pub fn issue_server(&self, name: &str, ips: &[IpAddr]) -> Result<Pair, TlsError> {
        let mut p = CertificateParams::new(vec![name.to_string()])?;
        p.subject_alt_names
            .extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
        p.distinguished_name.push(DnType::CommonName, name);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        p.use_authority_key_identifier_extension = true;
        validity(&mut p, 2);
        let key = KeyPair::generate()?;
        let cert = p.signed_by(&key, &self.issuer)?;
        Ok(Pair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Machine `machine`'s server pair: the one issued for it before, kept in
    /// `STATE/ca/machines/` (the key mode 0600), or a new one, kept there before it is
    /// returned. A create made again for the same machine (after a restart, when the list did
    /// not show its instance yet) then sends the same user data as the first, so that EC2,
    /// given the same client token, answers with the instance the first made rather than
    /// refusing the call as another request (`IdempotentParameterMismatch`).
    pub fn machine_pair(&self, machine: MachineId) -> Result<Pair, TlsError> {
        let (cert_path, key_path) = self.machine_paths(machine);
        if let (Some(cert_pem), Some(key_pem)) = (read_file(&cert_path)?, read_file(&key_path)?) {
            return Ok(Pair { cert_pem, key_pem });
        }
        let dir = self.dir.join(MACHINES_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| TlsError::Io(dir.display().to_string(), e))?;
        let pair = self.issue_server(&server_name(machine), &[])?;
        write_file(&key_path, &pair.key_pem, true)?;
        write_file(&cert_path, &pair.cert_pem, false)?;
        Ok(pair)
    }

    /// Machine `machine` is gone: its kept pair goes too.
    pub fn forget_machine(&self, machine: MachineId) {
        let (cert_path, key_path) = self.machine_paths(machine);
        let _ = std::fs::remove_file(cert_path);
        let _ = std::fs::remove_file(key_path);
    }

    /// The kept pairs of machines for which `keep` is false go (machines that went while no
    /// daemon ran to see them go).
    pub fn keep_machines(&self, keep: impl Fn(MachineId) -> bool) {
        let dir = self.dir.join(MACHINES_DIR);
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = e.file_name();
            let id = name
                .to_str()
                .and_then(|n| n.strip_prefix('m'))
                .and_then(|n| {
                    n.strip_suffix("-key.pem")
                        .or_else(|| n.strip_suffix(".pem"))
                })
                .and_then(|n| n.parse::<MachineId>().ok());
            if id.is_some_and(|id| !keep(id)) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    fn machine_paths(&self, machine: MachineId) -> (PathBuf, PathBuf) {
        let dir = self.dir.join(MACHINES_DIR);
        (
            dir.join(format!("m{machine}.pem")),
            dir.join(format!("m{machine}-key.pem")),
        )
    }

    /// A client certificate (the manager's own, or one for `docker --tlsverify` by hand).
    pub fn issue_client(&self) -> Result<Pair, TlsError> {
        let mut p = CertificateParams::default();
        p.distinguished_name
            .push(DnType::CommonName, "scalecast manager");
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.use_authority_key_identifier_extension = true;
        validity(&mut p, 10);
        let key = KeyPair::generate()?;
        let cert = p.signed_by(&key, &self.issuer)?;
        Ok(Pair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// The client files of `state` (made by the daemon's first start); what the executor reads.
pub fn client_files(state: &Path) -> Result<ClientFiles, TlsError> {
    let dir = state.join(CA_DIR);
    let need = |name: &str| {
        let p = dir.join(name);
        read_file(&p)?.ok_or_else(|| {
            TlsError::Bad(
                p.display().to_string(),
                "missing (the daemon makes it on its first start: is `scalecast live` running with this --state?)"
                    .into(),
            )
        })
    };
    Ok(ClientFiles {
        ca_pem: need("ca.pem")?,
        client: Pair {
            cert_pem: need("client.pem")?,
            key_pem: need("client-key.pem")?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_machines_pair_is_kept_until_it_goes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = crate::testing::scratch("pairs");
        let ca = Ca::open(&dir).unwrap();
        let first = ca.machine_pair(7).unwrap();
        // Asked again, even by another handle on the CA (a restarted daemon): the same pair.
        let again = Ca::open(&dir).unwrap().machine_pair(7).unwrap();
        assert_eq!(
            (&first.cert_pem, &first.key_pem),
            (&again.cert_pem, &again.key_pem)
        );
        assert_ne!(ca.machine_pair(8).unwrap().key_pem, first.key_pem);
        let key = dir.join(CA_DIR).join(MACHINES_DIR).join("m7-key.pem");
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Gone: a machine of that number later gets a new pair.
        ca.forget_machine(7);
        assert!(!key.exists());
        assert_ne!(ca.machine_pair(7).unwrap().key_pem, first.key_pem);
        // Machines no longer in the fleet lose theirs; the others keep them.
        let kept = ca.machine_pair(8).unwrap();
        ca.keep_machines(|m| m == 8);
        let left: Vec<_> = std::fs::read_dir(dir.join(CA_DIR).join(MACHINES_DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(left.iter().all(|n| n.starts_with("m8")), "{left:?}");
        assert_eq!(ca.machine_pair(8).unwrap().key_pem, kept.key_pem);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_ca_is_made_once_and_kept_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = crate::testing::scratch("ca");
        let first = Ca::open(&dir).unwrap();
        let again = Ca::open(&dir).unwrap();
        assert_eq!(
            first.cert_pem(),
            again.cert_pem(),
            "a second open keeps the CA"
        );
        for secret in ["ca-key.pem", "client-key.pem"] {
            let mode = std::fs::metadata(dir.join(CA_DIR).join(secret))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{secret}");
        }
        let files = client_files(&dir).unwrap();
        assert_eq!(files.ca_pem, first.cert_pem());
        // Two machines get different keys.
        let a = again.issue_server(&server_name(1), &[]).unwrap();
        let b = again.issue_server(&server_name(2), &[]).unwrap();
        assert_ne!(a.key_pem, b.key_pem);
        // A CA file without its key is refused by name.
        std::fs::remove_file(dir.join(CA_DIR).join("ca-key.pem")).unwrap();
        let e = Ca::open(&dir).unwrap_err().to_string();
        assert!(e.contains("ca-key.pem"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
