//! The one sans-IO driver. Every loop that feeds the engine (the simulator, replay, journal
//! recovery and verification, the journal as a trace, live mode) goes through it, so each
//! keeps the same contract:
//!
//! 1. an event is written to the event log **before** the engine applies it (journal first);
//! 2. every action the engine decided is drained before the next event is handled (asserted
//!    in debug builds);
//! 3. the engine is woken with a `Tick` at [`Driver::poll_timeout`] and never polled on a
//!    fixed beat; a `Tick` at time `t` comes after every other event at `t`.
//!
//! The driver does no I/O itself: the log is a trait ([`NoLog`] for runs nobody records; the
//! journal's `JournalLog` for recorded ones), and time only arrives inside events.

use crate::core::{Action, Engine, EngineError, Event, Time};
use std::convert::Infallible;

/// Where events are written before they are applied.
pub trait EventLog {
    type Error: std::error::Error;
    /// Write these events as one batch; when it returns they are as durable as the log makes
    /// them.
    fn append(&mut self, events: &[Event]) -> Result<(), Self::Error>;
    /// The engine after a batch was applied (a log may snapshot it).
    fn applied(&mut self, _engine: &Engine) -> Result<(), Self::Error> {
        Ok(())
    }
    /// The run is over: write out what is buffered (a log may snapshot the final state).
    fn close(&mut self, _engine: &Engine) -> Result<(), Self::Error> {
        Ok(())
    }
    /// Whether the log keeps the events it is given. One that keeps nothing lets the driver
    /// handle a quiet engine's ticks at once ([`Driver::handle_quiet_ticks`]), as no record of
    /// each one is owed.
    fn keeps(&self) -> bool {
        true
    }
}

/// A log that keeps nothing: simulations and replays nobody records.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoLog;

impl EventLog for NoLog {
    type Error = Infallible;
    fn append(&mut self, _events: &[Event]) -> Result<(), Infallible> {
        Ok(())
    }
    fn keeps(&self) -> bool {
        false
    }
}

impl<L: EventLog + ?Sized> EventLog for &mut L {
    type Error = L::Error;
    fn append(&mut self, events: &[Event]) -> Result<(), Self::Error> {
        (**self).append(events)
    }
    fn applied(&mut self, engine: &Engine) -> Result<(), Self::Error> {
        (**self).applied(engine)
    }
    fn close(&mut self, engine: &Engine) -> Result<(), Self::Error> {
        (**self).close(engine)
    }
    fn keeps(&self) -> bool {
        (**self).keeps()
    }
}

/// Why an event was not taken.
#[derive(Debug, thiserror::Error)]
pub enum DriveError<E: std::error::Error> {
    /// The log could not write it: the engine did not apply it.
    #[error("the event log failed: {0}")]
    Log(E),
    /// Logged, but the engine refused it (a fact that does not fit the state); the state is
    /// unchanged, and replaying the log refuses it again at the same point.
    #[error("engine refused an event at {at}: {error}")]
    Refused { at: Time, error: EngineError },
}

/// Owns the engine and its log.
#[derive(Debug)]
pub struct Driver<L: EventLog = NoLog> {
    engine: Engine,
    log: L,
}

impl Driver<NoLog> {
    /// A driver whose events are not recorded.
    pub fn unlogged(engine: Engine) -> Self {
        Driver::new(engine, NoLog)
    }
}

