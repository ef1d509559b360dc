//! `scalecast live` (the daemon in the foreground, until SIGTERM), `scalecast live status`, and
//! `scalecast executor prepare|cleanup` (GitLab Runner's custom executor calls them).

use crate::cli::{Failure, host_tz};
use scalecast::live::daemon::{DaemonError, DockerOptions, Options, run as daemon};
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
    /// Reach every machine's Docker at this HOST:PORT instead of its own address on port
    /// 2376 (a tunnel, or a test's one dockerd); its certificate must still name the machine.
    #[arg(long)]
    pub docker_endpoint: Option<String>,
    /// Seconds a running instance has for its Docker to answer over TLS before it is removed
    /// and replaced.
    #[arg(long, default_value_t = 600)]
    pub docker_ready_timeout: u64,
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
    /// The daemon's CA (in STATE/ca, made when missing): issue a certificate from it into
    /// --out: a machine's Docker server certificate (`--server NAME`, e.g. for a host set up by
    /// hand, or a test), or a client one for `docker --tlsverify` by hand (`--client`).
    Ca {
        #[arg(long)]
        state: PathBuf,
        /// Issue a server certificate for this name (`m<ID>.machines.scalecast.internal` for
        /// machine ID; a leading `*.` names every machine).
        #[arg(long, conflicts_with = "client")]
        server: Option<String>,
        /// And for these addresses too (with --server).
        #[arg(long, requires = "server")]
        ip: Vec<std::net::IpAddr>,
        /// Issue a client certificate.
        #[arg(long)]
        client: bool,
        /// Where to write ca.pem and the pair (cert.pem, key.pem).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(clap::Subcommand)]
pub enum ExecutorCommand {
    /// config_exec: print the JSON GitLab Runner reads (builds_dir, cache_dir, hostname,
    /// driver, job_env).
    Config(ExecutorArgs),
    /// prepare_exec: a machine for the job in CUSTOM_ENV_CI_JOB_ID (waiting until it has
    /// one), then its images, builds volume and services there.
    Prepare(ExecutorArgs),
    /// run_exec SCRIPT STAGE: run the script GitLab Runner wrote, as the named stage, in the
    /// job's container on its machine, streaming its output.
    Run {
        #[command(flatten)]
        args: ExecutorArgs,
        script: PathBuf,
        stage: String,
    },
    /// cleanup_exec: remove the job's containers and volume, then tell the daemon it is over.
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
    match args.command {
        Some(LiveCommand::Status { state, json }) => return status(&state, json),
        Some(LiveCommand::Ca {
            state,
            server,
            ip,
            client,
            out,
        }) => return issue(&state, server, &ip, client, &out),
        None => {}
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
        docker: Some(DockerOptions {
            endpoint: args.docker_endpoint,
            ready_timeout: Duration::from_secs(args.docker_ready_timeout),
            ..DockerOptions::default()
        }),
        ..Options::new(config, args.runner, state)
    };
    rt.block_on(daemon(&opts)).map_err(|e| match e {
        DaemonError::Config(e) => Failure::Input(e.to_string()),
        DaemonError::NoMachine => Failure::Input(format!("{}: {e}", opts.config.display())),
        e @ DaemonError::Tls(scalecast::live::tls::TlsError::Bad(..)) => {
            Failure::Input(e.to_string())
        }
        e @ DaemonError::Ship(
            scalecast::live::ship::ShipError::StateNotEmpty(_)
            | scalecast::live::ship::ShipError::Empty(_)
            | scalecast::live::ship::ShipError::Damaged { .. },
        ) => Failure::Input(e.to_string()),
        other => Failure::Runtime(other.into()),
    })?;
    Ok(ExitCode::SUCCESS)
}

fn issue(
    state: &std::path::Path,
    server: Option<String>,
    ips: &[std::net::IpAddr],
    client: bool,
    out: &std::path::Path,
) -> Result<ExitCode, Failure> {
    use scalecast::live::tls::Ca;
    let runtime = |e: scalecast::live::tls::TlsError| Failure::Runtime(e.into());
    let ca = Ca::open(state).map_err(runtime)?;
    let pair = match (server, client) {
        (Some(name), false) => ca.issue_server(&name, ips).map_err(runtime)?,
        (None, true) => ca.issue_client().map_err(runtime)?,
        _ => {
            return Err(Failure::Input(
                "scalecast live ca needs --server NAME or --client".into(),
            ));
        }
    };
    let io = |p: &std::path::Path, e: std::io::Error| {
        Failure::Runtime(anyhow::anyhow!("{}: {e}", p.display()))
    };
    std::fs::create_dir_all(out).map_err(|e| io(out, e))?;
    for (name, text, secret) in [
        ("ca.pem", ca.cert_pem(), false),
        ("cert.pem", pair.cert_pem.as_str(), false),
        ("key.pem", pair.key_pem.as_str(), true),
    ] {
        let p = out.join(name);
        scalecast::report::output::write_atomic(&p, text.as_bytes()).map_err(|e| io(&p, e))?;
        if secret {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| io(&p, e))?;
        }
    }
    println!("wrote ca.pem, cert.pem and key.pem to {}", out.display());
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
        "{:>8}  {:<20}  {:<22}  {:<9}  {:>4}  {:>10}  {:<24}  notice",
        "machine", "instance", "type", "state", "uses", "job", "idle since"
    );
    for m in &s.machines {
        let line = format!(
            "{:>8}  {:<20}  {:<22}  {:<9}  {:>4}  {:>10}  {:<24}  {}",
            m.machine,
            m.instance.as_deref().unwrap_or("-"),
            match (&m.instance_type, m.spot) {
                (Some(t), Some(true)) => format!("{t} spot"),
                (Some(t), _) => format!("{t} on-demand"),
                (None, _) => "-".into(),
            },
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

/// An exit code GitLab Runner passes in `var` (1 when run by hand).
fn exit_code(var: &str) -> ExitCode {
    let code = std::env::var(var)
        .ok()
        .and_then(|v| v.trim().parse::<u8>().ok())
        .unwrap_or(1);
    ExitCode::from(code)
}

/// `scalecast executor config|prepare|run|cleanup`: a build failure exits with
/// BUILD_FAILURE_EXIT_CODE, anything else that failed with SYSTEM_FAILURE_EXIT_CODE (GitLab
/// may retry the job with `retry: when: runner_system_failure`), said on stderr, which the
/// job log shows.
pub fn executor(cmd: ExecutorCommand) -> ExitCode {
    use scalecast::live::docker::JobEnv;
    use scalecast::live::executor::{self as ex, Outcome, Stage};
    let fail = |m: String| {
        eprintln!("scalecast executor: {m}");
        exit_code("SYSTEM_FAILURE_EXIT_CODE")
    };
    let args = match &cmd {
        ExecutorCommand::Config(a) | ExecutorCommand::Prepare(a) | ExecutorCommand::Cleanup(a) => a,
        ExecutorCommand::Run { args, .. } => args,
    };
    let Some(state) = args
        .state
        .clone()
        .or_else(|| std::env::var_os("SCALECAST_STATE").map(PathBuf::from))
    else {
        return fail("needs --state DIR (or SCALECAST_STATE)".into());
    };
    let mut st = Stage {
        state,
        job: 0,
        patience: Duration::from_secs(args.patience),
        watch_every: Duration::from_secs(2),
    };
    if let ExecutorCommand::Config(_) = cmd {
        return match ex::config(&st) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        };
    }
    st.job = match std::env::var("CUSTOM_ENV_CI_JOB_ID") {
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
    let env = match JobEnv::from_vars(st.job, |k| std::env::var(k).ok()) {
        Ok(e) => e,
        Err(e) => return fail(e.to_string()),
    };
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    let outcome = match cmd {
        ExecutorCommand::Config(_) => unreachable!("answered above"),
        ExecutorCommand::Prepare(_) => ex::prepare(&st, &env, &mut out),
        ExecutorCommand::Run { script, stage, .. } => {
            ex::run(&st, &env, &script, &stage, &mut out, &mut err)
        }
        ExecutorCommand::Cleanup(_) => ex::cleanup(&st, &env, &mut out),
    };
    match outcome {
        Outcome::Ok => ExitCode::SUCCESS,
        Outcome::BuildFailure(code) => {
            eprintln!("scalecast executor: the script exited with {code}");
            exit_code("BUILD_FAILURE_EXIT_CODE")
        }
        Outcome::SystemFailure(m) => fail(m),
    }
}
