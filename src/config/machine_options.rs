//! `MachineOptions` of the `amazonec2` docker-machine driver, read into typed fields. Defaults
//! are docker-machine's own (region us-east-1, zone a, t2.micro, 16 GB root volume).

use crate::config::secret::{Secret, is_secret_key};
use serde::Serialize;

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Ec2Options {
    pub instance_type: String,
    pub region: String,
    /// The zone letter (`a`), as docker-machine takes it.
    pub zone: String,
    pub vpc_id: String,
    pub subnet_id: String,
    pub security_group: Vec<String>,
    pub private_address_only: bool,
    pub use_private_address: bool,
    /// `key,value,key,value` pairs.
    pub tags: Vec<(String, String)>,
    pub iam_instance_profile: String,
    /// GB.
    pub root_size: u32,
    pub volume_type: String,
    pub ami: String,
    pub request_spot_instance: bool,
    /// Max bid in $/h; None = docker-machine's default (0.50) when spot is requested.
    pub spot_price: Option<f64>,
    pub access_key: Secret,
    pub secret_key: Secret,
    /// `amazonec2-*` options we do not model, as written (secrets redacted).
    pub other: Vec<String>,
}

impl Default for Ec2Options {
    fn default() -> Self {
        Ec2Options {
            instance_type: "t2.micro".into(),
            region: "us-east-1".into(),
            zone: "a".into(),
            vpc_id: String::new(),
            subnet_id: String::new(),
            security_group: Vec::new(),
            private_address_only: false,
            use_private_address: false,
            tags: Vec::new(),
            iam_instance_profile: String::new(),
            root_size: 16,
            volume_type: "gp2".into(),
            ami: String::new(),
            request_spot_instance: false,
            spot_price: None,
            access_key: Secret::default(),
            secret_key: Secret::default(),
            other: Vec::new(),
        }
    }
}

fn flag(key: &str, v: Option<&str>) -> Result<bool, String> {
    match v.map(|s| s.trim().to_ascii_lowercase()) {
        None => Ok(true),
        Some(s) if s == "true" || s == "1" || s.is_empty() => Ok(true),
        Some(s) if s == "false" || s == "0" => Ok(false),
        Some(s) => Err(format!("{key}={s}: expected true or false")),
    }
}

/// The option as it may be shown: `amazonec2-secret-key=[redacted]`.
pub fn redact_option(opt: &str) -> String {
    match opt.split_once('=') {
        Some((k, _)) if is_secret_key(k) => format!("{k}=[redacted]"),
        _ => opt.to_string(),
    }
}

impl Ec2Options {
    /// Parse `MachineOptions`; an error gives the index of the bad option and a message.
    pub fn parse(options: &[(String, usize)]) -> Result<Self, (usize, String)> {
        let mut o = Ec2Options::default();
        for (i, (opt, _)) in options.iter().enumerate() {
            let opt = opt.trim().trim_start_matches("--");
            let (key, value) = match opt.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (opt, None),
            };
            let Some(name) = key.strip_prefix("amazonec2-") else {
                continue; // engine-*, other drivers: not ours
            };
            let text = || value.unwrap_or("").to_string();
            let e = |m: String| (i, m);
            match name {
                "instance-type" => o.instance_type = text(),
                "region" => o.region = text(),
                "zone" => o.zone = text(),
                "vpc-id" => o.vpc_id = text(),
                "subnet-id" => o.subnet_id = text(),
                "security-group" => o.security_group.push(text()),
                "private-address-only" => o.private_address_only = flag(key, value).map_err(e)?,
                "use-private-address" => o.use_private_address = flag(key, value).map_err(e)?,
                "iam-instance-profile" => o.iam_instance_profile = text(),
                "ami" => o.ami = text(),
                "volume-type" => o.volume_type = text(),
                "request-spot-instance" => o.request_spot_instance = flag(key, value).map_err(e)?,
                "root-size" => {
                    o.root_size = text()
                        .parse()
                        .map_err(|_| e(format!("{key}={}: expected a size in GB", text())))?
                }
                "spot-price" => {
                    let p: f64 = text()
                        .parse()
                        .map_err(|_| e(format!("{key}={}: expected a price in $/h", text())))?;
                    o.spot_price = Some(p);
                }
                "tags" => {
                    let parts: Vec<&str> = value.unwrap_or("").split(',').collect();
                    if !parts.len().is_multiple_of(2) {
                        return Err(e(format!(
                            "{key}: expected key,value pairs, found {} items",
                            parts.len()
                        )));
                    }
                    o.tags = parts
                        .chunks(2)
                        .map(|c| (c[0].to_string(), c[1].to_string()))
                        .collect();
                }
                "access-key" => o.access_key = Secret::new(text()),
                "secret-key" => o.secret_key = Secret::new(text()),
                _ => o.other.push(redact_option(opt)),
            }
        }
        Ok(o)
    }
}
