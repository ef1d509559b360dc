//! The command line: parse the arguments and hand them to the command's module in `cli/`
//! (exit codes: 0 ok, 1 runtime failure, 2 bad input).

mod cli;

use clap::{Parser, Subcommand};
use cli::Failure;
use std::path::PathBuf;
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
    /// Print CONFIG with one docker+machine runner switched to GitLab Runner's custom executor
    /// driven by scalecast (every other key and comment kept); say what changed on stderr.
    Migrate {
        config: PathBuf,
        #[arg(long)]
        runner: Option<String>,
        /// The daemon's state directory the executor stages talk to.
        #[arg(long, default_value = "/var/lib/scalecast")]
        state: String,
        /// Where the scalecast binary is on the manager.
        #[arg(long, default_value = "/usr/local/bin/scalecast")]
        binary: String,
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
        /// Variants run at once (default: all cores); the results do not depend on it.
        #[arg(long)]
        threads: Option<usize>,
        /// With --journal: keep the newest N snapshots, delete older ones.
        #[arg(long, value_name = "N", default_value_t = scalecast::journal::DEFAULT_KEEP_SNAPSHOTS, requires = "journal")]
        keep_snapshots: u64,
        /// Split each variant's cost by a key of the trace: project, pipeline, ref, stage,
        /// name, user, tags, runner or job (docs/attribution.md).
        #[arg(long, value_name = "KEY")]
        by: Option<scalecast::trace::keys::KeyKind>,
        /// With --by: show the N costliest keys (of the baseline) and the rest as "other".
        #[arg(long, value_name = "N", requires = "by")]
        top: Option<usize>,
        /// With --by: write every key of every variant as CSV to FILE.
        #[arg(long, value_name = "FILE", requires = "by")]
        by_csv: Option<PathBuf>,
        /// With --by: where booting and idle dollars go: next-job (the job that next takes
        /// the machine) or spread (over the day's jobs by busy cost).
        #[arg(long, value_name = "RULE", default_value = "next-job", requires = "by")]
        attribution: scalecast::sim::attribution::Rule,
        /// No progress bar and no table.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Fit the world (boot time, creation failures, pick-up delay) so that the baseline's
    /// simulated waits match the waits the trace recorded.
    Calibrate {
        scenario: PathBuf,
        /// What to fit, comma-separated: boot_seconds, boot_p95, create_failure_probability,
        /// pickup_seconds.
        #[arg(long, value_name = "PARAM[,PARAM...]", required = true)]
        fit: Vec<String>,
        /// Override a setting first, e.g. --set IdleCount=5.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Write the fit as JSON to FILE (`-` for standard output).
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Runs at once (default: all cores); the fit does not depend on it.
        #[arg(long)]
        threads: Option<usize>,
        #[arg(long, short)]
        quiet: bool,
    },
    /// Run every combination of a grid of settings on all cores; recommend the cheapest that
    /// meets a wait target.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Sweep {
        #[command(subcommand)]
        command: Option<SweepCommand>,
        #[arg(required = true)]
        scenario: Option<PathBuf>,
        /// KEY=V1,V2,... (repeat for more axes), e.g. --grid IdleCount=0,2,5
        #[arg(long = "grid", value_name = "KEY=V1,V2", required = true)]
        grid: Vec<String>,
        /// Run only shard I of N (every N-th combination from the I-th, counting from 0; shard
        /// 0 also runs the current config) and write DIR/shard.json for `sweep merge`.
        #[arg(long, value_name = "I/N")]
        shard: Option<scalecast::sim::sweep::Shard>,
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
    /// Run the fleet on EC2 as the engine decides (feature `live`), until SIGTERM;
    /// `live status` asks the running daemon what it holds.
    #[cfg(feature = "live")]
    Live(cli::live::LiveArgs),
    /// GitLab Runner's custom executor stages (feature `live`): prepare_exec, cleanup_exec.
    #[cfg(feature = "live")]
    Executor {
        #[command(subcommand)]
        command: cli::live::ExecutorCommand,
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
enum SweepCommand {
    /// Merge the shards of a sweep (each DIR holds a shard.json, or name the file) into the
    /// files the unsharded sweep writes: sweep.csv, sweep.json, pareto.png.
    Merge {
        #[arg(required = true, value_name = "DIR")]
        shards: Vec<PathBuf>,
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        #[arg(long, short)]
        quiet: bool,
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
    /// What the live daemon charged the jobs that ended, by a key (docs/attribution.md).
    Costs {
        dir: PathBuf,
        /// project, pipeline, ref, stage, name, user or job.
        #[arg(long, value_name = "KEY", default_value = "project")]
        by: scalecast::trace::keys::KeyKind,
        /// Only jobs that ended in the last DURATION (7d, 24h, 30m) or since a time
        /// (2026-12-01T00:00:00Z).
        #[arg(long, value_name = "DURATION|TIME")]
        since: Option<String>,
        /// Show the N costliest keys and the rest as "other".
        #[arg(long, value_name = "N")]
        top: Option<usize>,
        /// Write the result as JSON to FILE (`-` for standard output) instead of a table.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
    /// Each machine's story: why it was made, what the cloud made for it, what it ran, why and
    /// when it went.
    Machines {
        dir: PathBuf,
        /// Only this machine.
        #[arg(long, value_name = "N")]
        machine: Option<u64>,
        /// Write the stories as JSON to FILE (`-` for standard output) instead of text.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
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

fn run(args: Cli) -> Result<ExitCode, Failure> {
    match args.command {
        Command::Check {
            config,
            runner,
            json,
        } => cli::check::run(&config, runner.as_deref(), json),
        Command::Calibrate {
            scenario,
            fit,
            sets,
            json,
            threads,
            quiet,
        } => cli::calibrate::run(&cli::calibrate::Args {
            scenario: &scenario,
            fit: &fit,
            sets: &sets,
            json: json.as_deref(),
            threads,
            quiet,
        }),
        Command::Migrate {
            config,
            runner,
            state,
            binary,
        } => cli::check::migrate(&config, runner.as_deref(), state, binary),
        Command::Periods {
            config,
            runner,
            at,
            from,
            to,
            json,
        } => cli::periods::run(&config, runner.as_deref(), at, from, to, json),
        Command::Simulate {
            scenario,
            sets,
            json,
            report,
            journal,
            snapshot_every,
            keep_snapshots,
            threads,
            by,
            top,
            by_csv,
            attribution,
            quiet,
        } => cli::simulate::run(
            &scenario,
            &sets,
            json.as_deref(),
            report.as_deref(),
            journal
                .as_deref()
                .map(|d| (d, snapshot_every, keep_snapshots)),
            by.map(|by| cli::simulate::ByKey {
                by,
                top,
                csv: by_csv,
                rule: attribution,
            }),
            threads,
            quiet,
        ),
        Command::Trace { command } => cli::trace::run(command),
        Command::Journal { command } => cli::journal::run(command),
        Command::Sweep {
            command: Some(SweepCommand::Merge { shards, out, quiet }),
            ..
        } => cli::sweep::merge(&shards, &out, quiet),
        Command::Sweep {
            command: None,
            scenario,
            grid,
            shard,
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
            let scenario = scenario.expect("clap requires the scenario without a subcommand");
            cli::sweep::run(&cli::sweep::SweepArgs {
                path: &scenario,
                grid: &grid,
                sets: &sets,
                out_dir: &out,
                threads,
                target,
                shard,
                quiet,
            })
        }
        #[cfg(feature = "live")]
        Command::Live(args) => cli::live::run(args),
        #[cfg(feature = "live")]
        Command::Executor { command } => Ok(cli::live::executor(command)),
        Command::Replay {
            config,
            runner,
            engine,
            until,
            events,
        } => cli::replay::run(
            &config,
            runner.as_deref(),
            &engine,
            until.as_deref(),
            &events,
        ),
    }
}
