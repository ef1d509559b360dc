//! GitLab job traces: the Jobs API's JSON (an array, several pages concatenated, or NDJSON),
//! its CSV export, and Job Hook webhook payloads, read as a stream of arrivals.
//!
//! A job's arrival at the runner queue is `started_at - queued_duration` (`created_at` includes
//! waiting for earlier stages); its runtime is `duration`. Jobs that never started (no
//! `started_at` or `duration`: skipped, manual, created) are not arrivals.

pub mod csv;
pub mod json;
pub mod keys;
pub mod records;
pub mod stats;
pub mod synth;

use crate::core::Time;
use chrono::NaiveDateTime;
use std::fmt;
use std::path::{Path, PathBuf};

/// One job as the simulator replays it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceJob {
    pub id: u64,
    pub arrival: Time,
    pub duration_ms: i64,
    /// The wait the trace recorded (`queued_duration`), in ms up to about 49 days; None when
    /// it records none.
    pub queued_ms: Option<u32>,
}

impl TraceJob {
    pub fn end(&self) -> Time {
        self.arrival.plus_millis(self.duration_ms)
    }
}

/// A malformed trace: the file, the place (line or record) and what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceError {
    pub file: String,
    /// "line 12" or "record 7"; empty when it concerns the whole file.
    pub place: String,
    pub message: String,
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.place.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: {}: {}", self.file, self.place, self.message)
        }
    }
}

impl std::error::Error for TraceError {}

pub type TraceResult<T> = Result<T, TraceError>;

/// A GitLab timestamp: ISO 8601 / RFC 3339, or the webhook form `2024-06-11 03:02:25 UTC`.
pub fn parse_gitlab_time(s: &str) -> Option<Time> {
    let s = s.trim();
    if let Some(t) = fast_utc(s.as_bytes()) {
        return Some(t);
    }
    if let Ok(t) = Time::parse_rfc3339(s) {
        return Some(t);
    }
    if let Some(rest) = s.strip_suffix(" UTC") {
        for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
            if let Ok(n) = NaiveDateTime::parse_from_str(rest, fmt) {
                return Some(Time(n.and_utc().timestamp_millis()));
            }
        }
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f %z", "%Y-%m-%d %H:%M:%S%.f%:z"] {
        if let Ok(d) = chrono::DateTime::parse_from_str(s, fmt) {
            return Some(Time(d.timestamp_millis()));
        }
    }
    None
}

/// The usual form of the Jobs API, `2026-01-13T04:33:30.488Z` (any number of fraction digits,
/// or none), read without chrono: the same milliseconds (the fraction truncated), or None for
/// anything else (which then takes the full parser).
fn fast_utc(b: &[u8]) -> Option<Time> {
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    if *b.last()? != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let mut v = 0i64;
        for &c in &b[r] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + (c - b'0') as i64;
        }
        Some(v)
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut ms = 0i64;
    match &b[19..b.len() - 1] {
        [] => {}
        [b'.', frac @ ..] if !frac.is_empty() && frac.iter().all(u8::is_ascii_digit) => {
            for i in 0..3 {
                ms = ms * 10 + frac.get(i).map_or(0, |c| (c - b'0') as i64);
            }
        }
        _ => return None,
    }
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&mo)
        || d < 1
        || d > month_days[mo as usize - 1]
        || h > 23
        || mi > 59
        || sec > 59
    {
        return None;
    }
    // Days from 1970-01-01 (Howard Hinnant's days_from_civil).
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(Time(((days * 24 + h) * 60 + mi) * 60_000 + sec * 1000 + ms))
}

/// Seconds (possibly fractional) as milliseconds; None when not a finite non-negative number.
fn seconds_to_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    let v: f64 = match plain_decimal(s.as_bytes()) {
        Some(v) => v,
        None => s.parse().ok()?,
    };
    (v.is_finite() && (0.0..1e12).contains(&v)).then(|| (v * 1000.0).round() as i64)
}

