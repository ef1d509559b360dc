//! `scalecast simulate` as a user runs it: determinism, the seed's reach, bad input.

use std::path::{Path, PathBuf};
mod common;
use common::{scalecast, scalecast_json, text};

fn dir(name: &str) -> PathBuf {
    let d = common::tmp().join(format!("sim-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A scenario on the tutorial config and a slice of the two-week trace.
fn scenario(d: &Path, seed: u64, machine: &str, extra: &str) -> PathBuf {
    let config = root().join("scenarios/tutorial/config.toml");
    let trace = root().join("traces/two-weeks.csv");
    let text = format!(
        "[runner]\nconfig = {config:?}\n[trace]\npath = {trace:?}\n[sim]\nseed = {seed}\nstart = \"2026-11-02T00:00:00Z\"\nend = \"2026-11-05T00:00:00Z\"\n[machine]\n{machine}\n{extra}"
    );
    let p = d.join(format!("scenario-{seed}.toml"));
    std::fs::write(&p, text).unwrap();
    p
}

fn run_json(s: &Path, out: &Path) -> serde_json::Value {
    scalecast_json(&["simulate", s.to_str().unwrap()], out)
}

#[test]
fn same_scenario_gives_byte_identical_json() {
    let d = dir("same");
    let (a, b) = (d.join("a.json"), d.join("b.json"));
    let s = root().join("scenarios/tutorial/scenario.toml");
    for out in [&a, &b] {
        run_json(&s, out);
    }
    let (a, b) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    assert_eq!(a, b);
    let v: serde_json::Value = serde_json::from_slice(&a).unwrap();
    let vs = v["variants"].as_array().unwrap();
    assert_eq!(vs[0]["name"], "baseline");
    assert_eq!(vs.len(), 4);
    for key in [
        "jobs",
        "jobs_unfinished",
        "cost_usd",
        "cost",
        "wait_s",
        "machines_created",
        "machine_hours",
        "interruptions",
        "jobs_retried",
        "per_day",
    ] {
        assert!(vs[0].get(key).is_some(), "{key}");
    }
    assert_eq!(vs[0]["per_day"].as_array().unwrap().len(), 14);
}

#[test]
fn the_seed_changes_only_what_it_draws() {
    let d = dir("seed");
    // Nothing random in the world: the seed must change nothing.
    let fixed = "boot_seconds = 60\ninterruptions_per_hour = 0";
    let a = run_json(&scenario(&d, 1, fixed, ""), &d.join("a.json"));
    let b = run_json(&scenario(&d, 2, fixed, ""), &d.join("b.json"));
    assert_eq!(a["variants"], b["variants"]);
    // Random boot times: costs and booting hours move, the trace's jobs and busy hours do not.
    let drawn = "boot_seconds = { median = 90, p95 = 300 }\ninterruptions_per_hour = 0";
    let a = run_json(&scenario(&d, 1, drawn, ""), &d.join("c.json"));
    let b = run_json(&scenario(&d, 2, drawn, ""), &d.join("d.json"));
    let (va, vb) = (&a["variants"][0], &b["variants"][0]);
    assert_eq!(va["jobs"], vb["jobs"]);
    assert_eq!(va["machine_hours"]["busy"], vb["machine_hours"]["busy"]);
    assert_ne!(
        va["machine_hours"]["booting"],
        vb["machine_hours"]["booting"]
    );
}

#[test]
fn set_overrides_every_variant_and_rejects_unknown_keys() {
    let d = dir("set");
    let s = scenario(
        &d,
        1,
        "boot_seconds = 60",
        "[[variant]]\nname = \"big\"\nset = { IdleCount = 3 }\n",
    );
    let base = run_json(&s, &d.join("a.json"));
    let out = d.join("b.json");
    let o = scalecast(&[
        "simulate",
        s.to_str().unwrap(),
        "--set",
        "engine=docker-machine",
        "--json",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(base["variants"][0]["engine"], "scalecast");
    assert_eq!(v["variants"][0]["engine"], "docker-machine");
    assert_eq!(v["variants"][1]["engine"], "docker-machine");
    let o = scalecast(&["simulate", s.to_str().unwrap(), "--set", "Colour=blue"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("Colour"));
}

/// Run `simulate` on a scenario that must be refused: exit 2, `needle` in the message, and no
/// output file (nor a partial one) left behind.
fn assert_refused(scenario: &Path, needle: &str) {
    let out = scenario.with_file_name("out.json");
    assert_input_error(
        &[
            "simulate",
            scenario.to_str().unwrap(),
            "--json",
            out.to_str().unwrap(),
        ],
        needle,
        &out,
    );
}

/// A scenario file on the tutorial config with the given `[trace]` and following lines.
fn tutorial_scenario(d: &Path, rest: &str) -> PathBuf {
    let config = root().join("scenarios/tutorial/config.toml");
    let s = d.join("s.toml");
    std::fs::write(&s, format!("[runner]\nconfig = {config:?}\n{rest}")).unwrap();
    s
}

fn assert_input_error(args: &[&str], needle: &str, out: &Path) {
    let o = scalecast(args);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains(needle), "{needle:?} not in {err}");
    assert!(!out.exists(), "no output file on bad input");
    let leftovers: Vec<_> = std::fs::read_dir(out.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn malformed_trace_line_is_named() {
    let d = dir("badtrace");
    std::fs::write(
        d.join("t.csv"),
        "id,started_at,queued_duration,duration\n1,2026-11-02T10:00:00Z,0,60\n2,2026-11-02T10:01:00Z,0,sixty\n",
    )
    .unwrap();
    let s = tutorial_scenario(&d, "[trace]\npath = \"t.csv\"\n");
    assert_refused(&s, "t.csv: line 3: duration \"sixty\"");
}

#[test]
fn unknown_scenario_key_is_named_with_its_line() {
    let d = dir("unknown");
    let s = scenario(&d, 1, "boot_seconds = 60\nboot_secs = 5", "");
    assert_refused(&s, "scenario-1.toml:11: unknown field `boot_secs`");
}

#[test]
fn missing_trace_file_is_named() {
    let d = dir("missing");
    let s = tutorial_scenario(&d, "[trace]\npath = \"nope.csv\"\n");
    assert_refused(&s, "nope.csv: cannot read");
}

#[test]
fn end_before_start_is_an_error_on_its_line() {
    let d = dir("window");
    let s = tutorial_scenario(
        &d,
        "[trace]\npath = \"x.csv\"\n[sim]\nstart = \"2026-11-05T00:00:00Z\"\nend = \"2026-11-02T00:00:00Z\"\n",
    );
    assert_refused(&s, "s.toml:7: sim.end");
}

#[test]
fn bad_config_named_by_the_scenario_is_an_input_error() {
    let d = dir("badconfig");
    std::fs::write(d.join("config.toml"), "concurrent = [\n").unwrap();
    let s = d.join("s.toml");
    std::fs::write(
        &s,
        "[runner]\nconfig = \"config.toml\"\n[trace]\nsynthetic = { days = 1, jobs_per_day = 10, seed = 1 }\n",
    )
    .unwrap();
    assert_refused(&s, "config.toml:");
}

#[test]
fn synthetic_trace_in_the_scenario_runs_without_a_file() {
    let d = dir("synthetic");
    let config = root().join("scenarios/tutorial/config.toml");
    let s = d.join("s.toml");
    std::fs::write(&s, format!("[runner]\nconfig = {config:?}\n[trace]\nsynthetic = {{ days = 2, jobs_per_day = 100, seed = 3 }}\n[machine]\nboot_seconds = 30\n")).unwrap();
    let v = run_json(&s, &d.join("out.json"));
    let jobs = v["variants"][0]["jobs"].as_u64().unwrap();
    assert!(jobs > 50, "{jobs}");
    assert_eq!(v["variants"][0]["jobs_unfinished"], 0);
}

#[test]
fn trace_synth_output_reads_back() {
    let d = dir("synth");
    let out = d.join("t.csv");
    let o = scalecast(&[
        "trace",
        "synth",
        "--days",
        "3",
        "--jobs-per-day",
        "50",
        "--seed",
        "9",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let o = scalecast(&["trace", "stats", out.to_str().unwrap(), "--json"]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let lines = std::fs::read_to_string(&out).unwrap().lines().count() as u64;
    assert_eq!(v["jobs"].as_u64().unwrap(), lines - 1);
}

#[test]
fn spot_price_history_is_integrated_over_the_machine_lifetime() {
    let d = dir("history");
    // One 59-minute job on a spot m5.large; boots in 0 s; removed at once after the job
    // (IdleCount 0, IdleTime 0). Price $0.10/h until 10:30, then $0.30/h; other zones and
    // types are ignored. Billed 10:00 to 10:59:00.001.
    std::fs::write(
        d.join("prices.json"),
        r#"{"SpotPriceHistory": [
          {"AvailabilityZone": "us-east-1a", "InstanceType": "m5.large", "ProductDescription": "Linux/UNIX", "SpotPrice": "0.100000", "Timestamp": "2026-11-02T09:00:00.000Z"},
          {"AvailabilityZone": "us-east-1a", "InstanceType": "m5.large", "ProductDescription": "Linux/UNIX", "SpotPrice": "0.300000", "Timestamp": "2026-11-02T10:30:00.000Z"},
          {"AvailabilityZone": "us-east-1b", "InstanceType": "m5.large", "ProductDescription": "Linux/UNIX", "SpotPrice": "9.0", "Timestamp": "2026-11-02T10:00:00.000Z"},
          {"AvailabilityZone": "us-east-1a", "InstanceType": "c5.large", "ProductDescription": "Linux/UNIX", "SpotPrice": "9.0", "Timestamp": "2026-11-02T10:00:00.000Z"}
        ]}"#,
    )
    .unwrap();
    std::fs::write(
        d.join("config.toml"),
        "concurrent = 1\n[[runners]]\nname = \"r\"\nexecutor = \"docker+machine\"\n[runners.machine]\nIdleCount = 0\nIdleTime = 0\nMachineOptions = [\"amazonec2-region=us-east-1\", \"amazonec2-zone=a\", \"amazonec2-instance-type=m5.large\", \"amazonec2-request-spot-instance=true\"]\n",
    )
    .unwrap();
    std::fs::write(
        d.join("t.csv"),
        "id,started_at,queued_duration,duration\n1,2026-11-02T10:00:00Z,0,3540\n",
    )
    .unwrap();
    let s = d.join("s.toml");
    std::fs::write(
        &s,
        "[runner]\nconfig = \"config.toml\"\n[trace]\npath = \"t.csv\"\n[sim]\nend = \"2026-11-02T12:00:00Z\"\n[machine]\nboot_seconds = 0\nroot_size_gb = 0\ninterruptions_per_hour = 0\nspot_price_history = \"prices.json\"\n",
    )
    .unwrap();
    let v = run_json(&s, &d.join("out.json"));
    let r = &v["variants"][0];
    let expected = 0.1 * 0.5 + 0.3 * (29.0 * 60.0 + 0.001) / 3600.0;
    let cost = r["cost_usd"].as_f64().unwrap();
    assert!((cost - expected).abs() < 1e-9, "{cost} vs {expected}");
    assert_eq!(r["cost"]["spot_usd"], r["cost"]["compute_usd"]);
    assert_eq!(r["cost"]["on_demand_usd"], 0.0);
}

#[test]
fn variants_on_many_threads_give_the_same_files_as_on_one() {
    let d = dir("threads");
    let s = root().join("scenarios/tutorial/scenario.toml");
    let mut outputs = Vec::new();
    for threads in ["1", "3"] {
        let json = d.join(format!("t{threads}.json"));
        let report = d.join(format!("r{threads}"));
        let o = scalecast(&[
            "simulate",
            s.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
            "--threads",
            threads,
        ]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&report)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| {
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read(&p).unwrap(),
                )
            })
            .collect();
        files.sort();
        outputs.push((std::fs::read(&json).unwrap(), files, o.stdout));
    }
    assert!(outputs[0].0 == outputs[1].0, "the JSON differs");
    assert_eq!(outputs[0].1.len(), outputs[1].1.len());
    for (a, b) in outputs[0].1.iter().zip(&outputs[1].1) {
        assert!(a == b, "{} differs", a.0);
    }
    assert_eq!(
        text(&outputs[0].2),
        text(&outputs[1].2),
        "the table differs"
    );
}

/// `simulate SCENARIO ARGS --json JSON` in UTC, the jobs kept in memory capped at `cap` (the
/// default when None); it must succeed.
fn simulate_capped(
    scenario: &Path,
    args: &[&str],
    json: &Path,
    cap: Option<&str>,
) -> std::process::Output {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_scalecast"));
    c.arg("simulate")
        .arg(scenario)
        .args(args)
        .arg("--json")
        .arg(json)
        .env("TZ", "UTC");
    match cap {
        Some(n) => c.env("SCALECAST_MAX_JOBS_IN_MEMORY", n),
        None => c.env_remove("SCALECAST_MAX_JOBS_IN_MEMORY"),
    };
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    o
}

#[test]
fn a_trace_kept_in_memory_and_one_read_again_give_the_same_results() {
    let d = dir("kept");
    for scenario in ["tutorial", "datadog"] {
        let s = root().join(format!("scenarios/{scenario}/scenario.toml"));
        let mut outs = Vec::new();
        for cap in [None, Some("0"), Some("100")] {
            let json = d.join(format!("{scenario}-{}.json", cap.unwrap_or("default")));
            simulate_capped(&s, &["--quiet"], &json, cap);
            outs.push(std::fs::read(&json).unwrap());
        }
        assert!(
            outs[0] == outs[1] && outs[0] == outs[2],
            "{scenario}: the results differ"
        );
    }
}

/// `--by` on the shipped real trace: per stage, job name and pipeline, every variant's keys add
/// up to its cost, the table's total row says so, and the CSV holds every key.
#[test]
fn cost_by_stage_name_and_pipeline_adds_up_to_each_variant() {
    let d = dir("by");
    let s = root().join("scenarios/datadog/scenario.toml");
    for by in ["stage", "name", "pipeline"] {
        let json = d.join(format!("{by}.json"));
        let csv = d.join(format!("{by}.csv"));
        let o = scalecast(&[
            "simulate",
            s.to_str().unwrap(),
            "--by",
            by,
            "--top",
            "5",
            "--json",
            json.to_str().unwrap(),
            "--by-csv",
            csv.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        let out = text(&o.stdout);
        assert!(out.contains(&format!("cost by {by}")), "{out}");
        assert!(out.contains("other ("), "--top 5 folds the rest: {out}");
        let csv = text(&std::fs::read(&csv).unwrap());
        for variant in v["variants"].as_array().unwrap() {
            let b = &variant["by"];
            assert_eq!(b["by"], by);
            let keys = b["keys"].as_array().unwrap();
            assert!(keys.len() > 5, "{by}: {} keys", keys.len());
            let sum: f64 = keys.iter().map(|k| k["cost_usd"].as_f64().unwrap()).sum();
            let cost = variant["cost_usd"].as_f64().unwrap();
            assert!((sum - cost).abs() < 0.005, "{by}: {sum} vs {cost}");
            assert!(keys.iter().all(|k| k["cost_usd"].as_f64().unwrap() >= 0.0));
            let jobs: u64 = keys.iter().map(|k| k["jobs"].as_u64().unwrap()).sum();
            assert_eq!(jobs, variant["jobs"].as_u64().unwrap());
            // The total row carries the variant's cost as the summary prints it.
            let total = out.lines().find(|l| l.starts_with("total")).unwrap();
            assert!(
                total.contains(&format!("${cost:.2}")),
                "{total} lacks {cost:.2}"
            );
            let name = variant["name"].as_str().unwrap();
            let rows = csv
                .lines()
                .filter(|l| l.starts_with(&format!("{name},")))
                .count();
            assert_eq!(rows, keys.len(), "{by}: every key of {name} in the CSV");
        }
    }
    // Keys from `web_url`: the trace is one project.
    let json = d.join("project.json");
    let o = scalecast(&[
        "simulate",
        s.to_str().unwrap(),
        "--by",
        "project",
        "--json",
        json.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let keys = v["variants"][0]["by"]["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["key"], "DataDog/datadog-agent");
}

#[test]
fn the_breakdown_is_the_same_on_any_number_of_threads() {
    let d = dir("by-threads");
    let s = root().join("scenarios/tutorial/scenario.toml");
    let mut outputs = Vec::new();
    for threads in ["1", "4"] {
        let json = d.join(format!("t{threads}.json"));
        let csv = d.join(format!("t{threads}.csv"));
        let report = d.join(format!("r{threads}"));
        let o = scalecast(&[
            "simulate",
            s.to_str().unwrap(),
            "--by",
            "job",
            "--json",
            json.to_str().unwrap(),
            "--by-csv",
            csv.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
            "--threads",
            threads,
        ]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        outputs.push((
            std::fs::read(&json).unwrap(),
            std::fs::read(&csv).unwrap(),
            std::fs::read(report.join("by-key.png")).unwrap(),
            std::fs::read(report.join("index.html")).unwrap(),
            o.stdout,
        ));
    }
    let (a, b) = (&outputs[0], &outputs[1]);
    assert!(a.0 == b.0, "the JSON differs");
    assert!(a.1 == b.1, "the CSV differs");
    assert!(a.2 == b.2, "the plot differs");
    assert!(a.3 == b.3, "the page differs");
    assert_eq!(text(&a.4), text(&b.4), "the table differs");
    let page = text(&a.3);
    assert!(page.contains("<h2>Cost by job</h2>") && page.contains("by-key.png"));
}

#[test]
fn a_key_the_trace_lacks_is_an_input_error_that_names_the_file() {
    let d = dir("by-missing");
    let s = root().join("scenarios/datadog/scenario.toml");
    let json = d.join("out.json");
    let o = scalecast(&[
        "simulate",
        s.to_str().unwrap(),
        "--by",
        "user",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("gitlab-datadog-2026-01-13.csv"), "{err}");
    assert!(err.contains("no user column"), "{err}");
    assert!(!json.exists(), "nothing written on bad input");
    let o = scalecast(&["simulate", s.to_str().unwrap(), "--by", "team"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("project, pipeline"),
        "{}",
        text(&o.stderr)
    );
    // Without --by, the JSON has no breakdown at all.
    let plain = run_json(&s, &json);
    assert!(plain["variants"][0].get("by").is_none());
}

/// Every file of a folder, by name, with its bytes.
fn files_in(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// With two threads the baseline runs while the trace is read (jobs handed over as they are
/// checked; a report's series wait for the trace's span); on one thread it runs after. Both
/// give the same bytes, the JSON, the table and every file of the report: on the shipped scenarios
/// (the real export is not in time order, so its overlapped run is dropped and run again),
/// on the two-week trace reversed and with a job listed twice, and on a trace read as a
/// stream (kept jobs capped at 0).
#[test]
fn the_baseline_run_while_reading_gives_what_a_run_after_reading_gives() {
    let d = dir("overlap");
    let two_weeks = std::fs::read_to_string(root().join("traces/two-weeks.csv")).unwrap();
    let mut lines: Vec<&str> = two_weeks.lines().collect();
    let header = lines.remove(0);
    let reversed: Vec<&str> = std::iter::once(header)
        .chain(lines.iter().rev().copied())
        .collect();
    std::fs::write(d.join("reversed.csv"), reversed.join("\n") + "\n").unwrap();
    let twice: Vec<&str> = std::iter::once(header)
        .chain(lines.iter().copied())
        .flat_map(|l| {
            let n = if l == lines[lines.len() / 2] { 2 } else { 1 };
            std::iter::repeat_n(l, n)
        })
        .collect();
    std::fs::write(d.join("twice.csv"), twice.join("\n") + "\n").unwrap();
    let config = root().join("scenarios/tutorial/config.toml");
    let mut scenarios = vec![
        root().join("scenarios/tutorial/scenario.toml"),
        root().join("scenarios/datadog/scenario.toml"),
    ];
    for trace in ["reversed.csv", "twice.csv"] {
        let s = d.join(format!("{trace}.toml"));
        std::fs::write(
            &s,
            format!(
                "[runner]\nconfig = {config:?}\n[trace]\npath = {trace:?}\n[sim]\nseed = 3\n[[variant]]\nname = \"warm\"\nset = {{ IdleCount = 4 }}\n"
            ),
        )
        .unwrap();
        scenarios.push(s);
    }
    for s in &scenarios {
        let mut outs = Vec::new();
        for (threads, cap) in [("1", None), ("2", None), ("2", Some("0"))] {
            let json = d.join(format!("out-{threads}-{}.json", cap.unwrap_or("all")));
            let report = d.join(format!("report-{threads}-{}", cap.unwrap_or("all")));
            let _ = std::fs::remove_dir_all(&report);
            let o = simulate_capped(
                s,
                &["--threads", threads, "--report", report.to_str().unwrap()],
                &json,
                cap,
            );
            outs.push((std::fs::read(&json).unwrap(), o.stdout, files_in(&report)));
        }
        assert!(
            outs[0].2.len() >= 5 && outs[0].2 == outs[1].2 && outs[0].2 == outs[2].2,
            "{}: the report differs",
            s.display()
        );
        assert!(
            outs[0].0 == outs[1].0 && outs[0].0 == outs[2].0,
            "{}: the JSON differs",
            s.display()
        );
        assert!(
            outs[0].1 == outs[1].1 && outs[0].1 == outs[2].1,
            "{}: the table differs",
            s.display()
        );
    }
    // The one job listed twice was dropped once (it would otherwise count in the jobs).
    let one: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("out-2-all.json")).unwrap()).unwrap();
    assert_eq!(
        one["variants"][0]["jobs"].as_u64().unwrap() as usize,
        lines.len()
    );
}

/// A bad record far into the trace stops the run the baseline started while reading: exit 2,
/// the line named, no JSON written.
#[test]
fn a_bad_record_late_in_the_trace_stops_the_overlapped_run() {
    let d = dir("overlap-bad");
    let mut t = std::fs::read_to_string(root().join("traces/two-weeks.csv")).unwrap();
    let lines = t.lines().count();
    let last = t.trim_end().lines().last().unwrap().to_string();
    let mut fields: Vec<&str> = last.split(',').collect();
    fields[6] = "yesterday";
    let bad = fields.join(",");
    t.push_str(&bad);
    t.push('\n');
    std::fs::write(d.join("t.csv"), t).unwrap();
    let s = tutorial_scenario(&d, "[trace]\npath = \"t.csv\"\n");
    let out = d.join("out.json");
    assert_input_error(
        &[
            "simulate",
            s.to_str().unwrap(),
            "--threads",
            "2",
            "--json",
            out.to_str().unwrap(),
        ],
        &format!("t.csv: line {}", lines + 1),
        &out,
    );
}
