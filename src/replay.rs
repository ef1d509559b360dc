//! Replay: feed recorded events through the engine as a driver would, waking it at each
//! deadline it asks for before the next event, and hand out every action it emits.

use crate::core::{Action, Engine, EngineError, Event, EventKind, Time};

/// Drives one engine over a sequence of events.
pub struct Replayer {
    engine: Engine,
    last_tick: Option<Time>,
}

impl Replayer {
    pub fn new(engine: Engine) -> Self {
        Replayer {
            engine,
            last_tick: None,
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Deliver every deadline due up to `until` (inclusive) as a Tick.
    pub fn run_until(
        &mut self,
        until: Time,
        out: &mut dyn FnMut(Action),
    ) -> Result<(), EngineError> {
        while let Some(d) = self.engine.poll_timeout() {
            let at = d.max(self.engine.now());
            if at > until || self.last_tick == Some(at) {
                break;
            }
            self.last_tick = Some(at);
            self.engine.handle(&Event::new(at, EventKind::Tick))?;
            self.engine.drain_actions().for_each(&mut *out);
        }
        Ok(())
    }

    /// Wake the engine for its deadlines before `ev`, then apply `ev`.
    pub fn feed(&mut self, ev: &Event, out: &mut dyn FnMut(Action)) -> Result<(), EngineError> {
        if ev.at >= self.engine.now() {
            self.run_until(ev.at, out)?;
        }
        self.engine.handle(ev)?;
        self.engine.drain_actions().for_each(&mut *out);
        Ok(())
    }
}