/// `123.456`-style text (digits, at most one point, at most 15 digits in all) as the very
/// `f64` the full parser gives: the digits are an integer below 2^53 and the power of ten is
/// exact, so one correctly rounded division is the correctly rounded value (Clinger's fast
/// path). None for anything else (signs, exponents, long or empty numbers), which the full
/// parser then reads.
fn plain_decimal(b: &[u8]) -> Option<f64> {
    const POW10: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    let (mut n, mut digits, mut frac, mut point) = (0u64, 0usize, 0usize, false);
    for &c in b {
        match c {
            b'0'..=b'9' => {
                n = n * 10 + u64::from(c - b'0');
                digits += 1;
                frac += usize::from(point);
            }
            b'.' if !point => point = true,
            _ => return None,
        }
    }
    if digits == 0 || digits > 15 {
        return None;
    }
    Some(n as f64 / POW10[frac])
}

/// Which jobs of a trace to keep.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceFilter {
    /// Keep only jobs this runner ran: its numeric id, or its description or name.
    pub runner: Option<String>,
}

/// Records read but not replayed, by why.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    /// Jobs with no `started_at` or `duration`: they never reached a runner.
    pub never_ran: u64,
    /// Jobs another runner ran (with a runner filter).
    pub other_runner: u64,
    /// The same job again (overlapping pages): dropped.
    pub duplicates: u64,
}

/// What one record of a trace is.
pub(crate) enum Parsed {
    Job(TraceJob),
    NeverRan,
    OtherRunner,
}

/// The fields of one record a job is made of, each the first of its names the record has
/// (None when it has none of them).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Fields<'a> {
    pub id: Option<&'a str>,
    pub message: Option<&'a str>,
    pub started: Option<&'a str>,
    pub duration: Option<&'a str>,
    pub queued: Option<&'a str>,
    pub runner: [Option<&'a str>; 3],
}

/// The names each field goes by, in order of preference.
pub(crate) const ID: &[&str] = &["id", "job_id", "build_id"];
pub(crate) const MESSAGE: &[&str] = &["message", "error", "error_description"];
pub(crate) const STARTED: &[&str] = &["started_at", "build_started_at"];
pub(crate) const DURATION: &[&str] = &["duration", "build_duration"];
pub(crate) const QUEUED: &[&str] = &["queued_duration", "build_queued_duration"];
pub(crate) const RUNNER: [&str; 3] = ["runner_id", "runner_description", "runner_name"];

impl<'a> Fields<'a> {
    /// Looked up by name: `get` returns the text of the first of the names the record has.
    pub(crate) fn from_get(get: impl Fn(&[&str]) -> Option<&'a str>) -> Self {
        Fields {
            id: get(ID),
            message: get(MESSAGE),
            started: get(STARTED),
            duration: get(DURATION),
            queued: get(QUEUED),
            runner: RUNNER.map(|k| get(&[k])),
        }
    }
}

/// Turn the fields of one record into an arrival. `get` returns a field's text, None or empty
/// when absent.
pub(crate) fn job_from_fields<'a>(
    get: impl Fn(&[&str]) -> Option<&'a str>,
    filter: &TraceFilter,
) -> Result<Parsed, String> {
    job_from(&Fields::from_get(get), filter)
}

