//! Policy `scalecast`: the project's own (spec section 4). Decides on every event, judges
//! removal on full counts, and asks to be woken exactly when something becomes due.

use crate::core::action::{CreateReason, RemoveReason};
use crate::core::engine::Engine;
use crate::core::time::Time;

impl Engine {
    pub(crate) fn decide_scalecast(&mut self) {
        let now = self.now;
        let cap = self.settings.job_cap();
        let idle = self.period.idle;
        let entry = self.period.entry;
        let limit = self.settings.limit;

        // Waiting jobs start on idle machines, the most recently created first.
        while self.jobs.running() < cap {
            let (Some(job), Some(m)) = (self.jobs.front(), self.fleet.newest_idle()) else {
                break;
            };
            self.start(job, m);
        }

        // More live machines than `limit` (it was lowered): remove the longest idle.
        if limit > 0 {
            loop {
                let c = self.fleet.counts();
                let live = c.total() - c.removing;
                if live <= limit {
                    break;
                }
                let Some((id, _)) = self.fleet.longest_idle() else {
                    break;
                };
                self.remove(id, RemoveReason::TooManyMachines { total: live, limit });
            }
        }

        // Create: first a machine for every waiting job that could run, then up to the target.
        let waiting = self.jobs.waiting();
        let demand = waiting.min(cap.saturating_sub(self.jobs.running()));
        loop {
            let c = self.fleet.counts();
            let target = idle.target(c.used);
            let reason = if c.creating < demand {
                CreateReason::OnDemand {
                    waiting,
                    creating: c.creating,
                }
            } else if c.available() < target {
                CreateReason::IdlePool {
                    available: c.available(),
                    target,
                    entry,
                }
            } else {
                break;
            };
            if !self.can_create() {
                break;
            }
            self.create(reason);
        }

        // Surplus: idle machines past IdleTime, longest idle first, on full counts.
        loop {
            let c = self.fleet.counts();
            let target = idle.target(c.used);
            if c.available() <= target {
                break;
            }
            let Some((id, since)) = self.fleet.longest_idle() else {
                break;
            };
            let idle_ms = now.since(since);
            if idle_ms <= idle.idle_time_ms() {
                break;
            }
            self.remove(
                id,
                RemoveReason::TooManyIdleMachines {
                    idle_s: idle_ms / 1000,
                    idle_time: idle.idle_time,
                    available: c.available(),
                    target,
                },
            );
        }
    }

    /// The period boundary, and the instant the longest-idle machine becomes removable when
    /// there is a surplus.
    pub(crate) fn scalecast_deadline_mut(&mut self) -> Option<Time> {
        let mut d = self.period_deadline();
        let c = self.fleet.counts();
        let idle = self.period.idle;
        if c.available() > idle.target(c.used)
            && let Some((_, since)) = self.fleet.longest_idle()
        {
            let t = since.plus_millis(idle.idle_time_ms() + 1);
            d = Some(d.map_or(t, |d| d.min(t)));
        }
        d
    }
}
