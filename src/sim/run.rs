//! The discrete-event simulator: one queue ordered by (time, insertion sequence). Trace
//! arrivals, the world's answers to the engine's actions, and the engine's own deadlines all
//! pass through it. The simulator decides nothing the engine decides.

use crate::core::idmap::IdMap;
use crate::core::{
    Action, ActionKind, Engine, EngineError, EngineKind, Event, EventKind, JobId, MachineId,
    Settings, Time,
};
use crate::drive::{DriveError, Driver, EventLog, NoLog};
use crate::rng::Rng;
use crate::sim::attribution::{AttributionSpec, Attributor};
use crate::sim::books::RemoteBooks;
use crate::sim::draws::{Ahead, MachineDraws, Taker};
use crate::sim::metrics::{Entry, HourState, Metrics, VariantResult, WaitCause, Window};
use crate::sim::world::{NOTICE_MS, WorldModel};
use crate::trace::{TraceError, TraceJob, TraceResult};
use chrono_tz::Tz;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;

/// One simulated run's inputs (the trace comes separately, as a stream).
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub name: String,
    pub settings: Settings,
    pub engine: EngineKind,
    pub world: WorldModel,
    pub seed: u64,
    /// Default: the first arrival.
    pub start: Option<Time>,
    /// Default: when the last job finishes.
    pub end: Option<Time>,
    /// Days of `per_day` are in this zone.
    pub tz: Tz,
    /// Split the cost over the trace's keys (`VariantResult::by`).
    pub attribution: Option<AttributionSpec>,
}

#[derive(Debug)]
pub enum SimError {
    Trace(TraceError),
    EmptyTrace,
    Engine {
        at: Time,
        error: EngineError,
    },
    /// The event log (a journal) failed.
    Log(String),
    /// The window holds none of the trace's jobs.
    EmptyWindow {
        start: Time,
        end: Time,
        before: u64,
        after: u64,
    },
    /// The window reaches far beyond the jobs it holds.
    MostlyEmpty {
        first: Time,
        last: Time,
        empty_days: f64,
    },
    /// One job so far from the rest that the window is mostly empty time.
    Outlier {
        job: u64,
        at: Time,
        gap_days: f64,
        rest_days: f64,
    },
}

impl SimError {
    /// Whether the input is at fault (exit 2) rather than the run.
    pub fn is_input(&self) -> bool {
        !matches!(self, SimError::Engine { .. } | SimError::Log(_))
    }
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::Trace(e) => write!(f, "{e}"),
            SimError::EmptyTrace => {
                write!(f, "the trace has no job that ran, and no start was given")
            }
            SimError::Engine { at, error } => write!(f, "engine refused an event at {at}: {error}"),
            SimError::Log(e) => write!(f, "writing the journal: {e}"),
            SimError::EmptyWindow {
                start,
                end,
                before,
                after,
            } => write!(
                f,
                "the window {start} .. {end} holds none of the trace's jobs ({before} arrive before it, {after} after it): move [sim] start and end"
            ),
            SimError::MostlyEmpty {
                first,
                last,
                empty_days,
            } => write!(
                f,
                "the window is nearly all empty time: its jobs arrive from {first} to {last}, and it reaches {empty_days:.0} days beyond them; move [sim] start and end"
            ),
            SimError::Outlier {
                job,
                at,
                gap_days,
                rest_days,
            } => write!(
                f,
                "trace job {job} (arriving {at}) is {gap_days:.0} days from the other jobs, which span {rest_days:.1} days: the forecast would be idle time; remove it or set [sim] start and end"
            ),
        }
    }
}

impl std::error::Error for SimError {}

impl From<TraceError> for SimError {
    fn from(e: TraceError) -> Self {
        SimError::Trace(e)
    }
}

/// Hooks for callers that want more than the totals (tests, reports).
pub trait Observer {
    /// A job ran to its end: its trace id, arrival, last start, end and total wait.
    fn job_done(
        &mut self,
        _trace_id: u64,
        _arrival: Time,
        _start: Time,
        _end: Time,
        _wait_ms: i64,
    ) {
    }
    /// A job arrived whose trace recorded the wait it had (`queued_duration`).
    fn observed(&mut self, _arrival: Time, _wait_ms: u64) {}
    /// Every event fed to the engine, before it is applied.
    fn event(&mut self, _e: &Event) {}
    /// Whether [`Observer::event`] must see every event. When not, the simulator may handle
    /// a quiet engine's ticks at once, without an `event` call for each.
    fn wants_events(&self) -> bool {
        true
    }
    /// Every action the engine took.
    fn action(&mut self, _a: &Action) {}
    /// After each instant's events: the fleet and queue as they stand.
    fn state(&mut self, _at: Time, _engine: &Engine) {}
    /// Whether any of the calls above does anything: when not, the simulator makes none
    /// (asked once, before the run).
    fn wants_calls(&self) -> bool {
        true
    }
}

