//! Live mode (cargo feature `live`): the daemon (`daemon.rs`), the ports it drives the fleet
//! through (the cloud port and its EC2 adapter), the executor socket (`protocol.rs`),
//! reconcile, capacity fallbacks, back-off and metrics; the machines' Docker over mutual TLS
//! (`docker.rs`, `tls.rs`, `userdata.rs`).
//!
//! The daemon feeds the engine through the one driver (`crate::drive`) with the journal as
//! its log, exactly as the simulator does; these adapters only turn the engine's actions into
//! calls and the calls' results into events. Nothing here decides anything.

pub mod books;
pub mod breaker;
pub mod cloud;
pub mod daemon;
pub mod docker;
pub mod ec2;
pub mod executor;
pub mod fallback;
pub mod metrics;
pub mod protocol;
pub mod reconcile;
pub mod ship;
pub mod tls;
pub mod userdata;
