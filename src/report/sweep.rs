//! A sweep's files: `sweep.csv` (one row per combination, the current config first),
//! `sweep.json` (the same with every figure, and the recommendation) and `pareto.png`.

use crate::report::ReportError;
use crate::report::output::write_atomic;
use crate::report::plots::{ParetoPoint, pareto};
use crate::sim::VariantResult;
use crate::sim::sweep::{Axis, Metric, Recommendation, Row, ShardResult, monthly};
use std::path::Path;

/// What a sweep's files are made of.
pub struct SweepOutput<'a> {
    pub scenario: &'a Path,
    pub seed: u64,
    pub axes: &'a [Axis],
    pub current: &'a Row,
    pub rows: &'a [Row],
    pub recommendation: Option<&'a Recommendation>,
    /// The wait target in seconds, drawn on the plot.
    pub target_s: Option<f64>,
}

const CSV_FIGURES: &str = "engine,jobs,jobs_unfinished,cost_usd,cost_per_30_days_usd,compute_usd,storage_usd,wait_mean_s,wait_p50_s,wait_p90_s,wait_p95_s,wait_p99_s,wait_max_s,machines_created,hours_booting,hours_idle,hours_busy,interruptions,jobs_retried";

fn csv_line(label: &str, values: &[String], r: &VariantResult) -> String {
    let mut l = label.to_string();
    for v in values {
        l.push(',');
        l.push_str(v);
    }
    l.push_str(&format!(
        ",{},{},{},{:.6},{:.6},{:.6},{:.6},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{},{:.4},{:.4},{:.4},{},{}\n",
        r.engine, r.jobs, r.jobs_unfinished, r.cost_usd, monthly(r), r.cost.compute_usd, r.cost.storage_usd,
        r.wait_s.mean, r.wait_s.p50, r.wait_s.p90, r.wait_s.p95, r.wait_s.p99, r.wait_s.max,
        r.machines_created, r.machine_hours.booting, r.machine_hours.idle, r.machine_hours.busy,
        r.interruptions, r.jobs_retried
    ));
    l
}

/// `sweep.csv`: a column per grid key, then the figures.
pub fn csv(o: &SweepOutput) -> String {
    let mut csv = String::from("combination");
    for a in o.axes {
        csv.push(',');
        csv.push_str(&a.key);
    }
    csv.push(',');
    csv.push_str(CSV_FIGURES);
    csv.push('\n');
    csv.push_str(&csv_line(
        "current",
        &vec![String::new(); o.axes.len()],
        &o.current.result,
    ));
    for (i, r) in o.rows.iter().enumerate() {
        let values: Vec<String> = r.set.iter().map(|(_, v)| v.clone()).collect();
        csv.push_str(&csv_line(&i.to_string(), &values, &r.result));
    }
    csv
}

/// `sweep.json`.
pub fn json(o: &SweepOutput) -> Result<Vec<u8>, ReportError> {
    let grid: Vec<(String, Vec<String>)> = o
        .axes
        .iter()
        .map(|a| {
            (
                a.key.clone(),
                a.values.iter().map(|v| v.to_string()).collect(),
            )
        })
        .collect();
    let doc = serde_json::json!({
        "scenario": o.scenario.display().to_string(),
        "seed": o.seed,
        "grid": grid,
        "current": o.current,
        "rows": o.rows,
        "recommendation": o.recommendation,
    });
    let mut bytes =
        serde_json::to_vec_pretty(&doc).map_err(|e| ReportError::Encode(e.to_string()))?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// The points of `pareto.png`: every combination, and the current config.
fn points(o: &SweepOutput, metric: Metric) -> Vec<ParetoPoint> {
    let rec = o.recommendation;
    let mut points: Vec<ParetoPoint> = o
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| ParetoPoint {
            label: r
                .set
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" "),
            cost_per_month: monthly(&r.result),
            wait_s: metric.of(&r.result),
            current: false,
            chosen: rec.is_some_and(|x| x.row == i),
            meets: rec.is_some_and(|x| x.meets),
            unfinished: r.result.jobs_unfinished > 0,
        })
        .collect();
    points.push(ParetoPoint {
        label: "as configured".into(),
        cost_per_month: monthly(&o.current.result),
        wait_s: metric.of(&o.current.result),
        current: true,
        chosen: false,
        meets: false,
        unfinished: o.current.result.jobs_unfinished > 0,
    });
    points
}

/// Write `sweep.csv`, `sweep.json` and `pareto.png` into `dir` (made if needed), each whole or
/// not at all.
pub fn write(dir: &Path, o: &SweepOutput) -> Result<(), ReportError> {
    let io = |what: &str| {
        let what = dir.join(what).display().to_string();
        move |e: std::io::Error| ReportError::Io(what, e)
    };
    std::fs::create_dir_all(dir).map_err(io(""))?;
    write_atomic(&dir.join("sweep.csv"), csv(o).as_bytes()).map_err(io("sweep.csv"))?;
    write_atomic(&dir.join("sweep.json"), &json(o)?).map_err(io("sweep.json"))?;
    let metric = o.recommendation.map_or(Metric::P95, |r| r.metric);
    pareto(
        &dir.join("pareto.png"),
        &points(o, metric),
        metric.name(),
        o.target_s,
    )
    .map_err(ReportError::Plot)
}

/// The file a shard writes into its directory.
pub const SHARD_FILE: &str = "shard.json";

/// Write a shard's result as `dir/shard.json` (whole or not at all); returns the file.
pub fn write_shard(dir: &Path, s: &ShardResult) -> Result<std::path::PathBuf, ReportError> {
    let file = dir.join(SHARD_FILE);
    let io = |e| ReportError::Io(file.display().to_string(), e);
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut bytes = serde_json::to_vec(s).map_err(|e| ReportError::Encode(e.to_string()))?;
    bytes.push(b'\n');
    write_atomic(&file, &bytes).map_err(io)?;
    Ok(file)
}

/// Read a shard from its directory (or the file itself); the name to call it by is the path.
pub fn read_shard(path: &Path) -> Result<(String, ShardResult), ReportError> {
    let file = if path.is_dir() {
        path.join(SHARD_FILE)
    } else {
        path.to_path_buf()
    };
    let name = file.display().to_string();
    let bytes = std::fs::read(&file).map_err(|e| ReportError::Io(name.clone(), e))?;
    let s = serde_json::from_slice(&bytes)
        .map_err(|e| ReportError::Encode(format!("{name}: not a sweep shard: {e}")))?;
    Ok((name, s))
}
