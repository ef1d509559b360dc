//! The fleet: every machine with its state, kept in creation order, with the counts and the
//! indexes both engines decide from. Ordered maps only, so nothing depends on hashing.

use crate::core::event::{JobId, MachineId};
use crate::core::idmap::{IdMap, IdSet};
use crate::core::time::Time;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Machine ids in ascending order, in a plain vector: fleets are small, ids are made in
/// ascending order (so a new one goes at the end), and a walk is a slice. Stored exactly as
/// the ordered set it replaces (a sequence of ids), so journals read the same.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
struct SortedIds(Vec<MachineId>);

impl SortedIds {
    fn insert(&mut self, id: MachineId) {
        match self.0.last() {
            Some(&last) if last < id => self.0.push(id),
            None => self.0.push(id),
            _ => {
                if let Err(i) = self.0.binary_search(&id) {
                    self.0.insert(i, id);
                }
            }
        }
    }

    /// Remove `id`; where it was.
    fn remove(&mut self, id: &MachineId) -> Option<usize> {
        let i = self.0.binary_search(id).ok()?;
        self.0.remove(i);
        Some(i)
    }

    fn iter(&self) -> std::slice::Iter<'_, MachineId> {
        self.0.iter()
    }
}

/// What the docker-machine poll reads of every machine, in creation order (beside
/// `Fleet::order`): its walk mostly only counts, and a slice is read faster than a map. Made
/// on the first walk, then kept in step. A cache, not state: never stored (a restored fleet
/// makes it again) nor compared.
#[derive(Clone, Debug, Default)]
struct InOrder(Option<Vec<Slot>>);

impl PartialEq for InOrder {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// Whether the idle queue's first entry is known to be live (its machine idle since then),
/// so the longest-idle machine is found without a lookup. A cache: never stored nor compared.
#[derive(Clone, Copy, Debug, Default)]
struct FrontLive(bool);

impl PartialEq for FrontLive {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// How many idle machines have been idle since before a given instant (their `last_used`
/// earlier than it), kept in step with every change so the poll's question (how many idle
/// machines are past IdleTime) does not read the idle queue each time: when the instant moves
/// on, only the queue's entries between the old and the new instant are read. A cache:
/// never stored nor compared (a restored fleet counts again).
#[derive(Clone, Copy, Debug, Default)]
struct IdleBefore(Option<(Time, usize)>);

impl PartialEq for IdleBefore {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl IdleBefore {
    /// A machine idle since `since` becomes idle.
    fn joins(&mut self, since: Time) {
        if let Some((t, n)) = &mut self.0
            && since < *t
        {
            *n += 1;
        }
    }

    /// A machine idle since `since` stops being idle.
    fn leaves(&mut self, since: Time) {
        if let Some((t, n)) = &mut self.0
            && since < *t
        {
            *n -= 1;
        }
    }
}

/// A machine as the poll's walk reads it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Slot {
    pub id: MachineId,
    pub state: MachineState,
    pub last_used: Time,
    pub uses: u32,
}

impl Slot {
    fn of(m: &Machine) -> Slot {
        Slot {
            id: m.id,
            state: m.state,
            last_used: m.last_used,
            uses: m.uses,
        }
    }
}

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
    machines: IdMap<Machine>,
    /// Every machine's id, in creation order.
    order: SortedIds,
    next_id: MachineId,
    counts: Counts,
    /// Idle machines that may take a job, by id (= creation order).
    idle_by_id: IdSet,
    /// Idle machines in the order they became idle (= by last_used); lazily cleaned.
    idle_fifo: VecDeque<(Time, MachineId, u32)>,
    #[serde(skip)]
    in_order: InOrder,
    #[serde(skip)]
    front_live: FrontLive,
    #[serde(skip)]
    idle_before: IdleBefore,
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
        // The newest id: the last in creation order.
        if let Some(v) = &mut self.in_order.0 {
            v.push(Slot::of(&self.machines[&id]));
        }
        self.counts.creating += 1;
        id
    }

    /// Every machine in creation order, as the poll's walk reads it (laid out on the first
    /// call, then kept in step with every change).
    pub(crate) fn in_order(&mut self) -> &[Slot] {
        if self.in_order.0.is_none() {
            let machines = &self.machines;
            self.in_order.0 = Some(
                self.order
                    .iter()
                    .map(|id| Slot::of(&machines[id]))
                    .collect(),
            );
        }
        self.in_order.0.as_deref().unwrap_or_default()
    }

    /// Bring machine `id`'s slot in step after a change (when the slice is laid out).
    #[inline]
    fn sync(&mut self, id: MachineId) {
        if self.in_order.0.is_some() {
            self.sync_slot(id);
        }
    }

    #[inline(never)]
    fn sync_slot(&mut self, id: MachineId) {
        if let Some(v) = &mut self.in_order.0
            && let Ok(i) = self.order.0.binary_search(&id)
            && let Some(m) = self.machines.get(&id)
        {
            v[i] = Slot::of(m);
        }
    }