/// Two observers at once.
pub struct Both<'a>(pub &'a mut dyn Observer, pub &'a mut dyn Observer);

impl Observer for Both<'_> {
    fn job_done(&mut self, id: u64, arrival: Time, start: Time, end: Time, wait_ms: i64) {
        self.0.job_done(id, arrival, start, end, wait_ms);
        self.1.job_done(id, arrival, start, end, wait_ms);
    }
    fn observed(&mut self, arrival: Time, wait_ms: u64) {
        self.0.observed(arrival, wait_ms);
        self.1.observed(arrival, wait_ms);
    }
    fn event(&mut self, e: &Event) {
        self.0.event(e);
        self.1.event(e);
    }
    fn wants_events(&self) -> bool {
        self.0.wants_events() || self.1.wants_events()
    }
    fn wants_calls(&self) -> bool {
        self.0.wants_calls() || self.1.wants_calls()
    }
    fn action(&mut self, a: &Action) {
        self.0.action(a);
        self.1.action(a);
    }
    fn state(&mut self, at: Time, engine: &Engine) {
        self.0.state(at, engine);
        self.1.state(at, engine);
    }
}

/// An observer that wants nothing.
pub struct NoObserver;
impl Observer for NoObserver {
    fn wants_events(&self) -> bool {
        false
    }
    fn wants_calls(&self) -> bool {
        false
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum SimEvent {
    Arrival,
    Wake,
    Ready(MachineId),
    Failed(MachineId),
    Gone(MachineId),
    Done(JobId, u32),
}

/// A queued event: its instant and sequence number packed into one key (the instant's bits
/// with the sign flipped, so unsigned order is time order, above the sequence number), so
/// the queue's heap compares entries in one step. Ordered by the key alone, reversed, so
/// the std max-heap gives the earliest first (sequence numbers are unique: the event never
/// decides).
#[derive(Clone, Copy)]
struct Queued {
    key: u128,
    ev: SimEvent,
}

impl Queued {
    #[inline]
    fn new(at: Time, seq: u64, ev: SimEvent) -> Queued {
        let t = (at.0 as u64) ^ (1 << 63);
        Queued {
            key: (u128::from(t) << 64) | u128::from(seq),
            ev,
        }
    }

    #[inline]
    fn at(&self) -> Time {
        Time((((self.key >> 64) as u64) ^ (1 << 63)) as i64)
    }

    #[inline]
    fn seq(&self) -> u64 {
        self.key as u64
    }
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Queued {}

impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Queued {
    #[inline]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.key.cmp(&self.key)
    }
}

struct JobRec {
    trace_id: u64,
    arrival: Time,
    duration_ms: i64,
    waited_ms: i64,
    waiting_since: Time,
    started: Time,
    attempt: u32,
    machine: Option<MachineId>,
    /// Its attribution key (0 when not attributing).
    key: u32,
}

struct MachineRec {
    launched: Time,
    state: HourState,
    since: Time,
    /// When spot will reclaim it (its notice comes then), if it lives that long.
    interrupt_at: Option<Time>,
}

/// Spot notices to come, earliest first (by time, then machine). A machine that ends before
/// its notice leaves its entry behind: it is dropped when it comes to the front, or when such
/// entries outnumber the live ones (so they never pile up).
#[derive(Default)]
struct Notices {
    heap: BinaryHeap<Reverse<(Time, MachineId)>>,
    live: usize,
    /// The heap's first entry when it is known to be due (no machine ended since it was
    /// checked): the loop asks for it before every event, so it is kept beside the heap.
    front: Option<(Time, MachineId)>,
}

impl Notices {
    /// A new notice (always due): it is the first if it comes before the known first.
    fn add(&mut self, at: Time, machine: MachineId) {
        self.heap.push(Reverse((at, machine)));
        self.live += 1;
        if let Some(f) = self.front
            && (at, machine) < f
        {
            self.front = Some((at, machine));
        }
    }

    /// Machine `machine`, whose notice was to come at `at`, ended first (it is no longer in
    /// `machines`).
    fn cancel(&mut self, machines: &IdMap<MachineRec>, at: Time, machine: MachineId) {
        self.live -= 1;
        if self.front == Some((at, machine)) {
            self.front = None;
        }
        if self.heap.len() > 2 * self.live + 64 {
            self.heap
                .retain(|Reverse((t, m))| Self::due(machines, *t, *m));
            // Every entry left is due.
            self.front = self.heap.peek().map(|Reverse(f)| *f);
        }
    }

    /// The first entry's notice was taken.
    fn take_first(&mut self) {
        self.heap.pop();
        self.live -= 1;
        self.front = None;
    }

    fn due(machines: &IdMap<MachineRec>, t: Time, m: MachineId) -> bool {
        machines.get(&m).is_some_and(|r| r.interrupt_at == Some(t))
    }

    /// The next notice still due.
    #[inline(always)]
    fn first(&mut self, machines: &IdMap<MachineRec>) -> Option<(Time, MachineId)> {
        if self.front.is_some() {
            return self.front;
        }
        self.find_first(machines)
    }

    /// [`Notices::first`] when the first entry is not known to be due: stale entries go.
    #[inline(never)]
    fn find_first(&mut self, machines: &IdMap<MachineRec>) -> Option<(Time, MachineId)> {
        while let Some(&Reverse((t, m))) = self.heap.peek() {
            if Self::due(machines, t, m) {
                self.front = Some((t, m));
                return self.front;
            }
            self.heap.pop();
        }
        None
    }
}

/// If no end was given and the trace is exhausted, stop this long after the last arrival even
/// if jobs still wait (they are reported unfinished).
const OPEN_END_GRACE_MS: i64 = 30 * 86_400_000;
/// How often (in events) progress is reported.
const PROGRESS_EVERY: u64 = 1 << 16;

struct Sim<'a, L: EventLog> {
    cfg: &'a SimConfig,
    driver: Driver<L>,
    queue: BinaryHeap<Queued>,
    seq: u64,
    wake_at: Option<Time>,
    jobs: IdMap<JobRec>,
    machines: IdMap<MachineRec>,
    /// Spot notices to come, kept apart from the queue.
    notices: Notices,
    next_job: JobId,
    /// The next trace job to arrive, and the sequence number its place in the queue has: it
    /// is kept beside the queue (arrivals come in order from the trace), and takes its turn
    /// among same-instant events exactly as if it were queued.
    pending_arrival: Option<TraceJob>,
    arrival_seq: u64,
    /// How long after its arrival the runner sees a job (the world's pick-up delay).
    pickup_ms: i64,
    /// Whether the observer wants its calls ([`Observer::wants_calls`]).
    watch: bool,
    /// Trace jobs that arrive before the window.
    before: u64,
    /// Each machine's boot time and spot notice: drawn here, or taken from draws made ahead
    /// on the reading thread (the same draws).
    draws: Draws,
    fail_rng: Rng,
    ledger: Ledger,
}

/// Where a run's machine draws come from.
enum Draws {
    Here(MachineDraws),
    Ahead(Taker),
}

/// What a run tallies: its metrics, where its bills and waits go when the books are kept on
/// another thread (then `m` keeps only the counts), and the attribution of its cost.
struct Ledger {
    m: Metrics,
    away: Option<RemoteBooks>,
    attr: Option<Attributor>,
}

impl Ledger {
    /// Bill a machine's time from `r.since` to `now` in its state (and attribute it).
    #[inline(always)]
    fn bill(&mut self, world: &crate::sim::WorldModel, id: MachineId, r: &MachineRec, now: Time) {
        match &mut self.away {
            Some(b) if now > r.since => b.push(Entry::Segment(r.state, r.since, now)),
            Some(_) => {}
            None => Self::bill_here(&mut self.m, &mut self.attr, world, id, r, now),
        }
    }

