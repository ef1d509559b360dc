//! Period expressions with the semantics of gorhill/cronexpr, the library GitLab Runner uses
//! for `[[runners.machine.autoscaling]] Periods` (spec section 2):
//!
//! - 7 fields `sec min hour dom month dow year`; 6 fields `min hour dom month dow year`;
//!   5 fields `min hour dom month dow` (sec = 0, year = `*`); fields past the 7th are ignored.
//! - Day of week 0-7 (0 and 7 are Sunday) or names; a reversed range is empty.
//! - When both day fields are restricted a day matches when EITHER matches.
//! - dom takes `L`, `LW`, `15W`; dow takes `5L`, `5#3`.
//!
//! "Inside a period at instant t" is `matches(floor_to_second(t in tz) + 1 s)`; see
//! [`CronExpr::active_at`]. [`CronExpr::next_toggle`] finds the next instant at which that
//! answer changes without stepping second by second.

use chrono::{Datelike, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike};
use chrono_tz::Tz;
use std::fmt;

/// A period expression that could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CronError {
    pub expr: String,
    pub message: String,
}

impl fmt::Display for CronError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad period expression {:?}: {}", self.expr, self.message)
    }
}

impl std::error::Error for CronError {}

const SECS_PER_DAY: usize = 86_400;
const TOD_WORDS: usize = SECS_PER_DAY / 64 + 1;
const YEAR_MIN: i32 = 1970;
const YEAR_MAX: i32 = 2099;

/// A parsed period expression.
#[derive(Clone)]
pub struct CronExpr {
    source: String,
    fields: usize,
    seconds: u64,
    minutes: u64,
    hours: u32,
    months: u16,
    /// Bit (y - 1970) for each matching year 1970..=2099.
    years: [u64; 3],
    dom: u32,
    dom_restricted: bool,
    last_dom: bool,
    last_workday: bool,
    workdays: u32,
    dow: u8,
    dow_restricted: bool,
    last_dow: u8,
    nth_dow: u64,
    /// Matching seconds of the day (hour x minute x second), 86,400 bits.
    tod: Box<[u64; TOD_WORDS]>,
    /// Some second of the day matches.
    tod_any: bool,
    /// No instant can ever match.
    never: bool,
    /// Ranges written backwards (`sat-sun`), which match nothing.
    reversed: Vec<String>,
}

impl fmt::Debug for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CronExpr").field(&self.source).finish()
    }
}

impl PartialEq for CronExpr {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Second,
    Minute,
    Hour,
    Dom,
    Month,
    Dow,
    Year,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Second => "second",
            Field::Minute => "minute",
            Field::Hour => "hour",
            Field::Dom => "day-of-month",
            Field::Month => "month",
            Field::Dow => "day-of-week",
            Field::Year => "year",
        }
    }
    fn range(self) -> (i32, i32) {
        match self {
            Field::Second | Field::Minute => (0, 59),
            Field::Hour => (0, 23),
            Field::Dom => (1, 31),
            Field::Month => (1, 12),
            Field::Dow => (0, 6),
            Field::Year => (YEAR_MIN, YEAR_MAX),
        }
    }
    /// One value token, as cronexpr's value patterns accept it.
    fn value(self, tok: &str) -> Option<i32> {
        const MONTHS: [&str; 12] = [
            "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
        ];
        const MONTHS_FULL: [&str; 12] = [
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ];
        const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
        const DAYS_FULL: [&str; 7] = [
            "sunday",
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
        ];
        match self {
            Field::Month => {
                if let Some(i) = MONTHS.iter().position(|m| *m == tok) {
                    return Some(i as i32 + 1);
                }
                if let Some(i) = MONTHS_FULL.iter().position(|m| *m == tok) {
                    return Some(i as i32 + 1);
                }
            }
            Field::Dow => {
                if let Some(i) = DAYS.iter().position(|m| *m == tok) {
                    return Some(i as i32);
                }
                if let Some(i) = DAYS_FULL.iter().position(|m| *m == tok) {
                    return Some(i as i32);
                }
            }
            _ => {}
        }
        let max_len = if self == Field::Year { 4 } else { 2 };
        if tok.is_empty() || tok.len() > max_len || !tok.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if self == Field::Year && tok.len() != 4 {
            return None;
        }
        let v: i32 = tok.parse().ok()?;
        let (lo, hi) = self.range();
        if self == Field::Dow && v == 7 {
            return Some(0);
        }
        (lo..=hi).contains(&v).then_some(v)
    }
}

