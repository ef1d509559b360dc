//! The journal off the box (aws-sdk-s3): `--ship s3://bucket/prefix` copies the journal to S3
//! as it grows, and `--restore s3://bucket/prefix` rebuilds a state directory from it on a new
//! manager, which then reconciles with EC2 as after any restart.
//!
//! Layout under the prefix, every object written once, with `If-None-Match: *` (S3's
//! conditional write), so two managers never overwrite each other's objects:
//! - `header`: the journal's header record; `manager-id`: the state directory's manager id;
//! - `segments/FIRST-LAST` (20-digit sequence numbers): the event records FIRST..=LAST as
//!   stored (each versioned and checksummed), each framed as seq (u64 LE), length (u32 LE),
//!   bytes;
//! - `snapshots/SEQ`: an engine snapshot record, as stored.
//!
//! A prefix whose `header` or `manager-id` is another journal's, or a segment name another
//! manager already wrote, stops shipping with an error naming it: two managers on one prefix
//! are refused, never merged.

use crate::core::Engine;
use crate::drive::DriveError;
use crate::journal::codec::{self, Kind};
use crate::journal::{Header, Journal, JournalError};
use aws_sdk_s3::Client;
use aws_sdk_s3::config::BehaviorVersion;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::primitives::ByteStream;
use std::path::Path;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub bucket: String,
    /// Without a trailing slash; may be empty.
    pub prefix: String,
}

impl std::str::FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let rest = s
            .strip_prefix("s3://")
            .ok_or_else(|| format!("{s:?} is not an s3://bucket/prefix address"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("{s:?} names no bucket"));
        }
        Ok(Target {
            bucket: bucket.to_string(),
            prefix: prefix.trim_end_matches('/').to_string(),
        })
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    /// An object that is written once exists already (another manager, or another journal).
    #[error("{0} exists already: another manager ships to this prefix")]
    Exists(String),
    #[error("{key}: {message}")]
    S3 { key: String, message: String },
    #[error("{key}: {message}")]
    Damaged { key: String, message: String },
    #[error("{0} has no journal (no header object)")]
    Empty(String),
    #[error("{0}: a journal is there already; restore into a new state directory")]
    StateNotEmpty(String),
    #[error("restoring the journal: {0}")]
    Journal(#[from] JournalError),
}

fn s3_error<E, R>(key: &str, e: aws_sdk_s3::error::SdkError<E, R>) -> ShipError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let message = match (e.code(), e.message()) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.to_string(),
        _ => DisplayErrorContext(&e).to_string(),
    };
    ShipError::S3 {
        key: key.to_string(),
        message,
    }
}

pub fn segment_name(first: u64, last: u64) -> String {
    format!("segments/{first:020}-{last:020}")
}

