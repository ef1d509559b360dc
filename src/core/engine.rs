//! The engine: one pure state machine behind one interface, with two decision policies.
//!
//! - [`Engine::handle`] takes one [`Event`] (its time is "now"; time never goes back),
//! - [`Engine::poll_action`] / [`Engine::drain_actions`] give the [`Action`]s it decided,
//! - [`Engine::poll_timeout`] says when it next needs a [`EventKind::Tick`].
//!
//! Applying an event's facts is shared; deciding is per policy (`docker_machine.rs`,
//! `scalecast.rs`).

use crate::core::action::{Action, ActionKind, CreateReason, RemoveReason};
use crate::core::event::{Event, EventKind, JobId, MachineId};
use crate::core::fleet::{Fleet, MachineState};
use crate::core::jobs::Jobs;
use crate::core::settings::{Effective, Settings};
use crate::core::time::Time;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fmt;

/// Which decision policy runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum EngineKind {
    /// GitLab Runner's docker+machine executor, faithfully (spec section 3).
    #[serde(rename = "docker-machine")]
    DockerMachine,
    /// The project's own, event-driven (spec section 4).
    #[default]
    #[serde(rename = "scalecast")]
    Scalecast,
}

impl EngineKind {
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::DockerMachine => "docker-machine",
            EngineKind::Scalecast => "scalecast",
        }
    }
}

/// A name that is not an engine.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown engine {0:?} (expected docker-machine or scalecast)")]
pub struct UnknownEngine(pub String);

impl std::str::FromStr for EngineKind {
    type Err = UnknownEngine;
    fn from_str(s: &str) -> Result<Self, UnknownEngine> {
        match s {
            "docker-machine" => Ok(EngineKind::DockerMachine),
            "scalecast" => Ok(EngineKind::Scalecast),
            _ => Err(UnknownEngine(s.to_string())),
        }
    }
}

/// An event that does not fit the state: the input is inconsistent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EngineError {
    TimeWentBackwards { at: Time, now: Time },
    DuplicateJob(JobId),
    JobNotRunning(JobId),
    JobNotWaiting(JobId),
    UnknownMachine(MachineId),
    MachineNotCreating(MachineId),
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::TimeWentBackwards { at, now } => {
                write!(
                    f,
                    "event at {at} is earlier than the previous event at {now}"
                )
            }
            EngineError::DuplicateJob(j) => write!(f, "job {j} arrived twice"),
            EngineError::JobNotRunning(j) => write!(f, "job {j} finished but is not running"),
            EngineError::JobNotWaiting(j) => {
                write!(f, "job {j} was cancelled but is not waiting for a machine")
            }
            EngineError::UnknownMachine(m) => write!(f, "no machine {m} in the fleet"),
            EngineError::MachineNotCreating(m) => {
                write!(f, "machine {m} is not being created")
            }
        }
    }
}

impl std::error::Error for EngineError {}

/// The effective idle settings, cached until the next period change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct PeriodCache {
    pub entry: Option<usize>,
    pub idle: crate::core::settings::IdleSettings,
    pub valid_from: Time,
    pub valid_until: Time,
}

/// docker-machine: after a poll that decided nothing, the instant before which every poll
/// decides nothing too, unless an event other than a tick comes first (a poll's only input
/// that moves with time is how long each idle machine has been idle; the rest moves with
/// events, and the period with its boundary). Polls before it are skipped: they would only
/// have looked. A cache, not state: it is neither compared nor snapshotted, and an engine
/// without it (restored, or with it turned off) decides exactly the same.
#[derive(Clone, Debug)]
pub(crate) struct QuietPolls {
    pub until: Option<Time>,
    pub enabled: bool,
    /// An idle machine may be at MaxBuilds (seeded, or the settings changed): the next poll
    /// walks the whole fleet.
    pub retire_due: bool,
    /// A walk's removals, kept between polls so a poll allocates nothing.
    pub removals: Vec<(crate::core::MachineId, RemoveReason)>,
}

