//! Time as data: milliseconds since the Unix epoch, UTC. The core never reads a clock;
//! every instant it sees was passed in.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// An instant, in milliseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time(pub i64);

impl Time {
    pub const fn from_millis(ms: i64) -> Self {
        Time(ms)
    }
    pub const fn from_secs(s: i64) -> Self {
        Time(s.saturating_mul(1000))
    }
    pub const fn millis(self) -> i64 {
        self.0
    }
    /// Whole seconds, rounded toward minus infinity (the "floor to second" of the period rule).
    pub const fn floor_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }
    pub const fn plus_secs(self, s: i64) -> Self {
        Time(self.0.saturating_add(s.saturating_mul(1000)))
    }
    pub const fn plus_millis(self, ms: i64) -> Self {
        Time(self.0.saturating_add(ms))
    }
    /// Milliseconds from `earlier` to `self` (negative when `earlier` is later).
    pub const fn since(self, earlier: Time) -> i64 {
        self.0.saturating_sub(earlier.0)
    }
    pub fn to_utc(self) -> Option<DateTime<Utc>> {
        Utc.timestamp_millis_opt(self.0).single()
    }
    /// Parse an RFC 3339 timestamp (`2026-11-25T10:00:00Z`, with optional fraction and offset).
    pub fn parse_rfc3339(s: &str) -> Result<Self, TimeParseError> {
        DateTime::parse_from_rfc3339(s.trim())
            .map(|d| Time(d.timestamp_millis()))
            .map_err(|e| TimeParseError {
                text: s.to_string(),
                reason: e.to_string(),
            })
    }
    /// RFC 3339 in UTC with milliseconds, the stable JSON form.
    pub fn to_rfc3339(self) -> String {
        match self.to_utc() {
            Some(d) => d.to_rfc3339_opts(SecondsFormat::Millis, true),
            None => format!("@{}ms", self.0),
        }
    }
}

/// Text that is not an RFC 3339 time.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not an RFC 3339 time ({reason}): {text:?}")]
pub struct TimeParseError {
    pub text: String,
    pub reason: String,
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() && self.to_utc().is_some() {
            s.serialize_str(&self.to_rfc3339())
        } else {
            s.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            #[derive(Deserialize)]
            #[serde(untagged)]
            enum Repr {
                Text(String),
                Millis(i64),
            }
            match Repr::deserialize(d)? {
                Repr::Text(s) => Time::parse_rfc3339(&s).map_err(serde::de::Error::custom),
                Repr::Millis(ms) => Ok(Time(ms)),
            }
        } else {
            i64::deserialize(d).map(Time)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_with_millis() {
        let t = Time::parse_rfc3339("2026-11-25T10:00:00.250Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-25T10:00:00.250Z");
        assert_eq!(Time::parse_rfc3339(&t.to_rfc3339()).unwrap(), t);
    }

    #[test]
    fn instants_beyond_the_calendar_round_trip_as_millis() {
        let far = Time(i64::MAX);
        let json = serde_json::to_string(&far).unwrap();
        assert_eq!(json, i64::MAX.to_string());
        assert_eq!(serde_json::from_str::<Time>(&json).unwrap(), far);
    }

    #[test]
    fn floor_secs_rounds_down_before_epoch() {
        assert_eq!(Time(-1).floor_secs(), -1);
        assert_eq!(Time(1999).floor_secs(), 1);
    }
}
