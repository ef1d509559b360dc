//! GitLab jobs end to end: the daemon on moto (EC2), its machines' Docker played by the tests'
//! dockerd (mutual TLS with a certificate from scalecast's CA), and the four custom-executor
//! stages called as GitLab Runner calls them: `config`, `prepare`, `run SCRIPT STAGE` per
//! stage, `cleanup`, with `CUSTOM_ENV_*`, BUILD_FAILURE_EXIT_CODE and SYSTEM_FAILURE_EXIT_CODE.
//! Jobs that succeed, fail with exit 3, time out (SIGTERM), and lose their machine mid-script;
//! output in order and in full; nothing of a job left after cleanup; MaxBuilds retires a
//! machine; a machine whose Docker never answers is replaced; the daemon SIGKILLed while jobs
//! run loses none of them.
#![cfg(feature = "live")]

mod common;
use common::{
    TEST_DOCKER, alive, leftovers, live_daemon, manager, nothing_left, scratch, signal, wait_until,
};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_scalecast");
const BUILD_FAILURE: i32 = 77;
const SYSTEM_FAILURE: i32 = 42;

fn write_config(dir: &Path, machine: &str) -> PathBuf {
    let p = dir.join("config.toml");
    std::fs::write(
        &p,
        format!(
            "concurrent = 4\n[[runners]]\nname = \"r\"\nexecutor = \"custom\"\nbuilds_dir = \"/builds\"\ncache_dir = \"/cache\"\nlimit = 4\n[runners.machine]\n{machine}\nMachineName = \"runner-%s\"\nMachineOptions = [\"amazonec2-region=eu-central-1\", \"amazonec2-instance-type=m5.large\", \"amazonec2-request-spot-instance=true\"]\n{TEST_DOCKER}"
        ),
    )
    .unwrap();
    p
}

