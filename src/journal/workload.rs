//! A seeded stream of valid events (jobs arriving and finishing, machines getting ready, failing,
//! going, spot notices, ticks) for crash tests, property tests and benchmarks. It keeps its own
//! engine to know what is valid; the same seed and settings give the same events.

use crate::core::fleet::MachineState;
use crate::core::{ActionKind, Engine, EngineKind, Event, EventKind, Settings, Time};
use crate::drive::Driver;
use crate::rng::Rng;

pub struct Workload {
    driver: Driver,
    rng: Rng,
    now: Time,
    next_job: u64,
    /// Running jobs, in the order they started (kept here: asking the engine means sorting).
    running: Vec<u64>,
}

impl Workload {
    pub fn new(seed: u64, kind: EngineKind, settings: Settings, start: Time) -> Self {
        Workload {
            driver: Driver::unlogged(Engine::new(kind, settings, start)),
            rng: Rng::derive(seed, "workload"),
            now: start,
            next_job: 1,
            running: Vec::new(),
        }
    }

    /// The generator's own engine, after every event it gave.
    pub fn engine(&self) -> &Engine {
        self.driver.engine()
    }

    fn pick<T: Copy>(&mut self, v: &[T]) -> Option<T> {
        (!v.is_empty()).then(|| v[self.rng.below(v.len() as u64) as usize])
    }

    /// The next event (already applied to the generator's engine).
    pub fn next_event(&mut self) -> Event {
        loop {
            self.now = self.now.plus_millis(self.rng.below(20_000) as i64);
            let roll = self.rng.below(100);
            let machines = |st: Option<MachineState>, e: &Engine| -> Vec<u64> {
                e.fleet()
                    .iter()
                    .filter(|m| st.is_none_or(|s| m.state == s))
                    .map(|m| m.id)
                    .collect()
            };
            let kind = if roll < 35 {
                self.next_job += 1;
                Some(EventKind::JobArrived {
                    job: self.next_job - 1,
                })
            } else if roll < 65 {
                let running = std::mem::take(&mut self.running);
                let job = self.pick(&running);
                self.running = running;
                job.map(|job| EventKind::JobFinished { job })
            } else if roll < 85 {
                let c = machines(Some(MachineState::Creating), self.driver.engine());
                self.pick(&c)
                    .map(|machine| EventKind::MachineReady { machine })
            } else if roll < 88 {
                let c = machines(Some(MachineState::Creating), self.driver.engine());
                self.pick(&c)
                    .map(|machine| EventKind::MachineFailed { machine })
            } else if roll < 95 {
                let r = machines(Some(MachineState::Removing), self.driver.engine());
                let r = if r.is_empty() {
                    machines(None, self.driver.engine())
                } else {
                    r
                };
                self.pick(&r)
                    .map(|machine| EventKind::MachineGone { machine })
            } else if roll < 97 {
                let all = machines(None, self.driver.engine());
                self.pick(&all)
                    .map(|machine| EventKind::SpotNotice { machine })
            } else {
                Some(EventKind::Tick)
            };
            if let Some(kind) = kind {
                let ev = Event::new(self.now, kind);
                if self.driver.handle(&ev).is_ok() {
                    if let EventKind::JobFinished { job } = ev.kind {
                        self.running.retain(|j| *j != job);
                    }
                    for a in self.driver.drain_actions() {
                        match a.kind {
                            ActionKind::StartJob { job, .. } => self.running.push(job),
                            ActionKind::RequeueJob { job, .. } => {
                                self.running.retain(|j| *j != job)
                            }
                            _ => {}
                        }
                    }
                    return ev;
                }
            }
        }
    }
}

/// The settings the crash test's writer uses: a small fleet that churns.
pub fn crash_settings() -> (Settings, Time) {
    let settings = Settings {
        concurrent: 8,
        limit: 12,
        max_builds: 3,
        max_growth_rate: 4,
        idle: crate::core::IdleSettings {
            idle_count: 2,
            idle_time: 300,
            ..Default::default()
        },
        ..Settings::default()
    };
    (
        settings,
        Time::parse_rfc3339("2026-11-02T00:00:00Z").expect("fixed date"),
    )
}
