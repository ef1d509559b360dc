//! The pure core: no I/O, no clock, no randomness. Same events in, same actions out.

pub mod action;
pub mod cron;
mod docker_machine;
pub mod engine;
pub mod event;
pub mod fleet;
pub mod fxmap;
pub mod idmap;
pub mod jobs;
mod scalecast;
pub mod settings;
pub mod time;

pub use action::{Action, ActionKind, CreateReason, RemoveReason};
pub use engine::{Engine, EngineError, EngineKind, UnknownEngine};
pub use event::{Attempt, Charge, Event, EventKind, JobId, JobKeys, Launch, MachineId};
pub use settings::{AutoscalingEntry, Effective, IdleSettings, Settings};
pub use time::{Time, TimeParseError};
