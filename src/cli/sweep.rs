//! `scalecast sweep`: every combination of a grid, its files, and a recommendation.

use crate::cli::{Failure, host_tz, parse_sets};
use anyhow::Context;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

pub fn run(
    path: &Path,
    grid: &[String],
    sets: &[String],
    out_dir: &Path,
    threads: Option<usize>,
    target: Option<(scalecast::sim::sweep::Metric, String)>,
    quiet: bool,
) -> Result<ExitCode, Failure> {
    use scalecast::config::scenario::Scenario;
    use scalecast::report::plots::{ParetoPoint, pareto};
    use scalecast::sim::scenario_run::prepare;
    use scalecast::sim::sweep::{self, monthly};
    let sets = parse_sets(sets)?;
    let axes = grid
        .iter()
        .map(|g| sweep::parse_axis(g).map_err(Failure::Input))
        .collect::<Result<Vec<_>, _>>()?;
    let target = match target {
        None => None,
        Some((m, t)) => Some((
            m,
            sweep::parse_duration(&t)
                .map_err(|e| Failure::Input(format!("--target-{}: {e}", m.name())))?,
        )),
    };
    let n = sweep::count(&axes);
    let max = sweep::max_combinations();
    if n.is_none_or(|n| n > max) {
        return Err(Failure::Input(format!(
            "--grid: {} combinations, above the limit of {max} (set SCALECAST_MAX_COMBINATIONS to raise it)",
            n.map_or("too many".to_string(), |n| n.to_string())
        )));
    }
    let sc = Scenario::load(path, &sets, host_tz())?;
    let prepared = prepare(&sc).map_err(|e| Failure::Input(e.to_string()))?;
    let arrivals = prepared
        .arrivals()
        .and_then(|a| a.collect::<Result<Vec<_>, _>>())
        .map_err(|e| Failure::Input(e.to_string()))?;
    let combos = sweep::combinations(&axes);
    let threads =
        threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(combos.len() as u64 + 1);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "sweep [{bar:40}] {pos}/{len} combinations, {elapsed} (about {eta} left)",
            )
            .expect("template")
            .progress_chars("=> "),
        );
        bar
    });
    let progress = |done: usize, _total: usize| {
        if let Some(b) = &bar {
            b.set_position(done as u64);
        }
    };
    let (current, rows) = sweep::run(&sc, &prepared.world, &arrivals, &combos, threads, &progress)
        .map_err(|e| {
            if e.starts_with("--grid") || e.starts_with("the trace: ") {
                Failure::Input(e)
            } else {
                Failure::Runtime(anyhow::anyhow!(e))
            }
        })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let rec = target.and_then(|(m, t)| sweep::recommend(&rows, m, t));

    // sweep.csv
    let keys: Vec<String> = axes.iter().map(|a| a.key.clone()).collect();
    let mut csv = String::new();
    csv.push_str("combination");
    for k in &keys {
        csv.push_str(&format!(",{k}"));
    }
    csv.push_str(",engine,jobs,jobs_unfinished,cost_usd,cost_per_30_days_usd,compute_usd,storage_usd,wait_mean_s,wait_p50_s,wait_p90_s,wait_p95_s,wait_p99_s,wait_max_s,machines_created,hours_booting,hours_idle,hours_busy,interruptions,jobs_retried\n");
    let line = |label: &str, values: Vec<String>, r: &scalecast::sim::VariantResult| {
        let mut l = label.to_string();
        for v in values {
            l.push(',');
            l.push_str(&v);
        }
        l.push_str(&format!(
            ",{},{},{},{:.6},{:.6},{:.6},{:.6},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{},{:.4},{:.4},{:.4},{},{}\n",
            r.engine, r.jobs, r.jobs_unfinished, r.cost_usd, monthly(r), r.cost.compute_usd, r.cost.storage_usd,
            r.wait_s.mean, r.wait_s.p50, r.wait_s.p90, r.wait_s.p95, r.wait_s.p99, r.wait_s.max,
            r.machines_created, r.machine_hours.booting, r.machine_hours.idle, r.machine_hours.busy,
            r.interruptions, r.jobs_retried
        ));
        l
    };
    csv.push_str(&line(
        "current",
        keys.iter().map(|_| String::new()).collect(),
        &current.result,
    ));
    for (i, r) in rows.iter().enumerate() {
        csv.push_str(&line(
            &i.to_string(),
            r.set.iter().map(|(_, v)| v.clone()).collect(),
            &r.result,
        ));
    }
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    scalecast::report::output::write_atomic(&out_dir.join("sweep.csv"), csv.as_bytes())
        .with_context(|| format!("writing {}", out_dir.display()))?;

    // sweep.json
    let doc = serde_json::json!({
        "scenario": path.display().to_string(),
        "seed": sc.seed,
        "grid": axes.iter().map(|a| (a.key.clone(), a.values.iter().map(|v| v.to_string()).collect::<Vec<_>>())).collect::<Vec<_>>(),
        "current": current,
        "rows": rows,
        "recommendation": rec,
    });
    let mut bytes = serde_json::to_vec_pretty(&doc).context("encoding")?;
    bytes.push(b'\n');
    scalecast::report::output::write_atomic(&out_dir.join("sweep.json"), &bytes)
        .with_context(|| format!("writing {}", out_dir.display()))?;

    // pareto.png
    let metric = rec.as_ref().map_or(sweep::Metric::P95, |r| r.metric);
    let mut points: Vec<ParetoPoint> = rows
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
            chosen: rec.as_ref().is_some_and(|x| x.row == i),
            meets: rec.as_ref().is_some_and(|x| x.meets),
            unfinished: r.result.jobs_unfinished > 0,
        })
        .collect();
    points.push(ParetoPoint {
        label: "as configured".into(),
        cost_per_month: monthly(&current.result),
        wait_s: metric.of(&current.result),
        current: true,
        chosen: false,
        meets: false,
        unfinished: current.result.jobs_unfinished > 0,
    });
    pareto(
        &out_dir.join("pareto.png"),
        &points,
        metric.name(),
        target.map(|t| t.1),
    )
    .map_err(|e| Failure::Runtime(anyhow::anyhow!("writing pareto.png: {e}")))?;

    let stdout = std::io::stdout();
    let mut o = stdout.lock();
    if !quiet {
        writeln!(
            o,
            "{} combinations (+ the current config) written to {}: sweep.csv, sweep.json, pareto.png",
            rows.len(),
            out_dir.display()
        )?;
    }
    if let Some(r) = &rec {
        let chosen = &rows[r.row];
        let m = r.metric.name();
        if r.meets {
            writeln!(
                o,
                "\nCheapest combination with {m} wait <= {}s: {}",
                r.target_s, chosen.result.name
            )?;
        } else {
            writeln!(
                o,
                "\nNo combination meets {m} wait <= {}s. The closest: {}",
                r.target_s, chosen.result.name
            )?;
        }
        let (a, b) = (&current.result, &chosen.result);
        writeln!(o, "{:>22}  {:>12}  {:>12}", "", "current", "this")?;
        writeln!(
            o,
            "{:>22}  {:>12}  {:>12}",
            "cost per 30 days",
            format!("${:.2}", monthly(a)),
            format!("${:.2}", monthly(b))
        )?;
        for (label, x, y) in [
            ("wait mean (s)", a.wait_s.mean, b.wait_s.mean),
            ("wait p50 (s)", a.wait_s.p50, b.wait_s.p50),
            ("wait p95 (s)", a.wait_s.p95, b.wait_s.p95),
            ("wait p99 (s)", a.wait_s.p99, b.wait_s.p99),
        ] {
            writeln!(o, "{label:>22}  {x:>12.1}  {y:>12.1}")?;
        }
        writeln!(
            o,
            "{:>22}  {:>12}  {:>12}",
            "jobs unfinished", a.jobs_unfinished, b.jobs_unfinished
        )?;
        for note in sweep::edge_notes(&axes, &chosen.set) {
            writeln!(o, "note: {note}")?;
        }
        if r.meets {
            writeln!(o, "\nIn config.toml:\n{}", sweep::config_lines(&chosen.set))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
