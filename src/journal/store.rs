//! Where journal records live: a small trait, and its sled 0.34 implementation. Keys are
//! big-endian sequence numbers, so the store's order is the journal's order.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Once;

/// A store failure, as text (sled's errors, or a panic inside it on a damaged file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A record store: events by sequence number, snapshots by the sequence they follow, one header.
/// The sled store keeps each appended batch as one value keyed by its first sequence number
/// (big-endian), so a batch is written, and lost, whole.
pub trait Store {
    /// Write events `first`, `first + 1`, ... in one atomic batch (not yet durable).
    fn append(&mut self, first: u64, records: &[Vec<u8>]) -> StoreResult<()>;
    /// Make everything written so far durable.
    fn flush(&mut self) -> StoreResult<()>;
    /// Events from `seq` on, in order: (seq, bytes), or the raw key when it is not a number.
    fn read_from(&self, seq: u64) -> Box<dyn Iterator<Item = StoreResult<(u64, Vec<u8>)>> + '_>;
    /// Drop events from `seq` on (a torn tail being cut).
    fn truncate_from(&mut self, seq: u64) -> StoreResult<()>;
    fn put_snapshot(&mut self, seq: u64, bytes: Vec<u8>) -> StoreResult<()>;
    /// Delete every snapshot but the newest `keep`.
    fn prune_snapshots(&mut self, keep: usize) -> StoreResult<()>;
    /// Snapshots, newest first.
    fn snapshots(&self) -> StoreResult<Vec<(u64, Vec<u8>)>>;
    fn put_header(&mut self, bytes: Vec<u8>) -> StoreResult<()>;
    fn header(&self) -> StoreResult<Option<Vec<u8>>>;
}

fn guard<T>(what: &str, f: impl FnOnce() -> Result<T, sled::Error>) -> StoreResult<T> {
    match unwinding(f) {
        Ok(Ok(v)) => Ok(v),
        // sled's own words end in a backtrace it does not keep ("backtrace ()").
        Ok(Err(sled::Error::Corruption { at, .. })) => Err(StoreError(format!(
            "{what}: the store's files are damaged (sled read corrupted data{})",
            at.map(|at| format!(" at {at:?}")).unwrap_or_default()
        ))),
        Ok(Err(e)) => Err(StoreError(format!("{what}: {e}"))),
        Err(panic) => Err(StoreError(format!("{what}: {panic}"))),
    }
}

thread_local! {
    /// This thread is inside a call into sled whose panic becomes an error.
    static IN_SLED: Cell<bool> = const { Cell::new(false) };
}
static QUIET_HOOK: Once = Once::new();

/// Run `f`, a call into sled: a panic in it (sled panics on some damaged files) becomes an
/// error that says so with sled's message, and is not also reported on standard error as a
/// crash with a backtrace (the panic hook stays silent on this thread meanwhile; every other
/// panic is reported as before).
fn unwinding<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    QUIET_HOOK.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_SLED.with(Cell::get) {
                report(info);
            }
        }));
    });
    let outer = IN_SLED.with(|q| q.replace(true));
    let r = catch_unwind(AssertUnwindSafe(f));
    IN_SLED.with(|q| q.set(outer));
    r.map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|m| m.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned());
        match message {
            Some(m) => format!("the store's files are damaged (sled: {m})"),
            None => "the store's files are damaged".to_string(),
        }
    })
}

pub struct SledStore {
    db: sled::Db,
    events: sled::Tree,
    snapshots: sled::Tree,
    meta: sled::Tree,
}

const HEADER_KEY: &[u8] = b"header";

/// Whether `dir` holds a sled store (its `conf` and `db` files), so that opening it for
/// reading writes nothing into a folder that is not a journal.
pub fn is_store(dir: &Path) -> bool {
    dir.join("conf").is_file() && dir.join("db").is_file()
}

