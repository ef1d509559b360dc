//! What-if sweeps: every combination of a grid of settings, simulated on all cores over the
//! same arrivals and seed, and the cheapest combination that meets a wait target.
//! Results are stored by combination index, so the number of threads never changes them.

use crate::config::overrides::{self, SetValue};
use crate::config::scenario::Scenario;
use crate::sim::run::{NoObserver, SimConfig, SimError, simulate};
use crate::sim::{VariantResult, WorldModel};
use crate::trace::TraceJob;
use serde::{Deserialize, Serialize};
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
    #[error("{0:?}: expected a duration like 60s, 2m, 1h or 7d")]
    NotDuration(String),
    #[error("{0:?}: unknown unit {1:?} (ms, s, m, h, d)")]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// The settings it changed, as `KEY=VALUE`.
    pub set: Vec<(String, String)>,
    #[serde(flatten)]
    pub result: VariantResult,
}

/// Which wait a target is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

/// "60s", "2m", "1h", "7d", "90" (seconds) into seconds.
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
        "d" => 86_400.0,
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    let (current, rows) = run_part(sc, world, arrivals, combos, None, threads, progress)?;
    Ok((
        current.expect("the whole sweep runs the current config"),
        rows.into_iter().map(|(_, r)| r).collect(),
    ))
}

/// One shard of a sweep: every `of`-th combination from `index` (0-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub of: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    /// `I/N`, 0 <= I < N.
    fn from_str(s: &str) -> Result<Shard, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?}: expected I/N, e.g. 0/4"))?;
        let num = |v: &str| {
            v.trim()
                .parse::<usize>()
                .map_err(|_| format!("{s:?}: {v:?} is not a whole number"))
        };
        let (index, of) = (num(i)?, num(n)?);
        if of == 0 || index >= of {
            return Err(format!("{s:?}: needs 0 <= I < N (shards count from 0)"));
        }
        Ok(Shard { index, of })
    }
}

impl Shard {
    /// Whether combination `i` (0-based) is this shard's.
    pub fn has(&self, i: usize) -> bool {
        i % self.of == self.index
    }
    /// Shard 0 also runs the current config.
    pub fn has_current(&self) -> bool {
        self.index == 0
    }
}

/// The current config's row (when run) and each combination's row with its index.
pub type PartRows = (Option<Row>, Vec<(usize, Row)>);

