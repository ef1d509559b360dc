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
    for r in runners {
        check_runner(cfg, r, host_tz, &mut out);
    }
    out.sort_by_key(|f| f.line.unwrap_or(0));
    Ok(out)
}

fn check_runner(cfg: &ConfigFile, r: &Runner, host_tz: Tz, out: &mut Vec<Finding>) {
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
    shadow_warnings(&settings, &m.autoscaling, out);
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
                    "{what}: period {:?} has {} fields, so its seconds field is not `*`: it is active about one second a minute. Use 7 fields starting with `*`",
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
