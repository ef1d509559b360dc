//! Reading the journal of a running daemon. The daemon holds its journal's lock (sled's) while
//! it runs, so a reader given `STATE/journal` asks the daemon's socket beside it for the stored
//! records instead, page by page, and reads them from a copy ([`JournalCopy`]) in the
//! temporary directory, removed when done. The client is plain std (no runtime, no `live`
//! feature): the daemon's side is `live::protocol`'s `journal_records` and `journal_snapshots`
//! requests, whose JSON form a test there holds to this one. A journal no daemon holds is
//! read from a copy of its files, as opening a sled store writes to it.

use crate::journal::store::StoreError;
use crate::journal::{JournalCopy, JournalError, JournalResult, Reader};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// The daemon's socket, in its state directory (beside `journal`).
pub const SOCKET: &str = "scalecast.sock";
/// Records a page asks for (the daemon gives at most this many, holding its loop for a few
/// milliseconds a page).
pub const PAGE: u32 = 20_000;

/// A journal record as stored, by its sequence number, its bytes in hexadecimal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    pub seq: u64,
    pub hex: String,
}

impl Stored {
    pub fn new(seq: u64, bytes: &[u8]) -> Self {
        Stored {
            seq,
            hex: hex(bytes),
        }
    }

    pub fn bytes(&self) -> Result<Vec<u8>, String> {
        unhex(&self.hex).ok_or_else(|| format!("record {}: not hexadecimal", self.seq))
    }
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

pub fn unhex(s: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    b.chunks(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

/// What the reader asks the daemon.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Ask {
    JournalRecords { from: u64, max: u32 },
    JournalSnapshots,
}

/// What it reads back.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Answer {
    /// The header record (empty for snapshots) and the records, in order.
    Journal {
        #[serde(default)]
        header: String,
        records: Vec<Stored>,
    },
    Error {
        message: String,
    },
}

/// One request on a new connection; None when nothing answers there (no daemon).
fn ask(socket: &Path, what: &Ask) -> Result<Option<Answer>, String> {
    let Ok(mut s) = UnixStream::connect(socket) else {
        return Ok(None);
    };
    let line = serde_json::to_string(what).expect("requests encode") + "\n";
    let mut answer = String::new();
    s.write_all(line.as_bytes())
        .and_then(|()| BufReader::new(s).read_line(&mut answer).map(drop))
        .map_err(|e| format!("the daemon at {}: {e}", socket.display()))?;
    if answer.trim().is_empty() {
        return Err(format!(
            "the daemon at {} closed the connection before answering",
            socket.display()
        ));
    }
    match serde_json::from_str(answer.trim()) {
        Ok(Answer::Error { message }) => Err(format!("the daemon: {message}")),
        Ok(a) => Ok(Some(a)),
        Err(e) => Err(format!("the daemon's answer could not be read: {e}")),
    }
}

/// Stored records with their sequence numbers.
type Records = Vec<(u64, Vec<u8>)>;

/// Copy the journal of the daemon whose socket is `socket` into `to` (a new directory).
/// `Ok(None)` when no daemon answers there.
pub fn copy_running(socket: &Path, to: &Path) -> Result<Option<PathBuf>, String> {
    let page = |from: u64| Ask::JournalRecords { from, max: PAGE };
    let unpack = |a: Option<Answer>| -> Result<(String, Records), String> {
        match a {
            Some(Answer::Journal { header, records }) => Ok((
                header,
                records
                    .iter()
                    .map(|s| s.bytes().map(|b| (s.seq, b)))
                    .collect::<Result<_, _>>()?,
            )),
            _ => Err("the daemon went away while its journal was read".into()),
        }
    };
    let Some(first) = ask(socket, &page(1))? else {
        return Ok(None);
    };
    let (header, mut records) = unpack(Some(first))?;
    let header = unhex(&header).ok_or("the daemon's journal header is not hexadecimal")?;
    let mut copy = JournalCopy::create(to, &header).map_err(|e| e.to_string())?;
    while !records.is_empty() {
        copy.events(records).map_err(|e| e.to_string())?;
        records = unpack(ask(socket, &page(copy.next()))?)?.1;
    }
    let snapshots = unpack(ask(socket, &Ask::JournalSnapshots)?)?.1;
    copy.finish(snapshots).map(Some).map_err(|e| e.to_string())
}

/// A journal to read: the one in its directory, or a copy of it.
pub struct Opened {
    pub reader: Reader,
    /// The copy's directory, removed once read (after the reader: fields drop in order).
    _copy: Option<RemovedOnDrop>,
}

struct RemovedOnDrop(PathBuf);

impl Drop for RemovedOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A new directory's path in the temporary directory for one copy, unique in this process
/// (two journals may be open at once: `simulate --by` on a journal trace reads it twice).
fn copy_dir() -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("scalecast-journal-copy-{}-{n}", std::process::id()))
}

