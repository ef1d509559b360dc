//! Results for people and programs: terminal tables and JSON files. Reads results; runs
//! nothing.

pub mod breakdown;
pub mod html;
pub mod output;
pub mod plots;
pub mod sweep;
pub mod table;

use crate::sim::VariantResult;
use crate::sim::series::VariantSeries;
use chrono_tz::Tz;
use std::path::Path;

/// The plots of a report: file name and caption.
pub const REPORT_PLOTS: [(&str, &str); 4] = [
    (
        "fleet.png",
        "machines by state over time, jobs waiting, active autoscaling period",
    ),
    (
        "wait.png",
        "distribution of queue wait per variant, p50 and p95 marked",
    ),
    (
        "cost.png",
        "cost per day per variant, by busy, idle, booting and storage",
    ),
    (
        "heatmap.png",
        "p95 queue wait by weekday and hour, baseline",
    ),
];

/// When the trace recorded waits: the baseline against them.
pub const CALIBRATION_PLOT: (&str, &str) = (
    "calibration.png",
    "the baseline's simulated waits against the waits the trace recorded: both distributions, and the p95 per hour of arrival",
);

/// With `simulate --by`: the cost of the top keys per day.
pub const BY_KEY_PLOT: (&str, &str) = (
    "by-key.png",
    "cost per day per variant, stacked by the costliest keys (the rest as other)",
);

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("drawing a plot: {0}")]
    Plot(String),
    #[error("encoding: {0}")]
    Encode(String),
}

/// Write `fleet.png`, `wait.png`, `cost.png`, `heatmap.png` and `index.html` into `dir`.
pub fn write_report(
    dir: &Path,
    title: &str,
    results: &[VariantResult],
    series: &[VariantSeries],
    notes: &[String],
    tz: Tz,
) -> Result<(), ReportError> {
    let io = |what: &Path| {
        let what = what.display().to_string();
        move |e: std::io::Error| ReportError::Io(what, e)
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    plots::fleet(&dir.join("fleet.png"), results, series, tz).map_err(ReportError::Plot)?;
    plots::waits(&dir.join("wait.png"), results, series).map_err(ReportError::Plot)?;
    plots::cost(&dir.join("cost.png"), results).map_err(ReportError::Plot)?;
    if let (Some(r), Some(s)) = (results.first(), series.first()) {
        plots::heatmap(&dir.join("heatmap.png"), &r.name, s, tz).map_err(ReportError::Plot)?;
    }
    let mut listed: Vec<(&str, &str)> = REPORT_PLOTS.to_vec();
    if let (Some((_, c)), Some(s)) = (
        crate::sim::calibration::of_baseline(results),
        series.first(),
    ) {
        plots::calibration(&dir.join(CALIBRATION_PLOT.0), &results[0].name, s, &c, tz)
            .map_err(ReportError::Plot)?;
        listed.push(CALIBRATION_PLOT);
    }
    if results.iter().any(|r| r.by.is_some()) {
        plots::by_key(&dir.join(BY_KEY_PLOT.0), results).map_err(ReportError::Plot)?;
        listed.push(BY_KEY_PLOT);
    }
    let page = html::index(dir, title, results, &listed, notes).map_err(io(dir))?;
    let index = dir.join("index.html");
    output::write_atomic(&index, page.as_bytes()).map_err(io(&index))
}
