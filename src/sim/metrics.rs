//! What a simulated run measures: dollars (split by day in the scenario's time zone), queue
//! waits, machine-hours by state, interruptions and retries. Memory stays flat in the trace
//! length (quantiles are bounded, days are few).

use crate::core::Time;
use crate::sim::world::{MIN_BILLED_MS, WorldModel};
use crate::stats::{Quantiles, Summary};
use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct VariantResult {
    pub name: String,
    pub engine: String,
    /// The settings this variant changed, `KEY=VALUE`, as written.
    pub changes: Vec<String>,
    pub start: Time,
    pub end: Time,
    /// Length of the window, in days.
    pub days: f64,
    /// Jobs that arrived in the window.
    pub jobs: u64,
    /// Jobs still waiting or running at the end.
    pub jobs_unfinished: u64,
    /// Jobs still waiting at the end whose wait so far is counted in `wait_s` (a lower bound).
    pub waits_censored: u64,
    pub jobs_waiting_at_end: u64,
    pub jobs_running_at_end: u64,
    pub cost_usd: f64,
    pub cost: CostBreakdown,
    pub wait_s: Summary,
    /// Job-seconds spent waiting, by what held the queue back.
    pub wait_causes_s: WaitCauses,
    pub machines_created: u64,
    pub machine_hours: MachineHours,
    pub interruptions: u64,
    pub jobs_retried: u64,
    pub per_day: Vec<DayResult>,
    /// How the trace sits in the simulated window.
    pub window: Window,
    pub notes: Vec<String>,
    /// The waits the trace recorded for the window's jobs (the same for every variant).
    #[serde(skip)]
    pub observed: Option<crate::sim::calibration::Observed>,
    /// The simulated waits' quantiles (`calibration::POINTS` levels), seconds.
    #[serde(skip)]
    pub wait_quantiles: Vec<f64>,
    /// The cost split by a key of the trace (`simulate --by`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<crate::sim::attribution::Breakdown>,
}

impl VariantResult {
    /// The share of the compute spend that paid for idle machines.
    pub fn idle_share(&self) -> f64 {
        let idle: f64 = self.per_day.iter().map(|d| d.idle_usd).sum();
        if self.cost.compute_usd > 0.0 {
            idle / self.cost.compute_usd
        } else {
            0.0
        }
    }
}

/// The trace's jobs inside and outside the simulated window, and its longest quiet stretch.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Window {
    pub trace_jobs_inside: u64,
    pub trace_jobs_before: u64,
    pub trace_jobs_after: u64,
    pub longest_gap: Option<Gap>,
}

/// The longest time between two arrivals of the window.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Gap {
    pub from: String,
    pub to: String,
    pub days: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct CostBreakdown {
    pub compute_usd: f64,
    pub storage_usd: f64,
    pub spot_usd: f64,
    pub on_demand_usd: f64,
}

/// Job-seconds of queue wait, by what held the jobs back while they waited.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct WaitCauses {
    /// `concurrent` jobs were in flight: no worker was free.
    pub concurrent: f64,
    /// The runner's `limit` (jobs or machines) was reached.
    pub limit: f64,
    /// Neither: no machine was ready (the idle pool was empty, machines were booting).
    pub machines: f64,
}

impl WaitCauses {
    pub fn total(&self) -> f64 {
        self.concurrent + self.limit + self.machines
    }

    /// The cap that held most of the wait back, when it held at least half of it.
    pub fn binding(&self) -> Option<(WaitCause, f64)> {
        let total = self.total();
        if total <= 0.0 {
            return None;
        }
        [
            (WaitCause::Concurrent, self.concurrent),
            (WaitCause::Limit, self.limit),
        ]
        .into_iter()
        .find(|(_, s)| *s / total >= 0.5)
        .map(|(c, s)| (c, s / total))
    }
}

/// What kept waiting jobs from starting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitCause {
    Concurrent,
    Limit,
    Machines,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct MachineHours {
    pub booting: f64,
    pub idle: f64,
    pub busy: f64,
    pub removing: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DayResult {
    pub date: String,
    pub cost_usd: f64,
    /// Compute spent on machines running jobs, idle, booting, being removed; and storage.
    pub busy_usd: f64,
    pub idle_usd: f64,
    pub booting_usd: f64,
    pub removing_usd: f64,
    pub storage_usd: f64,
    /// p95 wait of the jobs that arrived that day and ran (exact up to 64 jobs, else within
    /// 1/16).
    pub wait_p95_s: f64,
    pub jobs: u64,
}

/// A machine's state as far as its hours go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HourState {
    Booting = 0,
    Idle = 1,
    Busy = 2,
    Removing = 3,
}

#[derive(Default)]
struct Day {
    cost: f64,
    by_state: [f64; 4],
    storage: f64,
    waits: Option<Quantiles>,
    jobs: u64,
}