/// Turn one record's fields into an arrival (or say why it is not one).
pub(crate) fn job_from<'a>(f: &Fields<'a>, filter: &TraceFilter) -> Result<Parsed, String> {
    fn present(v: Option<&str>) -> Option<&str> {
        v.filter(|v| !v.trim().is_empty())
    }
    let id_text = present(f.id);
    if id_text.is_none() {
        // Not a job: most often an API error page saved in place of a page of jobs.
        if let Some(m) = present(f.message) {
            return Err(format!(
                "an API error, not a job: {m:?} (check the token and the URL of the export)"
            ));
        }
    }
    let id_text = id_text.ok_or("not a job: no job id (id, job_id or build_id)")?;
    let Some(started) = present(f.started) else {
        return Ok(Parsed::NeverRan);
    };
    let Some(duration) = present(f.duration) else {
        return Ok(Parsed::NeverRan);
    };
    if let Some(want) = &filter.runner {
        let matches =
            f.runner.iter().filter_map(|v| present(*v)).any(|v| {
                v.trim() == want.as_str() || v.trim().trim_end_matches(".0") == want.as_str()
            });
        if !matches {
            return Ok(Parsed::OtherRunner);
        }
    }
    let id = id_text
        .trim()
        .parse::<u64>()
        .or_else(|_| {
            id_text
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
                .ok_or(())
        })
        .map_err(|_| format!("job id {id_text:?} is not a whole number"))?;
    let started = parse_gitlab_time(started)
        .ok_or_else(|| format!("started_at {started:?} is not a timestamp"))?;
    let duration_ms = seconds_to_ms(duration)
        .ok_or_else(|| format!("duration {duration:?} is not a number of seconds >= 0"))?;
    let queued = match present(f.queued) {
        None => None,
        Some(q) => Some(
            seconds_to_ms(q)
                .ok_or_else(|| format!("queued_duration {q:?} is not a number of seconds >= 0"))?,
        ),
    };
    let queued_ms = queued.unwrap_or(0);
    Ok(Parsed::Job(TraceJob {
        id,
        arrival: started.plus_millis(-queued_ms),
        duration_ms,
        queued_ms: queued.map(|q| q.clamp(0, u32::MAX as i64) as u32),
    }))
}

/// The usual record, read straight from its bytes: a job id of digits, a `started_at` of the
/// fast timestamp form, a plain decimal `duration` and an empty or plain decimal
/// `queued_duration`, no runner filter. Exactly what [`job_from`] gives for such fields (they
/// are ASCII, so UTF-8, with nothing to trim); None for anything else, which then takes
/// [`job_from`].
pub(crate) fn job_from_plain(
    id: &[u8],
    started: &[u8],
    duration: &[u8],
    queued: Option<&[u8]>,
) -> Option<TraceJob> {
    if id.is_empty() || id.len() > 19 || !id.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let id = id.iter().fold(0u64, |v, &c| v * 10 + u64::from(c - b'0'));
    let started = fast_utc(started)?;
    let plain_ms = |b: &[u8]| -> Option<i64> {
        let v = plain_decimal(b)?;
        (v < 1e12).then(|| (v * 1000.0).round() as i64)
    };
    let duration_ms = plain_ms(duration)?;
    let queued = match queued {
        None | Some([]) => None,
        Some(q) => Some(plain_ms(q)?),
    };
    Some(TraceJob {
        id,
        arrival: started.plus_millis(-queued.unwrap_or(0)),
        duration_ms,
        queued_ms: queued.map(|q| q.clamp(0, u32::MAX as i64) as u32),
    })
}

/// The on-disk formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv { delimiter: u8 },
    Json,
}

/// Guess the format from the extension, else from the first non-blank byte.
pub fn sniff(path: &Path) -> TraceResult<Format> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "csv" => return Ok(Format::Csv { delimiter: b',' }),
        "tsv" => return Ok(Format::Csv { delimiter: b'\t' }),
        "json" | "ndjson" | "jsonl" => return Ok(Format::Json),
        _ => {}
    }
    use std::io::Read;
    let mut head = [0u8; 4096];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| io_error(path, e))?;
    let text = &head[..n];
    match text.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') | Some(b'{') => Ok(Format::Json),
        _ => {
            let first_line = text.split(|&b| b == b'\n').next().unwrap_or(&[]);
            let tabs = first_line.iter().filter(|&&b| b == b'\t').count();
            let commas = first_line.iter().filter(|&&b| b == b',').count();
            Ok(Format::Csv {
                delimiter: if tabs > commas { b'\t' } else { b',' },
            })
        }
    }
}

pub(crate) fn io_error(path: &Path, e: std::io::Error) -> TraceError {
    TraceError {
        file: path.display().to_string(),
        place: String::new(),
        message: format!("cannot read: {e}"),
    }
}

/// A stream of the arrivals in a trace file, in file order.
pub fn read_file(path: &Path) -> TraceResult<TraceReader> {
    read_filtered(path, &TraceFilter::default())
}