/// A stage as GitLab Runner starts it.
fn stage(state: &Path, job: u64, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("executor")
        .args(args)
        .args(["--state"])
        .arg(state)
        .args(["--patience", "60"])
        .env("CUSTOM_ENV_CI_JOB_ID", job.to_string())
        .env("CUSTOM_ENV_CI_JOB_IMAGE", "scalecast-test/busybox:1")
        .env("BUILD_FAILURE_EXIT_CODE", BUILD_FAILURE.to_string())
        .env("SYSTEM_FAILURE_EXIT_CODE", SYSTEM_FAILURE.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn said(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `run_exec SCRIPT STAGE` with the script written to a file first, as GitLab Runner does.
fn run(state: &Path, dir: &Path, job: u64, name: &str, script: &str) -> Command {
    let file = dir.join(format!("script-{job}-{name}"));
    std::fs::write(&file, script).unwrap();
    stage(state, job, &["run", file.to_str().unwrap(), name])
}

fn ok(c: &mut Command) -> Output {
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", said(&o));
    o
}

#[test]
fn jobs_run_through_the_four_stages_on_their_machines_docker() {
    let dir = scratch("jobs");
    let state = dir.join("state");
    let log = dir.join("daemon.log");
    let config = write_config(&dir, "IdleCount = 0\nIdleTime = 600\nMaxBuilds = 2");
    let d = live_daemon(&config, &state, &log, &[]);

    // config_exec: the directories the daemon's runner settings give.
    let o = ok(&mut stage(&state, 0, &["config"]));
    let cfg: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(cfg["builds_dir"], "/builds", "{cfg}");
    assert_eq!(cfg["cache_dir"], "/cache", "{cfg}");
    assert_eq!(cfg["builds_dir_is_shared"], false);
    assert_eq!(cfg["driver"]["name"], "scalecast");
    assert!(cfg["hostname"].as_str().unwrap().starts_with("scalecast-"));

    // Job 1 succeeds. get_sources runs in the helper image and leaves the sources on the
    // builds volume; the build stage finds them; its output comes in order and in full.
    let o = ok(&mut stage(&state, 1, &["prepare"]));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("job 1 runs on machine 1"),
        "{}",
        said(&o)
    );
    ok(&mut run(
        &state,
        &dir,
        1,
        "get_sources",
        "set -e\nmkdir -p /builds/group/project\necho 'fn main() {}' > /builds/group/project/main.rs\necho fetched\n",
    ));
    let o = ok(&mut run(
        &state,
        &dir,
        1,
        "step_script",
        "set -e\ncd /builds/group/project\ncat main.rs\ni=1\nwhile [ $i -le 3000 ]; do echo \"line $i\"; i=$((i+1)); done\necho 'to stderr' >&2\n",
    ));
    let out = String::from_utf8_lossy(&o.stdout);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("fn main() {}"), "{out:.300}");
    let numbered: Vec<&str> = lines.collect();
    assert_eq!(numbered.len(), 3000, "every line arrives");
    for (i, l) in numbered.iter().enumerate() {
        assert_eq!(*l, format!("line {}", i + 1), "in order");
    }
    assert!(String::from_utf8_lossy(&o.stderr).contains("to stderr"));
    ok(&mut run(&state, &dir, 1, "after_script", "echo after\n"));
    // The artifacts stage runs in the helper image, where GitLab's `gitlab-runner` calls reach
    // the image's gitlab-runner-helper.
    let o = ok(&mut run(
        &state,
        &dir,
        1,
        "upload_artifacts_on_success",
        "gitlab-runner artifacts-uploader --path out\n",
    ));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "gitlab-runner-helper artifacts-uploader --path out\n"
    );
    assert!(
        !leftovers(1).1.is_empty(),
        "the builds volume lives until cleanup"
    );
    let o = ok(&mut stage(&state, 1, &["cleanup"]));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("it was running"),
        "{}",
        said(&o)
    );
    nothing_left(1);

    // Job 2 fails its build with exit 3: BUILD_FAILURE_EXIT_CODE, its output kept. It takes the
    // same machine (idle), its second build: MaxBuilds = 2 retires it after cleanup.
    let o = ok(&mut stage(&state, 2, &["prepare"]));
    assert!(String::from_utf8_lossy(&o.stdout).contains("job 2 runs on machine 1"));
    let o = run(
        &state,
        &dir,
        2,
        "step_script",
        "echo before the failure\nexit 3\n",
    )
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(BUILD_FAILURE), "{}", said(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "before the failure\n");
    assert!(String::from_utf8_lossy(&o.stderr).contains("exited with 3"));
    ok(&mut stage(&state, 2, &["cleanup"]));
    nothing_left(2);
    let m = manager(&state);
    wait_until("the machine retired after its MaxBuilds", &log, || {
        alive(&m).is_empty()
    });

    // Job 3 times out: GitLab Runner sends SIGTERM to the stage; the container stops at once,
    // the stage is a failure, and cleanup leaves nothing.
    ok(&mut stage(&state, 3, &["prepare"]));
    let mut slow = run(&state, &dir, 3, "step_script", "echo working\nsleep 600\n")
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(slow.stdout.as_mut().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first, "working\n");
    signal(&slow, "TERM");
    let t = Instant::now();
    let status = slow.wait().unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "the stage stops promptly"
    );
    assert_eq!(status.code(), Some(SYSTEM_FAILURE));
    assert!(leftovers(3).0.is_empty(), "the stage's container is gone");
    ok(&mut stage(&state, 3, &["cleanup"]));
    nothing_left(3);

    // Job 4 loses its machine mid-script (terminated behind the daemon's back): a system
    // failure, so GitLab retries it; what can be reached of it is removed.
    let o = ok(&mut stage(&state, 4, &["prepare"]));
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let instance = alive(&m)
        .into_iter()
        .find(|i| text.contains(&i.1))
        .unwrap_or_else(|| panic!("{text}"))
        .1;
    let mut doomed = run(&state, &dir, 4, "step_script", "echo started\nsleep 600\n")
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(doomed.stdout.as_mut().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first, "started\n");
    common::runtime().block_on(async {
        common::moto_ec2()
            .terminate_instances()
            .instance_ids(&instance)
            .send()
            .await
            .unwrap();
    });
    let t = Instant::now();
    let out = doomed.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(SYSTEM_FAILURE), "{}", said(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no longer has its machine"),
        "{}",
        said(&out)
    );
    assert!(t.elapsed() < Duration::from_secs(60));
    ok(&mut stage(&state, 4, &["cleanup"]));
    nothing_left(4);
    // The journal says the machine was lost with the job on it (the engine requeued the job),
    // where a job that finished in time has its job_finished first.
    let lost: u64 = text
        .split("job 4 runs on machine ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    signal(&d, "TERM");
    let mut d = d;
    assert!(d.wait().unwrap().success());
    let mut events = Vec::new();
    scalecast::journal::Reader::open(&state.join("journal"))
        .unwrap()
        .events(|_, e| events.push(e.kind))
        .unwrap();
    use scalecast::core::EventKind;
    let gone = events
        .iter()
        .position(|k| *k == EventKind::MachineGone { machine: lost })
        .expect("the lost machine is journaled as gone");
    assert!(
        !events[..gone].contains(&EventKind::JobFinished { job: 4 }),
        "job 4 did not finish before its machine went"
    );
    assert!(events.contains(&EventKind::JobFinished { job: 1 }));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_machine_whose_docker_never_answers_is_replaced_and_its_user_data_holds_no_ca_key() {
    let dir = scratch("nodocker");
    let state = dir.join("state");
    let log = dir.join("daemon.log");
    let config = write_config(&dir, "IdleCount = 1\nIdleTime = 600");
    // Nothing listens there: the machine never becomes ready.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("127.0.0.1:{port}");
    let args = [
        "--docker-endpoint",
        endpoint.as_str(),
        "--docker-ready-timeout",
        "3",
    ];
    let mut d = live_daemon(&config, &state, &log, &args);
    wait_until("a machine failed and another made", &log, || {
        let l = std::fs::read_to_string(&log).unwrap_or_default();
        l.contains("its Docker never answered") && l.contains("machine=2")
    });
    let m = manager(&state);
    let all = common::all_instances(&m);
    let first = all.iter().find(|i| i.0 == Some(1)).expect("machine 1");
    wait_until("the failed machine's instance terminated", &log, || {
        common::all_instances(&m)
            .iter()
            .any(|i| i.1 == first.1 && i.2 == "terminated")
    });

    // Its user data: the CA certificate and the machine's own pair, never the CA key; and
    // the instance requires IMDSv2 with one hop.
    let client = common::moto_ec2();
    let (user_data, metadata) = common::runtime().block_on(async {
        let a = client
            .describe_instance_attribute()
            .instance_id(&first.1)
            .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
            .send()
            .await
            .unwrap();
        let ud = a
            .user_data()
            .and_then(|v| v.value())
            .unwrap_or_default()
            .to_string();
        let out = client
            .describe_instances()
            .instance_ids(&first.1)
            .send()
            .await
            .unwrap();
        let md = out.reservations()[0].instances()[0]
            .metadata_options()
            .map(|m| {
                (
                    m.http_tokens().map(|t| t.as_str().to_string()),
                    m.http_put_response_hop_limit(),
                )
            });
        (ud, md)
    });
    use base64::Engine;
    let script = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(user_data.trim())
            .unwrap(),
    )
    .unwrap();
    let ca = std::fs::read_to_string(state.join("ca/ca.pem")).unwrap();
    let ca_key = std::fs::read_to_string(state.join("ca/ca-key.pem")).unwrap();
    assert!(script.starts_with("#!/bin/bash"), "{script:.200}");
    assert!(script.contains(ca.trim()));
    assert!(
        script.contains("BEGIN PRIVATE KEY"),
        "the machine's own key"
    );
    assert!(
        !script.contains(ca_key.trim()),
        "the CA key stays on the manager"
    );
    assert!(script.contains("--tlsverify"));
    let (tokens, hops) = metadata.expect("the instance's metadata options");
    assert_eq!(tokens.as_deref(), Some("required"), "IMDSv2 only");
    assert_eq!(
        hops,
        Some(1),
        "one hop: containers cannot reach the metadata"
    );
    signal(&d, "TERM");
    assert!(d.wait().unwrap().success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn killing_the_daemon_while_jobs_run_loses_no_job_and_leaks_no_container() {
    let dir = scratch("jobkill");
    let state = dir.join("state");
    let log = dir.join("daemon.log");
    let config = write_config(&dir, "IdleCount = 0\nIdleTime = 600\nMaxBuilds = 1");
    let mut d = live_daemon(&config, &state, &log, &[]);
    let jobs = [11u64, 12, 13];
    for j in jobs {
        ok(&mut stage(&state, j, &["prepare"]));
    }
    // One succeeds, one fails its build, one outlives a daemon restart.
    let scripts = [
        "echo a\nsleep 2\necho b\n",
        "echo a\nsleep 2\nexit 3\n",
        "echo a\nsleep 6\necho b\n",
    ];
    let running: Vec<Child> = jobs
        .iter()
        .zip(scripts)
        .map(|(j, s)| run(&state, &dir, *j, "step_script", s).spawn().unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(1000));
    d.kill().unwrap();
    d.wait().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let mut d = live_daemon(&config, &state, &log, &[]);
    let t = Instant::now();
    let mut codes = Vec::new();
    for (j, c) in jobs.iter().zip(running) {
        let o = c.wait_with_output().unwrap();
        codes.push(o.status.code());
        assert!(
            matches!(
                o.status.code(),
                Some(0) | Some(BUILD_FAILURE) | Some(SYSTEM_FAILURE)
            ),
            "job {j}: {}",
            said(&o)
        );
    }
    assert!(t.elapsed() < Duration::from_secs(60), "no stage hangs");
    assert_eq!(
        codes[0],
        Some(0),
        "the daemon's restart does not touch a running script"
    );
    assert_eq!(codes[1], Some(BUILD_FAILURE));
    for j in jobs {
        ok(&mut stage(&state, j, &["cleanup"]));
        nothing_left(j);
    }
    let m = manager(&state);
    wait_until("every used machine retired", &log, || alive(&m).is_empty());
    signal(&d, "TERM");
    assert!(d.wait().unwrap().success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_jobs_services_run_beside_it_on_its_network_and_go_with_it() {
    let dir = scratch("services");
    let state = dir.join("state");
    let log = dir.join("daemon.log");
    let config = write_config(&dir, "IdleCount = 0\nIdleTime = 600");
    let mut d = live_daemon(&config, &state, &log, &[]);
    let services = r#"[{"name":"scalecast-test/busybox:1","alias":"db","command":["sleep","600"],"variables":{"ROLE":"db"}}]"#;
    let with_services = |c: &mut Command| {
        c.env("CUSTOM_ENV_CI_JOB_SERVICES", services);
    };
    let mut prepare = stage(&state, 21, &["prepare"]);
    with_services(&mut prepare);
    ok(&mut prepare);
    let (containers, _) = leftovers(21);
    assert_eq!(
        containers.lines().count(),
        1,
        "the service runs: {containers}"
    );
    let mut step = run(&state, &dir, 21, "step_script", "echo beside its service\n");
    with_services(&mut step);
    let o = ok(&mut step);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "beside its service\n");
    let mut cleanup = stage(&state, 21, &["cleanup"]);
    with_services(&mut cleanup);
    ok(&mut cleanup);
    nothing_left(21);
    // A services list that is not JSON is a system failure that says so.
    let mut bad = stage(&state, 22, &["prepare"]);
    bad.env("CUSTOM_ENV_CI_JOB_SERVICES", "{");
    let o = bad.output().unwrap();
    assert_eq!(o.status.code(), Some(SYSTEM_FAILURE));
    assert!(String::from_utf8_lossy(&o.stderr).contains("CUSTOM_ENV_CI_JOB_SERVICES"));
    signal(&d, "TERM");
    assert!(d.wait().unwrap().success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn docker_is_reached_only_with_our_ca_and_the_machines_name() {
    use scalecast::live::docker::connect;
    use scalecast::live::tls::{Ca, client_files, server_name};
    let dir = scratch("tls");
    let ours = dir.join("ours");
    common::docker_ca(&ours);
    let endpoint = common::docker_endpoint();
    let files = client_files(&ours).unwrap();
    let ping = |name: &str, files: &scalecast::live::tls::ClientFiles| {
        common::runtime().block_on(async {
            let d = connect(&endpoint, name, files, 10).unwrap();
            d.ping()
                .await
                .map(|_| ())
                .map_err(|e| scalecast::live::docker::chain(&e))
        })
    };
    ping(&server_name(7), &files).expect("our CA, a machine's name");
    let e = ping("someone-else.example.com", &files).unwrap_err();
    assert!(e.to_lowercase().contains("certificate"), "{e}");
    // Another manager's CA (its client certificate, its trust) is refused both ways.
    let theirs = dir.join("theirs");
    Ca::open(&theirs).unwrap();
    let other = client_files(&theirs).unwrap();
    assert!(ping(&server_name(7), &other).is_err());
    let mixed = scalecast::live::tls::ClientFiles {
        ca_pem: files.ca_pem.clone(),
        client: other.client.clone(),
    };
    assert!(
        ping(&server_name(7), &mixed).is_err(),
        "a client certificate of another CA"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_runners_docker_settings_reach_the_job_containers() {
    let dir = scratch("dockersettings");
    let state = dir.join("state");
    let log = dir.join("daemon.log");
    let host = dir.join("host");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("from-the-host"), "bound\n").unwrap();
    let config = write_config(&dir, "IdleCount = 0\nIdleTime = 600");
    // The same runner with more [runners.docker] settings (`privileged` is checked by a unit
    // test: this sandbox cannot start privileged containers).
    let text = std::fs::read_to_string(&config).unwrap()
        + &format!(
            "shm_size = 67108864\nvolumes = [\"{}:/mnt/host:ro\", \"/keep\"]\n",
            host.display()
        );
    std::fs::write(&config, text).unwrap();
    let mut d = live_daemon(&config, &state, &log, &[]);
    ok(&mut stage(&state, 31, &["prepare"]));
    let o = ok(&mut run(
        &state,
        &dir,
        31,
        "step_script",
        "cat /mnt/host/from-the-host\ncat /proc/mounts\necho kept > /keep/note\n",
    ));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(out.starts_with("bound\n"), "the bind: {out:.200}");
    let shm = out
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("/dev/shm"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(shm.contains("size=65536k"), "shm_size: {shm}");
    ok(&mut stage(&state, 31, &["cleanup"]));
    nothing_left(31);
    // "/keep" is a volume the machine keeps across its jobs (as docker+machine's cache).
    ok(&mut stage(&state, 32, &["prepare"]));
    let o = ok(&mut run(
        &state,
        &dir,
        32,
        "step_script",
        "cat /keep/note\n",
    ));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "kept\n");
    ok(&mut stage(&state, 32, &["cleanup"]));
    signal(&d, "TERM");
    assert!(d.wait().unwrap().success());
    let _ = std::fs::remove_dir_all(&dir);
}
