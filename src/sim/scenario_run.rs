//! Running a scenario: resolve the world model, check the trace once, then simulate each
//! variant over the same arrivals with the same seed.

use crate::config::scenario::{Scenario, TraceSpec, Variant};
use crate::sim::price_history;
use crate::sim::run::{Observer, SimConfig, SimError, simulate_logged};
use crate::sim::{VariantResult, WorldModel};
use crate::trace::synth::Generator;
use crate::trace::{Arrivals, TraceError, TraceFile};

/// A scenario ready to run: the world resolved, the trace checked.
pub struct Prepared {
    pub world: WorldModel,
    trace: PreparedTrace,
    /// The window against the trace, checked before any variant runs.
    pub survey: crate::sim::window::Survey,
    /// Split every variant's cost by a key of the trace ([`Prepared::attribute`]).
    pub attribution: Option<crate::sim::attribution::AttributionSpec>,
}

enum PreparedTrace {
    File(TraceFile),
    /// The jobs a journal recorded, and the journal (its charges name who each job was for).
    Jobs(Vec<crate::trace::TraceJob>, std::path::PathBuf),
    Synthetic(crate::trace::synth::SynthParams),
}

/// Why a scenario cannot run: its inputs (exit 2).
#[derive(Debug)]
pub enum PrepareError {
    Trace(TraceError),
    World(String),
    /// The window would give a meaningless answer (the scenario's path and why).
    Window(String),
}

impl std::fmt::Display for PrepareError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PrepareError::Trace(e) => write!(f, "{e}"),
            PrepareError::World(m) => write!(f, "{m}"),
            PrepareError::Window(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for PrepareError {}

pub fn prepare(sc: &Scenario) -> Result<Prepared, PrepareError> {
    let ec2 = sc
        .runner
        .machine
        .as_ref()
        .map(|m| m.ec2.clone())
        .unwrap_or_default();
    let mut o = sc.world.clone();
    let instance_type = o.instance_type.clone().unwrap_or(ec2.instance_type.clone());
    let region = o.region.clone().unwrap_or(ec2.region.clone());
    if let Some(path) = &sc.spot_price_history {
        let points = price_history::read(path).map_err(PrepareError::Trace)?;
        let zone = format!("{region}{}", o.zone.clone().unwrap_or(ec2.zone.clone()));
        let chosen = price_history::select(&points, &instance_type, &zone);
        if chosen.is_empty() {
            return Err(PrepareError::World(format!(
                "{}: no price for {instance_type}",
                path.display()
            )));
        }
        o.spot_price_history = Some(chosen);
    }
    let world = WorldModel::resolve(
        &ec2.instance_type,
        &ec2.region,
        ec2.request_spot_instance,
        ec2.root_size as f64,
        &o,
    )
    .map_err(|m| PrepareError::World(format!("{}: {m}", sc.path.display())))?;
    let mut world = world;
    if sc.runner.executor != "docker+machine" {
        world.notes.push(format!(
            "runner {:?} uses executor {:?}: the forecast models it as docker+machine",
            sc.runner.name, sc.runner.executor
        ));
    }
    let trace = match &sc.trace {
        TraceSpec::File(p) => PreparedTrace::File(
            TraceFile::scan_filtered(p, &sc.trace_filter).map_err(PrepareError::Trace)?,
        ),
        TraceSpec::Synthetic(p) => PreparedTrace::Synthetic(p.clone()),
        TraceSpec::Journal(dir) => PreparedTrace::Jobs(
            crate::journal::trace::arrivals(dir)
                .map_err(|e| PrepareError::World(format!("{}: {e}", dir.display())))?,
            dir.clone(),
        ),
    };
    let mut p = Prepared {
        world,
        trace,
        survey: Default::default(),
        attribution: None,
    };
    let arrivals = p.arrivals().map_err(PrepareError::Trace)?;
    p.survey = crate::sim::window::survey(arrivals, sc.start, sc.end, sc.tz)
        .map_err(PrepareError::Trace)?;
    p.survey
        .check(sc.start, sc.end)
        .map_err(|e| PrepareError::Window(format!("{}: {e}", sc.path.display())))?;
    Ok(p)
}

impl Prepared {
    /// Read the trace's `kind` keys (a second pass over the file) so that every run splits
    /// its cost by them.
    pub fn attribute(
        &mut self,
        kind: crate::trace::keys::KeyKind,
        rule: crate::sim::attribution::Rule,
    ) -> Result<(), PrepareError> {
        let keys = match &self.trace {
            PreparedTrace::File(f) => {
                crate::trace::keys::read_keys(&f.path, kind).map_err(PrepareError::Trace)?
            }
            PreparedTrace::Synthetic(_) => {
                return Err(PrepareError::World(format!(
                    "a synthetic trace has no {kind}: a breakdown needs a trace file"
                )));
            }
            PreparedTrace::Jobs(_, dir) => crate::journal::costs::keys(dir, kind)
                .map_err(|e| PrepareError::World(format!("{}: {e}", dir.display())))?,
        };
        self.attribution = Some(crate::sim::attribution::AttributionSpec {
            keys: std::sync::Arc::new(keys),
            rule,
        });
        Ok(())
    }

    /// A fresh stream of the arrivals, in time order.
    pub fn arrivals(&self) -> Result<Arrivals, TraceError> {
        match &self.trace {
            PreparedTrace::File(f) => f.arrivals(),
            PreparedTrace::Synthetic(p) => {
                Ok(Arrivals::Synthetic(Box::new(Generator::new(p.clone()))))
            }
            PreparedTrace::Jobs(v, _) => Ok(Arrivals::Sorted(v.clone().into_iter())),
        }
    }

    /// Whether the trace comes from a real fleet (a file or a journal), which may record the
    /// wait each job had; a synthetic one records none.
    pub fn records_waits(&self) -> bool {
        !matches!(self.trace, PreparedTrace::Synthetic(_))
    }

    /// The last instant a job of the trace ends, when known without generating it.
    pub fn trace_end(&self) -> Option<crate::core::Time> {
        match &self.trace {
            PreparedTrace::File(f) => f.summary.last_end,
            PreparedTrace::Synthetic(p) => Some(p.start.plus_secs(p.days as i64 * 86_400)),
            PreparedTrace::Jobs(v, _) => v.iter().map(|j| j.end()).max(),
        }
    }

    pub fn trace_start(&self) -> Option<crate::core::Time> {
        match &self.trace {
            PreparedTrace::File(f) => f.summary.first_arrival,
            PreparedTrace::Synthetic(p) => Some(p.start),
            PreparedTrace::Jobs(v, _) => v.first().map(|j| j.arrival),
        }
    }
}

/// `f(i, variant)` for every variant of `sc`, on up to `threads` threads at once; the results
/// come back in the variants' order, so the number of threads never changes them (each
/// variant's run depends only on the scenario and its seed).
pub fn for_each_variant<T: Send>(
    sc: &Scenario,
    threads: usize,
    f: impl Fn(usize, &Variant) -> T + Sync,
) -> Vec<T> {
    parallel_map(&sc.variants, threads, f)
}

/// `f(i, item)` for every item, on up to `threads` threads at once, the results in the items'
/// order whatever the number of threads.
pub fn parallel_map<I: Sync, T: Send>(
    items: &[I],
    threads: usize,
    f: impl Fn(usize, &I) -> T + Sync,
) -> Vec<T> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let n = items.len();
    if threads <= 1 || n <= 1 {
        // No thread to spawn (nor its allocator arena).
        return items.iter().enumerate().map(|(i, v)| f(i, v)).collect();
    }
    let next = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<T>>> = Mutex::new((0..n).map(|_| None).collect());
    let worker = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= n {
                break;
            }
            let r = f(i, &items[i]);
            slots.lock().expect("no panic while held")[i] = Some(r);
        }
    };
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, n.max(1)) {
            s.spawn(worker);
        }
    });
    slots
        .into_inner()
        .expect("threads joined")
        .into_iter()
        .map(|r| r.expect("every item ran"))
        .collect()
}

