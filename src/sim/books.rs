//! The run's books kept on another thread: a run over a trace that is still being read hands
//! what it bills and what its jobs waited ([`Entry`]) to the reading thread, which otherwise
//! waits for the run to take the next jobs, so the two cores share the work more evenly.
//!
//! The entries are applied in exactly the order the run made them, with the same world, so
//! the sums (floating point included) are the same to the bit as books kept by the run itself.
//! The counts the run keeps (machines created, retries, interruptions, the queue's waiting by
//! cause) are whole numbers: they stay with the run and are added when the books come back.
//!
//! Both channels are bounded, so memory stays flat however long the trace; the run waits for
//! the keeper only if the keeper falls that far behind.

use crate::sim::WorldModel;
use crate::sim::metrics::{Entry, Metrics};
use chrono_tz::Tz;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, sync_channel};
use std::time::Duration;

/// Entries per hand-over (24 bytes each: 96 KiB).
const ENTRIES: usize = 4096;
/// Hand-overs on their way at most.
const AHEAD: usize = 16;

enum Tally {
    /// The books to keep: a run's world and time zone.
    Open(Box<WorldModel>, Tz),
    Entries(Vec<Entry>),
    /// The run is over: the books go back.
    Close,
}

/// The run's end of the books: entries go out, the books come back when it closes them.
pub struct RemoteBooks {
    tx: SyncSender<Tally>,
    back: Receiver<Metrics>,
    buf: Vec<Entry>,
}

/// The keeping thread's end ([`Keeper::serve`] whenever it can).
pub struct Keeper {
    rx: Receiver<Tally>,
    back: SyncSender<Metrics>,
    books: Option<(Metrics, Box<WorldModel>)>,
    /// Closed and sent back, or the run went away.
    over: bool,
}

/// A pair of ends, the run's and the keeper's.
pub fn pair() -> (RemoteBooks, Keeper) {
    let (tx, rx) = sync_channel(AHEAD);
    let (back_tx, back) = sync_channel(1);
    (
        RemoteBooks {
            tx,
            back,
            buf: Vec::new(),
        },
        Keeper {
            rx,
            back: back_tx,
            books: None,
            over: false,
        },
    )
}

impl RemoteBooks {
    /// Open the books for a run in `world` and `tz`. False if the keeper is gone.
    pub(crate) fn open(&mut self, world: &WorldModel, tz: Tz) -> bool {
        self.buf = Vec::with_capacity(ENTRIES);
        self.tx
            .send(Tally::Open(Box::new(world.clone()), tz))
            .is_ok()
    }

    #[inline]
    pub(crate) fn push(&mut self, e: Entry) {
        self.buf.push(e);
        if self.buf.len() == ENTRIES {
            self.hand_over();
        }
    }

    #[cold]
    #[inline(never)]
    fn hand_over(&mut self) {
        let full = std::mem::replace(&mut self.buf, Vec::with_capacity(ENTRIES));
        // A keeper that went away is found out when the books are closed.
        let _ = self.tx.send(Tally::Entries(full));
    }

    /// Every entry is handed over; the books come back, every entry applied. None if the
    /// keeper went away (its thread ended first).
    pub(crate) fn close(mut self) -> Option<Metrics> {
        if !self.buf.is_empty() {
            self.hand_over();
        }
        self.tx.send(Tally::Close).ok()?;
        self.back.recv().ok()
    }
}

impl Keeper {
    /// Apply what has come, waiting at most `wait` for something to come first. True once the
    /// books went back (or the run went away): nothing more will come.
    pub fn serve(&mut self, wait: Duration) -> bool {
        if self.over {
            return true;
        }
        let first = if wait.is_zero() {
            match self.rx.try_recv() {
                Ok(t) => t,
                Err(TryRecvError::Empty) => return false,
                Err(TryRecvError::Disconnected) => return self.end(),
            }
        } else {
            match self.rx.recv_timeout(wait) {
                Ok(t) => t,
                Err(RecvTimeoutError::Timeout) => return false,
                Err(RecvTimeoutError::Disconnected) => return self.end(),
            }
        };
        let mut next = Some(first);
        while let Some(t) = next.take() {
            if self.take(t) {
                return true;
            }
            next = match self.rx.try_recv() {
                Ok(t) => Some(t),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => return self.end(),
            };
        }
        false
    }

    /// Whether the books went back (or the run went away).
    pub fn over(&self) -> bool {
        self.over
    }

    fn end(&mut self) -> bool {
        self.over = true;
        self.books = None;
        true
    }

    /// One message; true when the books went back.
    fn take(&mut self, t: Tally) -> bool {
        match t {
            Tally::Open(world, tz) => self.books = Some((Metrics::new(tz), world)),
            Tally::Entries(v) => {
                if let Some((m, world)) = &mut self.books {
                    for e in v {
                        m.apply(world, e);
                    }
                }
            }
            Tally::Close => {
                if let Some((m, _)) = self.books.take() {
                    let _ = self.back.send(m);
                }
                self.over = true;
                return true;
            }
        }
        false
    }
}
