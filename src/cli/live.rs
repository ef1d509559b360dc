//! `scalecast live`: the daemon in the foreground, until SIGTERM or Ctrl-C.

use crate::cli::{Failure, host_tz};
use scalecast::live::daemon::{DaemonError, Options, run as daemon};
use std::path::PathBuf;
use std::process::ExitCode;

pub fn run(config: PathBuf, runner: Option<String>, state: PathBuf) -> Result<ExitCode, Failure> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(e.into()))?;
    let opts = Options {
        config,
        runner,
        state,
        host_tz: host_tz(),
    };
    rt.block_on(daemon(&opts)).map_err(|e| match e {
        DaemonError::Config(e) => Failure::Input(e.to_string()),
        DaemonError::NoMachine => Failure::Input(format!("{}: {e}", opts.config.display())),
        other => Failure::Runtime(other.into()),
    })?;
    Ok(ExitCode::SUCCESS)
}
