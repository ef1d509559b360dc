//! Issue 8's reproducers: each ran to a wrong answer or an abort before its fix; each now gives
//! a right answer or is refused with exit 2 and a message that names the place.

use std::path::{Path, PathBuf};
mod common;
use common::{scalecast, text};

fn dir(name: &str) -> PathBuf {
    let d = common::tmp().join(format!("trust-{name}"));
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

fn trace_stats(path: &Path, extra: &[&str]) -> (i32, serde_json::Value, String) {
    let mut args = vec!["trace", "stats", path.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let o = scalecast(&args);
    let v = serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
    (o.status.code().unwrap_or(-1), v, text(&o.stderr))
}

const JOB_A: &str = r#"{"id": 11, "status": "success", "started_at": "2026-01-13T04:00:00.000Z", "duration": 60.0, "queued_duration": 1.0, "runner": {"id": 7, "description": "aws-fleet"}}"#;
const JOB_B: &str = r#"{"id": 12, "status": "success", "started_at": "2026-01-13T04:05:00.000Z", "duration": 30.0, "queued_duration": 2.0, "runner": {"id": 8, "description": "shared-runners"}}"#;
const JOB_SKIPPED: &str =
    r#"{"id": 13, "status": "skipped", "started_at": null, "duration": null}"#;

#[test]
fn an_api_error_page_is_an_error_naming_its_record() {
    // Before: pages of {"message":"401 Unauthorized"} read as 0 jobs with exit 0.
    let d = dir("401");
    let p = d.join("jobs.json");
    std::fs::write(
        &p,
        "{\"message\":\"401 Unauthorized\"}\n{\"message\":\"401 Unauthorized\"}\n",
    )
    .unwrap();
    let (code, _, err) = trace_stats(&p, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("jobs.json: line 1") && err.contains("401 Unauthorized"),
        "{err}"
    );
    // A rate-limit page among good pages is not skipped either.
    std::fs::write(
        &p,
        format!("[{JOB_A}]\n{{\"error\": \"429 Too Many Requests\"}}\n[{JOB_B}]\n"),
    )
    .unwrap();
    let (code, _, err) = trace_stats(&p, &[]);
    assert_eq!(code, 2);
    assert!(err.contains("line 2") && err.contains("429"), "{err}");
    // Any other object that is not a job is named too.
    std::fs::write(&p, format!("[{JOB_A}, {{\"name\": \"x\"}}]\n")).unwrap();
    let (code, _, err) = trace_stats(&p, &[]);
    assert_eq!(code, 2);
    assert!(err.contains("not a job"), "{err}");
}

#[test]
fn overlapping_pages_count_a_job_once_and_say_so() {
    let d = dir("dups");
    let p = d.join("jobs.json");
    // Newest first, as the API lists them; page 2 repeats the last job of page 1.
    std::fs::write(
        &p,
        format!("[{JOB_B}, {JOB_A}, {JOB_SKIPPED}]\n[{JOB_A}]\n"),
    )
    .unwrap();
    let (code, v, err) = trace_stats(&p, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["jobs"], 2);
    assert_eq!(v["skipped"]["duplicates"], 1);
    assert_eq!(v["skipped"]["never_ran"], 1);
    let o = scalecast(&["trace", "stats", p.to_str().unwrap()]);
    assert!(
        text(&o.stdout).contains("1 duplicates"),
        "{}",
        text(&o.stdout)
    );
}

#[test]
fn a_runner_filter_keeps_only_that_runners_jobs() {
    let d = dir("runner");
    let p = d.join("jobs.json");
    std::fs::write(&p, format!("[{JOB_B}, {JOB_A}]\n")).unwrap();
    for want in ["7", "aws-fleet"] {
        let (code, v, err) = trace_stats(&p, &["--runner", want]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(v["jobs"], 1, "--runner {want}");
        assert_eq!(v["skipped"]["other_runner"], 1);
    }
    // In a scenario: [trace] runner = ...; the real export has runner_id.
    let sc = d.join("scenario.toml");
    let config = root().join("scenarios/tutorial/config.toml");
    let trace = root().join("traces/gitlab-datadog-2026-01-13.csv");
    let body = |runner: &str| {
        format!(
            "[runner]\nconfig = {config:?}\n[trace]\npath = {trace:?}\n{runner}\n[machine]\nboot_seconds = 60\ninterruptions_per_hour = 0\n"
        )
    };
    std::fs::write(&sc, body("")).unwrap();
    let (_, all, err) = simulate(&[sc.to_str().unwrap()]);
    let all = all["variants"][0]["jobs"]
        .as_u64()
        .unwrap_or_else(|| panic!("{err}"));
    std::fs::write(&sc, body("runner = 999999999")).unwrap();
    let (code, _, err) = simulate(&[sc.to_str().unwrap()]);
    assert_eq!(code, 2, "no job of that runner: refused, {err}");
    let csv = std::fs::read_to_string(&trace).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = header.iter().position(|c| *c == "runner_id").unwrap();
    let some_runner = csv
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(col))
        .find(|r| !r.is_empty())
        .unwrap()
        .to_string();
    std::fs::write(&sc, body(&format!("runner = \"{some_runner}\""))).unwrap();
    let (code, one, err) = simulate(&[sc.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let one = one["variants"][0]["jobs"].as_u64().unwrap();
    assert!(one > 0 && one < all, "{one} of {all}");
}

#[test]
fn a_lone_job_far_from_the_rest_is_refused_by_name() {
    // Before: one row dated year 1 moved the start to year 1 and billed 2,025 years.
    let d = dir("outlier");
    let rows = [
        (77, "0001-01-01T00:00:00Z", 0.0, 60.0),
        (1, "2026-01-05T10:00:00Z", 5.0, 600.0),
        (2, "2026-01-05T11:00:00Z", 5.0, 600.0),
        (3, "2026-01-06T11:00:00Z", 5.0, 600.0),
    ];
    let s = scenario_with_trace(&d, &rows, "seed = 1");
    for engine in ["scalecast", "docker-machine"] {
        // Refused before any engine runs: polling through 2,025 years would never end.
        let set = format!("engine={engine}");
        let (code, _, err) = simulate(&[s.to_str().unwrap(), "--set", &set]);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("trace job 77") && err.contains("scenario.toml"),
            "{err}"
        );
    }
    // A window that reaches far beyond its jobs is refused the same way.
    let far = scenario_with_trace(
        &d,
        &rows[1..],
        "start = \"2020-01-01T00:00:00Z\"\nend = \"2026-01-07T00:00:00Z\"",
    );
    let (code, _, err) = simulate(&[far.to_str().unwrap(), "--set", "engine=docker-machine"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nearly all empty time"), "{err}");
    // With a window that leaves it out, the run is fine and says what it left out.
    let s = scenario_with_trace(
        &d,
        &rows,
        "start = \"2026-01-05T00:00:00Z\"\nend = \"2026-01-07T00:00:00Z\"",
    );
    let (code, v, err) = simulate(&[s.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let w = &v["variants"][0]["window"];
    assert_eq!(w["trace_jobs_inside"], 3);
    assert_eq!(w["trace_jobs_before"], 1);
}

#[test]
fn a_window_outside_the_trace_is_refused() {
    // Before: 0 jobs simulated and idle machines billed, exit 0.
    let d = dir("outside");
    let rows = [
        (1, "2026-01-05T10:00:00Z", 5.0, 600.0),
        (2, "2026-01-05T11:00:00Z", 5.0, 600.0),
    ];
    let s = scenario_with_trace(
        &d,
        &rows,
        "start = \"2026-03-01T00:00:00Z\"\nend = \"2026-03-08T00:00:00Z\"",
    );
    let (code, _, err) = simulate(&[s.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("holds none of the trace's jobs") && err.contains("2 arrive before"),
        "{err}"
    );
}

#[test]
fn a_long_gap_in_the_trace_is_stated() {
    let d = dir("gapnote");
    let rows = [
        (1, "2026-01-05T10:00:00Z", 5.0, 600.0),
        (2, "2026-01-20T11:00:00Z", 5.0, 600.0),
        (3, "2026-01-21T11:00:00Z", 5.0, 600.0),
    ];
    let s = scenario_with_trace(&d, &rows, "seed = 1");
    let (code, v, err) = simulate(&[s.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let b = &v["variants"][0];
    assert!(b["window"]["longest_gap"]["days"].as_f64().unwrap() > 15.0);
    assert!(
        b["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("no job from")),
        "{}",
        b["notes"]
    );
    let o = scalecast(&["simulate", s.to_str().unwrap()]);
    assert!(
        text(&o.stdout).contains("no job from 2026-01-05"),
        "{}",
        text(&o.stdout)
    );
}

#[test]
fn absurd_sizes_are_refused_with_the_limit_and_how_to_raise_it() {
    for rate in ["inf", "1e12", "NaN"] {
        let o = scalecast(&["trace", "synth", "--days", "1", "--jobs-per-day", rate]);
        assert_eq!(o.status.code(), Some(2), "--jobs-per-day {rate}");
        assert!(o.stdout.is_empty());
    }
    let o = scalecast(&["trace", "synth", "--days", "1", "--jobs-per-day", "1e12"]);
    assert!(
        text(&o.stderr).contains("SCALECAST_MAX_JOBS_PER_DAY"),
        "{}",
        text(&o.stderr)
    );
    // A scenario with the same rate names its file and line.
    let d = dir("absurd");
    let config = root().join("scenarios/tutorial/config.toml");
    let sc = d.join("scenario.toml");
    std::fs::write(
        &sc,
        format!("[runner]\nconfig = {config:?}\n[trace.synthetic]\ndays = 3\njobs_per_day = 1e12\nseed = 1\n"),
    )
    .unwrap();
    let (code, _, err) = simulate(&[sc.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("scenario.toml:") && err.contains("limit"),
        "{err}"
    );
    // A grid of 10^8 combinations.
    let values = (0..100)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let mut args = vec!["sweep".to_string(), tutorial()];
    for key in ["IdleCount", "IdleTime", "MaxBuilds", "limit"] {
        args.push("--grid".into());
        args.push(format!("{key}={values}"));
    }
    args.push("--out".into());
    args.push(d.join("sweep").display().to_string());
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let o = scalecast(&args);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("100000000 combinations"),
        "{}",
        text(&o.stderr)
    );
    assert!(!d.join("sweep").exists());
}

#[test]
fn replay_across_centuries_stops_with_a_clear_error() {
    let d = dir("replay");
    let ev = d.join("events.ndjson");
    std::fs::write(
        &ev,
        "{\"at\":\"1970-01-01T00:00:00Z\",\"event\":\"job_arrived\",\"job\":1}\n",
    )
    .unwrap();
    let config = root().join("scenarios/tutorial/config.toml");
    // The default limit is 20 million wake-ups; a lower one keeps the test quick.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_scalecast"))
        .args([
            "replay",
            "--config",
            config.to_str().unwrap(),
            "--engine",
            "docker-machine",
            "--until",
            "2026-12-01T00:00:00Z",
            ev.to_str().unwrap(),
        ])
        .env("SCALECAST_MAX_WAKEUPS", "100000")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("wake-ups"), "{}", text(&o.stderr));
}

/// `check --json` on a config text: (exit code, findings' codes with their lines).
fn check(name: &str, body: &str) -> (i32, Vec<(String, u64)>, String) {
    let d = dir(&format!("check-{name}"));
    let p = d.join("config.toml");
    std::fs::write(&p, body).unwrap();
    let o = scalecast(&["check", p.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let codes = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_string(),
                f["line"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    (o.status.code().unwrap(), codes, v.to_string())
}

#[test]
fn check_stops_what_a_reviewer_would_stop() {
    let tutorial = std::fs::read_to_string(root().join("scenarios/tutorial/config.toml")).unwrap();
    let misspelt = tutorial.replace("    IdleCount = 1\n", "    IdelCount = 1\n");
    let (code, codes, json) = check("misspelt", &misspelt);
    assert_eq!(code, 0);
    assert!(codes.contains(&("unknown_key".into(), 26)), "{json}");
    assert!(json.contains("did you mean IdleCount"), "{json}");

    let (code, codes, _) = check("empty", "");
    assert_eq!(code, 2);
    assert_eq!(codes[0].0, "no_runners");
    let (code, _, _) = check("no-runners", "concurrent = 4\n");
    assert_eq!(code, 2);

    let zero = tutorial.replace("concurrent = 10", "concurrent = 0");
    let (_, codes, json) = check("zero", &zero);
    assert!(codes.contains(&("concurrent_zero".into(), 3)), "{json}");

    let shell = tutorial.replace("docker+machine", "shell");
    let (_, codes, json) = check("shell", &shell);
    assert!(
        codes.iter().any(|c| c.0 == "executor_not_modelled"),
        "{json}"
    );
    // A runner switched to scalecast's live mode (custom executor, machine section kept).
    let live = tutorial.replace("docker+machine", "custom");
    let (_, codes, json) = check("live", &live);
    assert!(
        !codes.iter().any(|c| c.0 == "executor_not_modelled"),
        "{json}"
    );

    // The tutorial's day pool of 50 under concurrent = 10: concurrent binds.
    let (_, codes, json) = check("tutorial", &tutorial);
    assert!(
        codes.contains(&("idle_count_above_concurrent".into(), 46)),
        "{json}"
    );
}

#[test]
fn check_stays_quick_on_a_seconds_field() {
    // Before: 14 s and 400 MB looking for shadowed entries one second at a time. The test
    // asserts the answer, not the time: the shadow analysis is skipped for such entries.
    let tutorial = std::fs::read_to_string(root().join("scenarios/tutorial/config.toml")).unwrap();
    let body = tutorial.replace("\"* * 9-17 * * mon-fri *\"", "\"*/2 * 9-17 * * mon-fri *\"");
    let (code, codes, json) = check("seconds", &body);
    assert_eq!(code, 0);
    assert!(codes.contains(&("seconds_field".into(), 45)), "{json}");
    assert!(!codes.iter().any(|c| c.0 == "shadowed_entry"), "{json}");
}
