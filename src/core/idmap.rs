//! A map from ids that mostly come in ascending order (the simulator's jobs, the engine's
//! machines) to values: a window of slots indexed by `id - base`, so a lookup is an index
//! rather than a hash, and a hash map beside it for ids that do not fit the window (sparse
//! ids, such as GitLab's job ids in live mode, and the rare entry that outlives many newer
//! ones). The window holds at most about twice the live entries it holds plus a constant, so
//! memory stays proportional to the entries, never to the ids seen.
//!
//! It behaves as a map in every way that shows: equality is by content, and it is stored as
//! the list of `(id, value)` pairs sorted by id, exactly as the hash map it replaces was
//! (`fxmap::sorted`), so journals and snapshots read the same. Its iteration order is
//! deterministic but not sorted; callers that need an order sort.

use crate::core::fxmap::FastMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::VecDeque;

/// How far past the window's end a new id may land and still extend the window.
const MAX_GAP: u64 = 64;
/// Slack allowed in the window before its oldest live entry moves to the side map.
const SLACK: usize = 64;

/// A queue that is read by position: a vector whose front is dropped by moving a start index
/// (the space before it is given back once it is most of the vector), so a slot is one index
/// from the start, with no wrapping as in a ring buffer.
#[derive(Clone, Debug)]
struct Slots<T> {
    v: Vec<T>,
    start: usize,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots {
            v: Vec::new(),
            start: 0,
        }
    }
}

impl<T> Slots<T> {
    #[inline]
    fn len(&self) -> usize {
        self.v.len() - self.start
    }

    #[inline]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline]
    fn front(&self) -> Option<&T> {
        self.v.get(self.start)
    }

    fn push_back(&mut self, x: T) {
        self.v.push(x);
    }

    fn clear(&mut self) {
        self.v.clear();
        self.start = 0;
    }

    fn iter(&self) -> std::slice::Iter<'_, T> {
        self.v[self.start..].iter()
    }
}

impl<T: Default> Slots<T> {
    /// Take the first slot out (leaving its default behind, soon dropped).
    fn pop_front(&mut self) -> Option<T> {
        let x = std::mem::take(self.v.get_mut(self.start)?);
        self.start += 1;
        if self.start == self.v.len() {
            self.clear();
        } else if self.start >= 64 && self.start * 2 >= self.v.len() {
            self.v.drain(..self.start);
            self.start = 0;
        }
        Some(x)
    }
}

impl<T> std::ops::Index<usize> for Slots<T> {
    type Output = T;
    #[inline]
    fn index(&self, i: usize) -> &T {
        &self.v[self.start + i]
    }
}

impl<T> std::ops::IndexMut<usize> for Slots<T> {
    #[inline]
    fn index_mut(&mut self, i: usize) -> &mut T {
        &mut self.v[self.start + i]
    }
}

#[derive(Clone, Debug)]
pub struct IdMap<V> {
    /// The id of `window[0]`.
    base: u64,
    window: Slots<Option<V>>,
    /// Live entries in the window.
    in_window: usize,
    /// Entries whose ids do not fit the window.
    side: FastMap<u64, V>,
}

impl<V> Default for IdMap<V> {
    fn default() -> Self {
        IdMap {
            base: 0,
            window: Slots::default(),
            in_window: 0,
            side: FastMap::default(),
        }
    }
}

