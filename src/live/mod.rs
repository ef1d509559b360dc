//! Live mode (cargo feature `live`): the ports the daemon drives the fleet through. So far the
//! cloud port and its EC2 adapter; the daemon loop, the executor socket and reconcile come on
//! top of them (see the issue tracker).
//!
//! The daemon will feed the engine through the one driver (`crate::drive`) with the journal as
//! its log, exactly as the simulator does; these adapters only turn the engine's actions into
//! calls and the calls' results into events. Nothing here decides anything.

pub mod breaker;
pub mod cloud;
pub mod daemon;
pub mod ec2;
pub mod fallback;
pub mod reconcile;
