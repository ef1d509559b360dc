//! The Jobs API's JSON: one array, several pages (arrays) concatenated, NDJSON, or Job Hook
//! webhook payloads. Objects are cut out of the byte stream one at a time, so a large file is
//! never held whole.

use crate::trace::{
    Parsed, Skipped, TraceError, TraceFilter, TraceJob, TraceResult, io_error, job_from_fields,
};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// An object's first line and bytes; or where and why the stream is not JSON objects.
type NextObject = Result<Option<(u64, Vec<u8>)>, (u64, String)>;

/// Splits a stream into its job objects: top-level objects, or objects inside top-level arrays.
pub struct JsonObjects<R: Read> {
    input: BufReader<R>,
    line: u64,
    in_array: bool,
}

impl<R: Read> JsonObjects<R> {
    pub fn new(input: R) -> Self {
        JsonObjects {
            input: BufReader::with_capacity(1 << 16, input),
            line: 1,
            in_array: false,
        }
    }

    fn peek(&mut self) -> std::io::Result<Option<u8>> {
        Ok(self.input.fill_buf()?.first().copied())
    }

    fn bump(&mut self) {
        self.input.consume(1);
    }

    /// The next object's bytes and the line it starts on.
    pub(crate) fn next_object(&mut self) -> NextObject {
        let io = |line: u64| move |e: std::io::Error| (line, format!("cannot read: {e}"));
        loop {
            let Some(b) = self.peek().map_err(io(self.line))? else {
                return if self.in_array {
                    Err((
                        self.line,
                        "the file ends inside an array (missing `]`)".into(),
                    ))
                } else {
                    Ok(None)
                };
            };
            match b {
                b'\n' => {
                    self.line += 1;
                    self.bump();
                }
                b' ' | b'\t' | b'\r' => self.bump(),
                b',' if self.in_array => self.bump(),
                b'[' if !self.in_array => {
                    self.in_array = true;
                    self.bump();
                }
                b']' if self.in_array => {
                    self.in_array = false;
                    self.bump();
                }
                b'{' => return self.read_object().map(Some),
                other => {
                    return Err((
                        self.line,
                        format!("expected a job object, found {:?}", char::from(other)),
                    ));
                }
            }
        }
    }

    fn read_object(&mut self) -> Result<(u64, Vec<u8>), (u64, String)> {
        let start = self.line;
        let mut out = Vec::with_capacity(512);
        let (mut depth, mut in_str, mut esc) = (0u32, false, false);
        loop {
            let buf = self
                .input
                .fill_buf()
                .map_err(|e| (self.line, format!("cannot read: {e}")))?;
            if buf.is_empty() {
                return Err((start, "the file ends inside a job object".into()));
            }
            let mut used = 0;
            let mut finished = false;
            for &b in buf {
                used += 1;
                out.push(b);
                if b == b'\n' {
                    self.line += 1;
                }
                if in_str {
                    if esc {
                        esc = false;
                    } else if b == b'\\' {
                        esc = true;
                    } else if b == b'"' {
                        in_str = false;
                    }
                    continue;
                }
                match b {
                    b'"' => in_str = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            finished = true;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            self.input.consume(used);
            if finished {
                return Ok((start, out));
            }
        }
    }
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Arrivals from a JSON trace.
pub struct JsonJobs {
    file: String,
    objects: JsonObjects<std::fs::File>,
    failed: bool,
    filter: TraceFilter,
    pub skipped: Skipped,
}

impl JsonJobs {
    pub fn open(path: &Path, filter: TraceFilter) -> TraceResult<Self> {
        let f = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
        Ok(JsonJobs {
            file: path.display().to_string(),
            objects: JsonObjects::new(f),
            failed: false,
            filter,
            skipped: Skipped::default(),
        })
    }

    fn err(&mut self, line: u64, message: String) -> Option<TraceResult<TraceJob>> {
        self.failed = true;
        Some(Err(TraceError {
            file: self.file.clone(),
            place: format!("line {line}"),
            message,
        }))
    }
}

impl Iterator for JsonJobs {
    type Item = TraceResult<TraceJob>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            let (line, bytes) = match self.objects.next_object() {
                Ok(None) => return None,
                Ok(Some(x)) => x,
                Err((line, msg)) => return self.err(line, msg),
            };
            let obj: serde_json::Map<String, Value> = match serde_json::from_slice(&bytes) {
                Ok(o) => o,
                Err(e) => {
                    return self.err(line + e.line() as u64 - 1, format!("malformed JSON: {e}"));
                }
            };
            // A Job Hook payload nests nothing we need but its runner; an API job carries
            // `runner{id, description, name}` and `pipeline{id}`.
            let runner = obj.get("runner");
            let runner_field = |k: &str| runner.and_then(|r| r.get(k)).and_then(text_of);
            let mut fields: Vec<(&str, Option<String>)> = [
                "id",
                "job_id",
                "build_id",
                "started_at",
                "build_started_at",
                "duration",
                "build_duration",
                "queued_duration",
                "build_queued_duration",
                "message",
                "error",
                "error_description",
            ]
            .iter()
            .map(|k| (*k, obj.get(*k).and_then(text_of)))
            .collect();
            fields.push(("runner_id", runner_field("id")));
            fields.push(("runner_description", runner_field("description")));
            fields.push(("runner_name", runner_field("name")));
            let get = |names: &[&str]| {
                names.iter().find_map(|n| {
                    fields
                        .iter()
                        .find(|(k, _)| k == n)
                        .and_then(|(_, v)| v.as_deref())
                })
            };
            match job_from_fields(get, &self.filter) {
                Ok(Parsed::Job(job)) => return Some(Ok(job)),
                Ok(Parsed::NeverRan) => self.skipped.never_ran += 1,
                Ok(Parsed::OtherRunner) => self.skipped.other_runner += 1,
                Err(msg) => return self.err(line, msg),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(s: &str) -> Result<Vec<u64>, (u64, String)> {
        let mut o = JsonObjects::new(s.as_bytes());
        let mut lines = Vec::new();
        while let Some((line, _)) = o.next_object()? {
            lines.push(line);
        }
        Ok(lines)
    }

    #[test]
    fn arrays_pages_and_ndjson() {
        assert_eq!(objects("[{\"a\":1},\n{\"b\":\"}\"}]").unwrap(), vec![1, 2]);
        assert_eq!(objects("[{\"a\":[1,{}]}][\n{}]").unwrap(), vec![1, 2]);
        assert_eq!(objects("{}\n{}\n\n{}\n").unwrap(), vec![1, 2, 4]);
        assert!(objects("[{}, 3]").is_err());
        assert!(objects("[{}").is_err());
        assert!(objects("{\"a\": 1").is_err());
    }
}
