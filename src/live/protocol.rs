//! The executor socket: how `scalecast executor prepare|cleanup` and `scalecast live status`
//! talk to the running daemon. One JSON request per line over the Unix socket
//! `STATE/scalecast.sock` (mode 0600), one JSON response per line back.
//!
//! The client side is plain std (no runtime): GitLab Runner starts it once per job stage. It
//! survives a daemon restart: a refused or cut connection is retried, and the request sent
//! again, until its patience runs out; every request is idempotent at the daemon.

use crate::core::{JobId, MachineId};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The socket's file name inside the state directory.
pub const SOCKET: &str = crate::journal::remote::SOCKET;

pub fn socket_path(state: &Path) -> PathBuf {
    state.join(SOCKET)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// A job wants a machine: answered once the engine started it on one.
    Prepare {
        job: JobId,
        /// Who the job is for (from GitLab's variables), recorded with its cost.
        #[serde(default, skip_serializing_if = "crate::core::JobKeys::is_empty")]
        keys: crate::core::JobKeys,
    },
    /// A job is over (finished, failed, or cancelled before it started).
    Cleanup { job: JobId },
    /// Where a running job runs, without waiting: `Started` while it runs on its machine,
    /// else `Failed` (its machine was lost, or it is over). `run` and `cleanup` ask this.
    Locate { job: JobId },
    /// The runner's container settings (for `executor config`).
    Settings,
    /// What the daemon holds now.
    Status,
    /// Up to `max` of its journal's event records from `from` on, with the header: how the
    /// `journal` commands read the journal of a running daemon, which holds its lock.
    JournalRecords { from: u64, max: u32 },
    /// Its journal's snapshot records.
    JournalSnapshots,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Response {
    /// The job runs on this machine.
    Started {
        job: JobId,
        machine: MachineId,
        /// The cloud's id of its instance, when known.
        instance: Option<String>,
        name: String,
        /// The machine's Docker and the runner's container settings; none while its address
        /// is not known yet (ask again), or when the daemon runs without Docker (tests of the
        /// cloud side).
        #[serde(default)]
        docker: Option<crate::live::docker::JobTarget>,
    },
    /// The job will not get a machine, and why.
    Failed {
        job: JobId,
        reason: String,
    },
    /// The job is gone from the engine; `was` says what it was: running, waiting, unknown.
    Cleaned {
        job: JobId,
        was: String,
    },
    Status(Box<Status>),
    Settings {
        manager: String,
        settings: crate::live::docker::Settings,
    },
    /// Journal records as stored (versioned and checksummed), in order: the header record and
    /// event records, or the snapshot records (then `header` is empty).
    Journal {
        #[serde(default, skip_serializing_if = "String::is_empty")]
        header: String,
        records: Vec<Stored>,
    },
    /// The request could not be read.
    Error {
        message: String,
    },
}

pub use crate::journal::remote::{Stored, hex, unhex};

/// The daemon's state, for `scalecast live status`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub manager: String,
    pub now: String,
    pub engine: String,
    /// The active autoscaling entry (0-based), none for `[runners.machine]`'s own settings.
    pub period: Option<usize>,
    pub idle_count: u32,
    pub idle_time_s: u64,
    pub idle_target: u32,
    pub machines: Vec<MachineStatus>,
    /// Waiting jobs, oldest first.
    pub waiting: Vec<JobId>,
    pub running: u32,
    /// Cloud calls in flight.
    pub creating_calls: usize,
    pub terminating_calls: usize,
    /// When the cloud may be called again after failures, if it is backing off.
    pub backing_off_until: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MachineStatus {
    pub machine: MachineId,
    pub instance: Option<String>,
    /// Its instance's type and market (spot or not), once the cloud said.
    #[serde(default)]
    pub instance_type: Option<String>,
    #[serde(default)]
    pub spot: Option<bool>,
    pub state: String,
    pub uses: u32,
    pub job: Option<JobId>,
    /// When its idle clock started (it is idle), RFC 3339.
    pub idle_since: Option<String>,
    pub notice: bool,
    pub created_at: String,
}

/// Why a call to the daemon failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "no daemon answers at {path} after {waited_s} s (is `scalecast live --state {state}` running?): {last}"
    )]
    NoDaemon {
        path: String,
        state: String,
        waited_s: u64,
        last: String,
    },
    #[error("the daemon's answer could not be read: {0}")]
    BadAnswer(String),
}