fn parse_segment_name(name: &str) -> Option<(u64, u64)> {
    let (a, b) = name.strip_prefix("segments/")?.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Frame records as one segment object.
pub fn encode_segment(records: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(records.iter().map(|r| r.1.len() + 12).sum());
    for (seq, bytes) in records {
        out.extend_from_slice(&seq.to_le_bytes());
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(bytes);
    }
    out
}

/// A segment object's records; `name` is for the error.
pub fn decode_segment(name: &str, mut b: &[u8]) -> Result<Vec<(u64, Vec<u8>)>, ShipError> {
    let damaged = |m: String| ShipError::Damaged {
        key: name.to_string(),
        message: m,
    };
    let mut out = Vec::new();
    while !b.is_empty() {
        if b.len() < 12 {
            return Err(damaged(format!("{} bytes left, a frame needs 12", b.len())));
        }
        let seq = u64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
        let len = u32::from_le_bytes(b[8..12].try_into().expect("4 bytes")) as usize;
        if b.len() < 12 + len {
            return Err(damaged(format!("record {seq} is cut short")));
        }
        out.push((seq, b[12..12 + len].to_vec()));
        b = &b[12 + len..];
    }
    Ok(out)
}

/// What a shipment wrote: the last event of its segment, and its snapshot's number.
pub type Shipped = (Option<u64>, Option<u64>);

/// S3 for one prefix.
pub struct Shipper {
    client: Client,
    target: Target,
}

impl Shipper {
    /// The SDK's default chain for credentials and `AWS_ENDPOINT_URL` (path-style addressing
    /// when an endpoint is set, as moto and most S3 look-alikes need).
    pub async fn connect(target: Target, region: &str) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if !region.is_empty() {
            loader = loader.region(aws_sdk_s3::config::Region::new(region.to_string()));
        }
        let conf = loader.load().await;
        let mut b = aws_sdk_s3::config::Builder::from(&conf);
        if std::env::var_os("AWS_ENDPOINT_URL").is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some()
        {
            b = b.force_path_style(true);
        }
        Shipper {
            client: Client::from_conf(b.build()),
            target,
        }
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    fn key(&self, name: &str) -> String {
        if self.target.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.target.prefix)
        }
    }

    /// Write `name` once: when it exists with these very bytes (our own earlier write whose
    /// answer was lost), that is success; with other bytes, `Exists`.
    pub async fn put_once(&self, name: &str, bytes: Vec<u8>) -> Result<(), ShipError> {
        match self.put_new(name, bytes.clone()).await {
            Err(ShipError::Exists(what)) => {
                if self.get(name).await?.as_deref() == Some(&bytes[..]) {
                    Ok(())
                } else {
                    Err(ShipError::Exists(what))
                }
            }
            other => other,
        }
    }

    /// Write `name` unless it exists: `Exists` when it does.
    pub async fn put_new(&self, name: &str, bytes: Vec<u8>) -> Result<(), ShipError> {
        let key = self.key(name);
        match self
            .client
            .put_object()
            .bucket(&self.target.bucket)
            .key(&key)
            .if_none_match("*")
            .body(ByteStream::from(bytes))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.code() == Some("PreconditionFailed")
                    || e.raw_response().is_some_and(|r| r.status().as_u16() == 412) =>
            {
                Err(ShipError::Exists(format!(
                    "s3://{}/{key}",
                    self.target.bucket
                )))
            }
            Err(e) => Err(s3_error(&key, e)),
        }
    }

    pub async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, ShipError> {
        let key = self.key(name);
        match self
            .client
            .get_object()
            .bucket(&self.target.bucket)
            .key(&key)
            .send()
            .await
        {
            Ok(o) => {
                let body = o.body.collect().await.map_err(|e| ShipError::S3 {
                    key: key.clone(),
                    message: e.to_string(),
                })?;
                Ok(Some(body.into_bytes().to_vec()))
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(s3_error(&key, e)),
        }
    }

    /// Names (without the prefix) under `dir/`, sorted.
    pub async fn list(&self, dir: &str) -> Result<Vec<String>, ShipError> {
        let full = self.key(&format!("{dir}/"));
        let strip = self.key("");
        let strip = if self.target.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", strip.trim_end_matches('/'))
        };
        let mut out = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.target.bucket)
            .prefix(&full)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| s3_error(&full, e))?;
            for o in page.contents() {
                if let Some(k) = o.key() {
                    out.push(k.strip_prefix(&strip).unwrap_or(k).to_string());
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Claim the prefix for this journal and manager: write `header` and `manager-id`, or find
    /// them equal to ours. Then the last event and the last snapshot shipped so far.
    pub async fn claim(&self, header: Vec<u8>, manager: &str) -> Result<(u64, u64), ShipError> {
        self.put_once("header", header).await?;
        self.put_once("manager-id", manager.as_bytes().to_vec())
            .await?;
        let events = self
            .list("segments")
            .await?
            .iter()
            .filter_map(|n| parse_segment_name(n))
            .map(|(_, last)| last)
            .max()
            .unwrap_or(0);
        let snapshot = self
            .list("snapshots")
            .await?
            .iter()
            .filter_map(|n| n.strip_prefix("snapshots/")?.parse::<u64>().ok())
            .max()
            .unwrap_or(0);
        Ok((events, snapshot))
    }

    /// Ship what the journal has beyond what was shipped: one segment of the events after
    /// `shipped`, then the newest snapshot if it is newer than `snapshot_shipped`. Returns the
    /// new marks.
    pub async fn ship(
        &self,
        records: Vec<(u64, Vec<u8>)>,
        snapshot: Option<(u64, Vec<u8>)>,
    ) -> Result<Shipped, ShipError> {
        let mut last = None;
        if let (Some(first), Some(l)) = (records.first(), records.last()) {
            let name = segment_name(first.0, l.0);
            self.put_once(&name, encode_segment(&records)).await?;
            last = Some(l.0);
        }
        let mut snap = None;
        if let Some((seq, bytes)) = snapshot {
            self.put_once(&format!("snapshots/{seq:020}"), bytes)
                .await?;
            snap = Some(seq);
        }
        Ok((last, snap))
    }
}

/// What a restore found.
#[derive(Debug)]
pub struct Restored {
    pub manager: String,
    pub events: u64,
    pub segments: usize,
    /// The newest shipped snapshot the replayed state was checked against.
    pub checked_snapshot: Option<u64>,
}

/// Rebuild `state` (which must have no journal) from the shipped journal: the header, every
/// segment in order (a gap or a damaged record is an error naming the object), each event
/// journaled and applied through the driver, the result checked against the newest shipped
/// snapshot, and the manager id, so the instances stay this state's.
pub async fn restore(s: &Shipper, state: &Path) -> Result<Restored, ShipError> {
    let dir = state.join("journal");
    if crate::journal::store::is_store(&dir) {
        return Err(ShipError::StateNotEmpty(dir.display().to_string()));
    }
    let header_bytes = s
        .get("header")
        .await?
        .ok_or_else(|| ShipError::Empty(s.target.to_string()))?;
    let damaged = |key: &str, m: String| ShipError::Damaged {
        key: key.to_string(),
        message: m,
    };
    let header: Header = codec::decode_json(Kind::Header, &header_bytes)
        .map_err(|e| damaged("header", e.to_string()))?;
    let manager = String::from_utf8(s.get("manager-id").await?.unwrap_or_default())
        .map_err(|e| damaged("manager-id", e.to_string()))?;
    if manager.trim().is_empty() {
        return Err(damaged("manager-id", "missing or empty".into()));
    }
    std::fs::create_dir_all(state).map_err(|e| ShipError::S3 {
        key: state.display().to_string(),
        message: e.to_string(),
    })?;
    // The newest shipped snapshot: the replayed state must equal it when replay passes it.
    let mut snapshot = None;
    let snaps = s.list("snapshots").await?;
    if let Some((seq, name)) = snaps
        .iter()
        .filter_map(|n| Some((n.strip_prefix("snapshots/")?.parse::<u64>().ok()?, n)))
        .max()
    {
        let bytes = s.get(name).await?.unwrap_or_default();
        let snap: Engine =
            codec::decode_json(Kind::Snapshot, &bytes).map_err(|e| damaged(name, e.to_string()))?;
        snapshot = Some((seq, name.clone(), snap));
    }
    let mut journal = Journal::create(&dir, header)?;
    let names = s.list("segments").await?;
    let mut next = 1u64;
    let mut segments = 0;
    let mut checked_snapshot = None;
    for name in &names {
        let Some((first, last)) = parse_segment_name(name) else {
            continue;
        };
        if first != next {
            return Err(damaged(
                name,
                format!("expected a segment starting at event {next}"),
            ));
        }
        let bytes = s.get(name).await?.unwrap_or_default();
        for (seq, rec) in decode_segment(name, &bytes)? {
            if seq != next {
                return Err(damaged(name, format!("event {seq} where {next} was due")));
            }
            let ev = codec::decode_event(&rec)
                .map_err(|e| damaged(name, format!("event {seq}: {e}")))?;
            match journal.handle(&ev) {
                Ok(()) | Err(DriveError::Refused { .. }) => {}
                Err(DriveError::Log(e)) => return Err(e.into()),
            }
            journal.drain_actions().for_each(drop);
            if let Some((at, snap_name, snap)) = &snapshot
                && *at == seq
            {
                if snap != journal.engine() {
                    return Err(damaged(
                        snap_name,
                        "the replayed state differs from this snapshot".into(),
                    ));
                }
                checked_snapshot = Some(seq);
            }
            next += 1;
        }
        if next != last + 1 {
            return Err(damaged(
                name,
                format!("ends at event {}, its name says {last}", next - 1),
            ));
        }
        segments += 1;
    }
    crate::report::output::write_atomic(&state.join("manager-id"), manager.trim().as_bytes())
        .map_err(|e| ShipError::S3 {
            key: state.join("manager-id").display().to_string(),
            message: e.to_string(),
        })?;
    let (engine, log) = journal.parts_mut();
    crate::drive::EventLog::close(log, engine)?;
    Ok(Restored {
        manager: manager.trim().to_string(),
        events: next - 1,
        segments,
        checked_snapshot,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_bad_ones_say_why() {
        let t: Target = "s3://b/team/fleet/".parse().unwrap();
        assert_eq!((t.bucket.as_str(), t.prefix.as_str()), ("b", "team/fleet"));
        assert_eq!("s3://b".parse::<Target>().unwrap().prefix, "");
        assert!("b/x".parse::<Target>().unwrap_err().contains("s3://"));
        assert!(
            "s3:///x"
                .parse::<Target>()
                .unwrap_err()
                .contains("no bucket")
        );
    }

    #[test]
    fn segments_frame_records_and_a_cut_one_is_found() {
        let recs = vec![(1, vec![1, 2, 3]), (2, vec![]), (3, vec![9; 300])];
        let b = encode_segment(&recs);
        assert_eq!(decode_segment("s", &b).unwrap(), recs);
        let e = decode_segment("segments/x", &b[..b.len() - 1]).unwrap_err();
        assert!(e.to_string().contains("segments/x"), "{e}");
        assert_eq!(parse_segment_name(&segment_name(5, 17)), Some((5, 17)));
        assert!(
            segment_name(1, 2) < segment_name(3, 10),
            "names sort by number"
        );
    }
}
