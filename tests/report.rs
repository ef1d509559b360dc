//! `simulate --report DIR`: every plot decodes, is large enough and is not blank, and the page
//! references every plot and holds every variant's figures.

mod common;
use common::{scalecast, text};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `simulate --report DIR/report --json DIR/r.json` of the tutorial's config and two weeks'
/// trace from 2026-11-02 to `end`, with `more` added to the scenario (its `[machine]` and
/// variants), in a fresh folder `name`; `prepare` readies the report's folder first.
fn simulate_report(
    name: &str,
    end: &str,
    more: &str,
    prepare: impl FnOnce(&Path),
) -> (PathBuf, PathBuf, std::process::Output) {
    let d = common::tmp().join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let s = d.join("s.toml");
    std::fs::write(
        &s,
        format!(
            "[runner]\nconfig = {:?}\n[trace]\npath = {:?}\n[sim]\nseed = 3\nstart = \"2026-11-02T00:00:00Z\"\nend = \"{end}\"\n{more}",
            root().join("scenarios/tutorial/config.toml"),
            root().join("traces/two-weeks.csv"),
        ),
    )
    .unwrap();
    let out = d.join("report");
    prepare(&out);
    let json = d.join("r.json");
    let o = scalecast(&[
        "simulate",
        s.to_str().unwrap(),
        "--report",
        out.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "--quiet",
    ]);
    (out, json, o)
}

#[test]
fn report_writes_every_plot_and_a_page_with_every_variant() {
    let (out, json, o) = simulate_report(
        "report",
        "2026-11-06T00:00:00Z",
        "[machine]\nboot_seconds = { median = 90, p95 = 180 }\n[[variant]]\nname = \"as GitLab runs it\"\nset = { engine = \"docker-machine\" }\n[[variant]]\nname = \"pool of 10 <day>\"\nset = { \"autoscaling.0.IdleCount\" = 10 }\n",
        |_| {},
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let plots = ["fleet.png", "wait.png", "cost.png", "heatmap.png"];
    for p in plots {
        let img = image::open(out.join(p))
            .unwrap_or_else(|e| panic!("{p}: {e}"))
            .to_rgb8();
        assert!(
            img.width() >= 1000 && img.height() >= 600,
            "{p}: {}x{}",
            img.width(),
            img.height()
        );
        let first = *img.get_pixel(0, 0);
        let differing = img.pixels().filter(|px| **px != first).count();
        assert!(
            differing > (img.width() * img.height() / 50) as usize,
            "{p} looks blank"
        );
        let colours: std::collections::BTreeSet<[u8; 3]> =
            img.pixels().map(|px| px.0).take(200_000).collect();
        assert!(colours.len() > 10, "{p}: {} colours", colours.len());
    }
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    for p in plots {
        assert!(
            html.contains(&format!("href=\"{p}\"")),
            "{p} not referenced"
        );
        assert!(
            html.contains(&format!("alt=\"{p}\" src=\"data:image/png;base64,")),
            "{p} not embedded"
        );
    }
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no network"
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    for r in v["variants"].as_array().unwrap() {
        let name = r["name"]
            .as_str()
            .unwrap()
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        assert!(html.contains(&format!("<th>{name}</th>")), "{name} missing");
        let cost = format!("${:.2}", r["cost_usd"].as_f64().unwrap());
        assert!(html.contains(&cost), "{cost} missing");
        // The same figures as the terminal's table, in its units.
        let p95 = r["wait_s"]["p95"].as_f64().unwrap();
        let p95 = if p95 < 60.0 {
            format!("{p95:.1}s")
        } else if p95 < 3600.0 {
            format!("{:.1}m", p95 / 60.0)
        } else {
            format!("{:.1}h", p95 / 3600.0)
        };
        assert!(html.contains(&format!("<td>{p95}</td>")), "{p95} missing");
        for change in r["changes"].as_array().unwrap() {
            assert!(html.contains(change.as_str().unwrap()), "{change} missing");
        }
    }
    for row in [
        "window",
        "changed settings",
        "idle share of spend",
        "machine-hours idle",
    ] {
        assert!(
            html.contains(&format!("<tr><td>{row}</td>")),
            "{row} row missing"
        );
    }
}

/// A plot that cannot be written (here a folder stands where `wait.png` goes) is an error
/// naming that file, exit 1, and no partial picture is left behind.
#[test]
fn a_plot_that_cannot_be_written_is_named() {
    let (out, _, o) = simulate_report("report-blocked", "2026-11-03T00:00:00Z", "", |out| {
        std::fs::create_dir_all(out.join("wait.png").join("in-the-way")).unwrap()
    });
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let named = out.join("wait.png").display().to_string();
    assert!(err.contains(&named), "{err}");
    let left: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
