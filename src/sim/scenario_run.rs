//! Running a scenario: resolve the world model, check the trace once, then simulate each
//! variant over the same arrivals with the same seed.

use crate::config::scenario::{Scenario, TraceSpec, Variant};
use crate::sim::attribution::{AttributionSpec, Rule};
use crate::sim::books::Keeper;
use crate::sim::draws::{Ahead, MachineDraws};
use crate::sim::price_history;
use crate::sim::run::{Helpers, Observer, SimConfig, SimError, simulate_keeping};
use crate::sim::series::TraceSpan;
use crate::sim::window::Surveyor;
use crate::sim::{VariantResult, WorldModel};
use crate::trace::keys::KeyKind;
use crate::trace::synth::Generator;
use crate::trace::{Arrivals, TraceError, TraceFile, TraceJob, TraceResult};

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
    /// The jobs a journal recorded.
    Jobs(Vec<crate::trace::TraceJob>),
    Synthetic(crate::trace::synth::SynthParams),
    /// Jobs handed over as they are read ([`prepare_overlapped`]), taken once; the trace's
    /// span is told when the file is read. The run over them may have the reading thread keep
    /// its books and make its machine draws ahead (taken once too).
    Handed(
        std::sync::Mutex<Option<Handed>>,
        TraceSpan,
        std::sync::Mutex<Option<Helpers>>,
    ),
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
    let world = resolve_world(sc)?;
    let trace = match &sc.trace {
        TraceSpec::File(p) => PreparedTrace::File(
            TraceFile::scan_filtered(p, &sc.trace_filter).map_err(PrepareError::Trace)?,
        ),
        TraceSpec::Synthetic(p) => PreparedTrace::Synthetic(p.clone()),
        TraceSpec::Journal(dir) => PreparedTrace::Jobs(
            crate::journal::trace::arrivals(dir)
                .map_err(|e| PrepareError::World(format!("{}: {e}", dir.display())))?,
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
    p.check_window(sc)?;
    Ok(p)
}

/// Jobs per hand-over from the reading thread to the run (64 KiB: below the allocator's
/// threshold for a mapping of its own, so chunks come from the heap, not from the kernel).
const CHUNK: usize = 2048;
/// Jobs in the first hand-over: the run starts as soon as these are read.
const FIRST_CHUNK: usize = 256;
/// Chunks read ahead of the run at most (memory stays flat however long the trace).
const CHUNKS_AHEAD: usize = 32;

/// Jobs read between two looks at the run's books ([`Keeper::serve`]).
const KEEP_EVERY: usize = 256;

/// The reading thread's help to the run: keep its books, make its machine draws ahead.
struct Helping {
    keeper: Keeper,
    draws: Ahead,
}

impl Helping {
    /// Make draws if few are ready, then apply what came of the books, waiting at most `wait`.
    fn serve(&mut self, wait: std::time::Duration) {
        self.draws.serve();
        self.keeper.serve(wait);
    }

    /// Whether the run's books went back (or the run went away).
    fn over(&self) -> bool {
        self.keeper.over()
    }
}

/// Hand `c` to the run; while the run has enough jobs ahead, keep its books meanwhile. A run
/// that stopped (an engine error) takes no more: `tx` goes.
fn hand_over(
    tx: &mut Option<std::sync::mpsc::SyncSender<Chunk>>,
    mut c: Chunk,
    keeper: &mut Helping,
) {
    use std::sync::mpsc::TrySendError;
    let Some(t) = tx.as_ref() else {
        return;
    };
    loop {
        if keeper.over() {
            if t.send(c).is_err() {
                *tx = None;
            }
            return;
        }
        match t.try_send(c) {
            Ok(()) => return,
            Err(TrySendError::Full(back)) => {
                c = back;
                keeper.serve(std::time::Duration::from_micros(500));
            }
            Err(TrySendError::Disconnected(_)) => {
                *tx = None;
                return;
            }
        }
    }
}

enum Chunk {
    Jobs(Vec<TraceJob>),
    /// The file is not in time order (or not readable): the run stops, its result unused.
    Abandon,
}

/// The jobs the reading thread hands over, in the file's order.
struct Handed {
    rx: std::sync::mpsc::Receiver<Chunk>,
    jobs: std::vec::IntoIter<TraceJob>,
}

impl Iterator for Handed {
    type Item = TraceResult<TraceJob>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(j) = self.jobs.next() {
                return Some(Ok(j));
            }
            match self.rx.recv() {
                Ok(Chunk::Jobs(v)) => self.jobs = v.into_iter(),
                Ok(Chunk::Abandon) => {
                    return Some(Err(TraceError {
                        file: String::new(),
                        place: String::new(),
                        message: "the run over the trace as read was abandoned".into(),
                    }));
                }
                // The whole file was read and handed over.
                Err(_) => return None,
            }
        }
    }
}