impl<V> IdMap<V> {
    pub fn len(&self) -> usize {
        self.in_window + self.side.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Where `id` sits in the window, if the window covers it.
    #[inline]
    fn slot(&self, id: u64) -> Option<usize> {
        let i = id.wrapping_sub(self.base);
        (id >= self.base && i < self.window.len() as u64).then_some(i as usize)
    }

    #[inline]
    pub fn get(&self, id: &u64) -> Option<&V> {
        if let Some(i) = self.slot(*id)
            && let Some(v) = &self.window[i]
        {
            return Some(v);
        }
        // The window may have come to cover an id that was put aside before.
        if self.side.is_empty() {
            None
        } else {
            self.side.get(id)
        }
    }

    #[inline]
    pub fn get_mut(&mut self, id: &u64) -> Option<&mut V> {
        if let Some(i) = self.slot(*id)
            && self.window[i].is_some()
        {
            return self.window[i].as_mut();
        }
        if self.side.is_empty() {
            None
        } else {
            self.side.get_mut(id)
        }
    }

    pub fn contains_key(&self, id: &u64) -> bool {
        self.get(id).is_some()
    }

    /// Insert `v` under `id`; the value it replaces, if any.
    pub fn insert(&mut self, id: u64, v: V) -> Option<V> {
        if let Some(i) = self.slot(id) {
            let old = self.window[i].replace(v);
            if old.is_some() {
                return old;
            }
            self.in_window += 1;
            // Put aside before the window came to cover it: it moves in.
            return if self.side.is_empty() {
                None
            } else {
                self.side.remove(&id)
            };
        }
        // Not covered by the window: a new id just past its end extends it (the usual case);
        // an empty window starts again at `id`; anything else goes to the side map.
        let end = self.base.wrapping_add(self.window.len() as u64);
        let extends = self.in_window > 0 && id >= end && id - end < MAX_GAP;
        let restarts = self.in_window == 0;
        if !(extends || restarts) || (!self.side.is_empty() && self.side.contains_key(&id)) {
            return self.side.insert(id, v);
        }
        if restarts {
            self.window.clear();
            self.base = id;
        } else {
            for _ in end..id {
                self.window.push_back(None);
            }
        }
        self.window.push_back(Some(v));
        self.in_window += 1;
        self.bound();
        None
    }

    /// Remove `id`; its value, if it was there.
    pub fn remove(&mut self, id: &u64) -> Option<V> {
        if let Some(i) = self.slot(*id)
            && let Some(v) = self.window[i].take()
        {
            self.in_window -= 1;
            self.trim_front();
            return Some(v);
        }
        if self.side.is_empty() {
            None
        } else {
            self.side.remove(id)
        }
    }

    /// Remove `id` if `take` says so of its value; the value, if taken.
    pub fn remove_if(&mut self, id: &u64, take: impl FnOnce(&V) -> bool) -> Option<V> {
        if let Some(i) = self.slot(*id)
            && let Some(v) = &self.window[i]
        {
            if !take(v) {
                return None;
            }
            let v = self.window[i].take();
            self.in_window -= 1;
            self.trim_front();
            return v;
        }
        if !self.side.is_empty() && self.side.get(id).is_some_and(take) {
            self.side.remove(id)
        } else {
            None
        }
    }

    /// Drop empty slots at the window's front.
    fn trim_front(&mut self) {
        while let Some(None) = self.window.front() {
            self.window.pop_front();
            self.base += 1;
        }
        if self.window.is_empty() {
            self.base = 0;
        }
    }

    /// Keep the window within twice its live entries (plus slack): an old entry that outlives
    /// many newer ones moves to the side map.
    fn bound(&mut self) {
        while self.window.len() > 2 * self.in_window + SLACK {
            if let Some(Some(v)) = self.window.pop_front() {
                self.side.insert(self.base, v);
                self.in_window -= 1;
            }
            self.base += 1;
            self.trim_front();
        }
    }

    /// Every entry, in no particular (but a deterministic) order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &V)> {
        let base = self.base;
        self.window
            .iter()
            .enumerate()
            .filter_map(move |(i, v)| v.as_ref().map(|v| (base + i as u64, v)))
            .chain(self.side.iter().map(|(k, v)| (*k, v)))
    }

    /// Every id, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = u64> + '_ {
        self.iter().map(|(k, _)| k)
    }

    /// Every entry sorted by id.
    pub fn sorted(&self) -> Vec<(u64, &V)> {
        let mut v: Vec<(u64, &V)> = self.iter().collect();
        v.sort_unstable_by_key(|e| e.0);
        v
    }
}

impl<V: PartialEq> PartialEq for IdMap<V> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(&k) == Some(v))
    }
}

impl<V> std::ops::Index<&u64> for IdMap<V> {
    type Output = V;
    fn index(&self, id: &u64) -> &V {
        self.get(id).expect("an id in the map")
    }
}