impl Default for QuietPolls {
    fn default() -> Self {
        QuietPolls {
            until: None,
            enabled: true,
            retire_due: true,
            removals: Vec::new(),
        }
    }
}

impl PartialEq for QuietPolls {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// How far ahead the period boundary is searched; past it the engine just re-checks.
const PERIOD_LOOKAHEAD_MS: i64 = 7 * 86_400_000;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Engine {
    pub(crate) kind: EngineKind,
    pub(crate) settings: Settings,
    pub(crate) fleet: Fleet,
    pub(crate) jobs: Jobs,
    pub(crate) now: Time,
    pub(crate) period: PeriodCache,
    /// docker-machine: when the runner polls next.
    pub(crate) next_poll: Time,
    /// docker-machine: the feeder is blocked, a hand-over was due while every `concurrent`
    /// worker was busy; it is taken when a worker frees.
    pub(crate) poll_deferred: bool,
    /// When the engine next needs a Tick, computed after each event.
    pub(crate) deadline: Option<Time>,
    /// docker-machine: a cache of "the polls until then decide nothing" (not state).
    #[serde(skip)]
    pub(crate) quiet: QuietPolls,
    #[serde(skip)]
    actions: VecDeque<Action>,
}

impl Engine {
    pub fn new(kind: EngineKind, settings: Settings, start: Time) -> Self {
        let mut e = Engine {
            kind,
            settings,
            fleet: Fleet::default(),
            jobs: Jobs::default(),
            now: start,
            period: PeriodCache {
                entry: None,
                idle: Default::default(),
                valid_from: start,
                valid_until: start,
            },
            next_poll: start,
            poll_deferred: false,
            deadline: Some(start),
            quiet: QuietPolls::default(),
            actions: VecDeque::new(),
        };
        e.refresh_period(true);
        e
    }

    pub fn kind(&self) -> EngineKind {
        self.kind
    }
    pub fn settings(&self) -> &Settings {
        &self.settings
    }
    pub fn fleet(&self) -> &Fleet {
        &self.fleet
    }
    pub fn jobs(&self) -> &Jobs {
        &self.jobs
    }
    pub fn now(&self) -> Time {
        self.now
    }
    /// The idle settings in force now and the entry they come from.
    pub fn effective(&self) -> Effective {
        Effective {
            entry: self.period.entry,
            idle: self.period.idle,
        }
    }

    /// Put a machine in a given situation without deciding anything: a fleet as it stands,
    /// for what-if questions and tests. `idle_for_s` sets the idle clock of an Idle machine
    /// (`last_used = now - idle_for_s`); a Used machine runs `job`.
    pub fn seed_machine(
        &mut self,
        state: MachineState,
        idle_for_s: i64,
        uses: u32,
        job: Option<JobId>,
    ) -> Result<MachineId, EngineError> {
        let id = self.fleet.create(self.now);
        match state {
            MachineState::Creating => {}
            MachineState::Idle => {
                self.fleet.make_idle(id, self.now.plus_secs(-idle_for_s));
            }
            MachineState::Used => {
                let job = job.unwrap_or(u64::MAX - id);
                if !self.jobs.seed_running(job, id) {
                    self.fleet.forget(id);
                    return Err(EngineError::DuplicateJob(job));
                }
                self.fleet.make_idle(id, self.now);
                self.fleet.start_job(id, job, self.now);
            }
            MachineState::Removing => self.fleet.mark_removing(id),
        }
        self.fleet.set_uses(id, uses);
        self.quiet.retire_due = true;
        self.fleet.resort_idle();
        self.deadline = Some(self.now);
        Ok(id)
    }

