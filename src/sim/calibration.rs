//! Calibration: the waits a trace recorded (`queued_duration`, the wait each job had under the
//! settings that ran it) set against the simulated waits of the baseline, which runs those
//! same settings. A forecast deserves belief once the baseline reproduces what was observed.

use crate::stats::{Quantiles, Summary};
use serde::{Deserialize, Serialize};

/// Quantiles kept of each wait distribution, for distances and plots: 0.5%, 1%, ... 99.5%.
pub const POINTS: usize = 199;

/// The distribution's quantiles at `POINTS` evenly spaced levels, in seconds.
pub fn percentiles(q: &mut Quantiles) -> Vec<f64> {
    if q.count() == 0 {
        return Vec::new();
    }
    (1..=POINTS)
        .map(|i| q.quantile(i as f64 / (POINTS + 1) as f64) as f64 / 1000.0)
        .collect()
}

/// Gathers the recorded waits of the window's jobs, by local day.
pub struct ObservedAcc {
    clock: crate::sim::metrics::DayClock,
    all: Quantiles,
    days: Vec<(chrono::NaiveDate, Quantiles)>,
}

impl ObservedAcc {
    pub fn new(tz: chrono_tz::Tz) -> Self {
        ObservedAcc {
            clock: crate::sim::metrics::DayClock::new(tz),
            all: Quantiles::new(),
            days: Vec::new(),
        }
    }

    /// A job arriving at `arrival` (in time order) that waited `wait_ms`.
    pub fn add(&mut self, arrival: crate::core::Time, wait_ms: u64) {
        self.all.add(wait_ms);
        let (d, _, _) = self.clock.day(arrival);
        match self.days.last_mut() {
            Some((last, q)) if *last == d => q.add(wait_ms),
            _ => {
                let mut q = Quantiles::coarse();
                q.add(wait_ms);
                self.days.push((d, q));
            }
        }
    }

    /// None when no job recorded a wait.
    pub fn finish(mut self) -> Option<Observed> {
        if self.all.count() == 0 {
            return None;
        }
        Some(Observed {
            jobs: self.all.count(),
            wait_s: self.all.summary(1000.0),
            per_day: self
                .days
                .iter_mut()
                .map(|(d, q)| ObservedDay {
                    date: d.to_string(),
                    wait_p95_s: q.quantile(0.95) as f64 / 1000.0,
                    jobs: q.count(),
                })
                .collect(),
            quantiles: percentiles(&mut self.all),
        })
    }
}

/// What the trace itself recorded about the jobs in the window.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Observed {
    /// Jobs with a recorded wait (those without one are left out).
    pub jobs: u64,
    pub wait_s: Summary,
    pub per_day: Vec<ObservedDay>,
    /// Quantiles at `POINTS` levels, in seconds.
    #[serde(skip)]
    pub quantiles: Vec<f64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ObservedDay {
    pub date: String,
    /// p95 of the recorded waits of the jobs that arrived that day.
    pub wait_p95_s: f64,
    pub jobs: u64,
}

/// The baseline's simulated waits against the observed ones.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Calibration {
    /// Simulated minus observed p50, seconds (positive: the model waits longer).
    pub p50_error_s: f64,
    pub p95_error_s: f64,
    pub p99_error_s: f64,
    /// The mean absolute difference of the two quantile functions (the Wasserstein-1
    /// distance between the wait distributions), seconds: 0 when they are the same.
    pub distance: f64,
}

/// Compare simulated waits (summary and quantiles) with the observed.
pub fn calibrate(sim: &Summary, sim_q: &[f64], o: &Observed) -> Calibration {
    let n = sim_q.len().min(o.quantiles.len());
    let distance = if n == 0 {
        0.0
    } else {
        sim_q
            .iter()
            .zip(&o.quantiles)
            .map(|(a, b)| (a - b).abs())
            .sum::<f64>()
            / n as f64
    };
    Calibration {
        p50_error_s: sim.p50 - o.wait_s.p50,
        p95_error_s: sim.p95 - o.wait_s.p95,
        p99_error_s: sim.p99 - o.wait_s.p99,
        distance,
    }
}

