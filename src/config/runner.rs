//! GitLab Runner's `config.toml`, read as users write it (spec section 1): the top level,
//! `[[runners]]`, `[runners.docker]`, `[runners.cache]` (+ `.s3`), `[runners.machine]` and its
//! ordered `[[runners.machine.autoscaling]]` entries. Keys we do not model are kept and
//! ignored. Secrets are held in [`Secret`] and never printed.

use crate::config::machine_options::Ec2Options;
pub use crate::config::secret::{Secret, is_secret_key};
use crate::config::toml_util::{InputError, Source, Table};
use crate::core::cron::CronExpr;
use crate::core::settings::{AutoscalingEntry, IdleSettings, Settings};
use chrono_tz::Tz;
use serde::Serialize;
use std::path::Path;

#[derive(Clone, Debug, Serialize)]
pub struct ConfigFile {
    pub file: String,
    pub concurrent: u32,
    /// As written (seconds); `effective_check_interval` applies GitLab's default.
    pub check_interval: i64,
    pub runners: Vec<Runner>,
    /// Top-level keys we do not model.
    pub other: Vec<(String, String)>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Runner {
    pub name: String,
    pub line: usize,
    pub url: String,
    pub token: Secret,
    pub executor: String,
    pub limit: u32,
    pub limit_line: usize,
    pub request_concurrency: u32,
    pub docker: Option<DockerConfig>,
    pub cache: Option<CacheConfig>,
    pub machine: Option<MachineConfig>,
    /// `builds_dir` and `cache_dir`: where jobs build and cache inside their containers (the
    /// custom executor requires both; empty when not written).
    pub builds_dir: String,
    pub cache_dir: String,
    pub other: Vec<(String, String)>,
}

#[derive(Clone, Debug, Serialize)]
pub struct DockerConfig {
    pub image: String,
    pub privileged: bool,
    pub disable_cache: bool,
    /// `volumes`: `HOST:CONTAINER[:ro]` binds, or a container path for a volume kept on the
    /// machine across jobs.
    pub volumes: Vec<String>,
    /// `shm_size` in bytes (0: Docker's default).
    pub shm_size: i64,
    /// `pull_policy`: a string or an array of `always`, `if-not-present`, `never`, tried in
    /// order (empty: `always`, as GitLab Runner).
    pub pull_policy: Vec<String>,
    /// `helper_image`: the image the git, cache and artifact stages run in (empty: GitLab's).
    pub helper_image: String,
    /// `network_mode` (empty: Docker's default bridge).
    pub network_mode: String,
    pub other: Vec<(String, String)>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CacheConfig {
    pub kind: String,
    pub shared: bool,
    pub s3: Option<S3Config>,
    pub other: Vec<(String, String)>,
}

#[derive(Clone, Debug, Serialize)]
pub struct S3Config {
    pub server_address: String,
    pub access_key: Secret,
    pub secret_key: Secret,
    pub bucket_name: String,
    pub bucket_location: String,
    pub other: Vec<(String, String)>,
}

/// A setting with the line it was written on (0 when absent and defaulted).
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct At<T> {
    pub value: T,
    pub line: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct MachineConfig {
    pub line: usize,
    pub idle_count: At<u32>,
    pub idle_count_min: At<u32>,
    pub idle_scale_factor: At<f64>,
    /// IdleScaleFactor was written as an integer literal (GitLab rejects that).
    pub idle_scale_factor_int: bool,
    pub idle_time: At<u32>,
    pub max_builds: u32,
    pub max_growth_rate: u32,
    pub machine_driver: String,
    pub machine_name: String,
    pub machine_options: Vec<String>,
    pub ec2: Ec2Options,
    pub autoscaling: Vec<EntryConfig>,
    /// Deprecated OffPeak* keys present, with their lines: warned, never applied.
    pub off_peak: Vec<(String, usize)>,
    pub other: Vec<(String, String)>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PeriodConfig {
    pub text: String,
    pub line: usize,
    #[serde(skip)]
    pub expr: CronExpr,
}

#[derive(Clone, Debug, Serialize)]
pub struct EntryConfig {
    pub line: usize,
    pub periods: Vec<PeriodConfig>,
    /// As written; empty or `Local` means the host's zone.
    pub timezone: String,
    #[serde(skip)]
    pub tz: Option<Tz>,
    pub idle_count: At<u32>,
    pub idle_count_min: At<u32>,
    pub idle_scale_factor: At<f64>,
    pub idle_scale_factor_int: bool,
    pub idle_time: At<u32>,
    pub other: Vec<(String, String)>,
}

impl ConfigFile {
    /// Read and parse a config.toml; every error names the file and line.
    pub fn load(path: &Path) -> Result<Self, InputError> {
        let text = std::fs::read_to_string(path).map_err(|e| InputError {
            file: path.display().to_string(),
            line: 0,
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, InputError> {
        let src = Source::new(path, text);
        let doc = toml_edit::Document::parse(text).map_err(|e| {
            let line = e.span().map_or(0, |s| src.line_of(s.start));
            src.err(line, format!("not valid TOML: {}", e.message()))
        })?;
        let root = Table {
            src: &src,
            table: doc.as_table(),
            path: "",
            line: 1,
        };
        let concurrent = root.count("concurrent")?.map_or(1, |c| c.0);
        let check_interval = root.int("check_interval")?.map_or(0, |c| c.0);
        let mut runners = Vec::new();
        for t in root.tables("runners", "runners")? {
            runners.push(parse_runner(&t)?);
        }
        Ok(ConfigFile {
            file: src.file.clone(),
            concurrent,
            check_interval,
            runners,
            other: redact(root.others(&["concurrent", "check_interval", "runners"])),
        })
    }

    /// GitLab's default: 3 s when `check_interval` <= 0.
    pub fn effective_check_interval(&self) -> u32 {
        if self.check_interval <= 0 {
            3
        } else {
            self.check_interval.min(u32::MAX as i64) as u32
        }
    }

    /// The runner named `name`; with no name, the only runner (or the only machine runner).
    pub fn runner(&self, name: Option<&str>) -> Result<&Runner, InputError> {
        let err = |message: String| InputError {
            file: self.file.clone(),
            line: 0,
            message,
        };
        let names = || {
            self.runners
                .iter()
                .map(|r| format!("{:?}", r.name))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match name {
            Some(n) => {
                self.runners.iter().find(|r| r.name == n).ok_or_else(|| {
                    err(format!("no runner named {n:?} (runners here: {})", names()))
                })
            }
            None => {
                if self.runners.len() == 1 {
                    return Ok(&self.runners[0]);
                }
                let machine: Vec<&Runner> = self
                    .runners
                    .iter()
                    .filter(|r| r.machine.is_some())
                    .collect();
                if machine.len() == 1 {
                    return Ok(machine[0]);
                }
                if self.runners.is_empty() {
                    Err(err("no [[runners]] in this config".into()))
                } else {
                    Err(err(format!(
                        "several runners ({}): choose one with --runner NAME",
                        names()
                    )))
                }
            }
        }
    }

    /// The engine settings of one runner; `host_tz` stands for empty or `Local` time zones.
    pub fn settings(&self, runner: &Runner, host_tz: Tz) -> Settings {
        let m = runner.machine.as_ref();
        let idle = m.map_or(IdleSettings::default(), |m| IdleSettings {
            idle_count: m.idle_count.value,
            idle_count_min: m.idle_count_min.value,
            idle_scale_factor: m.idle_scale_factor.value,
            idle_time: m.idle_time.value as u64,
        });
        let autoscaling = m.map_or(Vec::new(), |m| {
            m.autoscaling
                .iter()
                .map(|e| AutoscalingEntry {
                    periods: e.periods.iter().map(|p| p.expr.clone()).collect(),
                    timezone: e.tz.unwrap_or(host_tz),
                    idle: IdleSettings {
                        idle_count: e.idle_count.value,
                        idle_count_min: e.idle_count_min.value,
                        idle_scale_factor: e.idle_scale_factor.value,
                        idle_time: e.idle_time.value as u64,
                    },
                })
                .collect()
        });
        Settings {
            concurrent: self.concurrent,
            check_interval: self.effective_check_interval(),
            limit: runner.limit,
            max_builds: m.map_or(0, |m| m.max_builds),
            max_growth_rate: m.map_or(0, |m| m.max_growth_rate),
            idle,
            autoscaling,
        }
    }
}

fn redact(pairs: Vec<(String, String)>) -> Vec<(String, String)> {
    pairs
        .into_iter()
        .map(|(k, v)| {
            if is_secret_key(&k) {
                (k, "[redacted]".to_string())
            } else {
                (k, v)
            }
        })
        .collect()
}

/// `[runners.docker]`: the settings scalecast's machines honour, and the rest kept as written.
fn parse_docker(d: &Table) -> Result<DockerConfig, InputError> {
    let c = DockerConfig {
        image: d.str("image")?.map_or(String::new(), |s| s.0.to_string()),
        privileged: d.bool("privileged")?.unwrap_or(false),
        disable_cache: d.bool("disable_cache")?.unwrap_or(false),
        volumes: d
            .strings("volumes")?
            .map_or(Vec::new(), |v| v.into_iter().map(|(s, _)| s).collect()),
        shm_size: d.int("shm_size")?.map_or(0, |v| v.0),
        pull_policy: match d.get("pull_policy") {
            Some((item, _)) if item.is_str() => {
                vec![
                    d.str("pull_policy")?
                        .map_or(String::new(), |s| s.0.to_string()),
                ]
            }
            _ => d
                .strings("pull_policy")?
                .map_or(Vec::new(), |v| v.into_iter().map(|(s, _)| s).collect()),
        },
        helper_image: d
            .str("helper_image")?
            .map_or(String::new(), |s| s.0.to_string()),
        network_mode: d
            .str("network_mode")?
            .map_or(String::new(), |s| s.0.to_string()),
        other: redact(d.others(&[
            "image",
            "privileged",
            "disable_cache",
            "volumes",
            "shm_size",
            "pull_policy",
            "helper_image",
            "network_mode",
        ])),
    };
    for p in &c.pull_policy {
        if !matches!(p.as_str(), "always" | "if-not-present" | "never") {
            return Err(d.src.err(
                d.line_of("pull_policy").unwrap_or(d.line),
                format!("runners.docker.pull_policy: {p:?} is not always, if-not-present or never"),
            ));
        }
    }
    Ok(c)
}

fn parse_runner(t: &Table) -> Result<Runner, InputError> {
    let name = t.str("name")?.map_or(String::new(), |s| s.0.to_string());
    let (limit, limit_line) = t.count("limit")?.unwrap_or((0, 0));
    let docker = match t.table("docker", "runners.docker")? {
        None => None,
        Some(d) => Some(parse_docker(&d)?),
    };
    let cache = match t.table("cache", "runners.cache")? {
        None => None,
        Some(c) => {
            let s3 = match c.table("s3", "runners.cache.s3")? {
                None => None,
                Some(s) => {
                    let text = |k: &str| -> Result<String, InputError> {
                        Ok(s.str(k)?.map_or(String::new(), |v| v.0.to_string()))
                    };
                    Some(S3Config {
                        server_address: text("ServerAddress")?,
                        access_key: Secret::new(text("AccessKey")?),
                        secret_key: Secret::new(text("SecretKey")?),
                        bucket_name: text("BucketName")?,
                        bucket_location: text("BucketLocation")?,
                        other: redact(s.others(&[
                            "ServerAddress",
                            "AccessKey",
                            "SecretKey",
                            "BucketName",
                            "BucketLocation",
                        ])),
                    })
                }
            };
            Some(CacheConfig {
                kind: c.str("Type")?.map_or(String::new(), |s| s.0.to_string()),
                shared: c.bool("Shared")?.unwrap_or(false),
                s3,
                other: redact(c.others(&["Type", "Shared", "s3"])),
            })
        }
    };
    let machine = match t.table("machine", "runners.machine")? {
        None => None,
        Some(m) => Some(parse_machine(&m)?),
    };
    Ok(Runner {
        name,
        line: t.line,
        url: t.str("url")?.map_or(String::new(), |s| s.0.to_string()),
        token: Secret::new(t.str("token")?.map_or(String::new(), |s| s.0.to_string())),
        executor: t
            .str("executor")?
            .map_or(String::new(), |s| s.0.to_string()),
        limit,
        limit_line,
        request_concurrency: t.count("request_concurrency")?.map_or(1, |c| c.0),
        docker,
        cache,
        machine,
        builds_dir: t
            .str("builds_dir")?
            .map_or(String::new(), |s| s.0.to_string()),
        cache_dir: t
            .str("cache_dir")?
            .map_or(String::new(), |s| s.0.to_string()),
        other: redact(t.others(&[
            "builds_dir",
            "cache_dir",
            "name",
            "url",
            "token",
            "executor",
            "limit",
            "request_concurrency",
            "docker",
            "cache",
            "machine",
        ])),
    })
}

fn at_count(t: &Table, key: &str) -> Result<At<u32>, InputError> {
    Ok(t.count(key)?
        .map_or(At { value: 0, line: 0 }, |(value, line)| At { value, line }))
}

fn at_factor(t: &Table, key: &str) -> Result<(At<f64>, bool), InputError> {
    match t.float(key)? {
        None => Ok((
            At {
                value: 0.0,
                line: 0,
            },
            false,
        )),
        Some((v, is_int, line)) => {
            if !v.is_finite() || v < 0.0 {
                return Err(t.src.err(
                    line,
                    format!("{}.{key} = {v}: expected a number >= 0", t.path),
                ));
            }
            Ok((At { value: v, line }, is_int))
        }
    }
}

const IDLE_KEYS: [&str; 4] = ["IdleCount", "IdleCountMin", "IdleScaleFactor", "IdleTime"];

fn parse_machine(m: &Table) -> Result<MachineConfig, InputError> {
    let (idle_scale_factor, idle_scale_factor_int) = at_factor(m, "IdleScaleFactor")?;
    let options = m.strings("MachineOptions")?.unwrap_or_default();
    let ec2 = Ec2Options::parse(&options).map_err(|(i, msg)| m.src.err(options[i].1, msg))?;
    let mut autoscaling = Vec::new();
    for e in m.tables("autoscaling", "runners.machine.autoscaling")? {
        autoscaling.push(parse_entry(&e)?);
    }
    let off_peak = m
        .table
        .iter()
        .filter(|(k, _)| k.to_ascii_lowercase().starts_with("offpeak"))
        .map(|(k, _)| (k.to_string(), m.line_of(k).unwrap_or(m.line)))
        .collect();
    let mut known: Vec<&str> = IDLE_KEYS.to_vec();
    known.extend([
        "MaxBuilds",
        "MaxGrowthRate",
        "MachineDriver",
        "MachineName",
        "MachineOptions",
        "autoscaling",
    ]);
    Ok(MachineConfig {
        line: m.line,
        idle_count: at_count(m, "IdleCount")?,
        idle_count_min: at_count(m, "IdleCountMin")?,
        idle_scale_factor,
        idle_scale_factor_int,
        idle_time: at_count(m, "IdleTime")?,
        max_builds: m.count("MaxBuilds")?.map_or(0, |c| c.0),
        max_growth_rate: m.count("MaxGrowthRate")?.map_or(0, |c| c.0),
        machine_driver: m
            .str("MachineDriver")?
            .map_or(String::new(), |s| s.0.to_string()),
        machine_name: m
            .str("MachineName")?
            .map_or(String::new(), |s| s.0.to_string()),
        machine_options: options
            .iter()
            .map(|(o, _)| crate::config::machine_options::redact_option(o))
            .collect(),
        ec2,
        autoscaling,
        off_peak,
        other: redact(m.others(&known)),
    })
}

fn parse_entry(e: &Table) -> Result<EntryConfig, InputError> {
    let mut periods = Vec::new();
    for (text, line) in e.strings("Periods")?.unwrap_or_default() {
        let expr = CronExpr::parse(&text).map_err(|err| e.src.err(line, err.to_string()))?;
        periods.push(PeriodConfig { text, line, expr });
    }
    let (timezone, tz) = match e.str("Timezone")? {
        None => (String::new(), None),
        Some((name, line)) => {
            let trimmed = name.trim();
            if trimmed.is_empty() || trimmed.eq_ignore_ascii_case("local") {
                (name.to_string(), None)
            } else {
                let tz: Tz = trimmed.parse().map_err(|_| {
                    e.src.err(
                        line,
                        format!("unknown time zone {name:?} (expected an IANA name like \"Europe/Berlin\", \"UTC\" or \"Local\")"),
                    )
                })?;
                (name.to_string(), Some(tz))
            }
        }
    };
    let (idle_scale_factor, idle_scale_factor_int) = at_factor(e, "IdleScaleFactor")?;
    let mut known: Vec<&str> = IDLE_KEYS.to_vec();
    known.extend(["Periods", "Timezone"]);
    Ok(EntryConfig {
        line: e.line,
        periods,
        timezone,
        tz,
        idle_count: at_count(e, "IdleCount")?,
        idle_count_min: at_count(e, "IdleCountMin")?,
        idle_scale_factor,
        idle_scale_factor_int,
        idle_time: at_count(e, "IdleTime")?,
        other: redact(e.others(&known)),
    })
}
