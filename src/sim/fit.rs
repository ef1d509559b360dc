//! `scalecast calibrate`: fit what a scenario cannot know (how long machines boot, how often
//! creating one fails, how long the runner takes to pick a job up) so that the baseline's
//! simulated waits match the waits the trace recorded.
//!
//! The search is deterministic and bounded: for each parameter in turn (twice round when there
//! are several), a grid over its range, then four finer grids around the best point; every
//! candidate is a whole run of the baseline with the scenario's seed (common random numbers,
//! so candidates differ only by the parameter), candidates run on all cores, and the best is
//! the smallest distance, ties to the earlier candidate. Same inputs, same fit, on any number
//! of threads.

use crate::config::scenario::{Boot, Scenario};
use crate::sim::calibration::{Calibration, Observed, calibrate};
use crate::sim::scenario_run::{Prepared, parallel_map, run_variant_in};
use crate::sim::{NoObserver, SimError, WorldModel};
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// A parameter `calibrate --fit` can fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Param {
    /// The boot time's median (a fixed boot time, or a distribution scaled with it).
    BootSeconds,
    /// The boot time's p95 (the median kept): the spread of boot times.
    BootP95,
    CreateFailureProbability,
    /// The runner's pick-up delay.
    PickupSeconds,
}

impl Param {
    pub const ALL: [Param; 4] = [
        Param::BootSeconds,
        Param::BootP95,
        Param::CreateFailureProbability,
        Param::PickupSeconds,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Param::BootSeconds => "boot_seconds",
            Param::BootP95 => "boot_p95",
            Param::CreateFailureProbability => "create_failure_probability",
            Param::PickupSeconds => "pickup_seconds",
        }
    }

    /// The range searched, and whether its grid is spaced by ratio (for times).
    fn range(self, w: &WorldModel) -> (f64, f64, bool) {
        match self {
            Param::BootSeconds => (1.0, 1800.0, true),
            Param::BootP95 => {
                let m = boot_median(&w.boot).max(0.001);
                (m, 10.0 * m, true)
            }
            Param::CreateFailureProbability => (0.0, 0.8, false),
            Param::PickupSeconds => (0.0, 120.0, false),
        }
    }

    pub fn get(self, w: &WorldModel) -> f64 {
        match self {
            Param::BootSeconds => boot_median(&w.boot),
            Param::BootP95 => boot_p95(&w.boot),
            Param::CreateFailureProbability => w.create_failure_probability,
            Param::PickupSeconds => w.pickup_seconds,
        }
    }

    pub fn set(self, w: &WorldModel, v: f64) -> WorldModel {
        let mut w = w.clone();
        match self {
            Param::BootSeconds => {
                w.boot = match &w.boot {
                    Boot::Fixed(_) => Boot::Fixed(v),
                    Boot::LogNormal { median, p95 } => Boot::LogNormal {
                        median: v,
                        p95: v * p95 / median.max(1e-9),
                    },
                    Boot::Samples(s) => {
                        let m = boot_median(&w.boot).max(1e-9);
                        Boot::Samples(s.iter().map(|x| x * v / m).collect())
                    }
                }
            }
            Param::BootP95 => {
                let m = boot_median(&w.boot);
                w.boot = Boot::LogNormal {
                    median: m,
                    p95: v.max(m),
                }
            }
            Param::CreateFailureProbability => w.create_failure_probability = v,
            Param::PickupSeconds => w.pickup_seconds = v,
        }
        w
    }
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Param {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        Param::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Param::ALL.iter().map(|p| p.name()).collect();
                format!("unknown parameter {s:?}: use {}", names.join(", "))
            })
    }
}

/// The nearest-rank quantile `q` of boot samples (0 for none). At 0.5 it is the upper median,
/// as before: `v[len / 2]` of the sorted samples.
fn sample_quantile(v: &[f64], q: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let i = if q == 0.5 {
        v.len() / 2
    } else {
        ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len().max(1)) - 1
    };
    v.get(i).copied().unwrap_or(0.0)
}