/// What one comma-separated entry of a field means.
enum Directive {
    All,
    Span { first: i32, last: i32, step: i32 },
    Special(String),
}

fn parse_step(tok: &str, field: Field, entry: &str) -> Result<i32, String> {
    let (_, hi) = field.range();
    if tok.is_empty() || !tok.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad interval in {} field: {entry:?}", field.name()));
    }
    match tok.parse::<i64>() {
        Ok(n) if n >= 1 && n <= hi as i64 => Ok(n as i32),
        _ => Err(format!(
            "invalid interval {entry:?} in {} field (must be 1..{hi})",
            field.name()
        )),
    }
}

fn parse_directive(entry: &str, field: Field) -> Result<Directive, String> {
    let (lo, hi) = field.range();
    if entry == "*" || entry == "?" {
        return Ok(Directive::All);
    }
    if let Some(v) = field.value(entry) {
        return Ok(Directive::Span {
            first: v,
            last: v,
            step: 1,
        });
    }
    let (body, step) = match entry.split_once('/') {
        Some((b, s)) => (b, Some(parse_step(s, field, entry)?)),
        None => (entry, None),
    };
    if let Some(step) = step {
        if body == "*" {
            return Ok(Directive::Span {
                first: lo,
                last: hi,
                step,
            });
        }
        if let Some(v) = field.value(body) {
            return Ok(Directive::Span {
                first: v,
                last: hi,
                step,
            });
        }
    }
    if let Some((a, b)) = body.split_once('-')
        && let (Some(a), Some(b)) = (field.value(a), field.value(b))
    {
        return Ok(Directive::Span {
            first: a,
            last: b,
            step: step.unwrap_or(1),
        });
    }
    if step.is_none() && matches!(field, Field::Dom | Field::Dow) {
        return Ok(Directive::Special(entry.to_string()));
    }
    Err(format!("syntax error in {} field: {entry:?}", field.name()))
}

/// Expands `first..=last` by `step` (empty when reversed, as cronexpr does).
fn span_bits(first: i32, last: i32, step: i32, offset: i32) -> u128 {
    let mut bits = 0u128;
    let mut v = first;
    while v <= last {
        bits |= 1u128 << (v - offset);
        v += step;
    }
    bits
}

/// The year field: 130 possible values, so three words.
fn parse_years(text: &str) -> Result<[u64; 3], String> {
    let entries: Vec<&str> = text.split(',').filter(|e| !e.is_empty()).collect();
    if entries.is_empty() {
        return Err("year field: missing directive".into());
    }
    let mut bits = [0u64; 3];
    let mut set = |first: i32, last: i32, step: i32| {
        let mut v = first;
        while v <= last {
            let i = (v - YEAR_MIN) as usize;
            bits[i / 64] |= 1 << (i % 64);
            v += step;
        }
    };
    for e in entries {
        match parse_directive(e, Field::Year)? {
            Directive::All => set(YEAR_MIN, YEAR_MAX, 1),
            Directive::Span { first, last, step } => set(first, last, step),
            Directive::Special(s) => return Err(format!("syntax error in year field: {s:?}")),
        }
    }
    Ok(bits)
}

fn parse_generic(text: &str, field: Field) -> Result<u128, String> {
    let (lo, hi) = field.range();
    let offset = 0;
    let entries: Vec<&str> = text.split(',').filter(|e| !e.is_empty()).collect();
    if entries.is_empty() {
        return Err(format!("{} field: missing directive", field.name()));
    }
    let mut bits = 0u128;
    for e in entries {
        match parse_directive(e, field)? {
            Directive::All => bits |= span_bits(lo, hi, 1, offset),
            Directive::Span { first, last, step } => bits |= span_bits(first, last, step, offset),
            Directive::Special(s) => {
                return Err(format!("syntax error in {} field: {s:?}", field.name()));
            }
        }
    }
    Ok(bits)
}

