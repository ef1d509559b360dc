//! `scalecast sweep`: every combination of a grid, its files, and a recommendation.

use crate::cli::{Failure, host_tz, parse_sets};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

/// What `scalecast sweep SCENARIO` was asked.
pub struct SweepArgs<'a> {
    pub path: &'a Path,
    pub grid: &'a [String],
    pub sets: &'a [String],
    pub out_dir: &'a Path,
    pub threads: Option<usize>,
    pub target: Option<(scalecast::sim::sweep::Metric, String)>,
    pub shard: Option<scalecast::sim::sweep::Shard>,
    pub quiet: bool,
}

pub fn run(a: &SweepArgs) -> Result<ExitCode, Failure> {
    use scalecast::config::scenario::Scenario;
    use scalecast::sim::scenario_run::prepare;
    use scalecast::sim::sweep;
    let (path, out_dir, quiet) = (a.path, a.out_dir, a.quiet);
    let sets = parse_sets(a.sets)?;
    let axes = a
        .grid
        .iter()
        .map(|g| sweep::parse_axis(g).map_err(|e| Failure::Input(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    let target = match &a.target {
        None => None,
        Some((m, t)) => Some((
            *m,
            sweep::parse_duration(t)
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
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
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
    let (current, rows) = sweep::run_part(
        &sc,
        &prepared.world,
        &arrivals,
        &combos,
        a.shard,
        threads,
        &progress,
    )
    .map_err(|e| {
        if e.is_input() {
            Failure::Input(format!("{}: {e}", path.display()))
        } else {
            Failure::Runtime(e.into())
        }
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if let Some(shard) = a.shard {
        let result = sweep::ShardResult {
            format: sweep::SHARD_FORMAT.into(),
            shard,
            fingerprint: fingerprint(&sc, a.grid, a.sets, &arrivals)?,
            scenario: path.display().to_string(),
            seed: sc.seed,
            grid: a.grid.to_vec(),
            target,
            combinations: combos.len(),
            current,
            rows,
        };
        let file = scalecast::report::sweep::write_shard(out_dir, &result)
            .map_err(|e| Failure::Runtime(anyhow::anyhow!("writing the shard: {e}")))?;
        if !quiet {
            println!(
                "shard {} of {}: {} of {} combinations{} written to {}",
                shard.index,
                shard.of,
                result.rows.len(),
                combos.len(),
                if result.current.is_some() {
                    " (+ the current config)"
                } else {
                    ""
                },
                file.display()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let current = current.expect("the whole sweep runs the current config");
    let rows: Vec<_> = rows.into_iter().map(|(_, r)| r).collect();
    finish(
        &path.display().to_string(),
        sc.seed,
        &axes,
        current,
        rows,
        target,
        out_dir,
        quiet,
    )
}

/// What a shard ran on, as a digest: the scenario, config and spot price files as read, the
/// `--set` and `--grid` arguments, the seed and window, and every arrival.
fn fingerprint(
    sc: &scalecast::config::scenario::Scenario,
    grid: &[String],
    sets: &[String],
    arrivals: &[scalecast::trace::TraceJob],
) -> Result<String, Failure> {
    let read =
        |p: &Path| std::fs::read(p).map_err(|e| Failure::Input(format!("{}: {e}", p.display())));
    let mut parts = vec![read(&sc.path)?, read(Path::new(&sc.config.file))?];
    if let Some(h) = &sc.spot_price_history {
        parts.push(read(h)?);
    }
    parts.push(format!("{grid:?} {sets:?} {} {:?} {:?}", sc.seed, sc.start, sc.end).into_bytes());
    Ok(scalecast::sim::sweep::fingerprint(&parts, arrivals))
}

/// `scalecast sweep merge`: the shards' rows into the unsharded sweep's files.
pub fn merge(
    shards: &[std::path::PathBuf],
    out_dir: &Path,
    quiet: bool,
) -> Result<ExitCode, Failure> {
    use scalecast::sim::sweep;
    let mut read = Vec::with_capacity(shards.len());
    for p in shards {
        let (name, s) =
            scalecast::report::sweep::read_shard(p).map_err(|e| Failure::Input(e.to_string()))?;
        read.push((name, s));
    }
    let (current, rows) = sweep::merge(&read).map_err(|e| Failure::Input(e.to_string()))?;
    let first = &read[0].1;
    let axes = first
        .grid
        .iter()
        .map(|g| sweep::parse_axis(g).map_err(|e| Failure::Input(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    finish(
        &first.scenario,
        first.seed,
        &axes,
        current,
        rows,
        first.target,
        out_dir,
        quiet,
    )
}

/// Write a whole sweep's files and say what they hold (and the recommendation).
#[allow(clippy::too_many_arguments)]
fn finish(
    scenario: &str,
    seed: u64,
    axes: &[scalecast::sim::sweep::Axis],
    current: scalecast::sim::sweep::Row,
    rows: Vec<scalecast::sim::sweep::Row>,
    target: Option<(scalecast::sim::sweep::Metric, f64)>,
    out_dir: &Path,
    quiet: bool,
) -> Result<ExitCode, Failure> {
    use scalecast::sim::sweep::{self, monthly};
    let rec = target.and_then(|(m, t)| sweep::recommend(&rows, m, t));

    scalecast::report::sweep::write(
        out_dir,
        &scalecast::report::sweep::SweepOutput {
            scenario: Path::new(scenario),
            seed,
            axes,
            current: &current,
            rows: &rows,
            recommendation: rec.as_ref(),
            target_s: target.map(|t| t.1),
        },
    )
    .map_err(|e| Failure::Runtime(anyhow::anyhow!("writing the sweep: {e}")))?;

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
        for note in sweep::edge_notes(axes, &chosen.set) {
            writeln!(o, "note: {note}")?;
        }
        if r.meets {
            writeln!(o, "\nIn config.toml:\n{}", sweep::config_lines(&chosen.set))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
