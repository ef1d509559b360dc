//! `scalecast replay`: feed NDJSON events through the engine and print each action.

use crate::cli::{Failure, host_tz, parse_time};
use scalecast::config::ConfigFile;
use scalecast::core::{Engine, EngineKind, Event};
use scalecast::replay::Replayer;
use std::io::{BufRead, BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;

pub fn run(
    config: &Path,
    runner: Option<&str>,
    engine: &str,
    until: Option<&str>,
    events: &Path,
) -> Result<ExitCode, Failure> {
    let kind: EngineKind = engine
        .parse()
        .map_err(|e: scalecast::core::UnknownEngine| Failure::Input(format!("--engine: {e}")))?;
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
