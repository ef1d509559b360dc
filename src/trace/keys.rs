//! Who a job was for: the key a cost is attributed by (project, pipeline, ref, stage, job name,
//! user, tags, runner, or the job itself), read from a trace's columns (CSV) or fields (the
//! Jobs API's JSON and Job Hook payloads) and looked up by job id.
//!
//! The simulator's own pass over the trace keeps only what it replays (32 bytes a job); keys
//! are read in a second pass, and only when a breakdown is asked for. A trace that has none of
//! a key's columns is an error that says which names were looked for: a key is never invented.

use crate::core::fxmap::FastMap;
use crate::trace::json::JsonObjects;
use crate::trace::{Format, ID, TraceError, TraceResult, io_error, sniff};
use serde_json::Value;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// What a cost is attributed by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeyKind {
    Project,
    Pipeline,
    Ref,
    Stage,
    Name,
    User,
    Tags,
    Runner,
    Job,
}

impl KeyKind {
    pub const ALL: [KeyKind; 9] = [
        KeyKind::Project,
        KeyKind::Pipeline,
        KeyKind::Ref,
        KeyKind::Stage,
        KeyKind::Name,
        KeyKind::User,
        KeyKind::Tags,
        KeyKind::Runner,
        KeyKind::Job,
    ];

    pub fn name(self) -> &'static str {
        match self {
            KeyKind::Project => "project",
            KeyKind::Pipeline => "pipeline",
            KeyKind::Ref => "ref",
            KeyKind::Stage => "stage",
            KeyKind::Name => "name",
            KeyKind::User => "user",
            KeyKind::Tags => "tags",
            KeyKind::Runner => "runner",
            KeyKind::Job => "job",
        }
    }

    /// The columns (CSV, lower case) or field paths (JSON, dotted) the key is read from, the
    /// first present one winning. The Jobs API nests `pipeline`, `user`, `runner` and
    /// `project`; pandas' `json_normalize` flattens them as `pipeline.id`, a hand-made export
    /// as `pipeline_id`; Job Hook payloads say `build_stage`, `build_name`, `pipeline_id`.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            KeyKind::Project => &[
                "web_url",
                "project.path_with_namespace",
                "project_path",
                "project.path",
                "project_name",
                "project.name",
                "project_id",
                "project.id",
            ],
            KeyKind::Pipeline => &["pipeline.id", "pipeline_id"],
            KeyKind::Ref => &["ref", "pipeline.ref"],
            KeyKind::Stage => &["stage", "build_stage"],
            KeyKind::Name => &["name", "job_name", "build_name"],
            KeyKind::User => &[
                "user.username",
                "user_username",
                "username",
                "user.name",
                "user_name",
            ],
            KeyKind::Tags => &["tag_list", "tags", "build_tag_list"],
            KeyKind::Runner => &[
                "runner.description",
                "runner_description",
                "runner.name",
                "runner_name",
                "runner.id",
                "runner_id",
            ],
            KeyKind::Job => ID,
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KeyKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim().to_ascii_lowercase();
        KeyKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = KeyKind::ALL.iter().map(|k| k.name()).collect();
                format!("unknown key {s:?}: use one of {}", names.join(", "))
            })
    }
}

/// Every job's key, by job id.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Keys {
    pub kind: Option<KeyKind>,
    /// The key names; a job's key is an index into this.
    pub names: Vec<String>,
    by_job: FastMap<u64, u32>,
    /// The index of "(no KIND)", for jobs whose record leaves the key empty.
    none: Option<u32>,
    index: FastMap<String, u32>,
}

impl Keys {
    pub fn new(kind: KeyKind) -> Self {
        Keys {
            kind: Some(kind),
            ..Default::default()
        }
    }

    /// Give job `id` the key `name` (None: the record has no value for it).
    pub fn insert(&mut self, id: u64, name: Option<&str>) {
        let k = match name {
            Some(n) => self.intern(n),
            None => self.none(),
        };
        self.by_job.insert(id, k);
    }

    fn intern(&mut self, name: &str) -> u32 {
        if let Some(&k) = self.index.get(name) {
            return k;
        }
        let k = self.names.len() as u32;
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), k);
        k
    }

    fn none(&mut self) -> u32 {
        if let Some(k) = self.none {
            return k;
        }
        let label = format!("(no {})", self.kind.map_or("key", |k| k.name()));
        let k = self.intern(&label);
        self.none = Some(k);
        k
    }

    /// Job `id`'s key. A job the key pass did not see (it cannot happen for a file read
    /// whole) counts as having none.
    pub fn of(&self, id: u64) -> u32 {
        self.by_job
            .get(&id)
            .copied()
            .or(self.none)
            .unwrap_or(u32::MAX)
    }

    /// The name of key `k` ("(no KIND)" for one out of range).
    pub fn name(&self, k: u32) -> String {
        self.names
            .get(k as usize)
            .cloned()
            .unwrap_or_else(|| format!("(no {})", self.kind.map_or("key", |k| k.name())))
    }

    pub fn jobs(&self) -> usize {
        self.by_job.len()
    }
}

