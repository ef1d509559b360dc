//! Policy `docker-machine`: GitLab Runner's docker+machine executor, reproduced (spec section 3),
//! with its polling, its order-dependent removal, and its refusal to request a job without an
//! idle machine.

use crate::core::action::{CreateReason, RemoveReason};
use crate::core::engine::Engine;
use crate::core::event::EventKind;
use crate::core::fleet::{Counts, MachineState};
use crate::core::time::Time;

impl Engine {
    /// GitLab's feeder (`commands/multi.go`, spec section 3): every `check_interval` it hands
    /// the runner to a free worker. While all `concurrent` workers are busy the hand-over
    /// blocks; it is taken the moment a worker frees, and the feeder sleeps a full interval
    /// after it. The poll grid depends only on these facts, never on when the engine is woken.
    pub(crate) fn decide_docker_machine(&mut self, _event: &EventKind) {
        let interval = self.settings.check_interval.max(1) as i64;
        let all_busy = self.jobs.in_flight() >= self.settings.concurrent;
        if self.poll_deferred {
            // The feeder is blocked on a busy pool: a worker freeing takes the hand-over.
            if all_busy {
                return;
            }
            self.poll_deferred = false;
        } else {
            if self.now < self.next_poll {
                return;
            }
            if all_busy {
                self.poll_deferred = true;
                return;
            }
        }
        self.next_poll = self.now.plus_secs(interval);
        self.worker_poll();
    }

    /// A worker holds the runner: `acquireBuild` checks the runner's `limit` before the
    /// provider is asked; while `limit` jobs are in flight the poll decides nothing. After a
    /// job is received the runner is handed straight to another free worker, if any.
    fn worker_poll(&mut self) {
        let (limit, concurrent) = (self.settings.limit, self.settings.concurrent);
        loop {
            if limit > 0 && self.jobs.in_flight() >= limit {
                return;
            }
            // A poll known to decide nothing is skipped (see `QuietPolls`).
            if self.quiet.until.is_some_and(|t| self.now < t) {
                return;
            }
            let before = self.actions_len();
            let received = self.poll_once();
            if !received && self.actions_len() == before && self.quiet.enabled {
                self.quiet.until = Some(self.quiet_horizon());
            }
            if !received || self.jobs.in_flight() >= concurrent {
                return;
            }
        }
    }

    /// After a poll that decided nothing: the first instant a poll could decide otherwise with
    /// no event in between: an idle machine passing IdleTime (step 2's only clock), or the
    /// period's boundary (the idle settings). A machine already past IdleTime and kept was
    /// kept for the counts before it in the creation order, which only change when one of
    /// those passes IdleTime, or by an event.
    fn quiet_horizon(&self) -> Time {
        let idle_ms = self.period.idle.idle_time_ms();
        self.fleet
            .iter()
            .filter(|m| m.state == MachineState::Idle)
            .map(|m| m.last_used.plus_millis(idle_ms + 1))
            .filter(|&t| t > self.now)
            .fold(self.period.valid_until, Time::min)
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
        let mut ids = std::mem::take(&mut self.quiet.ids);
        // Only idle machines are judged; with none, the walk would only count.
        if self.fleet.counts().idle > 0 {
            self.fleet.ids_into(&mut ids);
        } else {
            ids.clear();
        }
        for &id in &ids {
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
        self.quiet.ids = ids;

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

    /// The next hand-over of the feeder; none while it is blocked on busy workers (a job's
    /// end, an event of its own, unblocks it).
    pub(crate) fn docker_machine_deadline(&self) -> Option<Time> {
        (!self.poll_deferred).then(|| self.next_poll.max(self.now))
    }
}
