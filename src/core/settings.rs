//! The settings the engines decide with, as GitLab Runner means them (spec section 1), and the
//! autoscaling periods: which entry is in force at an instant and when that next changes.

use crate::core::cron::{CronError, CronExpr};
use crate::core::time::Time;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// The four settings an autoscaling entry replaces at once.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct IdleSettings {
    #[serde(rename = "IdleCount")]
    pub idle_count: u32,
    #[serde(rename = "IdleCountMin")]
    pub idle_count_min: u32,
    #[serde(rename = "IdleScaleFactor")]
    pub idle_scale_factor: f64,
    /// Seconds.
    #[serde(rename = "IdleTime")]
    pub idle_time: u64,
}

impl IdleSettings {
    /// The idle target T for `in_use` machines in use (spec section 3): `IdleCount` without a
    /// scale factor, else `min(IdleCount, max(max(IdleCountMin, 1), trunc(InUse * factor)))`.
    pub fn target(&self, in_use: u32) -> u32 {
        if self.idle_scale_factor <= 0.0 || self.idle_scale_factor.is_nan() {
            return self.idle_count;
        }
        let floor = self.idle_count_min.max(1);
        let scaled = (in_use as f64 * self.idle_scale_factor).trunc();
        let scaled = if scaled >= u32::MAX as f64 {
            u32::MAX
        } else {
            scaled as u32
        };
        self.idle_count.min(floor.max(scaled))
    }

    /// IdleTime in milliseconds.
    pub fn idle_time_ms(&self) -> i64 {
        (self.idle_time.min(i64::MAX as u64 / 1000) as i64) * 1000
    }
}

/// One `[[runners.machine.autoscaling]]` entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "EntrySpec", into = "EntrySpec")]
pub struct AutoscalingEntry {
    pub periods: Vec<CronExpr>,
    pub timezone: Tz,
    pub idle: IdleSettings,
}

#[derive(Clone, Serialize, Deserialize)]
struct EntrySpec {
    #[serde(rename = "Periods")]
    periods: Vec<String>,
    #[serde(rename = "Timezone")]
    timezone: String,
    #[serde(flatten)]
    idle: IdleSettings,
}

impl TryFrom<EntrySpec> for AutoscalingEntry {
    type Error = String;
    fn try_from(s: EntrySpec) -> Result<Self, String> {
        let timezone: Tz = s
            .timezone
            .parse()
            .map_err(|_| format!("unknown time zone {:?}", s.timezone))?;
        let periods = s
            .periods
            .iter()
            .map(|p| CronExpr::parse(p))
            .collect::<Result<Vec<_>, CronError>>()
            .map_err(|e| e.to_string())?;
        Ok(AutoscalingEntry {
            periods,
            timezone,
            idle: s.idle,
        })
    }
}

impl From<AutoscalingEntry> for EntrySpec {
    fn from(e: AutoscalingEntry) -> Self {
        EntrySpec {
            periods: e.periods.iter().map(|p| p.source().to_string()).collect(),
            timezone: e.timezone.name().to_string(),
            idle: e.idle,
        }
    }
}

impl AutoscalingEntry {
    /// Active at `t` when any of its periods is (an entry with no Periods never is).
    pub fn active_at(&self, t: Time) -> bool {
        self.active_sec(t.floor_secs())
    }

    fn active_sec(&self, u: i64) -> bool {
        self.periods.iter().any(|p| p.active_sec(self.timezone, u))
    }
}

/// Everything the engines decide with. Built from a runner's config.toml by `config`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Max jobs in flight (top-level `concurrent`, default 1).
    pub concurrent: u32,
    /// Seconds between polls of the docker-machine engine (3 when the config says <= 0).
    pub check_interval: u32,
    /// Max jobs of this runner and max machines in every state; 0 = none.
    pub limit: u32,
    /// Retire a machine after this many jobs; 0 = none.
    pub max_builds: u32,
    /// Max machines in the Creating state at once; 0 = none.
    pub max_growth_rate: u32,
    /// The `[runners.machine]` idle settings, in force when no entry is active.
    pub idle: IdleSettings,
    pub autoscaling: Vec<AutoscalingEntry>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            concurrent: 1,
            check_interval: 3,
            limit: 0,
            max_builds: 0,
            max_growth_rate: 0,
            idle: IdleSettings::default(),
            autoscaling: Vec::new(),
        }
    }
}

/// The idle settings in force at an instant and where they come from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Effective {
    /// 0-based index of the active autoscaling entry, or None for `[runners.machine]`.
    pub entry: Option<usize>,
    pub idle: IdleSettings,
}

impl Settings {
    /// Jobs this runner may have in flight: `concurrent`, and `limit` when set.
    pub fn job_cap(&self) -> u32 {
        if self.limit > 0 {
            self.concurrent.min(self.limit)
        } else {
            self.concurrent
        }
    }

    fn active_entry_sec(&self, u: i64) -> Option<usize> {
        self.autoscaling.iter().rposition(|e| e.active_sec(u))
    }

    fn effective_of(&self, entry: Option<usize>) -> Effective {
        Effective {
            entry,
            idle: entry.map_or(self.idle, |i| self.autoscaling[i].idle),
        }
    }

    /// The last matching entry wins; none matching means the `[runners.machine]` values.
    pub fn effective_at(&self, t: Time) -> Effective {
        self.effective_of(self.active_entry_sec(t.floor_secs()))
    }

    /// The first instant after `t`, and no later than `until`, at which the active entry
    /// changes. Strides over the calendar with each expression's own next toggle, so a year of
    /// weekday periods costs a few hundred steps.
    pub fn next_change(&self, t: Time, until: Time) -> Option<Time> {
        if self.autoscaling.is_empty() {
            return None;
        }
        let horizon = until.floor_secs();
        let start = t.floor_secs();
        let current = self.active_entry_sec(start);
        let exprs: Vec<(&CronExpr, Tz)> = self
            .autoscaling
            .iter()
            .flat_map(|e| e.periods.iter().map(move |p| (p, e.timezone)))
            .collect();
        let mut next: Vec<Option<i64>> = exprs
            .iter()
            .map(|(p, tz)| p.next_toggle(*tz, start, horizon))
            .collect();
        loop {
            let c = next.iter().flatten().copied().min()?;
            if self.active_entry_sec(c) != current {
                return Some(Time::from_secs(c));
            }
            for (i, (p, tz)) in exprs.iter().enumerate() {
                if next[i] == Some(c) {
                    next[i] = p.next_toggle(*tz, c, horizon);
                }
            }
        }
    }

    /// Every change of the active entry in `(from, to]`, with the settings then in force.
    pub fn changes(&self, from: Time, to: Time) -> Vec<(Time, Effective)> {
        let mut out = Vec::new();
        let mut t = from;
        while let Some(c) = self.next_change(t, to) {
            out.push((c, self.effective_at(c)));
            t = c;
        }
        out
    }
}
