//! A synthetic trace with the shape of real CI load: busy weekday office hours, quiet nights and
//! weekends, pipelines that release several jobs at once (stage by stage), lognormal runtimes.
//! Generated in arrival order with memory bounded by the pipelines in flight.

use crate::core::Time;
use crate::rng::Rng;
use crate::trace::TraceJob;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Write;

#[derive(Clone, Debug, PartialEq)]
pub struct SynthParams {
    pub days: u32,
    pub jobs_per_day: f64,
    pub seed: u64,
    /// Midnight UTC of the first day (a Monday makes the weeks line up).
    pub start: Time,
}

/// The most jobs a synthetic day may hold (a busy runner runs a few thousand); the
/// generator holds a day's jobs in memory. `SCALECAST_MAX_JOBS_PER_DAY` raises it.
pub const MAX_JOBS_PER_DAY: f64 = 1_000_000.0;

/// The limit in force: the default, or `SCALECAST_MAX_JOBS_PER_DAY`.
pub fn max_jobs_per_day() -> f64 {
    std::env::var("SCALECAST_MAX_JOBS_PER_DAY")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v > 0.0)
        .unwrap_or(MAX_JOBS_PER_DAY)
}

/// Synthetic load that cannot be generated.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SynthError {
    #[error("days and jobs_per_day must be finite numbers above 0")]
    NotPositive,
    #[error(
        "jobs_per_day {jobs_per_day} is above the limit of {max} (set SCALECAST_MAX_JOBS_PER_DAY to raise it)"
    )]
    AboveLimit { jobs_per_day: f64, max: f64 },
}

impl SynthParams {
    /// Refuse what cannot be generated: no days, a rate that is not a positive finite
    /// number, or more jobs a day than the limit.
    pub fn check(days: u32, jobs_per_day: f64) -> Result<(), SynthError> {
        if days == 0 || !jobs_per_day.is_finite() || jobs_per_day <= 0.0 {
            return Err(SynthError::NotPositive);
        }
        let max = max_jobs_per_day();
        if jobs_per_day > max {
            return Err(SynthError::AboveLimit { jobs_per_day, max });
        }
        Ok(())
    }

    pub fn default_start() -> Time {
        Time::parse_rfc3339("2026-11-02T00:00:00Z").expect("fixed date")
    }
}

/// Weight of each hour of the day (UTC) and of a weekend day against a weekday.
const HOUR_WEIGHT: [f64; 24] = [
    0.15, 0.15, 0.15, 0.15, 0.15, 0.15, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 0.8, 1.0, 1.0, 1.0, 1.0, 0.7,
    0.4, 0.25, 0.2, 0.2, 0.15, 0.15,
];
const WEEKEND_WEIGHT: f64 = 0.12;
/// Pipelines have 1-3 stages of 1-5 jobs: 6 jobs on average.
const JOBS_PER_PIPELINE: f64 = 6.0;
const RUNTIME_MEDIAN_S: f64 = 400.0;
const RUNTIME_P95_S: f64 = 1750.0;

/// One generated job with the columns a GitLab export has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SynthJob {
    pub arrival: Time,
    pub id: u64,
    pub duration_ms: i64,
    pub pipeline: u64,
    pub stage: u32,
}

pub struct Generator {
    p: SynthParams,
    rng: Rng,
    next_hour: u64,
    hours: u64,
    jobs_per_hour_unit: f64,
    heap: BinaryHeap<Reverse<SynthJob>>,
    next_id: u64,
    next_pipeline: u64,
}

fn weight(hour_index: u64, start: Time) -> f64 {
    let t = start.plus_secs(hour_index as i64 * 3600);
    let days = t.floor_secs().div_euclid(86_400);
    let weekday = (days + 3).rem_euclid(7); // 1970-01-01 was a Thursday; 0 = Monday
    let hour = (t.floor_secs().rem_euclid(86_400) / 3600) as usize;
    let day_weight = if weekday >= 5 { WEEKEND_WEIGHT } else { 1.0 };
    day_weight * HOUR_WEIGHT[hour]
}

impl Generator {
    pub fn new(p: SynthParams) -> Self {
        let week: f64 = (0..168)
            .map(|h| weight(h, Time(0).plus_secs(4 * 86_400)))
            .sum();
        let jobs_per_hour_unit = p.jobs_per_day.max(0.0) * 7.0 / week;
        Generator {
            rng: Rng::derive(p.seed, "synthetic trace"),
            hours: p.days as u64 * 24,
            next_hour: 0,
            jobs_per_hour_unit,
            heap: BinaryHeap::new(),
            next_id: 1,
            next_pipeline: 1,
            p,
        }
    }

