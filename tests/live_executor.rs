//! Jobs through GitLab's custom executor contract, against the daemon as a process on moto:
//! `scalecast executor prepare` waits for a machine and names it, `cleanup` ends the job, both
//! are safe to repeat; `live status` and `/metrics` say what the daemon holds. Then the kill
//! test: the daemon SIGKILLed at seeded moments while jobs come and go, restarted each time;
//! at the end nothing leaked, no machine id got two instances, no acknowledged event was lost,
//! and every job that prepared got a machine or a clear failure.
#![cfg(feature = "live")]

mod common;
use common::{
    TEST_DOCKER, alive, all_instances, live_daemon, manager, moto_bucket, nothing_left, scratch,
    signal, wait_until,
};
use scalecast::core::EventKind;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_scalecast");

fn write_config(dir: &Path, machine: &str) -> PathBuf {
    let p = dir.join("config.toml");
    std::fs::write(
        &p,
        format!(
            "concurrent = 4\n[[runners]]\nname = \"r\"\nexecutor = \"docker+machine\"\nlimit = 4\n[runners.machine]\n{machine}\nMachineName = \"runner-%s\"\nMachineOptions = [\"amazonec2-region=eu-central-1\", \"amazonec2-instance-type=m5.large\", \"amazonec2-request-spot-instance=true\"]\n{TEST_DOCKER}"
        ),
    )
    .unwrap();
    p
}

fn executor(stage: &str, state: &Path, job: u64) -> Command {
    executor_with(stage, state, job, 60)
}

