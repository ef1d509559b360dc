//! `scalecast live` as a process against moto: it keeps the idle pool on EC2, survives a
//! SIGKILL without leaking or doubling an instance, removes machines when the pool shrinks,
//! and stops cleanly on SIGTERM.
#![cfg(feature = "live")]

mod common;
use common::{TEST_DOCKER, live_daemon, moto, runtime, signal};
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
    let opts = OPTIONS
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
        let mut v: Vec<(Option<u64>, String)> = cloud
            .list(manager.trim())
            .await
            .unwrap()
            .into_iter()
            .filter(|i| matches!(i.state, InstanceState::Pending | InstanceState::Running))
            .map(|i| (i.machine, i.id))
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

#[test]
fn the_daemon_keeps_the_pool_survives_sigkill_and_stops_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("scalecast-live-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("state");
    let log = dir.join("daemon.log");
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
    signal(&d, "TERM");
    let exit = d.wait().unwrap();
    assert!(exit.success(), "SIGTERM stops it cleanly: {exit:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("remove_machine"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
