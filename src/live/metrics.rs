//! What the daemon counts, and its Prometheus text (`--metrics ADDR`, `GET /metrics`).

use crate::core::fleet::Counts;
use crate::core::{Action, ActionKind};
use crate::live::cloud::CloudError;
use crate::live::protocol::Status;
use std::collections::BTreeMap;
use std::fmt::Write;

#[derive(Clone, Debug, Default)]
pub struct Counters {
    /// Actions by kind and reason.
    pub actions: BTreeMap<(&'static str, String), u64>,
    /// Events fed, by kind.
    pub events: BTreeMap<&'static str, u64>,
    /// Cloud calls by call.
    pub calls: BTreeMap<&'static str, u64>,
    /// Failed cloud calls by call and class (throttled, capacity, refused, unreachable).
    pub errors: BTreeMap<(&'static str, &'static str), u64>,
    /// Create attempts that fell back to another type or to on-demand.
    pub fallbacks: u64,
    /// Estimated cost of the machines gone so far, $.
    pub cost_usd: f64,
    /// The last event shipped to S3 (with `--ship`).
    pub shipped: Option<u64>,
    pub ship_errors: u64,
    /// Jobs charged and their estimated dollars, by project.
    pub charged: BTreeMap<String, (u64, f64)>,
}

/// An action's kind and reason, as labels.
pub fn labels(a: &Action) -> (&'static str, String) {
    let why = |v: serde_json::Value| v["why"].as_str().unwrap_or("").to_string();
    match &a.kind {
        ActionKind::CreateMachine { reason, .. } => (
            "create_machine",
            why(serde_json::to_value(reason).unwrap_or_default()),
        ),
        ActionKind::RemoveMachine { reason, .. } => (
            "remove_machine",
            why(serde_json::to_value(reason).unwrap_or_default()),
        ),
        ActionKind::StartJob { .. } => ("start_job", String::new()),
        ActionKind::RequeueJob { .. } => ("requeue_job", String::new()),
    }
}

fn class(e: &CloudError) -> &'static str {
    match e {
        CloudError::Throttled { .. } => "throttled",
        CloudError::Capacity { .. } => "capacity",
        CloudError::Refused { .. } => "refused",
        CloudError::Unreachable(_) => "unreachable",
    }
}

impl Counters {
    /// Count an action; its labels back.
    pub fn action(&mut self, a: &Action) -> (&'static str, String) {
        let l = labels(a);
        *self.actions.entry(l.clone()).or_default() += 1;
        l
    }
    pub fn event(&mut self, kind: &'static str) {
        *self.events.entry(kind).or_default() += 1;
    }
    /// A finished job's estimated cost, counted under its project.
    pub fn charged(&mut self, project: Option<&str>, usd: f64) {
        let e = self
            .charged
            .entry(project.unwrap_or("(no project)").to_string())
            .or_default();
        e.0 += 1;
        e.1 += usd;
    }
    pub fn call(&mut self, call: &'static str) {
        *self.calls.entry(call).or_default() += 1;
    }
    pub fn error(&mut self, call: &'static str, e: &CloudError) {
        *self.errors.entry((call, class(e))).or_default() += 1;
    }

    /// Prometheus text exposition format 0.0.4. `alive_usd` ([`alive_usd`]: what the machines
    /// alive now have cost so far) adds to the estimated cost; None (no type is known to the
    /// price table) gives no estimate.
    pub fn render(&self, counts: &Counts, s: &Status, alive_usd: Option<f64>) -> String {
        let mut o = String::new();
        let one = |v: String| vec![(String::new(), v)];
        family(
            &mut o,
            ("scalecast_machines", "gauge", "Machines by state."),
            [
                ("creating", counts.creating),
                ("idle", counts.idle),
                ("used", counts.used),
                ("removing", counts.removing),
            ]
            .map(|(state, n)| (format!("state=\"{state}\""), n.to_string())),
        );
        family(
            &mut o,
            (
                "scalecast_jobs",
                "gauge",
                "Jobs waiting for a machine, and running.",
            ),
            [
                ("state=\"waiting\"".to_string(), s.waiting.len().to_string()),
                ("state=\"running\"".to_string(), s.running.to_string()),
            ],
        );
        family(
            &mut o,
            (
                "scalecast_idle_target",
                "gauge",
                "Idle machines the active period asks for.",
            ),
            one(s.idle_target.to_string()),
        );
        family(
            &mut o,
            (
                "scalecast_actions_total",
                "counter",
                "Actions decided, by kind and reason.",
            ),
            self.actions.iter().map(|((kind, reason), n)| {
                (
                    format!("kind=\"{kind}\",reason=\"{reason}\""),
                    n.to_string(),
                )
            }),
        );
        family(
            &mut o,
            (
                "scalecast_events_total",
                "counter",
                "Events journaled and fed to the engine, by kind.",
            ),
            self.events
                .iter()
                .map(|(kind, n)| (format!("kind=\"{kind}\""), n.to_string())),
        );
        family(
            &mut o,
            (
                "scalecast_cloud_calls_total",
                "counter",
                "Calls to the cloud, by call.",
            ),
            self.calls
                .iter()
                .map(|(call, n)| (format!("call=\"{call}\""), n.to_string())),
        );
        family(
            &mut o,
            (
                "scalecast_cloud_errors_total",
                "counter",
                "Failed calls to the cloud, by call and error.",
            ),
            self.errors.iter().map(|((call, error), n)| {
                (format!("call=\"{call}\",error=\"{error}\""), n.to_string())
            }),
        );
        family(
            &mut o,
            (
                "scalecast_capacity_fallbacks_total",
                "counter",
                "Create attempts that fell back to another instance type or to on-demand.",
            ),
            one(self.fallbacks.to_string()),
        );
        if let Some(seq) = self.shipped {
            family(
                &mut o,
                (
                    "scalecast_shipped_event",
                    "gauge",
                    "The last journal event shipped to S3.",
                ),
                one(seq.to_string()),
            );
            family(
                &mut o,
                (
                    "scalecast_ship_errors_total",
                    "counter",
                    "Failed attempts to ship the journal.",
                ),
                one(self.ship_errors.to_string()),
            );
        }
        if !self.charged.is_empty() {
            family(
                &mut o,
                (
                    "scalecast_job_cost_usd_total",
                    "counter",
                    "Estimated cost of the finished jobs (their run and the machine time before it), by project.",
                ),
                self.charged.iter().map(|(p, (_, usd))| {
                    (format!("project=\"{}\"", label(p)), format!("{usd:.6}"))
                }),
            );
            family(
                &mut o,
                (
                    "scalecast_jobs_charged_total",
                    "counter",
                    "Finished jobs whose cost was estimated, by project.",
                ),
                self.charged
                    .iter()
                    .map(|(p, (n, _))| (format!("project=\"{}\"", label(p)), n.to_string())),
            );
        }
        if let Some(alive) = alive_usd {
            family(
                &mut o,
                (
                    "scalecast_estimated_cost_usd",
                    "counter",
                    "Estimated cost of the machines since this daemon started, from the price table.",
                ),
                one(format!("{:.4}", self.cost_usd + alive)),
            );
        }
        o
    }
}