impl SledStore {
    /// Open (or make) the store in `dir`. A store another handle is still closing is waited
    /// for, up to two seconds; a store only readers hold (copying its files, with the lock
    /// shared) for as long as they copy, up to [`READERS_WAIT`].
    pub fn open(dir: &Path) -> StoreResult<Self> {
        let (mut tries, mut reading) = (0, 0);
        let pause = std::time::Duration::from_millis(20);
        let db = loop {
            match guard("opening the journal", || {
                sled::Config::new().path(dir).flush_every_ms(None).open()
            }) {
                Err(e) if e.0.contains("lock") && tries < 100 => {
                    if only_readers_hold(dir) && reading < READERS_WAIT.as_millis() / 20 {
                        reading += 1;
                    } else {
                        tries += 1;
                    }
                    std::thread::sleep(pause);
                }
                other => break other?,
            }
        };
        let tree = |name: &str| guard("opening the journal", || db.open_tree(name));
        Ok(SledStore {
            events: tree("events")?,
            snapshots: tree("snapshots")?,
            meta: tree("meta")?,
            db,
        })
    }
}

/// How long opening a store waits for readers that copy it (a copy goes at about 2 ms a MB
/// on this project's machine, so a journal of tens of gigabytes).
pub const READERS_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// Whether the store's lock is held only shared (readers copying it): a shared lock can be
/// taken beside theirs, never beside a writer's.
fn only_readers_hold(dir: &Path) -> bool {
    std::fs::File::open(dir.join("db")).is_ok_and(|db| db.try_lock_shared().is_ok())
}

fn key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// A batch of records as one value: `[len u32 LE][record]...`.
fn frame(records: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(records.iter().map(|r| r.len() + 4).sum());
    for r in records {
        out.extend_from_slice(&(r.len() as u32).to_le_bytes());
        out.extend_from_slice(r);
    }
    out
}

/// The records of a batch starting at `first`; a damaged frame ends it with an error.
fn unframe(first: u64, v: &[u8]) -> Vec<StoreResult<(u64, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut seq = first;
    while at < v.len() {
        if at + 4 > v.len() {
            out.push(Err(StoreError(format!(
                "event {seq}: the batch is cut short"
            ))));
            break;
        }
        let len = u32::from_le_bytes([v[at], v[at + 1], v[at + 2], v[at + 3]]) as usize;
        at += 4;
        if at + len > v.len() {
            out.push(Err(StoreError(format!(
                "event {seq}: the batch is cut short"
            ))));
            break;
        }
        out.push(Ok((seq, v[at..at + len].to_vec())));
        at += len;
        seq += 1;
    }
    out
}

fn seq_of(k: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(k).ok().map(u64::from_be_bytes)
}

