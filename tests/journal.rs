//! The journal loses nothing that was acknowledged, cuts only a torn tail, never returns a
//! wrong event, and rebuilds exactly the state the writer had.

mod common;
use common::{scalecast, text};
use proptest::prelude::*;
use scalecast::core::{EngineKind, Event, Settings};
use scalecast::journal::workload::{Workload, crash_settings};
use scalecast::journal::{Header, Journal, Reader, digest};
use scalecast::rng::Rng;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn temp(name: &str) -> PathBuf {
    let d = common::tmp().join(format!("journal-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// The first `n` events of the crash writer's workload, and the state after them.
fn expected(seed: u64, n: u64) -> (Vec<Event>, u64) {
    let (settings, start) = crash_settings();
    let mut w = Workload::new(seed, EngineKind::Scalecast, settings, start);
    let events: Vec<Event> = (0..n).map(|_| w.next_event()).collect();
    (events, digest(w.engine()))
}

fn all_events(dir: &Path) -> Vec<Event> {
    let r = Reader::open(dir).unwrap();
    let mut v = Vec::new();
    r.events(|_, e| v.push(e)).unwrap();
    v
}

/// The hidden writer that appends seeded batches until it is killed.
fn crash_writer(dir: &Path, seed: u64, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_scalecast"));
    c.args(["journal", "_crash-writer", dir.to_str().unwrap()])
        .args(["--seed", &seed.to_string()])
        .args(extra);
    c
}

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_event() {
    let mut rng = Rng::new(2026);
    for round in 0..20 {
        let dir = temp(&format!("crash-{round}"));
        let seed = 100 + round;
        let mut child = crash_writer(&dir, seed, &["--batch", "20", "--snapshot-every", "100"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut acks = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let mut p = line.split_whitespace().skip(1);
                let seq: u64 = p.next().unwrap().parse().unwrap();
                let d = u64::from_str_radix(p.next().unwrap(), 16).unwrap();
                acks.push((seq, d));
            }
            acks
        });
        std::thread::sleep(std::time::Duration::from_millis(60 + rng.below(400)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let acks = reader.join().unwrap();
        let last_ack = acks.last().map_or(0, |a| a.0);

        let (j, rec) = match Journal::open(&dir) {
            Ok(x) => x,
            // Killed before the journal existed: nothing was acknowledged, nothing to find.
            Err(e) if last_ack == 0 => {
                eprintln!("round {round}: killed before the first acknowledgement ({e})");
                continue;
            }
            Err(e) => panic!("round {round}: {e}"),
        };
        let n = j.last_seq();
        assert!(
            n >= last_ack,
            "round {round}: acknowledged {last_ack}, recovered {n} ({rec})"
        );
        let (want, want_digest) = expected(seed, n);
        assert_eq!(
            digest(j.engine()),
            want_digest,
            "round {round}: state after {n} events"
        );
        if let Some((_, d)) = acks.iter().find(|a| a.0 == n) {
            assert_eq!(*d, want_digest, "round {round}: the writer's own digest");
        }
        drop(j);
        assert_eq!(all_events(&dir), want, "round {round}: events 1..={n}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn make_journal(dir: &Path, n: usize) -> Vec<Event> {
    let (settings, start) = crash_settings();
    let mut header = Header::new(EngineKind::Scalecast, settings.clone(), start, Some(1));
    header.snapshot_every = 500;
    let mut j = Journal::create(dir, header).unwrap();
    let mut w = Workload::new(7, EngineKind::Scalecast, settings, start);
    let events: Vec<Event> = (0..n).map(|_| w.next_event()).collect();
    for chunk in events.chunks(100) {
        j.append_batch(chunk).unwrap();
    }
    events
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else if std::fs::metadata(&p).map(|m| m.len() > 0).unwrap_or(false) {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let t = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &t);
        } else {
            std::fs::copy(e.path(), t).unwrap();
        }
    }
}

#[test]
fn damaged_files_give_a_correct_prefix_or_a_clear_error() {
    let base = temp("pristine");
    let events = make_journal(&base, 2000);
    let mut rng = Rng::new(99);
    let (mut opened, mut refused) = (0, 0);
    for trial in 0..30 {
        let dir = temp(&format!("damaged-{trial}"));
        copy_dir(&base, &dir);
        let fs = files(&dir);
        let f = &fs[rng.below(fs.len() as u64) as usize];
        let mut bytes = std::fs::read(f).unwrap();
        if trial % 2 == 0 {
            bytes.truncate(rng.below(bytes.len() as u64) as usize);
        } else {
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(bytes.len() as u64) as usize;
                bytes[i] ^= 1 << rng.below(8);
            }
        }
        std::fs::write(f, &bytes).unwrap();
        let outcome = std::panic::catch_unwind(|| match Reader::open(&dir) {
            Err(e) => Err(e.to_string()),
            Ok(r) => {
                let mut got = Vec::new();
                match r.events(|_, e| got.push(e)) {
                    Ok(_) => Ok(got),
                    Err(e) => Err(e.to_string()),
                }
            }
        });
        match outcome {
            Err(_) => panic!("trial {trial} ({}): panicked", f.display()),
            Ok(Err(msg)) => {
                assert!(!msg.is_empty());
                refused += 1;
            }
            Ok(Ok(got)) => {
                assert!(got.len() <= events.len());
                assert_eq!(got, events[..got.len()], "trial {trial}: wrong events");
                opened += 1;
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    eprintln!("{opened} damaged copies opened with a correct prefix, {refused} refused clearly");
    assert_eq!(opened + refused, 30);
}

#[test]
fn a_corrupt_record_in_the_middle_is_named_and_a_torn_tail_is_cut() {
    use scalecast::journal::store::{SledStore, Store};
    let dir = temp("middle");
    let events = make_journal(&dir, 300);
    let encode = scalecast::journal::codec::encode_event;
    // Events are stored in batches of 100 (make_journal): garble event 150 inside its batch.
    let batch = |garble: bool| -> Vec<Vec<u8>> {
        (101..=200)
            .map(|s| {
                if garble && s == 150 {
                    b"garbage".to_vec()
                } else {
                    encode(&events[s - 1])
                }
            })
            .collect()
    };
    {
        let mut s = SledStore::open(&dir).unwrap();
        s.append(101, &batch(true)).unwrap();
        s.flush().unwrap();
    }
    let err = Journal::open(&dir).err().expect("refused");
    assert!(err.to_string().contains("event 150 is corrupt"), "{err}");
    {
        let mut s = SledStore::open(&dir).unwrap();
        s.append(101, &batch(false)).unwrap();
        s.append(301, &[b"torn".to_vec(), b"tail".to_vec()])
            .unwrap();
        s.flush().unwrap();
    }
    let (j, rec) = Journal::open(&dir).unwrap();
    assert_eq!(j.last_seq(), 300);
    let d = rec.dropped.clone().expect("a tail was cut");
    assert_eq!((d.first, d.last, d.count), (301, 302, 2));
    assert!(
        rec.to_string()
            .contains("dropped a torn tail of 2 record(s), events 301 to 302")
    );
    drop(j);
    assert_eq!(all_events(&dir), events);
}

#[test]
fn appends_continue_after_reopening() {
    let dir = temp("reopen");
    let (settings, start) = crash_settings();
    let mut w = Workload::new(5, EngineKind::Scalecast, settings.clone(), start);
    let mut j = Journal::create(
        &dir,
        Header::new(EngineKind::Scalecast, settings, start, None),
    )
    .unwrap();
    for _ in 0..10 {
        j.append(&w.next_event()).unwrap().unwrap();
    }
    drop(j);
    let (mut j, rec) = Journal::open(&dir).unwrap();
    assert_eq!((rec.last_seq, rec.replayed), (10, 10));
    for _ in 0..10 {
        j.append(&w.next_event()).unwrap().unwrap();
    }
    assert_eq!(j.last_seq(), 20);
    assert_eq!(digest(j.engine()), digest(w.engine()));
    assert!(
        Journal::create(
            &dir,
            Header::new(EngineKind::Scalecast, Settings::default(), start, None)
        )
        .is_err()
    );
}

/// The tutorial simulated with its baseline's events journaled: the journal's folder and the
/// run's JSON result.
fn simulated_journal(name: &str) -> (PathBuf, PathBuf) {
    let dir = temp(name);
    let out = dir.with_extension("json");
    let o = scalecast(&[
        "simulate",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scenarios/tutorial/scenario.toml"
        ),
        "--journal",
        dir.to_str().unwrap(),
        "--json",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    (dir, out)
}

#[test]
fn secrets_never_enter_the_journal() {
    let (dir, _) = simulated_journal("secrets");
    let fs = files(&dir);
    assert!(!fs.is_empty());
    for f in fs {
        let bytes = std::fs::read(&f).unwrap();
        for secret in common::TUTORIAL_SECRETS {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} in {}",
                f.display()
            );
        }
    }
    // The journal replays to the simulated run's own figures as a trace.
    let o = scalecast(&["journal", "verify", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stdout));
    let o = scalecast(&["journal", "export", dir.to_str().unwrap()]);
    let exported = text(&o.stdout);
    let n = exported.lines().count();
    // In the form replay reads, and replay takes it.
    for l in exported.lines().take(50) {
        serde_json::from_str::<Event>(l).unwrap();
    }
    let nd = dir.with_extension("ndjson");
    std::fs::write(&nd, &exported).unwrap();
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/tutorial/config.toml"
    );
    let o3 = scalecast(&["replay", "--config", config, nd.to_str().unwrap()]);
    assert!(o3.status.success(), "{}", text(&o3.stderr));
    assert!(text(&o3.stdout).lines().any(|l| l.contains("start_job")));
    let o2 = scalecast(&["journal", "inspect", dir.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o2.stdout).unwrap();
    assert_eq!(v["events"].as_u64().unwrap() as usize, n);
    assert_eq!(v["header"]["seed"], 42);
}

/// `journal machines` tells every machine's story from a simulated journal: one story per
/// machine the run made, each with the reason it was made, and every job start on some machine;
/// a machine the journal never made is an error naming it.
#[test]
fn every_machine_made_has_its_story() {
    let (dir, out) = simulated_journal("stories");
    let run: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let run = &run["variants"][0];
    let o = scalecast(&["journal", "machines", dir.to_str().unwrap(), "--json", "-"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let stories: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        stories.len() as u64,
        run["machines_created"].as_u64().unwrap()
    );
    let started: u64 = stories.iter().map(|s| s["jobs"].as_u64().unwrap()).sum();
    let finished = run["jobs"].as_u64().unwrap() - run["jobs_unfinished"].as_u64().unwrap();
    assert_eq!(
        started,
        finished
            + run["jobs_retried"].as_u64().unwrap()
            + run["jobs_running_at_end"].as_u64().unwrap(),
        "every start, once"
    );
    for (i, s) in stories.iter().enumerate() {
        assert_eq!(s["machine"], i as u64 + 1, "in creation order");
        assert!(s["created"]["why"].is_string(), "{s}");
        // A machine removed by decision went after the decision.
        if let (Some(r), Some(e)) = (s["removed_at"].as_str(), s["ended_at"].as_str()) {
            assert!(r <= e, "{s}");
        }
    }
    let o = scalecast(&[
        "journal",
        "machines",
        dir.to_str().unwrap(),
        "--machine",
        "2",
    ]);
    let t = text(&o.stdout);
    assert!(t.starts_with("machine 2: made at "), "{t}");
    assert_eq!(t.matches("machine ").count(), 1, "only machine 2: {t}");
    let far = (stories.len() + 1).to_string();
    let o = scalecast(&[
        "journal",
        "machines",
        dir.to_str().unwrap(),
        "--machine",
        &far,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains(&format!("no machine {far}")),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn not_a_journal_is_a_clear_error() {
    let dir = temp("empty");
    std::fs::create_dir_all(&dir).unwrap();
    for cmd in ["inspect", "verify", "export", "machines"] {
        let o = scalecast(&["journal", cmd, dir.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{cmd}");
        assert!(text(&o.stderr).contains("not a scalecast journal"), "{cmd}");
        // A read-only command writes nothing into a folder that is not a journal.
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "{cmd} wrote files"
        );
    }
}

/// A copy made from the stored records, page by page (as a running daemon hands them out),
/// reads exactly as the original: the same events, snapshots and verification; a page that
/// does not go on where the last ended is refused.
#[test]
fn a_copy_from_the_stored_records_reads_as_the_original() {
    use scalecast::journal::JournalCopy;
    let (dir, _) = simulated_journal("copy-source");
    let to = temp("copy");
    {
        let (j, _) = Journal::open(&dir).unwrap();
        let log = j.log();
        let mut copy = JournalCopy::create(&to, &log.header_record().unwrap()).unwrap();
        loop {
            let page = log.records_page(copy.next(), 777).unwrap();
            if page.is_empty() {
                break;
            }
            copy.events(page).unwrap();
        }
        assert_eq!(copy.next(), j.last_seq() + 1);
        copy.finish(log.snapshot_records().unwrap()).unwrap();

        let gap = temp("copy-gap");
        let mut bad = JournalCopy::create(&gap, &log.header_record().unwrap()).unwrap();
        let page = log.records_page(2, 10).unwrap();
        assert!(
            bad.events(page).is_err(),
            "a page starting at 2 after nothing"
        );
    }
    let (a, b) = (Reader::open(&dir).unwrap(), Reader::open(&to).unwrap());
    let json = |r: &Reader| serde_json::to_string(&r.inspect().unwrap()).unwrap();
    assert_eq!(json(&a), json(&b));
    let v = b.verify().unwrap();
    assert!(v.snapshots_checked > 0 && v.divergence.is_none(), "{v:?}");
    assert!(
        JournalCopy::create(&to, b"{}").is_err(),
        "never over a directory"
    );
}

/// Every file under `dir` with its bytes, in order: what reading must leave as it was.
fn contents(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(contents(&p));
        } else {
            let bytes = std::fs::read(&p).unwrap();
            out.push((p, bytes));
        }
    }
    out.sort();
    out
}

/// `before` and the files under `dir` now are the same files with the same bytes.
fn assert_unchanged(dir: &Path, before: &[(PathBuf, Vec<u8>)], after: &str) {
    let now = contents(dir);
    let names = |v: &[(PathBuf, Vec<u8>)]| v.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&now),
        names(before),
        "after {after}: files came or went"
    );
    for ((p, a), (_, b)) in now.iter().zip(before) {
        assert!(a == b, "after {after}: {} was written", p.display());
    }
}

/// Reading a journal never writes to it (opening a sled store writes a new snapshot file
/// and its `db`): every reading command, and a forecast from it as a trace, leave its files as
/// they were, and the copy each reads leaves nothing in the temporary directory.
#[test]
fn reading_a_journal_leaves_its_files_as_they_were() {
    let (dir, _) = simulated_journal("untouched");
    let scenario = dir.with_extension("toml");
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/tutorial/config.toml"
    );
    std::fs::write(
        &scenario,
        format!("[runner]\nconfig = {config:?}\n[trace]\njournal = {dir:?}\n"),
    )
    .unwrap();
    let tmp = temp("untouched-tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let before = contents(&dir);
    let d = dir.to_str().unwrap();
    let s = scenario.to_str().unwrap();
    for args in [
        vec!["journal", "inspect", d],
        vec!["journal", "verify", d],
        vec!["journal", "export", d],
        vec!["journal", "machines", d],
        vec!["journal", "costs", d],
        vec!["simulate", s, "--quiet"],
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_scalecast"))
            .args(&args)
            .env("TMPDIR", &tmp)
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {}", text(&o.stderr));
        assert_unchanged(&dir, &before, &args.join(" "));
        let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().flatten().collect();
        assert!(left.is_empty(), "{args:?} left {left:?}");
    }
}

/// A journal another process holds (sled's lock) and no daemon answers for is a clear
/// error, after waiting a moment for a handle that is closing.
#[test]
fn a_journal_another_process_holds_is_a_clear_error() {
    let (dir, _) = simulated_journal("held");
    let _held = scalecast::journal::store::SledStore::open(&dir).unwrap();
    let o = scalecast(&["journal", "inspect", dir.to_str().unwrap()]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains(&dir.display().to_string()), "{err}");
    assert!(err.contains("another process holds the journal"), "{err}");
}

/// A journal whose store is damaged is bad input: exit 2, the directory named, said damaged,
/// and no crash report on standard error.
#[test]
fn a_damaged_journal_is_a_clear_error_naming_it() {
    let (dir, _) = simulated_journal("damaged");
    let db = dir.join("db");
    let len = std::fs::metadata(&db).unwrap().len() as usize;
    std::fs::write(&db, vec![0u8; len]).unwrap();
    let before = contents(&dir);
    for cmd in ["inspect", "verify", "export", "machines"] {
        let o = scalecast(&["journal", cmd, dir.to_str().unwrap()]);
        // What is left of it is as it was: nothing repaired or cut by reading it.
        assert_unchanged(&dir, &before, cmd);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{cmd}: {err}");
        assert!(
            err.starts_with(&format!("error: {}: ", dir.display())),
            "{cmd}: {err}"
        );
        assert!(err.contains("damaged"), "{cmd}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("backtrace"),
            "{cmd}: {err}"
        );
    }
}

#[test]
fn a_writer_killed_while_creating_leaves_a_whole_journal_or_none() {
    // Before: a directory with no header that nothing could open again.
    let mut rng = Rng::new(9);
    for round in 0..12 {
        let parent = temp(&format!("create-{round}"));
        std::fs::create_dir_all(&parent).unwrap();
        let dir = parent.join("j");
        let mut child = crash_writer(&dir, 1, &[])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_micros(rng.below(30_000)));
        child.kill().unwrap();
        child.wait().unwrap();
        if dir.exists() {
            let o = scalecast(&["journal", "inspect", dir.to_str().unwrap()]);
            assert!(o.status.success(), "round {round}: {}", text(&o.stderr));
        }
        // Whatever was left beside it, a new journal can be made in its place.
        let again = parent.join("k");
        make_journal(&again, 10);
        assert!(Reader::open(&again).is_ok());
        let _ = std::fs::remove_dir_all(&parent);
    }
}

#[test]
fn snapshots_are_pruned_to_the_newest_few_and_their_size_reported() {
    let dir = temp("prune");
    let (settings, start) = crash_settings();
    let mut header = Header::new(EngineKind::Scalecast, settings.clone(), start, Some(1));
    header.snapshot_every = 100;
    header.keep_snapshots = 2;
    let mut j = Journal::create(&dir, header).unwrap();
    let mut w = Workload::new(7, EngineKind::Scalecast, settings, start);
    let events: Vec<Event> = (0..1000).map(|_| w.next_event()).collect();
    for chunk in events.chunks(100) {
        j.append_batch(chunk).unwrap();
    }
    let want = digest(j.engine());
    drop(j);
    let i = Reader::open(&dir).unwrap().inspect().unwrap();
    assert_eq!(i.snapshots, vec![900, 1000]);
    assert!(i.snapshot_bytes > 0);
    let (j, _) = Journal::open(&dir).unwrap();
    assert_eq!(digest(j.engine()), want, "recovery from the kept snapshots");
    drop(j);
    let o = scalecast(&["journal", "inspect", dir.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["snapshots"].as_array().unwrap().len(), 2);
    assert_eq!(v["snapshot_bytes"], i.snapshot_bytes);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn replay_equals_live(
        seed in 0u64..1000, n in 1usize..400, batch in 1usize..50, every in 1u64..200,
        limit in 0u32..10, idle in 0u32..4, max_builds in 0u32..4,
    ) {
        let settings = Settings { concurrent: 5, limit, max_builds, idle: scalecast::core::IdleSettings { idle_count: idle, idle_time: 120, ..Default::default() }, ..Settings::default() };
        let (_, start) = crash_settings();
        let dir = temp(&format!("prop-{seed}-{n}-{batch}-{every}"));
        let mut header = Header::new(EngineKind::Scalecast, settings.clone(), start, None);
        header.snapshot_every = every;
        let mut j = Journal::create(&dir, header).unwrap();
        let mut w = Workload::new(seed, EngineKind::Scalecast, settings, start);
        let events: Vec<Event> = (0..n).map(|_| w.next_event()).collect();
        for c in events.chunks(batch) {
            j.append_batch(c).unwrap();
        }
        prop_assert_eq!(digest(j.engine()), digest(w.engine()));
        drop(j);
        let (j, _) = Journal::open(&dir).unwrap();
        prop_assert_eq!(digest(j.engine()), digest(w.engine()));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_journal_in_another_format_is_refused_by_name() {
    use scalecast::journal::codec::{Kind, encode_json};
    use scalecast::journal::store::{SledStore, Store};
    let dir = temp("format");
    let (settings, start) = crash_settings();
    let mut h = Header::new(EngineKind::Scalecast, settings, start, None);
    h.format = 9;
    {
        let mut s = SledStore::open(&dir).unwrap();
        s.put_header(encode_json(Kind::Header, &h)).unwrap();
        s.flush().unwrap();
    }
    let err = Journal::open(&dir).err().expect("refused");
    assert_eq!(
        err.to_string(),
        "journal format 9; this build reads format 1 only"
    );
}

/// A restarting daemon reads its machines' launches from the first event at or after a time
/// on (found by bisection, not by reading the whole journal): the answer is each wanted
/// machine's last launch among those events, whatever the time, and no launch before it.
#[test]
fn launches_are_read_from_the_first_event_at_or_after_a_time() {
    use scalecast::core::{EventKind, Launch};
    use std::collections::BTreeMap;
    let dir = temp("launches");
    let (settings, start) = crash_settings();
    let mut j = Journal::create(
        &dir,
        Header::new(EngineKind::Scalecast, settings, start, None),
    )
    .unwrap();
    let launch = |machine: u64, i: u64| EventKind::MachineLaunched {
        machine,
        launch: Box::new(Launch {
            instance: format!("i-{i}"),
            instance_type: format!("t{i}.large"),
            spot: i.is_multiple_of(2),
            fell_back: Vec::new(),
        }),
    };
    let mut events = Vec::new();
    for i in 0..300u64 {
        // Three events an instant; every seventh a launch of machine `i` (so event 42, the
        // first at 14 s, launches machine 42).
        let at = start.plus_millis((i / 3 * 1000) as i64);
        let kind = if i.is_multiple_of(7) {
            launch(i, i)
        } else {
            EventKind::Tick
        };
        events.push(Event::new(at, kind));
    }
    // Machine 84 (first launched at 28 s) launched again: its last launch is the answer.
    events.push(Event::new(start.plus_millis(100_000), launch(84, 300)));
    for ev in &events {
        j.append(ev).unwrap().unwrap();
    }
    drop(j);
    let (j, _) = Journal::open(&dir).unwrap();
    let wanted = |m: u64| m.is_multiple_of(2);
    for secs in [-5, 0, 1, 13, 14, 15, 28, 29, 50, 99, 100, 101, 500] {
        let since = start.plus_millis(secs * 1000);
        let mut want = BTreeMap::new();
        for ev in events.iter().filter(|e| e.at >= since) {
            if let EventKind::MachineLaunched { machine, launch } = &ev.kind
                && wanted(*machine)
            {
                want.insert(*machine, (**launch).clone());
            }
        }
        let got = j.log().launches_since(since, wanted).unwrap();
        assert_eq!(got, want, "since {secs} s");
    }
    let at_14 = j
        .log()
        .launches_since(start.plus_millis(14_000), wanted)
        .unwrap();
    assert!(
        at_14.contains_key(&42),
        "the first event at the time is read"
    );
    assert!(!at_14.contains_key(&28), "an earlier launch is not");
    assert_eq!(at_14[&84].instance, "i-300", "the last launch counts");
}