/// A label value in the exposition format: backslash, quote and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// One metric family: its HELP and TYPE lines, then a sample per (labels, value); labels are
/// `k="v",...` or empty.
fn family(
    o: &mut String,
    (name, kind, help): (&str, &str, &str),
    samples: impl IntoIterator<Item = (String, String)>,
) {
    let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(o, "{name} {value}");
        } else {
            let _ = writeln!(o, "{name}{{{labels}}} {value}");
        }
    }
}

/// What machines alive at `now` have cost so far: each `(machine, created at)` at its
/// estimated $/h (`price_per_hour`; one the price table cannot price counts nothing).
pub fn alive_usd(
    now: crate::core::Time,
    machines: impl Iterator<Item = (crate::core::MachineId, crate::core::Time)>,
    price_per_hour: impl Fn(crate::core::MachineId) -> Option<f64>,
) -> f64 {
    machines
        .filter_map(|(m, created)| {
            Some(price_per_hour(m)? * now.since(created).max(0) as f64 / 3_600_000.0)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{CreateReason, Time};

    #[test]
    fn actions_are_counted_by_kind_and_reason_and_rendered() {
        let mut c = Counters::default();
        let a = Action {
            at: Time(0),
            kind: ActionKind::CreateMachine {
                machine: 1,
                reason: CreateReason::OnDemand {
                    waiting: 1,
                    creating: 0,
                },
            },
        };
        assert_eq!(c.action(&a), ("create_machine", "on_demand".to_string()));
        c.action(&a);
        c.error(
            "create",
            &CloudError::from_code("RequestLimitExceeded", "slow"),
        );
        let counts = Counts {
            idle: 2,
            ..Counts::default()
        };
        let text = c.render(&counts, &Status::default(), None);
        assert!(
            text.contains(
                "scalecast_actions_total{kind=\"create_machine\",reason=\"on_demand\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains("scalecast_machines{state=\"idle\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("scalecast_cloud_errors_total{call=\"create\",error=\"throttled\"} 1"),
            "{text}"
        );
        assert!(!text.contains("estimated_cost"), "no price, no cost line");
        assert!(
            !text.contains("job_cost"),
            "no job charged, no job cost line"
        );
        c.charged(Some("group/app"), 0.25);
        c.charged(Some("group/app"), 0.5);
        c.charged(Some("we \"quote\""), 0.125);
        c.charged(None, 1.0);
        let text = c.render(&counts, &Status::default(), None);
        for line in [
            "scalecast_job_cost_usd_total{project=\"group/app\"} 0.750000",
            "scalecast_jobs_charged_total{project=\"group/app\"} 2",
            "scalecast_job_cost_usd_total{project=\"we \\\"quote\\\"\"} 0.125000",
            "scalecast_jobs_charged_total{project=\"(no project)\"} 1",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }

    /// The fleet's estimated cost adds each machine alive at its own price: two hours of a
    /// $1/h machine and one of a $0.25/h one, a third the table cannot price counts nothing.
    #[test]
    fn the_estimated_cost_prices_each_machine_on_its_own() {
        use crate::core::Time;
        let h = |n: i64| Time(n * 3_600_000);
        let price = |m: u64| match m {
            1 => Some(1.0),
            2 => Some(0.25),
            _ => None,
        };
        let alive = alive_usd(
            h(12),
            [(1, h(10)), (2, h(11)), (3, h(9))].into_iter(),
            price,
        );
        assert_eq!(alive, 2.25);
        let c = Counters {
            cost_usd: 1.0,
            ..Counters::default()
        };
        let text = c.render(&Counts::default(), &Status::default(), Some(alive));
        assert!(
            text.contains("scalecast_estimated_cost_usd 3.2500"),
            "{text}"
        );
    }
}
