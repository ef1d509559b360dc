//! `scalecast migrate`: the same config.toml with one runner switched from docker+machine to
//! GitLab Runner's custom executor driven by scalecast, every other key, table and comment
//! kept as the user wrote it (toml_edit keeps the document's formatting).
//!
//! What changes, in that runner only: `executor = "custom"`; `builds_dir` and `cache_dir` when
//! missing (the custom executor requires both; `/builds` and `/cache`, as the docker executor
//! used); a `[runners.custom]` whose four stages call `scalecast executor config|prepare|run|
//! cleanup --state DIR`. `[runners.docker]`, `[runners.cache]` and `[runners.machine]` stay:
//! scalecast reads them.

use crate::config::{ConfigFile, InputError};
use std::path::Path;
use toml_edit::{Array, DocumentMut, Item, Table, value};

/// Where the migrated runner finds scalecast.
#[derive(Clone, Debug)]
pub struct Target {
    /// The scalecast binary on the manager.
    pub binary: String,
    /// The daemon's state directory.
    pub state: String,
}

impl Default for Target {
    fn default() -> Self {
        Target {
            binary: "/usr/local/bin/scalecast".into(),
            state: "/var/lib/scalecast".into(),
        }
    }
}

/// The migrated text and what changed, one line each.
#[derive(Clone, Debug)]
pub struct Migrated {
    pub text: String,
    pub runner: String,
    pub changes: Vec<String>,
}

/// Migrate `text` (the contents of `file`).
pub fn migrate(
    file: &Path,
    text: &str,
    runner: Option<&str>,
    target: &Target,
) -> Result<Migrated, InputError> {
    // Checked as GitLab Runner's config first: a broken file is refused with its line.
    let cfg = ConfigFile::parse(file, text)?;
    let chosen = cfg.runner(runner)?;
    let index = cfg
        .runners
        .iter()
        .position(|r| std::ptr::eq(r, chosen))
        .expect("the runner is one of the file's");
    let err = |message: String| InputError {
        file: file.display().to_string(),
        line: chosen.line,
        message,
    };
    if chosen.machine.is_none() {
        return Err(err(format!(
            "runner {:?} has no [runners.machine]: there is no fleet for scalecast to drive",
            chosen.name
        )));
    }
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| err(e.to_string()))?;
    let runners = doc
        .get_mut("runners")
        .and_then(Item::as_array_of_tables_mut)
        .ok_or_else(|| err("no [[runners]] array of tables".into()))?;
    let t = runners
        .get_mut(index)
        .ok_or_else(|| err("the runner is not in [[runners]]".into()))?;
    let mut changes = Vec::new();

    let was = t
        .get("executor")
        .and_then(Item::as_str)
        .unwrap_or("")
        .to_string();
    if was != "custom" {
        set_keeping_decor(t, "executor", "custom");
        changes.push(format!("executor: {was:?} -> \"custom\""));
    }
    // New keys indented as the runner's own.
    let indent = t
        .key("name")
        .or_else(|| t.key("executor"))
        .and_then(|k| k.leaf_decor().prefix())
        .and_then(|p| p.as_str())
        .unwrap_or("")
        .to_string();
    for (key, default) in [("builds_dir", "/builds"), ("cache_dir", "/cache")] {
        if !t.contains_key(key) {
            t.insert(key, value(default));
            if let Some(mut k) = t.key_mut(key) {
                k.leaf_decor_mut().set_prefix(indent.as_str());
            }
            changes.push(format!(
                "{key} = {default:?} added (the custom executor requires it)"
            ));
        }
    }
    let mut custom = Table::new();
    let args = |stage: &str| {
        let mut a = Array::new();
        for s in ["executor", stage, "--state", target.state.as_str()] {
            a.push(s);
        }
        a
    };
    for stage in ["config", "prepare", "run", "cleanup"] {
        custom.insert(&format!("{stage}_exec"), value(target.binary.as_str()));
        custom.insert(&format!("{stage}_args"), value(args(stage)));
    }
    // prepare waits while a machine is made (the daemon answers once the job has one).
    custom.insert("prepare_exec_timeout", value(3600));
    let deeper = format!("{indent}  ");
    for (mut k, _) in custom.iter_mut() {
        k.leaf_decor_mut().set_prefix(deeper.as_str());
    }
    custom.decor_mut().set_prefix(format!("\n{indent}"));
    let had = t.contains_key("custom");
    t.insert("custom", Item::Table(custom));
    changes.push(format!(
        "[runners.custom] {}: its stages call {} executor config|prepare|run|cleanup --state {}",
        if had { "replaced" } else { "added" },
        target.binary,
        target.state
    ));
    Ok(Migrated {
        text: doc.to_string(),
        runner: chosen.name.clone(),
        changes,
    })
}

/// Set a string key, keeping the comment and spacing around the old value.
fn set_keeping_decor(t: &mut Table, key: &str, v: &str) {
    match t.get_mut(key).and_then(Item::as_value_mut) {
        Some(old) => {
            let decor = old.decor().clone();
            *old = toml_edit::Value::from(v);
            *old.decor_mut() = decor;
        }
        None => {
            t.insert(key, value(v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"# my runner
concurrent = 10

[[runners]]
  name = "shell"
  executor = "shell"

[[runners]]
  name = "fleet"   # the autoscaled one
  executor = "docker+machine" # was this
  limit = 20
  [runners.docker]
    image = "alpine"
  [runners.machine]
    IdleCount = 1
    MachineOptions = ["amazonec2-region=eu-central-1"]
"#;

    #[test]
    fn one_runner_is_switched_and_everything_else_kept() {
        let m = migrate(
            Path::new("config.toml"),
            CONFIG,
            Some("fleet"),
            &Target::default(),
        )
        .unwrap();
        assert_eq!(m.runner, "fleet");
        assert!(
            m.text.starts_with("# my runner\nconcurrent = 10\n"),
            "{}",
            m.text
        );
        assert!(m.text.contains("name = \"fleet\"   # the autoscaled one"));
        assert!(
            m.text.contains("executor = \"custom\" # was this"),
            "{}",
            m.text
        );
        assert!(
            m.text.contains("executor = \"shell\""),
            "the other runner is untouched"
        );
        assert!(m.text.contains("[runners.custom]"));
        assert!(m.text.contains("IdleCount = 1"));
        let cfg = ConfigFile::parse(Path::new("m.toml"), &m.text).unwrap();
        let r = cfg.runner(Some("fleet")).unwrap();
        assert_eq!(r.executor, "custom");
        assert_eq!(
            (r.builds_dir.as_str(), r.cache_dir.as_str()),
            ("/builds", "/cache")
        );
        assert_eq!(r.docker.as_ref().unwrap().image, "alpine");
        assert_eq!(m.changes.len(), 4, "{:?}", m.changes);
        // Migrating the result again changes nothing but the custom table it rewrites.
        let again = migrate(
            Path::new("m.toml"),
            &m.text,
            Some("fleet"),
            &Target::default(),
        )
        .unwrap();
        assert_eq!(again.text, m.text);
        assert_eq!(again.changes.len(), 1);
    }

    #[test]
    fn a_runner_without_a_fleet_or_a_broken_file_is_refused_by_name() {
        let e = migrate(
            Path::new("c.toml"),
            CONFIG,
            Some("shell"),
            &Target::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("c.toml") && e.contains("no [runners.machine]"),
            "{e}"
        );
        let e = migrate(
            Path::new("c.toml"),
            "concurrent = [\n",
            None,
            &Target::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("c.toml:"), "{e}");
    }
}
