//! Calibration against a trace whose waits came from a fleet with a known boot time: the
//! simulator itself makes the trace (boot median 120 s), the scenario then says 60 s, and
//! `scalecast calibrate --fit boot_seconds` must find 120 s again.

use scalecast::core::Time;
use scalecast::rng::Rng;
use scalecast::sim::Observer;
use std::path::{Path, PathBuf};
mod common;
use common::{scalecast, scalecast_json, text};

fn dir(name: &str) -> PathBuf {
    let d = common::tmp().join(format!("cal-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const CONFIG: &str = r#"concurrent = 40
check_interval = 3
[[runners]]
name = "r"
executor = "docker+machine"
limit = 40
[runners.machine]
IdleCount = 1
IdleTime = 300
MachineDriver = "amazonec2"
MachineName = "m-%s"
MachineOptions = ["amazonec2-instance-type=m5.large", "amazonec2-region=us-east-1", "amazonec2-request-spot-instance=true"]
"#;

fn scenario(d: &Path, name: &str, trace: &str, boot: &str) -> PathBuf {
    let p = d.join(name);
    std::fs::write(
        &p,
        format!(
            "[runner]\nconfig = \"config.toml\"\n[trace]\npath = \"{trace}\"\n[sim]\nseed = 11\n[machine]\nboot_seconds = {boot}\ninterruptions_per_hour = 0\n"
        ),
    )
    .unwrap();
    p
}

/// Jobs every few minutes over two days, in bursts, with no recorded wait.
fn arrivals(path: &Path) {
    let mut r = Rng::derive(5, "calibration trace");
    let mut t = Time::parse_rfc3339("2026-11-02T08:00:00Z").unwrap();
    let mut out = String::from("id,started_at,duration,queued_duration\n");
    for id in 1..=600 {
        t = t.plus_secs(if r.below(4) == 0 {
            0
        } else {
            r.below(600) as i64
        });
        let duration = 120 + r.below(900);
        out.push_str(&format!("{id},{},{duration},\n", t.to_rfc3339()));
    }
    std::fs::write(path, out).unwrap();
}

#[derive(Default)]
struct Waits(Vec<(u64, Time, Time, i64)>);
impl Observer for Waits {
    fn job_done(&mut self, id: u64, _arrival: Time, start: Time, end: Time, wait_ms: i64) {
        self.0.push((id, start, end, wait_ms));
    }
}

/// The trace as the fleet of `truth` would have recorded it: each job's start, runtime and
/// queued_duration.
fn recorded(truth: &Path, out: &Path) {
    use scalecast::sim::scenario_run::{prepare, run_variant};
    let sc = scalecast::config::scenario::Scenario::load(truth, &[], chrono_tz::Tz::UTC).unwrap();
    let prepared = prepare(&sc).unwrap();
    let mut w = Waits::default();
    let r = run_variant(&sc, &prepared, &sc.variants[0], &mut w, &mut |_| {}).unwrap();
    assert_eq!(r.jobs_unfinished, 0);
    assert!(r.wait_s.p95 > 60.0, "jobs wait for boots: {:?}", r.wait_s);
    w.0.sort_by_key(|j| j.0);
    let mut csv = String::from("id,started_at,duration,queued_duration\n");
    for (id, start, end, wait) in w.0 {
        csv.push_str(&format!(
            "{id},{},{:.3},{:.3}\n",
            start.to_rfc3339(),
            end.since(start) as f64 / 1000.0,
            wait as f64 / 1000.0
        ));
    }
    std::fs::write(out, csv).unwrap();
}

fn fit(scenario: &Path, threads: &str, out: &Path) -> serde_json::Value {
    let s = scenario.to_str().unwrap();
    let args = [
        "calibrate",
        s,
        "--fit",
        "boot_seconds",
        "--threads",
        threads,
    ];
    scalecast_json(&args, out)
}

#[test]
fn calibrate_recovers_a_known_boot_time_the_same_on_any_number_of_threads() {
    let d = dir("boot");
    std::fs::write(d.join("config.toml"), CONFIG).unwrap();
    arrivals(&d.join("arrivals.csv"));
    let truth = scenario(
        &d,
        "truth.toml",
        "arrivals.csv",
        "{ median = 120, p95 = 240 }",
    );
    recorded(&truth, &d.join("recorded.csv"));
    let wrong = scenario(
        &d,
        "wrong.toml",
        "recorded.csv",
        "{ median = 60, p95 = 120 }",
    );

    let one = fit(&wrong, "1", &d.join("fit1.json"));
    let boot = one["fit"]["boot_seconds_median"].as_f64().unwrap();
    assert!(
        (boot - 120.0).abs() <= 12.0,
        "fitted {boot} s, the fleet booted in 120 s"
    );
    // The spread came with it: the scenario's p95/median ratio is kept.
    let p95 = one["fit"]["boot_seconds_p95"].as_f64().unwrap();
    assert!((p95 / boot - 2.0).abs() < 1e-9);
    let (before, after) = (
        one["before"]["distance"].as_f64().unwrap(),
        one["after"]["distance"].as_f64().unwrap(),
    );
    assert!(after < before, "distance {before} -> {after}");
    assert!(
        one["before"]["p95_error_s"].as_f64().unwrap() < 0.0,
        "60 s boots wait less"
    );

    // Byte-identical on other thread counts and runs.
    let a = std::fs::read(d.join("fit1.json")).unwrap();
    fit(&wrong, "2", &d.join("fit2.json"));
    fit(&wrong, "2", &d.join("fit3.json"));
    assert!(
        a == std::fs::read(d.join("fit2.json")).unwrap(),
        "1 vs 2 threads"
    );
    assert!(a == std::fs::read(d.join("fit3.json")).unwrap(), "two runs");

    // The table names the values and gives the lines to paste.
    let o = scalecast(&[
        "calibrate",
        wrong.to_str().unwrap(),
        "--fit",
        "boot_seconds",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains("boot_seconds") && out.contains("60.000"),
        "{out}"
    );
    assert!(
        out.contains("[machine]\nboot_seconds = { median = "),
        "{out}"
    );

    // simulate shows the observed column, and says the scenario is far off.
    let o = scalecast(&["simulate", wrong.to_str().unwrap()]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        out.lines().next().unwrap().trim_end().ends_with("observed"),
        "{out}"
    );
    assert!(out.contains("calibration of \"baseline\""), "{out}");
    assert!(
        out.contains("FAR OFF") && out.contains("shorter than observed"),
        "{out}"
    );
    // The report draws both distributions, and the page says it too.
    let report = d.join("report");
    let o = scalecast(&[
        "simulate",
        wrong.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let png = std::fs::read(report.join("calibration.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let page = std::fs::read_to_string(report.join("index.html")).unwrap();
    assert!(page.contains("<th>observed</th>") && page.contains("Far off"));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_trace_without_recorded_waits_cannot_be_calibrated_and_says_so() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let s = root.join("scenarios/tutorial/scenario.toml");
    let o = scalecast(&["calibrate", s.to_str().unwrap(), "--fit", "boot_seconds"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("scenario.toml") && err.contains("records no wait"),
        "{err}"
    );
    let o = scalecast(&["simulate", s.to_str().unwrap()]);
    let out = text(&o.stdout);
    assert!(
        out.contains("no observed column: the trace records no wait"),
        "{out}"
    );
    assert!(!out.lines().next().unwrap().contains("observed"));
    let report = common::tmp().join("cal-none");
    let o = scalecast(&[
        "simulate",
        s.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "-q",
    ]);
    assert!(o.status.success());
    assert!(report.join("wait.png").exists() && !report.join("calibration.png").exists());
    std::fs::remove_dir_all(&report).unwrap();
    let o = scalecast(&["calibrate", s.to_str().unwrap(), "--fit", "boot"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("pickup_seconds"));
}