/// A stream of the arrivals in a trace file that pass `filter`, in file order.
pub fn read_filtered(path: &Path, filter: &TraceFilter) -> TraceResult<TraceReader> {
    match sniff(path)? {
        Format::Csv { delimiter } => Ok(TraceReader::Csv(csv::CsvJobs::open(
            path,
            delimiter,
            filter.clone(),
        )?)),
        Format::Json => Ok(TraceReader::Json(json::JsonJobs::open(
            path,
            filter.clone(),
        )?)),
    }
}

/// A trace file's jobs as they come, with the count of records left out. (One per open file:
/// the size of its variants does not matter, and boxing would put a pointer on the hot path.)
#[allow(clippy::large_enum_variant)]
pub enum TraceReader {
    Csv(csv::CsvJobs),
    Json(json::JsonJobs),
}

impl TraceReader {
    /// Records read so far that were not jobs to replay (duplicates are counted later, in
    /// time order).
    pub fn skipped(&self) -> Skipped {
        match self {
            TraceReader::Csv(r) => r.skipped,
            TraceReader::Json(r) => r.skipped,
        }
    }
}

impl Iterator for TraceReader {
    type Item = TraceResult<TraceJob>;
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            TraceReader::Csv(r) => r.next(),
            TraceReader::Json(r) => r.next(),
        }
    }
}

/// Drops a job seen before at the same arrival instant (overlapping pages of an export list
/// a job twice). The input must be in time order, ties by id.
pub struct Dedup<I> {
    inner: I,
    instant: Option<Time>,
    ids: Vec<u64>,
    pub duplicates: u64,
}

impl<I> Dedup<I> {
    pub fn new(inner: I) -> Self {
        Dedup {
            inner,
            instant: None,
            ids: Vec::new(),
            duplicates: 0,
        }
    }
}

impl<I: Iterator<Item = TraceResult<TraceJob>>> Iterator for Dedup<I> {
    type Item = TraceResult<TraceJob>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let j = match self.inner.next()? {
                Ok(j) => j,
                e => return Some(e),
            };
            if self.instant != Some(j.arrival) {
                self.instant = Some(j.arrival);
                self.ids.clear();
            } else if self.ids.contains(&j.id) {
                self.duplicates += 1;
                continue;
            }
            self.ids.push(j.id);
            return Some(Ok(j));
        }
    }
}

/// What a first pass over a trace learned.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// Jobs to replay (after the filter, duplicates dropped).
    pub jobs: u64,
    pub sorted: bool,
    pub first_arrival: Option<Time>,
    pub last_end: Option<Time>,
    pub skipped: Skipped,
}

/// Arrivals in time order, for the simulator: a sorted file is streamed (memory flat in the
/// trace length); an unsorted one (the Jobs API lists newest first) is sorted in memory.
pub enum Arrivals {
    Stream(Box<Dedup<TraceReader>>),
    Sorted(std::vec::IntoIter<TraceJob>),
    /// The checked jobs kept in memory by the first pass, shared by every run.
    Kept(std::sync::Arc<Vec<TraceJob>>, usize),
    Synthetic(Box<synth::Generator>),
    /// Jobs handed over as another thread reads them.
    Handed(Box<dyn Iterator<Item = TraceResult<TraceJob>> + Send>),
}

impl Iterator for Arrivals {
    type Item = TraceResult<TraceJob>;
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Arrivals::Stream(s) => s.next(),
            Arrivals::Sorted(v) => v.next().map(Ok),
            Arrivals::Kept(v, i) => {
                let j = v.get(*i).copied();
                *i += 1;
                j.map(Ok)
            }
            Arrivals::Synthetic(g) => g.next_job().map(Ok),
            Arrivals::Handed(h) => h.next(),
        }
    }
}

/// A trace file, checked whole once (so a malformed record stops the run before it starts).
/// The checked jobs are kept from that pass (32 bytes a job) up to [`max_jobs_in_memory`], so
/// runs read memory, not the file again; a longer trace is read again for each run, and
/// memory stays flat however long it is.
pub struct TraceFile {
    pub path: PathBuf,
    pub filter: TraceFilter,
    pub summary: Summary,
    kept: Option<std::sync::Arc<Vec<TraceJob>>>,
}

