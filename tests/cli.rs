//! The commands as a user runs them: exit codes, messages naming file and line, JSON shapes.

use std::path::PathBuf;
mod common;
use common::{scalecast, text};

const TUTORIAL: &str = "scenarios/tutorial/config.toml";

fn temp(name: &str, content: &str) -> PathBuf {
    let dir = common::tmp().join("cli");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

fn tutorial_with(from: &str, to: &str) -> String {
    let t = std::fs::read_to_string(TUTORIAL).unwrap();
    assert!(t.contains(from));
    t.replacen(from, to, 1)
}

#[test]
fn check_tutorial_exits_zero() {
    let o = scalecast(&["check", TUTORIAL]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("ok"));
}

#[test]
fn periods_at_weekday_morning_shows_entry_zero_as_json() {
    let o = scalecast(&[
        "periods",
        TUTORIAL,
        "--at",
        "2026-11-25T10:00:00Z",
        "--json",
    ]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "IdleCount",
            "IdleCountMin",
            "IdleScaleFactor",
            "IdleTime",
            "entry"
        ]
    );
    assert_eq!(v["entry"], 0);
    assert_eq!(v["IdleCount"], 50);
    let o = scalecast(&[
        "periods",
        TUTORIAL,
        "--at",
        "2026-11-25T20:00:00Z",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["entry"].is_null());
    assert_eq!(v["IdleCount"], 1);
}

#[test]
fn periods_from_to_lists_each_change() {
    let o = scalecast(&[
        "periods",
        TUTORIAL,
        "--from",
        "2026-11-27T00:00:00Z",
        "--to",
        "2026-11-28T12:00:00Z",
    ]);
    assert!(o.status.success());
    let out = text(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines[1].starts_with("2026-11-27T08:59:59.000Z  entry 0"));
    assert!(lines[3].starts_with("2026-11-27T23:59:59.000Z  entry 1"));
}

#[test]
fn reversed_range_warning_names_its_line() {
    let p = temp("sat-sun.toml", &tutorial_with("sat,sun", "sat-sun"));
    let o = scalecast(&["check", p.to_str().unwrap(), "--json"]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let f = v["findings"].as_array().unwrap();
    let w = f
        .iter()
        .find(|f| f["code"] == "never_active")
        .expect("a warning");
    assert_eq!(w["severity"], "warning");
    assert_eq!(w["line"], 50);
    assert!(w["message"].as_str().unwrap().contains("sat-sun"));
}

#[test]
fn broken_toml_exits_2_with_file_and_line() {
    let p = temp("broken.toml", "concurrent = 3\n[[runners]\n");
    let o = scalecast(&["check", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stdout).contains("broken.toml:2:"),
        "{}",
        text(&o.stdout)
    );
    let o = scalecast(&[
        "periods",
        p.to_str().unwrap(),
        "--at",
        "2026-11-25T10:00:00Z",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("broken.toml:2:"));
}

#[test]
fn unknown_time_zone_exits_2_with_line() {
    let p = temp(
        "tz.toml",
        &tutorial_with("Timezone = \"UTC\"", "Timezone = \"Atlantis/Central\""),
    );
    let o = scalecast(&["check", p.to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["findings"][0]["severity"], "error");
    assert_eq!(v["findings"][0]["line"], 48);
}

#[test]
fn bad_expression_exits_2_with_line() {
    let p = temp(
        "expr.toml",
        &tutorial_with("* * 9-17 * * mon-fri *", "* * 9-27 * * mon-fri *"),
    );
    let o = scalecast(&["check", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let out = text(&o.stdout);
    assert!(
        out.contains("expr.toml:45:") && out.contains("9-27"),
        "{out}"
    );
}

#[test]
fn no_such_runner_exits_2() {
    let o = scalecast(&["check", TUTORIAL, "--runner", "ghost"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn replay_prints_one_json_action_per_line() {
    let ev = temp(
        "events.ndjson",
        concat!(
            "{\"at\":\"2026-11-28T10:00:00Z\",\"event\":\"job_arrived\",\"job\":1}\n",
            "{\"at\":\"2026-11-28T10:01:00Z\",\"event\":\"machine_ready\",\"machine\":1}\n",
        ),
    );
    let o = scalecast(&["replay", "--config", TUTORIAL, ev.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let actions: Vec<serde_json::Value> = text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Saturday: entry 1, IdleCount 5: the pool is made at the first instant, and the job
    // waits for the first machine to be ready.
    let creates: Vec<&serde_json::Value> = actions
        .iter()
        .filter(|a| a["action"] == "create_machine")
        .collect();
    assert_eq!(
        creates.len(),
        6,
        "five at first, one more when the job took a machine"
    );
    assert_eq!(creates[5]["at"], "2026-11-28T10:01:00.000Z");
    assert_eq!(creates[0]["reason"]["why"], "idle_pool");
    assert_eq!(creates[0]["reason"]["target"], 5);
    assert_eq!(creates[0]["reason"]["entry"], 1);
    assert!(
        actions
            .iter()
            .any(|a| a["action"] == "start_job" && a["job"] == 1 && a["machine"] == 1)
    );
    let out = text(&o.stdout);
    assert!(!out.contains("YOUR_"), "no secret in the output");
}

#[test]
fn replay_bad_event_exits_2_naming_file_and_line() {
    let ev = temp(
        "bad-events.ndjson",
        "{\"at\":\"2026-11-28T10:00:00Z\",\"event\":\"job_arrived\",\"job\":1}\n\n{\"at\":\"2026-11-28T10:00:00Z\",\"event\":\"job_finished\",\"job\":2}\n",
    );
    let o = scalecast(&["replay", "--config", TUTORIAL, ev.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("bad-events.ndjson:3:"),
        "{}",
        text(&o.stderr)
    );
    let ev = temp(
        "garbled.ndjson",
        "{\"at\":\"yesterday\",\"event\":\"tick\"}\n",
    );
    let o = scalecast(&["replay", "--config", TUTORIAL, ev.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("garbled.ndjson:1:"));
}

#[test]
fn replay_docker_machine_polls_until_asked() {
    let ev = temp(
        "one.ndjson",
        "{\"at\":\"2026-11-28T10:00:00Z\",\"event\":\"tick\"}\n",
    );
    let o = scalecast(&[
        "replay",
        "--config",
        TUTORIAL,
        "--engine",
        "docker-machine",
        "--until",
        "2026-11-28T10:00:30Z",
        ev.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    // IdleCount 5 on Saturday, limit 20: the first poll creates 5, later polls nothing more.
    let creates = text(&o.stdout)
        .lines()
        .filter(|l| l.contains("create_machine"))
        .count();
    assert_eq!(creates, 5);
}
