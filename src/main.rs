//! The command line: parse arguments, call the library, print, set the exit code
//! (0 ok, 1 runtime failure, 2 bad input).

use anyhow::Context;
use chrono_tz::Tz;
use clap::{Parser, Subcommand};
use scalecast::config::check::{self, Severity};
use scalecast::config::{ConfigFile, InputError};
use scalecast::core::{Engine, EngineKind, Event, Time};
use scalecast::replay::Replayer;
use std::io::{BufRead, BufWriter, Write};
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
        let rp = replayer
            .get_or_insert_with(|| Replayer::new(Engine::new(kind, settings.clone(), ev.at)));
        rp.feed(&ev, &mut emit)
            .map_err(|e| Failure::Input(format!("{}: {e}", place(n))))?;
    }
    if let (Some(rp), Some(until)) = (replayer.as_mut(), until) {
        rp.run_until(until, &mut emit)
            .map_err(|e| Failure::Input(format!("--until: {e}")))?;
    }
    if let Some(e) = write_err {
        return Err(Failure::Runtime(e.into()));
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
