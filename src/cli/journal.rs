//! `scalecast journal inspect|export|verify|costs|machines`, and the crash tests' hidden writer.

use crate::JournalCommand;
use crate::cli::Failure;
use anyhow::Context;
use scalecast::core::{EngineKind, Event};
use std::io::{BufWriter, Write};
use std::process::ExitCode;

/// A journal that cannot be read, as bad input naming its directory (once: some errors name
/// it themselves).
fn journal_input(dir: &std::path::Path) -> impl Fn(scalecast::journal::JournalError) -> Failure {
    use scalecast::journal::JournalError;
    move |e| match e {
        JournalError::NotAJournal(_) | JournalError::AlreadyExists(_) => {
            Failure::Input(e.to_string())
        }
        e => Failure::Input(format!("{}: {e}", dir.display())),
    }
}

/// The journal in `dir` to read (a running daemon's through its socket; see
/// `journal::remote`).
fn open(dir: &std::path::Path) -> Result<scalecast::journal::remote::Opened, Failure> {
    scalecast::journal::remote::open(dir).map_err(journal_input(dir))
}

pub fn run(command: JournalCommand) -> Result<ExitCode, Failure> {
    use scalecast::journal::workload::Workload;
    let stdout = std::io::stdout();
    match command {
        JournalCommand::Inspect { dir, json } => {
            let opened = open(&dir)?;
            let r = &opened.reader;
            let i = r.inspect().map_err(journal_input(&dir))?;
            let mut o = stdout.lock();
            if json {
                writeln!(
                    o,
                    "{}",
                    serde_json::to_string_pretty(&i).context("encoding")?
                )?;
            } else {
                writeln!(o, "journal       {}", dir.display())?;
                writeln!(o, "format        {}", i.header.format)?;
                writeln!(o, "engine        {}", i.header.engine.name())?;
                writeln!(o, "config digest {}", i.header.config_digest)?;
                if let Some(seed) = i.header.seed {
                    writeln!(o, "seed          {seed} (simulated)")?;
                }
                writeln!(o, "events        {}", i.events)?;
                match (i.first_at, i.last_at) {
                    (Some(a), Some(b)) => writeln!(o, "time span     {a} .. {b}")?,
                    _ => writeln!(o, "time span     -")?,
                }
                writeln!(
                    o,
                    "snapshots     {} kept of the newest {}, {} bytes (every {} events){}",
                    i.snapshots.len(),
                    i.header.keep_snapshots,
                    i.snapshot_bytes,
                    i.header.snapshot_every,
                    i.snapshots
                        .last()
                        .map_or(String::new(), |s| format!(", latest after event {s}"))
                )?;
                for (k, n) in &i.by_kind {
                    writeln!(o, "  {k:<16} {n}")?;
                }
                if let Some(d) = &i.dropped {
                    writeln!(
                        o,
                        "torn tail     {} record(s) after event {}: {}",
                        d.count,
                        d.first - 1,
                        d.reason
                    )?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        JournalCommand::Export { dir } => {
            let opened = open(&dir)?;
            let r = &opened.reader;
            let mut o = BufWriter::new(stdout.lock());
            let mut err = None;
            let dropped = r
                .events(|_, e| {
                    if err.is_none()
                        && let Err(x) =
                            writeln!(o, "{}", serde_json::to_string(&e).expect("events encode"))
                    {
                        err = Some(x);
                    }
                })
                .map_err(journal_input(&dir))?;
            let flushed = o.flush();
            // A reader that stops early (`| head`) is not a failure.
            for e in err.into_iter().chain(flushed.err()) {
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    return Err(e.into());
                }
            }
            if let Some(d) = dropped {
                eprintln!(
                    "note: a torn tail of {} record(s) from event {} was left out: {}",
                    d.count, d.first, d.reason
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        JournalCommand::Costs {
            dir,
            by,
            since,
            top,
            json,
        } => costs(&dir, by, since.as_deref(), top, json.as_deref()),
        JournalCommand::Machines { dir, machine, json } => machines(&dir, machine, json.as_deref()),
        JournalCommand::Verify { dir } => {
            let opened = open(&dir)?;
            let r = &opened.reader;
            let v = r.verify().map_err(journal_input(&dir))?;
            let mut o = stdout.lock();
            writeln!(
                o,
                "{} events replayed, {} snapshots compared",
                v.events, v.snapshots_checked
            )?;
            if let Some(d) = &v.dropped {
                writeln!(
                    o,
                    "torn tail: {} record(s) from event {} left out: {}",
                    d.count, d.first, d.reason
                )?;
            }
            match v.divergence {
                None => {
                    writeln!(o, "ok: replay reproduces every snapshot")?;
                    Ok(ExitCode::SUCCESS)
                }
                Some(seq) => {
                    writeln!(
                        o,
                        "DIVERGENCE: the state replayed up to event {seq} differs from the snapshot taken there"
                    )?;
                    Ok(ExitCode::from(1))
                }
            }
        }
        JournalCommand::CrashWriter {
            dir,
            seed,
            batch,
            snapshot_every,
        } => {
            let (settings, start) = scalecast::journal::workload::crash_settings();
            let mut header = scalecast::journal::Header::new(
                EngineKind::Scalecast,
                settings.clone(),
                start,
                Some(seed),
            );
            header.snapshot_every = snapshot_every;
            let mut j =
                scalecast::journal::Journal::create(&dir, header).map_err(journal_input(&dir))?;
            let mut w = Workload::new(seed, EngineKind::Scalecast, settings, start);
            let mut o = stdout.lock();
            loop {
                let events: Vec<Event> = (0..batch).map(|_| w.next_event()).collect();
                j.append_batch(&events)
                    .map_err(|e| Failure::Runtime(anyhow::anyhow!(e.to_string())))?;
                writeln!(
                    o,
                    "ack {} {:016x}",
                    j.last_seq(),
                    scalecast::journal::digest(j.engine())
                )?;
                o.flush()?;
            }
        }
    }
}

/// `--since 7d` (back from now) or `--since 2026-12-01T00:00:00Z`.
fn since_time(s: &str, now: scalecast::core::Time) -> Result<scalecast::core::Time, Failure> {
    if let Ok(t) = scalecast::core::Time::parse_rfc3339(s.trim()) {
        return Ok(t);
    }
    let secs = scalecast::sim::sweep::parse_duration(s)
        .map_err(|e| Failure::Input(format!("--since {e}, or a time like 2026-12-01T00:00:00Z")))?;
    Ok(now.plus_millis(-((secs * 1000.0) as i64)))
}

fn costs(
    dir: &std::path::Path,
    by: scalecast::trace::keys::KeyKind,
    since: Option<&str>,
    top: Option<usize>,
    json: Option<&std::path::Path>,
) -> Result<ExitCode, Failure> {
    use scalecast::journal::costs;
    use scalecast::report::breakdown::{Column, render_columns};
    costs::recorded(by).map_err(|e| Failure::Input(format!("--by {by}: {e}")))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let since = since
        .map(|s| since_time(s, scalecast::core::Time(now)))
        .transpose()?;
    let opened = open(dir)?;
    let r = &opened.reader;
    let c = costs::costs(r, by, since).map_err(journal_input(dir))?;
    if let Some(d) = &c.dropped {
        eprintln!(
            "note: a torn tail of {} record(s) from event {} was left out: {}",
            d.count, d.first, d.reason
        );
    }
    if let Some(path) = json {
        write_json(path, &c)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut o = std::io::stdout().lock();
    if c.jobs == 0 {
        writeln!(
            o,
            "no job was charged in {}{} (the daemon charges a job when it ends, at the price table's price)",
            dir.display(),
            since.map_or(String::new(), |s| format!(" since {s}"))
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let col = Column {
        name: "charged",
        keys: &c.keys,
        unattributed_usd: 0.0,
        wait_p95_s: c.wait_p95_s,
        jobs: c.jobs,
    };
    write!(o, "{}", render_columns(by.name(), "next-job", &[col], top))?;
    writeln!(
        o,
        "{} jobs ended from {} to {}; estimates from the price table (spot discount applied)",
        c.jobs,
        c.first.map_or_else(String::new, |t| t.to_rfc3339()),
        c.last.map_or_else(String::new, |t| t.to_rfc3339()),
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `value` as pretty JSON to `path`, `-` for standard output (a file is written whole or not
/// at all).
fn write_json(path: &std::path::Path, value: &impl serde::Serialize) -> Result<(), Failure> {
    let mut bytes = serde_json::to_vec_pretty(value).context("encoding")?;
    bytes.push(b'\n');
    if path == std::path::Path::new("-") {
        std::io::stdout().lock().write_all(&bytes)?;
    } else {
        scalecast::report::output::write_atomic(path, &bytes)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// `scalecast journal machines DIR [--machine N] [--json FILE]`.
fn machines(
    dir: &std::path::Path,
    machine: Option<u64>,
    json: Option<&std::path::Path>,
) -> Result<ExitCode, Failure> {
    let opened = open(dir)?;
    let r = &opened.reader;
    let (mut stories, dropped) =
        scalecast::journal::machines::stories(r).map_err(journal_input(dir))?;
    if let Some(d) = dropped {
        eprintln!(
            "note: a torn tail of {} record(s) from event {} was left out: {}",
            d.count, d.first, d.reason
        );
    }
    if let Some(m) = machine {
        let made = stories.len();
        stories.retain(|s| s.machine == m);
        if stories.is_empty() {
            return Err(Failure::Input(format!(
                "{}: no machine {m} in this journal ({made} machine(s) made{})",
                dir.display(),
                match made {
                    0 => String::new(),
                    _ => format!(", numbered from 1 to {made}"),
                }
            )));
        }
    }
    if let Some(path) = json {
        write_json(path, &stories)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut o = BufWriter::new(std::io::stdout().lock());
    if stories.is_empty() {
        writeln!(o, "no machine was made in {}", dir.display())?;
    }
    for s in &stories {
        write!(o, "{}", s.describe())?;
    }
    o.flush()?;
    Ok(ExitCode::SUCCESS)
}
