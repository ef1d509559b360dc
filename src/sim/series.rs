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

/// An [`Observer`] that records a [`VariantSeries`].
pub struct Recorder {
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

impl Recorder {
    /// `expected_end` sizes the buckets (a minute at least); the series grows past it if need be.
    pub fn new(start: Time, expected_end: Time, tz: Tz) -> Self {
        let span = expected_end.since(start).max(1);
        let bucket_ms = (span / TARGET_POINTS).max(60_000);
        Recorder {
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
    pub fn finish(mut self, end: Time) -> VariantSeries {
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

impl Observer for Recorder {
    fn job_done(&mut self, _id: u64, arrival: Time, _start: Time, _end: Time, wait_ms: i64) {
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

    fn wants_events(&self) -> bool {
        false
    }

    fn state(&mut self, at: Time, engine: &Engine) {
        if let Some(prev) = self.last {
            self.integrate(prev, at);
        }
        let c = engine.fleet().counts();
        let j = engine.jobs();
        self.last = Some(Snapshot {
            at,
            values: [
                c.creating as f64,
                c.idle as f64,
                c.used as f64,
                c.removing as f64,
                (j.waiting() + j.awaiting()) as f64,
            ],
            entry: engine.effective().entry,
        });
    }
}
