//! `scalecast migrate` on the tutorial's config.toml: `check` accepts the result, and every
//! key the user wrote is there with its value (but the executor), comments included.

mod common;
use common::{scalecast, text};

/// Every leaf of a TOML document as (dotted path, value).
fn leaves(v: &toml::Value, path: String, out: &mut Vec<(String, toml::Value)>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                leaves(v, format!("{path}.{k}"), out);
            }
        }
        toml::Value::Array(a) if a.iter().all(|x| x.is_table()) && !a.is_empty() => {
            for (i, v) in a.iter().enumerate() {
                leaves(v, format!("{path}[{i}]"), out);
            }
        }
        other => out.push((path, other.clone())),
    }
}

#[test]
fn the_tutorial_config_migrates_keeps_every_key_and_passes_check() {
    let original_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/tutorial/config.toml"
    );
    let o = scalecast(&["migrate", original_path]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let migrated = text(&o.stdout);
    let said = text(&o.stderr);
    assert!(
        said.contains("executor: \"docker+machine\" -> \"custom\""),
        "{said}"
    );

    let original = std::fs::read_to_string(original_path).unwrap();
    let before: toml::Value = toml::from_str(&original).unwrap();
    let after: toml::Value = toml::from_str(&migrated).unwrap();
    let (mut b, mut a) = (Vec::new(), Vec::new());
    leaves(&before, String::new(), &mut b);
    leaves(&after, String::new(), &mut a);
    for (path, value) in &b {
        let now = a.iter().find(|(p, _)| p == path).map(|(_, v)| v);
        if path == ".runners[0].executor" {
            assert_eq!(now.and_then(|v| v.as_str()), Some("custom"));
        } else {
            assert_eq!(now, Some(value), "{path} kept");
        }
    }
    for comment in original.lines().filter(|l| l.trim_start().starts_with('#')) {
        assert!(migrated.contains(comment), "comment kept: {comment}");
    }
    let custom = &after["runners"][0]["custom"];
    for stage in ["config", "prepare", "run", "cleanup"] {
        let args = custom[format!("{stage}_args")].as_array().unwrap();
        assert_eq!(args[0].as_str(), Some("executor"));
        assert_eq!(args[1].as_str(), Some(stage));
    }

    let dir = common::tmp().join("migrate");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("config.toml");
    std::fs::write(&file, &migrated).unwrap();
    let check = scalecast(&["check", file.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stdout));
    assert!(
        !text(&check.stdout).contains("error"),
        "{}",
        text(&check.stdout)
    );
    let _ = std::fs::remove_dir_all(&dir);

    // A runner without [runners.machine] cannot be migrated; the error names the file.
    let bad = dir.with_extension("toml");
    std::fs::write(&bad, "[[runners]]\nname = \"s\"\nexecutor = \"shell\"\n").unwrap();
    let o = scalecast(&["migrate", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains(bad.to_str().unwrap()),
        "{}",
        text(&o.stderr)
    );
    let _ = std::fs::remove_file(&bad);
}
