//! Issue 8's reproducers: each ran to a wrong answer or an abort before its fix; each now gives
//! a right answer or is refused with exit 2 and a message that names the place.

use std::path::{Path, PathBuf};
mod common;
use common::{scalecast, text};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("scalecast-trust-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tutorial() -> String {
    root()
        .join("scenarios/tutorial/scenario.toml")
        .display()
        .to_string()
}

/// `simulate --json -` with these extra arguments: (exit code, JSON or null, stderr).
fn simulate(args: &[&str]) -> (i32, serde_json::Value, String) {
    let mut all = vec!["simulate"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--json", "-", "--quiet"]);
    let o = scalecast(&all);
    let v = serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
    (o.status.code().unwrap_or(-1), v, text(&o.stderr))
}

/// A scenario over a trace written from `(id, started_at, queued_s, duration_s)` rows.
fn scenario_with_trace(d: &Path, rows: &[(u64, &str, f64, f64)], sim: &str) -> PathBuf {
    let mut csv = String::from("id,started_at,queued_duration,duration\n");
    for (id, started, q, dur) in rows {
        csv.push_str(&format!("{id},{started},{q},{dur}\n"));
    }
    std::fs::write(d.join("trace.csv"), csv).unwrap();
    let config = root().join("scenarios/tutorial/config.toml");
    let text = format!(
        "[runner]\nconfig = {config:?}\n[trace]\npath = \"trace.csv\"\n[sim]\n{sim}\n[machine]\nboot_seconds = 60\ninterruptions_per_hour = 0\n"
    );
    let p = d.join("scenario.toml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn a_job_requeued_by_an_interruption_finishes_once_and_the_run_completes() {
    // Before: exit 1, "job N finished but is not running" (a stale end of the first attempt).
    let (code, v, err) = simulate(&[
        &tutorial(),
        "--set",
        "MaxBuilds=4",
        "--set",
        "IdleTime=0",
        "--set",
        "IdleCount=0",
    ]);
    assert_eq!(code, 0, "{err}");
    let vs = v["variants"].as_array().unwrap();
    let retried: u64 = vs.iter().map(|x| x["jobs_retried"].as_u64().unwrap()).sum();
    assert!(retried > 0, "the reproducer must still requeue a job");
    for x in vs {
        assert_eq!(x["jobs_unfinished"], 0, "{}", x["name"]);
    }
}

#[test]
fn jobs_that_never_run_are_reported_and_their_waits_are_not_zero() {
    // Before: every percentile 0.0 s with 3,474 unfinished jobs.
    let (code, v, err) = simulate(&[&tutorial(), "--set", "concurrent=0"]);
    assert_eq!(code, 0, "{err}");
    let b = &v["variants"][0];
    assert_eq!(b["jobs_unfinished"], b["jobs"]);
    assert_eq!(b["waits_censored"], b["jobs"]);
    // The window is 14 days: the median job waited for days, not zero.
    assert!(
        b["wait_s"]["p50"].as_f64().unwrap() > 86_400.0,
        "{}",
        b["wait_s"]
    );
    let notes: Vec<&str> = b["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(
        notes.iter().any(|n| n.contains("did not finish")),
        "{notes:?}"
    );
}

#[test]
fn the_table_marks_unfinished_variants_and_lower_bound_waits() {
    let o = scalecast(&["simulate", &tutorial(), "--set", "concurrent=0"]);
    assert!(o.status.success());
    let out = text(&o.stdout);
    let row = |label: &str| {
        out.lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("no {label} row in\n{out}"))
            .to_string()
    };
    assert!(row("unfinished at end").contains("(!)"), "{out}");
    assert!(row("wait p95").contains(">="), "{out}");
}

#[test]
fn the_binding_concurrent_limit_is_named() {
    // The tutorial's waits come from `concurrent = 10`; raising it must cut p95.
    let (code, v, err) = simulate(&[&tutorial()]);
    assert_eq!(code, 0, "{err}");
    let b = &v["variants"][0];
    let causes = &b["wait_causes_s"];
    assert!(
        causes["concurrent"].as_f64().unwrap() > causes["machines"].as_f64().unwrap(),
        "{causes}"
    );
    assert!(
        b["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("`concurrent = 10`")),
        "{}",
        b["notes"]
    );
    let (_, raised, _) = simulate(&[&tutorial(), "--set", "concurrent=20"]);
    let r = &raised["variants"][0];
    assert!(r["wait_s"]["p95"].as_f64() < b["wait_s"]["p95"].as_f64());
    assert_eq!(r["wait_causes_s"]["concurrent"], 0.0);
}

#[test]
fn a_gap_between_two_exports_does_not_end_the_run() {
    // Before: the run stopped 30 days after the first export and half the jobs were lost.
    let d = dir("gap");
    let rows = [
        (1, "2026-01-05T10:00:00Z", 5.0, 600.0),
        (2, "2026-01-05T11:00:00Z", 5.0, 600.0),
        (3, "2026-03-02T10:00:00Z", 5.0, 600.0),
        (4, "2026-03-02T11:00:00Z", 5.0, 600.0),
    ];
    let s = scenario_with_trace(&d, &rows, "seed = 1");
    let (code, v, err) = simulate(&[s.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["variants"][0]["jobs"], 4);
    assert_eq!(v["variants"][0]["jobs_unfinished"], 0);
}
