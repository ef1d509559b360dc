//! `scenario.toml`: which config and runner, which trace, the seed and window, the world model,
//! and the variants to compare. Paths are relative to the scenario file. Unknown keys are
//! errors (a typo must not silently change a forecast).

use crate::config::overrides::{self, SetValue};
use crate::config::toml_util::{InputError, Source};
use crate::config::{ConfigFile, Runner};
use crate::core::{EngineKind, Settings, Time};
use crate::rng::Rng;
use crate::trace::synth::SynthParams;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// Seconds from `create_machine` to `machine_ready`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Boot {
    Fixed(f64),
    LogNormal { median: f64, p95: f64 },
    Samples(Vec<f64>),
}

impl Boot {
    pub fn draw_ms(&self, rng: &mut Rng) -> i64 {
        self.sampler().draw_ms(rng)
    }

    /// For many draws: the distribution's parameters worked out once.
    pub fn sampler(&self) -> BootSampler {
        match self {
            Boot::Fixed(s) => BootSampler::Fixed(*s),
            Boot::LogNormal { median, p95 } => {
                BootSampler::LogNormal(crate::rng::LogNormal::new(*median, *p95))
            }
            Boot::Samples(v) => BootSampler::Samples(v.as_slice().into()),
        }
    }
}

/// [`Boot`] ready to draw from: each draw equals [`Boot::draw_ms`]'s.
#[derive(Clone, Debug)]
pub enum BootSampler {
    Fixed(f64),
    LogNormal(crate::rng::LogNormal),
    Samples(std::sync::Arc<[f64]>),
}

impl BootSampler {
    pub fn draw_ms(&self, rng: &mut Rng) -> i64 {
        let s = match self {
            BootSampler::Fixed(s) => *s,
            BootSampler::LogNormal(d) => d.draw(rng),
            BootSampler::Samples(v) if v.is_empty() => 0.0,
            BootSampler::Samples(v) => v[rng.below(v.len() as u64) as usize],
        };
        (s.max(0.0) * 1000.0).round() as i64
    }
}

