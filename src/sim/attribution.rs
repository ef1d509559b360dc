//! Who the money was spent for: every dollar a simulated run bills, split over the jobs that
//! the fleet served and summed by a key of the trace (project, pipeline, stage, ...).
//!
//! The rule (docs/attribution.md has a worked example):
//! - **busy** time (compute and root-volume storage while a job runs) is charged to that job;
//! - **booting and idle** time before a job is charged to the job that next takes the machine
//!   (`next-job`, the default): the pool kept it warm for that job;
//! - what no job took up (idle time after a machine's last job, removal, EC2's 60 s minimum,
//!   machines that never ran a job) is charged to the jobs that ran on that local day, in
//!   proportion to their busy cost; a day without busy time spreads it over the whole run's
//!   jobs by their busy cost (and a run whose jobs all took no time, over its jobs equally).
//!   With `spread`, every idle and booting dollar takes that path.
//!
//! So the per-job costs add up to the variant's cost (up to float rounding), and a job that
//! ran alone on a fresh machine carries that machine's whole cost.

use crate::core::MachineId;
use crate::core::fxmap::FastMap;
use crate::stats::Quantiles;
use crate::trace::keys::Keys;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Where idle and booting dollars go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Rule {
    /// To the job that next takes the machine; the rest spread by busy cost.
    #[default]
    NextJob,
    /// All spread over the day's jobs by busy cost.
    Spread,
}

impl Rule {
    pub fn name(self) -> &'static str {
        match self {
            Rule::NextJob => "next-job",
            Rule::Spread => "spread",
        }
    }
}

impl std::str::FromStr for Rule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "next-job" => Ok(Rule::NextJob),
            "spread" => Ok(Rule::Spread),
            other => Err(format!(
                "unknown attribution rule {other:?}: use next-job or spread"
            )),
        }
    }
}

/// What a run attributes by: the trace's keys and the rule.
#[derive(Clone, Debug)]
pub struct AttributionSpec {
    pub keys: Arc<Keys>,
    pub rule: Rule,
}

/// One key's share of a variant.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct KeyCost {
    pub key: String,
    /// Jobs of this key that arrived in the window.
    pub jobs: u64,
    pub cost_usd: f64,
    /// Spent while its jobs ran.
    pub busy_usd: f64,
    /// Booting, idle and removal time (and EC2's minimum) charged to it.
    pub idle_usd: f64,
    /// p95 of its jobs' waits (exact up to 64 jobs, else within 1/16).
    pub wait_p95_s: f64,
}

/// A variant's cost split by key, the costliest first (ties by key).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Breakdown {
    pub by: String,
    pub rule: String,
    pub keys: Vec<KeyCost>,
    /// Dollars no job could carry (a run in which no job ran at all).
    pub unattributed_usd: f64,
    /// Cost per local day and key (indexes into `keys`), for the report's plot.
    #[serde(skip)]
    pub per_day: Vec<(String, Vec<(usize, f64)>)>,
}

impl Breakdown {
    pub fn total(&self) -> f64 {
        self.keys.iter().map(|k| k.cost_usd).sum::<f64>() + self.unattributed_usd
    }
}

#[derive(Default)]
struct MachineAcct {
    /// The key of the job running on it.
    job: Option<u32>,
    /// Booting and idle dollars not yet charged, by day.
    pending: Vec<(NaiveDate, f64)>,
}

#[derive(Default)]
struct KeyAcc {
    jobs: u64,
    busy: f64,
    idle: f64,
    waits: Option<Quantiles>,
}

/// The running account of one simulated variant.
pub struct Attributor {
    spec: AttributionSpec,
    machines: FastMap<MachineId, MachineAcct>,
    keys: FastMap<u32, KeyAcc>,
    /// Dollars charged to a key on a day.
    charged: FastMap<(NaiveDate, u32), f64>,
    /// Busy dollars of a key on a day (the weights the pools are spread by).
    busy: FastMap<(NaiveDate, u32), f64>,
    /// Dollars no job took up, by day.
    pool: FastMap<NaiveDate, f64>,
}