/// Trace files up to this size may be read while a run that draws a report's series starts
/// (the series keep what they record until the trace's span is told: about 120 bytes a job
/// at most, so about 30 MB for a file of this size; larger files are read first).
const LATE_SERIES_MAX_BYTES: u64 = 32 << 20;

/// Whether a run that records a report's series ([`crate::sim::series::Recorder::late`]) may
/// start while the scenario's trace is read: a file small enough that what the series keep
/// waiting stays small.
pub fn series_may_wait_for_the_trace(sc: &Scenario) -> bool {
    match &sc.trace {
        TraceSpec::File(p) => std::fs::metadata(p).is_ok_and(|m| m.len() <= LATE_SERIES_MAX_BYTES),
        _ => false,
    }
}

/// [`prepare`] (with `attribution`), with `first` run over the trace's
/// jobs while the trace is being read and checked, on a thread of its own: a one-variant
/// forecast costs about the longer of reading and simulating, not their sum.
///
/// `first` is handed a [`Prepared`] whose arrivals come as they are read, whose survey is
/// still empty and which knows neither the trace's start nor its end; its result comes back
/// only if the file was read whole, in time order, and the window passed its check. Otherwise
/// (an unsorted file: the arrivals differ from the file's order) it is dropped and `None`
/// comes back: run the variant again on the [`Prepared`]. Apply [`Prepared::complete`] to a
/// result that comes back, for what the survey adds. Results equal a run after [`prepare`].
///
/// The checked jobs are kept in memory for the other variants only when the scenario has
/// others: a one-variant forecast holds a few chunks of jobs at a time, however long the
/// trace (a run again, after a fallback, reads the file again).
pub fn prepare_overlapped<T: Send>(
    sc: &Scenario,
    attribution: Option<AttributionSpec>,
    first: impl FnOnce(&Prepared) -> T + Send,
) -> Result<(Prepared, Option<T>), PrepareError> {
    let TraceSpec::File(path) = &sc.trace else {
        let mut p = prepare(sc)?;
        p.attribution = attribution;
        return Ok((p, None));
    };
    let world = resolve_world(sc)?;
    let (tx, rx) = std::sync::mpsc::sync_channel(CHUNKS_AHEAD);
    let span = TraceSpan::default();
    let (books, keeper) = crate::sim::books::pair();
    let draws = Ahead::new(MachineDraws::new(sc.seed, &world));
    let mut keeper = Helping {
        keeper,
        draws: draws.clone(),
    };
    let head = Prepared {
        world: world.clone(),
        trace: PreparedTrace::Handed(
            std::sync::Mutex::new(Some(Handed {
                rx,
                jobs: Vec::new().into_iter(),
            })),
            span.clone(),
            std::sync::Mutex::new(Some(Helpers {
                books: Some(books),
                draws: Some(draws),
            })),
        ),
        survey: Default::default(),
        attribution: attribution.clone(),
    };
    let (scanned, surveyed, ran) = std::thread::scope(|s| {
        let runner = s.spawn(|| first(&head));
        let mut surveyor = Surveyor::new(sc.start, sc.end, sc.tz);
        let mut tx = Some(tx);
        let mut chunk = Vec::with_capacity(CHUNK);
        let mut last = None;
        let mut sorted = true;
        let mut handed = false;
        let others = sc.variants.len() > 1;
        let scanned = TraceFile::scan_each(path, &sc.trace_filter, others, &mut |j| {
            if !sorted {
                return;
            }
            if last.is_some_and(|l| j.arrival < l) {
                sorted = false;
                if let Some(tx) = tx.take() {
                    let _ = tx.send(Chunk::Abandon);
                }
                return;
            }
            last = Some(j.arrival);
            surveyor.add(j);
            chunk.push(*j);
            if chunk.len().is_multiple_of(KEEP_EVERY) {
                keeper.serve(std::time::Duration::ZERO);
            }
            if chunk.len() == CHUNK || (!handed && chunk.len() == FIRST_CHUNK) {
                handed = true;
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                hand_over(&mut tx, Chunk::Jobs(full), &mut keeper);
            }
        });
        // Told before the last jobs are handed over, so the run has it when they end.
        if let Ok(f) = &scanned
            && sorted
        {
            let _ = span.set((f.summary.first_arrival, f.summary.last_end));
        }
        if tx.is_some() {
            let last = match &scanned {
                Ok(_) if sorted => Chunk::Jobs(std::mem::take(&mut chunk)),
                _ => Chunk::Abandon,
            };
            hand_over(&mut tx, last, &mut keeper);
            // Read whole: what is left is keeping the run's books, until they go back.
            drop(tx.take());
        }
        while !keeper.over() && !runner.is_finished() {
            keeper.serve(std::time::Duration::from_millis(1));
        }
        let ran = runner
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        (scanned, sorted.then(|| surveyor.finish()), ran)
    });
    let file = scanned.map_err(PrepareError::Trace)?;
    let mut p = Prepared {
        world,
        trace: PreparedTrace::File(file),
        survey: Default::default(),
        attribution,
    };
    let ran = match surveyed {
        Some(survey) => {
            p.survey = survey;
            Some(ran)
        }
        None => {
            let arrivals = p.arrivals().map_err(PrepareError::Trace)?;
            p.survey = crate::sim::window::survey(arrivals, sc.start, sc.end, sc.tz)
                .map_err(PrepareError::Trace)?;
            None
        }
    };
    p.check_window(sc)?;
    Ok((p, ran))
}

