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
        let mut first = true;
        loop {
            if limit > 0 && self.jobs.in_flight() >= limit {
                return;
            }
            // A poll known to decide nothing is skipped (see `QuietPolls`).
            if self.quiet.until.is_some_and(|t| self.now < t) {
                return;
            }
            let before = self.actions_len();
            // A poll handed the runner straight after another, at the same instant, finds
            // nothing more to remove: the job it took went to the newest idle machine (none
            // idle after it, nothing before it changed), and what it created comes last.
            let received = self.poll_once(first || !self.quiet.enabled);
            first = false;
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
    fn quiet_horizon(&mut self) -> Time {
        let idle_ms = self.period.idle.idle_time_ms();
        let first = self
            .fleet
            .first_idle_since_after(self.now.plus_millis(-idle_ms - 1));
        first.map_or(self.period.valid_until, |t| {
            self.period.valid_until.min(t.plus_millis(idle_ms + 1))
        })
    }

    /// One poll (spec section 3, steps 1-6), its walk (steps 1-2) only when `walk`. True when
    /// a job was received.
    pub(crate) fn poll_once(&mut self, walk: bool) -> bool {
        let now = self.now;
        let idle = self.period.idle;
        let entry = self.period.entry;
        let (limit, max_builds) = (self.settings.limit, self.settings.max_builds);

        // (1)-(2): in creation order, each idle machine judged against the machines already
        // counted (itself not yet counted).
        // With poll skipping off (the reference the property test holds skipping to), every
        // poll walks.
        if walk && (!self.quiet.enabled || self.walk_may_remove()) {
            // Decided on the slice, then carried out in the same order: a removal only marks
            // its machine Removing, which the walk counts as such already.
            let mut removals = std::mem::take(&mut self.quiet.removals);
            // When no idle machine can be at MaxBuilds (none was seeded, the settings did not
            // change) and the fleet is within `limit` (so the machines counted before any one
            // are fewer), only a machine idle longer than IdleTime can go: the walk stops
            // after the last of them (the machines after it change nothing), and an idle
            // machine not past IdleTime before it is only counted. With skipping off, the
            // whole fleet is walked and every idle machine judged.
            let over_limit = limit > 0 && self.fleet.len() as u64 > u64::from(limit);
            let only_past_idle_time = self.quiet.enabled && !self.quiet.retire_due && !over_limit;
            let mut candidates = if only_past_idle_time {
                self.fleet
                    .idle_since_before(now.plus_millis(-idle.idle_time_ms()))
            } else {
                usize::MAX
            };
            // Counted by state (`MachineState as usize`): a count, not a branch, per machine.
            let mut counted = [0u32; 4];
            for m in self.fleet.in_order() {
                if candidates == 0 {
                    break;
                }
                if m.state == MachineState::Idle {
                    let idle_ms = now.since(m.last_used);
                    if idle_ms > idle.idle_time_ms() {
                        candidates = candidates.saturating_sub(1);
                    } else if only_past_idle_time {
                        // Not past IdleTime: it stays, and is counted as idle.
                        counted[MachineState::Idle as usize] += 1;
                        continue;
                    }
                    if only_past_idle_time {
                        // Past IdleTime, and neither MaxBuilds nor `limit` can apply (see
                        // above): it goes when the machines before it are available enough.
                        let available = counted[MachineState::Idle as usize]
                            + counted[MachineState::Creating as usize];
                        let target = idle.target(counted[MachineState::Used as usize]);
                        if available >= target {
                            removals.push((
                                m.id,
                                RemoveReason::TooManyIdleMachines {
                                    idle_s: idle_ms / 1000,
                                    idle_time: idle.idle_time,
                                    available,
                                    target,
                                },
                            ));
                            counted[MachineState::Removing as usize] += 1;
                        } else {
                            counted[MachineState::Idle as usize] += 1;
                        }
                        continue;
                    }
                    let c = Counts {
                        creating: counted[MachineState::Creating as usize],
                        idle: counted[MachineState::Idle as usize],
                        used: counted[MachineState::Used as usize],
                        removing: counted[MachineState::Removing as usize],
                    };
                    let target = idle.target(c.used);
                    let reason = if max_builds > 0 && m.uses >= max_builds {
                        Some(RemoveReason::TooManyBuilds {
                            uses: m.uses,
                            max_builds,
                        })
                    } else if limit > 0 && c.total() >= limit {
                        Some(RemoveReason::TooManyMachines {
                            total: c.total(),
                            limit,
                        })
                    } else if idle_ms > idle.idle_time_ms() && c.available() >= target {
                        Some(RemoveReason::TooManyIdleMachines {
                            idle_s: idle_ms / 1000,
                            idle_time: idle.idle_time,
                            available: c.available(),
                            target,
                        })
                    } else {
                        None
                    };
                    if let Some(reason) = reason {
                        removals.push((m.id, reason));
                        counted[MachineState::Removing as usize] += 1;
                        continue;
                    }
                }
                counted[m.state as usize] += 1;
            }
            for (id, reason) in removals.drain(..) {
                self.remove(id, reason);
            }
            self.quiet.removals = removals;
            self.quiet.retire_due = false;
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

    /// Whether steps (1)-(2) could remove a machine now; when not, the walk would only count.
    /// - MaxBuilds: a machine that reaches it on finishing a job is retired then (`release`),
    ///   so an idle one at MaxBuilds exists only after seeding or a settings change
    ///   (`retire_due`, cleared by a walk, which retires them all).
    /// - `limit`: the machines counted before one are those created before it, so more than
    ///   `limit` machines must exist.
    /// - IdleTime: the first machine removed for it has at most Available - 1 available
    ///   machines before it, and the target is at least its value with none in use (it never
    ///   falls as more are in use); and some idle machine, the longest idle first, must be
    ///   past IdleTime.
    fn walk_may_remove(&mut self) -> bool {
        let c = self.fleet.counts();
        if c.idle == 0 {
            return false;
        }
        let limit = self.settings.limit;
        if self.quiet.retire_due || (limit > 0 && self.fleet.len() as u64 > u64::from(limit)) {
            return true;
        }
        let idle = self.period.idle;
        let now = self.now;
        c.available() > idle.target(0)
            && self
                .fleet
                .longest_idle()
                .is_some_and(|(_, since)| now.since(since) > idle.idle_time_ms())
    }

    /// The ticks this engine asks for while its polls are known to decide nothing
    /// (`QuietPolls`), handled at once: those at `at`, `at + check_interval`, ... that fall
    /// before `before` and inside the quiet stretch. Each would only move the poll grid on (the
    /// period cannot change inside the stretch, which ends at its boundary at the latest), so
    /// the engine ends exactly as if it had handled them one by one, which a property test
    /// checks. Returns how many it handled: none unless this is a docker-machine engine, quiet,
    /// with a free worker, and `at` is the poll its grid asks for.
    pub fn handle_quiet_ticks(&mut self, at: Time, before: Time) -> u64 {
        let Some(until) = self.quiet.until else {
            return 0;
        };
        if self.kind != crate::core::EngineKind::DockerMachine
            || !self.quiet.enabled
            || self.poll_deferred
            || at < self.now
            || at < self.next_poll
            || at < self.period.valid_from
            || self.jobs.in_flight() >= self.settings.concurrent
        {
            return 0;
        }
        let end = before.min(until).min(self.period.valid_until);
        if at >= end {
            return 0;
        }
        let step = (self.settings.check_interval.max(1) as i64).saturating_mul(1000);
        let n = (end.since(at) - 1) / step + 1;
        let last = at.plus_millis((n - 1) * step);
        self.now = last;
        self.next_poll = last.plus_millis(step);
        self.fleet.compact();
        self.deadline = self.docker_machine_deadline();
        n as u64
    }

    /// The next hand-over of the feeder; none while it is blocked on busy workers (a job's
    /// end, an event of its own, unblocks it).
    pub(crate) fn docker_machine_deadline(&self) -> Option<Time> {
        (!self.poll_deferred).then(|| self.next_poll.max(self.now))
    }
}
