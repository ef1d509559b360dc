//! `scalecast trace synth|stats`: make a synthetic trace, or summarise one.

use crate::TraceCommand;
use crate::cli::{Failure, parse_time};
use anyhow::Context;
use std::io::{BufWriter, Write};
use std::process::ExitCode;

pub fn run(command: TraceCommand) -> Result<ExitCode, Failure> {
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
