//! The event journal: every event is on disk before the engine applies it, and the engine's
//! state is the fold of the journal. Recovery loads the latest snapshot and replays the events
//! after it; a torn tail is cut (and said), a bad record in the middle is an error.
//!
//! Events the engine refuses are journaled all the same: they are facts, and replay refuses
//! them again at the same point, so the rebuilt state is the same.

pub mod codec;
pub mod costs;
pub mod machines;
pub mod remote;
pub mod store;
pub mod trace;
pub mod workload;

use crate::core::{
    Action, Engine, EngineError, EngineKind, Event, EventKind, Launch, MachineId, Settings, Time,
};
use crate::drive::{Driver, EventLog};
use codec::{CodecError, Kind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use store::{SledStore, Store, StoreError};

/// Snapshot every this many events unless told otherwise.
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 10_000;

/// What a journal is about. No secret is ever in it: the config appears as a digest, and the
/// settings hold no token or key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub format: u8,
    pub engine: EngineKind,
    /// FNV-1a of the settings' JSON, hex.
    pub config_digest: String,
    /// Set when the journal records a simulated run.
    pub seed: Option<u64>,
    pub snapshot_every: u64,
    /// How many snapshots are kept (older ones are deleted as new ones are written).
    #[serde(default = "default_keep")]
    pub keep_snapshots: u64,
    pub start: Time,
    pub settings: Settings,
}

/// Snapshots kept unless the journal says otherwise.
pub const DEFAULT_KEEP_SNAPSHOTS: u64 = 3;

fn default_keep() -> u64 {
    DEFAULT_KEEP_SNAPSHOTS
}

impl Header {
    pub fn new(engine: EngineKind, settings: Settings, start: Time, seed: Option<u64>) -> Self {
        let json = serde_json::to_vec(&settings).expect("settings encode");
        Header {
            format: codec::VERSION,
            engine,
            config_digest: format!("{:016x}", fnv1a(&json)),
            seed,
            snapshot_every: DEFAULT_SNAPSHOT_EVERY,
            keep_snapshots: DEFAULT_KEEP_SNAPSHOTS,
            start,
            settings,
        }
    }
}

#[derive(Debug)]
pub enum JournalError {
    Store(StoreError),
    NotAJournal(PathBuf),
    AlreadyExists(PathBuf),
    Header(CodecError),
    /// A journal written in a layout this build does not read.
    Format(u8),
    /// A bad record with valid records after it: never skipped.
    Corrupt {
        seq: u64,
        reason: String,
    },
    /// A missing sequence number with records after it.
    Gap {
        expected: u64,
        found: u64,
    },
}

impl fmt::Display for JournalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JournalError::Store(e) => write!(f, "{e}"),
            JournalError::NotAJournal(p) => {
                write!(f, "{}: not a scalecast journal (no header)", p.display())
            }
            JournalError::AlreadyExists(p) => {
                write!(f, "{}: a journal is already there", p.display())
            }
            JournalError::Header(e) => write!(f, "the journal header is unreadable: {e}"),
            JournalError::Format(v) => write!(
                f,
                "journal format {v}; this build reads format {} only",
                codec::VERSION
            ),
            JournalError::Corrupt { seq, reason } => {
                write!(
                    f,
                    "event {seq} is corrupt ({reason}) and valid events follow it"
                )
            }
            JournalError::Gap { expected, found } => {
                write!(
                    f,
                    "events {expected} to {} are missing and later events exist",
                    found - 1
                )
            }
        }
    }
}

impl std::error::Error for JournalError {}

impl From<StoreError> for JournalError {
    fn from(e: StoreError) -> Self {
        JournalError::Store(e)
    }
}

pub type JournalResult<T> = Result<T, JournalError>;

/// FNV-1a, 64 bits.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// A digest of the engine's whole state (its JSON is canonical: every map is sorted).
pub fn digest(e: &Engine) -> u64 {
    fnv1a(&serde_json::to_vec(e).expect("engine encodes"))
}

/// A tail cut at recovery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Dropped {
    pub first: u64,
    pub last: u64,
    pub count: u64,
    pub reason: String,
}