/// The trace's recorded waits and the baseline (the first variant, which runs the settings
/// as configured) against them, when the trace recorded waits.
pub fn of_baseline(results: &[crate::sim::VariantResult]) -> Option<(&Observed, Calibration)> {
    let base = results.first()?;
    let o = base.observed.as_ref()?;
    Some((o, calibrate(&base.wait_s, &base.wait_quantiles, o)))
}

/// The calibration line of the table.
pub fn line(name: &str, c: &Calibration) -> String {
    format!(
        "calibration of {name:?} against the observed waits: p50 {:+.1}s, p95 {:+.1}s, distance {:.1}s",
        c.p50_error_s, c.p95_error_s, c.distance
    )
}

/// Differences below this never count as far off.
const NOISE_S: f64 = 5.0;

impl Calibration {
    /// When the baseline is far from what was observed (its p95 off by more than 60 s, or by
    /// more than 30% and 5 s), what to say about it.
    pub fn verdict(&self, o: &Observed) -> Option<String> {
        let e = self.p95_error_s;
        let far = e.abs() > 60.0 || (e.abs() > 0.3 * o.wait_s.p95 && e.abs() > NOISE_S);
        // A tail the model has no cause for: the slowest jobs waited far longer.
        let tail = -self.p99_error_s > 60.0 && -self.p99_error_s > o.wait_s.p99 / 2.0;
        let tail_note = if tail {
            format!(
                " Also, 1% of the jobs waited over {:.1} min in the trace against {:.1} min \
                 simulated: waits the model has no cause for (another runner's `concurrent` \
                 or `limit`, jobs waiting on resources or manual steps); calibration cannot \
                 fit them, and they dominate the distance.",
                o.wait_s.p99 / 60.0,
                (o.wait_s.p99 + self.p99_error_s) / 60.0
            )
        } else {
            String::new()
        };
        if !far {
            return tail.then(|| tail_note.trim_start().to_string());
        }
        let dir = if e > 0.0 { "longer" } else { "shorter" };
        let why = if e > 0.0 {
            "the model makes jobs wait longer than they did: the fleet that ran the trace may \
             have kept more machines warm than this config.toml says (another config ran it), \
             or its machines boot faster than [machine] boot_seconds"
        } else {
            "jobs waited longer than the model explains: for a machine to boot (boot_seconds \
             too short, creation failures), or for reasons outside this runner: `concurrent` \
             or `limit` of the runner that ran them, other runners sharing the jobs, or \
             manual and dependency waits counted in queued_duration"
        };
        Some(format!(
            "the baseline's p95 wait is {:.1}s {dir} than observed ({:.1}s simulated, {:.1}s \
             observed): {why}. `scalecast calibrate SCENARIO --fit boot_seconds` fits it.{tail_note}",
            e.abs(),
            o.wait_s.p95 + e,
            o.wait_s.p95
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(waits: &[u64]) -> (Summary, Vec<f64>, Observed) {
        let mut q = Quantiles::new();
        for w in waits {
            q.add(*w);
        }
        let s = q.summary(1000.0);
        let p = percentiles(&mut q);
        (
            s.clone(),
            p.clone(),
            Observed {
                jobs: waits.len() as u64,
                wait_s: s,
                per_day: Vec::new(),
                quantiles: p,
            },
        )
    }

    #[test]
    fn the_same_waits_are_at_distance_zero_and_a_shift_is_its_size() {
        let waits: Vec<u64> = (0..1000).map(|i| i * 100).collect();
        let (s, p, o) = observed(&waits);
        let c = calibrate(&s, &p, &o);
        assert_eq!(c, Calibration::default());
        assert!(c.verdict(&o).is_none());
        let later: Vec<u64> = waits.iter().map(|w| w + 90_000).collect();
        let (s, p, _) = observed(&later);
        let c = calibrate(&s, &p, &o);
        assert!((c.distance - 90.0).abs() < 1e-9, "{c:?}");
        assert!((c.p95_error_s - 90.0).abs() < 1e-9);
        let v = c.verdict(&o).expect("90 s off is far");
        assert!(v.contains("longer than observed"), "{v}");
    }

    #[test]
    fn small_differences_are_not_far_off() {
        let (_, _, o) = observed(&[100, 200, 300]);
        let c = Calibration {
            p50_error_s: 1.0,
            p95_error_s: 2.0,
            p99_error_s: 2.0,
            distance: 1.0,
        };
        assert!(c.verdict(&o).is_none(), "2 s on 0.3 s is noise");
    }
}
