//! `scalecast check`: what a careful reviewer would say about a config.toml. Errors stop the
//! config from loading; warnings point at settings that do not do what they seem to.

use crate::config::runner::{At, ConfigFile, EntryConfig, Runner};
use crate::config::toml_util::InputError;
use crate::core::settings::Settings;
use crate::core::time::Time;
use chrono_tz::Tz;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub code: &'static str,
    pub message: String,
    /// 1-based line, or null when it concerns the whole file.
    pub line: Option<usize>,
}

impl Finding {
    fn warn(code: &'static str, line: usize, message: String) -> Self {
        Finding {
            severity: Severity::Warning,
            code,
            message,
            line: (line > 0).then_some(line),
        }
    }
}

/// An error that stops the config from loading, as a finding.
pub fn error_finding(code: &'static str, e: &InputError) -> Finding {
    Finding {
        severity: Severity::Error,
        code,
        message: e.message.clone(),
        line: (e.line > 0).then_some(e.line),
    }
}

/// The code for a load error, from its message.
pub fn error_code(e: &InputError) -> &'static str {
    let m = &e.message;
    if m.starts_with("not valid TOML") {
        "toml"
    } else if m.starts_with("unknown time zone") {
        "unknown_timezone"
    } else if m.starts_with("bad period expression") {
        "bad_period"
    } else if m.starts_with("no runner") || m.starts_with("several runners") {
        "no_such_runner"
    } else if m.starts_with("cannot read") {
        "unreadable"
    } else {
        "bad_value"
    }
}

/// Warnings for the chosen runner (or every machine runner when `runner` is None).
pub fn check(
    cfg: &ConfigFile,
    runner: Option<&str>,
    host_tz: Tz,
) -> Result<Vec<Finding>, InputError> {
    let runners: Vec<&Runner> = match runner {
        Some(_) => vec![cfg.runner(runner)?],
        None => cfg.runners.iter().collect(),
    };
    let mut out = Vec::new();
    if cfg.runners.is_empty() {
        out.push(Finding {
            severity: Severity::Error,
            code: "no_runners",
            message: "no [[runners]] entry: there is nothing to check or forecast".into(),
            line: None,
        });
        return Ok(out);
    }
    let text = std::fs::read_to_string(&cfg.file).unwrap_or_default();
    unknown_keys(cfg, &runners, &text, &mut out);
    if cfg.concurrent == 0 {
        out.push(Finding::warn(
            "concurrent_zero",
            key_line(&text, "concurrent"),
            "concurrent = 0: no worker ever takes a job, so no job runs".into(),
        ));
    }
    for r in runners {
        check_runner(cfg, r, host_tz, &mut out);
    }
    out.sort_by_key(|f| f.line.unwrap_or(0));
    Ok(out)
}

fn check_runner(cfg: &ConfigFile, r: &Runner, host_tz: Tz, out: &mut Vec<Finding>) {
    // `custom` with a [runners.machine] section is a runner switched to scalecast's live mode
    // (its executor commands run the jobs; the machine section still drives the fleet).
    let scalecast_live = r.executor == "custom" && r.machine.is_some();
    if r.executor != "docker+machine" && !scalecast_live {
        out.push(Finding::warn(
            "executor_not_modelled",
            r.line,
            format!(
                "runner {:?} uses executor {:?}: scalecast forecasts docker+machine autoscaling; its figures for this runner assume docker+machine",
                r.name, r.executor
            ),
        ));
    }
    let Some(m) = &r.machine else {
        if r.executor.contains("machine") {
            out.push(Finding::warn(
                "no_machine_section",
                r.line,
                format!(
                    "runner {:?} uses executor {:?} but has no [runners.machine]: no machine will ever be kept idle",
                    r.name, r.executor
                ),
            ));
        }
        return;
    };
    for (key, line) in &m.off_peak {
        out.push(Finding::warn(
            "deprecated_offpeak",
            *line,
            format!(
                "{key} is deprecated and ignored since GitLab Runner 14.0; use [[runners.machine.autoscaling]] entries"
            ),
        ));
    }
    if m.idle_scale_factor_int {
        out.push(integer_factor("[runners.machine]", m.idle_scale_factor));
    }
    idle_warnings(
        "[runners.machine]",
        m.idle_count.value,
        m.idle_count.line,
        m.idle_count_min.value,
        m.idle_count_min.line,
        r,
        out,
    );
    let settings = cfg.settings(r, host_tz);
    for (i, e) in m.autoscaling.iter().enumerate() {
        entry_warnings(i, e, r, out);
    }
    // The busiest idle target any period asks for, against the caps on jobs and machines.
    let widest = m
        .autoscaling
        .iter()
        .map(|e| (e.idle_count.value, e.idle_count.line))
        .chain(std::iter::once((m.idle_count.value, m.idle_count.line)))
        .max_by_key(|x| x.0)
        .unwrap_or((0, 0));
    if cfg.concurrent > 0 && widest.0 > cfg.concurrent {
        out.push(Finding::warn(
            "idle_count_above_concurrent",
            widest.1,
            format!(
                "IdleCount = {} is above concurrent = {}: at most {} jobs run at once, so jobs can wait while machines stay idle; concurrent is the binding limit",
                widest.0, cfg.concurrent, cfg.concurrent
            ),
        ));
    }
    // An entry that is active one second a minute changes every few seconds: looking for
    // shadowed entries over a year would take millions of steps, and `seconds_field` already
    // says what is wrong with it.
    let second_grained = m
        .autoscaling
        .iter()
        .any(|e| e.periods.iter().any(|p| p.expr.seconds_restricted()));
    if !second_grained {
        shadow_warnings(&settings, &m.autoscaling, out);
    }
}