fn add<K: std::hash::Hash + Eq>(m: &mut FastMap<K, f64>, k: K, v: f64) {
    *m.entry(k).or_insert(0.0) += v;
}

impl Attributor {
    pub fn new(spec: AttributionSpec) -> Self {
        Attributor {
            spec,
            machines: FastMap::default(),
            keys: FastMap::default(),
            charged: FastMap::default(),
            busy: FastMap::default(),
            pool: FastMap::default(),
        }
    }

    /// The key of trace job `id`.
    pub fn key_of(&self, id: u64) -> u32 {
        self.spec.keys.of(id)
    }

    pub fn arrived(&mut self, key: u32) {
        self.keys.entry(key).or_default().jobs += 1;
    }

    pub fn waited(&mut self, key: u32, wait_ms: u64) {
        self.keys
            .entry(key)
            .or_default()
            .waits
            .get_or_insert_with(Quantiles::coarse)
            .add(wait_ms);
    }

    pub fn created(&mut self, m: MachineId) {
        self.machines.insert(m, MachineAcct::default());
    }

    /// Machine `m` spent `usd` on day `d`, busy or not.
    pub fn spent(&mut self, m: MachineId, busy: bool, d: NaiveDate, usd: f64) {
        let Some(acct) = self.machines.get_mut(&m) else {
            add(&mut self.pool, d, usd);
            return;
        };
        match (busy, acct.job) {
            (true, Some(k)) => {
                add(&mut self.charged, (d, k), usd);
                add(&mut self.busy, (d, k), usd);
                self.keys.entry(k).or_default().busy += usd;
            }
            _ if self.spec.rule == Rule::Spread => add(&mut self.pool, d, usd),
            _ => match acct.pending.last_mut() {
                Some((last, v)) if *last == d => *v += usd,
                _ => acct.pending.push((d, usd)),
            },
        }
    }

    /// A job of key `key` starts on `m`: the machine's waiting time is its.
    pub fn started(&mut self, m: MachineId, key: u32) {
        let Some(acct) = self.machines.get_mut(&m) else {
            return;
        };
        acct.job = Some(key);
        let mut idle = 0.0;
        for (d, usd) in acct.pending.drain(..) {
            add(&mut self.charged, (d, key), usd);
            idle += usd;
        }
        self.keys.entry(key).or_default().idle += idle;
    }

    /// The job on `m` ended (finished, or its machine went).
    pub fn stopped(&mut self, m: MachineId) {
        if let Some(acct) = self.machines.get_mut(&m) {
            acct.job = None;
        }
    }

    /// `m` is gone: what no job took up goes to its days' pools.
    pub fn ended(&mut self, m: MachineId) {
        if let Some(acct) = self.machines.remove(&m) {
            for (d, usd) in acct.pending {
                add(&mut self.pool, d, usd);
            }
        }
    }

