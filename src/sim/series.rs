//! What a report needs beyond the totals, recorded while a variant runs: the fleet and the
//! queue over time (time-weighted averages per bucket, so a year stays a few thousand points),
//! the distribution of waits, and waits by weekday and hour.

use crate::core::{Engine, Time};
use crate::sim::run::Observer;
use crate::stats::Quantiles;
use chrono::{Datelike, Timelike};
use chrono_tz::Tz;
use serde::Serialize;

/// One bucket of the fleet series: averages over the bucket.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FleetPoint {
    pub t: Time,
    pub booting: f64,
    pub idle: f64,
    pub busy: f64,
    pub removing: f64,
    pub waiting: f64,
    /// The autoscaling entry active at the bucket's start (None: `[runners.machine]`).
    pub entry: Option<usize>,
}

/// Everything a report draws for one variant.
#[derive(Clone, Debug, Serialize)]
pub struct VariantSeries {
    pub bucket_ms: i64,
    pub fleet: Vec<FleetPoint>,
    /// (fraction of jobs, wait in seconds), rising, for a CDF.
    pub wait_cdf: Vec<(f64, f64)>,
    pub wait_p50_s: f64,
    pub wait_p95_s: f64,
    /// p95 wait in seconds by weekday (0 = Monday) and hour, in the scenario's zone; None
    /// where no job arrived.
    pub heat_p95_s: Vec<Vec<Option<f64>>>,
    /// The waits the trace recorded, as a CDF like `wait_cdf` (empty when it records none).
    pub observed_cdf: Vec<(f64, f64)>,
    /// Per hour of the window (by arrival): the start, the simulated and the observed p95
    /// wait in seconds (None where no such job arrived). Empty when the trace records none.
    pub hourly_p95_s: Vec<(Time, Option<f64>, Option<f64>)>,
}

#[derive(Clone, Copy)]
struct Snapshot {
    at: Time,
    values: [f64; 5],
    entry: Option<usize>,
}

#[derive(Clone, Default)]
struct Acc {
    sums: [f64; 5],
    covered_ms: i64,
    entry: Option<Option<usize>>,
}

/// The series of one run, its window known.
struct Series {
    start: Time,
    bucket_ms: i64,
    buckets: Vec<Acc>,
    last: Option<Snapshot>,
    waits: Quantiles,
    heat: Vec<Quantiles>,
    tz: Tz,
    observed: Quantiles,
    /// Per hour since `start`: simulated and observed waits.
    hourly: Vec<(Quantiles, Quantiles)>,
}

/// A distribution as 200 points (share of jobs, wait in seconds), rising; none when empty.
fn cdf(q: &mut Quantiles) -> Vec<(f64, f64)> {
    if q.count() == 0 {
        return Vec::new();
    }
    (1..=200)
        .map(|i| {
            let f = i as f64 / 200.0;
            (f, q.quantile(f) as f64 / 1000.0)
        })
        .collect()
}

/// Points a long run is cut into, at most (about).
const TARGET_POINTS: i64 = 1500;

impl Series {
    /// `expected_end` sizes the buckets (a minute at least); the series grows past it if need be.
    fn new(start: Time, expected_end: Time, tz: Tz) -> Self {
        let span = expected_end.since(start).max(1);
        let bucket_ms = (span / TARGET_POINTS).max(60_000);
        Series {
            start,
            bucket_ms,
            buckets: Vec::new(),
            last: None,
            waits: Quantiles::new(),
            heat: (0..168).map(|_| Quantiles::coarse()).collect(),
            tz,
            observed: Quantiles::new(),
            hourly: Vec::new(),
        }
    }

    fn hour(&mut self, arrival: Time) -> Option<&mut (Quantiles, Quantiles)> {
        let h = usize::try_from(arrival.since(self.start) / 3_600_000).ok()?;
        if self.hourly.len() <= h {
            self.hourly
                .resize_with(h + 1, || (Quantiles::coarse(), Quantiles::coarse()));
        }
        self.hourly.get_mut(h)
    }

    fn integrate(&mut self, s: Snapshot, to: Time) {
        let mut t = s.at.max(self.start);
        while t < to {
            let i = (t.since(self.start) / self.bucket_ms) as usize;
            let bucket_end = self.start.plus_millis((i as i64 + 1) * self.bucket_ms);
            let seg_end = to.min(bucket_end);
            let ms = seg_end.since(t);
            if self.buckets.len() <= i {
                self.buckets.resize(i + 1, Acc::default());
            }
            let b = &mut self.buckets[i];
            for (sum, v) in b.sums.iter_mut().zip(s.values) {
                *sum += v * ms as f64;
            }
            b.covered_ms += ms;
            b.entry.get_or_insert(s.entry);
            t = seg_end;
        }
    }

