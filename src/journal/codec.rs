//! Journal records on disk: `[version][kind][crc32 of payload, LE][payload]`. The version byte
//! lets the encoding change later without breaking old journals; the checksum finds torn and
//! garbled records. Events are bincode 2 (compact, fast); the header and snapshots are JSON
//! (they hold settings, whose serde form bincode cannot carry, and are rare).

use crate::core::{Event, EventKind, Settings, Time};
use serde::{Deserialize, Serialize};

/// The record encoding this build writes (and the only one it reads so far).
pub const VERSION: u8 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Header = 1,
    Event = 2,
    Snapshot = 3,
}

/// Why a record could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodecError {
    Short(usize),
    Version(u8),
    Kind { expected: u8, found: u8 },
    Checksum,
    Payload(String),
}

impl std::fmt::Display for CodecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CodecError::Short(n) => write!(f, "record of {n} bytes is too short"),
            CodecError::Version(v) => {
                write!(f, "unknown record version {v} (this build reads {VERSION})")
            }
            CodecError::Kind { expected, found } => {
                write!(f, "record kind {found} where kind {expected} was expected")
            }
            CodecError::Checksum => write!(f, "checksum mismatch (torn or garbled)"),
            CodecError::Payload(m) => write!(f, "undecodable payload: {m}"),
        }
    }
}

pub fn seal(kind: Kind, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 6);
    out.push(VERSION);
    out.push(kind as u8);
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

pub fn unseal(kind: Kind, bytes: &[u8]) -> Result<&[u8], CodecError> {
    if bytes.len() < 6 {
        return Err(CodecError::Short(bytes.len()));
    }
    if bytes[0] != VERSION {
        return Err(CodecError::Version(bytes[0]));
    }
    if bytes[1] != kind as u8 {
        return Err(CodecError::Kind {
            expected: kind as u8,
            found: bytes[1],
        });
    }
    let crc = u32::from_le_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]);
    let payload = &bytes[6..];
    if crc32fast::hash(payload) != crc {
        return Err(CodecError::Checksum);
    }
    Ok(payload)
}

#[derive(Serialize, Deserialize)]
enum StoredKind {
    JobArrived(u64),
    JobFinished(u64),
    MachineReady(u64),
    MachineFailed(u64),
    MachineGone(u64),
    SpotNotice(u64),
    Tick,
    /// The settings as JSON.
    ConfigReloaded(String),
    /// Added after the first journals: a new last variant keeps old records readable.
    JobCancelled(u64),
    /// The job and its charge as JSON (added last, like `JobCancelled`).
    JobCharged(u64, String),
    /// The machine and its launch as JSON (added last).
    MachineLaunched(u64, String),
}

#[derive(Serialize, Deserialize)]
struct StoredEvent {
    at: i64,
    kind: StoredKind,
}

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

pub fn encode_event(e: &Event) -> Vec<u8> {
    let kind = match &e.kind {
        EventKind::JobArrived { job } => StoredKind::JobArrived(*job),
        EventKind::JobFinished { job } => StoredKind::JobFinished(*job),
        EventKind::MachineReady { machine } => StoredKind::MachineReady(*machine),
        EventKind::MachineFailed { machine } => StoredKind::MachineFailed(*machine),
        EventKind::MachineGone { machine } => StoredKind::MachineGone(*machine),
        EventKind::SpotNotice { machine } => StoredKind::SpotNotice(*machine),
        EventKind::Tick => StoredKind::Tick,
        EventKind::JobCancelled { job } => StoredKind::JobCancelled(*job),
        EventKind::JobCharged { job, charge } => {
            StoredKind::JobCharged(*job, serde_json::to_string(charge).expect("charges encode"))
        }
        EventKind::ConfigReloaded { settings } => {
            StoredKind::ConfigReloaded(serde_json::to_string(settings).expect("settings encode"))
        }
        EventKind::MachineLaunched { machine, launch } => StoredKind::MachineLaunched(
            *machine,
            serde_json::to_string(launch).expect("launches encode"),
        ),
    };
    let payload = bincode::serde::encode_to_vec(StoredEvent { at: e.at.0, kind }, config())
        .expect("events encode");
    seal(Kind::Event, &payload)
}