/// About how many records a file holds: its size over the mean length of the lines in its
/// first 64 KiB (None for a small or unreadable file).
fn estimated_records(path: &Path) -> Option<u64> {
    use std::io::Read;
    let len = std::fs::metadata(path).ok()?.len();
    let mut head = vec![0u8; 1 << 16];
    let n = std::fs::File::open(path).ok()?.read(&mut head).ok()?;
    let lines = head[..n].iter().filter(|&&b| b == b'\n').count() as u64;
    (n == head.len() && lines > 1).then(|| len * lines / n as u64)
}

/// How many jobs a trace file may have for its jobs to be kept in memory (32 bytes each):
/// 2,000,000 (48 MB) unless `SCALECAST_MAX_JOBS_IN_MEMORY` says otherwise.
pub fn max_jobs_in_memory() -> usize {
    std::env::var("SCALECAST_MAX_JOBS_IN_MEMORY")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(2_000_000)
}

/// Every job of a file in time order (ties by id), duplicates dropped and counted.
fn sorted_jobs(path: &Path, filter: &TraceFilter) -> TraceResult<(Vec<TraceJob>, u64)> {
    let mut all = Vec::new();
    for j in read_filtered(path, filter)? {
        all.push(j?);
    }
    all.sort_by_key(|j| (j.arrival, j.id));
    let n = all.len();
    all.dedup_by_key(|j| (j.arrival, j.id));
    let dups = (n - all.len()) as u64;
    Ok((all, dups))
}

impl TraceFile {
    /// Read the file through once: validate every record, count, see whether it is sorted.
    pub fn scan(path: &Path) -> TraceResult<Self> {
        Self::scan_filtered(path, &TraceFilter::default())
    }

    pub fn scan_filtered(path: &Path, filter: &TraceFilter) -> TraceResult<Self> {
        Self::scan_each(path, filter, true, &mut |_| {})
    }

    /// [`TraceFile::scan_filtered`], handing `each` every checked job (duplicates dropped) in
    /// the file's order as it is read, so that work can start on a job before the file is
    /// read whole. When the file turns out not to be in time order, the jobs `each` saw are
    /// not the arrivals: see [`Summary::sorted`]. `keep`: whether the checked jobs are kept
    /// for later runs (up to [`max_jobs_in_memory`]); when not, a later run reads the file
    /// again (an unsorted file is sorted in memory either way).
    pub fn scan_each(
        path: &Path,
        filter: &TraceFilter,
        keep: bool,
        each: &mut dyn FnMut(&TraceJob),
    ) -> TraceResult<Self> {
        let mut s = Summary {
            jobs: 0,
            sorted: true,
            first_arrival: None,
            last_end: None,
            skipped: Skipped::default(),
        };
        let mut last: Option<Time> = None;
        let cap = max_jobs_in_memory();
        // A file that plainly holds more jobs than that is not collected at all (so memory
        // never grows to the cap only to be dropped).
        let estimate = estimated_records(path);
        // Room for the estimate at once (a few percent over), rather than copied as it grows.
        let mut kept = (keep && estimate.is_none_or(|n| n <= cap as u64 * 3 / 2)).then(|| {
            Vec::with_capacity(estimate.map_or(0, |n| (n + n / 32).min(cap as u64) as usize))
        });
        let mut jobs = Dedup::new(read_filtered(path, filter)?);
        for job in &mut jobs {
            let job = job?;
            each(&job);
            if let Some(k) = &mut kept {
                if k.len() < cap {
                    k.push(job);
                } else {
                    kept = None;
                }
            }
            s.jobs += 1;
            if last.is_some_and(|l| job.arrival < l) {
                s.sorted = false;
            }
            last = Some(job.arrival);
            s.first_arrival = Some(s.first_arrival.map_or(job.arrival, |f| f.min(job.arrival)));
            s.last_end = Some(s.last_end.map_or(job.end(), |e| e.max(job.end())));
        }
        s.skipped = jobs.inner.skipped();
        s.skipped.duplicates = jobs.duplicates;
        if !s.sorted {
            // Duplicates are found in time order: count them on the sorted jobs.
            let (all, dups) = sorted_jobs(path, filter)?;
            s.jobs = all.len() as u64;
            s.skipped.duplicates = dups;
            kept = (all.len() <= cap).then_some(all);
        }
        Ok(TraceFile {
            path: path.to_path_buf(),
            filter: filter.clone(),
            summary: s,
            kept: kept.map(|mut k| {
                k.shrink_to_fit();
                std::sync::Arc::new(k)
            }),
        })
    }