    /// Spread the pools and sum by key.
    pub fn finish(mut self) -> Breakdown {
        let mut alive: Vec<MachineId> = self.machines.keys().copied().collect();
        alive.sort_unstable();
        for m in alive {
            self.ended(m);
        }
        // Sorted, so every sum is taken in one order.
        let mut busy: Vec<((NaiveDate, u32), f64)> = self.busy.into_iter().collect();
        busy.sort_unstable_by_key(|(k, _)| *k);
        let mut pools: Vec<(NaiveDate, f64)> = self.pool.into_iter().collect();
        pools.sort_unstable_by_key(|(d, _)| *d);
        let mut by_key_busy: Vec<(u32, f64)> = Vec::new();
        {
            let mut m: std::collections::BTreeMap<u32, f64> = Default::default();
            for ((_, k), v) in &busy {
                *m.entry(*k).or_insert(0.0) += v;
            }
            by_key_busy.extend(m);
        }
        let run_busy: f64 = by_key_busy.iter().map(|(_, v)| v).sum();
        // No busy time at all (every job took no time): by jobs.
        let mut by_jobs: Vec<(u32, f64)> = self
            .keys
            .iter()
            .filter(|(_, a)| a.jobs > 0)
            .map(|(k, a)| (*k, a.jobs as f64))
            .collect();
        by_jobs.sort_unstable_by_key(|(k, _)| *k);
        let run_jobs: f64 = by_jobs.iter().map(|(_, v)| v).sum();
        let mut unattributed = 0.0;
        for (d, usd) in pools {
            let lo = busy.partition_point(|((bd, _), _)| *bd < d);
            let hi = busy.partition_point(|((bd, _), _)| *bd <= d);
            let day: Vec<(u32, f64)> = busy[lo..hi]
                .iter()
                .filter(|(_, v)| *v > 0.0)
                .map(|((_, k), v)| (*k, *v))
                .collect();
            let day_busy: f64 = day.iter().map(|(_, v)| v).sum();
            let (weights, total) = if day_busy > 0.0 {
                (&day, day_busy)
            } else if run_busy > 0.0 {
                (&by_key_busy, run_busy)
            } else if run_jobs > 0.0 {
                (&by_jobs, run_jobs)
            } else {
                unattributed += usd;
                continue;
            };
            for (k, w) in weights {
                let share = usd * w / total;
                add(&mut self.charged, (d, *k), share);
                self.keys.entry(*k).or_default().idle += share;
            }
        }
        // Sum by key, in (day, key) order.
        let mut charged: Vec<((NaiveDate, u32), f64)> = self.charged.into_iter().collect();
        charged.sort_unstable_by_key(|(k, _)| *k);
        let mut cost: FastMap<u32, f64> = FastMap::default();
        for ((_, k), v) in &charged {
            add(&mut cost, *k, *v);
        }
        let mut ids: Vec<u32> = self.keys.keys().chain(cost.keys()).copied().collect();
        ids.sort_unstable();
        ids.dedup();
        let keys = &self.spec.keys;
        let mut rows: Vec<(u32, KeyCost)> = ids
            .into_iter()
            .map(|k| {
                let mut acc = self.keys.remove(&k).unwrap_or_default();
                let p95 = acc
                    .waits
                    .as_mut()
                    .map_or(0.0, |q| q.quantile(0.95) as f64 / 1000.0);
                (
                    k,
                    KeyCost {
                        key: keys.name(k),
                        jobs: acc.jobs,
                        cost_usd: cost.get(&k).copied().unwrap_or(0.0),
                        busy_usd: acc.busy,
                        idle_usd: acc.idle,
                        wait_p95_s: p95,
                    },
                )
            })
            .collect();
        rows.sort_by(|a, b| {
            b.1.cost_usd
                .total_cmp(&a.1.cost_usd)
                .then_with(|| a.1.key.cmp(&b.1.key))
        });
        let mut place: FastMap<u32, usize> = FastMap::default();
        for (i, (k, _)) in rows.iter().enumerate() {
            place.insert(*k, i);
        }
        let mut per_day: Vec<(String, Vec<(usize, f64)>)> = Vec::new();
        for ((d, k), v) in charged {
            let date = d.to_string();
            if per_day.last().is_none_or(|(last, _)| *last != date) {
                per_day.push((date, Vec::new()));
            }
            if let Some(last) = per_day.last_mut() {
                last.1.push((place[&k], v));
            }
        }
        Breakdown {
            by: keys.kind.map_or("key", |k| k.name()).to_string(),
            rule: self.spec.rule.name().to_string(),
            keys: rows.into_iter().map(|(_, r)| r).collect(),
            unattributed_usd: unattributed,
            per_day,
        }
    }
}
