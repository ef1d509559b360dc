//! Inputs of the engine: facts, each carrying its own time. Their JSON form (one object per
//! line) is documented in `docs/events.md` and is stable.

use crate::core::settings::Settings;
use crate::core::time::Time;
use serde::{Deserialize, Serialize};

/// A job, by its GitLab job id.
pub type JobId = u64;
/// A machine, numbered by the engine in creation order from 1.
pub type MachineId = u64;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub at: Time,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case", deny_unknown_fields)]
pub enum EventKind {
    /// A job became pending for this runner (entered the queue).
    JobArrived { job: JobId },
    /// A job that the engine started has ended (success, failure or cancel alike).
    JobFinished { job: JobId },
    /// A machine the engine asked for finished creating and can take jobs.
    MachineReady { machine: MachineId },
    /// Creating a machine failed; it does not exist.
    MachineFailed { machine: MachineId },
    /// A machine no longer exists: removed as asked, or reclaimed (spot) or lost.
    MachineGone { machine: MachineId },
    /// A spot interruption notice or rebalance recommendation for a machine.
    SpotNotice { machine: MachineId },
    /// The deadline the engine asked for was reached (or any wake-up).
    Tick,
    /// The runner's settings changed (config.toml reloaded).
    ConfigReloaded { settings: Box<Settings> },
    /// A job that had not started left the queue: GitLab cancelled it, or gave up waiting
    /// (the custom executor's cleanup ran before a machine was found). A running job ends
    /// with `JobFinished` instead.
    JobCancelled { job: JobId },
}

impl Event {
    pub fn new(at: Time, kind: EventKind) -> Self {
        Event { at, kind }
    }

    /// A wake-up at `at`.
    pub fn tick(at: Time) -> Self {
        Event::new(at, EventKind::Tick)
    }
}