/// The world model of a scenario: its machine, prices and spot market.
fn resolve_world(sc: &Scenario) -> Result<WorldModel, PrepareError> {
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
    Ok(world)
}

impl Prepared {
    /// Refuse a window whose forecast would mean nothing (after the survey).
    fn check_window(&self, sc: &Scenario) -> Result<(), PrepareError> {
        self.survey
            .check(sc.start, sc.end)
            .map_err(|e| PrepareError::Window(format!("{}: {e}", sc.path.display())))
    }

    /// What the survey of the trace adds to a variant's result: the longest quiet stretch,
    /// the waits the trace recorded, and the notes on them.
    pub fn complete(&self, r: &mut VariantResult) {
        r.window.longest_gap = self.survey.longest_gap();
        r.observed = self.survey.observed.clone();
        let name = r.name.clone();
        r.notes.extend(
            self.survey
                .notes()
                .into_iter()
                .map(|n| format!("{name}: {n}")),
        );
    }

    /// How many of a trace file's checked jobs are kept in memory for the runs (None: they
    /// read the file, or the trace is not a file).
    pub fn jobs_in_memory(&self) -> Option<usize> {
        match &self.trace {
            PreparedTrace::File(f) => f.jobs_in_memory(),
            _ => None,
        }
    }

    /// A fresh stream of the arrivals, in time order.
    /// What the reading thread does for the run over jobs handed over as they are read (keep
    /// its books, make its machine draws ahead); taken once (nothing for any other trace).
    pub fn take_helpers(&self) -> Helpers {
        match &self.trace {
            PreparedTrace::Handed(_, _, h) => {
                h.lock().ok().and_then(|mut h| h.take()).unwrap_or_default()
            }
            _ => Helpers::default(),
        }
    }

