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
    /// What a finished job cost, as the live daemon estimated it when it ended (written after
    /// its `JobFinished`). A record for the books: the engine applies nothing from it.
    JobCharged { job: JobId, charge: Box<Charge> },
    /// What the cloud made for a machine the engine asked for, as the live daemon learnt it
    /// when the create answered: the instance, its type and market, and the attempts that
    /// found no capacity first. A record for the books: the engine applies nothing from it.
    MachineLaunched {
        machine: MachineId,
        launch: Box<Launch>,
    },
}

/// A machine's instance as the cloud made it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Launch {
    /// The cloud's id of the instance.
    pub instance: String,
    pub instance_type: String,
    /// Spot (true) or on-demand.
    pub spot: bool,
    /// The attempts before it that found no capacity (capacity fallbacks), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fell_back: Vec<Attempt>,
}

/// A create attempt that found no capacity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attempt {
    pub instance_type: String,
    pub spot: bool,
    /// The cloud's answer.
    pub error: String,
}

/// Who a job was for, as GitLab Runner told the executor (`CI_PROJECT_PATH`,
/// `CI_PIPELINE_ID`, `CI_COMMIT_REF_NAME`, `CI_JOB_STAGE`, `CI_JOB_NAME`,
/// `GITLAB_USER_LOGIN`). Each is absent when GitLab did not say.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobKeys {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

impl JobKeys {
    pub fn is_empty(&self) -> bool {
        *self == JobKeys::default()
    }
}

/// A finished job's estimated cost: its run on its machine (busy), and the time that machine
/// booted or stood idle before it (the `next-job` rule of docs/attribution.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Charge {
    pub machine: MachineId,
    pub usd: f64,
    pub busy_usd: f64,
    pub idle_usd: f64,
    /// Seconds from its arrival (`prepare`) to its start on the machine.
    pub wait_s: f64,
    /// The machine's compute and storage price, $/h.
    pub usd_per_hour: f64,
    /// Where the price came from: `table` (the shipped on-demand prices with the Spot
    /// Instance Advisor's discount for spot).
    pub price: String,
    #[serde(default, skip_serializing_if = "JobKeys::is_empty")]
    pub keys: JobKeys,
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