fn executor_with(stage: &str, state: &Path, job: u64, patience: u64) -> Command {
    let mut c = Command::new(BIN);
    c.args(["executor", stage, "--state"])
        .arg(state)
        .args(["--patience", &patience.to_string()])
        .env("CUSTOM_ENV_CI_JOB_ID", job.to_string())
        .env("SYSTEM_FAILURE_EXIT_CODE", "42")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn text_of(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn sigterm(mut d: common::Daemon) -> std::process::ExitStatus {
    signal(&d, "TERM");
    d.wait().unwrap()
}

fn http_get(addr: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_job_prepares_on_a_machine_and_cleans_up_and_the_daemon_says_so() {
    let dir = scratch("executor");
    let state = dir.join("state");
    let log = dir.join("daemon.log");
    let config = write_config(&dir, "IdleCount = 0\nIdleTime = 600\nMaxBuilds = 1");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let d = live_daemon(
        &config,
        &state,
        &log,
        &["--metrics", &addr, "--log-format", "json"],
    );

    let out = executor("prepare", &state, 101).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        said.contains("job 101 runs on machine 1 (runner-"),
        "{said}"
    );
    let listed = alive(&manager(&state));
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(said.contains(&listed[0].1), "the instance is named: {said}");
    // Asking again is the same answer, not a second job.
    let again = executor("prepare", &state, 101).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&again.stdout),
        said,
        "{}",
        text(&again)
    );

    let status = Command::new(BIN)
        .args(["live", "status", "--json", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", text(&status));
    let s: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(s["running"], 1, "{s}");
    assert_eq!(s["machines"][0]["job"], 101, "{s}");
    assert_eq!(s["machines"][0]["instance"], listed[0].1.as_str(), "{s}");
    let table = Command::new(BIN)
        .args(["live", "status", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("1 running, 0 waiting") && table.contains("used"),
        "{table}"
    );
    // What EC2 made for it: the configured type, on spot.
    assert_eq!(s["machines"][0]["instance_type"], "m5.large", "{s}");
    assert_eq!(s["machines"][0]["spot"], true, "{s}");
    assert!(table.contains("m5.large spot"), "{table}");

    let m = http_get(&addr, "/metrics");
    assert!(m.starts_with("HTTP/1.1 200"), "{m}");
    assert!(m.contains("scalecast_jobs{state=\"running\"} 1"), "{m}");
    assert!(
        m.contains("scalecast_actions_total{kind=\"start_job\",reason=\"\"} 1"),
        "{m}"
    );
    assert!(m.contains("scalecast_estimated_cost_usd"), "{m}");
    assert!(http_get(&addr, "/nope").starts_with("HTTP/1.1 404"));

    // Cleanup ends the job; MaxBuilds = 1 retires its machine; a second cleanup is harmless.
    let out = executor("cleanup", &state, 101).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("it was running"));
    let out = executor("cleanup", &state, 101).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    wait_until("the used machine to be terminated", &log, || {
        alive(&manager(&state)).is_empty()
    });
    // A prepare for a job already cleaned up is a system failure with its reason.
    let late = executor("prepare", &state, 101).output().unwrap();
    assert_eq!(late.status.code(), Some(42), "{}", text(&late));
    assert!(String::from_utf8_lossy(&late.stderr).contains("cleaned up already"));
    // No job id: a system failure that says what is missing.
    let none = Command::new(BIN)
        .args(["executor", "prepare", "--state"])
        .arg(&state)
        .env_remove("CUSTOM_ENV_CI_JOB_ID")
        .env("SYSTEM_FAILURE_EXIT_CODE", "42")
        .output()
        .unwrap();
    assert_eq!(none.status.code(), Some(42));
    assert!(String::from_utf8_lossy(&none.stderr).contains("CUSTOM_ENV_CI_JOB_ID"));

    // SIGHUP with a broken config.toml: refused with its error, the old settings kept.
    std::fs::write(&config, "concurrent = [\n").unwrap();
    signal(&d, "HUP");
    wait_until("the reload refused", &log, || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("config reload refused")
    });
    let s = Command::new(BIN)
        .args(["live", "status", "--json", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    let s: serde_json::Value = serde_json::from_slice(&s.stdout).unwrap();
    assert_eq!(
        s["idle_count"], 0,
        "still running, on the old settings: {s}"
    );

    assert!(sigterm(d).success());
    let logged = std::fs::read_to_string(&log).unwrap();
    let action = logged
        .lines()
        .find(|l| l.contains("\"kind\":\"create_machine\""))
        .unwrap_or_else(|| panic!("{logged}"));
    let v: serde_json::Value = serde_json::from_str(action).unwrap();
    assert_eq!(v["reason"], "on_demand", "one JSON object per action: {v}");
    assert!(
        !state.join("scalecast.sock").exists(),
        "socket removed at stop"
    );
    // With no daemon, the executor fails after its patience, naming the command to run.
    let gone = executor_with("cleanup", &state, 5, 1).output().unwrap();
    assert_eq!(gone.status.code(), Some(42));
    assert!(String::from_utf8_lossy(&gone.stderr).contains("scalecast live --state"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A job's run stage (when it prepared) and cleanup, on a thread of their own.
type Finishing = std::thread::JoinHandle<(Option<Output>, Output)>;

#[test]
fn sigkill_at_seeded_moments_loses_nothing_and_leaks_nothing() {
    let seed: u64 = std::env::var("SCALECAST_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261205);
    let kills: usize = std::env::var("SCALECAST_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24);
    let mut rng = scalecast::rng::Rng::new(seed);
    let dir = scratch("kill");
    let state = dir.join("state");
    let log = dir.join("daemon.log");
    let config = write_config(&dir, "IdleCount = 1\nIdleTime = 600\nMaxBuilds = 1");
    let ctx = format!("seed {seed} (SCALECAST_KILL_SEED={seed} runs it again)");

    let mut next_job = 1000u64;
    let mut preparing: Vec<(u64, Child)> = Vec::new();
    let mut prepared: BTreeMap<u64, String> = BTreeMap::new();
    let mut failed: BTreeMap<u64, String> = BTreeMap::new();
    let mut cleaned: BTreeSet<u64> = BTreeSet::new();
    // Each prepared job runs a stage in Docker on its machine, then cleans up, while the
    // daemon is killed around it; a job whose prepare failed only cleans up.
    let mut cleanups: Vec<(u64, Finishing)> = Vec::new();
    let finish = |job: u64, ran: bool| {
        let (state, dir) = (state.clone(), dir.clone());
        std::thread::spawn(move || {
            let run = ran.then(|| {
                let script = dir.join(format!("script-{job}"));
                std::fs::write(&script, format!("echo job {job}\nsleep 0.3\necho done\n")).unwrap();
                let mut c = executor("run", &state, job);
                c.arg(&script).arg("step_script");
                c.output().unwrap()
            });
            (run, executor("cleanup", &state, job).output().unwrap())
        })
    };
    let reap = |preparing: &mut Vec<(u64, Child)>,
                prepared: &mut BTreeMap<u64, String>,
                failed: &mut BTreeMap<u64, String>,
                block: bool| {
        let mut still = Vec::new();
        for (job, mut c) in preparing.drain(..) {
            let done = if block {
                Some(c.wait().unwrap())
            } else {
                c.try_wait().unwrap()
            };
            match done {
                None => still.push((job, c)),
                Some(st) => {
                    let mut out = String::new();
                    c.stdout.take().unwrap().read_to_string(&mut out).unwrap();
                    let mut err = String::new();
                    c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
                    if st.success() {
                        prepared.insert(job, out);
                    } else {
                        assert_eq!(st.code(), Some(42), "job {job}: {err}");
                        assert!(!err.trim().is_empty(), "a failure says why");
                        failed.insert(job, err);
                    }
                }
            }
        }
        *preparing = still;
    };

    // The journal is shipped to S3 all along (so some kills land during shipping), and
    // restored at the end.
    let bucket = format!("scalecast-kill-{}", std::process::id());
    moto_bucket(&bucket);
    let target = format!("s3://{bucket}/journal");
    let ship = ["--ship", target.as_str(), "--ship-every", "1"];
    let mut d = live_daemon(&config, &state, &log, &ship);
    for round in 0..kills {
        // Jobs arrive; some prepared jobs end.
        for _ in 0..rng.below(3) {
            next_job += 1;
            preparing.push((
                next_job,
                executor("prepare", &state, next_job).spawn().unwrap(),
            ));
        }
        reap(&mut preparing, &mut prepared, &mut failed, false);
        let ready: Vec<u64> = prepared
            .keys()
            .filter(|j| !cleaned.contains(j))
            .copied()
            .collect();
        for j in ready {
            if rng.below(2) == 0 {
                cleaned.insert(j);
                cleanups.push((j, finish(j, true)));
            }
        }
        // The moment: from right after the start (reconcile) to well into creates and
        // terminates.
        std::thread::sleep(Duration::from_millis(rng.below(1500)));
        d.kill().unwrap();
        d.wait().unwrap();
        let listed = all_instances(&manager(&state));
        let mut per_machine: BTreeMap<Option<u64>, u32> = BTreeMap::new();
        for (m, _, _) in &listed {
            *per_machine.entry(*m).or_default() += 1;
        }
        assert!(
            per_machine.iter().all(|(m, n)| m.is_some() && *n == 1),
            "{ctx}, kill {round}: one instance per machine id, all tagged: {listed:?}"
        );
        d = live_daemon(&config, &state, &log, &ship);
    }

    // Wind down: every job ends (waiting ones get a machine as running ones end), the pool
    // goes to nothing, the daemon reloads on SIGHUP.
    let t = Instant::now();
    while !preparing.is_empty() {
        reap(&mut preparing, &mut prepared, &mut failed, false);
        for (j, ran) in prepared
            .keys()
            .map(|j| (j, true))
            .chain(failed.keys().map(|j| (j, false)))
        {
            if cleaned.insert(*j) {
                cleanups.push((*j, finish(*j, ran)));
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "{ctx}: jobs still preparing: {:?}\n{}",
            preparing.iter().map(|p| p.0).collect::<Vec<_>>(),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for (j, ran) in prepared
        .keys()
        .map(|j| (j, true))
        .chain(failed.keys().map(|j| (j, false)))
    {
        if cleaned.insert(*j) {
            cleanups.push((*j, finish(*j, ran)));
        }
    }
    let (mut ran_ok, mut ran_failed) = (0, 0);
    for (j, c) in cleanups {
        let (run, out) = c.join().unwrap();
        if let Some(run) = run {
            // Success, or a system failure that says why (the machine lost to a kill's
            // reconcile): never a hang, never a build failure.
            match run.status.code() {
                Some(0) => {
                    assert_eq!(text_of(&run.stdout), format!("job {j}\ndone\n"), "{ctx}");
                    ran_ok += 1;
                }
                Some(42) => ran_failed += 1,
                _ => panic!("{ctx}: run {j}: {}", text(&run)),
            }
        }
        assert!(out.status.success(), "{ctx}: cleanup {j}: {}", text(&out));
        nothing_left(j);
    }
    assert!(ran_ok > 0, "{ctx}: some stages ran ({ran_failed} failed)");
    write_config(&dir, "IdleCount = 0\nIdleTime = 0\nMaxBuilds = 1");
    signal(&d, "HUP");
    let m = manager(&state);
    wait_until("every instance terminated", &log, || alive(&m).is_empty());
    assert!(sigterm(d).success(), "{ctx}");

    // Everything journaled was shipped: a new manager restored from S3 has every event.
    let restored = dir.join("restored");
    let r = live_daemon(&config, &restored, &log, &["--restore", target.as_str()]);
    wait_until("the restored daemon", &log, || {
        restored.join("scalecast.sock").exists()
    });
    assert!(sigterm(r).success(), "{ctx}");
    let read = |p: &Path| {
        let mut v = Vec::new();
        scalecast::journal::Reader::open(&p.join("journal"))
            .unwrap()
            .events(|seq, e| v.push((seq, e)))
            .unwrap();
        v
    };
    let (ours, theirs) = (read(&state), read(&restored));
    assert!(
        theirs.len() >= ours.len() && theirs[..ours.len()] == ours[..],
        "{ctx}: {} events here, {} restored",
        ours.len(),
        theirs.len()
    );

    // Nothing leaked; no machine id with two instances, ever.
    let all = all_instances(&m);
    assert!(all.iter().all(|i| i.2 == "terminated"), "{ctx}: {all:?}");
    let ids: Vec<Option<u64>> = all.iter().map(|i| i.0).collect();
    let unique: BTreeSet<Option<u64>> = ids.iter().copied().collect();
    assert_eq!(ids.len(), unique.len(), "{ctx}: {all:?}");
    // Every job got a machine or a clear failure, and the journal has each acknowledged fact.
    assert!(!prepared.is_empty(), "{ctx}: some jobs ran");
    for (j, out) in &prepared {
        assert!(out.contains(&format!("job {j} runs on machine")), "{out}");
    }
    let mut arrived = BTreeSet::new();
    let mut ended = BTreeSet::new();
    scalecast::journal::Reader::open(&state.join("journal"))
        .unwrap()
        .events(|_, e| match e.kind {
            EventKind::JobArrived { job } => {
                arrived.insert(job);
            }
            EventKind::JobFinished { job } | EventKind::JobCancelled { job } => {
                ended.insert(job);
            }
            _ => {}
        })
        .unwrap();
    for j in prepared.keys() {
        assert!(arrived.contains(j) && ended.contains(j), "{ctx}: job {j}");
    }
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    eprintln!(
        "{ctx}: {kills} kills, {} jobs ran ({ran_ok} stages succeeded, {ran_failed} system failures), {} failed to prepare, {} instances in all, {} orphans and {} gone at reconcile",
        prepared.len(),
        failed.len(),
        all.len(),
        logged.matches("orphan terminated").count(),
        logged.matches("has no instance").count(),
    );
    let _ = std::fs::remove_dir_all(&dir);
}