    fn runtime_ms(&mut self) -> i64 {
        let s = self
            .rng
            .lognormal(RUNTIME_MEDIAN_S, RUNTIME_P95_S)
            .clamp(5.0, 4.0 * 3600.0);
        (s * 1000.0).round() as i64
    }

    fn generate_hour(&mut self) {
        let h = self.next_hour;
        self.next_hour += 1;
        let jobs = self.jobs_per_hour_unit * weight(h, self.p.start);
        let pipelines = self.rng.poisson(jobs / JOBS_PER_PIPELINE);
        let hour_start = self.p.start.plus_secs(h as i64 * 3600);
        for _ in 0..pipelines {
            let pipeline = self.next_pipeline;
            self.next_pipeline += 1;
            let mut at = hour_start.plus_millis(self.rng.below(3_600_000) as i64);
            let stages = 1 + self.rng.below(3) as u32;
            for stage in 1..=stages {
                let n = 1 + self.rng.below(5);
                let mut longest = 0;
                for _ in 0..n {
                    let duration_ms = self.runtime_ms();
                    longest = longest.max(duration_ms);
                    self.heap.push(Reverse(SynthJob {
                        arrival: at,
                        id: self.next_id,
                        duration_ms,
                        pipeline,
                        stage,
                    }));
                    self.next_id += 1;
                }
                at = at.plus_millis(longest + 1000 + self.rng.below(4000) as i64);
            }
        }
    }

    /// The next job in arrival order, with its export columns.
    pub fn next_synth(&mut self) -> Option<SynthJob> {
        loop {
            let horizon = self.p.start.plus_secs(self.next_hour as i64 * 3600);
            let done = self.next_hour >= self.hours;
            if let Some(Reverse(top)) = self.heap.peek()
                && (done || top.arrival < horizon)
            {
                return self.heap.pop().map(|Reverse(j)| j);
            }
            if done {
                return None;
            }
            self.generate_hour();
        }
    }

    pub fn next_job(&mut self) -> Option<TraceJob> {
        self.next_synth().map(|j| TraceJob {
            id: j.id,
            arrival: j.arrival,
            duration_ms: j.duration_ms,
            queued_ms: None,
        })
    }
}

/// Write the trace as CSV with the Jobs API's column names.
pub fn write_csv(p: SynthParams, out: &mut dyn Write) -> std::io::Result<u64> {
    let mut g = Generator::new(p);
    writeln!(
        out,
        "id,pipeline_id,name,stage,status,created_at,started_at,finished_at,duration,queued_duration"
    )?;
    let mut n = 0;
    while let Some(j) = g.next_synth() {
        let start = j.arrival.to_rfc3339();
        writeln!(
            out,
            "{},{},job-{}-{},stage-{},success,{start},{start},{},{}.{:03},",
            j.id,
            j.pipeline,
            j.pipeline,
            j.id,
            j.stage,
            j.arrival.plus_millis(j.duration_ms).to_rfc3339(),
            j.duration_ms / 1000,
            j.duration_ms % 1000
        )?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(seed: u64) -> SynthParams {
        SynthParams {
            days: 14,
            jobs_per_day: 500.0,
            seed,
            start: SynthParams::default_start(),
        }
    }

    #[test]
    fn arrivals_come_in_order_with_the_asked_volume() {
        let mut g = Generator::new(params(1));
        let mut last = Time(i64::MIN);
        let mut n = 0u64;
        let mut weekend = 0u64;
        while let Some(j) = g.next_job() {
            assert!(j.arrival >= last);
            last = j.arrival;
            n += 1;
            let day = j.arrival.since(SynthParams::default_start()) / 86_400_000;
            if day % 7 >= 5 {
                weekend += 1;
            }
        }
        assert!((6_000..8_000).contains(&n), "{n} jobs for 7,000 expected");
        assert!(weekend * 10 < n, "weekends are quiet: {weekend} of {n}");
    }

    #[test]
    fn pipelines_release_several_jobs_at_once() {
        let mut g = Generator::new(params(2));
        let mut same_instant = 0;
        let mut prev = None;
        while let Some(j) = g.next_synth() {
            if prev == Some(j.arrival) {
                same_instant += 1;
            }
            prev = Some(j.arrival);
        }
        assert!(same_instant > 1000);
    }

    #[test]
    fn the_seed_decides_the_trace() {
        let take = |seed| {
            let mut g = Generator::new(params(seed));
            (0..50).map(|_| g.next_job().unwrap()).collect::<Vec<_>>()
        };
        assert_eq!(take(5), take(5));
        assert_ne!(take(5), take(6));
    }
}