    pub fn arrivals(&self) -> Result<Arrivals, TraceError> {
        match &self.trace {
            PreparedTrace::File(f) => f.arrivals(),
            PreparedTrace::Synthetic(p) => {
                Ok(Arrivals::Synthetic(Box::new(Generator::new(p.clone()))))
            }
            PreparedTrace::Jobs(v) => Ok(Arrivals::Sorted(v.clone().into_iter())),
            PreparedTrace::Handed(h, _, _) => h
                .lock()
                .map_err(|_| handed_twice())?
                .take()
                .map(|h| Arrivals::Handed(Box::new(h)))
                .ok_or_else(handed_twice),
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
            PreparedTrace::Jobs(v) => v.iter().map(|j| j.end()).max(),
            PreparedTrace::Handed(..) => None,
        }
    }

    /// While the trace is still being read ([`prepare_overlapped`]): where its first arrival
    /// and last end ([`Prepared::trace_start`], [`Prepared::trace_end`]) are told once the
    /// whole file is read in time order. None when they are known now.
    pub fn span_when_read(&self) -> Option<TraceSpan> {
        match &self.trace {
            PreparedTrace::Handed(_, span, _) => Some(span.clone()),
            _ => None,
        }
    }

    pub fn trace_start(&self) -> Option<crate::core::Time> {
        match &self.trace {
            PreparedTrace::File(f) => f.summary.first_arrival,
            PreparedTrace::Synthetic(p) => Some(p.start),
            PreparedTrace::Jobs(v) => v.first().map(|j| j.arrival),
            PreparedTrace::Handed(..) => None,
        }
    }
}

fn handed_twice() -> TraceError {
    TraceError {
        file: String::new(),
        place: String::new(),
        message: "the jobs handed over as the trace is read make one run only".into(),
    }
}

