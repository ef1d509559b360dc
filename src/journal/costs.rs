//! `scalecast journal costs`: what the live daemon charged each finished job (its
//! `job_charged` events), summed by project, pipeline, ref, stage, job name, user or job.

use crate::core::{Charge, JobId, Time};
use crate::journal::{Dropped, JournalResult, Reader};
use crate::sim::attribution::KeyCost;
use crate::stats::Quantiles;
use crate::trace::keys::KeyKind;
use serde::Serialize;
use std::collections::BTreeMap;

/// The costs of the jobs that ended in a window, by key.
#[derive(Clone, Debug, Serialize)]
pub struct Costs {
    pub by: String,
    /// Jobs that ended at or after this instant (all when None).
    pub since: Option<Time>,
    /// The first and last charge counted.
    pub first: Option<Time>,
    pub last: Option<Time>,
    pub jobs: u64,
    pub cost_usd: f64,
    pub busy_usd: f64,
    pub idle_usd: f64,
    pub wait_p95_s: f64,
    /// Costliest first, ties by key.
    pub keys: Vec<KeyCost>,
    #[serde(skip)]
    pub dropped: Option<Dropped>,
}

/// Whether the daemon records `kind` with each charge (from GitLab's variables).
pub fn recorded(kind: KeyKind) -> Result<(), String> {
    match kind {
        KeyKind::Tags | KeyKind::Runner => Err(format!(
            "the daemon does not record a job's {kind} (every job is this runner's): use project, pipeline, ref, stage, name, user or job"
        )),
        _ => Ok(()),
    }
}

fn key_of(kind: KeyKind, job: JobId, c: &Charge) -> Option<String> {
    let k = &c.keys;
    match kind {
        KeyKind::Project => k.project.clone(),
        KeyKind::Pipeline => k.pipeline.clone(),
        KeyKind::Ref => k.git_ref.clone(),
        KeyKind::Stage => k.stage.clone(),
        KeyKind::Name => k.name.clone(),
        KeyKind::User => k.user.clone(),
        KeyKind::Job => Some(job.to_string()),
        KeyKind::Tags | KeyKind::Runner => None,
    }
}

#[derive(Default)]
struct Acc {
    jobs: u64,
    usd: f64,
    busy: f64,
    idle: f64,
    waits: Quantiles,
}

/// Every charged job's `kind` key, for replaying a live journal with `simulate --by`: the
/// daemon recorded who each job was for with its charge. An error when no charge names one.
pub fn keys(dir: &std::path::Path, kind: KeyKind) -> Result<crate::trace::keys::Keys, String> {
    recorded(kind)?;
    let opened = crate::journal::remote::open(dir).map_err(|e| e.to_string())?;
    let r = &opened.reader;
    let mut keys = crate::trace::keys::Keys::new(kind);
    let mut named = false;
    r.events(|_, e| {
        if let crate::core::EventKind::JobCharged { job, charge } = &e.kind {
            let k = key_of(kind, *job, charge);
            named |= k.is_some();
            keys.insert(*job, k.as_deref());
        }
    })
    .map_err(|e| e.to_string())?;
    if !named {
        return Err(format!(
            "no job of the journal was charged with a {kind} (the daemon records it from GitLab's variables when a job ends)"
        ));
    }
    Ok(keys)
}

/// Sum the journal's charges since `since` by `kind` (a job GitLab gave no such key counts
/// under "(no KIND)").
pub fn costs(r: &Reader, kind: KeyKind, since: Option<Time>) -> JournalResult<Costs> {
    let mut by: BTreeMap<String, Acc> = BTreeMap::new();
    let mut all = Quantiles::new();
    let (mut first, mut last) = (None, None);
    let dropped = r.events(|_, e| {
        let crate::core::EventKind::JobCharged { job, charge } = &e.kind else {
            return;
        };
        if since.is_some_and(|s| e.at < s) {
            return;
        }
        first.get_or_insert(e.at);
        last = Some(e.at);
        let key = key_of(kind, *job, charge).unwrap_or_else(|| format!("(no {kind})"));
        let a = by.entry(key).or_insert_with(|| Acc {
            waits: Quantiles::coarse(),
            ..Default::default()
        });
        a.jobs += 1;
        a.usd += charge.usd;
        a.busy += charge.busy_usd;
        a.idle += charge.idle_usd;
        let wait_ms = (charge.wait_s * 1000.0).max(0.0).round() as u64;
        a.waits.add(wait_ms);
        all.add(wait_ms);
    })?;
    let mut keys: Vec<KeyCost> = by
        .into_iter()
        .map(|(key, mut a)| KeyCost {
            key,
            jobs: a.jobs,
            cost_usd: a.usd,
            busy_usd: a.busy,
            idle_usd: a.idle,
            wait_p95_s: a.waits.quantile(0.95) as f64 / 1000.0,
        })
        .collect();
    keys.sort_by(|a, b| {
        b.cost_usd
            .total_cmp(&a.cost_usd)
            .then_with(|| a.key.cmp(&b.key))
    });
    Ok(Costs {
        by: kind.name().to_string(),
        since,
        first,
        last,
        jobs: keys.iter().map(|k| k.jobs).sum(),
        cost_usd: keys.iter().map(|k| k.cost_usd).sum(),
        busy_usd: keys.iter().map(|k| k.busy_usd).sum(),
        idle_usd: keys.iter().map(|k| k.idle_usd).sum(),
        wait_p95_s: if all.count() > 0 {
            all.quantile(0.95) as f64 / 1000.0
        } else {
            0.0
        },
        keys,
        dropped,
    })
}
