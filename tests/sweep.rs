//! `scalecast sweep`: the recommendation is the cheapest combination meeting the target (as
//! `simulate` finds it one by one), and the files do not depend on the number of threads.

mod common;
use common::{scalecast, text};
use std::path::{Path, PathBuf};

fn setup(name: &str) -> (PathBuf, PathBuf) {
    let d = common::tmp().join(format!("sweep-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("config.toml"),
        "concurrent = 20\n[[runners]]\nname = \"r\"\nexecutor = \"docker+machine\"\nlimit = 20\n[runners.machine]\nIdleCount = 1\nIdleTime = 600\nMachineOptions = [\"amazonec2-region=us-east-1\", \"amazonec2-instance-type=m5.large\"]\n",
    )
    .unwrap();
    let s = d.join("s.toml");
    std::fs::write(
        &s,
        "[runner]\nconfig = \"config.toml\"\n[trace]\nsynthetic = { days = 2, jobs_per_day = 120, seed = 5 }\n[sim]\nseed = 9\n[machine]\nboot_seconds = 60\n",
    )
    .unwrap();
    (d, s)
}

const GRID: [&str; 4] = ["--grid", "IdleCount=0,1,3", "--grid", "IdleTime=60,1800"];

/// `scalecast sweep S --out OUT` with `args`, as it comes out.
fn run_sweep(s: &Path, out: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["sweep", s.to_str().unwrap(), "--out", out.to_str().unwrap()];
    all.extend(args);
    scalecast(&all)
}

/// `scalecast sweep S --out OUT --quiet` over GRID, with `extra` arguments; must succeed.
fn sweep(s: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["--quiet"];
    args.extend(GRID);
    args.extend(extra);
    let o = run_sweep(s, out, &args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    o
}

fn simulate_with(s: &Path, out: &Path, sets: &[(String, String)]) -> serde_json::Value {
    let mut args = vec![
        "simulate".to_string(),
        s.display().to_string(),
        "--json".into(),
        out.display().to_string(),
        "--quiet".into(),
    ];
    for (k, v) in sets {
        args.push("--set".into());
        args.push(format!("{k}={v}"));
    }
    let args: Vec<&str> = args.iter().map(|a| a.as_str()).collect();
    let o = scalecast(&args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(out).unwrap()).unwrap();
    v["variants"][0].clone()
}

#[test]
fn recommendation_is_the_cheapest_combination_meeting_the_target() {
    let (d, s) = setup("recommend");
    // Every combination, one by one, with simulate.
    let mut each = Vec::new();
    for ic in ["0", "1", "3"] {
        for it in ["60", "1800"] {
            let sets = vec![
                ("IdleCount".to_string(), ic.to_string()),
                ("IdleTime".to_string(), it.to_string()),
            ];
            let r = simulate_with(&s, &d.join("one.json"), &sets);
            each.push((sets, r));
        }
    }
    let mut p95s: Vec<f64> = each
        .iter()
        .map(|(_, r)| r["wait_s"]["p95"].as_f64().unwrap())
        .collect();
    p95s.sort_by(|a, b| a.total_cmp(b));
    let target = p95s[2];
    let expected = each
        .iter()
        .filter(|(_, r)| {
            r["jobs_unfinished"] == 0 && r["wait_s"]["p95"].as_f64().unwrap() <= target
        })
        .min_by(|a, b| {
            a.1["cost_usd"]
                .as_f64()
                .unwrap()
                .total_cmp(&b.1["cost_usd"].as_f64().unwrap())
        })
        .unwrap();

    let out = d.join("sweep");
    let o = sweep(&s, &out, &["--target-p95", &format!("{target}s")]);
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("sweep.json")).unwrap()).unwrap();
    let rec = &v["recommendation"];
    assert_eq!(rec["meets"], true);
    let row = &v["rows"][rec["row"].as_u64().unwrap() as usize];
    let set: Vec<(String, String)> = row["set"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap().to_string(),
                p[1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(set, expected.0);
    assert_eq!(
        row["cost_usd"], expected.1["cost_usd"],
        "the sweep's figures are simulate's"
    );
    let stdout = text(&o.stdout);
    assert!(stdout.contains("Cheapest combination"), "{stdout}");
    assert!(
        stdout.contains("[runners.machine]")
            && stdout.contains(&format!("IdleCount = {}", expected.0[0].1))
    );
    assert_eq!(v["rows"].as_array().unwrap().len(), 6);
}

#[test]
fn nothing_meeting_the_target_shows_the_closest() {
    let (d, s) = setup("none");
    let out = d.join("sweep");
    let o = sweep(&s, &out, &["--target-p99", "0.001s"]);
    assert!(text(&o.stdout).contains("No combination meets p99"));
    // Nothing to paste: the closest is not a recommendation.
    assert!(
        !text(&o.stdout).contains("In config.toml"),
        "{}",
        text(&o.stdout)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("sweep.json")).unwrap()).unwrap();
    assert_eq!(v["recommendation"]["meets"], false);
    let best = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["wait_s"]["p99"].as_f64().unwrap())
        .fold(f64::INFINITY, f64::min);
    let chosen = &v["rows"][v["recommendation"]["row"].as_u64().unwrap() as usize];
    assert_eq!(chosen["wait_s"]["p99"].as_f64().unwrap(), best);
}