/// Send `req` to the daemon of `state` and wait for its answer. A daemon that is not there
/// yet, or goes away before it answers (restarted), is tried again every `retry` until
/// `patience` is spent; the request is sent again each time (the daemon treats a repeat as
/// the same request).
pub fn call(
    state: &Path,
    req: &Request,
    patience: Duration,
    retry: Duration,
) -> Result<Response, ClientError> {
    let path = socket_path(state);
    let start = Instant::now();
    let line = serde_json::to_string(req).expect("requests encode") + "\n";
    loop {
        let last = match once(&path, &line) {
            Ok(Some(answer)) => {
                return serde_json::from_str(&answer)
                    .map_err(|e| ClientError::BadAnswer(format!("{e}: {answer}")));
            }
            Ok(None) => "the daemon closed the connection before answering".to_string(),
            Err(e) => e.to_string(),
        };
        if start.elapsed() >= patience {
            return Err(ClientError::NoDaemon {
                path: path.display().to_string(),
                state: state.display().to_string(),
                waited_s: start.elapsed().as_secs(),
                last,
            });
        }
        std::thread::sleep(retry);
    }
}

fn once(path: &Path, line: &str) -> std::io::Result<Option<String>> {
    let mut s = UnixStream::connect(path)?;
    s.write_all(line.as_bytes())?;
    let mut answer = String::new();
    BufReader::new(s).read_line(&mut answer)?;
    Ok((!answer.trim().is_empty()).then(|| answer.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_answers_have_a_stable_json_form() {
        assert_eq!(
            serde_json::to_string(&Request::Prepare {
                job: 7,
                keys: Default::default()
            })
            .unwrap(),
            r#"{"op":"prepare","job":7}"#
        );
        let r = Response::Started {
            job: 7,
            machine: 3,
            instance: Some("i-1".into()),
            name: "runner-ab-3".into(),
            docker: None,
        };
        let s = serde_json::to_string(&r).unwrap();
        assert!(s.starts_with(r#"{"result":"started","job":7"#), "{s}");
        assert_eq!(serde_json::from_str::<Response>(&s).unwrap(), r);
        assert!(serde_json::from_str::<Request>(r#"{"op":"reboot"}"#).is_err());
    }

    /// The journal reader (`journal::remote`, no `live` feature) and the daemon speak the
    /// same lines.
    #[test]
    fn the_journal_reader_and_the_daemon_agree_on_the_wire() {
        use crate::journal::remote::{Answer, Ask};
        let pairs = [
            (
                Ask::JournalRecords { from: 3, max: 5 },
                Request::JournalRecords { from: 3, max: 5 },
            ),
            (Ask::JournalSnapshots, Request::JournalSnapshots),
        ];
        for (ask, req) in pairs {
            let line = serde_json::to_string(&ask).unwrap();
            assert_eq!(line, serde_json::to_string(&req).unwrap());
            assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), req);
        }
        let records = vec![Stored::new(3, b"abc")];
        for header in [String::new(), hex(b"{}")] {
            let r = Response::Journal {
                header: header.clone(),
                records: records.clone(),
            };
            let a: Answer = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
            assert_eq!(
                a,
                Answer::Journal {
                    header,
                    records: records.clone()
                }
            );
        }
        let e = Response::Error {
            message: "no".into(),
        };
        let a: Answer = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(
            a,
            Answer::Error {
                message: "no".into()
            }
        );
    }

    #[test]
    fn no_daemon_is_an_error_naming_the_socket_and_the_command() {
        let dir = crate::testing::scratch("nodaemon");
        let e = call(
            &dir,
            &Request::Status,
            Duration::from_millis(50),
            Duration::from_millis(10),
        )
        .unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("scalecast.sock") && m.contains("scalecast live --state"),
            "{m}"
        );
    }
}