/// Copy the store in `dir` into `to` (a new directory), file by file, holding the store's
/// lock (sled's: `flock` on its `db` file) so that no writer is half-way through. The
/// original is only read: opening a sled store writes to it (a new snapshot file, its `db`
/// file), and on a damaged store sled's recovery may rewrite what it reads before the damage
/// is reported. A lock held by another process for two seconds is an error.
fn copy_files(dir: &Path, to: &Path) -> Result<(), String> {
    let db = std::fs::File::open(dir.join("db")).map_err(|e| format!("db: {e}"))?;
    let mut tries = 0;
    loop {
        // Shared: other readers copy at the same time; sled's writer (exclusive) waits.
        match db.try_lock_shared() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) if tries < 100 => {
                // A handle that is closing (a command that just ended) lets go soon.
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err("another process holds the journal (a daemon that does not \
                            answer on its socket beside it?)"
                    .into());
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(format!("db: {e}")),
        }
    }
    copy_tree(dir, to)
}

/// Copy the files under `from` into `to`, folders included.
fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    let entries = std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", from.display()))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry
            .file_type()
            .map_err(|e| format!("{}: {e}", src.display()))?;
        if kind.is_dir() {
            copy_tree(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst).map_err(|e| format!("{}: {e}", src.display()))?;
        }
    }
    Ok(())
}

/// The journal in `dir` to read, always from a copy in the temporary directory (removed when
/// done), so that reading never writes to the journal: when a daemon answers on the socket
/// beside it (it holds the journal's lock), a copy of the records it hands out; otherwise a
/// copy of the store's files.
pub fn open(dir: &Path) -> JournalResult<Opened> {
    let failed = |e: String| JournalError::Store(StoreError(e));
    let to = copy_dir();
    let _ = std::fs::remove_dir_all(&to);
    let guard = RemovedOnDrop(to.clone());
    let opened = |copy: &Path, guard| {
        Ok(Opened {
            reader: Reader::open(copy)?,
            _copy: Some(guard),
        })
    };
    if let Some(socket) = dir
        .parent()
        .map(|state| state.join(SOCKET))
        .filter(|s| s.exists())
    {
        match copy_running(&socket, &to) {
            Ok(Some(copy)) => return opened(&copy, guard),
            Ok(None) => {}
            Err(e) => return Err(failed(format!("reading it from the running daemon: {e}"))),
        }
    }
    if !dir.is_dir() || !crate::journal::store::is_store(dir) {
        return Err(JournalError::NotAJournal(dir.to_path_buf()));
    }
    copy_files(dir, &to).map_err(|e| failed(format!("copying it to read: {e}")))?;
    opened(&to, guard)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_records_travel_as_hexadecimal_and_back() {
        let bytes: Vec<u8> = (0..=255).collect();
        let s = Stored::new(9, &bytes);
        assert_eq!(&s.hex[..8], "00010203");
        assert_eq!(&s.hex[s.hex.len() - 4..], "feff");
        assert_eq!(s.bytes().unwrap(), bytes);
        assert_eq!(unhex("abc"), None, "odd length");
        assert_eq!(unhex("zz"), None, "not a digit");
        assert_eq!(unhex("A0"), Some(vec![0xa0]));
    }
}