#[test]
fn sweeps_do_not_depend_on_the_number_of_threads() {
    let (d, s) = setup("threads");
    let mut files = Vec::new();
    for threads in ["1", "2", "3"] {
        let out = d.join(format!("t{threads}"));
        sweep(&s, &out, &["--threads", threads, "--target-mean", "30s"]);
        files.push(
            ["sweep.csv", "sweep.json", "pareto.png"].map(|f| std::fs::read(out.join(f)).unwrap()),
        );
    }
    assert_eq!(files[0], files[1]);
    assert_eq!(files[0], files[2]);
    let img = image::load_from_memory(&files[0][2]).unwrap();
    assert!(img.width() >= 1000 && img.height() >= 600);
}

#[test]
fn bad_grid_is_an_input_error() {
    let (d, s) = setup("badgrid");
    let out = d.join("sweep");
    let o = run_sweep(&s, &out, &["--grid", "Colour=red,blue"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("Colour"));
    assert!(!out.join("sweep.csv").exists());
    let o = run_sweep(&s, &out, &["--grid", "IdleCount=1", "--target-p95", "soon"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_combination_that_leaves_jobs_unfinished_is_never_recommended() {
    // concurrent = 0 runs nothing: every wait is a lower bound, and it must not win.
    let (d, s) = setup("unfinished");
    let out = d.join("sweep");
    let o = run_sweep(
        &s,
        &out,
        &["--quiet", "--grid", "concurrent=0,20", "--target-p95", "1h"],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("sweep.json")).unwrap()).unwrap();
    let rows = v["rows"].as_array().unwrap();
    let zero = rows.iter().find(|r| r["name"] == "concurrent=0").unwrap();
    assert!(zero["jobs_unfinished"].as_u64().unwrap() > 0);
    assert!(
        zero["wait_s"]["p95"].as_f64().unwrap() > 3600.0,
        "censored waits count"
    );
    let chosen = &rows[v["recommendation"]["row"].as_u64().unwrap() as usize];
    assert_eq!(chosen["name"], "concurrent=20");
}

#[test]
fn shards_run_as_separate_processes_merge_into_the_unsharded_sweep_byte_for_byte() {
    let (d, s) = setup("shards");
    let whole = d.join("whole");
    sweep(&s, &whole, &["--target-p95", "60s"]);
    let shard_dir = |i: usize| d.join(format!("shard-{i}"));
    // Four processes, one shard each (an odd split: 6 combinations over 4 shards).
    let procs: Vec<_> = (0..4)
        .map(|i| {
            let out = shard_dir(i);
            let shard = format!("{i}/4");
            let mut args = vec!["sweep", s.to_str().unwrap(), "--out", out.to_str().unwrap()];
            args.extend(["--quiet", "--shard", shard.as_str(), "--target-p95", "60s"]);
            args.extend(GRID);
            std::process::Command::new(env!("CARGO_BIN_EXE_scalecast"))
                .args(&args)
                .output()
                .unwrap()
        })
        .collect::<Vec<_>>();
    for p in &procs {
        assert!(p.status.success(), "{}", text(&p.stderr));
    }
    let merged = d.join("merged");
    let dirs: Vec<String> = (0..4)
        .rev()
        .map(|i| shard_dir(i).display().to_string())
        .collect();
    let mut args = vec!["sweep", "merge", "--out", merged.to_str().unwrap()];
    args.extend(dirs.iter().map(|s| s.as_str()));
    let o = scalecast(&args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("Cheapest combination")
            || text(&o.stdout).contains("No combination meets")
    );
    for f in ["sweep.csv", "sweep.json", "pareto.png"] {
        assert!(
            std::fs::read(whole.join(f)).unwrap() == std::fs::read(merged.join(f)).unwrap(),
            "{f} differs"
        );
    }

    // A missing shard, a duplicate one, and a shard of another sweep are refused by name.
    let merge = |dirs: &[PathBuf]| {
        let out = d.join("bad");
        let mut args = vec![
            "sweep".to_string(),
            "merge".into(),
            "--out".into(),
            out.display().to_string(),
        ];
        args.extend(dirs.iter().map(|p| p.display().to_string()));
        let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let o = scalecast(&args);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
        assert!(!out.exists(), "nothing written");
        text(&o.stderr)
    };
    let e = merge(&[shard_dir(0), shard_dir(1), shard_dir(3)]);
    assert!(e.contains("shard 2 of 4 is missing"), "{e}");
    let e = merge(&[
        shard_dir(0),
        shard_dir(1),
        shard_dir(1),
        shard_dir(2),
        shard_dir(3),
    ]);
    assert!(e.contains("are both shard 1 of 4"), "{e}");
    // Shard 2 again, of a sweep with another seed.
    let other = d.join("other-2");
    let mut args = vec![
        "sweep",
        s.to_str().unwrap(),
        "--out",
        other.to_str().unwrap(),
    ];
    args.extend([
        "--quiet",
        "--shard",
        "2/4",
        "--target-p95",
        "60s",
        "--set",
        "IdleCount=2",
    ]);
    args.extend(GRID);
    let o = scalecast(&args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let e = merge(&[shard_dir(0), shard_dir(1), other.clone(), shard_dir(3)]);
    assert!(
        e.contains("shards of different sweeps") && e.contains("other-2"),
        "{e}"
    );
    // A bad --shard is an input error.
    let o = run_sweep(
        &s,
        &d.join("x"),
        &["--shard", "4/4", "--grid", "IdleCount=0,1"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("0 <= I < N"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn the_shard_script_takes_gitlabs_and_aws_batchs_indices() {
    let (d, s) = setup("script");
    let whole = d.join("whole");
    sweep(&s, &whole, &[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/sweep/shard.sh");
    let shards = d.join("shards");
    let run = |env: &[(&str, &str)]| {
        let mut c = std::process::Command::new("bash");
        c.arg(script)
            .arg(&shards)
            .arg(&s)
            .args(GRID)
            .env("SCALECAST", env!("CARGO_BIN_EXE_scalecast"))
            .env_remove("CI_NODE_INDEX")
            .env_remove("AWS_BATCH_JOB_ARRAY_INDEX")
            .env_remove("SHARD");
        for (k, v) in env {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{env:?}: {}", text(&o.stderr));
    };
    // GitLab's parallel jobs count from 1; AWS Batch's array children from 0.
    run(&[("CI_NODE_INDEX", "1"), ("CI_NODE_TOTAL", "3")]);
    run(&[("AWS_BATCH_JOB_ARRAY_INDEX", "1"), ("SHARDS", "3")]);
    run(&[("SHARD", "2"), ("SHARDS", "3")]);
    let merged = d.join("merged");
    let dirs: Vec<String> = (0..3)
        .map(|i| shards.join(format!("shard-{i}")).display().to_string())
        .collect();
    let mut args = vec![
        "sweep",
        "merge",
        "--quiet",
        "--out",
        merged.to_str().unwrap(),
    ];
    args.extend(dirs.iter().map(|s| s.as_str()));
    let o = scalecast(&args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    for f in ["sweep.csv", "sweep.json", "pareto.png"] {
        assert!(
            std::fs::read(whole.join(f)).unwrap() == std::fs::read(merged.join(f)).unwrap(),
            "{f} differs"
        );
    }
}