    /// Close the series at `end` and hand it over.
    fn finish(mut self, end: Time) -> VariantSeries {
        if let Some(s) = self.last.take() {
            self.integrate(s, end);
        }
        let fleet = self
            .buckets
            .iter()
            .enumerate()
            .filter(|(_, b)| b.covered_ms > 0)
            .map(|(i, b)| {
                let avg = |k: usize| b.sums[k] / b.covered_ms as f64;
                FleetPoint {
                    t: self.start.plus_millis(i as i64 * self.bucket_ms),
                    booting: avg(0),
                    idle: avg(1),
                    busy: avg(2),
                    removing: avg(3),
                    waiting: avg(4),
                    entry: b.entry.flatten(),
                }
            })
            .collect();
        let wait_cdf = cdf(&mut self.waits);
        let observed_cdf = cdf(&mut self.observed);
        let p95 = |q: &mut Quantiles| (q.count() > 0).then(|| q.quantile(0.95) as f64 / 1000.0);
        let hourly_p95_s = if self.observed.count() == 0 {
            Vec::new()
        } else {
            let start = self.start;
            self.hourly
                .iter_mut()
                .enumerate()
                .map(|(h, (s, o))| (start.plus_millis(h as i64 * 3_600_000), p95(s), p95(o)))
                .collect()
        };
        let heat_p95_s = (0..7)
            .map(|d| {
                (0..24)
                    .map(|h| {
                        let q = &mut self.heat[d * 24 + h];
                        (q.count() > 0).then(|| q.quantile(0.95) as f64 / 1000.0)
                    })
                    .collect()
            })
            .collect();
        VariantSeries {
            bucket_ms: self.bucket_ms,
            fleet,
            wait_p50_s: self.waits.quantile(0.5) as f64 / 1000.0,
            wait_p95_s: self.waits.quantile(0.95) as f64 / 1000.0,
            wait_cdf,
            heat_p95_s,
            observed_cdf,
            hourly_p95_s,
        }
    }
}

impl Series {
    fn job_done(&mut self, arrival: Time, wait_ms: i64) {
        let w = wait_ms.max(0) as u64;
        self.waits.add(w);
        if let Some(utc) = arrival.to_utc() {
            let local = utc.with_timezone(&self.tz);
            let d = local.weekday().num_days_from_monday() as usize;
            let h = local.hour() as usize;
            self.heat[d * 24 + h].add(w);
        }
        if let Some(b) = self.hour(arrival) {
            b.0.add(w);
        }
    }

    fn observed(&mut self, arrival: Time, wait_ms: u64) {
        self.observed.add(wait_ms);
        if let Some(b) = self.hour(arrival) {
            b.1.add(wait_ms);
        }
    }

    fn state(&mut self, at: Time, counts: [u32; 5], entry: Option<usize>) {
        if let Some(prev) = self.last {
            self.integrate(prev, at);
        }
        self.last = Some(Snapshot {
            at,
            values: counts.map(f64::from),
            entry,
        });
    }
}

/// The trace's first arrival and last end, told once the whole file is read (a run that
/// starts while it is read waits for them to size its series).
pub type TraceSpan = std::sync::Arc<std::sync::OnceLock<(Option<Time>, Option<Time>)>>;

/// An observer's call made before the window was known, kept compactly until it is.
#[derive(Clone, Copy)]
enum Call {
    State {
        at: Time,
        counts: [u32; 5],
        /// The active autoscaling entry, `u32::MAX` for none.
        entry: u32,
    },
    Done {
        arrival: Time,
        wait_ms: i64,
    },
    Observed {
        arrival: Time,
        wait_ms: u64,
    },
}

/// The calls that wait, each kind in its own list, in order (32 bytes a state, 16 a wait,
/// rather than 40 for every call): the kinds touch separate parts of a series (the fleet's
/// buckets; the simulated waits; the observed ones), so replaying one kind after another,
/// each in its order, gives the series that replaying them interleaved gives.
#[derive(Default)]
struct Waiting {
    states: Vec<(Time, [u32; 5], u32)>,
    done: Vec<(Time, i64)>,
    observed: Vec<(Time, u64)>,
}

impl Waiting {
    fn len(&self) -> usize {
        self.states.len() + self.done.len() + self.observed.len()
    }

    fn push(&mut self, c: Call) {
        match c {
            Call::State { at, counts, entry } => self.states.push((at, counts, entry)),
            Call::Done { arrival, wait_ms } => self.done.push((arrival, wait_ms)),
            Call::Observed { arrival, wait_ms } => self.observed.push((arrival, wait_ms)),
        }
    }