    /// Machine `id` changes: if it is the idle queue's first, that entry may be stale now.
    fn touch(&mut self, id: MachineId) {
        if self.front_live.0 && self.idle_fifo.front().is_some_and(|&(_, f, _)| f == id) {
            self.front_live.0 = false;
        }
    }

    fn set_state(&mut self, id: MachineId, to: MachineState) -> &mut Machine {
        self.touch(id);
        let m = self.machines.get_mut(&id).expect("machine exists");
        let from = m.state;
        if from == MachineState::Idle {
            self.idle_by_id.remove(&id);
            self.idle_before.leaves(m.last_used);
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
        self.idle_before.joins(now);
        if !notice {
            self.idle_by_id.insert(id);
        }
        self.sync(id);
    }

    /// Start `job` on machine `id` (it must be Idle): Used, uses += 1, last_used = now.
    pub fn start_job(&mut self, id: MachineId, job: JobId, now: Time) {
        let m = self.set_state(id, MachineState::Used);
        m.uses += 1;
        m.last_used = now;
        m.job = Some(job);
        self.sync(id);
    }

    /// Job ended: the machine keeps `last_used = now`; the caller then idles or removes it.
    /// Returns its uses and whether it is under notice.
    pub fn end_job(&mut self, id: MachineId, now: Time) -> Option<(u32, bool)> {
        let m = self.machines.get_mut(&id)?;
        m.job = None;
        // An idle machine ran no job (the engine ends jobs on Used machines only): its idle
        // clock stays when it became idle, its idle-queue entry.
        if m.state != MachineState::Idle {
            m.last_used = now;
        }
        let r = (m.uses, m.notice);
        self.sync(id);
        Some(r)
    }

    pub(crate) fn set_uses(&mut self, id: MachineId, uses: u32) {
        if let Some(m) = self.machines.get_mut(&id) {
            m.uses = uses;
        }
        self.sync(id);
    }

    pub fn mark_removing(&mut self, id: MachineId) {
        self.set_state(id, MachineState::Removing);
        self.sync(id);
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
        self.touch(id);
        let m = self.machines.remove(&id)?;
        if let Some(i) = self.order.remove(&id)
            && let Some(v) = &mut self.in_order.0
        {
            v.remove(i);
        }
        self.counts.sub(m.state);
        if m.state == MachineState::Idle {
            self.idle_by_id.remove(&id);
            self.idle_before.leaves(m.last_used);
        }
        Some(m)
    }

    /// The most recently created idle machine without a notice.
    pub fn newest_idle(&self) -> Option<MachineId> {
        self.idle_by_id.last()
    }

    /// The idle machine that has been idle longest (notice or not), cleaning stale entries.
    pub fn longest_idle(&mut self) -> Option<(MachineId, Time)> {
        if self.front_live.0
            && let Some(&(t, id, _)) = self.idle_fifo.front()
        {
            return Some((id, t));
        }
        while let Some(&(t, id, epoch)) = self.idle_fifo.front() {
            if self.live(id, epoch) {
                self.front_live.0 = true;
                return Some((id, t));
            }
            self.idle_fifo.pop_front();
        }
        None
    }

    /// The earliest idle-since (`last_used`) of an idle machine that is later than `t`: the
    /// idle queue is in idle-since order, so a binary search finds where to start, and the
    /// first live entry from there is the answer.
    pub fn first_idle_since_after(&self, t: Time) -> Option<Time> {
        let from = self.idle_fifo.partition_point(|&(since, _, _)| since <= t);
        self.idle_fifo
            .range(from..)
            .find(|&&(_, id, epoch)| self.live(id, epoch))
            .map(|&(since, _, _)| since)
    }

    /// How many idle machines have been idle since before `t` (their idle-since earlier than
    /// `t`): the idle queue's live entries up to there. Counted from the last answer when `t`
    /// is not earlier than its instant (only the entries in between are read), else afresh.
    pub fn idle_since_before(&mut self, t: Time) -> usize {
        let (from, mut n) = match self.idle_before.0 {
            Some((c, n)) if c <= t => (c, n),
            _ => (Time(i64::MIN), 0),
        };
        if from < t {
            let start = self
                .idle_fifo
                .partition_point(|&(since, _, _)| since < from);
            n += self
                .idle_fifo
                .range(start..)
                .take_while(|&&(since, _, _)| since < t)
                .filter(|&&(_, id, epoch)| self.live(id, epoch))
                .count();
        }
        self.idle_before.0 = Some((t, n));
        n
    }

    /// Whether an idle-queue entry is its machine's current one.
    fn live(&self, id: MachineId, epoch: u32) -> bool {
        self.machines
            .get(&id)
            .is_some_and(|m| m.state == MachineState::Idle && m.epoch == epoch)
    }

    /// Re-sort the idle queue by idle-since (after seeding machines out of order).
    pub(crate) fn resort_idle(&mut self) {
        self.front_live.0 = false;
        self.idle_before.0 = None;
        self.idle_fifo
            .make_contiguous()
            .sort_by_key(|&(t, id, _)| (t, id));
    }

    /// Drop stale idle-queue entries so the queue stays near the idle machines it holds: the
    /// docker-machine poll's quiet horizon reads past the stale ones, so few are kept (each
    /// pass drops at least a third of what it reads, so it costs a few checks per entry).
    #[inline]
    pub fn compact(&mut self) {
        if self.idle_fifo.len() > 16 + self.counts.idle as usize * 3 / 2 {
            self.compact_now();
        }
    }

    #[inline(never)]
    fn compact_now(&mut self) {
        let machines = &self.machines;
        self.idle_fifo.retain(|&(_, id, epoch)| {
            machines
                .get(&id)
                .is_some_and(|m| m.state == MachineState::Idle && m.epoch == epoch)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The poll's slice and the idle queue's cached first entry stay in step with the machines
    /// through every kind of change, and a restored fleet (which has neither) makes them again.
    #[test]
    fn the_walk_slice_follows_every_change() {
        let fresh = |f: &Fleet| -> Vec<Slot> { f.iter().map(Slot::of).collect() };
        let mut f = Fleet::default();
        assert!(f.in_order().is_empty());
        let mut rng = crate::rng::Rng::new(0x9E37_79B9_7F4A_7C15);
        let mut now = Time(0);
        for step in 0..5_000 {
            let x = rng.next_u64();
            now = now.plus_millis((x % 1000) as i64);
            let ids = f.ids();
            let pick = |n: u64| ids.get((n % ids.len().max(1) as u64) as usize).copied();
            let of = |f: &Fleet, id: MachineId| f.get(id).map(|m| m.state);
            match (x >> 8) % 8 {
                0 | 1 => {
                    f.create(now);
                }
                2 => {
                    if let Some(id) = pick(x >> 16)
                        && matches!(
                            of(&f, id),
                            Some(MachineState::Creating | MachineState::Used)
                        )
                    {
                        f.make_idle(id, now);
                    }
                }
                3 => {
                    if let Some(id) = pick(x >> 16)
                        && of(&f, id) == Some(MachineState::Idle)
                    {
                        f.start_job(id, step, now);
                    }
                }
                4 => {
                    if let Some(id) = pick(x >> 16) {
                        f.end_job(id, now);
                    }
                }
                5 => {
                    if let Some(id) = pick(x >> 16) {
                        f.mark_removing(id);
                    }
                }
                6 => {
                    if let Some(id) = pick(x >> 16) {
                        f.forget(id);
                    }
                }
                _ => {
                    if let Some(id) = pick(x >> 16) {
                        f.set_uses(id, (x >> 24) as u32 % 9);
                        f.mark_notice(id);
                    }
                }
            }
            let want = fresh(&f);
            assert_eq!(f.in_order(), &want[..], "step {step}");
            // Idle machines idle since before an instant: the poll's (now less IdleTime, which
            // moves on), and now and then an earlier or later one.
            let idle_before = |f: &Fleet, t: Time| {
                f.idle_fifo
                    .iter()
                    .filter(|&&(since, id, epoch)| since < t && f.live(id, epoch))
                    .count()
            };
            let poll = now.plus_millis(-3_000);
            assert_eq!(
                f.idle_since_before(poll),
                idle_before(&f, poll),
                "step {step}"
            );
            if (x >> 30).is_multiple_of(7) {
                let t = now.plus_millis((x >> 34) as i64 % 8_000 - 6_000);
                assert_eq!(f.idle_since_before(t), idle_before(&f, t), "step {step}");
            }
            // The longest-idle machine, with its first entry cached and without.
            let mut uncached = f.clone();
            uncached.front_live = FrontLive(false);
            assert_eq!(f.longest_idle(), uncached.longest_idle(), "step {step}");
        }
        assert!(f.len() > 5, "the walk had machines to follow");
        let stored = serde_json::to_string(&f).unwrap();
        assert!(!stored.contains("in_order"), "a cache, not stored");
        let mut back: Fleet = serde_json::from_str(&stored).unwrap();
        assert_eq!(back, f);
        let want = fresh(&back);
        assert_eq!(back.in_order(), &want[..]);
    }

    #[test]
    fn sorted_ids_behave_and_are_stored_as_the_ordered_set_they_replace() {
        let mut ids = SortedIds::default();
        let mut set = BTreeSet::new();
        let mut rng = crate::rng::Rng::new(7);
        for step in 0..2000u64 {
            let x = rng.next_u64();
            let id = if step % 3 == 0 { step } else { (x >> 40) % 300 };
            if x % 5 < 2 {
                ids.remove(&id);
                set.remove(&id);
            } else {
                ids.insert(id);
                set.insert(id);
            }
            assert_eq!(ids.0.last(), set.last());
            assert_eq!(ids.0.len(), set.len());
        }
        assert!(ids.iter().eq(set.iter()));
        assert_eq!(
            serde_json::to_string(&ids).unwrap(),
            serde_json::to_string(&set).unwrap()
        );
        let cfg = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(&set, cfg).unwrap();
        assert_eq!(bincode::serde::encode_to_vec(&ids, cfg).unwrap(), bytes);
        let (back, _): (SortedIds, usize) = bincode::serde::decode_from_slice(&bytes, cfg).unwrap();
        assert_eq!(back, ids, "a snapshot written with the set reads back");
    }
}
