//! The simulated window against the trace, surveyed before any variant runs: how many jobs fall
//! inside and outside it, its longest quiet stretch, and whether the answer would mean
//! anything (a window with no job, or one that is nearly all empty time, is refused before the
//! engines spend hours polling through it).

use crate::core::Time;
use crate::sim::metrics::Gap;
use crate::sim::run::SimError;
use crate::trace::{TraceJob, TraceResult};

const DAY_MS: f64 = 86_400_000.0;
/// Empty time shorter than this is never refused, only stated.
const REFUSE_AFTER_DAYS: f64 = 30.0;
/// ... nor empty time less than this many times the span of the jobs.
const REFUSE_FACTOR: f64 = 10.0;
/// A quiet stretch longer than this gets a note.
pub const NOTE_GAP_DAYS: f64 = 3.0;

/// One pass over the arrivals (in time order) against `[start, end]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Survey {
    pub before: u64,
    pub inside: u64,
    pub after: u64,
    /// The first and last arrival inside, with their job ids.
    pub first: Option<(Time, u64)>,
    pub last: Option<(Time, u64)>,
    /// The longest stretch between two arrivals inside: (from, to, job before, job after).
    pub gap: Option<(Time, Time, u64, u64)>,
    /// The waits the trace recorded for the jobs inside (None when it records none).
    pub observed: Option<crate::sim::calibration::Observed>,
}

pub fn survey(
    arrivals: impl Iterator<Item = TraceResult<TraceJob>>,
    start: Option<Time>,
    end: Option<Time>,
    tz: chrono_tz::Tz,
) -> TraceResult<Survey> {
    let mut s = Surveyor::new(start, end, tz);
    for j in arrivals {
        s.add(&j?);
    }
    Ok(s.finish())
}

/// A survey taken one arrival at a time (in time order), as the trace is read.
pub struct Surveyor {
    s: Survey,
    start: Option<Time>,
    end: Option<Time>,
    observed: crate::sim::calibration::ObservedAcc,
}

impl Surveyor {
    pub fn new(start: Option<Time>, end: Option<Time>, tz: chrono_tz::Tz) -> Self {
        Surveyor {
            s: Survey::default(),
            start,
            end,
            observed: crate::sim::calibration::ObservedAcc::new(tz),
        }
    }

    pub fn add(&mut self, j: &TraceJob) {
        let s = &mut self.s;
        if self.start.is_some_and(|t| j.arrival < t) {
            s.before += 1;
            return;
        }
        if self.end.is_some_and(|t| j.arrival > t) {
            s.after += 1;
            return;
        }
        s.inside += 1;
        if let Some(q) = j.queued_ms {
            self.observed.add(j.arrival, u64::from(q));
        }
        if let Some((p, pid)) = s.last
            && s.gap
                .is_none_or(|(a, b, _, _)| j.arrival.since(p) > b.since(a))
        {
            s.gap = Some((p, j.arrival, pid, j.id));
        }
        s.first.get_or_insert((j.arrival, j.id));
        s.last = Some((j.arrival, j.id));
    }

    pub fn finish(self) -> Survey {
        Survey {
            observed: self.observed.finish(),
            ..self.s
        }
    }
}

fn days(a: Time, b: Time) -> f64 {
    b.since(a) as f64 / DAY_MS
}

impl Survey {
    /// Refuse a window whose forecast would mean nothing.
    pub fn check(&self, start: Option<Time>, end: Option<Time>) -> Result<(), SimError> {
        let (Some((first, _)), Some((last, _))) = (self.first, self.last) else {
            return match (start, end) {
                (None, None) => Err(SimError::EmptyTrace),
                _ => Err(SimError::EmptyWindow {
                    start: start.unwrap_or(Time(i64::MIN)),
                    end: end.unwrap_or(Time(i64::MAX)),
                    before: self.before,
                    after: self.after,
                }),
            };
        };
        let span = days(first, last);
        // A lone first or last job far from all the others.
        if let Some((a, b, before_id, after_id)) = self.gap {
            let gap = days(a, b);
            let rest = (span - gap).max(0.1);
            let lone = a == first || b == last;
            if lone && gap > REFUSE_AFTER_DAYS && gap > REFUSE_FACTOR * rest {
                let (job, at) = if a == first {
                    (before_id, a)
                } else {
                    (after_id, b)
                };
                return Err(SimError::Outlier {
                    job,
                    at,
                    gap_days: gap,
                    rest_days: rest,
                });
            }
        }
        // A window that reaches far beyond the jobs it holds.
        let lead = start.map_or(0.0, |s| days(s, first));
        let tail = end.map_or(0.0, |e| days(last, e));
        let empty = lead.max(tail);
        if empty > REFUSE_AFTER_DAYS && empty > REFUSE_FACTOR * span.max(0.1) {
            return Err(SimError::MostlyEmpty {
                first,
                last,
                empty_days: empty,
            });
        }
        Ok(())
    }

    pub fn longest_gap(&self) -> Option<Gap> {
        self.gap.map(|(a, b, _, _)| Gap {
            from: a.to_rfc3339(),
            to: b.to_rfc3339(),
            days: days(a, b),
        })
    }

    /// A note for a long quiet stretch.
    pub fn notes(&self) -> Vec<String> {
        self.longest_gap()
            .filter(|g| g.days > NOTE_GAP_DAYS)
            .map(|g| {
                format!(
                    "the trace has no job from {} to {} ({:.1} days); idle machines are billed through it. Is the export whole?",
                    g.from, g.to, g.days
                )
            })
            .into_iter()
            .collect()
    }
}
