//! The daemon's books: what each job's charge needs until it is charged (who the job is for,
//! when it arrived and started, since when its machine stood free before it). Kept in memory
//! and, one small JSON file a job, in `STATE/books/`, written before the daemon answers the
//! request that changed it, so a job running across a restart of the daemon is charged when
//! it ends, as any other. A book that cannot be written or read costs only that job's charge:
//! it is logged, never fatal.

use crate::core::{JobId, JobKeys, MachineId, Time};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tracing::warn;

/// The books' folder inside the state directory.
pub const BOOKS_DIR: &str = "books";

/// A job's entry in the books, until it is charged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobBook {
    #[serde(default, skip_serializing_if = "JobKeys::is_empty")]
    pub keys: JobKeys,
    pub arrived: Time,
    /// The machine it started on, and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<(MachineId, Time)>,
    /// When that machine last became free before it (created, or its last job ended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_from: Option<Time>,
}

#[derive(Debug)]
pub struct Books {
    dir: PathBuf,
    open: HashMap<JobId, JobBook>,
}

impl Books {
    /// The books kept in `state`, for the jobs `open` says are not finished; the files of the
    /// others (charged or cancelled while no daemon ran to remove them, or unreadable) go.
    pub fn load(state: &Path, open: impl Fn(JobId) -> bool) -> Books {
        let dir = state.join(BOOKS_DIR);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            warn!(dir = %dir.display(), error = %e, "the books cannot be kept; jobs running across a restart will not be charged");
        }
        let mut books = HashMap::new();
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = e.path();
            let job = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|n| n.parse::<JobId>().ok());
            let book = std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<JobBook>(&b).ok());
            match (job, book) {
                (Some(job), Some(book)) if open(job) => {
                    books.insert(job, book);
                }
                (Some(_), None) => {
                    warn!(file = %path.display(), "a job's book could not be read; that job will not be charged");
                    let _ = std::fs::remove_file(&path);
                }
                (Some(_), Some(_)) => {
                    let _ = std::fs::remove_file(&path);
                }
                // Not a book (a temporary file left by a crash, or anything else): left alone.
                (None, _) => {}
            }
        }
        Books { dir, open: books }
    }

    pub fn get(&self, job: JobId) -> Option<&JobBook> {
        self.open.get(&job)
    }

    pub fn contains(&self, job: JobId) -> bool {
        self.open.contains_key(&job)
    }

    /// Open `job`'s book (one already open is kept).
    pub fn open(&mut self, job: JobId, book: JobBook) {
        if !self.open.contains_key(&job) {
            self.write(job, &book);
            self.open.insert(job, book);
        }
    }

    /// `job` started on `machine` at `at`, which stood free since `free_from`.
    pub fn started(&mut self, job: JobId, machine: MachineId, at: Time, free_from: Option<Time>) {
        if let Some(b) = self.open.get_mut(&job) {
            b.started = Some((machine, at));
            b.free_from = free_from;
            let b = b.clone();
            self.write(job, &b);
        }
    }

    /// The recovered engine has `job` running on `machine` since `at`. A book that did not
    /// see that start (the daemon stopped after the start was journaled and before its book
    /// was written, or the job was started again on another machine in that moment) takes
    /// it, without the machine's free time before it, which nothing recorded. A book that saw
    /// it is left as it is.
    pub fn recovered_start(&mut self, job: JobId, machine: MachineId, at: Time) {
        if let Some(b) = self.open.get(&job)
            && b.started.is_none_or(|(m, _)| m != machine)
        {
            self.started(job, machine, at, None);
        }
    }

    /// Close `job`'s book (charged, or it will not be).
    pub fn close(&mut self, job: JobId) -> Option<JobBook> {
        let b = self.open.remove(&job)?;
        let path = self.path(job);
        if let Err(e) = std::fs::remove_file(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            warn!(file = %path.display(), error = %e, "a closed job's book could not be removed");
        }
        Some(b)
    }

    fn path(&self, job: JobId) -> PathBuf {
        self.dir.join(format!("{job}.json"))
    }

    fn write(&self, job: JobId, book: &JobBook) {
        let path = self.path(job);
        let bytes = serde_json::to_vec(book).expect("a book is JSON");
        if let Err(e) = crate::report::output::write_atomic(&path, &bytes) {
            warn!(file = %path.display(), error = %e, "a job's book could not be written; it will not be charged if the daemon restarts before it ends");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn books_outlive_the_daemon_and_go_when_closed() {
        let state = crate::testing::scratch("jobbooks");
        let mut b = Books::load(&state, |_| true);
        let keys = JobKeys {
            project: Some("group/app".into()),
            ..JobKeys::default()
        };
        let book = |arrived| JobBook {
            keys: keys.clone(),
            arrived: Time(arrived),
            started: None,
            free_from: None,
        };
        b.open(11, book(1_000));
        b.open(11, book(5_000)); // a repeated prepare keeps the first
        b.open(12, book(2_000));
        b.open(13, book(3_000));
        b.started(11, 4, Time(9_000), Some(Time(500)));
        b.close(12);
        // Another daemon, for which job 13 ended meanwhile.
        let mut again = Books::load(&state, |j| j != 13);
        assert_eq!(
            again.get(11),
            Some(&JobBook {
                keys: keys.clone(),
                arrived: Time(1_000),
                started: Some((4, Time(9_000))),
                free_from: Some(Time(500)),
            })
        );
        assert!(!again.contains(12) && !again.contains(13));
        let files: Vec<_> = std::fs::read_dir(state.join(BOOKS_DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(files, vec!["11.json".to_string()], "13's file went with it");
        // The recovered engine says what a book missed: 11 saw its start and keeps it (with
        // its free time), 12's start came in the moment before a stop (or on another machine
        // than its book says): it takes the engine's, and no free time.
        again.open(12, book(2_000));
        again.recovered_start(11, 4, Time(9_999));
        again.recovered_start(12, 6, Time(7_000));
        assert_eq!(again.get(11).unwrap().started, Some((4, Time(9_000))));
        assert_eq!(again.get(11).unwrap().free_from, Some(Time(500)));
        assert_eq!(again.get(12).unwrap().started, Some((6, Time(7_000))));
        again.started(12, 5, Time(6_000), Some(Time(100)));
        again.recovered_start(12, 6, Time(7_000));
        let after = Books::load(&state, |_| true);
        assert_eq!(after.get(12).unwrap().started, Some((6, Time(7_000))));
        assert_eq!(after.get(12).unwrap().free_from, None);
        // A damaged book is dropped, not fatal.
        std::fs::write(state.join(BOOKS_DIR).join("11.json"), b"{not json").unwrap();
        assert!(!Books::load(&state, |_| true).contains(11));
        std::fs::remove_dir_all(&state).unwrap();
    }
}
