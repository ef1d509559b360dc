//! `scalecast simulate`: every variant of a scenario, as a table, JSON, a report, a journal.

use crate::cli::{Failure, host_tz, parse_sets};
use anyhow::Context;
use scalecast::core::Time;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

/// Events per journal write for a simulated run (a live journal writes each one through).
const JOURNAL_BATCH: usize = 4096;

/// `--by KEY [--top N] [--by-csv FILE] [--attribution RULE]`.
pub struct ByKey {
    pub by: scalecast::trace::keys::KeyKind,
    pub top: Option<usize>,
    pub csv: Option<std::path::PathBuf>,
    pub rule: scalecast::sim::attribution::Rule,
}

#[allow(clippy::too_many_arguments)]
pub fn run(
    path: &Path,
    sets: &[String],
    json: Option<&Path>,
    report: Option<&Path>,
    journal: Option<(&Path, u64, u64)>,
    by: Option<ByKey>,
    threads: Option<usize>,
    quiet: bool,
) -> Result<ExitCode, Failure> {
    use scalecast::config::scenario::Scenario;
    use scalecast::sim::scenario_run::{
        Prepared, attribution_for, for_each_variant, prepare, prepare_overlapped, run_variant,
        run_variant_logged, series_may_wait_for_the_trace,
    };
    // SCALECAST_TIMINGS=1: where the time goes, on standard error (scripts/end-to-end.sh).
    let timings = std::env::var_os("SCALECAST_TIMINGS").is_some();
    let clock = std::time::Instant::now();
    let lap = |what: &str, since: &mut std::time::Instant| {
        if timings {
            eprintln!(
                "timing: {what} {:.1} ms",
                since.elapsed().as_secs_f64() * 1e3
            );
        }
        *since = std::time::Instant::now();
    };
    let mut since = clock;
    let sets = parse_sets(sets)?;
    let sc = Scenario::load(path, &sets, host_tz())?;
    if let Some((dir, every, keep)) = journal {
        if every == 0 || keep == 0 {
            return Err(Failure::Input(
                "--snapshot-every and --keep-snapshots must be at least 1".into(),
            ));
        }
        if dir.exists() && std::fs::read_dir(dir).map_or(true, |mut d| d.next().is_some()) {
            return Err(Failure::Input(format!(
                "--journal {}: the folder exists and is not empty",
                dir.display()
            )));
        }
    }
    let attribution = by
        .as_ref()
        .map(|b| {
            attribution_for(&sc, b.by, b.rule)
                .map_err(|e| Failure::Input(format!("{}: --by {}: {e}", path.display(), b.by)))
        })
        .transpose()?;
    let show = !quiet && std::io::stderr().is_terminal();
    let bars = indicatif::MultiProgress::new();
    let threads =
        threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let run_one = |prepared: &Prepared,
                   v: &scalecast::config::scenario::Variant,
                   log: Option<&mut scalecast::journal::JournalLog>| {
        // While the trace is still being read (the first variant, overlapped), its end is not
        // known: a spinner then, unless the scenario gives the window.
        let window = (
            sc.start.or(prepared.trace_start()),
            sc.end.or(prepared.trace_end()),
        );
        let bar = match window {
            (Some(a), Some(b)) if show && b > a => {
                let bar = bars.add(indicatif::ProgressBar::new(1000));
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{prefix:>20} [{bar:40}] {percent:>3}% {elapsed} (eta {eta})",
                    )
                    .expect("template")
                    .progress_chars("=> "),
                );
                bar.set_prefix(v.name.clone());
                Some((bar, a, b))
            }
            _ => None,
        };
        let spinner = (show && bar.is_none()).then(|| {
            let s = bars.add(indicatif::ProgressBar::new_spinner());
            s.set_style(
                indicatif::ProgressStyle::with_template(
                    "{prefix:>20} {spinner} {elapsed} reading the trace and simulating",
                )
                .expect("template"),
            );
            s.set_prefix(v.name.clone());
            s.enable_steady_tick(std::time::Duration::from_millis(120));
            s
        });
        let mut progress = |t: Time| {
            if let Some((bar, a, b)) = &bar {
                let f = t.since(*a) as f64 / b.since(*a) as f64;
                bar.set_position((f.clamp(0.0, 1.0) * 1000.0) as u64);
            }
        };
        // A report's series are sized by the window; a run that starts while the trace is
        // read learns it when the file is read.
        let mut recorder = match (report, window, prepared.span_when_read()) {
            (Some(_), (Some(a), Some(b)), _) => {
                Some(scalecast::sim::series::Recorder::new(a, b, sc.tz))
            }
            (Some(_), _, Some(span)) => Some(scalecast::sim::series::Recorder::late(
                span, sc.start, sc.end, sc.tz,
            )),
            _ => None,
        };
        let mut none = scalecast::sim::NoObserver;
        let obs: &mut dyn scalecast::sim::Observer = match recorder.as_mut() {
            Some(r) => r,
            None => &mut none,
        };
        let run = match log {
            Some(log) => run_variant_logged(&sc, prepared, v, obs, &mut progress, log),
            None => run_variant(&sc, prepared, v, obs, &mut progress),
        };
        if let Some((bar, _, _)) = bar {
            bar.finish_and_clear();
        }
        if let Some(s) = spinner {
            s.finish_and_clear();
        }
        let run = run.map_err(|e| match e {
            scalecast::sim::SimError::Trace(t) => Failure::Input(t.to_string()),
            e if e.is_input() => Failure::Input(format!("{}: {e}", path.display())),
            other => Failure::Runtime(anyhow::anyhow!("variant {:?}: {other}", v.name)),
        })?;
        let series = recorder.and_then(|rec| rec.finish(run.end));
        Ok::<_, Failure>((run, series))
    };
    // With no journal (whose header needs the trace's start before the run), the baseline
    // runs while the trace is read, on a thread of its own; with a report, when the trace is
    // small enough for its series to wait for the trace's span.
    let overlap = journal.is_none()
        && threads >= 2
        && (report.is_none() || series_may_wait_for_the_trace(&sc));
    let (prepared, head) = if overlap {
        prepare_overlapped(&sc, attribution, |p| run_one(p, &sc.variants[0], None))
            .map_err(|e| Failure::Input(e.to_string()))?
    } else {
        let mut p = prepare(&sc).map_err(|e| Failure::Input(e.to_string()))?;
        p.attribution = attribution;
        (p, None)
    };
    // A report's series given up while the trace was read (too long a wait for its window):
    // the baseline runs again below, on the trace as read.
    let head = head
        .filter(|r| report.is_none() || !matches!(r, Ok((_, None))))
        .map(|r| {
            r.map(|(mut run, series)| {
                prepared.complete(&mut run);
                (run, series)
            })
        });
    lap(
        if head.is_some() {
            "read and check, the baseline simulated meanwhile"
        } else {
            "read and check (scenario, config, trace)"
        },
        &mut since,
    );
    // The baseline's events go to a new journal, through the simulator's own driver.
    let mut journal_log = match journal {
        None => None,
        Some((dir, snapshot_every, keep_snapshots)) => {
            let v = &sc.variants[0];
            let start = sc
                .start
                .or(prepared.survey.first.map(|f| f.0))
                .ok_or_else(|| Failure::Input(format!("{}: no job to journal", path.display())))?;
            let mut header =
                scalecast::journal::Header::new(v.engine, v.settings.clone(), start, Some(sc.seed));
            header.snapshot_every = snapshot_every;
            header.keep_snapshots = keep_snapshots;
            let log = scalecast::journal::JournalLog::create(dir, header)
                .map_err(|e| Failure::Runtime(anyhow::anyhow!("creating the journal: {e}")))?;
            Some(log.buffered(JOURNAL_BATCH))
        }
    };
    // The baseline (variant 0) writes the journal, if asked, here (the journal's store stays
    // on one thread); the variants run on all cores.
    let first = head.or_else(|| {
        journal_log
            .as_mut()
            .map(|log| run_one(&prepared, &sc.variants[0], Some(log)))
    });
    let skip_first = first.is_some();
    let rest = for_each_variant(&sc, threads, |i, v| {
        (i > 0 || !skip_first).then(|| run_one(&prepared, v, None))
    });
    lap(
        if skip_first && journal.is_none() {
            "simulate (the other variants)"
        } else {
            "simulate (every variant)"
        },
        &mut since,
    );
    let mut results = Vec::with_capacity(rest.len());
    let mut series = Vec::new();
    for r in first.into_iter().chain(rest.into_iter().flatten()) {
        let (r, s) = r?;
        results.push(r);
        series.extend(s);
    }
    if let Some(dir) = report {
        let title = format!("scalecast forecast: {}", path.display());
        scalecast::report::write_report(
            dir,
            &title,
            &results,
            &series,
            &prepared.world.notes,
            sc.tz,
        )
        .map_err(|e| Failure::Runtime(anyhow::anyhow!("writing the report: {e}")))?;
    }
    if let Some(file) = by.as_ref().and_then(|b| b.csv.as_deref()) {
        let bytes = scalecast::report::breakdown::csv(&results).context("encoding the CSV")?;
        scalecast::report::output::write_atomic(file, &bytes)
            .with_context(|| format!("writing {}", file.display()))?;
    }
    if let Some(json) = json {
        let mut doc = serde_json::json!({
            "scenario": path.display().to_string(),
            "seed": sc.seed,
            "world": {
                "instance_type": prepared.world.instance_type,
                "region": prepared.world.region,
                "spot": prepared.world.spot,
                "interruptions_per_hour": prepared.world.interruptions_per_hour,
            },
            "variants": results,
        });
        if let Some((o, c)) = scalecast::sim::calibration::of_baseline(&results) {
            doc["observed"] = serde_json::to_value(o).context("encoding the observed waits")?;
            doc["calibration"] = serde_json::to_value(c).context("encoding the calibration")?;
        }
        let mut bytes = serde_json::to_vec_pretty(&doc).context("encoding the results")?;
        bytes.push(b'\n');
        scalecast::report::output::write_atomic(json, &bytes)
            .with_context(|| format!("writing {}", json.display()))?;
    }
    if !quiet && json != Some(Path::new("-")) {
        let out = std::io::stdout();
        let mut out = out.lock();
        let calibration = scalecast::sim::calibration::of_baseline(&results);
        writeln!(
            out,
            "{}",
            scalecast::report::table::render_observed(&results, calibration.map(|c| c.0))
        )?;
        if let Some((o, c)) = calibration {
            writeln!(
                out,
                "{}",
                scalecast::sim::calibration::line(&results[0].name, &c)
            )?;
            if let Some(v) = c.verdict(o) {
                writeln!(out, "FAR OFF: {v}")?;
            }
            writeln!(out)?;
        } else if prepared.records_waits() {
            writeln!(
                out,
                "no observed column: the trace records no wait (queued_duration) for the jobs in the window, so the forecast cannot be checked against it\n"
            )?;
        }
        if let Some(b) = &by {
            writeln!(
                out,
                "{}",
                scalecast::report::breakdown::render(&results, b.top)
            )?;
        }
        for n in &prepared.world.notes {
            writeln!(out, "note: {n}")?;
        }
        for n in results.iter().flat_map(|r| &r.notes) {
            if !prepared.world.notes.contains(n) {
                writeln!(out, "note: {n}")?;
            }
        }
    }
    lap("output (report, JSON, table)", &mut since);
    if timings {
        eprintln!(
            "timing: total {:.1} ms",
            clock.elapsed().as_secs_f64() * 1e3
        );
    }
    Ok(ExitCode::SUCCESS)
}
