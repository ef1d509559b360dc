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
    Plot(#[from] plots::PlotError),
    #[error("encoding: {0}")]
    Encode(String),
}

/// A plot to draw.
type Draw<'a> = Box<dyn FnOnce() -> plots::PlotResult + Send + 'a>;

/// Draw `draws` on as many threads as there are cores (one at most per plot: a plot is mostly
/// PNG encoding, which more threads than cores only slow down); their results in order.
fn on_every_core(draws: Vec<Draw>) -> Vec<plots::PlotResult> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = cores.min(draws.len());
    if workers <= 1 {
        return draws.into_iter().map(|d| d()).collect();
    }
    let n = draws.len();
    let queue = std::sync::Mutex::new(draws.into_iter().enumerate());
    let mut results: Vec<Option<plots::PlotResult>> = (0..n).map(|_| None).collect();
    let done: Vec<Vec<(usize, plots::PlotResult)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                        let Some((i, d)) = next else { break };
                        mine.push((i, d()));
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    for (i, r) in done.into_iter().flatten() {
        results[i] = Some(r);
    }
    results
        .into_iter()
        // Every index is taken from the queue once, and a worker's panic is resumed above.
        .map(|r| r.expect("every plot was drawn"))
        .collect()
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
    // Each plot is a file of its own, drawn from the results alone: they are drawn on every
    // core, and the first failure in the listed order is the one reported, as when they were
    // drawn one after another.
    let mut draws: Vec<Draw> = vec![
        Box::new(|| plots::fleet(&dir.join("fleet.png"), results, series, tz)),
        Box::new(|| plots::waits(&dir.join("wait.png"), results, series)),
        Box::new(|| plots::cost(&dir.join("cost.png"), results)),
    ];
    if let (Some(r), Some(s)) = (results.first(), series.first()) {
        draws.push(Box::new(move || {
            plots::heatmap(&dir.join("heatmap.png"), &r.name, s, tz)
        }));
    }
    let mut listed: Vec<(&str, &str)> = REPORT_PLOTS.to_vec();
    if let (Some((_, c)), Some(s)) = (
        crate::sim::calibration::of_baseline(results),
        series.first(),
    ) {
        let name = &results[0].name;
        draws.push(Box::new(move || {
            plots::calibration(&dir.join(CALIBRATION_PLOT.0), name, s, &c, tz)
        }));
        listed.push(CALIBRATION_PLOT);
    }
    if results.iter().any(|r| r.by.is_some()) {
        draws.push(Box::new(|| {
            plots::by_key(&dir.join(BY_KEY_PLOT.0), results)
        }));
        listed.push(BY_KEY_PLOT);
    }
    on_every_core(draws)
        .into_iter()
        .collect::<plots::PlotResult>()?;
    let page = html::index(dir, title, results, &listed, notes).map_err(io(dir))?;
    let index = dir.join("index.html");
    output::write_atomic(&index, page.as_bytes()).map_err(io(&index))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Plots drawn on every core: each drawn once, the results in the listed order whatever
    /// order they finish in, so the first failure reported is the first listed.
    #[test]
    fn plots_on_every_core_keep_their_order() {
        let calls = AtomicUsize::new(0);
        let draws: Vec<Draw> = (0..7)
            .map(|i| {
                let calls = &calls;
                Box::new(move || {
                    calls.fetch_add(1, Ordering::SeqCst);
                    // The later ones finish first.
                    std::thread::sleep(std::time::Duration::from_millis(7 - i));
                    if i == 2 || i == 5 {
                        Err(plots::PlotError {
                            path: format!("plot-{i}.png").into(),
                            reason: "failed".into(),
                        })
                    } else {
                        Ok(())
                    }
                }) as Draw
            })
            .collect();
        let results = on_every_core(draws);
        assert_eq!(calls.load(Ordering::SeqCst), 7, "each drawn once");
        let failed: Vec<usize> = (0..7).filter(|&i| results[i].is_err()).collect();
        assert_eq!(failed, [2, 5]);
        assert_eq!(
            results
                .into_iter()
                .collect::<plots::PlotResult>()
                .map_err(|e| e.to_string()),
            Err("plot-2.png: failed".to_string())
        );
    }
}