/// What opening a journal found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Recovery {
    /// The snapshot the state was loaded from.
    pub snapshot: Option<u64>,
    pub replayed: u64,
    pub last_seq: u64,
    pub dropped: Option<Dropped>,
    /// Events the engine refused (journaled facts that did not fit the state).
    pub refused: u64,
    pub notes: Vec<String>,
}

impl fmt::Display for Recovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.snapshot {
            Some(s) => write!(
                f,
                "state from the snapshot at event {s}, then {} events replayed",
                self.replayed
            )?,
            None => write!(f, "{} events replayed from the start", self.replayed)?,
        }
        write!(f, "; last event {}", self.last_seq)?;
        if let Some(d) = &self.dropped {
            write!(
                f,
                "; dropped a torn tail of {} record(s), events {} to {} ({})",
                d.count, d.first, d.last, d.reason
            )?;
        }
        for n in &self.notes {
            write!(f, "; {n}")?;
        }
        Ok(())
    }
}

/// How a walk over the events ended.
struct WalkEnd {
    last_seq: u64,
    dropped: Option<Dropped>,
}

/// Visit events from `from` on, in order. A bad record is a torn tail when nothing valid
/// follows it (cut and reported), else an error naming it.
fn walk(store: &dyn Store, from: u64, mut f: impl FnMut(u64, Event)) -> JournalResult<WalkEnd> {
    let mut expected = from;
    let mut it = store.read_from(from);
    while let Some(item) = it.next() {
        let (seq, bytes) = match item {
            Ok(x) => x,
            Err(e) => {
                return tail_or_error(expected, e.0, &mut it);
            }
        };
        if seq < expected {
            return Err(JournalError::Corrupt {
                seq,
                reason: format!("stored again after event {}", expected - 1),
            });
        }
        if seq != expected {
            // A gap: fine only if nothing valid follows (then it is part of a torn tail).
            let reason = format!("event {expected} is missing");
            let rest_valid = std::iter::once(Ok((seq, bytes)))
                .chain(&mut it)
                .any(|r| matches!(r, Ok((_, b)) if codec::decode_event(&b).is_ok()));
            if rest_valid {
                return Err(JournalError::Gap {
                    expected,
                    found: seq,
                });
            }
            return Ok(WalkEnd {
                last_seq: expected - 1,
                dropped: Some(Dropped {
                    first: expected,
                    last: seq,
                    count: 0,
                    reason,
                }),
            });
        }
        match codec::decode_event(&bytes) {
            Ok(e) => f(seq, e),
            Err(err) => {
                return tail_or_error(expected, err.to_string(), &mut it);
            }
        }
        expected += 1;
    }
    Ok(WalkEnd {
        last_seq: expected - 1,
        dropped: None,
    })
}

fn tail_or_error(
    bad: u64,
    reason: String,
    rest: &mut dyn Iterator<Item = Result<(u64, Vec<u8>), StoreError>>,
) -> JournalResult<WalkEnd> {
    let mut last = bad;
    let mut count = 1;
    for r in rest {
        match r {
            Ok((s, b)) => {
                if codec::decode_event(&b).is_ok() {
                    return Err(JournalError::Corrupt { seq: bad, reason });
                }
                last = last.max(s);
                count += 1;
            }
            Err(_) => count += 1,
        }
    }
    Ok(WalkEnd {
        last_seq: bad - 1,
        dropped: Some(Dropped {
            first: bad,
            last,
            count,
            reason,
        }),
    })
}

fn read_header(store: &dyn Store, dir: &Path) -> JournalResult<Header> {
    let bytes = store
        .header()?
        .ok_or_else(|| JournalError::NotAJournal(dir.to_path_buf()))?;
    let h: Header = codec::decode_json(Kind::Header, &bytes).map_err(JournalError::Header)?;
    if h.format != codec::VERSION {
        return Err(JournalError::Format(h.format));
    }
    Ok(h)
}

/// The state at the newest readable snapshot, or the header's start.
fn load_state(
    store: &dyn Store,
    h: &Header,
    notes: &mut Vec<String>,
) -> JournalResult<(Engine, Option<u64>)> {
    for (seq, bytes) in store.snapshots()? {
        match codec::decode_json::<Engine>(Kind::Snapshot, &bytes) {
            Ok(e) => return Ok((e, Some(seq))),
            Err(err) => notes.push(format!(
                "snapshot at event {seq} unreadable ({err}), an older one used"
            )),
        }
    }
    Ok((Engine::new(h.engine, h.settings.clone(), h.start), None))
}