impl CronExpr {
    /// Parse with cronexpr's rules. The error names the expression.
    pub fn parse(expr: &str) -> Result<Self, CronError> {
        Self::parse_inner(expr).map_err(|message| CronError {
            expr: expr.to_string(),
            message,
        })
    }

    fn parse_inner(expr: &str) -> Result<Self, String> {
        let normalized = expr
            .replace("@yearly", "0 0 0 1 1 * *")
            .replace("@annually", "0 0 0 1 1 * *")
            .replace("@monthly", "0 0 0 1 * * *")
            .replace("@weekly", "0 0 0 * * 0 *")
            .replace("@daily", "0 0 0 * * * *")
            .replace("@hourly", "0 0 * * * * *");
        let lower = normalized.to_ascii_lowercase();
        let fields: Vec<&str> = lower.split_whitespace().collect();
        if fields.len() < 5 {
            return Err(format!(
                "missing field(s): {} given, 5 to 7 expected",
                fields.len()
            ));
        }
        let count = fields.len().min(7);
        let mut i = 0;
        let seconds = if count == 7 {
            i += 1;
            parse_generic(fields[0], Field::Second)? as u64
        } else {
            1
        };
        let minutes = parse_generic(fields[i], Field::Minute)? as u64;
        let hours = parse_generic(fields[i + 1], Field::Hour)? as u32;
        let dom_text = fields[i + 2];
        let months = parse_generic(fields[i + 3], Field::Month)? as u16;
        let dow_text = fields[i + 4];
        let years = if count >= 6 {
            parse_years(fields[i + 5])?
        } else {
            parse_years("*")?
        };

        let mut e = CronExpr {
            source: expr.to_string(),
            fields: count,
            seconds,
            minutes,
            hours,
            months,
            years,
            dom: 0,
            dom_restricted: true,
            last_dom: false,
            last_workday: false,
            workdays: 0,
            dow: 0,
            dow_restricted: true,
            last_dow: 0,
            nth_dow: 0,
            tod: Box::new([0; TOD_WORDS]),
            tod_any: false,
            never: false,
            reversed: Vec::new(),
        };
        let named = [
            (fields[i], Field::Minute),
            (fields[i + 1], Field::Hour),
            (dom_text, Field::Dom),
            (fields[i + 3], Field::Month),
            (dow_text, Field::Dow),
        ];
        for (text, field) in named {
            for entry in text.split(',') {
                if let Ok(Directive::Span { first, last, .. }) = parse_directive(entry, field)
                    && first > last
                {
                    e.reversed.push(entry.to_string());
                }
            }
        }
        e.parse_dom(dom_text)?;
        e.parse_dow(dow_text)?;
        e.build_tod();
        e.never = e.compute_never();
        Ok(e)
    }

    fn parse_dom(&mut self, text: &str) -> Result<(), String> {
        let entries: Vec<&str> = text.split(',').filter(|e| !e.is_empty()).collect();
        if entries.is_empty() {
            return Err("day-of-month field: missing directive".into());
        }
        for entry in entries {
            match parse_directive(entry, Field::Dom)? {
                Directive::All => {
                    self.dom |= span_bits(1, 31, 1, 0) as u32;
                    self.dom_restricted = false;
                }
                Directive::Span { first, last, step } => {
                    self.dom |= span_bits(first, last, step, 0) as u32
                }
                Directive::Special(s) => {
                    if s == "l" {
                        self.last_dom = true;
                    } else if s == "lw" {
                        self.last_workday = true;
                    } else if let Some(v) = s.strip_suffix('w').and_then(|d| Field::Dom.value(d)) {
                        self.workdays |= 1 << v;
                    } else {
                        return Err(format!("syntax error in day-of-month field: {s:?}"));
                    }
                }
            }
        }
        Ok(())
    }