const TOP_KEYS: &[&str] = &[
    "concurrent",
    "check_interval",
    "log_level",
    "log_format",
    "listen_address",
    "shutdown_timeout",
    "sentry_dsn",
    "connection_max_age",
    "session_server",
    "runners",
];
const RUNNER_KEYS: &[&str] = &[
    "name",
    "url",
    "id",
    "token",
    "token_obtained_at",
    "token_expires_at",
    "tls-ca-file",
    "tls-cert-file",
    "tls-key-file",
    "limit",
    "executor",
    "shell",
    "builds_dir",
    "cache_dir",
    "clone_url",
    "environment",
    "pre_get_sources_script",
    "post_get_sources_script",
    "pre_clone_script",
    "post_clone_script",
    "pre_build_script",
    "post_build_script",
    "output_limit",
    "request_concurrency",
    "unhealthy_requests_limit",
    "unhealthy_interval",
    "debug_trace_disabled",
    "referees",
    "custom_build_dir",
    "feature_flags",
    "job_status_final_update_retry_limit",
    "docker",
    "cache",
    "machine",
    "custom",
    "ssh",
    "parallels",
    "virtualbox",
    "kubernetes",
    "autoscaler",
    "instance",
];
const MACHINE_KEYS: &[&str] = &[
    "IdleCount",
    "IdleCountMin",
    "IdleScaleFactor",
    "IdleTime",
    "MaxGrowthRate",
    "MaxBuilds",
    "MachineDriver",
    "MachineName",
    "MachineOptions",
    "OffPeakPeriods",
    "OffPeakTimezone",
    "OffPeakIdleCount",
    "OffPeakIdleTime",
    "autoscaling",
];
const ENTRY_KEYS: &[&str] = &[
    "Periods",
    "Timezone",
    "IdleCount",
    "IdleCountMin",
    "IdleScaleFactor",
    "IdleTime",
];

/// Keys GitLab Runner does not know in a section, each with the nearest known key.
fn unknown_keys(cfg: &ConfigFile, runners: &[&Runner], text: &str, out: &mut Vec<Finding>) {
    let mut judge = |section: &str, other: &[(String, String)], known: &[&str]| {
        for (key, _) in other {
            if known.iter().any(|k| k.eq_ignore_ascii_case(key)) {
                continue;
            }
            let near = known
                .iter()
                .map(|k| {
                    (
                        edit_distance(&k.to_ascii_lowercase(), &key.to_ascii_lowercase()),
                        k,
                    )
                })
                .filter(|(d, _)| *d <= 2.max(key.len() / 4))
                .min();
            let hint = near.map_or(String::new(), |(_, k)| format!("; did you mean {k}?"));
            out.push(Finding::warn(
                "unknown_key",
                key_line(text, key),
                format!("{key} is not a GitLab Runner setting of {section}{hint} It is ignored"),
            ));
        }
    };
    judge("the top level", &cfg.other, TOP_KEYS);
    for r in runners {
        judge("[[runners]]", &r.other, RUNNER_KEYS);
        if let Some(m) = &r.machine {
            judge("[runners.machine]", &m.other, MACHINE_KEYS);
            for e in &m.autoscaling {
                judge("[[runners.machine.autoscaling]]", &e.other, ENTRY_KEYS);
            }
        }
    }
}

/// The first line that sets `key` (`key = ...`), 0 when not found.
fn key_line(text: &str, key: &str) -> usize {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            l.strip_prefix(key)
                .or_else(|| l.strip_prefix(&format!("\"{key}\"")))
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map_or(0, |i| i + 1)
}

