//! Replay: feed recorded events through the engine as a driver would, waking it at each
//! deadline it asks for before the next event, and hand out every action it emits.

use crate::core::{Action, Engine, EngineError, Event, Time};
use crate::drive::{DriveError, Driver};

/// The most deadline wake-ups one replay delivers: the `docker-machine` engine polls every
/// `check_interval`, so events years apart would otherwise spin for hours.
pub const MAX_WAKEUPS: u64 = 20_000_000;

/// Why a replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{0}")]
    Engine(#[from] EngineError),
    #[error(
        "more than {max} wake-ups of the engine before {until} (it polls every check_interval): replay a shorter span, or set SCALECAST_MAX_WAKEUPS"
    )]
    TooManyWakeups { max: u64, until: Time },
}

/// Drives one engine over a sequence of events.
pub struct Replayer {
    driver: Driver,
    last_tick: Option<Time>,
    wakeups: u64,
    max_wakeups: u64,
}

impl Replayer {
    pub fn new(engine: Engine) -> Self {
        Replayer {
            driver: Driver::unlogged(engine),
            last_tick: None,
            wakeups: 0,
            max_wakeups: MAX_WAKEUPS,
        }
    }

    /// Stop after this many wake-ups instead of [`MAX_WAKEUPS`].
    pub fn with_max_wakeups(mut self, max: u64) -> Self {
        self.max_wakeups = max;
        self
    }

    pub fn engine(&self) -> &Engine {
        self.driver.engine()
    }

    fn handle(&mut self, ev: &Event, out: &mut dyn FnMut(Action)) -> Result<(), ReplayError> {
        self.driver.handle(ev).map_err(|e| match e {
            DriveError::Refused { error, .. } => ReplayError::Engine(error),
            DriveError::Log(never) => match never {},
        })?;
        self.driver.drain_actions().for_each(out);
        Ok(())
    }

    /// Deliver every deadline due up to `until` (inclusive) as a Tick.
    pub fn run_until(
        &mut self,
        until: Time,
        out: &mut dyn FnMut(Action),
    ) -> Result<(), ReplayError> {
        while let Some(d) = self.driver.poll_timeout() {
            let at = d.max(self.engine().now());
            if at > until || self.last_tick == Some(at) {
                break;
            }
            self.wakeups += 1;
            if self.wakeups > self.max_wakeups {
                return Err(ReplayError::TooManyWakeups {
                    max: self.max_wakeups,
                    until,
                });
            }
            self.last_tick = Some(at);
            self.handle(&Event::tick(at), out)?;
        }
        Ok(())
    }

    /// Wake the engine for its deadlines before `ev`, then apply `ev`.
    pub fn feed(&mut self, ev: &Event, out: &mut dyn FnMut(Action)) -> Result<(), ReplayError> {
        if ev.at >= self.engine().now() {
            self.run_until(ev.at, out)?;
        }
        self.handle(ev, out)
    }
}
