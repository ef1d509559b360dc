//! The fleet: every machine with its state, kept in creation order, with the counts and the
//! indexes both engines decide from. Ordered maps only, so nothing depends on hashing.

use crate::core::event::{JobId, MachineId};
use crate::core::fxmap::{FastMap, sorted};
use crate::core::time::Time;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, VecDeque};

/// A machine's state (spec section 3). `Acquired` is not kept: in this model a job request is
/// answered within the poll that made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MachineState {
    Creating,
    Idle,
    Used,
    Removing,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub id: MachineId,
    pub state: MachineState,
    pub created_at: Time,
    /// When it last finished a job, or became ready: the idle clock starts here.
    pub last_used: Time,
    /// Jobs started on it.
    pub uses: u32,
    /// Under a spot interruption notice or rebalance recommendation.
    pub notice: bool,
    pub job: Option<JobId>,
    /// Bumped each time it becomes Idle, to invalidate stale idle-queue entries.
    epoch: u32,
}

/// Counts by state. Available = Idle + Creating; Total includes Removing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub creating: u32,
    pub idle: u32,
    pub used: u32,
    pub removing: u32,
}

impl Counts {
    pub fn available(&self) -> u32 {
        self.idle + self.creating
    }
    pub fn total(&self) -> u32 {
        self.creating + self.idle + self.used + self.removing
    }
    pub fn add(&mut self, s: MachineState) {
        *self.slot(s) += 1;
    }
    fn sub(&mut self, s: MachineState) {
        *self.slot(s) -= 1;
    }
    fn slot(&mut self, s: MachineState) -> &mut u32 {
        match s {
            MachineState::Creating => &mut self.creating,
            MachineState::Idle => &mut self.idle,
            MachineState::Used => &mut self.used,
            MachineState::Removing => &mut self.removing,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Fleet {
    /// Looked up by id only; walked through `order`.
    #[serde(with = "sorted")]
    machines: FastMap<MachineId, Machine>,
    /// Every machine's id, in creation order.
    order: BTreeSet<MachineId>,
    next_id: MachineId,
    counts: Counts,
    /// Idle machines that may take a job, by id (= creation order).
    idle_by_id: BTreeSet<MachineId>,
    /// Idle machines in the order they became idle (= by last_used); lazily cleaned.
    idle_fifo: VecDeque<(Time, MachineId, u32)>,
}

impl Fleet {
    pub fn counts(&self) -> Counts {
        self.counts
    }

    pub fn get(&self, id: MachineId) -> Option<&Machine> {
        self.machines.get(&id)
    }

    /// All machines in creation order.
    pub fn iter(&self) -> impl Iterator<Item = &Machine> {
        self.order.iter().map(|id| &self.machines[id])
    }

    pub fn ids(&self) -> Vec<MachineId> {
        self.order.iter().copied().collect()
    }

    /// The ids in creation order, into `out` (cleared first).
    pub fn ids_into(&self, out: &mut Vec<MachineId>) {
        out.clear();
        out.extend(self.order.iter().copied());
    }

    pub fn len(&self) -> usize {
        self.machines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.machines.is_empty()
    }

    /// Idle machines that can take a job (no spot notice).
    pub fn idle_ready(&self) -> usize {
        self.idle_by_id.len()
    }

    /// A new machine in the Creating state.
    pub fn create(&mut self, now: Time) -> MachineId {
        self.next_id += 1;
        let id = self.next_id;
        self.machines.insert(
            id,
            Machine {
                id,
                state: MachineState::Creating,
                created_at: now,
                last_used: now,
                uses: 0,
                notice: false,
                job: None,
                epoch: 0,
            },
        );
        self.order.insert(id);
        self.counts.creating += 1;
        id
    }

    fn set_state(&mut self, id: MachineId, to: MachineState) -> &mut Machine {
        let m = self.machines.get_mut(&id).expect("machine exists");
        let from = m.state;
        if from == MachineState::Idle {
            self.idle_by_id.remove(&id);
        }
        self.counts.sub(from);
        self.counts.add(to);
        m.state = to;
        m
    }

    /// The machine becomes Idle with its idle clock starting at `now`.
    pub fn make_idle(&mut self, id: MachineId, now: Time) {
        let m = self.set_state(id, MachineState::Idle);
        m.last_used = now;
        m.job = None;
        m.epoch = m.epoch.wrapping_add(1);
        let (notice, epoch) = (m.notice, m.epoch);
        self.idle_fifo.push_back((now, id, epoch));
        if !notice {
            self.idle_by_id.insert(id);
        }
    }

    /// Start `job` on machine `id` (it must be Idle): Used, uses += 1, last_used = now.
    pub fn start_job(&mut self, id: MachineId, job: JobId, now: Time) {
        let m = self.set_state(id, MachineState::Used);
        m.uses += 1;
        m.last_used = now;
        m.job = Some(job);
    }

    /// Job ended: the machine keeps `last_used = now`; the caller then idles or removes it.
    /// Returns its uses and whether it is under notice.
    pub fn end_job(&mut self, id: MachineId, now: Time) -> Option<(u32, bool)> {
        let m = self.machines.get_mut(&id)?;
        m.job = None;
        m.last_used = now;
        Some((m.uses, m.notice))
    }

    pub(crate) fn set_uses(&mut self, id: MachineId, uses: u32) {
        if let Some(m) = self.machines.get_mut(&id) {
            m.uses = uses;
        }
    }

    pub fn mark_removing(&mut self, id: MachineId) {
        self.set_state(id, MachineState::Removing);
    }

    pub fn mark_notice(&mut self, id: MachineId) {
        if let Some(m) = self.machines.get_mut(&id) {
            m.notice = true;
            if m.state == MachineState::Idle {
                self.idle_by_id.remove(&id);
            }
        }
    }

    /// Forget a machine that no longer exists; returns it.
    pub fn forget(&mut self, id: MachineId) -> Option<Machine> {
        let m = self.machines.remove(&id)?;
        self.order.remove(&id);
        self.counts.sub(m.state);
        if m.state == MachineState::Idle {
            self.idle_by_id.remove(&id);
        }
        Some(m)
    }

    /// The most recently created idle machine without a notice.
    pub fn newest_idle(&self) -> Option<MachineId> {
        self.idle_by_id.last().copied()
    }

    /// The idle machine that has been idle longest (notice or not), cleaning stale entries.
    pub fn longest_idle(&mut self) -> Option<(MachineId, Time)> {
        while let Some(&(t, id, epoch)) = self.idle_fifo.front() {
            match self.machines.get(&id) {
                Some(m) if m.state == MachineState::Idle && m.epoch == epoch => {
                    return Some((id, t));
                }
                _ => {
                    self.idle_fifo.pop_front();
                }
            }
        }
        None
    }

    /// Re-sort the idle queue by idle-since (after seeding machines out of order).
    pub(crate) fn resort_idle(&mut self) {
        self.idle_fifo
            .make_contiguous()
            .sort_by_key(|&(t, id, _)| (t, id));
    }

    /// Drop stale idle-queue entries so the queue stays proportional to the fleet.
    pub fn compact(&mut self) {
        if self.idle_fifo.len() > 64 && self.idle_fifo.len() > 4 * self.counts.idle as usize {
            let machines = &self.machines;
            self.idle_fifo.retain(|&(_, id, epoch)| {
                machines
                    .get(&id)
                    .is_some_and(|m| m.state == MachineState::Idle && m.epoch == epoch)
            });
        }
    }
}