    /// How many checked jobs are kept in memory for the runs (None: they read the file).
    pub fn jobs_in_memory(&self) -> Option<usize> {
        self.kept.as_ref().map(|k| k.len())
    }

    /// The arrivals in time order (ties by id when the file had to be sorted).
    pub fn arrivals(&self) -> TraceResult<Arrivals> {
        if let Some(k) = &self.kept {
            return Ok(Arrivals::Kept(k.clone(), 0));
        }
        if self.summary.sorted {
            return Ok(Arrivals::Stream(Box::new(Dedup::new(read_filtered(
                &self.path,
                &self.filter,
            )?))));
        }
        let (all, _) = sorted_jobs(&self.path, &self.filter)?;
        Ok(Arrivals::Sorted(all.into_iter()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain-record path gives exactly what the general one gives whenever it answers,
    /// and answers for the usual forms: fields drawn near the usual ones (spaces, signs,
    /// exponents, empty, long, odd timestamps).
    #[test]
    fn the_plain_record_path_agrees_with_the_general_one() {
        let pick = |x: u64, of: &[&str]| of[(x % of.len() as u64) as usize].to_string();
        let mut rng = crate::rng::Rng::new(0x243F_6A88_85A3_08D3);
        let mut answered = 0;
        for _ in 0..50_000 {
            let mut next = || rng.next_u64();
            let id = pick(
                next(),
                &[
                    "13",
                    "007",
                    "",
                    " 5",
                    "5.0",
                    "-1",
                    "18446744073709551615",
                    "99999999999999999999",
                    "1e3",
                ],
            );
            let started = pick(
                next(),
                &[
                    "2026-11-02T00:07:02.414Z",
                    "2026-11-02T00:07:02Z",
                    "2026-11-02T00:07:02.4146Z",
                    " 2026-11-02T00:07:02Z",
                    "2026-11-02 00:07:02 UTC",
                    "2026-02-30T00:00:00Z",
                    "",
                    "2026-11-02T00:07:02+01:00",
                ],
            );
            let duration = pick(
                next(),
                &[
                    "218.627",
                    "0",
                    "0.0005",
                    "12",
                    "",
                    " 3",
                    "1e2",
                    "-1",
                    "999999999999.9",
                    "1000000000000",
                    "1234567890123456",
                    ".5",
                    "5.",
                ],
            );
            let queued = pick(
                next(),
                &[
                    "",
                    "0.0",
                    "2.5",
                    " ",
                    "x",
                    "-0",
                    "4294967.296",
                    "99999999999",
                ],
            );
            let with_queued = next() % 4 != 0;
            let plain = job_from_plain(
                id.as_bytes(),
                started.as_bytes(),
                duration.as_bytes(),
                with_queued.then_some(queued.as_bytes()),
            );
            let fields = Fields {
                id: Some(&id),
                started: Some(&started),
                duration: Some(&duration),
                queued: with_queued.then_some(queued.as_str()),
                ..Fields::default()
            };
            let general = job_from(&fields, &TraceFilter::default());
            if let Some(j) = plain {
                answered += 1;
                match general {
                    Ok(Parsed::Job(g)) => {
                        assert_eq!(j, g, "{id:?} {started:?} {duration:?} {queued:?}")
                    }
                    _ => panic!(
                        "the plain path read a record the general one does not: {id:?} {started:?} {duration:?} {queued:?}"
                    ),
                }
            }
        }
        assert!(
            answered > 1_000,
            "the usual forms take the plain path ({answered})"
        );
        let usual = job_from_plain(b"13", b"2026-11-02T00:07:02.414Z", b"218.627", Some(b"0.0"));
        assert_eq!(
            usual.map(|j| (j.id, j.duration_ms, j.queued_ms)),
            Some((13, 218_627, Some(0)))
        );
    }

    #[test]
    fn the_fast_timestamp_path_agrees_with_chrono() {
        let mut rng = crate::rng::Rng::new(0x9E37_79B9_7F4A_7C15);
        for _ in 0..20_000 {
            let x = rng.next_u64();
            let ms = (x >> 20) as i64 % (200 * 365 * 86_400_000) - 50 * 365 * 86_400_000;
            let t = Time(ms).to_utc().unwrap();
            for frac in ["", ".5", ".123", ".123456789", ".05"] {
                let s = format!("{}{frac}Z", t.format("%Y-%m-%dT%H:%M:%S"));
                let slow = Time::parse_rfc3339(&s).unwrap();
                assert_eq!(fast_utc(s.as_bytes()), Some(slow), "{s}");
            }
        }
        for odd in [
            "2026-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:00:60Z",
            "2026-01-01 00:00:00Z",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T00:00:00+00:00",
            "2026-01-01T00:00:00z",
        ] {
            assert_eq!(fast_utc(odd.as_bytes()), None, "{odd}");
        }
        assert_eq!(
            parse_gitlab_time("2026-01-01T00:00:00+00:00"),
            parse_gitlab_time("2026-01-01T00:00:00Z")
        );
    }

    #[test]
    fn the_fast_decimal_path_agrees_with_the_full_parser() {
        let mut rng = crate::rng::Rng::new(0x2545_F491_4F6C_DD1D);
        for _ in 0..200_000 {
            let x = rng.next_u64();
            let int = x % 10_000_000;
            let places = (x >> 40) % 10;
            let frac = (x >> 20) % 10u64.pow(places as u32);
            let text = if places == 0 {
                format!("{int}")
            } else {
                format!("{int}.{frac:0width$}", width = places as usize)
            };
            let full: f64 = text.parse().unwrap();
            match plain_decimal(text.as_bytes()) {
                Some(v) => assert_eq!(v.to_bits(), full.to_bits(), "{text}"),
                None => assert!(text.len() > 16, "{text} took the slow path"),
            }
        }
        for odd in [
            "",
            ".",
            "1e3",
            "-1",
            "+2",
            "1.2.3",
            " 1",
            "1234567890123456",
        ] {
            assert_eq!(plain_decimal(odd.as_bytes()), None, "{odd:?}");
        }
        // What the full parser accepts too.
        assert_eq!(plain_decimal(b".5"), ".5".parse::<f64>().ok());
        assert_eq!(plain_decimal(b"7."), "7.".parse::<f64>().ok());
        assert_eq!(seconds_to_ms("30.509353"), Some(30_509));
        assert_eq!(seconds_to_ms(" 1e3 "), Some(1_000_000));
    }

    #[test]
    fn webhook_and_iso_timestamps() {
        let iso = parse_gitlab_time("2024-06-11T03:02:25.000Z").unwrap();
        assert_eq!(parse_gitlab_time("2024-06-11 03:02:25 UTC"), Some(iso));
        assert_eq!(parse_gitlab_time("2024-06-11 05:02:25 +0200"), Some(iso));
        assert_eq!(parse_gitlab_time("yesterday"), None);
    }

    #[test]
    fn arrival_is_started_at_minus_queued_duration() {
        let rec = [
            ("id", "7"),
            ("started_at", "2026-01-13T04:33:30.488Z"),
            ("queued_duration", "0.121901"),
            ("duration", "30.509353"),
        ];
        let get = |keys: &[&str]| rec.iter().find(|(k, _)| keys.contains(k)).map(|(_, v)| *v);
        let Parsed::Job(j) = job_from_fields(get, &TraceFilter::default()).unwrap() else {
            panic!("a job that ran");
        };
        assert_eq!(
            j.arrival,
            Time::parse_rfc3339("2026-01-13T04:33:30.366Z").unwrap()
        );
        assert_eq!(j.duration_ms, 30_509);
    }
}