    fn parse_dow(&mut self, text: &str) -> Result<(), String> {
        let entries: Vec<&str> = text.split(',').filter(|e| !e.is_empty()).collect();
        if entries.is_empty() {
            return Err("day-of-week field: missing directive".into());
        }
        for entry in entries {
            match parse_directive(entry, Field::Dow)? {
                Directive::All => {
                    self.dow |= 0x7f;
                    self.dow_restricted = false;
                }
                Directive::Span { first, last, step } => {
                    self.dow |= span_bits(first, last, step, 0) as u8
                }
                Directive::Special(s) => {
                    if let Some(v) = s.strip_suffix('l').and_then(|d| Field::Dow.value(d)) {
                        self.last_dow |= 1 << v;
                    } else if let Some((d, k)) = s.split_once('#') {
                        let d = Field::Dow.value(d);
                        let k = match k {
                            "1" | "2" | "3" | "4" | "5" => k.parse::<i32>().ok(),
                            _ => None,
                        };
                        match (d, k) {
                            (Some(d), Some(k)) => self.nth_dow |= 1u64 << ((k - 1) * 7 + d),
                            _ => return Err(format!("syntax error in day-of-week field: {s:?}")),
                        }
                    } else {
                        return Err(format!("syntax error in day-of-week field: {s:?}"));
                    }
                }
            }
        }
        Ok(())
    }

    /// The seconds of the day the expression matches, as bits: each matching hour and minute
    /// lays the seconds field's 60 bits down at its first second (over two words when they
    /// cross one's end).
    fn build_tod(&mut self) {
        let secs = self.seconds & ((1u64 << 60) - 1);
        let mut any = false;
        for h in 0..24 {
            if secs == 0 || self.hours & (1 << h) == 0 {
                continue;
            }
            for m in 0..60 {
                if self.minutes & (1 << m) == 0 {
                    continue;
                }
                let i = h * 3600 + m * 60;
                let (w, b) = (i / 64, i % 64);
                self.tod[w] |= secs << b;
                if b > 4 {
                    self.tod[w + 1] |= secs >> (64 - b);
                }
                any = true;
            }
        }
        self.tod_any = any;
    }

    /// The text as written in the config.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Number of fields (5, 6 or 7) the expression was read with.
    pub fn field_count(&self) -> usize {
        self.fields
    }

    /// True when the seconds field is not `*`: every 5- and 6-field form, `@hourly`, `0 * ...`.
    /// Such a period is active about one second a minute (spec section 2).
    pub fn seconds_restricted(&self) -> bool {
        self.seconds != (1u64 << 60) - 1
    }

    /// Ranges written backwards (`sat-sun`, `mon-sun`, `5-7`), which cronexpr reads as empty.
    pub fn reversed_ranges(&self) -> &[String] {
        &self.reversed
    }

    /// True when no instant can ever match (a reversed range, an impossible date, ...).
    pub fn is_never(&self) -> bool {
        self.never
    }

    fn compute_never(&self) -> bool {
        if !self.tod_any || self.months == 0 || self.years == [0; 3] {
            return true;
        }
        let day_possible = if !self.dom_restricted && !self.dow_restricted {
            true
        } else {
            (self.dom_restricted
                && (self.dom != 0 || self.last_dom || self.last_workday || self.workdays != 0))
                || (self.dow_restricted
                    && (self.dow != 0 || self.last_dow != 0 || self.nth_dow != 0))
        };
        if !day_possible {
            return true;
        }
        // A fixed set of day numbers that no selected month has (`30 feb`): check 4 years.
        for y in 2024..2028 {
            for m in 1..=12u32 {
                if self.months & (1 << m) == 0 {
                    continue;
                }
                for d in 1..=days_in_month(y, m) {
                    if self.day_matches_ignoring_year(y, m, d) {
                        return false;
                    }
                }
            }
        }
        true
    }

    fn tod_bit(&self, sod: usize) -> bool {
        self.tod[sod / 64] & (1 << (sod % 64)) != 0
    }