impl Store for SledStore {
    fn append(&mut self, first: u64, records: &[Vec<u8>]) -> StoreResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        guard("appending", || {
            self.events.insert(key(first), frame(records))?;
            Ok(())
        })
    }

    fn flush(&mut self) -> StoreResult<()> {
        guard("flushing", || self.db.flush()).map(|_| ())
    }

    fn read_from(&self, seq: u64) -> Box<dyn Iterator<Item = StoreResult<(u64, Vec<u8>)>> + '_> {
        // Start at the batch that holds `seq`, if one does.
        let start = guard("reading", || {
            self.events.range(..=key(seq)).next_back().transpose()
        })
        .ok()
        .flatten()
        .and_then(|(k, _)| seq_of(&k))
        .unwrap_or(seq);
        let mut batches = self.events.range(key(start)..);
        let mut pending: std::collections::VecDeque<StoreResult<(u64, Vec<u8>)>> =
            Default::default();
        Box::new(std::iter::from_fn(move || {
            loop {
                if let Some(x) = pending.pop_front() {
                    match &x {
                        Ok((s, _)) if *s < seq => continue,
                        _ => return Some(x),
                    }
                }
                match unwinding(|| batches.next()) {
                    Ok(None) => return None,
                    Ok(Some(Ok((k, v)))) => match seq_of(&k) {
                        Some(first) => pending.extend(unframe(first, &v)),
                        None => {
                            return Some(Err(StoreError(format!(
                                "a key of {} bytes is not a sequence number",
                                k.len()
                            ))));
                        }
                    },
                    Ok(Some(Err(e))) => return Some(Err(StoreError(format!("reading: {e}")))),
                    Err(panic) => return Some(Err(StoreError(format!("reading: {panic}")))),
                }
            }
        }))
    }

    fn truncate_from(&mut self, seq: u64) -> StoreResult<()> {
        let batches: Vec<(sled::IVec, sled::IVec)> = guard("cutting the tail", || {
            let mut v: Vec<(sled::IVec, sled::IVec)> = Vec::new();
            if let Some(kv) = self.events.range(..key(seq)).next_back() {
                v.push(kv?);
            }
            for kv in self.events.range(key(seq)..) {
                v.push(kv?);
            }
            Ok(v)
        })?;
        for (k, v) in batches {
            let Some(first) = seq_of(&k) else { continue };
            if first >= seq {
                guard("cutting the tail", || self.events.remove(&k))?;
            } else {
                // Keep the part of this batch before `seq`.
                let records = unframe(first, &v);
                if records.len() as u64 > seq - first {
                    let keep: Vec<Vec<u8>> = records
                        .into_iter()
                        .map_while(|r| r.ok())
                        .filter(|(s, _)| *s < seq)
                        .map(|(_, b)| b)
                        .collect();
                    if keep.is_empty() {
                        guard("cutting the tail", || self.events.remove(&k))?;
                    } else {
                        guard("cutting the tail", || self.events.insert(&k, frame(&keep)))?;
                    }
                }
            }
        }
        Ok(())
    }

    fn put_snapshot(&mut self, seq: u64, bytes: Vec<u8>) -> StoreResult<()> {
        guard("writing a snapshot", || {
            self.snapshots.insert(key(seq), bytes)
        })
        .map(|_| ())
    }

    fn prune_snapshots(&mut self, keep: usize) -> StoreResult<()> {
        guard("pruning snapshots", || {
            let old: Vec<sled::IVec> = self
                .snapshots
                .iter()
                .keys()
                .rev()
                .skip(keep)
                .collect::<Result<_, _>>()?;
            for k in old {
                self.snapshots.remove(k)?;
            }
            Ok(())
        })
    }

    fn snapshots(&self) -> StoreResult<Vec<(u64, Vec<u8>)>> {
        guard("reading snapshots", || {
            let mut v = Vec::new();
            for kv in self.snapshots.iter().rev() {
                let (k, b) = kv?;
                if let Some(s) = seq_of(&k) {
                    v.push((s, b.to_vec()));
                }
            }
            Ok(v)
        })
    }

    fn put_header(&mut self, bytes: Vec<u8>) -> StoreResult<()> {
        guard("writing the header", || self.meta.insert(HEADER_KEY, bytes)).map(|_| ())
    }

    fn header(&self) -> StoreResult<Option<Vec<u8>>> {
        guard("reading the header", || self.meta.get(HEADER_KEY)).map(|o| o.map(|v| v.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Readers copying a store hold its lock shared; a writer holds it exclusive. Opening the
    /// store waits out the former, not the latter.
    #[test]
    fn readers_are_told_from_a_writer_by_their_shared_lock() {
        let dir = crate::testing::scratch("store-readers");
        let store = SledStore::open(&dir).unwrap();
        assert!(!only_readers_hold(&dir), "a writer holds it");
        drop(store);
        let reader = std::fs::File::open(dir.join("db")).unwrap();
        reader.lock_shared().unwrap();
        assert!(only_readers_hold(&dir), "a reader holds it");
        // The reader lets go after longer than a closing handle is waited for.
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(3_000));
            drop(reader);
        });
        assert!(
            SledStore::open(&dir).is_ok(),
            "opened once the reader is done"
        );
        t.join().unwrap();
        // A writer still holding it: an error (after the short wait).
        let _held = SledStore::open(&dir).unwrap();
        let e = SledStore::open(&dir).err().expect("held by a writer");
        assert!(e.0.contains("lock"), "{}", e.0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A panic inside a call into sled becomes an error with its message, and the thread is
    /// left reporting panics as before.
    #[test]
    fn a_panic_in_sled_is_an_error_with_its_message() {
        let e = guard("opening the journal", || -> Result<(), sled::Error> {
            panic!("tried to serialize Uninitialized")
        })
        .unwrap_err();
        assert_eq!(
            e.0,
            "opening the journal: the store's files are damaged (sled: tried to serialize Uninitialized)"
        );
        let n = 3;
        let e = unwinding(|| -> u32 { panic!("page {n} is torn") }).unwrap_err();
        assert!(e.ends_with("(sled: page 3 is torn)"), "{e}");
        assert_eq!(unwinding(|| 7), Ok(7));
        assert!(!IN_SLED.with(Cell::get), "panics are reported again");
    }
}
