//! `scalecast check`: review a config.toml; errors exit 2, warnings are listed. And
//! `scalecast migrate`, which rewrites one for scalecast's custom executor.

use crate::cli::{Failure, host_tz};
use scalecast::config::ConfigFile;
use scalecast::config::check::{self, Severity};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

pub fn run(config: &Path, runner: Option<&str>, json: bool) -> Result<ExitCode, Failure> {
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

/// `scalecast migrate`: the migrated config.toml on stdout, what changed on stderr.
pub fn migrate(
    config: &Path,
    runner: Option<&str>,
    state: String,
    binary: String,
) -> Result<ExitCode, Failure> {
    use scalecast::config::migrate::{Target, migrate};
    let text = std::fs::read_to_string(config)
        .map_err(|e| Failure::Input(format!("{}: {e}", config.display())))?;
    let m = migrate(config, &text, runner, &Target { binary, state })
        .map_err(|e| Failure::Input(e.to_string()))?;
    std::io::stdout().lock().write_all(m.text.as_bytes())?;
    eprintln!("runner {:?} migrated to scalecast:", m.runner);
    for c in &m.changes {
        eprintln!("  {c}");
    }
    eprintln!("every other key, table and comment is as it was.");
    Ok(ExitCode::SUCCESS)
}