/// A job id as the trace reader reads it (`12`, or `12.0` from a spreadsheet).
fn job_id(text: &str) -> Option<u64> {
    let t = text.trim();
    t.parse::<u64>().ok().or_else(|| {
        t.parse::<f64>()
            .ok()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0)
            .map(|f| f as u64)
    })
}

/// One field's text as a key: trimmed, ids written by pandas as floats (`19811695.0`) made
/// whole, a job's `web_url` cut to its project's path. None when empty.
fn key_text(field: &str, text: &str) -> Option<String> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    if field == "web_url" {
        return project_of_url(t);
    }
    if field.ends_with("id")
        && let Some(whole) = t.strip_suffix(".0")
        && !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
    {
        return Some(whole.to_string());
    }
    Some(t.to_string())
}

/// `https://gitlab.example.com/group/sub/project/-/jobs/12` -> `group/sub/project`.
pub fn project_of_url(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.split_once('/')?.1;
    let project = match path.find("/-/") {
        Some(i) => &path[..i],
        None => path.trim_end_matches('/'),
    };
    (!project.is_empty()).then(|| project.to_string())
}

/// Read every job's `kind` key from a trace file (CSV, TSV, JSON, NDJSON, webhooks).
pub fn read_keys(path: &Path, kind: KeyKind) -> TraceResult<Keys> {
    match sniff(path)? {
        Format::Csv { delimiter } => read_csv(path, delimiter, kind),
        Format::Json => read_json(path, kind),
    }
}

fn missing(path: &Path, kind: KeyKind, place: &str, what: &str) -> TraceError {
    TraceError {
        file: path.display().to_string(),
        place: place.into(),
        message: format!(
            "the trace has no {kind} {what} (looked for {}): it cannot be broken down by {kind}",
            kind.fields().join(", ")
        ),
    }
}

fn read_csv(path: &Path, delimiter: u8, kind: KeyKind) -> TraceResult<Keys> {
    let file = path.display().to_string();
    let f = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(false)
        .from_reader(std::io::BufReader::with_capacity(1 << 16, f));
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| TraceError {
            file: file.clone(),
            place: "line 1".into(),
            message: format!("cannot read the header: {e}"),
        })?
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let col = |name: &str| header.iter().position(|h| h == name);
    let id_col = ID
        .iter()
        .find_map(|n| col(n))
        .ok_or_else(|| missing(path, KeyKind::Job, "line 1", "column"))?;
    // Every present column, in order of preference: a record empty in the first falls back
    // to the next.
    let key_cols: Vec<(&str, usize)> = kind
        .fields()
        .iter()
        .filter_map(|n| col(n).map(|c| (*n, c)))
        .collect();
    if key_cols.is_empty() {
        return Err(missing(path, kind, "line 1", "column"));
    }
    let mut keys = Keys::new(kind);
    let mut rec = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                return Err(TraceError {
                    file,
                    place: format!("line {}", e.position().map_or(0, |p| p.line())),
                    message: format!("malformed CSV: {e}"),
                });
            }
        }
        let Some(id) = rec.get(id_col).and_then(job_id) else {
            continue;
        };
        let name = key_cols
            .iter()
            .find_map(|(n, c)| rec.get(*c).and_then(|t| key_text(n, t)));
        keys.insert(id, name.as_deref());
    }
    Ok(keys)
}

/// A dotted path into an object (`pipeline.id`), or a top-level field of that very name.
fn lookup<'a>(obj: &'a serde_json::Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = obj.get(path) {
        return Some(v);
    }
    let (head, rest) = path.split_once('.')?;
    let mut v = obj.get(head)?;
    for part in rest.split('.') {
        v = v.get(part)?;
    }
    Some(v)
}

fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        // Tags: the set, in one order whatever the order they were listed in.
        Value::Array(items) => {
            let mut parts: Vec<String> = items.iter().filter_map(value_text).collect();
            parts.sort();
            parts.dedup();
            (!parts.is_empty()).then(|| parts.join(","))
        }
        _ => None,
    }
}