    /// First second of day >= `from` whose match bit differs from `want_not`; i.e. the first
    /// matching second when `want_not` is false, the first non-matching one when true.
    fn tod_find(&self, from: usize, current: bool) -> Option<usize> {
        let mut i = from;
        while i < SECS_PER_DAY {
            let w = i / 64;
            let word = if current { !self.tod[w] } else { self.tod[w] };
            let masked = word & (!0u64 << (i % 64));
            if masked != 0 {
                let found = w * 64 + masked.trailing_zeros() as usize;
                return (found < SECS_PER_DAY).then_some(found);
            }
            i = (w + 1) * 64;
        }
        None
    }

    fn day_matches_ignoring_year(&self, y: i32, m: u32, d: u32) -> bool {
        if self.months & (1 << m) == 0 {
            return false;
        }
        if !self.dom_restricted && !self.dow_restricted {
            return true;
        }
        let last = days_in_month(y, m);
        if self.dom_restricted {
            if self.dom & (1 << d) != 0 {
                return true;
            }
            if self.last_dom && d == last {
                return true;
            }
            if self.last_workday && d == last_workday(y, m) {
                return true;
            }
            if self.workdays != 0 {
                for v in 1..=last {
                    if self.workdays & (1 << v) != 0 && nearest_workday(y, m, v) == d {
                        return true;
                    }
                }
            }
        }
        if self.dow_restricted {
            let wd = weekday(y, m, d);
            if self.dow & (1 << wd) != 0 {
                return true;
            }
            let k = (d - 1) / 7;
            if self.nth_dow & (1u64 << (k * 7 + wd)) != 0 {
                return true;
            }
            if self.last_dow & (1 << wd) != 0 && d + 7 > last {
                return true;
            }
        }
        false
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        let y = date.year();
        if !(YEAR_MIN..=YEAR_MAX).contains(&y) {
            return false;
        }
        let i = (y - YEAR_MIN) as usize;
        if self.years[i / 64] & (1 << (i % 64)) == 0 {
            return false;
        }
        self.day_matches_ignoring_year(y, date.month(), date.day())
    }

    /// Does the naive local second `n` match the expression?
    pub fn matches_local(&self, n: NaiveDateTime) -> bool {
        self.day_matches(n.date()) && self.tod_bit(n.num_seconds_from_midnight() as usize)
    }

    /// Active at whole UTC second `u`: the expression matches `u + 1 s` in `tz`.
    pub fn active_sec(&self, tz: Tz, u: i64) -> bool {
        match local_of(tz, u + 1) {
            Some(n) => self.matches_local(n),
            None => false,
        }
    }

    /// "Now is inside a period", GitLab's rule: `floor_to_second(now in tz) + 1 s` matches.
    pub fn active_at(&self, tz: Tz, t: crate::core::time::Time) -> bool {
        self.active_sec(tz, t.floor_secs())
    }

    /// First naive second after `n`, before `limit`, whose match differs from `current`.
    fn next_naive_diff(
        &self,
        n: NaiveDateTime,
        current: bool,
        limit: NaiveDateTime,
    ) -> Option<NaiveDateTime> {
        let mut date = n.date();
        let mut start = n.num_seconds_from_midnight() as usize + 1;
        loop {
            let day_start = date.and_hms_opt(0, 0, 0)?;
            if day_start + chrono::Duration::seconds(start as i64) >= limit {
                return None;
            }
            if start < SECS_PER_DAY {
                if self.day_matches(date) {
                    if let Some(s) = self.tod_find(start, current) {
                        let found = day_start + chrono::Duration::seconds(s as i64);
                        return (found < limit).then_some(found);
                    }
                } else if current {
                    return Some(day_start + chrono::Duration::seconds(start as i64));
                }
            }
            date = date.succ_opt()?;
            start = 0;
        }
    }

