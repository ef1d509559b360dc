//! `scalecast live` as a process against moto: it keeps the idle pool on EC2, survives a
//! SIGKILL without leaking or doubling an instance, removes machines when the pool shrinks,
//! and stops cleanly on SIGTERM, also while EC2 does not answer its first calls.
#![cfg(feature = "live")]

mod common;
use common::{TEST_DOCKER, live_daemon, live_daemon_at, moto, runtime, signal};
use scalecast::config::machine_options::Ec2Options;
use scalecast::live::cloud::{Cloud, InstanceState};
use scalecast::live::ec2::Ec2Cloud;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const OPTIONS: [&str; 3] = [
    "amazonec2-region=eu-central-1",
    "amazonec2-instance-type=m5.large",
    "amazonec2-request-spot-instance=true",
];

fn write_config(dir: &Path, idle_count: u32, idle_time: u32) -> PathBuf {
    write_config_with(dir, idle_count, idle_time, &OPTIONS)
}

fn write_config_with(dir: &Path, idle_count: u32, idle_time: u32, options: &[&str]) -> PathBuf {
    let opts = options
        .iter()
        .map(|o| format!("{o:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let p = dir.join("config.toml");
    std::fs::write(
        &p,
        format!(
            "concurrent = 4\n[[runners]]\nname = \"r\"\nexecutor = \"docker+machine\"\nlimit = 10\n[runners.machine]\nIdleCount = {idle_count}\nIdleTime = {idle_time}\nMachineName = \"runner-%s\"\nMachineOptions = [{opts}]\n{TEST_DOCKER}"
        ),
    )
    .unwrap();
    p
}

/// The manager's live instances by machine id, as EC2 lists them.
fn instances(rt: &tokio::runtime::Runtime, state: &Path) -> Vec<(Option<u64>, String)> {
    typed_instances(rt, state)
        .into_iter()
        .map(|(m, id, _)| (m, id))
        .collect()
}

/// [`instances`] with each one's instance type.
fn typed_instances(
    rt: &tokio::runtime::Runtime,
    state: &Path,
) -> Vec<(Option<u64>, String, String)> {
    let manager = std::fs::read_to_string(state.join("manager-id")).unwrap_or_default();
    let opts: Vec<(String, usize)> = OPTIONS
        .iter()
        .enumerate()
        .map(|(i, o)| (o.to_string(), i))
        .collect();
    let mut o = Ec2Options::parse(&opts).unwrap();
    o.access_key = scalecast::config::Secret::new("moto");
    o.secret_key = scalecast::config::Secret::new("moto");
    rt.block_on(async {
        let cloud = Ec2Cloud::connect_at(&o, Some(&moto())).await.unwrap();
        let mut v: Vec<(Option<u64>, String, String)> = cloud
            .list(manager.trim())
            .await
            .unwrap()
            .into_iter()
            .filter(|i| matches!(i.state, InstanceState::Pending | InstanceState::Running))
            .map(|i| (i.machine, i.id, i.instance_type))
            .collect();
        v.sort();
        v
    })
}

/// Wait (at most 30 s) until `n` instances are listed; then they are returned.
fn wait_for(
    rt: &tokio::runtime::Runtime,
    state: &Path,
    n: usize,
    log: &Path,
) -> Vec<(Option<u64>, String)> {
    let t = Instant::now();
    loop {
        let v = instances(rt, state);
        if v.len() == n {
            return v;
        }
        if t.elapsed() > Duration::from_secs(30) {
            panic!(
                "{} instances instead of {n}: {v:?}\ndaemon log:\n{}",
                v.len(),
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// A fresh directory for one test's daemon, with its state directory and log path inside.
fn daemon_dir(name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let dir = common::scratch(name);
    let (state, log) = (dir.join("state"), dir.join("daemon.log"));
    (dir, state, log)
}

/// SIGTERM the daemon, which must stop cleanly; its log.
fn stop_cleanly(mut d: common::Daemon, log: &Path) -> String {
    signal(&d, "TERM");
    let exit = d.wait().unwrap();
    let text = std::fs::read_to_string(log).unwrap_or_default();
    assert!(exit.success(), "SIGTERM stops it cleanly: {exit:?}\n{text}");
    text
}

#[test]
fn the_daemon_keeps_the_pool_survives_sigkill_and_stops_on_sigterm() {
    let (dir, state, log) = daemon_dir("live");
    let rt = runtime();
    let config = write_config(&dir, 2, 600);

    let mut d = live_daemon(&config, &state, &log, &[]);
    let first = wait_for(&rt, &state, 2, &log);
    assert_eq!(
        first.iter().map(|i| i.0).collect::<Vec<_>>(),
        vec![Some(1), Some(2)]
    );
    // SIGKILL at once, twice; each restart adopts the same two instances.
    for _ in 0..2 {
        d.kill().unwrap();
        d.wait().unwrap();
        d = live_daemon(&config, &state, &log, &[]);
        std::thread::sleep(Duration::from_secs(3));
        assert_eq!(
            instances(&rt, &state),
            first,
            "no instance leaked or doubled"
        );
    }
    // The pool shrinks to nothing: the machines are removed on EC2.
    d.kill().unwrap();
    d.wait().unwrap();
    write_config(&dir, 0, 0);
    d = live_daemon(&config, &state, &log, &[]);
    wait_for(&rt, &state, 0, &log);
    let text = stop_cleanly(d, &log);
    assert!(text.contains("remove_machine"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// SIGTERM while the daemon connects (its first EC2 calls, here to an endpoint that takes the
/// connection and never answers) stops it cleanly at once, rather than when the call returns.
#[test]
fn sigterm_while_ec2_does_not_answer_stops_the_daemon() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (dir, state, log) = daemon_dir("live-hung-ec2");
    let config = write_config(&dir, 1, 600);
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    {
        let accepted = accepted.clone();
        std::thread::spawn(move || {
            // Connections are held open, unanswered, until the test process ends.
            let mut held = Vec::new();
            for s in silent.incoming().flatten() {
                held.push(s);
                accepted.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    let mut d = live_daemon_at(&endpoint, &config, &state, &log, &[]);
    common::wait_until("the daemon's first EC2 call", &log, || {
        accepted.load(Ordering::SeqCst) > 0
    });
    signal(&d, "TERM");
    let t = Instant::now();
    let exit = loop {
        if let Some(exit) = d.try_wait().unwrap() {
            break exit;
        }
        if t.elapsed() > Duration::from_secs(60) {
            let _ = d.kill();
            let _ = d.wait();
            panic!(
                "SIGTERM did not stop a daemon whose EC2 does not answer\ndaemon log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(exit.success(), "stopped cleanly: {exit:?}\n{text}");
    assert!(text.contains("stopped while connecting to EC2"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// SIGHUP with new MachineOptions (another instance type, as docker-machine takes a changed
/// config.toml): the machines made from then on use them, the one already made stays as it
/// is; another region cannot apply while the daemon runs and is refused, the options in force
/// kept.
#[test]
fn sighup_applies_new_machine_options_to_new_machines() {
    let (dir, state, log) = daemon_dir("live-reload-options");
    let rt = runtime();
    let config = write_config(&dir, 1, 600);
    let d = live_daemon(&config, &state, &log, &[]);
    let first = wait_for(&rt, &state, 1, &log);
    assert_eq!(first[0].0, Some(1));

    let c5 = [OPTIONS[0], "amazonec2-instance-type=c5.large", OPTIONS[2]];
    write_config_with(&dir, 2, 600, &c5);
    signal(&d, "HUP");
    wait_for(&rt, &state, 2, &log);
    let typed = typed_instances(&rt, &state);
    let types: Vec<(Option<u64>, &str)> = typed.iter().map(|i| (i.0, i.2.as_str())).collect();
    assert_eq!(
        types,
        vec![(Some(1), "m5.large"), (Some(2), "c5.large")],
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    // Another region: refused while running; the pool grows in the region in force.
    let elsewhere = [
        "amazonec2-region=eu-west-1",
        "amazonec2-instance-type=c5.large",
        OPTIONS[2],
    ];
    write_config_with(&dir, 3, 600, &elsewhere);
    signal(&d, "HUP");
    let three = wait_for(&rt, &state, 3, &log);
    assert_eq!(three[2].0, Some(3));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("MachineOptions reloaded"), "{text}");
    assert!(text.contains("MachineOptions not applied"), "{text}");
    assert!(text.contains("eu-central-1 -> eu-west-1"), "{text}");

    stop_cleanly(d, &log);
    // Leave nothing running on moto for the other tests.
    write_config(&dir, 0, 0);
    let d = live_daemon(&config, &state, &log, &[]);
    wait_for(&rt, &state, 0, &log);
    stop_cleanly(d, &log);
    let _ = std::fs::remove_dir_all(&dir);
}
