//! CSV records, fast: a line without a quote or a stray carriage return (nearly every line of a
//! Jobs API export) is split at its delimiters where it lies; any other record (quoted fields,
//! perhaps spanning lines) goes through `csv_core`, the `csv` crate's own parser. Both paths
//! give the fields the `csv` crate would give (a property test compares them on random input),
//! and memory holds one record at a time.

use std::io::{BufRead, BufReader, Read};

/// A record that breaks the file's shape, or an unreadable file.
#[derive(Debug, PartialEq, Eq)]
pub struct RecordError {
    /// The line the record starts on (1-based).
    pub line: u64,
    pub message: String,
}

pub struct Records<R> {
    input: BufReader<R>,
    /// Bytes of the input buffer the current record (read in place) takes, consumed when the
    /// next record is read.
    in_buffer: usize,
    delimiter: u8,
    /// The current record's bytes: the line itself (fast path) or the unescaped fields
    /// (`csv_core`).
    line: Vec<u8>,
    out: Vec<u8>,
    /// Field boundaries into the input buffer, `line` or `out`.
    bounds: Vec<(usize, usize)>,
    at: At,
    /// Lines read so far; the current record starts on `start`.
    lines: u64,
    start: u64,
    /// Fields of the first record; every record must have as many.
    width: Option<usize>,
    first: bool,
    core: csv_core::Reader,
    ends: Vec<usize>,
    /// What followed a record that ended mid-line (at a bare carriage return): the start of
    /// the next one.
    pending: Vec<u8>,
}

/// Where the current record's bytes are.
#[derive(Clone, Copy, PartialEq, Eq)]
enum At {
    /// In the input buffer, not consumed yet (the usual case).
    Buffer,
    Line,
    Out,
}

impl<R: Read> Records<R> {
    pub fn new(input: R, delimiter: u8) -> Self {
        Self::with_capacity(input, delimiter, 1 << 16)
    }

    /// With an input buffer of `capacity` bytes (lines longer than it are read whole all the
    /// same).
    pub fn with_capacity(input: R, delimiter: u8, capacity: usize) -> Self {
        Records {
            input: BufReader::with_capacity(capacity, input),
            in_buffer: 0,
            delimiter,
            line: Vec::with_capacity(512),
            out: Vec::new(),
            bounds: Vec::new(),
            at: At::Line,
            lines: 0,
            start: 0,
            width: None,
            first: true,
            core: Self::parser(delimiter),
            ends: Vec::new(),
            pending: Vec::new(),
        }
    }

    fn parser(delimiter: u8) -> csv_core::Reader {
        csv_core::ReaderBuilder::new().delimiter(delimiter).build()
    }

    /// The line the current record starts on.
    pub fn line(&self) -> u64 {
        self.start
    }

    pub fn len(&self) -> usize {
        self.bounds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bounds.is_empty()
    }