    fn replay(self, s: &mut Series) {
        for (at, counts, entry) in self.states {
            s.state(at, counts, (entry != u32::MAX).then_some(entry as usize));
        }
        for (arrival, wait_ms) in self.done {
            s.job_done(arrival, wait_ms);
        }
        for (arrival, wait_ms) in self.observed {
            s.observed(arrival, wait_ms);
        }
    }
}

/// Calls kept at most while the window is not known (48 MB at most, past what a trace file small
/// enough to be read meanwhile makes: `scenario_run::series_may_wait_for_the_trace`); past
/// that the series is given up (the run is made again once the trace is read).
const LATE_CALLS: usize = 1_500_000;

enum State {
    Ready(Box<Series>),
    /// The window comes from the trace, still being read: calls wait in order.
    Waiting {
        span: TraceSpan,
        start: Option<Time>,
        end: Option<Time>,
        calls: Waiting,
        /// At most this many calls wait.
        limit: usize,
    },
    /// Too many calls waited, or the trace has no span.
    GivenUp,
}

/// An [`Observer`] that records a [`VariantSeries`].
pub struct Recorder {
    state: State,
    tz: Tz,
}

impl Recorder {
    /// The series of a run over `start .. expected_end` (`expected_end` sizes the buckets, a
    /// minute at least; the series grows past it if need be).
    pub fn new(start: Time, expected_end: Time, tz: Tz) -> Self {
        Recorder {
            state: State::Ready(Box::new(Series::new(start, expected_end, tz))),
            tz,
        }
    }

    /// The series of a run that starts while its trace is read: the window is `start` and
    /// `end` where given, else the trace's first arrival and last end, told through `span`
    /// when the file is read. Until then the calls are kept (at most [`LATE_CALLS`]) and then
    /// replayed in order, so the series equals [`Recorder::new`]'s with that window.
    pub fn late(span: TraceSpan, start: Option<Time>, end: Option<Time>, tz: Tz) -> Self {
        Recorder {
            state: State::Waiting {
                span,
                start,
                end,
                calls: Waiting::default(),
                limit: LATE_CALLS,
            },
            tz,
        }
    }

    /// The series, when the window is known (replaying what waited for it).
    #[inline]
    fn ready(&mut self) -> Option<&mut Series> {
        if let State::Waiting { span, .. } = &self.state
            && span.get().is_some()
        {
            self.resolve();
        }
        match &mut self.state {
            State::Ready(s) => Some(s),
            _ => None,
        }
    }

    #[cold]
    fn resolve(&mut self) {
        let State::Waiting {
            span,
            start,
            end,
            calls,
            ..
        } = std::mem::replace(&mut self.state, State::GivenUp)
        else {
            return;
        };
        let Some(&(first, last)) = span.get() else {
            return;
        };
        if let (Some(a), Some(b)) = (start.or(first), end.or(last)) {
            let mut s = Series::new(a, b, self.tz);
            calls.replay(&mut s);
            self.state = State::Ready(Box::new(s));
        }
    }

    /// Keep a call until the window is known; give up past [`LATE_CALLS`].
    fn wait(&mut self, call: Call) {
        if let State::Waiting { calls, limit, .. } = &mut self.state {
            if calls.len() < *limit {
                calls.push(call);
            } else {
                self.state = State::GivenUp;
            }
        }
    }

    /// Close the series at `end` and hand it over: None when its window never came (a run
    /// started while the trace was read, which kept too many calls waiting for it).
    pub fn finish(mut self, end: Time) -> Option<VariantSeries> {
        self.ready()?;
        match self.state {
            State::Ready(s) => Some(s.finish(end)),
            _ => None,
        }
    }
}

impl Observer for Recorder {
    fn job_done(&mut self, _id: u64, arrival: Time, _start: Time, _end: Time, wait_ms: i64) {
        match self.ready() {
            Some(s) => s.job_done(arrival, wait_ms),
            None => self.wait(Call::Done { arrival, wait_ms }),
        }
    }

    fn observed(&mut self, arrival: Time, wait_ms: u64) {
        match self.ready() {
            Some(s) => s.observed(arrival, wait_ms),
            None => self.wait(Call::Observed { arrival, wait_ms }),
        }
    }

    fn wants_events(&self) -> bool {
        false
    }

    fn state(&mut self, at: Time, engine: &Engine) {
        let c = engine.fleet().counts();
        let j = engine.jobs();
        let counts = [
            c.creating,
            c.idle,
            c.used,
            c.removing,
            j.waiting() + j.awaiting(),
        ];
        self.record_state(at, counts, engine.effective().entry);
    }
}

