//! `scalecast trace stats`: what a trace holds, in one pass.

use crate::core::Time;
use crate::stats::{Quantiles, Summary};
use crate::trace::{TraceJob, TraceResult};
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct TraceStats {
    pub jobs: u64,
    pub first_arrival: Option<String>,
    pub last_end: Option<String>,
    pub span_days: f64,
    /// Arrivals by weekday (0 = Monday) and hour of day, UTC.
    pub arrivals_by_weekday_hour: Vec<Vec<u64>>,
    pub runtime_s: Summary,
    /// Records read but not replayed: never ran, another runner's, duplicates.
    pub skipped: crate::trace::Skipped,
}

pub fn compute(jobs: impl Iterator<Item = TraceResult<TraceJob>>) -> TraceResult<TraceStats> {
    let mut n = 0u64;
    let (mut first, mut last): (Option<Time>, Option<Time>) = (None, None);
    let mut grid = vec![vec![0u64; 24]; 7];
    let mut runtimes = Quantiles::new();
    for j in jobs {
        let j = j?;
        n += 1;
        first = Some(first.map_or(j.arrival, |f| f.min(j.arrival)));
        last = Some(last.map_or(j.end(), |l| l.max(j.end())));
        let secs = j.arrival.floor_secs();
        let weekday = (secs.div_euclid(86_400) + 3).rem_euclid(7) as usize;
        let hour = (secs.rem_euclid(86_400) / 3600) as usize;
        grid[weekday][hour] += 1;
        runtimes.add(j.duration_ms.max(0) as u64);
    }
    Ok(TraceStats {
        jobs: n,
        first_arrival: first.map(|t| t.to_rfc3339()),
        last_end: last.map(|t| t.to_rfc3339()),
        span_days: match (first, last) {
            (Some(f), Some(l)) => l.since(f) as f64 / 86_400_000.0,
            _ => 0.0,
        },
        arrivals_by_weekday_hour: grid,
        runtime_s: runtimes.summary(1000.0),
        skipped: Default::default(),
    })
}

impl TraceStats {
    /// A readable summary for the terminal.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!("jobs          {}\n", self.jobs));
        out.push_str(&format!(
            "span          {} .. {} ({:.1} days)\n",
            self.first_arrival.as_deref().unwrap_or("-"),
            self.last_end.as_deref().unwrap_or("-"),
            self.span_days
        ));
        let k = &self.skipped;
        out.push_str(&format!(
            "skipped       {} never ran, {} another runner's, {} duplicates\n",
            k.never_ran, k.other_runner, k.duplicates
        ));
        let r = &self.runtime_s;
        out.push_str(&format!(
            "runtime (s)   mean {:.0}  p50 {:.0}  p90 {:.0}  p95 {:.0}  p99 {:.0}  max {:.0}\n",
            r.mean, r.p50, r.p90, r.p95, r.p99, r.max
        ));
        out.push_str("\narrivals by weekday and hour (UTC)\n     ");
        for h in 0..24 {
            out.push_str(&format!("{h:>5}"));
        }
        out.push('\n');
        for (d, name) in ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
            .iter()
            .enumerate()
        {
            out.push_str(&format!("{name}  "));
            for h in 0..24 {
                out.push_str(&format!("{:>5}", self.arrivals_by_weekday_hour[d][h]));
            }
            out.push('\n');
        }
        out
    }
}
