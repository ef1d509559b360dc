//! What-if sweeps: every combination of a grid of settings, simulated on all cores over the
//! same arrivals and seed, and the cheapest combination that meets a wait target.
//! Results are stored by combination index, so the number of threads never changes them.

use crate::config::overrides::{self, SetValue};
use crate::config::scenario::Scenario;
use crate::sim::run::{NoObserver, SimConfig, SimError, simulate};
use crate::sim::{VariantResult, WorldModel};
use crate::trace::TraceJob;
use serde::Serialize;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One axis of a grid: a key and its values.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub key: String,
    pub values: Vec<SetValue>,
}

/// A command-line value that cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArgError {
    #[error("--grid {0:?}: expected KEY=V1,V2,...")]
    NotAxis(String),
    #[error("--grid {0:?}: no values")]
    NoValues(String),
    #[error("{0:?}: expected a duration like 60s, 2m or 1h")]
    NotDuration(String),
    #[error("{0:?}: unknown unit {1:?} (ms, s, m, h)")]
    Unit(String, String),
    #[error("{0:?}: expected a duration >= 0")]
    Negative(String),
}

/// `IdleCount=0,2,5` into an axis.
pub fn parse_axis(s: &str) -> Result<Axis, ArgError> {
    let (k, vs) = s
        .split_once('=')
        .ok_or_else(|| ArgError::NotAxis(s.to_string()))?;
    let values: Vec<SetValue> = vs
        .split(',')
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(|v| SetValue::Text(v.to_string()))
        .collect();
    if values.is_empty() {
        return Err(ArgError::NoValues(s.to_string()));
    }
    Ok(Axis {
        key: k.trim().to_string(),
        values,
    })
}

/// The most combinations a sweep runs unless `SCALECAST_MAX_COMBINATIONS` says otherwise:
/// each holds its settings in memory before any runs.
pub const MAX_COMBINATIONS: usize = 100_000;

pub fn max_combinations() -> usize {
    std::env::var("SCALECAST_MAX_COMBINATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(MAX_COMBINATIONS)
}

/// How many combinations a grid has (None past usize).
pub fn count(axes: &[Axis]) -> Option<usize> {
    axes.iter()
        .try_fold(1usize, |n, a| n.checked_mul(a.values.len()))
}

/// Every combination, the first axis varying slowest.
pub fn combinations(axes: &[Axis]) -> Vec<Vec<(String, SetValue)>> {
    let mut out: Vec<Vec<(String, SetValue)>> = vec![Vec::new()];
    for a in axes {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                a.values.iter().map(move |v| {
                    let mut c = prefix.clone();
                    c.push((a.key.clone(), v.clone()));
                    c
                })
            })
            .collect();
    }
    out
}

/// One simulated combination.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// The settings it changed, as `KEY=VALUE`.
    pub set: Vec<(String, String)>,
    #[serde(flatten)]
    pub result: VariantResult,
}

/// Which wait a target is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    P95,
    P99,
    Mean,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::P95 => "p95",
            Metric::P99 => "p99",
            Metric::Mean => "mean",
        }
    }
    pub fn of(self, r: &VariantResult) -> f64 {
        match self {
            Metric::P95 => r.wait_s.p95,
            Metric::P99 => r.wait_s.p99,
            Metric::Mean => r.wait_s.mean,
        }
    }
}

/// "60s", "2m", "1h", "90" (seconds) into seconds.
pub fn parse_duration(s: &str) -> Result<f64, ArgError> {
    let t = s.trim();
    let (num, unit) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&t[..i], &t[i..]),
        None => (t, "s"),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| ArgError::NotDuration(s.to_string()))?;
    let f = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(ArgError::Unit(s.to_string(), unit.to_string())),
    };
    if !n.is_finite() || n < 0.0 {
        return Err(ArgError::Negative(s.to_string()));
    }
    Ok(n * f)
}