    /// [`Ledger::bill`] with the books kept here.
    #[inline(never)]
    fn bill_here(
        m: &mut Metrics,
        attr: &mut Option<Attributor>,
        world: &crate::sim::WorldModel,
        id: MachineId,
        r: &MachineRec,
        now: Time,
    ) {
        match attr {
            None => m.segment(world, r.state, r.since, now),
            Some(a) => {
                let busy = r.state == HourState::Busy;
                m.segment_to(world, r.state, r.since, now, |d, usd| {
                    a.spent(id, busy, d, usd)
                });
            }
        }
    }
}

impl<L: EventLog> Sim<'_, L> {
    fn push(&mut self, at: Time, e: SimEvent) {
        self.seq += 1;
        self.queue.push(Queued::new(at, self.seq, e));
    }

    /// The next arrival, numbered as a push would number it.
    fn set_arrival(&mut self, j: TraceJob) {
        self.seq += 1;
        self.arrival_seq = self.seq;
        self.pending_arrival = Some(j);
    }

    /// When the runner sees a job of the trace.
    fn seen_at(&self, j: &TraceJob) -> Time {
        j.arrival.plus_millis(self.pickup_ms)
    }

    /// Whether the pending arrival comes before everything queued.
    fn arrival_first(&self) -> bool {
        match (self.pending_arrival, self.queue.peek()) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(j), Some(q)) => (self.seen_at(&j), self.arrival_seq) < (q.at(), q.seq()),
        }
    }

    /// Time passes from `from` to `to` with the engine as it stands: report the state, and
    /// charge the queue's waiting to what held the jobs back.
    fn advance(&mut self, from: Time, to: Time, obs: &mut dyn Observer) {
        let engine = self.driver.engine();
        if self.watch {
            obs.state(from, engine);
        }
        let jobs = engine.jobs();
        let waiting = jobs.waiting() as i64;
        if waiting == 0 || to <= from {
            return;
        }
        let s = engine.settings();
        let in_flight = jobs.in_flight();
        let cause = if in_flight >= s.concurrent {
            WaitCause::Concurrent
        } else if s.limit > 0
            && (in_flight >= s.limit || engine.fleet().counts().total() >= s.limit)
        {
            WaitCause::Limit
        } else {
            WaitCause::Machines
        };
        self.ledger.m.queued(cause, waiting * to.since(from));
    }

    #[inline]
    fn set_state(&mut self, id: MachineId, state: HourState, now: Time) {
        if let Some(r) = self.machines.get_mut(&id) {
            self.ledger.bill(&self.cfg.world, id, r, now);
            r.state = state;
            r.since = now;
        }
    }

    fn end_machine(&mut self, id: MachineId, now: Time) -> bool {
        match self.machines.remove(&id) {
            Some(r) => {
                if let Some(at) = r.interrupt_at {
                    self.notices.cancel(&self.machines, at, id);
                }
                self.ledger.bill(&self.cfg.world, id, &r, now);
                if let Some(b) = &mut self.ledger.away {
                    // Kept away only when nothing is attributed, which is all the answer is for.
                    b.push(Entry::Minimum(r.launched, now, r.state));
                    return true;
                }
                let min = self
                    .ledger
                    .m
                    .minimum(&self.cfg.world, r.launched, now, r.state);
                if let Some(a) = &mut self.ledger.attr {
                    if let Some((d, usd)) = min {
                        a.spent(id, false, d, usd);
                    }
                    a.ended(id);
                }
                true
            }
            None => false,
        }
    }

    #[inline(always)]
    fn feed(&mut self, now: Time, kind: EventKind, obs: &mut dyn Observer) -> Result<(), SimError> {
        let ev = Event::new(now, kind);
        if self.watch {
            obs.event(&ev);
        }
        self.driver.handle(&ev).map_err(|e| match e {
            DriveError::Refused { at, error } => SimError::Engine { at, error },
            DriveError::Log(e) => SimError::Log(e.to_string()),
        })?;
        while let Some(a) = self.driver.poll_action() {
            if self.watch {
                obs.action(&a);
            }
            self.act(now, &a);
        }
        self.arm(now);
        Ok(())
    }

    /// Queue a wake for the engine's next deadline, unless one as early is queued.
    fn arm(&mut self, now: Time) {
        if let Some(d) = self.driver.poll_timeout() {
            let d = d.max(now);
            if self.wake_at.is_none_or(|w| d < w) {
                self.wake_at = Some(d);
                self.push(d, SimEvent::Wake);
            }
        }
    }

    /// The first instant a tick must take its turn in the queue rather than be handled with
    /// the quiet ones before it: the next other event (queued, arriving, or a spot notice),
    /// and the instant the run stops (past the window's end, or the open end's grace).
    fn next_other_event(&mut self, last_arrival: Time) -> Time {
        let mut t = Time(i64::MAX);
        if let Some(q) = self.queue.peek() {
            t = t.min(q.at());
        }
        if let Some(j) = &self.pending_arrival {
            t = t.min(self.seen_at(j));
        }
        if let Some((n, _)) = self.notices.first(&self.machines) {
            t = t.min(n);
        }
        match self.cfg.end {
            Some(end) => t.min(end.plus_millis(1)),
            None if self.pending_arrival.is_none() => {
                t.min(last_arrival.plus_millis(OPEN_END_GRACE_MS + 1))
            }
            None => t,
        }
    }

    /// The world's answer to an action: future events.
    fn act(&mut self, now: Time, a: &Action) {
        match a.kind {
            ActionKind::CreateMachine { machine, .. } => {
                self.ledger.m.created += 1;
                if let Some(a) = &mut self.ledger.attr {
                    a.created(machine);
                }
                self.machines.insert(
                    machine,
                    MachineRec {
                        launched: now,
                        state: HourState::Booting,
                        since: now,
                        interrupt_at: None,
                    },
                );
                let w = &self.cfg.world;
                if w.create_failure_probability > 0.0
                    && self.fail_rng.unit() < w.create_failure_probability
                {
                    let at = now.plus_millis((w.create_retry_seconds * 1000.0) as i64);
                    self.push(at, SimEvent::Failed(machine));
                    return;
                }
                let d = match &mut self.draws {
                    Draws::Here(m) => m.draw(),
                    Draws::Ahead(t) => t.draw(),
                };
                self.push(now.plus_millis(d.boot_ms), SimEvent::Ready(machine));
                if let Some(ms) = d.notice_ms {
                    let at = now.plus_millis(ms);
                    self.notices.add(at, machine);
                    if let Some(r) = self.machines.get_mut(&machine) {
                        r.interrupt_at = Some(at);
                    }
                }
            }
            ActionKind::RemoveMachine { machine, .. } => {
                self.set_state(machine, HourState::Removing, now);
                let at = now.plus_millis((self.cfg.world.remove_seconds * 1000.0) as i64);
                self.push(at, SimEvent::Gone(machine));
            }
            ActionKind::StartJob { job, machine } => {
                self.set_state(machine, HourState::Busy, now);
                if let Some(j) = self.jobs.get_mut(&job) {
                    j.waited_ms += now.since(j.waiting_since);
                    j.attempt += 1;
                    j.started = now;
                    j.machine = Some(machine);
                    let (attempt, done) = (j.attempt, now.plus_millis(j.duration_ms));
                    if let Some(a) = &mut self.ledger.attr {
                        a.started(machine, j.key);
                    }
                    self.push(done, SimEvent::Done(job, attempt));
                }
            }
            ActionKind::RequeueJob { job, .. } => {
                self.ledger.m.retried += 1;
                if let Some(j) = self.jobs.get_mut(&job) {
                    if let (Some(a), Some(m)) = (&mut self.ledger.attr, j.machine) {
                        a.stopped(m);
                    }
                    j.waiting_since = now;
                    j.machine = None;
                }
            }
        }
    }

    /// A job arrived (in the trace) at `at`.
    fn arrived(&mut self, at: Time) {
        match &mut self.ledger.away {
            Some(b) => b.push(Entry::Arrival(at)),
            None => self.ledger.m.arrival(at),
        }
    }

    /// A job that arrived at `arrival` waited `wait_ms` in all.
    fn waited(&mut self, arrival: Time, wait_ms: i64) {
        match &mut self.ledger.away {
            Some(b) => b.push(Entry::Wait(arrival, wait_ms)),
            None => self.ledger.m.wait(arrival, wait_ms),
        }
    }

    fn next_arrival(
        &mut self,
        arrivals: &mut dyn Iterator<Item = TraceResult<TraceJob>>,
        start: Time,
    ) -> Result<(), SimError> {
        for j in &mut *arrivals {
            let j = j?;
            if j.arrival < start {
                self.before += 1;
                continue;
            }
            self.set_arrival(j);
            return Ok(());
        }
        self.pending_arrival = None;
        Ok(())
    }
}