/// Simulate one variant of a scenario.
pub fn run_variant(
    sc: &Scenario,
    prepared: &Prepared,
    variant: &Variant,
    obs: &mut dyn Observer,
    progress: &mut dyn FnMut(crate::core::Time),
) -> Result<VariantResult, SimError> {
    run_variant_logged(sc, prepared, variant, obs, progress, crate::drive::NoLog)
}

/// Simulate one variant of a scenario, every event written to `log` first (a journal).
pub fn run_variant_logged<L: crate::drive::EventLog>(
    sc: &Scenario,
    prepared: &Prepared,
    variant: &Variant,
    obs: &mut dyn Observer,
    progress: &mut dyn FnMut(crate::core::Time),
    log: L,
) -> Result<VariantResult, SimError> {
    run_variant_in(sc, prepared, variant, &prepared.world, obs, progress, log)
}

/// Simulate one variant of a scenario in another world (a calibration's candidate).
pub fn run_variant_in<L: crate::drive::EventLog>(
    sc: &Scenario,
    prepared: &Prepared,
    variant: &Variant,
    world: &WorldModel,
    obs: &mut dyn Observer,
    progress: &mut dyn FnMut(crate::core::Time),
    log: L,
) -> Result<VariantResult, SimError> {
    let cfg = SimConfig {
        name: variant.name.clone(),
        settings: variant.settings.clone(),
        engine: variant.engine,
        world: world.clone(),
        seed: sc.seed,
        start: sc.start,
        end: sc.end,
        tz: sc.tz,
        attribution: prepared.attribution.clone(),
    };
    let mut arrivals = prepared.arrivals()?;
    let mut r = simulate_logged(&cfg, &mut arrivals, obs, progress, log)?;
    r.changes = variant
        .set
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    r.window.longest_gap = prepared.survey.longest_gap();
    r.observed = prepared.survey.observed.clone();
    let name = r.name.clone();
    r.notes.extend(
        prepared
            .survey
            .notes()
            .into_iter()
            .map(|n| format!("{name}: {n}")),
    );
    Ok(r)
}