impl<V> FromIterator<(u64, V)> for IdMap<V> {
    fn from_iter<I: IntoIterator<Item = (u64, V)>>(iter: I) -> Self {
        let mut m = IdMap::default();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
    }
}

/// Stored as the sorted list of `(id, value)` pairs (as `fxmap::sorted` stores a map).
impl<V: Serialize> Serialize for IdMap<V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.sorted().serialize(s)
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for IdMap<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v: Vec<(u64, V)> = Vec::deserialize(d)?;
        Ok(v.into_iter().collect())
    }
}

/// A set of ids, as bits over the span from its least id to its greatest: insert and remove
/// are a bit each, and the greatest id is found in the last word (the span is trimmed to
/// nonzero words at both ends). Stored as the ascending list of its ids, exactly as the sorted
/// id list it replaces, so journals and snapshots read the same.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdSet {
    /// The index (id / 64) of `words[0]`.
    base: u64,
    words: VecDeque<u64>,
    len: usize,
}

impl IdSet {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    pub fn insert(&mut self, id: u64) {
        let w = id / 64;
        if w >= self.base && w < self.base + self.words.len() as u64 {
            let word = &mut self.words[(w - self.base) as usize];
            let bit = 1u64 << (id % 64);
            if *word & bit == 0 {
                *word |= bit;
                self.len += 1;
            }
            return;
        }
        self.insert_outside(id);
    }

    /// [`IdSet::insert`] of an id past either end of the words.
    #[inline(never)]
    fn insert_outside(&mut self, id: u64) {
        let w = id / 64;
        if self.words.is_empty() {
            self.base = w;
            self.words.push_back(0);
        }
        while w < self.base {
            self.words.push_front(0);
            self.base -= 1;
        }
        while w >= self.base + self.words.len() as u64 {
            self.words.push_back(0);
        }
        let word = &mut self.words[(w - self.base) as usize];
        let bit = 1u64 << (id % 64);
        if *word & bit == 0 {
            *word |= bit;
            self.len += 1;
        }
    }

    #[inline]
    pub fn remove(&mut self, id: &u64) {
        let w = id / 64;
        if w < self.base || w >= self.base + self.words.len() as u64 {
            return;
        }
        let word = &mut self.words[(w - self.base) as usize];
        let bit = 1u64 << (id % 64);
        if *word & bit == 0 {
            return;
        }
        *word &= !bit;
        self.len -= 1;
        // Only a word that empties can leave empty words at an end.
        if *word == 0 {
            self.trim();
        }
    }

    /// Drop the empty words at both ends.
    #[inline(never)]
    fn trim(&mut self) {
        while self.words.back() == Some(&0) {
            self.words.pop_back();
        }
        while self.words.front() == Some(&0) {
            self.words.pop_front();
            self.base += 1;
        }
        // One form for one content (equality compares the form): empty is empty.
        if self.words.is_empty() {
            self.base = 0;
        }
    }

    /// The greatest id.
    #[inline]
    pub fn last(&self) -> Option<u64> {
        let &w = self.words.back()?;
        let top = self.base + self.words.len() as u64 - 1;
        Some(top * 64 + 63 - u64::from(w.leading_zeros()))
    }

    /// The ids in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.words.iter().enumerate().flat_map(move |(i, &w)| {
            let at = (self.base + i as u64) * 64;
            let mut w = w;
            std::iter::from_fn(move || {
                (w != 0).then(|| {
                    let b = w.trailing_zeros();
                    w &= w - 1;
                    at + u64::from(b)
                })
            })
        })
    }
}

impl Serialize for IdSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // With its length first (bincode asks for it).
        s.collect_seq(self.iter().collect::<Vec<u64>>())
    }
}