/// Run one variant over a stream of arrivals (in time order).
pub fn simulate(
    cfg: &SimConfig,
    arrivals: &mut dyn Iterator<Item = TraceResult<TraceJob>>,
    obs: &mut dyn Observer,
    progress: &mut dyn FnMut(Time),
) -> Result<VariantResult, SimError> {
    simulate_logged(cfg, arrivals, obs, progress, NoLog)
}

/// Run one variant, writing every event to `log` before the engine applies it.
pub fn simulate_logged<L: EventLog>(
    cfg: &SimConfig,
    arrivals: &mut dyn Iterator<Item = TraceResult<TraceJob>>,
    obs: &mut dyn Observer,
    progress: &mut dyn FnMut(Time),
    log: L,
) -> Result<VariantResult, SimError> {
    simulate_keeping(cfg, arrivals, obs, progress, log, Helpers::default())
}

/// What another thread does for a run over a trace it is still reading.
#[derive(Default)]
pub struct Helpers {
    /// Tally the run's bills and waits, when nothing is attributed (attribution follows
    /// each dollar as it is billed).
    pub books: Option<RemoteBooks>,
    /// Make the run's machine draws ahead, when they are its streams.
    pub draws: Option<Ahead>,
}

/// [`simulate_logged`], with `helpers` on another thread. The result is the same to the bit.
pub fn simulate_keeping<L: EventLog>(
    cfg: &SimConfig,
    arrivals: &mut dyn Iterator<Item = TraceResult<TraceJob>>,
    obs: &mut dyn Observer,
    progress: &mut dyn FnMut(Time),
    log: L,
    helpers: Helpers,
) -> Result<VariantResult, SimError> {
    // The first arrival fixes the default start.
    let first = arrivals.next().transpose()?;
    let start = match (cfg.start, first) {
        (Some(s), _) => s,
        (None, Some(j)) => j.arrival,
        (None, None) => return Err(SimError::EmptyTrace),
    };
    let mut sim = Sim {
        cfg,
        driver: Driver::new(Engine::new(cfg.engine, cfg.settings.clone(), start), log),
        queue: BinaryHeap::new(),
        seq: 0,
        wake_at: None,
        jobs: IdMap::default(),
        machines: IdMap::default(),
        notices: Notices::default(),
        next_job: 1,
        pending_arrival: None,
        arrival_seq: 0,
        pickup_ms: (cfg.world.pickup_seconds * 1000.0).round() as i64,
        watch: obs.wants_calls(),
        before: 0,
        draws: match helpers.draws.and_then(|a| a.taker(cfg.seed, &cfg.world)) {
            Some(t) => Draws::Ahead(t),
            None => Draws::Here(MachineDraws::new(cfg.seed, &cfg.world)),
        },
        fail_rng: Rng::derive(cfg.seed, "create failure"),
        ledger: Ledger {
            m: Metrics::new(cfg.tz),
            away: helpers
                .books
                .filter(|_| cfg.attribution.is_none())
                .and_then(|mut b| b.open(&cfg.world, cfg.tz).then_some(b)),
            attr: cfg.attribution.clone().map(Attributor::new),
        },
    };
    match first {
        Some(j) if j.arrival >= start => sim.set_arrival(j),
        _ => sim.next_arrival(arrivals, start)?,
    }
    sim.feed(start, EventKind::Tick, obs)?;

    let mut now = start;
    let mut last_arrival = start;
    let mut events = 0u64;
    loop {
        let queued = match (
            sim.queue.peek().map(Queued::at),
            sim.pending_arrival.map(|j| sim.seen_at(&j)),
        ) {
            (Some(q), Some(a)) => Some(q.min(a)),
            (q, a) => q.or(a),
        };
        let notice = sim.notices.first(&sim.machines);
        let at = match (queued, notice) {
            (None, None) => break,
            (Some(q), Some((n, _))) => q.min(n),
            (Some(q), None) => q,
            (None, Some((n, _))) => n,
        };
        if cfg.end.is_some_and(|end| at > end) {
            break;
        }
        if cfg.end.is_none() {
            // Stop when everything ran, or long after the trace's last arrival with jobs still
            // waiting. A gap between two arrivals never ends the run.
            let exhausted = sim.pending_arrival.is_none();
            if exhausted && (sim.jobs.is_empty() || at.since(last_arrival) > OPEN_END_GRACE_MS) {
                break;
            }
        }
        if let Some((n, m)) = notice.filter(|(n, _)| queued.is_none_or(|q| *n < q)) {
            // A spot notice: the machine goes two minutes later.
            if n != now {
                sim.advance(now, n, obs);
                now = n;
            }
            // The entry `first` found due.
            sim.notices.take_first();
            if let Some(r) = sim.machines.get_mut(&m) {
                r.interrupt_at = None;
                sim.ledger.m.interruptions += 1;
                sim.push(n.plus_millis(NOTICE_MS), SimEvent::Gone(m));
                sim.feed(n, EventKind::SpotNotice { machine: m }, obs)?;
            }
            continue;
        }
        let (at, ev) = if sim.arrival_first() {
            let j = sim.pending_arrival.expect("an arrival is pending");
            (sim.seen_at(&j), SimEvent::Arrival)
        } else {
            match sim.queue.pop() {
                Some(q) => (q.at(), q.ev),
                None => break,
            }
        };
        if at != now {
            sim.advance(now, at, obs);
            now = at;
        }
        events += 1;
        if events.is_multiple_of(PROGRESS_EVERY) {
            progress(now);
        }
        match ev {
            SimEvent::Arrival => {
                let Some(j) = sim.pending_arrival.take() else {
                    continue;
                };
                last_arrival = at;
                let id = sim.next_job;
                sim.next_job += 1;
                // Waits and days count from the arrival in the trace, which the runner sees
                // `pickup_ms` later.
                let arrived = j.arrival;
                sim.arrived(arrived);
                if let Some(q) = j.queued_ms
                    && sim.watch
                {
                    obs.observed(arrived, u64::from(q));
                }
                let key = match &mut sim.ledger.attr {
                    Some(a) => {
                        let k = a.key_of(j.id);
                        a.arrived(k);
                        k
                    }
                    None => 0,
                };
                sim.jobs.insert(
                    id,
                    JobRec {
                        trace_id: j.id,
                        arrival: arrived,
                        duration_ms: j.duration_ms,
                        waited_ms: 0,
                        waiting_since: arrived,
                        started: at,
                        attempt: 0,
                        machine: None,
                        key,
                    },
                );
                sim.next_arrival(arrivals, start)?;
                sim.feed(at, EventKind::JobArrived { job: id }, obs)?;
            }
            SimEvent::Wake => {
                if sim.wake_at == Some(at) {
                    sim.wake_at = None;
                    let n = if obs.wants_events() {
                        0
                    } else {
                        let before = sim.next_other_event(last_arrival);
                        sim.driver.handle_quiet_ticks(at, before)
                    };
                    if n == 0 {
                        sim.feed(at, EventKind::Tick, obs)?;
                    } else {
                        // The ticks from `at` to the engine's time now, handled at once: time
                        // passes in one step rather than one per tick (the same sums: whole
                        // job-milliseconds), and the next tick is queued as the last one
                        // would have queued it, numbered after the ticks' own wakes.
                        let last = sim.driver.engine().now();
                        sim.advance(at, last, obs);
                        now = last;
                        let crossed = (events + n - 1) / PROGRESS_EVERY > events / PROGRESS_EVERY;
                        events += n - 1;
                        if crossed {
                            progress(now);
                        }
                        sim.seq += n - 1;
                        sim.arm(now);
                    }
                }
            }
            SimEvent::Ready(m) => {
                if sim
                    .machines
                    .get(&m)
                    .is_some_and(|r| r.state == HourState::Booting)
                {
                    sim.set_state(m, HourState::Idle, at);
                    sim.feed(at, EventKind::MachineReady { machine: m }, obs)?;
                }
            }
            SimEvent::Failed(m) => {
                if sim.end_machine(m, at) {
                    sim.feed(at, EventKind::MachineFailed { machine: m }, obs)?;
                }
            }
            SimEvent::Gone(m) => {
                if sim.end_machine(m, at) {
                    sim.feed(at, EventKind::MachineGone { machine: m }, obs)?;
                }
            }
            SimEvent::Done(job, attempt) => {
                // A run whose machine went (the job was requeued) ends with that machine: the
                // job is waiting again, or already on its next attempt.
                let current = |j: &JobRec| j.attempt == attempt && j.machine.is_some();
                let Some(j) = sim.jobs.remove_if(&job, current) else {
                    continue;
                };
                sim.waited(j.arrival, j.waited_ms);
                if sim.watch {
                    obs.job_done(j.trace_id, j.arrival, j.started, at, j.waited_ms);
                }
                if let Some(m) = j.machine {
                    sim.set_state(m, HourState::Idle, at);
                }
                if let Some(a) = &mut sim.ledger.attr {
                    a.waited(j.key, j.waited_ms.max(0) as u64);
                    if let Some(m) = j.machine {
                        a.stopped(m);
                    }
                }
                sim.feed(at, EventKind::JobFinished { job }, obs)?;
            }
        }
    }
    // The books kept elsewhere come back with every entry applied; the rest is tallied here.
    if let Some(b) = sim.ledger.away.take() {
        let kept = b.close().ok_or_else(|| {
            SimError::Trace(TraceError {
                file: String::new(),
                place: String::new(),
                message: "the thread keeping the run's books ended first".into(),
            })
        })?;
        sim.ledger.m.take_back(kept);
    }
    let end = cfg.end.unwrap_or(now).max(start);
    sim.advance(now, end, obs);
    // What of the trace fell outside the window.
    let mut after = sim.pending_arrival.is_some() as u64;
    for j in arrivals {
        j?;
        after += 1;
    }
    let window = Window {
        trace_jobs_inside: sim.ledger.m.arrived,
        trace_jobs_before: sim.before + u64::from(first.is_some_and(|j| j.arrival < start)),
        trace_jobs_after: after,
        longest_gap: None,
    };
    if window.trace_jobs_inside == 0 {
        return Err(SimError::EmptyWindow {
            start,
            end,
            before: window.trace_jobs_before,
            after: window.trace_jobs_after,
        });
    }
    // Jobs still waiting at the end: their wait so far counts (censored, a lower bound), so a
    // variant that never runs them cannot look fast. Jobs running at the end waited their
    // whole wait already.
    for (_, j) in sim.jobs.sorted() {
        let wait = match j.machine {
            Some(_) => j.waited_ms,
            None => {
                sim.ledger.m.censored += 1;
                j.waited_ms + end.since(j.waiting_since).max(0)
            }
        };
        sim.ledger.m.wait(j.arrival, wait);
        if let Some(a) = &mut sim.ledger.attr {
            a.waited(j.key, wait.max(0) as u64);
        }
    }
    // Machines still alive are billed up to the end.
    let mut alive: Vec<MachineId> = sim.machines.keys().collect();
    alive.sort_unstable();
    for id in alive {
        if let Some(r) = sim.machines.remove(&id) {
            sim.ledger.bill(&cfg.world, id, &r, end);
        }
    }
    let jobs = sim.driver.engine().jobs();
    let waiting = jobs.waiting() as u64 + jobs.awaiting() as u64;
    let running = jobs.running() as u64;
    let (engine, mut log) = sim.driver.into_parts();
    log.close(&engine)
        .map_err(|e| SimError::Log(e.to_string()))?;
    progress(end);
    let mut r = sim.ledger.m.result(
        &cfg.name,
        cfg.engine.name(),
        &cfg.world,
        start,
        end,
        waiting,
        running,
        cfg.world.notes.clone(),
    );
    r.by = sim.ledger.attr.map(Attributor::finish);
    r.notes.extend(window_notes(&r.name, &window));
    r.window = window;
    r.notes.extend(variant_notes(&r, &cfg.settings));
    Ok(r)
}

