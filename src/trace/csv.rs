//! CSV (or TSV) with the Jobs API's column names, as python-gitlab + pandas export it. Columns
//! may come in any order; extra columns are ignored.

use crate::trace::records::Records;
use crate::trace::{
    DURATION, Fields, ID, MESSAGE, Parsed, QUEUED, RUNNER, STARTED, Skipped, TraceError,
    TraceFilter, TraceJob, TraceResult, io_error, job_from, job_from_plain,
};
use std::collections::BTreeMap;
use std::path::Path;

/// Where each field is: the first of its names the header has.
struct Columns {
    id: Option<usize>,
    message: Option<usize>,
    started: Option<usize>,
    duration: Option<usize>,
    queued: Option<usize>,
    runner: [Option<usize>; 3],
}

pub struct CsvJobs {
    file: String,
    /// Records as bytes: only the fields a job is made of are checked for UTF-8.
    records: Records<std::fs::File>,
    /// Each field's column, resolved once from the header.
    columns: Columns,
    failed: bool,
    filter: TraceFilter,
    pub skipped: Skipped,
}

impl CsvJobs {
    pub fn open(path: &Path, delimiter: u8, filter: TraceFilter) -> TraceResult<Self> {
        let file = path.display().to_string();
        let f = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
        let mut records = Records::new(f, delimiter);
        let header_error = |message: String| TraceError {
            file: file.clone(),
            place: "line 1".into(),
            message: format!("cannot read the header: {message}"),
        };
        if !records.next_record().map_err(|e| header_error(e.message))? {
            return Err(header_error("the file is empty".into()));
        }
        let mut columns: BTreeMap<String, usize> = BTreeMap::new();
        for i in 0..records.len() {
            let h = std::str::from_utf8(records.get(i).unwrap_or_default())
                .map_err(|_| header_error(format!("column {} is not UTF-8 text", i + 1)))?;
            // Of two columns of one name, the last is read.
            columns.insert(h.trim().to_ascii_lowercase(), i);
        }
        let has = |names: &[&str]| names.iter().any(|n| columns.contains_key(*n));
        for (need, names) in [
            ("started_at", &["started_at", "build_started_at"][..]),
            ("duration", &["duration", "build_duration"][..]),
            ("id", &["id", "job_id", "build_id"][..]),
        ] {
            if !has(names) {
                return Err(TraceError {
                    file,
                    place: "line 1".into(),
                    message: format!(
                        "no {need} column (the header must use the Jobs API's names: id or job_id, started_at, queued_duration, duration)"
                    ),
                });
            }
        }
        if filter.runner.is_some()
            && !["runner_id", "runner_description", "runner_name"]
                .iter()
                .any(|c| columns.contains_key(*c))
        {
            return Err(TraceError {
                file,
                place: "line 1".into(),
                message:
                    "a runner filter needs a runner_id, runner_description or runner_name column"
                        .into(),
            });
        }
        let first = |names: &[&str]| names.iter().find_map(|n| columns.get(*n).copied());
        let columns = Columns {
            id: first(ID),
            message: first(MESSAGE),
            started: first(STARTED),
            duration: first(DURATION),
            queued: first(QUEUED),
            runner: RUNNER.map(|k| first(&[k])),
        };
        Ok(CsvJobs {
            file,
            records,
            columns,
            failed: false,
            filter,
            skipped: Skipped::default(),
        })
    }

    /// The current record as the usual job, read from its bytes ([`job_from_plain`]), when
    /// its fields have the usual forms and the other fields a job is made of (message,
    /// runner) are UTF-8 as [`job_from`] demands; None for anything else.
    fn plain(&self) -> Option<TraceJob> {
        if self.filter.runner.is_some() {
            return None;
        }
        let rec = &self.records;
        let c = &self.columns;
        let field = |i: Option<usize>| i.and_then(|i| rec.get(i));
        let utf8 = |i: Option<usize>| field(i).is_none_or(|b| std::str::from_utf8(b).is_ok());
        if !(utf8(c.message) && c.runner.iter().all(|r| utf8(*r))) {
            return None;
        }
        job_from_plain(
            field(c.id)?,
            field(c.started)?,
            field(c.duration)?,
            field(c.queued),
        )
    }
}

impl Iterator for CsvJobs {
    type Item = TraceResult<TraceJob>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            match self.records.next_record() {
                Ok(false) => return None,
                Ok(true) => {}
                Err(e) => {
                    self.failed = true;
                    return Some(Err(TraceError {
                        file: self.file.clone(),
                        place: format!("line {}", e.line),
                        message: format!("malformed CSV: {}", e.message),
                    }));
                }
            }
            let rec = &self.records;
            let c = &self.columns;
            if let Some(job) = self.plain() {
                return Some(Ok(job));
            }
            let mut bad = None;
            let mut at = |i: Option<usize>| {
                let b = rec.get(i?)?;
                match std::str::from_utf8(b) {
                    Ok(t) => Some(t),
                    Err(_) => {
                        bad = Some(i?);
                        None
                    }
                }
            };
            let fields = Fields {
                id: at(c.id),
                message: at(c.message),
                started: at(c.started),
                duration: at(c.duration),
                queued: at(c.queued),
                runner: c.runner.map(&mut at),
            };
            if let Some(col) = bad {
                self.failed = true;
                let line = rec.line();
                return Some(Err(TraceError {
                    file: self.file.clone(),
                    place: format!("line {line}"),
                    message: format!("column {} is not UTF-8 text", col + 1),
                }));
            }
            match job_from(&fields, &self.filter) {
                Ok(Parsed::Job(job)) => return Some(Ok(job)),
                Ok(Parsed::NeverRan) => self.skipped.never_ran += 1,
                Ok(Parsed::OtherRunner) => self.skipped.other_runner += 1,
                Err(message) => {
                    self.failed = true;
                    let line = rec.line();
                    return Some(Err(TraceError {
                        file: self.file.clone(),
                        place: format!("line {line}"),
                        message,
                    }));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_fields_a_job_is_made_of_must_be_utf8() {
        let dir = crate::testing::scratch("csv-utf8");
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("t.csv");
        let mut text = b"id,started_at,duration,name\n1,2026-01-13T04:33:30.488Z,30,caf".to_vec();
        text.extend_from_slice(&[0xff, b'\n']);
        std::fs::write(&p, &text).unwrap();
        let jobs: Vec<_> = CsvJobs::open(&p, b',', TraceFilter::default())
            .unwrap()
            .collect();
        assert_eq!(jobs.len(), 1);
        assert!(jobs[0].is_ok(), "a column no job needs may hold anything");
        let mut text = b"id,started_at,duration\n1,2026-01-13T04:33:30.488Z,3".to_vec();
        text.extend_from_slice(&[0xff, b'\n']);
        std::fs::write(&p, &text).unwrap();
        let e = CsvJobs::open(&p, b',', TraceFilter::default())
            .unwrap()
            .next()
            .unwrap()
            .unwrap_err();
        assert_eq!(e.place, "line 2");
        assert!(e.message.contains("column 3 is not UTF-8"), "{}", e.message);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