/// A copy of a journal made from its stored records, as its writer hands them out (a running
/// daemon holds its journal's lock, so a reader asks it for the records instead): the header,
/// then the events in order, page by page, then the snapshots. Records are kept as written
/// (versioned and checksummed), so the copy reads exactly as the original.
pub struct JournalCopy {
    dir: PathBuf,
    store: SledStore,
    next: u64,
}

impl JournalCopy {
    /// Start the copy in `dir`, which must not exist yet.
    pub fn create(dir: &Path, header_record: &[u8]) -> JournalResult<Self> {
        if dir.exists() {
            return Err(JournalError::AlreadyExists(dir.to_path_buf()));
        }
        let h: Header =
            codec::decode_json(Kind::Header, header_record).map_err(JournalError::Header)?;
        if h.format != codec::VERSION {
            return Err(JournalError::Format(h.format));
        }
        let mut store = SledStore::open(dir)?;
        store.put_header(header_record.to_vec())?;
        Ok(JournalCopy {
            dir: dir.to_path_buf(),
            store,
            next: 1,
        })
    }

    /// The sequence number the next page must start at.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// The next page of event records: it must go on where the last one ended, without a gap.
    pub fn events(&mut self, page: Vec<(u64, Vec<u8>)>) -> JournalResult<()> {
        let Some(&(first, _)) = page.first() else {
            return Ok(());
        };
        for (i, (seq, _)) in page.iter().enumerate() {
            let want = self.next + i as u64;
            if *seq != want {
                return Err(JournalError::Gap {
                    expected: want,
                    found: *seq,
                });
            }
        }
        debug_assert_eq!(first, self.next);
        let n = page.len() as u64;
        let records: Vec<Vec<u8>> = page.into_iter().map(|(_, r)| r).collect();
        self.store.append(first, &records)?;
        self.next += n;
        Ok(())
    }

    /// The snapshots (those past the copied events are left out, so the copy is whole), and
    /// done: the copy's directory, to open with [`Reader::open`].
    pub fn finish(mut self, snapshots: Vec<(u64, Vec<u8>)>) -> JournalResult<PathBuf> {
        for (seq, bytes) in snapshots {
            if seq < self.next {
                self.store.put_snapshot(seq, bytes)?;
            }
        }
        self.store.flush()?;
        Ok(self.dir)
    }
}

/// The journal as the driver's event log: events are appended (and flushed) before the
/// engine applies them, and a snapshot of the engine is written every `snapshot_every` events.
///
/// With [`JournalLog::buffered`] the events are written in batches instead (a simulated run,
/// where nothing is lost if the process dies: the run is simply made again); a live journal
/// writes each event through.
pub struct JournalLog {
    dir: PathBuf,
    store: Box<dyn Store>,
    header: Header,
    last_seq: u64,
    since_snapshot: u64,
    buf: Vec<Event>,
    batch: usize,
}

