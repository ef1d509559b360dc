//! The simulator: replays a job trace through the engine in a seeded world and measures what
//! it costs and how long jobs wait.

pub mod attribution;
pub mod books;
pub mod calibration;
pub mod draws;
pub mod fit;
pub mod metrics;
pub mod price_history;
/// The price tables live beside the simulator (live mode reads them too).
pub use crate::prices;
pub mod run;
pub mod scenario_run;
pub mod series;
pub mod sweep;
pub mod window;
pub mod world;

pub use metrics::VariantResult;
pub use run::{NoObserver, Observer, SimConfig, SimError, simulate};
pub use world::{Boot, WorldModel, WorldOverrides};