/// Local days of the scenario's time zone, with the current day cached.
pub(crate) struct DayClock {
    tz: Tz,
    cached: Option<(NaiveDate, Time, Time)>,
}

impl DayClock {
    pub(crate) fn new(tz: Tz) -> Self {
        DayClock { tz, cached: None }
    }

    /// The local date of `t`, and when that day starts and ends.
    #[inline]
    pub(crate) fn day(&mut self, t: Time) -> (NaiveDate, Time, Time) {
        if let Some(c) = self.cached
            && t >= c.1
            && t < c.2
        {
            return c;
        }
        self.day_of(t)
    }

    #[cold]
    #[inline(never)]
    fn day_of(&mut self, t: Time) -> (NaiveDate, Time, Time) {
        let utc = t.to_utc().unwrap_or_default();
        let date = utc.with_timezone(&self.tz).date_naive();
        let start = self.midnight(date);
        let end = self.midnight(date.succ_opt().unwrap_or(date));
        let c = (date, start, end.max(start.plus_millis(1)));
        self.cached = Some(c);
        c
    }

    fn midnight(&self, d: NaiveDate) -> Time {
        let naive = d.and_hms_opt(0, 0, 0).unwrap_or_default();
        // A zone whose midnight is skipped by DST starts its day at the first valid instant.
        let local = self.tz.from_local_datetime(&naive).earliest().or_else(|| {
            self.tz
                .from_local_datetime(&(naive + chrono::Duration::hours(1)))
                .earliest()
        });
        local.map_or(Time(0), |l| Time(l.timestamp_millis()))
    }
}

/// One call to the books that moves floating-point sums or the days, recorded to be applied
/// elsewhere in the same order ([`crate::sim::books`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Entry {
    /// [`Metrics::arrival`].
    Arrival(Time),
    /// [`Metrics::wait`].
    Wait(Time, i64),
    /// [`Metrics::segment`].
    Segment(HourState, Time, Time),
    /// [`Metrics::minimum`].
    Minimum(Time, Time, HourState),
}

pub struct Metrics {
    clock: DayClock,
    waits: Quantiles,
    /// Days in date order; the last is nearly always the one asked for.
    days: Vec<(NaiveDate, Day)>,
    compute: f64,
    storage: f64,
    pub created: u64,
    hours_ms: [i64; 4],
    pub interruptions: u64,
    pub retried: u64,
    pub arrived: u64,
    /// Jobs still waiting at the end (their wait is a lower bound).
    pub censored: u64,
    /// Job-milliseconds of waiting by cause.
    queued_ms: [i64; 3],
}

impl Metrics {
    pub fn new(tz: Tz) -> Self {
        Metrics {
            clock: DayClock::new(tz),
            waits: Quantiles::new(),
            days: Vec::new(),
            compute: 0.0,
            storage: 0.0,
            created: 0,
            hours_ms: [0; 4],
            interruptions: 0,
            retried: 0,
            arrived: 0,
            censored: 0,
            queued_ms: [0; 3],
        }
    }

    #[inline(always)]
    fn day_mut(&mut self, d: NaiveDate) -> &mut Day {
        let i = match self.days.last() {
            Some((last, _)) if *last == d => self.days.len() - 1,
            _ => self.day_index(d),
        };
        &mut self.days[i].1
    }

    /// Where day `d` is (added in date order if new): a day other than the last.
    #[cold]
    #[inline(never)]
    fn day_index(&mut self, d: NaiveDate) -> usize {
        match self.days.binary_search_by_key(&d, |(x, _)| *x) {
            Ok(i) => i,
            Err(i) => {
                self.days.insert(i, (d, Day::default()));
                i
            }
        }
    }

    /// Apply a recorded call, as if it were made here.
    #[inline]
    pub(crate) fn apply(&mut self, world: &WorldModel, e: Entry) {
        match e {
            Entry::Arrival(at) => self.arrival(at),
            Entry::Wait(arrival, wait_ms) => self.wait(arrival, wait_ms),
            Entry::Segment(state, from, to) => self.segment(world, state, from, to),
            Entry::Minimum(launched, ended, state) => {
                self.minimum(world, launched, ended, state);
            }
        }
    }

    /// Books kept elsewhere from this run's entries come back: take them, with the counts this
    /// run kept itself (whole numbers, which no entry moves).
    pub(crate) fn take_back(&mut self, mut kept: Metrics) {
        kept.created += self.created;
        kept.interruptions += self.interruptions;
        kept.retried += self.retried;
        kept.censored += self.censored;
        for (k, q) in kept.queued_ms.iter_mut().zip(self.queued_ms) {
            *k += q;
        }
        *self = kept;
    }

    pub fn arrival(&mut self, at: Time) {
        self.arrived += 1;
        let (d, _, _) = self.clock.day(at);
        self.day_mut(d).jobs += 1;
    }