impl JournalLog {
    /// Start a new journal in `dir` (made if needed; it must not exist or be empty). The
    /// journal is built beside it and renamed into place with its header, so `dir` holds a
    /// whole journal or nothing, whenever the writer dies.
    pub fn create(dir: &Path, header: Header) -> JournalResult<Self> {
        let io =
            |e: std::io::Error| JournalError::Store(StoreError(format!("{}: {e}", dir.display())));
        if dir.is_dir() && std::fs::read_dir(dir).map_err(io)?.next().is_some() {
            return Err(JournalError::AlreadyExists(dir.to_path_buf()));
        }
        let name = dir
            .file_name()
            .map_or("journal".into(), |n| n.to_string_lossy().into_owned());
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(io)?;
        let staging = parent.join(format!(".{name}.creating-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        {
            let mut store = SledStore::open(&staging)?;
            store.put_header(codec::encode_json(Kind::Header, &header))?;
            store.flush()?;
        }
        if let Err(e) = std::fs::rename(&staging, dir) {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(io(e));
        }
        let store = SledStore::open(dir)?;
        Ok(JournalLog {
            dir: dir.to_path_buf(),
            store: Box::new(store),
            header,
            last_seq: 0,
            since_snapshot: 0,
            buf: Vec::new(),
            batch: 1,
        })
    }

    /// Write events in batches of `batch` rather than each before it is applied.
    pub fn buffered(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    pub fn header(&self) -> &Header {
        &self.header
    }
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The stored event records from `first` on, as written (versioned and checksummed): for
    /// shipping the journal off the box. Only flushed events are stored.
    pub fn records_from(&self, first: u64) -> JournalResult<Vec<(u64, Vec<u8>)>> {
        Ok(self.store.read_from(first).collect::<Result<Vec<_>, _>>()?)
    }

    /// The header record as stored.
    pub fn header_record(&self) -> JournalResult<Vec<u8>> {
        Ok(codec::encode_json(Kind::Header, &self.header))
    }

    /// The newest snapshot record as stored, with its sequence number.
    pub fn newest_snapshot_record(&self) -> JournalResult<Option<(u64, Vec<u8>)>> {
        Ok(self.store.snapshots()?.into_iter().max_by_key(|s| s.0))
    }

    /// At most `max` stored event records from `first` on, as written: a page of the journal
    /// for a reader that cannot open it while this writer holds it (see [`JournalCopy`]).
    pub fn records_page(&self, first: u64, max: usize) -> JournalResult<Vec<(u64, Vec<u8>)>> {
        Ok(self
            .store
            .read_from(first)
            .take(max)
            .collect::<Result<Vec<_>, _>>()?)
    }

    /// The sequence number of the first event at or after `t`, or one past the last: event
    /// times do not go back (the daemon stamps each with the later of its clock and the
    /// engine's time; only a clock set back just after a record for the books, which the
    /// engine's time does not follow, could make one earlier than that record), so a
    /// bisection over the sequence numbers finds it in a few reads. An event that cannot be
    /// read counts as later, so the answer errs early, never late.
    fn first_at_or_after(&self, t: Time) -> u64 {
        let (mut lo, mut hi) = (1, self.last_seq + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let at = match self.store.read_from(mid).next() {
                Some(Ok((_, bytes))) => codec::decode_event(&bytes).ok().map(|e| e.at),
                _ => None,
            };
            if at.is_some_and(|at| at < t) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The launch journaled last for each machine `wanted` keeps, read from the first event
    /// at or after `since` on (a machine's launch is journaled after the engine made it, so
    /// `since` is the oldest such machine's creation): what a daemon starting again knows of
    /// its machines' instances before the cloud answers a list.
    pub fn launches_since(
        &self,
        since: Time,
        mut wanted: impl FnMut(MachineId) -> bool,
    ) -> JournalResult<BTreeMap<MachineId, Launch>> {
        let mut out = BTreeMap::new();
        walk(&*self.store, self.first_at_or_after(since), |_, ev| {
            if let EventKind::MachineLaunched { machine, launch } = ev.kind
                && wanted(machine)
            {
                out.insert(machine, *launch);
            }
        })?;
        Ok(out)
    }

    /// Every snapshot record as stored, with its sequence number, oldest first.
    pub fn snapshot_records(&self) -> JournalResult<Vec<(u64, Vec<u8>)>> {
        let mut v = self.store.snapshots()?;
        v.sort_by_key(|s| s.0);
        Ok(v)
    }

    /// Append `events` as one stored batch and make it durable.
    fn write(&mut self, events: &[Event]) -> JournalResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        let records: Vec<Vec<u8>> = events.iter().map(codec::encode_event).collect();
        self.store.append(self.last_seq + 1, &records)?;
        self.store.flush()?;
        self.last_seq += events.len() as u64;
        self.since_snapshot += events.len() as u64;
        Ok(())
    }

    fn write_buffered(&mut self) -> JournalResult<()> {
        let buf = std::mem::take(&mut self.buf);
        self.write(&buf)?;
        self.buf = buf;
        self.buf.clear();
        Ok(())
    }

    /// Write a snapshot of `engine`, the state after the last written event; keep the newest
    /// few.
    pub fn snapshot(&mut self, engine: &Engine) -> JournalResult<()> {
        self.store
            .put_snapshot(self.last_seq, codec::encode_json(Kind::Snapshot, engine))?;
        self.store
            .prune_snapshots(self.header.keep_snapshots.max(1) as usize)?;
        self.store.flush()?;
        self.since_snapshot = 0;
        Ok(())
    }
}

impl EventLog for JournalLog {
    type Error = JournalError;

    fn append(&mut self, events: &[Event]) -> JournalResult<()> {
        if self.batch <= 1 {
            return self.write(events);
        }
        self.buf.extend_from_slice(events);
        if self.buf.len() >= self.batch {
            self.write_buffered()?;
        }
        Ok(())
    }

    /// A snapshot at the first batch boundary after every `snapshot_every` events, when all
    /// that the engine applied is written.
    fn applied(&mut self, engine: &Engine) -> JournalResult<()> {
        if self.buf.is_empty() && self.since_snapshot >= self.header.snapshot_every.max(1) {
            self.snapshot(engine)?;
        }
        Ok(())
    }

    fn close(&mut self, engine: &Engine) -> JournalResult<()> {
        self.write_buffered()?;
        self.snapshot(engine)
    }
}

/// A journal opened for appending: the driver with the journal as its log.
pub type Journal = Driver<JournalLog>;

impl Driver<JournalLog> {
    /// Start a new journal in `dir` and an engine at the header's start.
    pub fn create(dir: &Path, header: Header) -> JournalResult<Self> {
        let engine = Engine::new(header.engine, header.settings.clone(), header.start);
        Ok(Driver::new(engine, JournalLog::create(dir, header)?))
    }

    /// Open and recover: newest snapshot, then the events after it. A torn tail is cut from
    /// the store so appending continues after the valid prefix.
    pub fn open(dir: &Path) -> JournalResult<(Self, Recovery)> {
        if !dir.is_dir() || !store::is_store(dir) {
            return Err(JournalError::NotAJournal(dir.to_path_buf()));
        }
        let mut store = SledStore::open(dir)?;
        let header = read_header(&store, dir)?;
        let mut rec = Recovery::default();
        let (engine, snap) = load_state(&store, &header, &mut rec.notes)?;
        rec.snapshot = snap;
        let mut driver = Driver::unlogged(engine);
        let mut replayed = 0;
        let mut refused = 0;
        let end = walk(&store, snap.unwrap_or(0) + 1, |_, ev| {
            replayed += 1;
            if driver.handle(&ev).is_err() {
                refused += 1;
            }
            driver.drain_actions().for_each(drop);
        })?;
        rec.replayed = replayed;
        rec.refused = refused;
        rec.last_seq = end.last_seq.max(snap.unwrap_or(0));
        if let Some(d) = &end.dropped {
            store.truncate_from(d.first)?;
            store.flush()?;
        }
        rec.dropped = end.dropped;
        let log = JournalLog {
            dir: dir.to_path_buf(),
            store: Box::new(store),
            header,
            last_seq: rec.last_seq,
            since_snapshot: replayed,
            buf: Vec::new(),
            batch: 1,
        };
        Ok((Driver::new(driver.into_parts().0, log), rec))
    }

    pub fn header(&self) -> &Header {
        self.log().header()
    }
    pub fn last_seq(&self) -> u64 {
        self.log().last_seq()
    }
    pub fn dir(&self) -> &Path {
        self.log().dir()
    }

    /// Journal `events` as one batch, make it durable, then apply each: the result of each
    /// event (its actions, or why the engine refused it).
    pub fn append_batch(
        &mut self,
        events: &[Event],
    ) -> JournalResult<Vec<Result<Vec<Action>, EngineError>>> {
        self.handle_batch(events)
    }

    /// One event, flushed before it is applied.
    pub fn append(&mut self, ev: &Event) -> JournalResult<Result<Vec<Action>, EngineError>> {
        Ok(self.append_batch(std::slice::from_ref(ev))?.remove(0))
    }

    /// Write a snapshot of the state after the last event.
    pub fn snapshot(&mut self) -> JournalResult<()> {
        let (engine, log) = self.parts_mut();
        log.snapshot(engine)
    }
}

/// Read-only views for `journal inspect/export/verify`.
pub struct Reader {
    store: SledStore,
    pub header: Header,
}

/// `journal inspect`.
#[derive(Clone, Debug, Serialize)]
pub struct Inspection {
    pub header: Header,
    pub events: u64,
    pub first_at: Option<Time>,
    pub last_at: Option<Time>,
    pub snapshots: Vec<u64>,
    /// Bytes the kept snapshots take.
    pub snapshot_bytes: u64,
    pub by_kind: BTreeMap<String, u64>,
    pub dropped: Option<Dropped>,
}

/// `journal verify`: the first snapshot that replay does not reproduce, if any.
#[derive(Clone, Debug, Serialize)]
pub struct Verification {
    pub events: u64,
    pub snapshots_checked: u64,
    pub divergence: Option<u64>,
    pub dropped: Option<Dropped>,
}

pub fn kind_name(k: &EventKind) -> &'static str {
    match k {
        EventKind::JobArrived { .. } => "job_arrived",
        EventKind::JobFinished { .. } => "job_finished",
        EventKind::MachineReady { .. } => "machine_ready",
        EventKind::MachineFailed { .. } => "machine_failed",
        EventKind::MachineGone { .. } => "machine_gone",
        EventKind::SpotNotice { .. } => "spot_notice",
        EventKind::Tick => "tick",
        EventKind::ConfigReloaded { .. } => "config_reloaded",
        EventKind::JobCancelled { .. } => "job_cancelled",
        EventKind::JobCharged { .. } => "job_charged",
        EventKind::MachineLaunched { .. } => "machine_launched",
    }
}

impl Reader {
    pub fn open(dir: &Path) -> JournalResult<Self> {
        if !dir.is_dir() || !store::is_store(dir) {
            return Err(JournalError::NotAJournal(dir.to_path_buf()));
        }
        let store = SledStore::open(dir)?;
        let header = read_header(&store, dir)?;
        Ok(Reader { store, header })
    }

    /// Every event in order; a torn tail is reported in the result, not returned.
    pub fn events(&self, f: impl FnMut(u64, Event)) -> JournalResult<Option<Dropped>> {
        Ok(walk(&self.store, 1, f)?.dropped)
    }

    pub fn inspect(&self) -> JournalResult<Inspection> {
        let mut n = 0;
        let (mut first, mut last) = (None, None);
        let mut by_kind = BTreeMap::new();
        let dropped = self.events(|_, e| {
            n += 1;
            first.get_or_insert(e.at);
            last = Some(e.at);
            *by_kind.entry(kind_name(&e.kind).to_string()).or_insert(0) += 1;
        })?;
        let all = self.store.snapshots()?;
        let snapshot_bytes = all.iter().map(|s| s.1.len() as u64).sum();
        let mut snapshots: Vec<u64> = all.into_iter().map(|s| s.0).collect();
        snapshots.sort_unstable();
        Ok(Inspection {
            header: self.header.clone(),
            events: n,
            first_at: first,
            last_at: last,
            snapshots,
            snapshot_bytes,
            by_kind,
            dropped,
        })
    }

    /// Replay from the start and compare with every snapshot.
    pub fn verify(&self) -> JournalResult<Verification> {
        let mut snaps: BTreeMap<u64, u64> = BTreeMap::new();
        for (seq, bytes) in self.store.snapshots()? {
            let e: Engine = codec::decode_json(Kind::Snapshot, &bytes).map_err(|err| {
                JournalError::Corrupt {
                    seq,
                    reason: format!("snapshot: {err}"),
                }
            })?;
            snaps.insert(seq, digest(&e));
        }
        let h = &self.header;
        let mut driver = Driver::unlogged(Engine::new(h.engine, h.settings.clone(), h.start));
        let mut n = 0;
        let mut checked = 0;
        let mut divergence = None;
        let dropped = self.events(|seq, ev| {
            n += 1;
            // A refused event leaves the state as it was, as it did for the writer.
            let _ = driver.handle(&ev);
            driver.drain_actions().for_each(drop);
            if let Some(d) = snaps.get(&seq) {
                checked += 1;
                if divergence.is_none() && *d != digest(driver.engine()) {
                    divergence = Some(seq);
                }
            }
        })?;
        Ok(Verification {
            events: n,
            snapshots_checked: checked,
            divergence,
            dropped,
        })
    }
}
