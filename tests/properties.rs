//! Property tests over random event sequences, for both engines, and over random input for
//! the parsers.

mod common;
use common::*;
use proptest::prelude::*;
use scalecast::config::ConfigFile;
use scalecast::core::cron::CronExpr;
use scalecast::core::fleet::MachineState;
use scalecast::core::jobs::JobState;
use scalecast::core::settings::IdleSettings;
use scalecast::core::{Action, ActionKind, Engine, EngineKind, Event, EventKind, Settings, Time};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

#[derive(Clone, Debug)]
enum Op {
    Arrive,
    Finish(usize),
    Ready(usize),
    Fail(usize),
    Gone(usize),
    Notice(usize),
    Tick,
    Wait(u16),
    /// Every tick the engine asks for during the next `n * 100` ms; with poll skipping on, the
    /// quiet ones handled at once (`handle_quiet_ticks`).
    Run(u16),
    /// What is left of a `Run`: up to this instant (ms).
    RunUntil(i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Arrive),
        3 => any::<usize>().prop_map(Op::Finish),
        3 => any::<usize>().prop_map(Op::Ready),
        1 => any::<usize>().prop_map(Op::Fail),
        2 => any::<usize>().prop_map(Op::Gone),
        1 => any::<usize>().prop_map(Op::Notice),
        2 => Just(Op::Tick),
        2 => (1u16..5_000).prop_map(Op::Wait),
        1 => (1u16..3_000).prop_map(Op::Run),
    ]
}

fn random_settings() -> impl Strategy<Value = Settings> {
    (
        1u32..6,
        0u32..7,
        0u32..4,
        0u32..4,
        0u32..6,
        0u32..3,
        prop_oneof![Just(0.0), Just(0.5), Just(1.5)],
        0u64..120,
        1u32..10,
    )
        .prop_map(
            |(concurrent, limit, mgr, max_builds, ic, icm, f, it, ci)| Settings {
                concurrent,
                check_interval: ci,
                limit,
                max_builds,
                max_growth_rate: mgr,
                idle: IdleSettings {
                    idle_count: ic,
                    idle_count_min: icm,
                    idle_scale_factor: f,
                    idle_time: it,
                },
                autoscaling: Vec::new(),
            },
        )
}

/// Turns random ops into valid events against the engine's state, checks the invariants after
/// each one, and returns every action.
fn run(kind: EngineKind, s: &Settings, ops: &[Op]) -> Result<Vec<Action>, TestCaseError> {
    run_with(kind, s, ops, true).map(|(a, _)| a)
}