/// Run the current config (unless `part` is a shard other than 0) and the combinations of
/// `part` (every one when None), each with its index among all the combinations.
pub fn run_part(
    sc: &Scenario,
    world: &WorldModel,
    arrivals: &[TraceJob],
    combos: &[Vec<(String, SetValue)>],
    part: Option<Shard>,
    threads: usize,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<PartRows, SweepError> {
    let base = &sc.variants[0];
    // Check every combination before running any (all of them, in every shard, so that a
    // bad grid fails the same everywhere).
    let mut configs = Vec::with_capacity(combos.len() + 1);
    if part.is_none_or(|p| p.has_current()) {
        configs.push((None, Vec::new(), base.settings.clone(), base.engine));
    }
    for (i, c) in combos.iter().enumerate() {
        let mut s = base.settings.clone();
        let mut e = base.engine;
        for (k, v) in c {
            overrides::apply(&mut s, &mut e, k, v).map_err(SweepError::Grid)?;
        }
        if part.is_none_or(|p| p.has(i)) {
            let set = c.iter().map(|(k, v)| (k.clone(), v.to_string())).collect();
            configs.push((Some(i), set, s, e));
        }
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
            let (index, set, settings, engine) = &configs[i];
            let name = match index {
                None => "current".to_string(),
                Some(_) => set
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" "),
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
                attribution: None,
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
    let mut current = None;
    let mut rows = Vec::with_capacity(total);
    for (slot, (index, set, _, _)) in slots
        .into_inner()
        .expect("threads joined")
        .into_iter()
        .zip(configs)
    {
        let r = slot.expect("every combination ran").map_err(|error| {
            if error.is_input() {
                SweepError::Input(error)
            } else {
                // Numbered as before: the current config is 0, combination i is i + 1.
                SweepError::Run {
                    index: index.map_or(0, |i| i + 1),
                    error,
                }
            }
        })?;
        let row = Row { set, result: r };
        match index {
            None => current = Some(row),
            Some(i) => rows.push((i, row)),
        }
    }
    Ok((current, rows))
}

/// What one shard of a sweep hands to `sweep merge`: its rows by combination index, and what
/// it ran on (`fingerprint`: the scenario, config and trace it read, the grid and the seed),
/// so that shards of different sweeps are never merged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardResult {
    pub format: String,
    pub shard: Shard,
    pub fingerprint: String,
    /// The scenario as named on the command line (sweep.json repeats it).
    pub scenario: String,
    pub seed: u64,
    /// The `--grid` arguments, as given.
    pub grid: Vec<String>,
    /// The wait target, if one was given: the metric and seconds.
    pub target: Option<(Metric, f64)>,
    pub combinations: usize,
    pub current: Option<Row>,
    pub rows: Vec<(usize, Row)>,
}

pub const SHARD_FORMAT: &str = "scalecast-sweep-shard/1";

/// A digest of what a sweep ran on: `parts` (the input files as read, the arguments) and every
/// arrival of the trace.
pub fn fingerprint(parts: &[Vec<u8>], arrivals: &[TraceJob]) -> String {
    let mut bytes =
        Vec::with_capacity(parts.iter().map(Vec::len).sum::<usize>() + arrivals.len() * 24);
    for p in parts {
        bytes.extend_from_slice(&(p.len() as u64).to_le_bytes());
        bytes.extend_from_slice(p);
    }
    for j in arrivals {
        bytes.extend_from_slice(&j.id.to_le_bytes());
        bytes.extend_from_slice(&j.arrival.0.to_le_bytes());
        bytes.extend_from_slice(&j.duration_ms.to_le_bytes());
    }
    format!("{:016x}", crate::journal::fnv1a(&bytes))
}

/// Why shards do not merge.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("no shards given")]
    Empty,
    #[error("{0}: not a sweep shard of this version (format {1:?}, expected {SHARD_FORMAT:?})")]
    Format(String, String),
    #[error("{0} and {1} are both shard {2} of {3}")]
    Duplicate(String, String, usize, usize),
    #[error("shard {index} of {of} is missing (given: {given})")]
    Missing {
        index: usize,
        of: usize,
        given: String,
    },
    #[error("{0} and {1} are shards of different sweeps ({2} differs)")]
    Different(String, String, &'static str),
    #[error("{0}: shard {1} of {2} lacks combination {3}")]
    Incomplete(String, usize, usize, usize),
}

/// The whole sweep from its shards (each with the name it was read from): the current row
/// and every combination's row in order, as the unsharded sweep has them.
pub fn merge(shards: &[(String, ShardResult)]) -> Result<(Row, Vec<Row>), MergeError> {
    let (first_name, first) = shards.first().ok_or(MergeError::Empty)?;
    let mut by_index: Vec<Option<&str>> = vec![None; first.shard.of];
    for (name, s) in shards {
        if s.format != SHARD_FORMAT {
            return Err(MergeError::Format(name.clone(), s.format.clone()));
        }
        let differs = if s.fingerprint != first.fingerprint {
            Some("the scenario, config, trace, grid or seed")
        } else if s.shard.of != first.shard.of {
            Some("the number of shards")
        } else if s.scenario != first.scenario || s.grid != first.grid || s.seed != first.seed {
            Some("the command line")
        } else if s.target != first.target {
            Some("the wait target")
        } else {
            None
        };
        if let Some(what) = differs {
            return Err(MergeError::Different(
                first_name.clone(),
                name.clone(),
                what,
            ));
        }
        let slot = &mut by_index[s.shard.index];
        if let Some(other) = slot {
            return Err(MergeError::Duplicate(
                other.to_string(),
                name.clone(),
                s.shard.index,
                s.shard.of,
            ));
        }
        *slot = Some(name.as_str());
    }
    if let Some(index) = by_index.iter().position(Option::is_none) {
        let mut given: Vec<usize> = shards.iter().map(|(_, s)| s.shard.index).collect();
        given.sort_unstable();
        return Err(MergeError::Missing {
            index,
            of: first.shard.of,
            given: given
                .iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let mut rows: Vec<Option<Row>> = vec![None; first.combinations];
    let mut current = None;
    for (name, s) in shards {
        for (i, r) in &s.rows {
            if *i < rows.len() && s.shard.has(*i) {
                rows[*i] = Some(r.clone());
            }
        }
        if let Some(c) = &s.current {
            current = Some(c.clone());
        }
        if let Some(i) = (0..first.combinations).find(|i| s.shard.has(*i) && rows[*i].is_none()) {
            return Err(MergeError::Incomplete(
                name.clone(),
                s.shard.index,
                s.shard.of,
                i,
            ));
        }
    }
    let current =
        current.ok_or_else(|| MergeError::Incomplete(first_name.clone(), 0, first.shard.of, 0))?;
    Ok((
        current,
        rows.into_iter().map(|r| r.expect("checked")).collect(),
    ))
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
        assert_eq!(parse_duration("7d").unwrap(), 604_800.0);
        assert_eq!(
            parse_duration("5y"),
            Err(ArgError::Unit("5y".into(), "y".into()))
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
