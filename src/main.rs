//! The command line: parse arguments, call the library, print, set the exit code
//! (0 ok, 1 runtime failure, 2 bad input).

use anyhow::Context;
use chrono_tz::Tz;
use clap::{Parser, Subcommand};
use scalecast::config::check::{self, Severity};
use scalecast::config::{ConfigFile, InputError};
use scalecast::core::{Engine, EngineKind, Event, Time};
use scalecast::replay::Replayer;
use std::io::{BufRead, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "scalecast",
    version,
    about = "GitLab Runner autoscaling on EC2: decide, replay and forecast"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a GitLab Runner config.toml: errors exit 2, warnings are listed.
    Check {
        config: PathBuf,
        #[arg(long)]
        runner: Option<String>,
        /// Print {"findings":[...]} instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The idle settings in force at a time, or every change in a window.
    Periods {
        config: PathBuf,
        #[arg(long)]
        runner: Option<String>,
        /// RFC 3339 instant, e.g. 2026-11-25T10:00:00Z.
        #[arg(long, conflicts_with_all = ["from", "to"])]
        at: Option<String>,
        #[arg(long, requires = "to")]
        from: Option<String>,
        #[arg(long, requires = "from")]
        to: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Replay a job trace through the engine and forecast spot cost and queue latency.
    Simulate {
        scenario: PathBuf,
        /// Override a runner or machine setting for every variant, e.g. --set IdleCount=5.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Write the results as JSON to FILE (`-` for standard output).
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Write PNG plots and a self-contained index.html into DIR.
        #[arg(long, value_name = "DIR")]
        report: Option<PathBuf>,
        /// Journal the baseline variant's events into DIR (a new journal).
        #[arg(long, value_name = "DIR")]
        journal: Option<PathBuf>,
        /// With --journal: snapshot the engine state every N events.
        #[arg(long, value_name = "N", default_value_t = scalecast::journal::DEFAULT_SNAPSHOT_EVERY, requires = "journal")]
        snapshot_every: u64,
        /// With --journal: keep the newest N snapshots, delete older ones.
        #[arg(long, value_name = "N", default_value_t = scalecast::journal::DEFAULT_KEEP_SNAPSHOTS, requires = "journal")]
        keep_snapshots: u64,
        /// No progress bar and no table.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Run every combination of a grid of settings on all cores; recommend the cheapest that
    /// meets a wait target.
    Sweep {
        scenario: PathBuf,
        /// KEY=V1,V2,... (repeat for more axes), e.g. --grid IdleCount=0,2,5
        #[arg(long = "grid", value_name = "KEY=V1,V2", required = true)]
        grid: Vec<String>,
        /// Override a setting for every combination, e.g. --set limit=40.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Where sweep.csv, sweep.json and pareto.png go.
        #[arg(long, value_name = "DIR", default_value = "sweep")]
        out: PathBuf,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Recommend the cheapest combination whose p95 wait is at most this (60s, 2m, ...).
        #[arg(long, conflicts_with_all = ["target_p99", "target_mean"])]
        target_p95: Option<String>,
        #[arg(long, conflicts_with = "target_mean")]
        target_p99: Option<String>,
        #[arg(long)]
        target_mean: Option<String>,
        #[arg(long, short)]
        quiet: bool,
    },
    /// Look into an event journal.
    Journal {
        #[command(subcommand)]
        command: JournalCommand,
    },
    /// Make and inspect job traces.
    Trace {
        #[command(subcommand)]
        command: TraceCommand,
    },
    /// Feed NDJSON events through the engine and print each action as a JSON line.
    Replay {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        runner: Option<String>,
        #[arg(long, default_value = "scalecast")]
        engine: String,
        /// Keep waking the engine at its deadlines until this time after the last event.
        #[arg(long)]
        until: Option<String>,
        events: PathBuf,
    },
}

#[derive(Subcommand)]
enum JournalCommand {
    /// Header, event count, time span, snapshots, counts by event kind.
    Inspect {
        dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// The events as NDJSON, the form `scalecast replay` reads.
    Export { dir: PathBuf },
    /// Replay from the start and compare with every snapshot.
    Verify { dir: PathBuf },
    /// Test helper: append seeded events in batches forever, printing each acknowledged batch.
    #[command(name = "_crash-writer", hide = true)]
    CrashWriter {
        dir: PathBuf,
        #[arg(long)]
        seed: u64,
        #[arg(long, default_value_t = 50)]
        batch: usize,
        #[arg(long, default_value_t = 200)]
        snapshot_every: u64,
    },
}

#[derive(Subcommand)]
enum TraceCommand {
    /// Write a synthetic trace (CSV with the Jobs API's column names).
    Synth {
        #[arg(long)]
        days: u32,
        #[arg(long)]
        jobs_per_day: f64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Midnight UTC of the first day (default 2026-11-02, a Monday).
        #[arg(long)]
        start: Option<String>,
        /// Write to FILE instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Summarise a trace: jobs, span, arrivals by weekday and hour, runtime percentiles.
    Stats {
        trace: PathBuf,
        /// Keep only the jobs this runner ran (its id, description or name).
        #[arg(long)]
        runner: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

/// Why the command failed: the input (exit 2) or the run (exit 1).
enum Failure {
    Input(String),
    Runtime(anyhow::Error),
}

impl From<InputError> for Failure {
    fn from(e: InputError) -> Self {
        Failure::Input(e.to_string())
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Runtime(e)
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Runtime(e.into())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(Failure::Input(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(e)) => {
            // A reader that stops early (`| head`) is not a failure.
            let broken_pipe = e
                .chain()
                .filter_map(|c| c.downcast_ref::<std::io::Error>())
                .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe);
            if broken_pipe {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// The host's time zone, for autoscaling entries with an empty or `Local` Timezone:
/// `TZ` when set to an IANA name, else the system's, else UTC.
fn host_tz() -> Tz {
    if let Ok(name) = std::env::var("TZ")
        && let Ok(tz) = name.trim_start_matches(':').parse::<Tz>()
    {
        return tz;
    }
    iana_time_zone::get_timezone()
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(Tz::UTC)
}

fn parse_time(flag: &str, s: &str) -> Result<Time, Failure> {
    Time::parse_rfc3339(s).map_err(|e| Failure::Input(format!("--{flag}: {e}")))
}

fn run(cli: Cli) -> Result<ExitCode, Failure> {
    match cli.command {
        Command::Check {
            config,
            runner,
            json,
        } => cmd_check(&config, runner.as_deref(), json),
        Command::Periods {
            config,
            runner,
            at,
            from,
            to,
            json,
        } => {
            let cfg = ConfigFile::load(&config)?;
            let r = cfg.runner(runner.as_deref())?;
            let settings = cfg.settings(r, host_tz());
            let out = std::io::stdout();
            let mut out = out.lock();
            match (at, from, to) {
                (Some(at), _, _) => {
                    let t = parse_time("at", &at)?;
                    let eff = settings.effective_at(t);
                    if json {
                        let mut v = serde_json::to_value(eff.idle).context("encoding")?;
                        v["entry"] = serde_json::json!(eff.entry);
                        writeln!(out, "{v}")?;
                    } else {
                        writeln!(out, "{}", describe(t, &eff))?;
                    }
                }
                (None, Some(from), Some(to)) => {
                    let (from, to) = (parse_time("from", &from)?, parse_time("to", &to)?);
                    if to < from {
                        return Err(Failure::Input("--to is before --from".into()));
                    }
                    let mut rows = vec![(from, settings.effective_at(from))];
                    rows.extend(settings.changes(from, to));
                    for (t, eff) in rows {
                        if json {
                            let mut v = serde_json::to_value(eff.idle).context("encoding")?;
                            v["entry"] = serde_json::json!(eff.entry);
                            v["time"] = serde_json::json!(t.to_rfc3339());
                            writeln!(out, "{v}")?;
                        } else {
                            writeln!(out, "{}", describe(t, &eff))?;
                        }
                    }
                }
                _ => {
                    return Err(Failure::Input(
                        "give --at TIME, or --from T1 --to T2".into(),
                    ));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Simulate {
            scenario,
            sets,
            json,
            report,
            journal,
            snapshot_every,
            keep_snapshots,
            quiet,
        } => cmd_simulate(
            &scenario,
            &sets,
            json.as_deref(),
            report.as_deref(),
            journal
                .as_deref()
                .map(|d| (d, snapshot_every, keep_snapshots)),
            quiet,
        ),
        Command::Trace { command } => cmd_trace(command),
        Command::Journal { command } => cmd_journal(command),
        Command::Sweep {
            scenario,
            grid,
            sets,
            out,
            threads,
            target_p95,
            target_p99,
            target_mean,
            quiet,
        } => {
            use scalecast::sim::sweep::Metric;
            let target = match (target_p95, target_p99, target_mean) {
                (Some(t), _, _) => Some((Metric::P95, t)),
                (_, Some(t), _) => Some((Metric::P99, t)),
                (_, _, Some(t)) => Some((Metric::Mean, t)),
                _ => None,
            };
            cmd_sweep(&scenario, &grid, &sets, &out, threads, target, quiet)
        }
        Command::Replay {
            config,
            runner,
            engine,
            until,
            events,
        } => cmd_replay(
            &config,
            runner.as_deref(),
            &engine,
            until.as_deref(),
            &events,
        ),
    }
}

fn describe(t: Time, eff: &scalecast::core::Effective) -> String {
    let entry = eff
        .entry
        .map_or("none ([runners.machine])".to_string(), |i| format!("{i}"));
    format!(
        "{}  entry {entry}  IdleCount={} IdleCountMin={} IdleScaleFactor={} IdleTime={}",
        t,
        eff.idle.idle_count,
        eff.idle.idle_count_min,
        eff.idle.idle_scale_factor,
        eff.idle.idle_time
    )
}

fn cmd_check(config: &Path, runner: Option<&str>, json: bool) -> Result<ExitCode, Failure> {
    let findings = match ConfigFile::load(config) {
        Err(e) => vec![check::error_finding(check::error_code(&e), &e)],
        Ok(cfg) => match check::check(&cfg, runner, host_tz()) {
            Ok(f) => f,
            Err(e) => vec![check::error_finding(check::error_code(&e), &e)],
        },
    };
    let failed = findings.iter().any(|f| f.severity == Severity::Error);
    let out = std::io::stdout();
    let mut out = out.lock();
    if json {
        let v = serde_json::json!({ "findings": findings });
        writeln!(out, "{v}")?;
    } else {
        for f in &findings {
            let sev = match f.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            match f.line {
                Some(l) => writeln!(
                    out,
                    "{}:{l}: {sev}[{}]: {}",
                    config.display(),
                    f.code,
                    f.message
                )?,
                None => writeln!(
                    out,
                    "{}: {sev}[{}]: {}",
                    config.display(),
                    f.code,
                    f.message
                )?,
            }
        }
        let warnings = findings.len() - usize::from(failed);
        if !failed {
            writeln!(out, "{}: ok, {warnings} warning(s)", config.display())?;
        }
    }
    if failed {
        if !json {
            // The message is on stdout already; say it on stderr too for scripts.
            if let Some(f) = findings.first() {
                eprintln!(
                    "error: {}:{}: {}",
                    config.display(),
                    f.line.unwrap_or(0),
                    f.message
                );
            }
        }
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_replay(
    config: &Path,
    runner: Option<&str>,
    engine: &str,
    until: Option<&str>,
    events: &Path,
) -> Result<ExitCode, Failure> {
    let kind: EngineKind = engine
        .parse()
        .map_err(|e: String| Failure::Input(format!("--engine: {e}")))?;
    let until = until.map(|u| parse_time("until", u)).transpose()?;
    let cfg = ConfigFile::load(config)?;
    let r = cfg.runner(runner)?;
    let settings = cfg.settings(r, host_tz());
    let file = std::fs::File::open(events)
        .map_err(|e| Failure::Input(format!("{}: cannot read: {e}", events.display())))?;
    let reader = std::io::BufReader::new(file);
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut replayer: Option<Replayer> = None;
    let mut write_err: Option<std::io::Error> = None;
    let mut emit = |a: scalecast::core::Action| {
        if write_err.is_none() {
            let line = serde_json::to_string(&a).expect("actions encode");
            if let Err(e) = writeln!(out, "{line}") {
                write_err = Some(e);
            }
        }
    };
    let place = |n: usize| format!("{}:{n}", events.display());
    for (i, line) in reader.lines().enumerate() {
        let n = i + 1;
        let line = line.map_err(|e| Failure::Input(format!("{}: {e}", place(n))))?;
        if line.trim().is_empty() {
            continue;
        }
        let ev: Event = serde_json::from_str(&line)
            .map_err(|e| Failure::Input(format!("{}: not an event: {e}", place(n))))?;
        let rp = replayer.get_or_insert_with(|| {
            Replayer::new(Engine::new(kind, settings.clone(), ev.at)).with_max_wakeups(
                std::env::var("SCALECAST_MAX_WAKEUPS")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(scalecast::replay::MAX_WAKEUPS),
            )
        });
        rp.feed(&ev, &mut emit)
            .map_err(|e| Failure::Input(format!("{}: {e}", place(n))))?;
    }
    if let (Some(rp), Some(until)) = (replayer.as_mut(), until) {
        rp.run_until(until, &mut emit)
            .map_err(|e| Failure::Input(format!("--until: {e}")))?;
    }
    let flushed = out.flush();
    // A reader that stops early (`| head`) is not a failure.
    for e in write_err.into_iter().chain(flushed.err()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(Failure::Runtime(e.into()));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--set KEY=VALUE` arguments.
fn parse_sets(
    sets: &[String],
) -> Result<Vec<(String, scalecast::config::overrides::SetValue)>, Failure> {
    sets.iter()
        .map(|s| {
            scalecast::config::overrides::parse_assignment(s)
                .map_err(|e| Failure::Input(format!("--set {e}")))
        })
        .collect()
}

/// Events per journal write for a simulated run (a live journal writes each one through).
const JOURNAL_BATCH: usize = 4096;

fn cmd_simulate(
    path: &Path,
    sets: &[String],
    json: Option<&Path>,
    report: Option<&Path>,
    journal: Option<(&Path, u64, u64)>,
    quiet: bool,
) -> Result<ExitCode, Failure> {
    use scalecast::config::scenario::Scenario;
    use scalecast::sim::scenario_run::{prepare, run_variant, run_variant_logged};
    let sets = parse_sets(sets)?;
    let sc = Scenario::load(path, &sets, host_tz())?;
    let prepared = prepare(&sc).map_err(|e| Failure::Input(e.to_string()))?;
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
    let show = !quiet && std::io::stderr().is_terminal();
    let mut results = Vec::new();
    let mut series = Vec::new();
    let window = (
        sc.start.or(prepared.trace_start()),
        sc.end.or(prepared.trace_end()),
    );
    for v in &sc.variants {
        let bar = if show {
            let span = match (
                sc.start.or(prepared.trace_start()),
                sc.end.or(prepared.trace_end()),
            ) {
                (Some(a), Some(b)) if b > a => Some((a, b)),
                _ => None,
            };
            span.map(|(a, b)| {
                let bar = indicatif::ProgressBar::new(1000);
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{prefix:>20} [{bar:40}] {percent:>3}% {elapsed} (eta {eta})",
                    )
                    .expect("template")
                    .progress_chars("=> "),
                );
                bar.set_prefix(v.name.clone());
                (bar, a, b)
            })
        } else {
            None
        };
        let mut progress = |t: Time| {
            if let Some((bar, a, b)) = &bar {
                let f = t.since(*a) as f64 / b.since(*a) as f64;
                bar.set_position((f.clamp(0.0, 1.0) * 1000.0) as u64);
            }
        };
        let mut recorder = match (report, window) {
            (Some(_), (Some(a), Some(b))) => {
                Some(scalecast::sim::series::Recorder::new(a, b, sc.tz))
            }
            _ => None,
        };
        let mut none = scalecast::sim::NoObserver;
        let obs: &mut dyn scalecast::sim::Observer = match recorder.as_mut() {
            Some(r) => r,
            None => &mut none,
        };
        let run = match journal_log.as_mut() {
            Some(log) if results.is_empty() => {
                run_variant_logged(&sc, &prepared, v, obs, &mut progress, log)
            }
            _ => run_variant(&sc, &prepared, v, obs, &mut progress),
        };
        let r = run.map_err(|e| match e {
            scalecast::sim::SimError::Trace(t) => Failure::Input(t.to_string()),
            e if e.is_input() => Failure::Input(format!("{}: {e}", path.display())),
            other => Failure::Runtime(anyhow::anyhow!("variant {:?}: {other}", v.name)),
        })?;
        if let Some((bar, _, _)) = bar {
            bar.finish_and_clear();
        }
        if let Some(rec) = recorder {
            let end = Time::parse_rfc3339(&r.end).unwrap_or(Time(0));
            series.push(rec.finish(end));
        }
        results.push(r);
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
    if let Some(json) = json {
        let doc = serde_json::json!({
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
        let mut bytes = serde_json::to_vec_pretty(&doc).context("encoding the results")?;
        bytes.push(b'\n');
        scalecast::report::output::write_atomic(json, &bytes)
            .with_context(|| format!("writing {}", json.display()))?;
    }
    if !quiet && json != Some(Path::new("-")) {
        let out = std::io::stdout();
        let mut out = out.lock();
        writeln!(out, "{}", scalecast::report::table::render(&results))?;
        for n in &prepared.world.notes {
            writeln!(out, "note: {n}")?;
        }
        for n in results.iter().flat_map(|r| &r.notes) {
            if !prepared.world.notes.contains(n) {
                writeln!(out, "note: {n}")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_trace(command: TraceCommand) -> Result<ExitCode, Failure> {
    use scalecast::trace::synth::{SynthParams, write_csv};
    match command {
        TraceCommand::Synth {
            days,
            jobs_per_day,
            seed,
            start,
            out,
        } => {
            SynthParams::check(days, jobs_per_day)
                .map_err(|m| Failure::Input(format!("--days, --jobs-per-day: {m}")))?;
            let start = match start {
                Some(s) => parse_time("start", &s)?,
                None => SynthParams::default_start(),
            };
            let p = SynthParams {
                days,
                jobs_per_day,
                seed,
                start,
            };
            match out {
                None => {
                    let stdout = std::io::stdout();
                    let mut w = BufWriter::new(stdout.lock());
                    write_csv(p, &mut w)?;
                    w.flush()?;
                }
                Some(path) => {
                    let ctx = || format!("writing {}", path.display());
                    let mut f =
                        scalecast::report::output::AtomicFile::create(&path).with_context(ctx)?;
                    write_csv(p, &mut f).with_context(ctx)?;
                    f.commit().with_context(ctx)?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        TraceCommand::Stats {
            trace,
            runner,
            json,
        } => {
            let input = |e: scalecast::trace::TraceError| Failure::Input(e.to_string());
            let filter = scalecast::trace::TraceFilter { runner };
            let file =
                scalecast::trace::TraceFile::scan_filtered(&trace, &filter).map_err(input)?;
            let mut st =
                scalecast::trace::stats::compute(file.arrivals().map_err(input)?).map_err(input)?;
            st.skipped = file.summary.skipped;
            let out = std::io::stdout();
            let mut out = out.lock();
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&st).context("encoding")?
                )?;
            } else {
                write!(out, "{}", st.render())?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn cmd_sweep(
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

fn journal_input(e: scalecast::journal::JournalError) -> Failure {
    Failure::Input(e.to_string())
}

fn cmd_journal(command: JournalCommand) -> Result<ExitCode, Failure> {
    use scalecast::journal::{Reader, workload::Workload};
    let stdout = std::io::stdout();
    match command {
        JournalCommand::Inspect { dir, json } => {
            let r = Reader::open(&dir).map_err(journal_input)?;
            let i = r.inspect().map_err(journal_input)?;
            let mut o = stdout.lock();
            if json {
                writeln!(
                    o,
                    "{}",
                    serde_json::to_string_pretty(&i).context("encoding")?
                )?;
            } else {
                writeln!(o, "journal       {}", dir.display())?;
                writeln!(o, "format        {}", i.header.format)?;
                writeln!(o, "engine        {}", i.header.engine.name())?;
                writeln!(o, "config digest {}", i.header.config_digest)?;
                if let Some(seed) = i.header.seed {
                    writeln!(o, "seed          {seed} (simulated)")?;
                }
                writeln!(o, "events        {}", i.events)?;
                match (i.first_at, i.last_at) {
                    (Some(a), Some(b)) => writeln!(o, "time span     {a} .. {b}")?,
                    _ => writeln!(o, "time span     -")?,
                }
                writeln!(
                    o,
                    "snapshots     {} kept of the newest {}, {} bytes (every {} events){}",
                    i.snapshots.len(),
                    i.header.keep_snapshots,
                    i.snapshot_bytes,
                    i.header.snapshot_every,
                    i.snapshots
                        .last()
                        .map_or(String::new(), |s| format!(", latest after event {s}"))
                )?;
                for (k, n) in &i.by_kind {
                    writeln!(o, "  {k:<16} {n}")?;
                }
                if let Some(d) = &i.dropped {
                    writeln!(
                        o,
                        "torn tail     {} record(s) after event {}: {}",
                        d.count,
                        d.first - 1,
                        d.reason
                    )?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        JournalCommand::Export { dir } => {
            let r = Reader::open(&dir).map_err(journal_input)?;
            let mut o = BufWriter::new(stdout.lock());
            let mut err = None;
            let dropped = r
                .events(|_, e| {
                    if err.is_none()
                        && let Err(x) =
                            writeln!(o, "{}", serde_json::to_string(&e).expect("events encode"))
                    {
                        err = Some(x);
                    }
                })
                .map_err(journal_input)?;
            let flushed = o.flush();
            // A reader that stops early (`| head`) is not a failure.
            for e in err.into_iter().chain(flushed.err()) {
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    return Err(e.into());
                }
            }
            if let Some(d) = dropped {
                eprintln!(
                    "note: a torn tail of {} record(s) from event {} was left out: {}",
                    d.count, d.first, d.reason
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        JournalCommand::Verify { dir } => {
            let r = Reader::open(&dir).map_err(journal_input)?;
            let v = r.verify().map_err(journal_input)?;
            let mut o = stdout.lock();
            writeln!(
                o,
                "{} events replayed, {} snapshots compared",
                v.events, v.snapshots_checked
            )?;
            if let Some(d) = &v.dropped {
                writeln!(
                    o,
                    "torn tail: {} record(s) from event {} left out: {}",
                    d.count, d.first, d.reason
                )?;
            }
            match v.divergence {
                None => {
                    writeln!(o, "ok: replay reproduces every snapshot")?;
                    Ok(ExitCode::SUCCESS)
                }
                Some(seq) => {
                    writeln!(
                        o,
                        "DIVERGENCE: the state replayed up to event {seq} differs from the snapshot taken there"
                    )?;
                    Ok(ExitCode::from(1))
                }
            }
        }
        JournalCommand::CrashWriter {
            dir,
            seed,
            batch,
            snapshot_every,
        } => {
            let (settings, start) = scalecast::journal::workload::crash_settings();
            let mut header = scalecast::journal::Header::new(
                EngineKind::Scalecast,
                settings.clone(),
                start,
                Some(seed),
            );
            header.snapshot_every = snapshot_every;
            let mut j = scalecast::journal::Journal::create(&dir, header).map_err(journal_input)?;
            let mut w = Workload::new(seed, EngineKind::Scalecast, settings, start);
            let mut o = stdout.lock();
            loop {
                let events: Vec<Event> = (0..batch).map(|_| w.next_event()).collect();
                j.append_batch(&events)
                    .map_err(|e| Failure::Runtime(anyhow::anyhow!(e.to_string())))?;
                writeln!(
                    o,
                    "ack {} {:016x}",
                    j.last_seq(),
                    scalecast::journal::digest(j.engine())
                )?;
                o.flush()?;
            }
        }
    }
}
