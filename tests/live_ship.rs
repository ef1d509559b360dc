//! The journal off the box, against moto's S3: `--ship` copies it as it grows (each object
//! written once, conditionally), `--restore` rebuilds the state on a new manager, which then
//! adopts the same instances; a second manager on the same prefix is refused, never merged.
#![cfg(feature = "live")]

mod common;
use common::{TEST_DOCKER, live_daemon, moto, moto_bucket, moto_s3, runtime, signal};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_scalecast");

fn get(bucket: &str, key: &str) -> Option<Vec<u8>> {
    runtime().block_on(async {
        let o = moto_s3()
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .ok()?;
        Some(o.body.collect().await.ok()?.into_bytes().to_vec())
    })
}

fn keys(bucket: &str, prefix: &str) -> Vec<String> {
    runtime().block_on(async {
        let out = moto_s3()
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .send()
            .await
            .unwrap();
        out.contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_string))
            .collect()
    })
}

fn executor(stage: &str, state: &Path, job: u64) -> std::process::Output {
    Command::new(BIN)
        .args(["executor", stage, "--state"])
        .arg(state)
        .args(["--patience", "60"])
        .env("CUSTOM_ENV_CI_JOB_ID", job.to_string())
        .output()
        .unwrap()
}

fn status(state: &Path) -> serde_json::Value {
    let o = Command::new(BIN)
        .args(["live", "status", "--json", "--state"])
        .arg(state)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn wait_until(what: &str, log: &Path, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn scratch() -> PathBuf {
    let dir = common::tmp().join("ship");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_shipped_journal_restores_on_a_new_manager_which_adopts_the_fleet() {
    let bucket = format!("scalecast-ship-{}", std::process::id());
    moto_bucket(&bucket);
    let dir = scratch();
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!("concurrent = 4\n[[runners]]\nname = \"r\"\nexecutor = \"custom\"\nlimit = 4\n[runners.machine]\nIdleCount = 1\nIdleTime = 600\nMachineName = \"runner-%s\"\nMachineOptions = [\"amazonec2-region=eu-central-1\", \"amazonec2-instance-type=m5.large\"]\n{TEST_DOCKER}"),
    )
    .unwrap();
    let target = format!("s3://{bucket}/fleet");
    let log = dir.join("daemon.log");
    let a = dir.join("a");
    let mut da = live_daemon(&config, &a, &log, &["--ship", &target, "--ship-every", "1"]);
    let out = executor("prepare", &a, 5);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = status(&a);
    let machines = |s: &serde_json::Value| s["machines"].as_array().unwrap().len();
    wait_until("the first shipment", &log, || {
        !keys(&bucket, "fleet/segments/").is_empty()
    });
    std::thread::sleep(Duration::from_secs(3)); // a few more shipments, the job's among them
    da.kill().unwrap();
    da.wait().unwrap();
    let manager = std::fs::read_to_string(a.join("manager-id")).unwrap();
    assert_eq!(
        get(&bucket, "fleet/manager-id").unwrap(),
        manager.trim().as_bytes()
    );

    // A new manager restores from S3: the same manager id, the same job on the same machine.
    let b = dir.join("b");
    let mut db = live_daemon(
        &config,
        &b,
        &log,
        &["--restore", &target, "--ship", &target, "--ship-every", "1"],
    );
    wait_until("the restored daemon", &log, || {
        b.join("scalecast.sock").exists()
    });
    let after = status(&b);
    assert_eq!(after["manager"], before["manager"]);
    assert_eq!(machines(&after), machines(&before), "{after:#}\n{before:#}");
    let job = |s: &serde_json::Value| {
        s["machines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["job"] == 5)
            .map(|m| (m["machine"].clone(), m["instance"].clone()))
    };
    assert_eq!(job(&after), job(&before), "adopted, not made again");
    let out = executor("cleanup", &b, 5);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Restoring into a state directory that has a journal is refused.
    let again = Command::new(BIN)
        .args(["live", "--config", config.to_str().unwrap(), "--state"])
        .arg(&a)
        .args(["--restore", &target])
        .env("AWS_ENDPOINT_URL", moto())
        .env("AWS_ACCESS_KEY_ID", "moto")
        .env("AWS_SECRET_ACCESS_KEY", "moto")
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("restore into a new state directory"));

    // A second manager on the same prefix is refused and overwrites nothing.
    let c = dir.join("c");
    let mut dc = live_daemon(&config, &c, &log, &["--ship", &target, "--ship-every", "1"]);
    wait_until("the second manager refused", &log, || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("belongs to another journal or manager")
    });
    assert_eq!(
        get(&bucket, "fleet/manager-id").unwrap(),
        manager.trim().as_bytes()
    );
    for d in [&mut db, &mut dc] {
        signal(d, "TERM");
        assert!(d.wait().unwrap().success());
    }
    let _ = std::fs::remove_dir_all(&dir);
}