impl<'de> Deserialize<'de> for IdSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v: Vec<u64> = Vec::deserialize(d)?;
        let mut set = IdSet::default();
        for id in v {
            set.insert(id);
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Against an ordered map, through ascending ids with stragglers, sparse ids far apart,
    /// ids that go back, and removals on a condition: the same answers, and the window stays near the live entries.
    #[test]
    fn behaves_as_a_map_and_stays_near_its_live_entries() {
        let mut m: IdMap<u64> = IdMap::default();
        let mut want: BTreeMap<u64, u64> = BTreeMap::new();
        let mut rng = crate::rng::Rng::new(0x2545_F491_4F6C_DD1D);
        let mut next = 1u64;
        // Numbering starts low, as the simulator's does (a sparse id first would take the
        // window, and every later id would go aside).
        m.insert(next, 0);
        want.insert(next, 0);
        let mut widest = 0;
        for step in 0..200_000u64 {
            let x = rng.next_u64();
            let id = match x % 16 {
                // Mostly the next id, as the simulator numbers jobs and machines.
                0..=6 => {
                    next += 1 + (x >> 60) % 3;
                    next
                }
                // A sparse id (live mode's job ids), or one long gone.
                7 => x >> 20,
                8 => next.saturating_sub((x >> 8) % 5_000),
                // Removal of a recent or an old id.
                _ => {
                    next.saturating_sub((x >> 8) % if x.is_multiple_of(5) { 100_000 } else { 300 })
                }
            };
            if x % 16 <= 8 {
                assert_eq!(m.insert(id, step), want.insert(id, step), "step {step}");
            } else if step % 2 == 0 {
                assert_eq!(m.remove(&id), want.remove(&id), "step {step}");
            } else {
                // Removed only when its value is a multiple of 3.
                let take = want.get(&id).is_some_and(|v| v % 3 == 0);
                let w = if take { want.remove(&id) } else { None };
                assert_eq!(m.remove_if(&id, |v| v % 3 == 0), w, "step {step}");
            }
            assert_eq!(m.len(), want.len());
            widest = widest.max(m.in_window);
            let probe = next.saturating_sub((x >> 4) % 1_000);
            assert_eq!(m.get(&probe), want.get(&probe));
            assert!(
                m.window.len() <= 2 * m.in_window + SLACK + MAX_GAP as usize,
                "step {step}: a window of {} for {} live entries",
                m.window.len(),
                m.in_window
            );
        }
        assert!(m.len() > 1_000, "the map had entries to keep");
        assert!(widest > 100, "the window held {widest} entries at most");
        let sorted: Vec<(u64, &u64)> = want.iter().map(|(k, v)| (*k, v)).collect();
        assert_eq!(m.sorted(), sorted);
        if let Some((&k, _)) = want.iter().next() {
            *m.get_mut(&k).unwrap() += 1;
            assert_ne!(m.get(&k), want.get(&k));
        }
    }

    /// An id put aside (below the window) that the window later comes to cover, after it
    /// emptied and started again lower down, is still found, replaced and removed once.
    #[test]
    fn an_id_put_aside_is_found_when_the_window_covers_it_again() {
        let mut m: IdMap<&str> = IdMap::default();
        m.insert(200, "a");
        m.insert(100, "aside");
        assert_eq!(m.side.len(), 1);
        m.remove(&200);
        m.insert(50, "b");
        for id in 51..=120 {
            m.insert(id, "c");
        }
        assert!(m.slot(100).is_some(), "the window covers 100 again");
        assert_eq!(m.get(&100), Some(&"c"), "the insert moved it in");
        assert_eq!(m.len(), 71);
        assert_eq!(m.remove(&100), Some("c"));
        assert_eq!(m.get(&100), None);
        assert_eq!(m.len(), 70);
    }

    /// `remove_if` on ids the window holds (the simulator's jobs, numbered in order) and on
    /// ids put aside: it takes exactly the values the condition picks, and leaves the rest
    /// to be found.
    #[test]
    fn removes_on_a_condition_in_the_window_and_aside() {
        let mut m: IdMap<u64> = IdMap::default();
        let mut want: BTreeMap<u64, u64> = BTreeMap::new();
        let mut rng = crate::rng::Rng::new(5);
        let (mut taken, mut kept, mut next) = (0, 0, 0u64);
        let mut aside = 0;
        for step in 0..50_000u64 {
            aside += usize::from(!m.side.is_empty());
            match rng.below(20) {
                0..=8 => {
                    next += 1;
                    m.insert(next, step);
                    want.insert(next, step);
                    continue;
                }
                // Most go soon, so the few that stay grow old and are put aside.
                9..=16 => {
                    let id = next.saturating_sub(rng.below(20));
                    assert_eq!(m.remove(&id), want.remove(&id), "step {step}");
                    continue;
                }
                _ => {}
            }
            let id = next.saturating_sub(rng.below(if step % 7 == 0 { 5_000 } else { 100 }));
            let take = want.get(&id).is_some_and(|v| v % 3 == 0);
            match (want.contains_key(&id), take) {
                (true, true) => taken += 1,
                (true, false) => kept += 1,
                _ => {}
            }
            let w = if take { want.remove(&id) } else { None };
            assert_eq!(m.remove_if(&id, |v| v % 3 == 0), w, "step {step}");
            assert_eq!(m.len(), want.len(), "step {step}");
            assert_eq!(m.get(&id), want.get(&id), "step {step}");
        }
        assert!(taken > 500 && kept > 500, "{taken} taken, {kept} kept");
        assert!(
            aside > 1_000 && m.in_window > 0,
            "both parts were used: {aside} {}",
            m.in_window
        );
        let sorted: Vec<(u64, &u64)> = want.iter().map(|(k, v)| (*k, v)).collect();
        assert_eq!(m.sorted(), sorted);
    }

    /// Against an ordered set: inserts and removals near and far, the greatest id, the order
    /// of its ids, and its stored form.
    #[test]
    fn id_set_behaves_as_an_ordered_set_and_is_stored_as_one() {
        use std::collections::BTreeSet;
        let mut set = IdSet::default();
        let mut want = BTreeSet::new();
        let mut rng = crate::rng::Rng::new(0x1234_5678_9ABC_DEF1);
        let mut next = 0u64;
        for step in 0..100_000 {
            let x = rng.next_u64();
            next += (x >> 61) % 2;
            let id = match x % 8 {
                0 => x >> 50,
                1..=4 => next.saturating_sub((x >> 8) % 200),
                _ => next.saturating_sub((x >> 8) % 40),
            };
            if (x >> 3).is_multiple_of(2) {
                set.insert(id);
                want.insert(id);
            } else {
                set.remove(&id);
                want.remove(&id);
            }
            assert_eq!(set.len(), want.len(), "step {step}");
            assert_eq!(set.last(), want.last().copied(), "step {step}");
        }
        assert!(set.iter().eq(want.iter().copied()));
        // Equal contents are equal sets, however they came about (an emptied one too).
        let rebuilt: IdSet = serde_json::from_str(&serde_json::to_string(&set).unwrap()).unwrap();
        assert_eq!(rebuilt, set);
        let mut emptied = set.clone();
        for id in want.iter() {
            emptied.remove(id);
        }
        assert_eq!(emptied, IdSet::default());
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(json, serde_json::to_string(&want).unwrap());
        assert_eq!(serde_json::from_str::<IdSet>(&json).unwrap(), set);
        let cfg = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(&want, cfg).unwrap();
        assert_eq!(bincode::serde::encode_to_vec(&set, cfg).unwrap(), bytes);
    }

    #[test]
    fn is_stored_as_the_sorted_pairs_the_hash_map_was_stored_as() {
        #[derive(Serialize)]
        struct Old<'a>(#[serde(with = "crate::core::fxmap::sorted")] &'a FastMap<u64, String>);
        let mut m: IdMap<String> = IdMap::default();
        let mut old: FastMap<u64, String> = FastMap::default();
        for id in [5u64, 6, 7, 9, 3, 1_000_000_007, 8] {
            m.insert(id, format!("v{id}"));
            old.insert(id, format!("v{id}"));
        }
        m.remove(&6);
        old.remove(&6);
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, serde_json::to_string(&Old(&old)).unwrap());
        let back: IdMap<String> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
        let cfg = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(&m, cfg).unwrap();
        assert_eq!(
            bytes,
            bincode::serde::encode_to_vec(Old(&old), cfg).unwrap()
        );
    }
}