pub fn decode_event(bytes: &[u8]) -> Result<Event, CodecError> {
    let payload = unseal(Kind::Event, bytes)?;
    let (s, used): (StoredEvent, usize) = bincode::serde::decode_from_slice(payload, config())
        .map_err(|e| CodecError::Payload(e.to_string()))?;
    if used != payload.len() {
        return Err(CodecError::Payload(format!(
            "{} trailing bytes",
            payload.len() - used
        )));
    }
    let kind = match s.kind {
        StoredKind::JobArrived(job) => EventKind::JobArrived { job },
        StoredKind::JobFinished(job) => EventKind::JobFinished { job },
        StoredKind::MachineReady(machine) => EventKind::MachineReady { machine },
        StoredKind::MachineFailed(machine) => EventKind::MachineFailed { machine },
        StoredKind::MachineGone(machine) => EventKind::MachineGone { machine },
        StoredKind::SpotNotice(machine) => EventKind::SpotNotice { machine },
        StoredKind::Tick => EventKind::Tick,
        StoredKind::JobCancelled(job) => EventKind::JobCancelled { job },
        StoredKind::JobCharged(job, json) => EventKind::JobCharged {
            job,
            charge: Box::new(
                serde_json::from_str(&json).map_err(|e| CodecError::Payload(e.to_string()))?,
            ),
        },
        StoredKind::MachineLaunched(machine, json) => EventKind::MachineLaunched {
            machine,
            launch: Box::new(
                serde_json::from_str(&json).map_err(|e| CodecError::Payload(e.to_string()))?,
            ),
        },
        StoredKind::ConfigReloaded(json) => {
            let settings: Settings =
                serde_json::from_str(&json).map_err(|e| CodecError::Payload(e.to_string()))?;
            EventKind::ConfigReloaded {
                settings: Box::new(settings),
            }
        }
    };
    Ok(Event::new(Time(s.at), kind))
}

pub fn encode_json<T: Serialize>(kind: Kind, v: &T) -> Vec<u8> {
    seal(kind, &serde_json::to_vec(v).expect("records encode"))
}

pub fn decode_json<T: for<'de> Deserialize<'de>>(
    kind: Kind,
    bytes: &[u8],
) -> Result<T, CodecError> {
    let payload = unseal(kind, bytes)?;
    serde_json::from_slice(payload).map_err(|e| CodecError::Payload(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_and_damage_is_found() {
        let e = Event::new(
            Time(1_795_600_800_123),
            EventKind::MachineGone { machine: 7 },
        );
        let mut b = encode_event(&e);
        assert_eq!(decode_event(&b).unwrap(), e);
        let last = b.len() - 1;
        b[last] ^= 0x40;
        assert_eq!(decode_event(&b), Err(CodecError::Checksum));
        assert!(matches!(decode_event(&b[..3]), Err(CodecError::Short(3))));
        let mut v = encode_event(&e);
        v[0] = 9;
        assert_eq!(decode_event(&v), Err(CodecError::Version(9)));
    }

    #[test]
    fn every_kind_round_trips_and_old_kinds_keep_their_bytes() {
        let s = crate::core::Settings::default();
        for kind in [
            EventKind::JobArrived { job: 1 },
            EventKind::JobFinished { job: 2 },
            EventKind::MachineReady { machine: 3 },
            EventKind::MachineFailed { machine: 4 },
            EventKind::MachineGone { machine: 5 },
            EventKind::SpotNotice { machine: 6 },
            EventKind::Tick,
            EventKind::ConfigReloaded {
                settings: Box::new(s),
            },
            EventKind::JobCancelled { job: 9 },
            EventKind::MachineLaunched {
                machine: 11,
                launch: Box::new(crate::core::Launch {
                    instance: "i-0abc".into(),
                    instance_type: "m5a.large".into(),
                    spot: true,
                    fell_back: vec![crate::core::Attempt {
                        instance_type: "m5.large".into(),
                        spot: true,
                        error: "InsufficientInstanceCapacity: none".into(),
                    }],
                }),
            },
            EventKind::JobCharged {
                job: 10,
                charge: Box::new(crate::core::Charge {
                    machine: 3,
                    usd: 0.5,
                    busy_usd: 0.375,
                    idle_usd: 0.125,
                    wait_s: 12.5,
                    usd_per_hour: 0.04,
                    price: "table".into(),
                    keys: crate::core::JobKeys {
                        project: Some("group/app".into()),
                        stage: Some("test".into()),
                        ..Default::default()
                    },
                }),
            },
        ] {
            let e = Event::new(Time(42), kind);
            assert_eq!(decode_event(&encode_event(&e)).unwrap(), e);
        }
        // Journals written before job_cancelled existed: a tick's variant index is still 6.
        let tick = encode_event(&Event::new(Time(0), EventKind::Tick));
        assert_eq!(&tick[6..], &[0, 6]);
    }
}