impl<L: EventLog> Driver<L> {
    pub fn new(engine: Engine, log: L) -> Self {
        Driver { engine, log }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn log(&self) -> &L {
        &self.log
    }

    pub fn log_mut(&mut self) -> &mut L {
        &mut self.log
    }

    pub fn into_parts(self) -> (Engine, L) {
        (self.engine, self.log)
    }

    /// The engine to read and the log to write, at once (a log that snapshots the engine).
    pub fn parts_mut(&mut self) -> (&Engine, &mut L) {
        (&self.engine, &mut self.log)
    }

    /// The `Tick`s a quiet engine asks for from `at` on, before `before`, handled at once
    /// ([`Engine::handle_quiet_ticks`]); how many. None when the log keeps events (each tick
    /// is then written and applied on its own), nor when the engine is not quiet.
    pub fn handle_quiet_ticks(&mut self, at: crate::core::Time, before: crate::core::Time) -> u64 {
        if self.log.keeps() {
            return 0;
        }
        self.engine.handle_quiet_ticks(at, before)
    }

    /// Log `ev`, then apply it. Its actions wait in [`Driver::poll_action`].
    pub fn handle(&mut self, ev: &Event) -> Result<(), DriveError<L::Error>> {
        debug_assert!(
            !self.engine.has_actions(),
            "drive contract: every action is drained before the next event"
        );
        self.log
            .append(std::slice::from_ref(ev))
            .map_err(DriveError::Log)?;
        let applied = self.engine.handle(ev);
        self.log.applied(&self.engine).map_err(DriveError::Log)?;
        applied.map_err(|error| DriveError::Refused { at: ev.at, error })
    }

    /// Log `events` as one batch, then apply each: each event's actions, or why the engine
    /// refused it (refused events stay logged).
    pub fn handle_batch(
        &mut self,
        events: &[Event],
    ) -> Result<Vec<Result<Vec<Action>, EngineError>>, L::Error> {
        debug_assert!(
            !self.engine.has_actions(),
            "drive contract: every action is drained before the next event"
        );
        if events.is_empty() {
            return Ok(Vec::new());
        }
        self.log.append(events)?;
        let out = events
            .iter()
            .map(|ev| {
                self.engine
                    .handle(ev)
                    .map(|()| self.engine.drain_actions().collect())
            })
            .collect();
        self.log.applied(&self.engine)?;
        Ok(out)
    }

    /// Wake the engine at `at`.
    pub fn tick(&mut self, at: Time) -> Result<(), DriveError<L::Error>> {
        self.handle(&Event::tick(at))
    }

    /// The next action decided, oldest first.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.engine.poll_action()
    }

    /// Every action decided, oldest first.
    pub fn drain_actions(&mut self) -> impl Iterator<Item = Action> + '_ {
        self.engine.drain_actions()
    }

    /// When the engine next needs a `Tick`, if ever.
    pub fn poll_timeout(&self) -> Option<Time> {
        self.engine.poll_timeout()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{EngineKind, EventKind, Settings};

    /// A log that records what it was given, and can be told to fail.
    #[derive(Default)]
    struct Recording {
        events: Vec<Event>,
        applied: usize,
        fail: bool,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("disk full")]
    struct Full;

    impl EventLog for Recording {
        type Error = Full;
        fn append(&mut self, events: &[Event]) -> Result<(), Full> {
            if self.fail {
                return Err(Full);
            }
            self.events.extend_from_slice(events);
            Ok(())
        }
        fn applied(&mut self, _: &Engine) -> Result<(), Full> {
            self.applied += 1;
            Ok(())
        }
    }

    fn engine() -> Engine {
        let s = Settings {
            concurrent: 2,
            ..Settings::default()
        };
        Engine::new(EngineKind::Scalecast, s, Time(0))
    }

    #[test]
    fn an_event_is_logged_before_it_is_applied_and_refused_ones_stay_logged() {
        let mut d = Driver::new(engine(), Recording::default());
        let arrive = Event::new(Time(1_000), EventKind::JobArrived { job: 7 });
        d.handle(&arrive).unwrap();
        assert_eq!(d.log().events, vec![arrive.clone()]);
        assert!(d.drain_actions().count() > 0, "a machine for the job");
        let again = Event::new(Time(2_000), EventKind::JobArrived { job: 7 });
        assert!(matches!(d.handle(&again), Err(DriveError::Refused { .. })));
        assert_eq!(d.log().events.len(), 2, "refused events stay in the log");
        assert_eq!(d.log().applied, 2);
    }

    #[test]
    fn a_log_failure_leaves_the_engine_untouched() {
        let mut d = Driver::new(engine(), Recording::default());
        d.log_mut().fail = true;
        let before = d.engine().clone();
        let ev = Event::new(Time(1_000), EventKind::JobArrived { job: 1 });
        assert!(matches!(d.handle(&ev), Err(DriveError::Log(Full))));
        assert_eq!(d.engine(), &before);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "drive contract")]
    fn handling_an_event_with_actions_undrained_breaks_the_contract() {
        let mut d = Driver::unlogged(engine());
        d.handle(&Event::new(Time(1_000), EventKind::JobArrived { job: 1 }))
            .unwrap();
        d.handle(&Event::new(Time(2_000), EventKind::JobArrived { job: 2 }))
            .unwrap();
    }
}
