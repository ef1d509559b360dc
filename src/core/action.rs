//! Outputs of the engine: intents, each with the reason it was taken. Their JSON form is
//! documented in `docs/events.md` and is stable.

use crate::core::event::{JobId, MachineId};
use crate::core::time::Time;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Action {
    pub at: Time,
    #[serde(flatten)]
    pub kind: ActionKind,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ActionKind {
    /// Create a machine; `machine` is its new id.
    CreateMachine {
        machine: MachineId,
        reason: CreateReason,
    },
    /// Remove (terminate) a machine; it counts until a `machine_gone` event.
    RemoveMachine {
        machine: MachineId,
        reason: RemoveReason,
    },
    /// Run a job on a machine.
    StartJob { job: JobId, machine: MachineId },
    /// A running job lost its machine; it is waiting again (a retry, never lost).
    RequeueJob { job: JobId, machine: MachineId },
}

/// Why a machine was created.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "why", rename_all = "snake_case")]
pub enum CreateReason {
    /// Available (Idle + Creating) was below the idle target.
    IdlePool {
        available: u32,
        target: u32,
        entry: Option<usize>,
    },
    /// Jobs were waiting with no machine for them.
    OnDemand { waiting: u32, creating: u32 },
}

/// Why a machine was removed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "why", rename_all = "snake_case")]
pub enum RemoveReason {
    /// Idle longer than IdleTime while enough machines were available.
    TooManyIdleMachines {
        idle_s: i64,
        idle_time: u64,
        available: u32,
        target: u32,
    },
    /// It ran MaxBuilds jobs.
    TooManyBuilds { uses: u32, max_builds: u32 },
    /// More machines than `limit`.
    TooManyMachines { total: u32, limit: u32 },
    /// A spot notice: it must not take a new job.
    SpotNotice,
}