/// What a scenario may set about the world; `None` means "from the config, or the tables".
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorldOverrides {
    pub instance_type: Option<String>,
    pub region: Option<String>,
    pub zone: Option<String>,
    pub spot: Option<bool>,
    pub boot: Option<Boot>,
    pub price_per_hour: Option<f64>,
    pub spot_price_fraction: Option<f64>,
    pub spot_price_history: Option<Vec<(Time, f64)>>,
    pub interruptions_per_hour: Option<f64>,
    pub create_failure_probability: Option<f64>,
    pub create_retry_seconds: Option<f64>,
    pub remove_seconds: Option<f64>,
    pub root_size_gb: Option<f64>,
    pub ebs_usd_per_gb_month: Option<f64>,
    pub pickup_seconds: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    runner: RawRunner,
    trace: RawTrace,
    #[serde(default)]
    sim: RawSim,
    #[serde(default)]
    machine: RawMachine,
    #[serde(default)]
    variant: Vec<Spanned<RawVariant>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRunner {
    config: Spanned<String>,
    name: Option<Spanned<String>>,
    engine: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrace {
    path: Option<Spanned<String>>,
    /// Keep only this runner's jobs: its id or its description or name.
    runner: Option<Spanned<toml::Value>>,
    journal: Option<Spanned<String>>,
    synthetic: Option<Spanned<RawSynth>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSynth {
    days: u32,
    jobs_per_day: f64,
    seed: u64,
    start: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSim {
    seed: Option<u64>,
    start: Option<Spanned<String>>,
    end: Option<Spanned<String>>,
    timezone: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawBoot {
    Fixed(f64),
    LogNormal { median: f64, p95: f64 },
    Samples { samples: Vec<f64> },
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMachine {
    boot_seconds: Option<Spanned<RawBoot>>,
    price_per_hour: Option<Spanned<f64>>,
    spot_price_fraction: Option<Spanned<f64>>,
    spot_price_history: Option<Spanned<String>>,
    interruptions_per_hour: Option<Spanned<f64>>,
    create_failure_probability: Option<Spanned<f64>>,
    create_retry_seconds: Option<Spanned<f64>>,
    remove_seconds: Option<Spanned<f64>>,
    pickup_seconds: Option<Spanned<f64>>,
    instance_type: Option<String>,
    region: Option<String>,
    zone: Option<String>,
    spot: Option<bool>,
    root_size_gb: Option<Spanned<f64>>,
    ebs_usd_per_gb_month: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariant {
    name: String,
    #[serde(default)]
    set: BTreeMap<String, toml::Value>,
}

/// Where the jobs come from.
#[derive(Clone, Debug, PartialEq)]
pub enum TraceSpec {
    File(PathBuf),
    /// A scalecast journal: the jobs it recorded become arrivals.
    Journal(PathBuf),
    Synthetic(SynthParams),
}

/// One variant to simulate: the baseline (the config as it stands) or a named change.
#[derive(Clone, Debug)]
pub struct Variant {
    pub name: String,
    pub settings: Settings,
    pub engine: EngineKind,
    /// The overrides that made it, as written.
    pub set: Vec<(String, SetValue)>,
}

#[derive(Clone, Debug)]
pub struct Scenario {
    pub path: PathBuf,
    pub config: ConfigFile,
    pub runner: Runner,
    pub trace: TraceSpec,
    /// Which jobs of a trace file to keep.
    pub trace_filter: crate::trace::TraceFilter,
    pub seed: u64,
    pub start: Option<Time>,
    pub end: Option<Time>,
    pub tz: Tz,
    pub world: WorldOverrides,
    /// A spot price history file, read by the simulator.
    pub spot_price_history: Option<PathBuf>,
    /// Baseline first.
    pub variants: Vec<Variant>,
}

fn positive(
    src: &Source,
    v: &Option<Spanned<f64>>,
    what: &str,
    max: f64,
) -> Result<Option<f64>, InputError> {
    match v {
        None => Ok(None),
        Some(s) => {
            let x = *s.get_ref();
            if x.is_finite() && x >= 0.0 && x <= max {
                Ok(Some(x))
            } else {
                Err(src.err(
                    src.line_of(s.span().start),
                    format!("machine.{what} = {x}: expected a number from 0 to {max}"),
                ))
            }
        }
    }
}

impl Scenario {
    /// Read a scenario and everything it names (config, runner); `sets` are command-line
    /// overrides applied to every variant before the variant's own.
    pub fn load(path: &Path, sets: &[(String, SetValue)], host_tz: Tz) -> Result<Self, InputError> {
        let text = std::fs::read_to_string(path).map_err(|e| InputError {
            file: path.display().to_string(),
            line: 0,
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(path, &text, sets, host_tz)
    }

    pub fn parse(
        path: &Path,
        text: &str,
        sets: &[(String, SetValue)],
        host_tz: Tz,
    ) -> Result<Self, InputError> {
        let src = Source::new(path, text);
        let raw: RawScenario = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(0, |s| src.line_of(s.start));
            src.err(line, e.message().trim().to_string())
        })?;
        let at = |span: std::ops::Range<usize>| src.line_of(span.start);
        let dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
        let rel = |p: &str| dir.join(p);

        let config_path = rel(raw.runner.config.get_ref());
        let config = ConfigFile::load(&config_path)?;
        let runner = config
            .runner(raw.runner.name.as_ref().map(|n| n.get_ref().as_str()))
            .map_err(|e| match &raw.runner.name {
                Some(n) => src.err(at(n.span()), e.message),
                None => src.err(at(raw.runner.config.span()), e.message),
            })?
            .clone();
        let mut engine = EngineKind::Scalecast;
        if let Some(e) = &raw.runner.engine {
            engine = e
                .get_ref()
                .parse()
                .map_err(|m: crate::core::UnknownEngine| {
                    src.err(at(e.span()), format!("runner.engine: {m}"))
                })?;
        }
        let time = |v: &Option<Spanned<String>>, what: &str| -> Result<Option<Time>, InputError> {
            match v {
                None => Ok(None),
                Some(s) => Time::parse_rfc3339(s.get_ref())
                    .map(Some)
                    .map_err(|m| src.err(at(s.span()), format!("{what}: {m}"))),
            }
        };
        let trace = match (&raw.trace.path, &raw.trace.synthetic, &raw.trace.journal) {
            (Some(p), None, None) => TraceSpec::File(rel(p.get_ref())),
            (None, None, Some(j)) => TraceSpec::Journal(rel(j.get_ref())),
            (None, Some(s), None) => {
                let line = at(s.span());
                let r = s.get_ref();
                if let Err(m) = SynthParams::check(r.days, r.jobs_per_day) {
                    return Err(src.err(line, format!("trace.synthetic: {m}")));
                }
                TraceSpec::Synthetic(SynthParams {
                    days: r.days,
                    jobs_per_day: r.jobs_per_day,
                    seed: r.seed,
                    start: time(&r.start, "trace.synthetic.start")?
                        .unwrap_or_else(SynthParams::default_start),
                })
            }
            _ => {
                return Err(src.err(
                    0,
                    "[trace] needs exactly one of path = \"...\", journal = \"DIR\" or [trace.synthetic]",
                ));
            }
        };
        let start = time(&raw.sim.start, "sim.start")?;
        let end = time(&raw.sim.end, "sim.end")?;
        if let (Some(s), Some(e), Some(es)) = (start, end, &raw.sim.end)
            && e <= s
        {
            return Err(src.err(
                at(es.span()),
                format!("sim.end ({e}) is not after sim.start ({s})"),
            ));
        }
        let tz = match &raw.sim.timezone {
            None => Tz::UTC,
            Some(t) if t.get_ref().is_empty() || t.get_ref().eq_ignore_ascii_case("local") => {
                host_tz
            }
            Some(t) => t.get_ref().parse().map_err(|_| {
                src.err(
                    at(t.span()),
                    format!("sim.timezone: unknown time zone {:?}", t.get_ref()),
                )
            })?,
        };

        let m = &raw.machine;
        let boot = match &m.boot_seconds {
            None => None,
            Some(b) => {
                let line = at(b.span());
                Some(match b.get_ref() {
                    RawBoot::Fixed(s) if *s >= 0.0 && s.is_finite() => Boot::Fixed(*s),
                    RawBoot::LogNormal { median, p95 } if *median > 0.0 && p95 >= median => {
                        Boot::LogNormal {
                            median: *median,
                            p95: *p95,
                        }
                    }
                    RawBoot::Samples { samples }
                        if !samples.is_empty()
                            && samples.iter().all(|s| *s >= 0.0 && s.is_finite()) =>
                    {
                        Boot::Samples(samples.clone())
                    }
                    _ => {
                        return Err(src.err(
                            line,
                            "machine.boot_seconds: expected seconds >= 0, { median, p95 } with p95 >= median > 0, or { samples = [...] } (not empty)",
                        ));
                    }
                })
            }
        };
        let world = WorldOverrides {
            instance_type: m.instance_type.clone(),
            region: m.region.clone(),
            zone: m.zone.clone(),
            spot: m.spot,
            boot,
            price_per_hour: positive(&src, &m.price_per_hour, "price_per_hour", 1e6)?,
            spot_price_fraction: positive(
                &src,
                &m.spot_price_fraction,
                "spot_price_fraction",
                10.0,
            )?,
            spot_price_history: None,
            interruptions_per_hour: positive(
                &src,
                &m.interruptions_per_hour,
                "interruptions_per_hour",
                1e3,
            )?,
            create_failure_probability: positive(
                &src,
                &m.create_failure_probability,
                "create_failure_probability",
                1.0,
            )?,
            create_retry_seconds: positive(
                &src,
                &m.create_retry_seconds,
                "create_retry_seconds",
                1e7,
            )?,
            remove_seconds: positive(&src, &m.remove_seconds, "remove_seconds", 1e7)?,
            pickup_seconds: positive(&src, &m.pickup_seconds, "pickup_seconds", 86_400.0)?,
            root_size_gb: positive(&src, &m.root_size_gb, "root_size_gb", 1e6)?,
            ebs_usd_per_gb_month: positive(
                &src,
                &m.ebs_usd_per_gb_month,
                "ebs_usd_per_gb_month",
                1e3,
            )?,
        };
        if world.create_failure_probability == Some(1.0) {
            return Err(src.err(
                0,
                "machine.create_failure_probability = 1: no machine could ever start",
            ));
        }
        let spot_price_history = m.spot_price_history.as_ref().map(|p| rel(p.get_ref()));

        let mut base = config.settings(&runner, host_tz);
        let mut base_engine = engine;
        for (k, v) in sets {
            overrides::apply(&mut base, &mut base_engine, k, v).map_err(|e| InputError {
                file: "--set".into(),
                line: 0,
                message: e.to_string(),
            })?;
        }
        let mut variants = vec![Variant {
            name: "baseline".into(),
            settings: base.clone(),
            engine: base_engine,
            set: sets.to_vec(),
        }];
        for v in &raw.variant {
            let line = at(v.span());
            let r = v.get_ref();
            if variants.iter().any(|x| x.name == r.name) {
                return Err(src.err(
                    line,
                    format!(
                        "variant {:?} is named twice (baseline is the config as it stands)",
                        r.name
                    ),
                ));
            }
            let mut s = base.clone();
            let mut e = base_engine;
            let mut set = sets.to_vec();
            for (k, raw_v) in &r.set {
                let val = SetValue::from_toml(raw_v).ok_or_else(|| {
                    src.err(
                        line,
                        format!("variant {:?}: {k} must be a number or a string", r.name),
                    )
                })?;
                overrides::apply(&mut s, &mut e, k, &val)
                    .map_err(|m| src.err(line, format!("variant {:?}: {m}", r.name)))?;
                set.push((k.clone(), val));
            }
            variants.push(Variant {
                name: r.name.clone(),
                settings: s,
                engine: e,
                set,
            });
        }
        let trace_filter = crate::trace::TraceFilter {
            runner: match &raw.trace.runner {
                None => None,
                Some(v) => match v.get_ref() {
                    toml::Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
                    toml::Value::Integer(i) if *i >= 0 => Some(i.to_string()),
                    _ => {
                        return Err(src.err(
                            at(v.span()),
                            "trace.runner: a runner id (a whole number) or its description",
                        ));
                    }
                },
            },
        };
        if trace_filter.runner.is_some() && !matches!(trace, TraceSpec::File(_)) {
            return Err(src.err(
                raw.trace.runner.as_ref().map_or(0, |v| at(v.span())),
                "trace.runner filters a trace file (path = ...)",
            ));
        }
        Ok(Scenario {
            path: path.to_path_buf(),
            config,
            runner,
            trace,
            trace_filter,
            seed: raw.sim.seed.unwrap_or(0),
            start,
            end,
            tz,
            world,
            spot_price_history,
            variants,
        })
    }
}
