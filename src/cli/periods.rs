//! `scalecast periods`: the idle settings in force at a time, or every change in a window.

use crate::cli::{Failure, host_tz, parse_time};
use anyhow::Context;
use scalecast::config::ConfigFile;
use scalecast::core::Time;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

pub fn run(
    config: &Path,
    runner: Option<&str>,
    at: Option<String>,
    from: Option<String>,
    to: Option<String>,
    json: bool,
) -> Result<ExitCode, Failure> {
    let cfg = ConfigFile::load(config)?;
    let r = cfg.runner(runner)?;
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
