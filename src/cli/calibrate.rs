//! `scalecast calibrate SCENARIO --fit PARAM[,PARAM...]`: fit the world to the waits the trace
//! recorded, and say how close the baseline was before and after.

use crate::cli::{Failure, host_tz, parse_sets};
use anyhow::Context;
use scalecast::sim::calibration::Calibration;
use scalecast::sim::fit::{Fit, Param};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

pub struct Args<'a> {
    pub scenario: &'a Path,
    pub fit: &'a [String],
    pub sets: &'a [String],
    pub json: Option<&'a Path>,
    pub threads: Option<usize>,
    pub quiet: bool,
}

/// `boot_seconds,pickup_seconds` (or the flag repeated) into parameters, each once, in the
/// order of the list of parameters.
fn params(list: &[String]) -> Result<Vec<Param>, Failure> {
    let mut out = Vec::new();
    for p in list
        .iter()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.trim().is_empty())
    {
        let p: Param = p
            .parse()
            .map_err(|e| Failure::Input(format!("--fit: {e}")))?;
        if !out.contains(&p) {
            out.push(p);
        }
    }
    if out.is_empty() {
        return Err(Failure::Input("--fit: name at least one parameter".into()));
    }
    out.sort();
    Ok(out)
}

fn row(
    label: &str,
    before: &Calibration,
    after: &Calibration,
    f: fn(&Calibration) -> f64,
) -> String {
    format!(
        "{label:<28} {:>10} {:>10}\n",
        format!("{:+.1}s", f(before)),
        format!("{:+.1}s", f(after))
    )
}

pub fn run(a: &Args) -> Result<ExitCode, Failure> {
    use scalecast::config::scenario::Scenario;
    let params = params(a.fit)?;
    let sets = parse_sets(a.sets)?;
    let sc = Scenario::load(a.scenario, &sets, host_tz())?;
    let prepared =
        scalecast::sim::scenario_run::prepare(&sc).map_err(|e| Failure::Input(e.to_string()))?;
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let show = !a.quiet && std::io::stderr().is_terminal();
    let mut progress = |runs: u64| {
        if show {
            eprint!("\rcalibrating: {runs} runs of the baseline");
        }
    };
    let fit = scalecast::sim::fit::fit(&sc, &prepared, &params, threads, &mut progress);
    if show {
        eprintln!();
    }
    let fit = fit.map_err(|e| match e {
        scalecast::sim::fit::FitError::NothingObserved => {
            Failure::Input(format!("{}: {e}", a.scenario.display()))
        }
        scalecast::sim::fit::FitError::Sim(e) if e.is_input() => {
            Failure::Input(format!("{}: {e}", a.scenario.display()))
        }
        other => Failure::Runtime(anyhow::anyhow!("{other}")),
    })?;
    if let Some(path) = a.json {
        let mut bytes = serde_json::to_vec_pretty(&fit).context("encoding the fit")?;
        bytes.push(b'\n');
        if path == Path::new("-") {
            std::io::stdout().lock().write_all(&bytes)?;
            return Ok(ExitCode::SUCCESS);
        }
        scalecast::report::output::write_atomic(path, &bytes)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if !a.quiet {
        write!(std::io::stdout().lock(), "{}", render(a.scenario, &fit))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The fit for people: each value before and after, the errors, the lines to paste.
pub fn render(scenario: &Path, fit: &Fit) -> String {
    let mut o = format!(
        "calibrated {:?} of {} against {} recorded waits ({} runs)\n\n",
        fit.variant,
        scenario.display(),
        fit.observed_jobs,
        fit.runs
    );
    o.push_str(&format!("{:<28} {:>10} {:>10}\n", "", "before", "after"));
    for p in &fit.params {
        o.push_str(&format!(
            "{:<28} {:>10} {:>10}\n",
            p.name(),
            format!("{:.3}", p.get(&fit.start)),
            format!("{:.3}", p.get(&fit.world))
        ));
    }
    o.push_str(&row(
        "p50 error (sim - observed)",
        &fit.before,
        &fit.after,
        |c| c.p50_error_s,
    ));
    o.push_str(&row(
        "p95 error (sim - observed)",
        &fit.before,
        &fit.after,
        |c| c.p95_error_s,
    ));
    o.push_str(&format!(
        "{:<28} {:>10} {:>10}\n",
        "distance",
        format!("{:.1}s", fit.before.distance),
        format!("{:.1}s", fit.after.distance)
    ));
    if fit.after.distance >= fit.before.distance {
        o.push_str("\nno value in the searched ranges is closer than the scenario's own.\n");
    } else {
        o.push_str("\npaste into the scenario:\n\n");
        o.push_str(&fit.snippet());
    }
    o
}
