//! `scalecast live` (the daemon in the foreground, until SIGTERM), `scalecast live status`, and
//! `scalecast executor prepare|cleanup` (GitLab Runner's custom executor calls them).

use crate::cli::{Failure, host_tz};
use scalecast::live::daemon::{DaemonError, Options, run as daemon};
use scalecast::live::protocol::{Request, Response, Status, call};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LiveArgs {
    #[command(subcommand)]
    pub command: Option<LiveCommand>,
    /// The runner's config.toml (as GitLab Runner reads it).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Which [[runners]] entry to drive, by name (needed when the config has several).
    #[arg(long)]
    pub runner: Option<String>,
    /// The daemon's state directory: journal, manager id, executor socket.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9252).
    #[arg(long)]
    pub metrics: Option<SocketAddr>,
    /// Ship the journal to S3 as it grows (s3://bucket/prefix; written once per object).
    #[arg(long)]
    pub ship: Option<String>,
    /// Seconds between shipments (with --ship).
    #[arg(long, default_value_t = 5)]
    pub ship_every: u64,
    /// Rebuild the state directory (which must have no journal) from a shipped journal, then
    /// run as usual.
    #[arg(long)]
    pub restore: Option<String>,
    /// Log lines as text or as JSON objects (one per line, on stderr).
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(clap::Subcommand)]
pub enum LiveCommand {
    /// What the running daemon holds: machines, waiting jobs, the idle target.
    Status {
        #[arg(long)]
        state: PathBuf,
        /// Print the status as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Subcommand)]
pub enum ExecutorCommand {
    /// prepare_exec: ask the daemon for a machine for the job in CUSTOM_ENV_CI_JOB_ID, and wait
    /// until it has one.
    Prepare(ExecutorArgs),
    /// cleanup_exec: the job in CUSTOM_ENV_CI_JOB_ID is over.
    Cleanup(ExecutorArgs),
}

#[derive(clap::Args)]
pub struct ExecutorArgs {
    /// The daemon's state directory (else SCALECAST_STATE).
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// How long to keep trying while no daemon answers (a restart), in seconds.
    #[arg(long, default_value_t = 300)]
    pub patience: u64,
}

pub fn run(args: LiveArgs) -> Result<ExitCode, Failure> {
    if let Some(LiveCommand::Status { state, json }) = args.command {
        return status(&state, json);
    }
    let need = |v: Option<PathBuf>, flag: &str| {
        v.ok_or_else(|| Failure::Input(format!("scalecast live needs --{flag}")))
    };
    let config = need(args.config, "config")?;
    let state = need(args.state, "state")?;
    init_logs(args.log_format);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(e.into()))?;
    let target = |flag: &str, v: Option<String>| {
        v.map(|v| {
            v.parse::<scalecast::live::ship::Target>()
                .map_err(|e| Failure::Input(format!("--{flag}: {e}")))
        })
        .transpose()
    };
    let opts = Options {
        host_tz: host_tz(),
        metrics: args.metrics,
        ship: target("ship", args.ship)?,
        restore: target("restore", args.restore)?,
        ship_every: Duration::from_secs(args.ship_every.max(1)),
        ..Options::new(config, args.runner, state)
    };
    rt.block_on(daemon(&opts)).map_err(|e| match e {
        DaemonError::Config(e) => Failure::Input(e.to_string()),
        DaemonError::NoMachine => Failure::Input(format!("{}: {e}", opts.config.display())),
        e @ DaemonError::Ship(
            scalecast::live::ship::ShipError::StateNotEmpty(_)
            | scalecast::live::ship::ShipError::Empty(_)
            | scalecast::live::ship::ShipError::Damaged { .. },
        ) => Failure::Input(e.to_string()),
        other => Failure::Runtime(other.into()),
    })?;
    Ok(ExitCode::SUCCESS)
}

fn init_logs(format: LogFormat) {
    let b = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO);
    match format {
        LogFormat::Text => b.init(),
        LogFormat::Json => b.json().flatten_event(true).init(),
    }
}

fn status(state: &std::path::Path, json: bool) -> Result<ExitCode, Failure> {
    let answer = call(
        state,
        &Request::Status,
        Duration::from_secs(2),
        Duration::from_millis(200),
    )
    .map_err(|e| Failure::Runtime(e.into()))?;
    let Response::Status(s) = answer else {
        return Err(Failure::Runtime(anyhow::anyhow!(
            "unexpected answer: {answer:?}"
        )));
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&s).expect("status encodes")
        );
    } else {
        print!("{}", status_text(&s));
    }
    Ok(ExitCode::SUCCESS)
}