/// Levenshtein distance, for did-you-mean.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn integer_factor(what: &str, f: At<f64>) -> Finding {
    Finding::warn(
        "integer_idle_scale_factor",
        f.line,
        format!(
            "{what} IdleScaleFactor = {} is an integer; GitLab Runner rejects it, write {:.1}",
            f.value, f.value
        ),
    )
}

fn idle_warnings(
    what: &str,
    idle_count: u32,
    idle_count_line: usize,
    idle_count_min: u32,
    min_line: usize,
    r: &Runner,
    out: &mut Vec<Finding>,
) {
    if idle_count_min > idle_count {
        out.push(Finding::warn(
            "idle_count_min_above_idle_count",
            min_line,
            format!(
                "{what} IdleCountMin = {idle_count_min} is above IdleCount = {idle_count}: the idle target is capped at IdleCount"
            ),
        ));
    }
    if r.limit > 0 && idle_count > r.limit {
        out.push(Finding::warn(
            "idle_count_above_limit",
            idle_count_line,
            format!(
                "{what} IdleCount = {idle_count} is above limit = {}: at most {} machines can exist",
                r.limit, r.limit
            ),
        ));
    }
}

fn entry_warnings(i: usize, e: &EntryConfig, r: &Runner, out: &mut Vec<Finding>) {
    let what = format!("autoscaling entry {i}");
    if e.periods.is_empty() {
        out.push(Finding::warn(
            "entry_without_periods",
            e.line,
            format!("{what} has no Periods: it is never active"),
        ));
    }
    for p in &e.periods {
        if p.expr.is_never() {
            let why = if p.expr.reversed_ranges().is_empty() {
                "no instant can match it".to_string()
            } else {
                format!(
                    "{} is a reversed range, which cronexpr reads as empty (write it as a list, e.g. sat,sun)",
                    p.expr
                        .reversed_ranges()
                        .iter()
                        .map(|s| format!("{s:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            out.push(Finding::warn(
                "never_active",
                p.line,
                format!("{what}: period {:?} is never active: {why}", p.text),
            ));
        } else if p.expr.seconds_restricted() {
            out.push(Finding::warn(
                "seconds_field",
                p.line,
                format!(
                    "{what}: period {:?} has {} fields and its seconds field is not `*`: it is active only in the seconds that field lists (a 5- or 6-field period: one second a minute). Use 7 fields starting with `*`",
                    p.text,
                    p.expr.field_count()
                ),
            ));
        }
    }
    if e.idle_scale_factor_int {
        out.push(integer_factor(&what, e.idle_scale_factor));
    }
    idle_warnings(
        &what,
        e.idle_count.value,
        e.idle_count.line,
        e.idle_count_min.value,
        e.idle_count_min.line,
        r,
        out,
    );
}

/// An entry that is active at some time of a (leap) year, yet at every such time a later entry
/// is active too, can never be in force.
fn shadow_warnings(settings: &Settings, entries: &[EntryConfig], out: &mut Vec<Finding>) {
    let from = Time::parse_rfc3339("2028-01-01T00:00:00Z").expect("fixed date");
    let to = Time::parse_rfc3339("2029-01-01T00:00:00Z").expect("fixed date");
    for (i, e) in entries.iter().enumerate() {
        let own = &settings.autoscaling[i];
        if own.periods.is_empty() || own.periods.iter().all(|p| p.is_never()) {
            continue;
        }
        let alone = Settings {
            autoscaling: vec![own.clone()],
            ..settings.clone()
        };
        if !ever_in_force(&alone, 0, from, to) {
            continue;
        }
        let tail = Settings {
            autoscaling: settings.autoscaling[i..].to_vec(),
            ..settings.clone()
        };
        if !ever_in_force(&tail, 0, from, to) {
            // Name the later entries that shadow it on their own, if any do.
            let alone_shadows: Vec<String> = (i + 1..entries.len())
                .filter(|&j| {
                    let pair = Settings {
                        autoscaling: vec![own.clone(), settings.autoscaling[j].clone()],
                        ..settings.clone()
                    };
                    !ever_in_force(&pair, 0, from, to)
                })
                .map(|j| j.to_string())
                .collect();
            let by = if alone_shadows.is_empty() {
                "the later entries together".to_string()
            } else {
                format!("entry {}", alone_shadows.join(", "))
            };
            out.push(Finding::warn(
                "shadowed_entry",
                e.line,
                format!(
                    "autoscaling entry {i} is never in force: whenever it is active, {by} is active too, and the last match wins"
                ),
            ));
        }
    }
}

fn ever_in_force(s: &Settings, entry: usize, from: Time, to: Time) -> bool {
    s.effective_at(from).entry == Some(entry)
        || s.changes(from, to)
            .iter()
            .any(|(_, e)| e.entry == Some(entry))
}