/// Jobs of the trace outside the window: say so.
fn window_notes(name: &str, w: &Window) -> Vec<String> {
    let mut notes = Vec::new();
    if w.trace_jobs_before + w.trace_jobs_after > 0 {
        notes.push(format!(
            "{name}: {} trace jobs fall outside the window ({} before, {} after) and are not simulated",
            w.trace_jobs_before + w.trace_jobs_after,
            w.trace_jobs_before,
            w.trace_jobs_after
        ));
    }
    notes
}

/// What a reader of this variant's figures must know: jobs that never ran, and the cap that
/// held the queue back when it was not the idle pool.
fn variant_notes(r: &VariantResult, s: &Settings) -> Vec<String> {
    let mut notes = Vec::new();
    if r.jobs_unfinished > 0 {
        notes.push(format!(
            "{}: {} of {} jobs did not finish ({} still waiting, {} running at the end); the \
             waits of those still waiting count up to the end, so the wait figures are lower \
             bounds",
            r.name, r.jobs_unfinished, r.jobs, r.jobs_waiting_at_end, r.jobs_running_at_end
        ));
    }
    if let Some((cause, share)) = r.wait_causes_s.binding() {
        let (what, value) = match cause {
            WaitCause::Concurrent => ("concurrent", s.concurrent),
            _ => ("limit", s.limit),
        };
        notes.push(format!(
            "{}: jobs spent {:.0}% of their queue time with `{what} = {value}` reached: \
             `{what}` is the binding limit, not the idle pool",
            r.name,
            share * 100.0
        ));
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The next due notice is always the earliest of the live machines' notices, whatever
    /// the order of new machines, machines that end first, and notices taken; and stale
    /// entries never outnumber live ones by much.
    #[test]
    fn the_first_notice_is_the_earliest_live_one() {
        let mut notices = Notices::default();
        let mut machines: IdMap<MachineRec> = IdMap::default();
        let mut live: BTreeSet<(Time, MachineId)> = BTreeSet::new();
        let mut rng = crate::rng::Rng::new(0x9E37_79B9_7F4A_7C15);
        let (mut next_id, mut now, mut taken, mut cancelled) = (0u64, 0i64, 0, 0);
        for step in 0..30_000 {
            let x = rng.next_u64();
            match x % 10 {
                // A new machine with a notice to come.
                0..=3 => {
                    next_id += 1;
                    let at = Time(now + (x >> 32) as i64 % 5_000);
                    machines.insert(
                        next_id,
                        MachineRec {
                            launched: Time(now),
                            state: HourState::Booting,
                            since: Time(now),
                            interrupt_at: Some(at),
                        },
                    );
                    notices.add(at, next_id);
                    live.insert((at, next_id));
                }
                // A machine ends before its notice.
                4..=6 => {
                    if let Some(&(at, m)) = live.iter().nth((x >> 20) as usize % live.len().max(1))
                    {
                        machines.remove(&m);
                        notices.cancel(&machines, at, m);
                        live.remove(&(at, m));
                        cancelled += 1;
                    }
                }
                // The first notice comes.
                _ => {
                    if let Some((at, m)) = notices.first(&machines) {
                        notices.take_first();
                        machines.get_mut(&m).unwrap().interrupt_at = None;
                        assert!(live.remove(&(at, m)), "step {step}: {m} was not due");
                        now = now.max(at.0);
                        taken += 1;
                    }
                }
            }
            assert_eq!(
                notices.first(&machines),
                live.first().copied(),
                "step {step}"
            );
            assert_eq!(notices.live, live.len());
            assert!(notices.heap.len() <= 2 * live.len() + 65, "step {step}");
        }
        assert!(
            taken > 2_000 && cancelled > 2_000,
            "{taken} taken, {cancelled} cancelled"
        );
    }

    /// The queue's packed key orders entries as (instant, sequence number) does, negative and
    /// extreme instants included, and gives back both: the heap pops them earliest first,
    /// ties in the order queued.
    #[test]
    fn queued_events_pop_in_time_then_sequence_order() {
        let mut heap = BinaryHeap::new();
        let mut want = Vec::new();
        let mut rng = crate::rng::Rng::new(11);
        for seq in 0..5_000u64 {
            let x = rng.next_u64();
            let at = match x % 8 {
                0 => Time(i64::MIN),
                1 => Time(i64::MAX),
                2 => Time(-((x >> 40) as i64)),
                // Few distinct instants, so many ties.
                _ => Time((x >> 60) as i64),
            };
            let ev = SimEvent::Done(x >> 3, seq as u32);
            heap.push(Queued::new(at, seq, ev));
            want.push((at, seq, ev));
        }
        want.sort_by_key(|&(at, seq, _)| (at, seq));
        let got: Vec<_> = std::iter::from_fn(|| heap.pop())
            .map(|q| (q.at(), q.seq(), q.ev))
            .collect();
        assert_eq!(got, want);
    }
}