fn status_text(s: &Status) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let period = s.period.map_or("[runners.machine]".to_string(), |p| {
        format!("autoscaling entry {p}")
    });
    let _ = writeln!(
        o,
        "manager {}  engine {}  at {}",
        s.manager, s.engine, s.now
    );
    let _ = writeln!(
        o,
        "active: {period}: IdleCount {}, IdleTime {} s; idle target {}",
        s.idle_count, s.idle_time_s, s.idle_target
    );
    let _ = writeln!(
        o,
        "jobs: {} running, {} waiting{}",
        s.running,
        s.waiting.len(),
        if s.waiting.is_empty() {
            String::new()
        } else {
            format!(
                " ({})",
                s.waiting
                    .iter()
                    .map(|j| j.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    let _ = writeln!(
        o,
        "cloud calls in flight: {} create, {} terminate{}",
        s.creating_calls,
        s.terminating_calls,
        s.backing_off_until
            .as_ref()
            .map_or(String::new(), |t| format!("; backing off until {t}"))
    );
    let _ = writeln!(
        o,
        "{:>8}  {:<20}  {:<9}  {:>4}  {:>10}  {:<24}  notice",
        "machine", "instance", "state", "uses", "job", "idle since"
    );
    for m in &s.machines {
        let line = format!(
            "{:>8}  {:<20}  {:<9}  {:>4}  {:>10}  {:<24}  {}",
            m.machine,
            m.instance.as_deref().unwrap_or("-"),
            m.state,
            m.uses,
            m.job.map_or("-".into(), |j| j.to_string()),
            m.idle_since.as_deref().unwrap_or("-"),
            if m.notice { "yes" } else { "" }
        );
        let _ = writeln!(o, "{}", line.trim_end());
    }
    o
}

/// The custom executor's exit code for a system failure: GitLab Runner passes it in
/// SYSTEM_FAILURE_EXIT_CODE (1 when run by hand).
fn system_failure() -> ExitCode {
    let code = std::env::var("SYSTEM_FAILURE_EXIT_CODE")
        .ok()
        .and_then(|v| v.trim().parse::<u8>().ok())
        .unwrap_or(1);
    ExitCode::from(code)
}

/// `scalecast executor prepare|cleanup`: failures are system failures (GitLab may retry the
/// job with `retry: when: runner_system_failure`), said on stderr, which the job log shows.
pub fn executor(cmd: ExecutorCommand) -> ExitCode {
    let (args, prepare) = match cmd {
        ExecutorCommand::Prepare(a) => (a, true),
        ExecutorCommand::Cleanup(a) => (a, false),
    };
    let fail = |m: String| {
        eprintln!("scalecast executor: {m}");
        system_failure()
    };
    let Some(state) = args
        .state
        .or_else(|| std::env::var_os("SCALECAST_STATE").map(PathBuf::from))
    else {
        return fail("needs --state DIR (or SCALECAST_STATE)".into());
    };
    let job = match std::env::var("CUSTOM_ENV_CI_JOB_ID") {
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(j) => j,
            Err(_) => return fail(format!("CUSTOM_ENV_CI_JOB_ID is not a job id: {v:?}")),
        },
        Err(_) => {
            return fail(
                "CUSTOM_ENV_CI_JOB_ID is not set (GitLab Runner's custom executor sets it)".into(),
            );
        }
    };
    let req = if prepare {
        Request::Prepare { job }
    } else {
        Request::Cleanup { job }
    };
    match call(
        &state,
        &req,
        Duration::from_secs(args.patience),
        Duration::from_millis(250),
    ) {
        Ok(Response::Started {
            machine,
            instance,
            name,
            ..
        }) => {
            println!(
                "scalecast: job {job} runs on machine {machine} ({name}, instance {})",
                instance.as_deref().unwrap_or("unknown")
            );
            ExitCode::SUCCESS
        }
        Ok(Response::Cleaned { was, .. }) => {
            println!("scalecast: job {job} cleaned up (it was {was})");
            ExitCode::SUCCESS
        }
        Ok(Response::Failed { reason, .. }) => fail(reason),
        Ok(other) => fail(format!("unexpected answer from the daemon: {other:?}")),
        Err(e) => fail(e.to_string()),
    }
}