    /// The first whole UTC second `v > u` at which [`Self::active_sec`] differs from its value
    /// at `u`, searching no further than `horizon` (a UTC second). Works in strides of up to
    /// a week of local calendar time, and splits a stride at any UTC offset change.
    pub fn next_toggle(&self, tz: Tz, u: i64, horizon: i64) -> Option<i64> {
        let current = self.active_sec(tz, u);
        if !current && self.is_never() {
            return None;
        }
        const STRIDE: i64 = 7 * 86_400;
        let mut u = u;
        while u < horizon {
            let off = offset_secs(tz, u + 1)?;
            let n = naive_of(u + 1 + off)?;
            let limit = n + chrono::Duration::seconds(STRIDE);
            let cand = self.next_naive_diff(n, current, limit);
            let v = match cand {
                Some(n2) => u + (n2 - n).num_seconds(),
                None => u + STRIDE,
            };
            if offset_secs(tz, v + 1)? != off {
                // Find the first w in (u, v] whose offset differs, by bisection.
                let (mut lo, mut hi) = (u, v);
                while hi - lo > 1 {
                    let mid = lo + (hi - lo) / 2;
                    if offset_secs(tz, mid + 1)? == off {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                if self.active_sec(tz, hi) != current {
                    return (hi <= horizon).then_some(hi);
                }
                u = hi;
                continue;
            }
            if cand.is_some() {
                return (v <= horizon).then_some(v);
            }
            u = v;
        }
        None
    }
}

fn naive_of(local_secs: i64) -> Option<NaiveDateTime> {
    chrono::DateTime::from_timestamp(local_secs, 0).map(|d| d.naive_utc())
}

fn offset_secs(tz: Tz, utc_secs: i64) -> Option<i64> {
    let dt = chrono::DateTime::from_timestamp(utc_secs, 0)?;
    Some(
        tz.offset_from_utc_datetime(&dt.naive_utc())
            .fix()
            .local_minus_utc() as i64,
    )
}

/// The local wall-clock time of UTC second `utc_secs` in `tz`.
pub fn local_of(tz: Tz, utc_secs: i64) -> Option<NaiveDateTime> {
    let off = offset_secs(tz, utc_secs)?;
    naive_of(utc_secs + off)
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// 0 = Sunday ... 6 = Saturday.
fn weekday(y: i32, m: u32, d: u32) -> u32 {
    NaiveDate::from_ymd_opt(y, m, d)
        .map(|date| date.weekday().num_days_from_sunday())
        .unwrap_or(0)
}

fn last_workday(y: i32, m: u32) -> u32 {
    let last = days_in_month(y, m);
    match weekday(y, m, last) {
        6 => last - 1,
        0 => last - 2,
        _ => last,
    }
}

/// `15W`: the weekday nearest to day `v`, never crossing the month boundary.
fn nearest_workday(y: i32, m: u32, v: u32) -> u32 {
    let last = days_in_month(y, m);
    match weekday(y, m, v) {
        6 if v > 1 => v - 1,
        6 => v + 2,
        0 if v < last => v + 1,
        0 => v - 2,
        _ => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seconds of the day, laid down a minute at a time, are the ones the fields pick one
    /// by one: random hours, minutes and seconds (seconds at a word's edges included).
    #[test]
    fn the_seconds_of_the_day_are_the_fields_picks() {
        let mut rng = crate::rng::Rng::new(17);
        for round in 0..300 {
            let mut e = CronExpr::parse("* * * * * * *").unwrap();
            e.hours = (rng.next_u64() & ((1 << 24) - 1)) as u32;
            e.minutes = rng.next_u64() & ((1 << 60) - 1);
            e.seconds = match round % 3 {
                0 => rng.next_u64() & ((1 << 60) - 1),
                1 => 1 | 1 << 59,
                _ => 1 << rng.below(60),
            };
            *e.tod = [0; TOD_WORDS];
            e.build_tod();
            let mut any = false;
            for sod in 0..86_400usize {
                let (h, m, s) = (sod / 3600, sod / 60 % 60, sod % 60);
                let want = e.hours & (1 << h) != 0
                    && e.minutes & (1 << m) != 0
                    && e.seconds & (1 << s) != 0;
                any |= want;
                assert_eq!(e.tod_bit(sod), want, "round {round}, second {sod}");
            }
            assert_eq!(e.tod_any, any);
        }
    }
}