/// As `run`, with the docker-machine engine's poll skipping on or off; also every deadline
/// the engine asked for, in order.
fn run_with(
    kind: EngineKind,
    s: &Settings,
    ops: &[Op],
    skipping: bool,
) -> Result<(Vec<Action>, Vec<Option<Time>>), TestCaseError> {
    let mut e = Engine::new(kind, s.clone(), t0());
    e.set_poll_skipping(skipping);
    let mut deadlines = Vec::new();
    let mut now = t0();
    let mut next_job = 1u64;
    let mut arrived = 0u64;
    let mut finished: BTreeSet<u64> = BTreeSet::new();
    let mut running: BTreeMap<u64, u64> = BTreeMap::new(); // job -> machine
    let mut all = Vec::new();
    let pick =
        |ids: Vec<u64>, i: usize| -> Option<u64> { (!ids.is_empty()).then(|| ids[i % ids.len()]) };
    let mut todo: std::collections::VecDeque<Op> = ops.iter().cloned().collect();
    while let Some(o) = todo.pop_front() {
        // A tick inside a run records no deadline of its own: skipping handles some at once.
        let mut inside_run = false;
        let of_state = |e: &Engine, st: Option<MachineState>| -> Vec<u64> {
            e.fleet()
                .iter()
                .filter(|m| st.is_none_or(|s| m.state == s))
                .map(|m| m.id)
                .collect()
        };
        let kind = match o {
            Op::Arrive => {
                next_job += 1;
                arrived += 1;
                EventKind::JobArrived { job: next_job - 1 }
            }
            Op::Finish(i) => match pick(running.keys().copied().collect(), i) {
                Some(job) => EventKind::JobFinished { job },
                None => continue,
            },
            Op::Ready(i) => match pick(of_state(&e, Some(MachineState::Creating)), i) {
                Some(machine) => EventKind::MachineReady { machine },
                None => continue,
            },
            Op::Fail(i) => match pick(of_state(&e, Some(MachineState::Creating)), i) {
                Some(machine) => EventKind::MachineFailed { machine },
                None => continue,
            },
            Op::Gone(i) => match pick(of_state(&e, None), i) {
                Some(machine) => EventKind::MachineGone { machine },
                None => continue,
            },
            Op::Notice(i) => match pick(of_state(&e, None), i) {
                Some(machine) => EventKind::SpotNotice { machine },
                None => continue,
            },
            Op::Tick => {
                now = e.poll_timeout().map_or(now, |d| d.max(now));
                EventKind::Tick
            }
            Op::Wait(ms) => {
                now = now.plus_millis(ms as i64 * 10);
                EventKind::Tick
            }
            Op::Run(n) => {
                todo.push_front(Op::RunUntil(now.plus_millis(n as i64 * 100).0));
                continue;
            }
            Op::RunUntil(until) => {
                let until = Time(until);
                let Some(d) = e.poll_timeout().map(|d| d.max(now)).filter(|&d| d < until) else {
                    deadlines.push(e.poll_timeout());
                    continue;
                };
                now = d;
                todo.push_front(Op::RunUntil(until.0));
                if skipping && e.handle_quiet_ticks(d, until) > 0 {
                    prop_assert!(!e.has_actions(), "quiet ticks decide nothing");
                    now = e.now();
                    continue;
                }
                inside_run = true;
                EventKind::Tick
            }
        };
        if let EventKind::JobFinished { job } = kind {
            running.remove(&job);
            finished.insert(job);
        }
        e.handle(&Event::new(now, kind))
            .map_err(|err| TestCaseError::fail(err.to_string()))?;
        if !inside_run {
            deadlines.push(e.poll_timeout());
        }
        for a in e.drain_actions() {
            match a.kind {
                ActionKind::StartJob { job, machine } => {
                    prop_assert!(!finished.contains(&job), "job {job} ran after it finished");
                    prop_assert!(
                        running.insert(job, machine).is_none(),
                        "job {job} run twice"
                    );
                }
                ActionKind::RequeueJob { job, .. } => {
                    prop_assert!(running.remove(&job).is_some());
                }
                _ => {}
            }
            all.push(a);
        }
        let c = e.fleet().counts();
        if s.limit > 0 {
            prop_assert!(
                c.total() <= s.limit,
                "{} machines, limit {}",
                c.total(),
                s.limit
            );
        }
        if s.max_growth_rate > 0 {
            prop_assert!(c.creating <= s.max_growth_rate);
        }
        prop_assert!(e.jobs().running() <= s.job_cap());
        let machines: BTreeSet<u64> = running.values().copied().collect();
        prop_assert_eq!(machines.len(), running.len(), "two jobs on one machine");
        prop_assert_eq!(e.jobs().running() as usize, running.len());
        let waiting: BTreeSet<u64> = e
            .jobs()
            .iter()
            .filter(|(_, st)| *st == JobState::Waiting)
            .map(|(j, _)| j)
            .collect();
        let queued: Vec<u64> = e.jobs().queue().collect();
        prop_assert_eq!(
            queued.len(),
            waiting.len(),
            "a waiting job is not in the queue"
        );
        prop_assert_eq!(queued.iter().copied().collect::<BTreeSet<u64>>(), waiting);
        let awaiting = e
            .jobs()
            .iter()
            .filter(|(_, st)| *st == JobState::Awaiting)
            .count();
        prop_assert_eq!(awaiting as u32, e.jobs().awaiting());
        let unfinished = e.jobs().iter().count() as u64;
        prop_assert_eq!(
            arrived,
            finished.len() as u64 + unfinished,
            "a job was lost"
        );
    }
    Ok((all, deadlines))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn scalecast_invariants_hold_and_runs_are_deterministic(
        s in random_settings(), ops in prop::collection::vec(op(), 1..200)
    ) {
        let a = run(EngineKind::Scalecast, &s, &ops)?;
        let b = run(EngineKind::Scalecast, &s, &ops)?;
        prop_assert_eq!(a, b);
    }

    #[test]
    fn docker_machine_invariants_hold_and_runs_are_deterministic(
        s in random_settings(), ops in prop::collection::vec(op(), 1..200)
    ) {
        let a = run(EngineKind::DockerMachine, &s, &ops)?;
        let b = run(EngineKind::DockerMachine, &s, &ops)?;
        prop_assert_eq!(a, b);
    }

    #[test]
    fn docker_machine_skipping_quiet_polls_decides_exactly_as_polling_every_interval(
        s in random_settings(),
        blocks in prop::collection::vec(
            prop_oneof![
                3 => op().prop_map(|o| vec![o]),
                1 => (1usize..60).prop_map(|n| vec![Op::Tick; n]),
            ],
            1..120,
        ),
        idle_time in 0u64..40,
    ) {
        // Short IdleTimes and long runs of ticks: many polls fall inside quiet stretches.
        let ops: Vec<Op> = blocks.into_iter().flatten().collect();
        let mut s = s;
        s.idle.idle_time = idle_time;
        let (a, da) = run_with(EngineKind::DockerMachine, &s, &ops, true)?;
        let (b, db) = run_with(EngineKind::DockerMachine, &s, &ops, false)?;
        prop_assert_eq!(a, b);
        prop_assert_eq!(da, db, "the same poll grid");
    }

    #[test]
    fn config_parser_never_panics_on_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = ConfigFile::parse(Path::new("fuzz.toml"), &text);
    }

    #[test]
    fn config_parser_never_panics_on_mutated_configs(
        line in "[A-Za-z]{1,12}", value in "[-0-9a-z\"\\[\\]{}.,=* ]{0,20}"
    ) {
        let text = format!(
            "[[runners]]\nname = \"r\"\n[runners.machine]\n{line} = {value}\n[[runners.machine.autoscaling]]\nPeriods = [\"* * * * * * *\"]\n{line} = {value}\n"
        );
        let _ = ConfigFile::parse(Path::new("fuzz.toml"), &text);
    }

    #[test]
    fn period_parser_never_panics(text in "[0-9a-zA-Z*/,#?@ -]{0,40}") {
        if let Ok(e) = CronExpr::parse(&text) {
            let u = t0().floor_secs();
            let _ = e.next_toggle(chrono_tz::Tz::Europe__Berlin, u, u + 40 * 86_400);
        }
    }

    #[test]
    fn next_change_is_the_first_change(
        hour_a in 0u32..24, hour_b in 0u32..24, dow in 0u32..7, min in 0u32..60,
        tz in prop::sample::select(vec!["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]),
        start in 0i64..(365 * 86_400), probes in prop::collection::vec(0.0f64..1.0, 20)
    ) {
        let (lo, hi) = (hour_a.min(hour_b), hour_a.max(hour_b));
        let m = format!(
            "[[runners.machine.autoscaling]]\nPeriods = [\"* {min}-59 {lo}-{hi} * * * *\"]\nIdleCount = 1\nTimezone = \"{tz}\"\n[[runners.machine.autoscaling]]\nPeriods = [\"* * * * * {dow} *\"]\nIdleCount = 2\nTimezone = \"UTC\"\n"
        );
        let s = settings("", "", &m);
        let from = Time::from_secs(1_767_225_600 + start); // 2026-01-01 + start
        let until = from.plus_secs(10 * 86_400);
        let here = s.effective_at(from).entry;
        match s.next_change(from, until) {
            Some(c) => {
                prop_assert!(c > from && c <= until);
                prop_assert_ne!(s.effective_at(c).entry, here);
                for p in probes {
                    let t = Time(from.0 + ((c.0 - 1 - from.0) as f64 * p) as i64);
                    prop_assert_eq!(s.effective_at(t).entry, here, "changed earlier, at {}", t);
                }
            }
            None => {
                for p in probes {
                    let t = Time(from.0 + ((until.0 - from.0) as f64 * p) as i64);
                    prop_assert_eq!(s.effective_at(t).entry, here);
                }
            }
        }
    }
}