/// Read the `kind` key of every job of the scenario's trace (a pass over the file of its
/// own) so that runs split their cost by it ([`Prepared::attribution`]).
pub fn attribution_for(
    sc: &Scenario,
    kind: KeyKind,
    rule: Rule,
) -> Result<AttributionSpec, PrepareError> {
    let keys = match &sc.trace {
        TraceSpec::File(path) => {
            crate::trace::keys::read_keys(path, kind).map_err(PrepareError::Trace)?
        }
        TraceSpec::Synthetic(_) => {
            return Err(PrepareError::World(format!(
                "a synthetic trace has no {kind}: a breakdown needs a trace file"
            )));
        }
        TraceSpec::Journal(dir) => crate::journal::costs::keys(dir, kind)
            .map_err(|e| PrepareError::World(format!("{}: {e}", dir.display())))?,
    };
    Ok(AttributionSpec {
        keys: std::sync::Arc::new(keys),
        rule,
    })
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
    let helpers = prepared.take_helpers();
    let mut r = simulate_keeping(&cfg, &mut arrivals, obs, progress, log, helpers)?;
    r.changes = variant
        .set
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    prepared.complete(&mut r);
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tutorial's scenario with only its first `n` variants, written beside its config.
    fn tutorial_with(n: usize, dir: &std::path::Path) -> Scenario {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(root.join("scenarios/tutorial/scenario.toml"))
            .unwrap()
            .replace(
                "\"config.toml\"",
                &format!("{:?}", root.join("scenarios/tutorial/config.toml")),
            )
            .replace("\"../../traces/", &format!("\"{}/traces/", root.display()));
        let kept: Vec<&str> = text.split("\n[[variant]]").take(n).collect();
        let path = dir.join(format!("scenario-{n}.toml"));
        std::fs::write(&path, kept.join("\n[[variant]]")).unwrap();
        Scenario::load(&path, &[], chrono_tz::UTC).unwrap()
    }

    /// A one-variant forecast keeps none of the trace's jobs in memory (memory flat in the
    /// trace's length); with other variants to run, they are kept for them. Either way the
    /// run over the jobs as read equals a run afterwards, which reads them again.
    #[test]
    fn the_jobs_are_kept_only_for_other_variants() {
        let dir = crate::testing::scratch("kept");
        std::fs::create_dir_all(&dir).unwrap();
        for (n, keeps) in [(1, false), (2, true)] {
            let sc = tutorial_with(n, &dir);
            assert_eq!(sc.variants.len(), n);
            let run = |p: &Prepared| {
                run_variant(
                    &sc,
                    p,
                    &sc.variants[0],
                    &mut crate::sim::NoObserver,
                    &mut |_| {},
                )
            };
            let (p, head) = prepare_overlapped(&sc, None, run).unwrap();
            let mut head = head
                .expect("a sorted trace is simulated as it is read")
                .unwrap();
            p.complete(&mut head);
            let again = run(&p).unwrap();
            assert_eq!(
                serde_json::to_string(&head).unwrap(),
                serde_json::to_string(&again).unwrap(),
                "{n} variants"
            );
            let w = &head.window;
            match p.jobs_in_memory() {
                Some(k) => {
                    assert!(keeps, "{n} variants: {k} jobs kept");
                    let all = w.trace_jobs_before + w.trace_jobs_inside + w.trace_jobs_after;
                    assert_eq!(k as u64, all);
                }
                None => assert!(!keeps, "{n} variants: the jobs are not kept"),
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The run over jobs as they are read hands its bills and waits to the reading thread;
    /// the books that come back equal books the run keeps itself, to the bit, with spot
    /// interruptions (jobs requeued) and failed creates (EC2's minimum billed).
    #[test]
    fn books_kept_by_the_reading_thread_equal_the_runs_own() {
        let dir = crate::testing::scratch("books");
        std::fs::create_dir_all(&dir).unwrap();
        tutorial_with(1, &dir);
        let path = dir.join("scenario-spot.toml");
        let text = std::fs::read_to_string(dir.join("scenario-1.toml")).unwrap();
        let text = text.replace(
            "[machine]\n",
            "[machine]\ninterruptions_per_hour = 0.4\ncreate_failure_probability = 0.1\n",
        );
        assert_ne!(
            text,
            std::fs::read_to_string(dir.join("scenario-1.toml")).unwrap()
        );
        std::fs::write(&path, text).unwrap();
        let sc = Scenario::load(&path, &[], chrono_tz::UTC).unwrap();
        let (p, head) = prepare_overlapped(&sc, None, |p| {
            let helpers = p.take_helpers();
            assert!(helpers.books.is_some() && helpers.draws.is_some());
            let cfg = SimConfig {
                name: sc.variants[0].name.clone(),
                settings: sc.variants[0].settings.clone(),
                engine: sc.variants[0].engine,
                world: p.world.clone(),
                seed: sc.seed,
                start: sc.start,
                end: sc.end,
                tz: sc.tz,
                attribution: None,
            };
            let mut arrivals = p.arrivals().unwrap();
            simulate_keeping(
                &cfg,
                &mut arrivals,
                &mut crate::sim::NoObserver,
                &mut |_| {},
                crate::drive::NoLog,
                helpers,
            )
        })
        .unwrap();
        let mut away = head.expect("simulated as read").unwrap();
        p.complete(&mut away);
        let h = p.take_helpers();
        assert!(
            h.books.is_none() && h.draws.is_none(),
            "the run over a file read first keeps its own books and draws"
        );
        let here = run_variant(
            &sc,
            &p,
            &sc.variants[0],
            &mut crate::sim::NoObserver,
            &mut |_| {},
        )
        .unwrap();
        assert!(here.jobs_retried > 0 && here.interruptions > 0, "{here:?}");
        assert!(here.cost_usd > 0.0 && here.jobs > 0);
        assert_eq!(
            serde_json::to_string(&away).unwrap(),
            serde_json::to_string(&here).unwrap()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
