//! The per-variant summary as a terminal table: one column per variant.

use crate::sim::VariantResult;

fn money(x: f64) -> String {
    format!("${x:.2}")
}

fn secs(x: f64) -> String {
    if x < 60.0 {
        format!("{x:.1}s")
    } else if x < 3600.0 {
        format!("{:.1}m", x / 60.0)
    } else {
        format!("{:.1}h", x / 3600.0)
    }
}

/// The UTC date of an instant.
fn day(t: crate::core::Time) -> String {
    let s = t.to_rfc3339();
    s[..s.len().min(10)].to_string()
}

/// A wait figure; a lower bound (`>=`) when jobs were still waiting at the end.
fn wait(v: &VariantResult, x: f64) -> String {
    if v.waits_censored > 0 {
        format!(">={}", secs(x))
    } else {
        secs(x)
    }
}

/// Rows of (label, one cell per variant).
pub fn rows(vs: &[VariantResult]) -> Vec<(String, Vec<String>)> {
    let row = |label: &str, f: &dyn Fn(&VariantResult) -> String| {
        (label.to_string(), vs.iter().map(f).collect())
    };
    // Rates only make sense over at least a day of simulated time.
    let rate = |v: &VariantResult, per: f64| {
        if v.days >= 1.0 {
            money(v.cost_usd / v.days * per)
        } else {
            "-".to_string()
        }
    };
    // The settings each variant changed, one per row, so the columns stay narrow.
    let most = vs.iter().map(|v| v.changes.len()).max().unwrap_or(0).max(1);
    let changes = (0..most).map(|i| {
        let label = if i == 0 { "changed settings" } else { "" };
        let cells = vs
            .iter()
            .map(|v| match (v.changes.get(i), i) {
                (Some(c), _) => c.clone(),
                (None, 0) => "as configured".to_string(),
                (None, _) => String::new(),
            })
            .collect();
        (label.to_string(), cells)
    });
    let mut rows = vec![
        row("engine", &|v| v.engine.clone()),
        row("window", &|v| format!("{} .. {}", day(v.start), day(v.end))),
        row("trace jobs outside", &|v| {
            (v.window.trace_jobs_before + v.window.trace_jobs_after).to_string()
        }),
        row("jobs", &|v| v.jobs.to_string()),
        row("unfinished at end", &|v| {
            if v.jobs_unfinished > 0 {
                format!("{} (!)", v.jobs_unfinished)
            } else {
                "0".to_string()
            }
        }),
        row("cost", &|v| money(v.cost_usd)),
        row("  compute", &|v| money(v.cost.compute_usd)),
        row("  storage", &|v| money(v.cost.storage_usd)),
        row("cost per day", &|v| rate(v, 1.0)),
        row("cost per 30 days", &|v| rate(v, 30.0)),
        row("wait mean", &|v| wait(v, v.wait_s.mean)),
        row("wait p50", &|v| wait(v, v.wait_s.p50)),
        row("wait p95", &|v| wait(v, v.wait_s.p95)),
        row("wait p99", &|v| wait(v, v.wait_s.p99)),
        row("wait max", &|v| wait(v, v.wait_s.max)),
        row("machines created", &|v| v.machines_created.to_string()),
        row("machine-hours busy", &|v| {
            format!("{:.1}", v.machine_hours.busy)
        }),
        row("machine-hours idle", &|v| {
            format!("{:.1}", v.machine_hours.idle)
        }),
        row("idle share of spend", &|v| {
            format!("{:.0}%", 100.0 * v.idle_share())
        }),
        row("machine-hours booting", &|v| {
            format!("{:.1}", v.machine_hours.booting)
        }),
        row("spot interruptions", &|v| v.interruptions.to_string()),
        row("jobs retried", &|v| v.jobs_retried.to_string()),
    ];
    rows.splice(1..1, changes);
    rows
}

/// The rows with an `observed` column after the variants' (when the trace recorded waits):
/// its jobs and waits, blank where the trace says nothing.
pub fn rows_observed(
    vs: &[VariantResult],
    observed: Option<&crate::sim::calibration::Observed>,
) -> Vec<(String, Vec<String>)> {
    let mut rows = rows(vs);
    if let Some(o) = observed {
        for (label, cells) in &mut rows {
            let w = &o.wait_s;
            cells.push(match label.as_str() {
                "jobs" => o.jobs.to_string(),
                "wait mean" => secs(w.mean),
                "wait p50" => secs(w.p50),
                "wait p95" => secs(w.p95),
                "wait p99" => secs(w.p99),
                "wait max" => secs(w.max),
                _ => String::new(),
            });
        }
    }
    rows
}

/// The column names: the variants', then `observed` if there is such a column.
pub fn names(vs: &[VariantResult], observed: bool) -> Vec<String> {
    let mut n: Vec<String> = vs.iter().map(|v| v.name.clone()).collect();
    if observed {
        n.push("observed".into());
    }
    n
}

pub fn render(vs: &[VariantResult]) -> String {
    render_observed(vs, None)
}

/// The table, with the trace's own waits as a last column when given.
pub fn render_observed(
    vs: &[VariantResult],
    observed: Option<&crate::sim::calibration::Observed>,
) -> String {
    let rows = rows_observed(vs, observed);
    let names = names(vs, observed.is_some());
    let label_w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..names.len())
        .map(|i| {
            rows.iter()
                .map(|r| r.1[i].len())
                .chain(std::iter::once(names[i].len()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = format!("{:label_w$}", "");
    for (name, w) in names.iter().zip(&widths) {
        out.push_str(&format!("  {name:>w$}"));
    }
    out.push('\n');
    for (label, cells) in &rows {
        let mut line = format!("{label:label_w$}");
        for (c, w) in cells.iter().zip(&widths) {
            line.push_str(&format!("  {c:>w$}"));
        }
        // A blank last cell (the observed column) leaves no trailing spaces.
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
