//! The job side of the state: the FIFO queue of waiting jobs, jobs received and waiting for a
//! machine (docker-machine on-demand mode), and running jobs. A job that arrived is always in
//! exactly one of these, or finished.

use crate::core::event::{JobId, MachineId};
use crate::core::idmap::IdMap;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Pending: in the queue, not yet given to a worker.
    Waiting,
    /// Received by a worker, waiting for a machine to be created (on-demand mode).
    Awaiting,
    Running(MachineId),
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Jobs {
    /// Looked up by id only; `iter` sorts.
    states: IdMap<JobState>,
    queue: VecDeque<JobId>,
    awaiting: VecDeque<JobId>,
    running: u32,
    finished: u64,
    requeued: u64,
}

impl Jobs {
    pub fn state(&self, job: JobId) -> Option<JobState> {
        self.states.get(&job).copied()
    }
    pub fn waiting(&self) -> u32 {
        self.queue.len() as u32
    }
    pub fn awaiting(&self) -> u32 {
        self.awaiting.len() as u32
    }
    pub fn running(&self) -> u32 {
        self.running
    }
    /// Jobs holding a worker: running or received and waiting for a machine.
    pub fn in_flight(&self) -> u32 {
        self.running + self.awaiting.len() as u32
    }
    pub fn finished(&self) -> u64 {
        self.finished
    }
    pub fn requeued(&self) -> u64 {
        self.requeued
    }
    /// Waiting jobs, oldest first.
    pub fn queue(&self) -> impl Iterator<Item = JobId> + '_ {
        self.queue.iter().copied()
    }
    /// All unfinished jobs with their state, by id.
    pub fn iter(&self) -> impl Iterator<Item = (JobId, JobState)> + '_ {
        let v: Vec<(JobId, JobState)> = self
            .states
            .sorted()
            .into_iter()
            .map(|(j, s)| (j, *s))
            .collect();
        v.into_iter()
    }

    /// A new job joins the back of the queue. False when the id is already known.
    pub fn arrive(&mut self, job: JobId) -> bool {
        if self.states.contains_key(&job) {
            return false;
        }
        self.states.insert(job, JobState::Waiting);
        self.queue.push_back(job);
        true
    }

    pub fn front(&self) -> Option<JobId> {
        self.queue.front().copied()
    }

    /// Take the oldest waiting job off the queue and mark it received (awaiting a machine).
    pub fn receive(&mut self) -> Option<JobId> {
        let job = self.queue.pop_front()?;
        self.states.insert(job, JobState::Awaiting);
        self.awaiting.push_back(job);
        Some(job)
    }

    /// The oldest job awaiting a machine.
    pub fn oldest_awaiting(&self) -> Option<JobId> {
        self.awaiting.front().copied()
    }

    /// Mark `job` (waiting at the queue front, or the oldest awaiting) as running on `machine`.
    pub fn start(&mut self, job: JobId, machine: MachineId) {
        let Some(state) = self.states.get_mut(&job) else {
            return;
        };
        match *state {
            JobState::Waiting => {
                debug_assert_eq!(self.queue.front(), Some(&job));
                self.queue.pop_front();
            }
            JobState::Awaiting => {
                debug_assert_eq!(self.awaiting.front(), Some(&job));
                self.awaiting.pop_front();
            }
            JobState::Running(_) => return,
        }
        *state = JobState::Running(machine);
        self.running += 1;
    }

    /// Record `job` as already running on `machine` (to set up a given situation).
    pub(crate) fn seed_running(&mut self, job: JobId, machine: MachineId) -> bool {
        if self.states.contains_key(&job) {
            return false;
        }
        self.states.insert(job, JobState::Running(machine));
        self.running += 1;
        true
    }

    /// A running job ended; returns the machine it ran on.
    pub fn finish(&mut self, job: JobId) -> Option<MachineId> {
        let JobState::Running(m) = self.state(job)? else {
            return None;
        };
        self.states.remove(&job);
        self.running -= 1;
        self.finished += 1;
        Some(m)
    }

    /// A job that had not started leaves: out of the queue, or no longer awaiting a machine.
    /// False (nothing changed) when it is running or unknown.
    pub fn cancel(&mut self, job: JobId) -> bool {
        let list = match self.states.get(&job) {
            Some(JobState::Waiting) => &mut self.queue,
            Some(JobState::Awaiting) => &mut self.awaiting,
            _ => return false,
        };
        list.retain(|j| *j != job);
        self.states.remove(&job);
        true
    }

    /// A running job lost its machine: back to the end of the queue, counted as a retry.
    pub fn requeue(&mut self, job: JobId) {
        if let Some(JobState::Running(_)) = self.states.get(&job) {
            self.running -= 1;
            self.states.insert(job, JobState::Waiting);
            self.queue.push_back(job);
            self.requeued += 1;
        }
    }
}