    /// Apply one event at its time and decide. On error the state is unchanged.
    pub fn handle(&mut self, ev: &Event) -> Result<(), EngineError> {
        if ev.at < self.now {
            return Err(EngineError::TimeWentBackwards {
                at: ev.at,
                now: self.now,
            });
        }
        // A record for the books: nothing to apply, nothing to decide.
        if let EventKind::JobCharged { .. } | EventKind::MachineLaunched { .. } = ev.kind {
            return Ok(());
        }
        self.check(&ev.kind)?;
        if !matches!(ev.kind, EventKind::Tick) {
            self.quiet.until = None;
        }
        let previous = self.now;
        self.now = ev.at;
        if let Err(e) = self.apply(&ev.kind) {
            self.now = previous;
            return Err(e);
        }
        match self.kind {
            EngineKind::Scalecast => self.decide_scalecast(),
            EngineKind::DockerMachine => self.decide_docker_machine(&ev.kind),
        }
        self.fleet.compact();
        self.deadline = match self.kind {
            EngineKind::Scalecast => self.scalecast_deadline_mut(),
            EngineKind::DockerMachine => self.docker_machine_deadline(),
        };
        Ok(())
    }

    /// Turn the docker-machine engine's skipping of polls that cannot decide anything off (on
    /// by default): the decisions are the same either way, which a property test checks.
    pub fn set_poll_skipping(&mut self, on: bool) {
        self.quiet = QuietPolls {
            enabled: on,
            ..QuietPolls::default()
        };
    }

    pub(crate) fn actions_len(&self) -> usize {
        self.actions.len()
    }

    /// Whether actions wait to be drained.
    pub fn has_actions(&self) -> bool {
        !self.actions.is_empty()
    }

    /// The next action decided, oldest first.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    pub fn drain_actions(&mut self) -> impl Iterator<Item = Action> + '_ {
        self.actions.drain(..)
    }

    /// When the engine next needs to be woken with a `Tick`, if ever.
    pub fn poll_timeout(&self) -> Option<Time> {
        self.deadline
    }

    fn check(&self, kind: &EventKind) -> Result<(), EngineError> {
        match kind {
            // Job events are validated by their first change (`apply`), which fails cleanly.
            EventKind::JobArrived { .. }
            | EventKind::JobFinished { .. }
            | EventKind::JobCancelled { .. } => {}
            EventKind::MachineReady { machine } | EventKind::MachineFailed { machine } => {
                match self.fleet.get(*machine) {
                    None => return Err(EngineError::UnknownMachine(*machine)),
                    Some(m) if m.state != MachineState::Creating => {
                        return Err(EngineError::MachineNotCreating(*machine));
                    }
                    _ => {}
                }
            }
            EventKind::MachineGone { machine } | EventKind::SpotNotice { machine } => {
                if self.fleet.get(*machine).is_none() {
                    return Err(EngineError::UnknownMachine(*machine));
                }
            }
            EventKind::Tick
            | EventKind::ConfigReloaded { .. }
            | EventKind::JobCharged { .. }
            | EventKind::MachineLaunched { .. } => {}
        }
        Ok(())
    }

    /// The facts of an event, the same for both policies. Fails only before changing anything.
    fn apply(&mut self, kind: &EventKind) -> Result<(), EngineError> {
        let now = self.now;
        match kind {
            EventKind::JobArrived { job } => {
                if !self.jobs.arrive(*job) {
                    return Err(EngineError::DuplicateJob(*job));
                }
                self.refresh_period(false);
            }
            EventKind::JobFinished { job } => {
                let Some(m) = self.jobs.finish(*job) else {
                    return Err(EngineError::JobNotRunning(*job));
                };
                self.refresh_period(false);
                if let Some((uses, notice)) = self.fleet.end_job(m, now) {
                    self.release(m, uses, notice);
                }
            }
            EventKind::JobCancelled { job } => {
                if !self.jobs.cancel(*job) {
                    return Err(EngineError::JobNotWaiting(*job));
                }
                self.refresh_period(false);
            }
            _ => self.refresh_period(false),
        }
        match kind {
            EventKind::JobArrived { .. }
            | EventKind::JobFinished { .. }
            | EventKind::JobCancelled { .. }
            | EventKind::JobCharged { .. }
            | EventKind::MachineLaunched { .. } => {}
            EventKind::MachineReady { machine } => {
                self.fleet.make_idle(*machine, now);
                self.on_machine_idle(*machine);
            }
            EventKind::MachineFailed { machine } => {
                self.fleet.forget(*machine);
            }
            EventKind::MachineGone { machine } => {
                if let Some(m) = self.fleet.forget(*machine)
                    && let Some(job) = m.job
                {
                    self.jobs.requeue(job);
                    self.emit(ActionKind::RequeueJob {
                        job,
                        machine: *machine,
                    });
                }
            }
            EventKind::SpotNotice { machine } => {
                // GitLab Runner does not hear of spot notices; only scalecast acts on them.
                if self.kind == EngineKind::Scalecast {
                    self.fleet.mark_notice(*machine);
                    if self.fleet.get(*machine).map(|m| m.state) == Some(MachineState::Idle) {
                        self.remove(*machine, RemoveReason::SpotNotice);
                    }
                }
            }
            EventKind::Tick => {}
            EventKind::ConfigReloaded { settings } => {
                self.settings = (**settings).clone();
                self.quiet.retire_due = true;
                self.refresh_period(true);
            }
        }
        Ok(())
    }