/// Cost per 30 days, or over the window when it is shorter than a day.
pub fn monthly(r: &VariantResult) -> f64 {
    if r.days >= 1.0 {
        r.cost_usd / r.days * 30.0
    } else {
        r.cost_usd
    }
}

/// The pick for a target: the cheapest row meeting it (all jobs finished), or the closest.
#[derive(Clone, Debug, Serialize)]
pub struct Recommendation {
    pub metric: Metric,
    pub target_s: f64,
    /// Index into the rows.
    pub row: usize,
    /// Whether it meets the target (else it is the closest).
    pub meets: bool,
}

pub fn recommend(rows: &[Row], metric: Metric, target_s: f64) -> Option<Recommendation> {
    let ok = |r: &VariantResult| r.jobs_unfinished == 0 && metric.of(r) <= target_s;
    let best = (0..rows.len())
        .filter(|&i| ok(&rows[i].result))
        .min_by(|&a, &b| {
            let (ra, rb) = (&rows[a].result, &rows[b].result);
            ra.cost_usd
                .total_cmp(&rb.cost_usd)
                .then(metric.of(ra).total_cmp(&metric.of(rb)))
                .then(a.cmp(&b))
        });
    if let Some(row) = best {
        return Some(Recommendation {
            metric,
            target_s,
            row,
            meets: true,
        });
    }
    (0..rows.len())
        .min_by(|&a, &b| {
            let (ra, rb) = (&rows[a].result, &rows[b].result);
            ra.jobs_unfinished
                .cmp(&rb.jobs_unfinished)
                .then(metric.of(ra).total_cmp(&metric.of(rb)))
                .then(ra.cost_usd.total_cmp(&rb.cost_usd))
                .then(a.cmp(&b))
        })
        .map(|row| Recommendation {
            metric,
            target_s,
            row,
            meets: false,
        })
}

/// Why a sweep stopped.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// A grid value that does not apply (exit 2).
    #[error("--grid {0}")]
    Grid(#[from] crate::config::overrides::OverrideError),
    /// The scenario's input (exit 2).
    #[error("{0}")]
    Input(SimError),
    /// A combination failed while running (exit 1).
    #[error("combination {index}: {error}")]
    Run { index: usize, error: SimError },
}

impl SweepError {
    pub fn is_input(&self) -> bool {
        !matches!(self, SweepError::Run { .. })
    }
}

/// Run the current config and every combination; `progress(done, total)` after each.
pub fn run(
    sc: &Scenario,
    world: &WorldModel,
    arrivals: &[TraceJob],
    combos: &[Vec<(String, SetValue)>],
    threads: usize,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<(Row, Vec<Row>), SweepError> {
    let base = &sc.variants[0];
    // Check every combination before running any.
    let mut configs = Vec::with_capacity(combos.len() + 1);
    configs.push((Vec::new(), base.settings.clone(), base.engine));
    for c in combos {
        let mut s = base.settings.clone();
        let mut e = base.engine;
        for (k, v) in c {
            overrides::apply(&mut s, &mut e, k, v).map_err(SweepError::Grid)?;
        }
        let set = c.iter().map(|(k, v)| (k.clone(), v.to_string())).collect();
        configs.push((set, s, e));
    }
    let total = configs.len();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<Result<VariantResult, SimError>>>> =
        Mutex::new((0..total).map(|_| None).collect());
    let worker = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= total {
                break;
            }
            let (set, settings, engine) = &configs[i];
            let name = if i == 0 {
                "current".to_string()
            } else {
                set.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let cfg = SimConfig {
                name,
                settings: settings.clone(),
                engine: *engine,
                world: world.clone(),
                seed: sc.seed,
                start: sc.start,
                end: sc.end,
                tz: sc.tz,
            };
            let mut it = arrivals.iter().copied().map(Ok);
            let r = simulate(&cfg, &mut it, &mut NoObserver, &mut |_| {});
            slots.lock().expect("no panic while held")[i] = Some(r);
            let d = done.fetch_add(1, Ordering::Relaxed) + 1;
            progress(d, total);
        }
    };
    std::thread::scope(|s| {
        for _ in 0..threads.max(1).min(total) {
            s.spawn(worker);
        }
    });
    let mut rows = Vec::with_capacity(total);
    for (i, slot) in slots
        .into_inner()
        .expect("threads joined")
        .into_iter()
        .enumerate()
    {
        let r = slot.expect("every combination ran").map_err(|error| {
            if error.is_input() {
                SweepError::Input(error)
            } else {
                SweepError::Run { index: i, error }
            }
        })?;
        rows.push(Row {
            set: configs[i].0.clone(),
            result: r,
        });
    }
    let current = rows.remove(0);
    Ok((current, rows))
}

