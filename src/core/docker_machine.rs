//! Policy `docker-machine`: GitLab Runner's docker+machine executor, reproduced (spec section 3),
//! with its polling, its order-dependent removal, and its refusal to request a job without an
//! idle machine.

use crate::core::action::{CreateReason, RemoveReason};
use crate::core::engine::Engine;
use crate::core::event::EventKind;
use crate::core::fleet::{Counts, MachineState};
use crate::core::time::Time;

impl Engine {
    pub(crate) fn decide_docker_machine(&mut self, _event: &EventKind) {
        let cap = self.settings.job_cap();
        let due = self.now >= self.next_poll;
        if !due && !self.poll_deferred {
            return;
        }
        if due {
            self.next_poll = self
                .now
                .plus_secs(self.settings.check_interval.max(1) as i64);
        }
        if self.jobs.in_flight() >= cap {
            // No free worker: nothing polls until a job ends.
            self.poll_deferred = true;
            return;
        }
        self.poll_deferred = false;
        // After a job is received the runner polls again right away.
        while self.poll_once() && self.jobs.in_flight() < cap {}
    }

    /// One poll (spec section 3, steps 1-6). True when a job was received.
    pub(crate) fn poll_once(&mut self) -> bool {
        let now = self.now;
        let idle = self.period.idle;
        let entry = self.period.entry;
        let (limit, max_builds) = (self.settings.limit, self.settings.max_builds);

        // (1)-(2): in creation order, each idle machine judged against the machines already
        // counted (itself not yet counted).
        let mut counted = Counts::default();
        for id in self.fleet.ids() {
            let Some(m) = self.fleet.get(id) else {
                continue;
            };
            let state = m.state;
            if state == MachineState::Idle {
                let idle_ms = now.since(m.last_used);
                let target = idle.target(counted.used);
                let reason = if max_builds > 0 && m.uses >= max_builds {
                    Some(RemoveReason::TooManyBuilds {
                        uses: m.uses,
                        max_builds,
                    })
                } else if limit > 0 && counted.total() >= limit {
                    Some(RemoveReason::TooManyMachines {
                        total: counted.total(),
                        limit,
                    })
                } else if idle_ms > idle.idle_time_ms() && counted.available() >= target {
                    Some(RemoveReason::TooManyIdleMachines {
                        idle_s: idle_ms / 1000,
                        idle_time: idle.idle_time,
                        available: counted.available(),
                        target,
                    })
                } else {
                    None
                };
                if let Some(reason) = reason {
                    self.remove(id, reason);
                    counted.add(MachineState::Removing);
                    continue;
                }
            }
            counted.add(state);
        }

        // (3): create while Available < T, within limit and MaxGrowthRate.
        let target = idle.target(self.fleet.counts().used);
        loop {
            let available = self.fleet.counts().available();
            if available >= target || !self.can_create() {
                break;
            }
            self.create(CreateReason::IdlePool {
                available,
                target,
                entry,
            });
        }

        // (4): the newest idle machine takes the oldest pending job.
        let Some(job) = self.jobs.front() else {
            return false;
        };
        if let Some(m) = self.fleet.newest_idle() {
            self.start(job, m);
            return true;
        }
        // (5): no idle machine: only in on-demand mode is a job requested, with a machine
        // created for it; the job takes whichever machine becomes free first.
        if idle.idle_count == 0 && self.can_create() {
            let waiting = self.jobs.waiting();
            let creating = self.fleet.counts().creating;
            self.jobs.receive();
            self.create(CreateReason::OnDemand { waiting, creating });
            return true;
        }
        false
    }

    pub(crate) fn docker_machine_deadline(&self) -> Option<Time> {
        if self.jobs.in_flight() >= self.settings.job_cap() {
            None
        } else {
            Some(self.next_poll.max(self.now))
        }
    }
}