fn read_json(path: &Path, kind: KeyKind) -> TraceResult<Keys> {
    let file = path.display().to_string();
    let f = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
    let mut objects = JsonObjects::new(f);
    let mut keys = Keys::new(kind);
    let mut seen_field = false;
    loop {
        let (line, bytes) = match objects.next_object() {
            Ok(None) => break,
            Ok(Some(x)) => x,
            Err((line, message)) => {
                return Err(TraceError {
                    file,
                    place: format!("line {line}"),
                    message,
                });
            }
        };
        let obj: serde_json::Map<String, Value> =
            serde_json::from_slice(&bytes).map_err(|e| TraceError {
                file: file.clone(),
                place: format!("line {}", line + e.line() as u64 - 1),
                message: format!("malformed JSON: {e}"),
            })?;
        let Some(id) = ID
            .iter()
            .find_map(|n| obj.get(*n).and_then(value_text))
            .and_then(|t| job_id(&t))
        else {
            continue;
        };
        let mut name = None;
        for field in kind.fields() {
            if let Some(v) = lookup(&obj, field) {
                seen_field = true;
                if let Some(t) = value_text(v).and_then(|t| key_text(field, &t)) {
                    name = Some(t);
                    break;
                }
            }
        }
        keys.insert(id, name.as_deref());
    }
    if !seen_field && keys.jobs() > 0 {
        return Err(missing(path, kind, "", "field in any job"));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str, text: &str) -> std::path::PathBuf {
        let dir = crate::testing::tmp().join("keys");
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn project_paths_come_from_job_urls() {
        assert_eq!(
            project_of_url("https://gitlab.ddbuild.io/DataDog/datadog-agent/-/jobs/1345271596")
                .as_deref(),
            Some("DataDog/datadog-agent")
        );
        assert_eq!(
            project_of_url("https://gitlab.com/a/b/c/-/jobs/1").as_deref(),
            Some("a/b/c")
        );
        assert_eq!(project_of_url("https://gitlab.com/"), None);
    }

    #[test]
    fn csv_keys_with_fallback_columns_and_spreadsheet_ids() {
        let p = scratch(
            "k.csv",
            "job_id,pipeline_id,stage,runner_id,runner_description\n\
             1,90.0,build,19811695.0,\n2,91,,7,big\n3,91,test,,\n",
        );
        let k = read_keys(&p, KeyKind::Pipeline).unwrap();
        assert_eq!(k.name(k.of(1)), "90");
        assert_eq!(k.of(2), k.of(3));
        let k = read_keys(&p, KeyKind::Stage).unwrap();
        assert_eq!(k.name(k.of(2)), "(no stage)");
        assert_eq!(k.name(k.of(3)), "test");
        // The description is preferred, the id is the fallback.
        let k = read_keys(&p, KeyKind::Runner).unwrap();
        assert_eq!(k.name(k.of(1)), "19811695");
        assert_eq!(k.name(k.of(2)), "big");
        assert_eq!(k.name(k.of(3)), "(no runner)");
        let e = read_keys(&p, KeyKind::User).unwrap_err();
        assert_eq!(e.place, "line 1");
        assert!(e.message.contains("no user column"), "{}", e.message);
        assert!(e.message.contains("user.username"), "{}", e.message);
    }

    #[test]
    fn json_api_jobs_and_webhooks() {
        let p = scratch(
            "k.json",
            r#"[{"id": 5, "stage": "test", "name": "rspec", "ref": "main",
                 "pipeline": {"id": 40, "ref": "main"}, "user": {"username": "ada"},
                 "tag_list": ["linux", "docker", "linux"],
                 "web_url": "https://gitlab.com/g/p/-/jobs/5"},
                {"build_id": 6, "build_stage": "deploy", "build_name": "prod",
                 "pipeline_id": 41, "project_name": "g / p", "user": {"name": "Bob"}}]"#,
        );
        let get = |kind| {
            let k = read_keys(&p, kind).unwrap();
            (k.name(k.of(5)), k.name(k.of(6)))
        };
        assert_eq!(get(KeyKind::Stage), ("test".into(), "deploy".into()));
        assert_eq!(get(KeyKind::Name), ("rspec".into(), "prod".into()));
        assert_eq!(get(KeyKind::Pipeline), ("40".into(), "41".into()));
        assert_eq!(get(KeyKind::Project), ("g/p".into(), "g / p".into()));
        assert_eq!(get(KeyKind::User), ("ada".into(), "Bob".into()));
        assert_eq!(
            get(KeyKind::Tags),
            ("docker,linux".into(), "(no tags)".into())
        );
        assert_eq!(get(KeyKind::Job), ("5".into(), "6".into()));
        let e = read_keys(&p, KeyKind::Runner).unwrap_err();
        assert!(e.message.contains("no runner field"), "{}", e.message);
    }

    #[test]
    fn key_names_parse_and_unknown_ones_list_the_choices() {
        assert_eq!("Stage".parse::<KeyKind>(), Ok(KeyKind::Stage));
        let e = "team".parse::<KeyKind>().unwrap_err();
        assert!(e.contains("project, pipeline, ref"), "{e}");
    }
}
