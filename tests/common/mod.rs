//! Helpers shared by the integration tests: settings from config text, engines at a known
//! instant, and short ways to feed events and look at the actions.
#![allow(dead_code)]

use scalecast::config::ConfigFile;
use scalecast::core::fleet::MachineState;
use scalecast::core::{
    Action, ActionKind, Engine, EngineKind, Event, EventKind, RemoveReason, Settings, Time,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Wednesday 2026-11-25 12:00:00 UTC.
pub fn t0() -> Time {
    Time::parse_rfc3339("2026-11-25T12:00:00Z").unwrap()
}

pub fn at(s: &str) -> Time {
    Time::parse_rfc3339(s).unwrap()
}

/// A config.toml with one docker+machine runner; `runner` lines go under `[[runners]]`,
/// `machine` lines under `[runners.machine]` (autoscaling entries may follow).
pub fn config(top: &str, runner: &str, machine: &str) -> ConfigFile {
    let text = format!(
        "{top}\n[[runners]]\nname = \"r\"\nexecutor = \"docker+machine\"\n{runner}\n[runners.machine]\n{machine}\n"
    );
    ConfigFile::parse(Path::new("test.toml"), &text).unwrap()
}

pub fn settings(top: &str, runner: &str, machine: &str) -> Settings {
    let cfg = config(top, runner, machine);
    let r = cfg.runner(None).unwrap();
    cfg.settings(r, chrono_tz::Tz::UTC)
}

pub fn engine(kind: EngineKind, s: Settings) -> Engine {
    Engine::new(kind, s, t0())
}

pub fn dm(s: Settings) -> Engine {
    engine(EngineKind::DockerMachine, s)
}

pub fn sc(s: Settings) -> Engine {
    engine(EngineKind::Scalecast, s)
}

pub fn feed(e: &mut Engine, at: Time, kind: EventKind) -> Vec<Action> {
    e.handle(&Event::new(at, kind)).unwrap();
    e.drain_actions().collect()
}

pub fn tick(e: &mut Engine, at: Time) -> Vec<Action> {
    feed(e, at, EventKind::Tick)
}

pub fn seed(e: &mut Engine, state: MachineState, idle_s: i64, uses: u32) -> u64 {
    e.seed_machine(state, idle_s, uses, None).unwrap()
}

pub fn created(actions: &[Action]) -> Vec<u64> {
    actions
        .iter()
        .filter_map(|a| match a.kind {
            ActionKind::CreateMachine { machine, .. } => Some(machine),
            _ => None,
        })
        .collect()
}

pub fn removed(actions: &[Action]) -> Vec<(u64, RemoveReason)> {
    actions
        .iter()
        .filter_map(|a| match a.kind {
            ActionKind::RemoveMachine { machine, reason } => Some((machine, reason)),
            _ => None,
        })
        .collect()
}

pub fn started(actions: &[Action]) -> Vec<(u64, u64)> {
    actions
        .iter()
        .filter_map(|a| match a.kind {
            ActionKind::StartJob { job, machine } => Some((job, machine)),
            _ => None,
        })
        .collect()
}

/// Run the scalecast binary (time zone fixed to UTC).
pub fn scalecast(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scalecast"))
        .args(args)
        .env("TZ", "UTC")
        .output()
        .unwrap()
}

/// Run the binary with `args` and `--json OUT --quiet`; it must succeed; the JSON back.
#[allow(dead_code)]
pub fn scalecast_json(args: &[&str], out: &Path) -> serde_json::Value {
    let mut all = args.to_vec();
    all.extend(["--json", out.to_str().unwrap(), "--quiet"]);
    let o = scalecast(&all);
    assert!(o.status.success(), "{}", text(&o.stderr));
    serde_json::from_slice(&std::fs::read(out).unwrap()).unwrap()
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The placeholder secrets of the tutorial's config.toml: none may ever be printed or stored.
pub const TUTORIAL_SECRETS: [&str; 5] = [
    "YOUR_RUNNER_TOKEN",
    "YOUR_S3_ACCESS_KEY",
    "YOUR_S3_SECRET_KEY",
    "YOUR_EC2_ACCESS_KEY",
    "YOUR_EC2_SECRET_KEY",
];

/// moto's address (from `SCALECAST_MOTO_URL` or the file the test set-up writes), or a failure
/// that says how to start it.
pub fn moto() -> String {
    if let Ok(url) = std::env::var("SCALECAST_MOTO_URL") {
        return url;
    }
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/target/test-services/moto.url");
    match std::fs::read_to_string(file) {
        Ok(url) => url.trim().to_string(),
        Err(_) => panic!(
            "moto is not running: start it with `bash scripts/test-services.sh start` (the test command `bash scripts/test.sh` does it for you)"
        ),
    }
}

/// A single-threaded tokio runtime for the live-mode tests.
#[cfg(feature = "live")]
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// An S3 client on moto (path-style addressing, placeholder keys).
#[cfg(feature = "live")]
pub fn moto_s3() -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(moto())
        .force_path_style(true)
        .credentials_provider(Credentials::new("moto", "moto", None, None, "test"))
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// Make a bucket on moto (us-east-1, so no location constraint).
#[cfg(feature = "live")]
pub fn moto_bucket(name: &str) {
    runtime().block_on(async {
        moto_s3().create_bucket().bucket(name).send().await.unwrap();
    });
}

/// Send `sig` ("TERM", "HUP", ...) to a child process, by its PID.
pub fn signal(child: &std::process::Child, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([format!("-{sig}"), child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {}", child.id());
}

/// The tests' dockerd as `HOST:PORT` (from `SCALECAST_DOCKER_URL` or the file the test set-up
/// writes), or a failure that says how to start it.
pub fn docker_endpoint() -> String {
    let url = std::env::var("SCALECAST_DOCKER_URL").ok().or_else(|| {
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/target/test-services/docker.url"
        ))
        .ok()
    });
    match url {
        Some(u) => u.trim().trim_start_matches("tcp://").to_string(),
        None => panic!(
            "the tests' dockerd is not running: start it with `bash scripts/test-services.sh start` (the test command `bash scripts/test.sh` does it for you)"
        ),
    }
}

/// Give a daemon's state directory the CA that issued the tests' dockerd its certificate
/// (before the daemon's first start), as an operator restores `STATE/ca` on a new manager.
pub fn docker_ca(state: &Path) {
    docker_endpoint();
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-services/docker/state/ca");
    let to = state.join("ca");
    std::fs::create_dir_all(&to).unwrap();
    for f in ["ca.pem", "ca-key.pem", "client.pem", "client-key.pem"] {
        std::fs::copy(from.join(f), to.join(f))
            .unwrap_or_else(|e| panic!("{}: {e}", from.join(f).display()));
    }
}

/// A `scalecast live` process, killed (SIGKILL, by its PID) and reaped when dropped still
/// running: a test that fails midway leaves no daemon behind.
pub struct Daemon(pub std::process::Child);

impl std::ops::Deref for Daemon {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for Daemon {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// `scalecast live --config CONFIG --state STATE EXTRA...` as a process, on moto, with every
/// machine's Docker the tests' dockerd (unless EXTRA names another `--docker-endpoint`) and
/// its CA copied into STATE first; standard error appended to `log`.
pub fn live_daemon(config: &Path, state: &Path, log: &Path, extra: &[&str]) -> Daemon {
    live_daemon_at(&moto(), config, state, log, extra)
}

/// [`live_daemon`] with EC2 (and S3) at `endpoint` rather than moto.
pub fn live_daemon_at(
    endpoint: &str,
    config: &Path,
    state: &Path,
    log: &Path,
    extra: &[&str],
) -> Daemon {
    docker_ca(state);
    let mut c = Command::new(env!("CARGO_BIN_EXE_scalecast"));
    c.args(["live", "--config"])
        .arg(config)
        .arg("--state")
        .arg(state)
        .args(extra);
    if !extra.contains(&"--docker-endpoint") {
        c.args(["--docker-endpoint", &docker_endpoint()]);
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    c.env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "moto")
        .env("AWS_SECRET_ACCESS_KEY", "moto")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .map(Daemon)
        .unwrap()
}

/// An EC2 client on moto (eu-central-1, the tests' region).
#[cfg(feature = "live")]
pub fn moto_ec2() -> aws_sdk_ec2::Client {
    use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
    let conf = aws_sdk_ec2::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-central-1"))
        .endpoint_url(moto())
        .credentials_provider(Credentials::new("moto", "moto", None, None, "test"))
        .build();
    aws_sdk_ec2::Client::from_conf(conf)
}

/// `[runners.docker]` for the tests' images (imported, no registry) and no network.
pub const TEST_DOCKER: &str = "[runners.docker]\nimage = \"scalecast-test/busybox:1\"\nhelper_image = \"scalecast-test/helper:1\"\npull_policy = \"if-not-present\"\nnetwork_mode = \"none\"\n";

/// Every instance moto has of `manager`, terminated ones included: (machine tag, id, state).
#[cfg(feature = "live")]
pub fn all_instances(manager: &str) -> Vec<(Option<u64>, String, String)> {
    use scalecast::live::cloud::{MACHINE_TAG, MANAGER_TAG};
    let client = moto_ec2();
    runtime().block_on(async {
        let out = client
            .describe_instances()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name(format!("tag:{MANAGER_TAG}"))
                    .values(manager)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let mut v = Vec::new();
        for r in out.reservations() {
            for i in r.instances() {
                let machine = i
                    .tags()
                    .iter()
                    .find(|t| t.key() == Some(MACHINE_TAG))
                    .and_then(|t| t.value())
                    .and_then(|v| v.parse().ok());
                let state = i
                    .state()
                    .and_then(|s| s.name())
                    .map_or("?".to_string(), |n| n.as_str().to_string());
                v.push((machine, i.instance_id().unwrap_or("").to_string(), state));
            }
        }
        v.sort();
        v
    })
}

/// The instances of `manager` not terminated.
#[cfg(feature = "live")]
pub fn alive(manager: &str) -> Vec<(Option<u64>, String, String)> {
    all_instances(manager)
        .into_iter()
        .filter(|i| i.2 != "terminated")
        .collect()
}

/// The manager id of a daemon's state directory.
pub fn manager(state: &Path) -> String {
    std::fs::read_to_string(state.join("manager-id"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// This test process's folder (`scalecast::testing::tmp`).
pub fn tmp() -> PathBuf {
    scalecast::testing::tmp()
}

/// A fresh folder for one test.
pub fn scratch(name: &str) -> PathBuf {
    scalecast::testing::scratch(name)
}

/// Wait (at most a minute) until `f` holds; else fail with the daemon's log.
pub fn wait_until(what: &str, log: &Path, mut f: impl FnMut() -> bool) {
    use std::time::{Duration, Instant};
    let t = Instant::now();
    while !f() {
        if t.elapsed() > Duration::from_secs(60) {
            panic!(
                "timed out waiting for {what}\ndaemon log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What the tests' dockerd holds of a job: its containers and volumes (and networks).
pub fn leftovers(job: u64) -> (String, String) {
    let sock = format!(
        "unix://{}/target/test-services/docker/docker.sock",
        env!("CARGO_MANIFEST_DIR")
    );
    let docker = |args: &[&str]| {
        let o = Command::new("/usr/bin/docker")
            .args(["-H", &sock])
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    (
        docker(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=scalecast.job={job}"),
        ]),
        docker(&[
            "volume",
            "ls",
            "-q",
            "--filter",
            &format!("name=scalecast-job-{job}-"),
        ]) + &docker(&[
            "network",
            "ls",
            "-q",
            "--filter",
            &format!("label=scalecast.job={job}"),
        ]),
    )
}

pub fn nothing_left(job: u64) {
    let (containers, volumes) = leftovers(job);
    assert!(
        containers.is_empty() && volumes.is_empty(),
        "job {job} left containers [{containers}] and volumes [{volumes}]"
    );
}