impl Recorder {
    /// The fleet and queue at `at`: machines booting, idle, busy, being removed, and jobs
    /// waiting; the autoscaling entry in force.
    fn record_state(&mut self, at: Time, counts: [u32; 5], entry: Option<usize>) {
        match self.ready() {
            Some(s) => s.state(at, counts, entry),
            None => self.wait(Call::State {
                at,
                counts,
                entry: entry.map_or(u32::MAX, |e| e as u32),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One run's calls, made up: the fleet and queue changing at rising instants, jobs done
    /// and waits observed.
    fn calls(seed: u64, n: usize) -> Vec<Call> {
        let mut rng = crate::rng::Rng::new(seed);
        let mut at = Time::from_secs(1_767_225_600);
        (0..n)
            .map(|_| {
                let x = rng.next_u64();
                at = at.plus_millis((x % 600_000) as i64);
                let small = |k: u32| ((x >> k) % 40) as u32;
                match x % 5 {
                    0..=2 => Call::State {
                        at,
                        counts: [small(8), small(16), small(24), small(32), small(40)],
                        entry: if x.is_multiple_of(7) {
                            u32::MAX
                        } else {
                            (x % 3) as u32
                        },
                    },
                    3 => Call::Done {
                        arrival: at.plus_millis(-(((x >> 20) % 900_000) as i64)),
                        wait_ms: ((x >> 30) % 200_000) as i64,
                    },
                    _ => Call::Observed {
                        arrival: at.plus_millis(-(((x >> 20) % 900_000) as i64)),
                        wait_ms: (x >> 30) % 200_000,
                    },
                }
            })
            .collect()
    }

    fn feed(r: &mut Recorder, c: Call) {
        match c {
            Call::State { at, counts, entry } => {
                r.record_state(at, counts, (entry != u32::MAX).then_some(entry as usize))
            }
            Call::Done { arrival, wait_ms } => r.job_done(0, arrival, arrival, arrival, wait_ms),
            Call::Observed { arrival, wait_ms } => r.observed(arrival, wait_ms),
        }
    }

    fn json(s: &VariantSeries) -> String {
        serde_json::to_string(s).unwrap()
    }

    /// A run that starts before its window is known gives the series of a run that knew it,
    /// whenever the window comes (before the first call, midway, at the end), from the trace
    /// or from the scenario; it gives none when too many calls waited, or when the trace has
    /// no span.
    #[test]
    fn a_series_that_waits_for_its_window_equals_one_that_knew_it() {
        let tz = chrono_tz::Europe::Berlin;
        for seed in [3u64, 77, 1234] {
            let calls = calls(seed, 3_000);
            let first = Time::from_secs(1_767_225_600);
            let last = match calls.last() {
                Some(Call::State { at, .. }) => *at,
                _ => first.plus_secs(86_400 * 20),
            }
            .plus_secs(3_600);
            let end = last.plus_secs(60);
            let scenario_start = first.plus_secs(7_200);
            for (start, want_start) in [(None, first), (Some(scenario_start), scenario_start)] {
                let mut known = Recorder::new(want_start, last, tz);
                for &c in &calls {
                    feed(&mut known, c);
                }
                let want = json(&known.finish(end).expect("a series"));
                for told in [0, 1, 1_500, 2_999, 3_000] {
                    let span = TraceSpan::default();
                    let mut late = Recorder::late(span.clone(), start, None, tz);
                    for (i, &c) in calls.iter().enumerate() {
                        if i == told {
                            span.set((Some(first), Some(last))).unwrap();
                        }
                        feed(&mut late, c);
                    }
                    if told == calls.len() {
                        span.set((Some(first), Some(last))).unwrap();
                    }
                    let got = late.finish(end).expect("a series once the span is told");
                    assert_eq!(json(&got), want, "seed {seed}, told after {told} calls");
                }
            }
            // Too many calls waiting: given up, even once the span comes.
            let span = TraceSpan::default();
            let mut late = Recorder::late(span.clone(), None, None, tz);
            if let State::Waiting { limit, .. } = &mut late.state {
                *limit = 100;
            }
            for &c in &calls[..101] {
                feed(&mut late, c);
            }
            span.set((Some(first), Some(last))).unwrap();
            for &c in &calls[101..] {
                feed(&mut late, c);
            }
            assert!(late.finish(end).is_none(), "given up past its limit");
            // A trace with no span (never told, or told empty): no series.
            let never = Recorder::late(TraceSpan::default(), None, None, tz);
            assert!(never.finish(end).is_none());
            let span = TraceSpan::default();
            span.set((None, None)).unwrap();
            assert!(Recorder::late(span, None, None, tz).finish(end).is_none());
        }
    }
}