    /// Field `i` of the current record.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let (a, b) = *self.bounds.get(i)?;
        Some(match self.at {
            At::Buffer => &self.input.buffer()[a..b],
            At::Line => &self.line[a..b],
            At::Out => &self.out[a..b],
        })
    }

    fn read_line(&mut self) -> Result<usize, RecordError> {
        self.line.clear();
        if !self.pending.is_empty() {
            std::mem::swap(&mut self.line, &mut self.pending);
            return Ok(self.line.len());
        }
        let n = self
            .input
            .read_until(b'\n', &mut self.line)
            .map_err(|e| RecordError {
                line: self.lines + 1,
                message: format!("cannot read: {e}"),
            })?;
        if n > 0 {
            self.lines += 1;
        }
        if self.first {
            self.first = false;
            if self.line.starts_with(b"\xEF\xBB\xBF") {
                self.line.drain(..3);
            }
        }
        Ok(n)
    }

    /// Split a plain line (no quote, no carriage return but a last one) at its delimiters.
    fn split(bounds: &mut Vec<(usize, usize)>, line: &[u8], delimiter: u8) {
        bounds.clear();
        let mut from = 0;
        for i in memchr::memchr_iter(delimiter, line) {
            bounds.push((from, i));
            from = i + 1;
        }
        bounds.push((from, line.len()));
    }

    /// A whole plain line in the input buffer, split where it lies; None when the next line
    /// is not whole there or not plain (then it is read the careful way).
    fn in_place(&mut self) -> Result<Option<bool>, RecordError> {
        self.input.consume(std::mem::take(&mut self.in_buffer));
        if self.first || !self.pending.is_empty() {
            return Ok(None);
        }
        loop {
            let buf = self.input.fill_buf().map_err(|e| RecordError {
                line: self.lines + 1,
                message: format!("cannot read: {e}"),
            })?;
            if buf.is_empty() {
                return Ok(Some(false));
            }
            let Some(nl) = memchr::memchr(b'\n', buf) else {
                return Ok(None);
            };
            let mut body = &buf[..nl];
            if let Some(b) = body.strip_suffix(b"\r") {
                body = b;
            }
            if memchr::memchr2(b'"', b'\r', body).is_some() {
                return Ok(None);
            }
            self.lines += 1;
            if body.is_empty() {
                self.input.consume(nl + 1);
                continue;
            }
            self.start = self.lines;
            Self::split(&mut self.bounds, body, self.delimiter);
            self.at = At::Buffer;
            self.in_buffer = nl + 1;
            return Ok(Some(true));
        }
    }

    /// The next record; false at the end of the input.
    pub fn next_record(&mut self) -> Result<bool, RecordError> {
        if let Some(found) = self.in_place()? {
            return if found {
                self.check_width().map(|_| true)
            } else {
                Ok(false)
            };
        }
        loop {
            if self.read_line()? == 0 {
                return Ok(false);
            }
            self.start = self.lines;
            let mut body = &self.line[..];
            if let Some(b) = body.strip_suffix(b"\n") {
                body = b;
            }
            if let Some(b) = body.strip_suffix(b"\r") {
                body = b;
            }
            let plain = memchr::memchr2(b'"', b'\r', body).is_none();
            if !plain {
                self.slow()?;
            } else if body.is_empty() {
                // An empty line is no record.
                continue;
            } else {
                let len = body.len();
                Self::split(&mut self.bounds, &self.line[..len], self.delimiter);
                self.at = At::Line;
            }
            if self.at == At::Out && self.bounds.is_empty() {
                continue;
            }
            return self.check_width().map(|_| true);
        }
    }

    fn check_width(&mut self) -> Result<(), RecordError> {
        let n = self.bounds.len();
        match self.width {
            None => {
                self.width = Some(n);
                Ok(())
            }
            Some(w) if w == n => Ok(()),
            Some(w) => Err(RecordError {
                line: self.start,
                message: format!("found a record with {n} fields, but the header has {w} fields"),
            }),
        }
    }

    /// A record with quotes (perhaps over several lines) or carriage returns: csv_core reads
    /// it from the line just read, then as many more lines as it takes.
    fn slow(&mut self) -> Result<(), RecordError> {
        use csv_core::ReadRecordResult as R;
        self.core = Self::parser(self.delimiter);
        self.at = At::Out;
        self.out.clear();
        self.out.resize(self.line.len().max(64), 0);
        self.ends.clear();
        self.ends.resize(16, 0);
        let (mut nout, mut nends) = (0, 0);
        let mut pos = 0;
        let mut at_end = false;
        loop {
            let input: &[u8] = if at_end { &[] } else { &self.line[pos..] };
            let (r, nin, o, e) =
                self.core
                    .read_record(input, &mut self.out[nout..], &mut self.ends[nends..]);
            pos += nin;
            nout += o;
            nends += e;
            match r {
                R::InputEmpty => {
                    if at_end {
                        break;
                    }
                    // The record goes on on the next line (a quoted field holds a newline).
                    let mut rest = std::mem::take(&mut self.line);
                    if self.read_line()? == 0 {
                        at_end = true;
                    }
                    rest.truncate(0);
                    rest.extend_from_slice(&self.line);
                    self.line = rest;
                    pos = 0;
                }
                R::OutputFull => {
                    let n = self.out.len() * 2;
                    self.out.resize(n, 0);
                }
                R::OutputEndsFull => {
                    let n = self.ends.len() * 2;
                    self.ends.resize(n, 0);
                }
                R::Record | R::End => break,
            }
        }
        self.bounds.clear();
        let mut from = 0;
        for &end in &self.ends[..nends] {
            self.bounds.push((from, end));
            from = end;
        }
        // A record that ended at a bare carriage return: the rest of the line is the next.
        let rest = &self.line[pos.min(self.line.len())..];
        if !rest.iter().all(|b| *b == b'\n' || *b == b'\r') {
            self.pending.clear();
            self.pending.extend_from_slice(rest);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every record as csv reads it, or the line of its first error.
    fn with_csv(text: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, u64> {
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(false)
            .from_reader(text);
        let mut out = Vec::new();
        for rec in r.byte_records() {
            match rec {
                Ok(rec) => out.push(rec.iter().map(|f| f.to_vec()).collect()),
                Err(e) => return Err(e.position().map_or(0, |p| p.line())),
            }
        }
        Ok(out)
    }

    fn with_records(text: &[u8], capacity: usize) -> Result<Vec<Vec<Vec<u8>>>, u64> {
        let mut r = Records::with_capacity(text, b',', capacity);
        let mut out = Vec::new();
        loop {
            match r.next_record() {
                Ok(false) => return Ok(out),
                Ok(true) => out.push((0..r.len()).map(|i| r.get(i).unwrap().to_vec()).collect()),
                Err(e) => return Err(e.line),
            }
        }
    }

    #[test]
    fn plain_quoted_and_multiline_records() {
        let text = b"a,b,c\n1,2,3\r\n\"x,y\",\"he said \"\"hi\"\"\",z\n\"two\nlines\",,\n\n4,5,6";
        let got = with_records(text, 1 << 16).unwrap();
        assert_eq!(got, with_csv(text).unwrap());
        for capacity in 1..24 {
            assert_eq!(with_records(text, capacity).unwrap(), got, "{capacity}");
        }
        assert_eq!(got[2][0], b"x,y");
        assert_eq!(got[3][0], b"two\nlines");
        let mut r = Records::new(&b"a,b\n1,2\n\"3\",4,5\n"[..], b',');
        assert!(r.next_record().unwrap() && r.next_record().unwrap());
        let e = r.next_record().unwrap_err();
        assert_eq!(e.line, 3);
        assert!(
            e.message.contains("3 fields, but the header has 2"),
            "{}",
            e.message
        );
    }

    fn field() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9:. -]{0,6}",
            "[a-z\r]{0,3}",
            "\"[a-z,\n\r]{0,5}\"",
            "\"[a-z]{0,3}\"\"[a-z]{0,3}\"",
        ]
    }

    proptest! {
        /// The fields are the csv crate's, record for record, whatever the quoting and line
        /// endings; both refuse the same inputs.
        #[test]
        fn records_are_what_the_csv_crate_reads(
            rows in prop::collection::vec(prop::collection::vec(field(), 3), 1..12),
            ends in prop::collection::vec(prop_oneof![Just("\n"), Just("\r\n"), Just("\n\n")], 12),
            ragged in any::<bool>(),
            capacity in prop_oneof![1usize..40, Just(1 << 16)],
        ) {
            let mut text = String::new();
            for (i, row) in rows.iter().enumerate() {
                let row = if ragged && i == rows.len() / 2 { &row[..2] } else { &row[..] };
                text.push_str(&row.join(","));
                text.push_str(ends[i]);
            }
            let want = with_csv(text.as_bytes());
            let got = with_records(text.as_bytes(), capacity);
            match (&want, &got) {
                (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
                (Err(_), Err(_)) => {}
                _ => prop_assert!(false, "{:?} vs {:?} on {:?}", want, got, text),
            }
        }
    }
}