    /// A machine finished a job: retire it (MaxBuilds, notice) or make it idle.
    fn release(&mut self, id: MachineId, uses: u32, notice: bool) {
        let max = self.settings.max_builds;
        if max > 0 && uses >= max {
            self.remove(
                id,
                RemoveReason::TooManyBuilds {
                    uses,
                    max_builds: max,
                },
            );
        } else if notice {
            self.remove(id, RemoveReason::SpotNotice);
        } else {
            self.fleet.make_idle(id, self.now);
            self.serve_awaiting(id);
        }
    }

    /// A machine just became idle: in on-demand mode a received job takes it at once.
    fn on_machine_idle(&mut self, id: MachineId) {
        let notice = self.fleet.get(id).is_some_and(|m| m.notice);
        if notice && self.kind == EngineKind::Scalecast {
            self.remove(id, RemoveReason::SpotNotice);
            return;
        }
        self.serve_awaiting(id);
    }

    /// In on-demand mode a received job takes a machine that just became idle.
    fn serve_awaiting(&mut self, id: MachineId) {
        if let Some(job) = self.jobs.oldest_awaiting() {
            self.start(job, id);
        }
    }

    pub(crate) fn emit(&mut self, kind: ActionKind) {
        self.actions.push_back(Action { at: self.now, kind });
    }

    pub(crate) fn start(&mut self, job: JobId, machine: MachineId) {
        self.jobs.start(job, machine);
        self.fleet.start_job(machine, job, self.now);
        self.emit(ActionKind::StartJob { job, machine });
    }

    pub(crate) fn create(&mut self, reason: CreateReason) -> MachineId {
        let machine = self.fleet.create(self.now);
        self.emit(ActionKind::CreateMachine { machine, reason });
        machine
    }

    pub(crate) fn remove(&mut self, machine: MachineId, reason: RemoveReason) {
        self.fleet.mark_removing(machine);
        self.emit(ActionKind::RemoveMachine { machine, reason });
    }

    /// May one more machine be created now (limit on Total, MaxGrowthRate on Creating)?
    pub(crate) fn can_create(&self) -> bool {
        let c = self.fleet.counts();
        let s = &self.settings;
        (s.limit == 0 || c.total() < s.limit)
            && (s.max_growth_rate == 0 || c.creating < s.max_growth_rate)
    }

    fn refresh_period(&mut self, force: bool) {
        let now = self.now;
        if !force && now < self.period.valid_until && now >= self.period.valid_from {
            return;
        }
        let eff = self.settings.effective_at(now);
        let horizon = now.plus_millis(PERIOD_LOOKAHEAD_MS);
        self.period = PeriodCache {
            entry: eff.entry,
            idle: eff.idle,
            valid_from: now,
            valid_until: if self.settings.autoscaling.is_empty() {
                Time(i64::MAX)
            } else {
                self.settings.next_change(now, horizon).unwrap_or(horizon)
            },
        };
    }

    /// When the active period next changes (or the look-ahead ends), if it can.
    pub(crate) fn period_deadline(&self) -> Option<Time> {
        (self.period.valid_until.0 != i64::MAX).then_some(self.period.valid_until)
    }
}