/// The lines to paste into config.toml for a row's settings, each under a comment naming
/// the section it goes in (no table headers: pasting must not add a second runner). Values
/// are written as GitLab reads them: IdleScaleFactor as a float.
pub fn config_lines(set: &[(String, String)]) -> String {
    let mut top = Vec::new();
    let mut runner = Vec::new();
    let mut machine = Vec::new();
    let mut entries: std::collections::BTreeMap<usize, Vec<String>> = Default::default();
    let mut other = Vec::new();
    let value = |field: &str, v: &str| {
        if field.eq_ignore_ascii_case("IdleScaleFactor") && !v.contains(['.', 'e', 'E']) {
            format!("{v}.0")
        } else {
            v.to_string()
        }
    };
    for (k, v) in set {
        let lk = k.to_ascii_lowercase();
        if let Some(rest) = lk.strip_prefix("autoscaling.")
            && let Some((n, _)) = rest.split_once('.')
            && let Ok(n) = n.parse::<usize>()
        {
            let field = &k[k.rfind('.').map_or(0, |i| i + 1)..];
            entries.entry(n).or_default().push(format!(
                "    {} = {}",
                canonical(field),
                value(field, v)
            ));
            continue;
        }
        match lk.as_str() {
            "concurrent" | "check_interval" => top.push(format!("{lk} = {v}")),
            "limit" => runner.push(format!("  limit = {v}")),
            "engine" => other.push(format!("# engine: {v} (a scalecast setting, not GitLab's)")),
            _ => machine.push(format!("    {} = {}", canonical(k), value(k, v))),
        }
    }
    let mut out = Vec::new();
    if !top.is_empty() {
        out.push("# at the top of the file, before any [[runners]]:".into());
        out.extend(top);
    }
    if !runner.is_empty() {
        out.push("# in this runner's [[runners]] entry, replacing the line there:".into());
        out.extend(runner);
    }
    if !machine.is_empty() {
        out.push("# in its [runners.machine], replacing the lines there:".into());
        out.extend(machine);
    }
    for (n, lines) in entries {
        out.push(format!(
            "# in its autoscaling entry {n} (the {} [[runners.machine.autoscaling]]), keeping its Periods and Timezone:",
            ordinal(n + 1)
        ));
        out.extend(lines);
    }
    out.extend(other);
    out.join("\n")
}

fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (1, 11) | (2, 12) | (3, 13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// A pick at the end of an axis: the best value may lie beyond the grid.
pub fn edge_notes(axes: &[Axis], set: &[(String, String)]) -> Vec<String> {
    let mut notes = Vec::new();
    for a in axes {
        let Some((_, v)) = set.iter().find(|(k, _)| *k == a.key) else {
            continue;
        };
        let nums: Vec<f64> = a
            .values
            .iter()
            .filter_map(|x| x.to_string().parse::<f64>().ok())
            .collect();
        let (Ok(x), true) = (
            v.parse::<f64>(),
            nums.len() >= 2 && nums.len() == a.values.len(),
        ) else {
            continue;
        };
        let lo = nums.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = nums.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let side = if x <= lo && lo > 0.0 {
            Some("lowest")
        } else if x >= hi {
            Some("highest")
        } else {
            None
        };
        if let Some(side) = side {
            notes.push(format!(
                "{} = {v} is the {side} value of the grid: a better value may lie beyond it; widen the grid on that side",
                a.key
            ));
        }
    }
    notes
}

/// GitLab's spelling of a key given in any case.
fn canonical(k: &str) -> String {
    const KEYS: [&str; 6] = [
        "IdleCount",
        "IdleCountMin",
        "IdleScaleFactor",
        "IdleTime",
        "MaxBuilds",
        "MaxGrowthRate",
    ];
    KEYS.iter()
        .find(|c| c.eq_ignore_ascii_case(k))
        .map_or(k.to_string(), |c| c.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_combinations_in_order() {
        let axes = vec![
            parse_axis("IdleCount=0,2").unwrap(),
            parse_axis("IdleTime=60,600,1800").unwrap(),
        ];
        let c = combinations(&axes);
        assert_eq!(c.len(), 6);
        assert_eq!(c[1][1].1.to_string(), "600");
        assert_eq!(c[3][0].1.to_string(), "2");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60s").unwrap(), 60.0);
        assert_eq!(parse_duration("2m").unwrap(), 120.0);
        assert_eq!(parse_duration("90").unwrap(), 90.0);
        assert_eq!(
            parse_duration("soon"),
            Err(ArgError::NotDuration("soon".into()))
        );
        assert_eq!(
            parse_duration("5d"),
            Err(ArgError::Unit("5d".into(), "d".into()))
        );
        assert_eq!(
            parse_axis("IdleCount="),
            Err(ArgError::NoValues("IdleCount=".into()))
        );
    }

    #[test]
    fn config_lines_by_section() {
        let set = vec![
            ("idlecount".to_string(), "5".to_string()),
            ("autoscaling.0.IdleCount".to_string(), "20".to_string()),
            ("limit".to_string(), "40".to_string()),
        ];
        let l = config_lines(&set);
        assert!(l.contains("[runners.machine], replacing the lines there:\n    IdleCount = 5"));
        assert!(l.contains("autoscaling entry 0 (the 1st [[runners.machine.autoscaling]])"));
        assert!(l.contains("[[runners]] entry, replacing the line there:\n  limit = 40"));
        // Pasting adds no table: every header is a comment.
        assert!(l.lines().all(|x| !x.trim_start().starts_with('[')), "{l}");
    }

    #[test]
    fn idle_scale_factor_is_pasted_as_a_float() {
        let set = vec![
            ("IdleScaleFactor".to_string(), "1".to_string()),
            ("autoscaling.1.idlescalefactor".to_string(), "2".to_string()),
            ("IdleCount".to_string(), "1".to_string()),
        ];
        let l = config_lines(&set);
        assert!(l.contains("    IdleScaleFactor = 1.0\n"), "{l}");
        assert!(l.contains("    IdleScaleFactor = 2.0"), "{l}");
        assert!(
            l.contains("    IdleCount = 1\n") || l.ends_with("IdleCount = 1"),
            "{l}"
        );
    }

    #[test]
    fn a_pick_at_the_edge_of_the_grid_is_flagged() {
        let axes = vec![
            parse_axis("IdleCount=0,2,5").unwrap(),
            parse_axis("IdleTime=60,600,1800").unwrap(),
        ];
        let pick = |c: &str, t: &str| {
            edge_notes(
                &axes,
                &[
                    ("IdleCount".to_string(), c.to_string()),
                    ("IdleTime".to_string(), t.to_string()),
                ],
            )
        };
        assert!(pick("2", "600").is_empty());
        let n = pick("5", "60");
        assert_eq!(n.len(), 2, "{n:?}");
        assert!(n[0].contains("IdleCount = 5 is the highest"), "{n:?}");
        assert!(n[1].contains("IdleTime = 60 is the lowest"), "{n:?}");
        // Zero is the floor of a count: nothing lies below it.
        assert!(pick("0", "600").is_empty());
    }
}
