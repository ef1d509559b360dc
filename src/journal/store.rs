//! Where journal records live: a small trait, and its sled 0.34 implementation. Keys are
//! big-endian sequence numbers, so the store's order is the journal's order.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

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
    /// Snapshots, newest first.
    fn snapshots(&self) -> StoreResult<Vec<(u64, Vec<u8>)>>;
    fn put_header(&mut self, bytes: Vec<u8>) -> StoreResult<()>;
    fn header(&self) -> StoreResult<Option<Vec<u8>>>;
}

fn guard<T>(what: &str, f: impl FnOnce() -> Result<T, sled::Error>) -> StoreResult<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(StoreError(format!("{what}: {e}"))),
        Err(_) => Err(StoreError(format!("{what}: the store's files are damaged"))),
    }
}

pub struct SledStore {
    db: sled::Db,
    events: sled::Tree,
    snapshots: sled::Tree,
    meta: sled::Tree,
}

const HEADER_KEY: &[u8] = b"header";

impl SledStore {
    /// Open (or make) the store in `dir`. A store another handle is still closing is waited
    /// for, up to two seconds.
    pub fn open(dir: &Path) -> StoreResult<Self> {
        let mut tries = 0;
        let db = loop {
            match guard("opening the journal", || {
                sled::Config::new().path(dir).flush_every_ms(None).open()
            }) {
                Err(e) if e.0.contains("lock") && tries < 100 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
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

fn key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

fn seq_of(k: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(k).ok().map(u64::from_be_bytes)
}

impl Store for SledStore {
    fn append(&mut self, first: u64, records: &[Vec<u8>]) -> StoreResult<()> {
        let mut batch = sled::Batch::default();
        for (i, r) in records.iter().enumerate() {
            batch.insert(&key(first + i as u64), r.as_slice());
        }
        guard("appending", || self.events.apply_batch(batch))
    }

    fn flush(&mut self) -> StoreResult<()> {
        guard("flushing", || self.db.flush()).map(|_| ())
    }

    fn read_from(&self, seq: u64) -> Box<dyn Iterator<Item = StoreResult<(u64, Vec<u8>)>> + '_> {
        let mut it = self.events.range(key(seq)..);
        Box::new(std::iter::from_fn(move || {
            match catch_unwind(AssertUnwindSafe(|| it.next())) {
                Ok(None) => None,
                Ok(Some(Ok((k, v)))) => Some(match seq_of(&k) {
                    Some(s) => Ok((s, v.to_vec())),
                    None => Err(StoreError(format!(
                        "a key of {} bytes is not a sequence number",
                        k.len()
                    ))),
                }),
                Ok(Some(Err(e))) => Some(Err(StoreError(format!("reading: {e}")))),
                Err(_) => Some(Err(StoreError(
                    "reading: the store's files are damaged".into(),
                ))),
            }
        }))
    }

    fn truncate_from(&mut self, seq: u64) -> StoreResult<()> {
        let keys: Vec<sled::IVec> = guard("cutting the tail", || {
            self.events
                .range(key(seq)..)
                .keys()
                .collect::<Result<Vec<_>, _>>()
        })?;
        let mut batch = sled::Batch::default();
        for k in keys {
            batch.remove(k);
        }
        guard("cutting the tail", || self.events.apply_batch(batch))
    }

    fn put_snapshot(&mut self, seq: u64, bytes: Vec<u8>) -> StoreResult<()> {
        guard("writing a snapshot", || {
            self.snapshots.insert(key(seq), bytes)
        })
        .map(|_| ())
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