fn boot_median(b: &Boot) -> f64 {
    match b {
        Boot::Fixed(s) => *s,
        Boot::LogNormal { median, .. } => *median,
        Boot::Samples(v) => sample_quantile(v, 0.5),
    }
}

fn boot_p95(b: &Boot) -> f64 {
    match b {
        Boot::Fixed(s) => *s,
        Boot::LogNormal { p95, .. } => *p95,
        Boot::Samples(v) => sample_quantile(v, 0.95),
    }
}

/// The fitted world, and how far the baseline was from the observed waits before and after.
#[derive(Clone, Debug, Serialize)]
pub struct Fit {
    pub variant: String,
    /// Jobs with a recorded wait.
    pub observed_jobs: u64,
    /// `boot_seconds_median`, `boot_seconds_p95` (for a distribution),
    /// `create_failure_probability`, `pickup_seconds`: each fitted value.
    pub fit: std::collections::BTreeMap<String, f64>,
    pub before: Calibration,
    pub after: Calibration,
    /// Runs of the baseline the search made.
    pub runs: u64,
    #[serde(skip)]
    pub world: WorldModel,
    #[serde(skip)]
    pub start: WorldModel,
    #[serde(skip)]
    pub params: Vec<Param>,
}

impl Fit {
    /// The `[machine]` lines to paste into the scenario.
    pub fn snippet(&self) -> String {
        let mut out = String::from("[machine]\n");
        let w = &self.world;
        if self
            .params
            .iter()
            .any(|p| matches!(p, Param::BootSeconds | Param::BootP95))
        {
            out.push_str(&match &w.boot {
                Boot::Fixed(s) => format!("boot_seconds = {}\n", round(*s, 1)),
                Boot::LogNormal { median, p95 } => format!(
                    "boot_seconds = {{ median = {}, p95 = {} }}\n",
                    round(*median, 1),
                    round(*p95, 1)
                ),
                Boot::Samples(v) => format!(
                    "boot_seconds = {{ samples = [{}] }}\n",
                    v.iter()
                        .map(|x| round(*x, 1).to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        if self.params.contains(&Param::CreateFailureProbability) {
            out.push_str(&format!(
                "create_failure_probability = {}\n",
                round(w.create_failure_probability, 3)
            ));
        }
        if self.params.contains(&Param::PickupSeconds) {
            out.push_str(&format!(
                "pickup_seconds = {}\n",
                round(w.pickup_seconds, 1)
            ));
        }
        out
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// Why a scenario cannot be calibrated.
#[derive(Debug)]
pub enum FitError {
    /// The trace records no wait for the jobs in the window.
    NothingObserved,
    Sim(SimError),
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FitError::NothingObserved => write!(
                f,
                "the trace records no wait (queued_duration) for the jobs in the window: there is nothing to calibrate against"
            ),
            FitError::Sim(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for FitError {}

/// Points of the first grid over a range, and of each finer one.
const GRID: usize = 12;
const FINE: usize = 9;
const ROUNDS: usize = 4;

fn grid(lo: f64, hi: f64, n: usize, ratio: bool) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let f = i as f64 / (n - 1) as f64;
            if ratio && lo > 0.0 {
                lo * (hi / lo).powf(f)
            } else {
                lo + (hi - lo) * f
            }
        })
        .collect()
}

/// Fit `params` of the baseline's world to the observed waits.
pub fn fit(
    sc: &Scenario,
    prepared: &Prepared,
    params: &[Param],
    threads: usize,
    progress: &mut dyn FnMut(u64),
) -> Result<Fit, FitError> {
    let variant = &sc.variants[0];
    let run = |w: &WorldModel| -> Result<(Calibration, Option<Observed>), SimError> {
        let r = run_variant_in(
            sc,
            prepared,
            variant,
            w,
            &mut NoObserver,
            &mut |_| {},
            crate::drive::NoLog,
        )?;
        let o = r.observed.clone();
        let c = o
            .as_ref()
            .map(|o| calibrate(&r.wait_s, &r.wait_quantiles, o))
            .unwrap_or_default();
        Ok((c, o))
    };
    let start = prepared.world.clone();
    let (before, observed) = run(&start).map_err(FitError::Sim)?;
    let observed = observed.ok_or(FitError::NothingObserved)?;
    let mut runs = 1u64;
    let mut world = start.clone();
    let mut best = before;
    let sweeps = if params.len() > 1 { 2 } else { 1 };
    for _ in 0..sweeps {
        for &p in params {
            let (lo, hi, ratio) = p.range(&world);
            let mut candidates = grid(lo, hi, GRID, ratio);
            for round in 0..=ROUNDS {
                let worlds: Vec<WorldModel> =
                    candidates.iter().map(|v| p.set(&world, *v)).collect();
                let results = parallel_map(&worlds, threads, |_, w| run(w).map(|r| r.0));
                runs += worlds.len() as u64;
                progress(runs);
                let mut pick: Option<(usize, Calibration)> = None;
                for (i, r) in results.into_iter().enumerate() {
                    let c = r.map_err(FitError::Sim)?;
                    if pick.is_none_or(|(_, b)| c.distance < b.distance) {
                        pick = Some((i, c));
                    }
                }
                let Some((i, c)) = pick else { break };
                // Keep the world as it was unless a candidate is closer.
                if c.distance < best.distance {
                    best = c;
                    world = worlds[i].clone();
                }
                if round == ROUNDS {
                    break;
                }
                let a = candidates[i.saturating_sub(1)];
                let b = candidates[(i + 1).min(candidates.len() - 1)];
                candidates = grid(a, b, FINE, ratio && a > 0.0);
            }
        }
    }
    let mut fitted = std::collections::BTreeMap::new();
    for p in params {
        match p {
            Param::BootSeconds | Param::BootP95 => {
                fitted.insert("boot_seconds_median".into(), boot_median(&world.boot));
                if !matches!(world.boot, Boot::Fixed(_)) {
                    fitted.insert("boot_seconds_p95".into(), boot_p95(&world.boot));
                }
            }
            Param::CreateFailureProbability => {
                fitted.insert(
                    "create_failure_probability".into(),
                    world.create_failure_probability,
                );
            }
            Param::PickupSeconds => {
                fitted.insert("pickup_seconds".into(), world.pickup_seconds);
            }
        }
    }
    Ok(Fit {
        variant: variant.name.clone(),
        observed_jobs: observed.jobs,
        fit: fitted,
        before,
        after: best,
        runs,
        world,
        start,
        params: params.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids_span_their_range_evenly_or_by_ratio() {
        assert_eq!(grid(0.0, 1.0, 3, false), vec![0.0, 0.5, 1.0]);
        let g = grid(1.0, 100.0, 3, true);
        assert!((g[1] - 10.0).abs() < 1e-9 && (g[2] - 100.0).abs() < 1e-9);
    }

    #[test]
    fn parameters_parse_and_unknown_ones_list_the_choices() {
        assert_eq!("boot_seconds".parse::<Param>(), Ok(Param::BootSeconds));
        let e = "boot".parse::<Param>().unwrap_err();
        assert!(e.contains("pickup_seconds"), "{e}");
    }

    #[test]
    fn setting_the_boot_median_keeps_the_spread() {
        let w = WorldModel::resolve(
            "m5.large",
            "us-east-1",
            true,
            16.0,
            &crate::sim::WorldOverrides {
                boot: Some(Boot::LogNormal {
                    median: 60.0,
                    p95: 120.0,
                }),
                ..Default::default()
            },
        )
        .unwrap();
        let w2 = Param::BootSeconds.set(&w, 30.0);
        assert_eq!(
            w2.boot,
            Boot::LogNormal {
                median: 30.0,
                p95: 60.0
            }
        );
        assert_eq!(Param::BootSeconds.get(&w2), 30.0);
        assert_eq!(
            Param::BootP95.set(&w2, 10.0).boot,
            Boot::LogNormal {
                median: 30.0,
                p95: 30.0
            }
        );
    }
}