    /// A job's total wait (all its waits if it was requeued), counted on its arrival day.
    pub fn wait(&mut self, arrival: Time, wait_ms: i64) {
        let w = wait_ms.max(0) as u64;
        self.waits.add(w);
        let (d, _, _) = self.clock.day(arrival);
        self.day_mut(d)
            .waits
            .get_or_insert_with(Quantiles::coarse)
            .add(w);
    }

    /// Jobs waited `job_ms` job-milliseconds held back by `cause`.
    pub fn queued(&mut self, cause: WaitCause, job_ms: i64) {
        self.queued_ms[cause as usize] += job_ms;
    }

    /// A machine spent `from..to` in `state`: count the hours and bill them (split by day).
    pub fn segment(&mut self, world: &WorldModel, state: HourState, from: Time, to: Time) {
        self.segment_to(world, state, from, to, |_, _| {});
    }

    /// [`Metrics::segment`], telling `spent` each day's dollars (compute and storage).
    pub fn segment_to(
        &mut self,
        world: &WorldModel,
        state: HourState,
        from: Time,
        to: Time,
        mut spent: impl FnMut(NaiveDate, f64),
    ) {
        if to <= from {
            return;
        }
        self.hours_ms[state as usize] += to.since(from);
        let mut t = from;
        while t < to {
            let (d, _, day_end) = self.clock.day(t);
            let seg_end = to.min(day_end);
            let c = world.price.cost(t, seg_end);
            let s = world.storage_cost(t, seg_end);
            self.compute += c;
            self.storage += s;
            let day = self.day_mut(d);
            day.cost += c + s;
            day.by_state[state as usize] += c;
            day.storage += s;
            spent(d, c + s);
            t = seg_end;
        }
    }

    /// EC2's 60 s minimum for a machine that ran from `launched` to `ended` (in `state` last).
    /// Returns the day and the dollars it added, if any.
    pub fn minimum(
        &mut self,
        world: &WorldModel,
        launched: Time,
        ended: Time,
        state: HourState,
    ) -> Option<(NaiveDate, f64)> {
        if ended.since(launched) >= MIN_BILLED_MS {
            return None;
        }
        let to = launched.plus_millis(MIN_BILLED_MS);
        let c = world.price.cost(ended, to);
        let s = world.storage_cost(ended, to);
        self.compute += c;
        self.storage += s;
        let (d, _, _) = self.clock.day(ended);
        let day = self.day_mut(d);
        day.cost += c + s;
        day.by_state[state as usize] += c;
        day.storage += s;
        Some((d, c + s))
    }

    #[allow(clippy::too_many_arguments)]
    pub fn result(
        mut self,
        name: &str,
        engine: &str,
        world: &WorldModel,
        start: Time,
        end: Time,
        waiting: u64,
        running: u64,
        notes: Vec<String>,
    ) -> VariantResult {
        let s = |ms: u64| ms as f64 / 1000.0;
        let h = |ms: i64| ms as f64 / 3.6e6;
        let wait_s = self.waits.summary(1000.0);
        let wait_quantiles = crate::sim::calibration::percentiles(&mut self.waits);
        let per_day = self
            .days
            .iter_mut()
            .map(|(d, day)| DayResult {
                date: d.to_string(),
                cost_usd: day.cost,
                busy_usd: day.by_state[HourState::Busy as usize],
                idle_usd: day.by_state[HourState::Idle as usize],
                booting_usd: day.by_state[HourState::Booting as usize],
                removing_usd: day.by_state[HourState::Removing as usize],
                storage_usd: day.storage,
                wait_p95_s: day.waits.as_mut().map_or(0.0, |q| s(q.quantile(0.95))),
                jobs: day.jobs,
            })
            .collect();
        VariantResult {
            name: name.to_string(),
            engine: engine.to_string(),
            changes: Vec::new(),
            start,
            end,
            days: end.since(start) as f64 / 86_400_000.0,
            jobs: self.arrived,
            jobs_unfinished: waiting + running,
            waits_censored: self.censored,
            jobs_waiting_at_end: waiting,
            jobs_running_at_end: running,
            cost_usd: self.compute + self.storage,
            cost: CostBreakdown {
                compute_usd: self.compute,
                storage_usd: self.storage,
                spot_usd: if world.spot { self.compute } else { 0.0 },
                on_demand_usd: if world.spot { 0.0 } else { self.compute },
            },
            wait_s,
            wait_causes_s: WaitCauses {
                concurrent: s(self.queued_ms[0] as u64),
                limit: s(self.queued_ms[1] as u64),
                machines: s(self.queued_ms[2] as u64),
            },
            machines_created: self.created,
            machine_hours: MachineHours {
                booting: h(self.hours_ms[0]),
                idle: h(self.hours_ms[1]),
                busy: h(self.hours_ms[2]),
                removing: h(self.hours_ms[3]),
            },
            interruptions: self.interruptions,
            jobs_retried: self.retried,
            per_day,
            window: Window::default(),
            notes,
            observed: None,
            wait_quantiles,
            by: None,
        }
    }
}
