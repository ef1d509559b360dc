//! scalecast: GitLab Runner autoscaling on EC2, decided by one pure event-sourced engine, and
//! forecast before anyone changes a setting.
//!
//! The engine takes events and emits actions; the driver wakes it at the deadline it reports:
//!
//! ```
//! use scalecast::core::{ActionKind, Engine, EngineKind, Event, EventKind, Settings, Time};
//!
//! let mut settings = Settings::default();
//! settings.concurrent = 4;
//! settings.idle.idle_count = 1;
//! let t0 = Time::parse_rfc3339("2026-11-25T10:00:00Z").unwrap();
//! let mut engine = Engine::new(EngineKind::Scalecast, settings, t0);
//!
//! // A job arrives: with no machine yet, one is created for it.
//! engine.handle(&Event::new(t0, EventKind::JobArrived { job: 42 })).unwrap();
//! let actions: Vec<_> = engine.drain_actions().collect();
//! assert!(matches!(actions[0].kind, ActionKind::CreateMachine { machine: 1, .. }));
//!
//! // The machine is ready: the job starts on it, and the idle pool is refilled.
//! let t1 = t0.plus_secs(45);
//! engine.handle(&Event::new(t1, EventKind::MachineReady { machine: 1 })).unwrap();
//! let actions: Vec<_> = engine.drain_actions().collect();
//! assert_eq!(actions[0].kind, ActionKind::StartJob { job: 42, machine: 1 });
//! assert!(matches!(actions[1].kind, ActionKind::CreateMachine { machine: 2, .. }));
//! ```

pub mod config;
pub mod core;
pub mod drive;
pub mod journal;
#[cfg(feature = "live")]
pub mod live;
pub mod prices;
pub mod replay;
pub mod report;
pub mod rng;
pub mod sim;
pub mod stats;
#[doc(hidden)]
pub mod testing;
pub mod trace;
