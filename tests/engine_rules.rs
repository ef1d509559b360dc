//! Rules of spec sections 3 (docker-machine) and 4 (scalecast): given a fleet and events, when
//! handled, then these actions.

mod common;
use common::*;
use scalecast::core::fleet::MachineState::{Idle, Used};
use scalecast::core::settings::IdleSettings;
use scalecast::core::{
    ActionKind, CreateReason, Engine, EngineError, Event, EventKind, RemoveReason,
};

// ---- shared ----

/// The machine made for a job that no longer needs it becomes ready and stays idle.
fn ready_and_left_idle(e: &mut Engine, machine: u64) {
    let a = feed(e, t0().plus_secs(40), EventKind::MachineReady { machine });
    assert!(started(&a).is_empty());
    assert_eq!(e.fleet().get(machine).unwrap().state, Idle);
}

#[test]
fn idle_target_truncates_toward_zero() {
    let s = IdleSettings {
        idle_count: 1000,
        idle_count_min: 0,
        idle_scale_factor: 0.57,
        idle_time: 0,
    };
    assert_eq!(s.target(100), 56);
    assert_eq!(s.target(0), 1, "IdleCountMin forced to at least 1");
    let none = IdleSettings {
        idle_scale_factor: 0.0,
        idle_count: 7,
        ..s
    };
    assert_eq!(none.target(100), 7);
}

#[test]
fn time_going_backwards_is_refused_and_state_unchanged() {
    let mut e = sc(settings("", "", "IdleCount = 1"));
    tick(&mut e, t0().plus_secs(10));
    let before = e.clone();
    let err = e
        .handle(&Event::new(t0(), EventKind::JobArrived { job: 1 }))
        .unwrap_err();
    assert!(matches!(err, EngineError::TimeWentBackwards { .. }));
    assert_eq!(e, before);
}

#[test]
fn inconsistent_events_are_refused_without_change() {
    let mut e = sc(settings("", "", "IdleCount = 0"));
    feed(&mut e, t0(), EventKind::JobArrived { job: 1 });
    let before = e.clone();
    for (kind, want) in [
        (
            EventKind::JobArrived { job: 1 },
            EngineError::DuplicateJob(1),
        ),
        (
            EventKind::JobFinished { job: 1 },
            EngineError::JobNotRunning(1),
        ),
        (
            EventKind::MachineReady { machine: 99 },
            EngineError::UnknownMachine(99),
        ),
        (
            EventKind::JobCancelled { job: 2 },
            EngineError::JobNotWaiting(2),
        ),
        (
            EventKind::MachineGone { machine: 99 },
            EngineError::UnknownMachine(99),
        ),
    ] {
        assert_eq!(e.handle(&Event::new(t0(), kind)).unwrap_err(), want);
        assert_eq!(e, before);
    }
}

#[test]
fn a_cancelled_job_leaves_the_queue_and_a_running_one_cannot_be_cancelled() {
    let mut e = sc(settings("concurrent = 5", "", "IdleCount = 0"));
    feed(&mut e, t0(), EventKind::JobArrived { job: 1 });
    feed(&mut e, t0(), EventKind::JobArrived { job: 2 });
    assert_eq!(e.jobs().waiting(), 2);
    feed(
        &mut e,
        t0().plus_secs(1),
        EventKind::JobCancelled { job: 1 },
    );
    assert_eq!(e.jobs().queue().collect::<Vec<_>>(), vec![2]);
    assert_eq!(e.jobs().state(1), None);
    // The machine made for job 1 now takes job 2, the only one left.
    let m = e.fleet().ids()[0];
    let a = feed(
        &mut e,
        t0().plus_secs(30),
        EventKind::MachineReady { machine: m },
    );
    assert_eq!(started(&a), vec![(2, m)]);
    let before = e.clone();
    assert_eq!(
        e.handle(&Event::new(
            t0().plus_secs(31),
            EventKind::JobCancelled { job: 2 }
        ))
        .unwrap_err(),
        EngineError::JobNotWaiting(2)
    );
    assert_eq!(
        e, before,
        "a running job ends with job_finished, not a cancel"
    );
}

#[test]
fn docker_machine_job_awaiting_its_machine_can_be_cancelled() {
    let mut e = dm(settings(
        "concurrent = 5",
        "",
        "IdleCount = 0\nIdleTime = 600",
    ));
    tick(&mut e, t0());
    feed(&mut e, t0().plus_secs(1), EventKind::JobArrived { job: 1 });
    let made = created(&tick(&mut e, t0().plus_secs(3)));
    assert_eq!((made.len(), e.jobs().awaiting()), (1, 1));
    feed(
        &mut e,
        t0().plus_secs(4),
        EventKind::JobCancelled { job: 1 },
    );
    assert_eq!(e.jobs().in_flight(), 0);
    ready_and_left_idle(&mut e, made[0]);
}

#[test]
fn finished_machine_under_max_builds_returns_idle_with_fresh_clock() {
    let mut e = sc(settings(
        "",
        "",
        "IdleCount = 1\nMaxBuilds = 3\nIdleTime = 60",
    ));
    let m = seed(&mut e, Idle, 500, 0);
    feed(&mut e, t0(), EventKind::JobArrived { job: 1 });
    let a = feed(
        &mut e,
        t0().plus_secs(40),
        EventKind::JobFinished { job: 1 },
    );
    assert!(removed(&a).is_empty());
    let mm = e.fleet().get(m).unwrap();
    assert_eq!(
        (mm.state, mm.uses, mm.last_used),
        (Idle, 1, t0().plus_secs(40))
    );
}

// ---- scalecast ----

#[test]
fn scalecast_starts_a_job_at_once_on_the_newest_idle_machine() {
    let mut e = sc(settings(
        "concurrent = 5",
        "",
        "IdleCount = 3\nIdleTime = 600",
    ));
    let ids: Vec<u64> = (0..3).map(|_| seed(&mut e, Idle, 0, 0)).collect();
    let a = feed(&mut e, t0(), EventKind::JobArrived { job: 7 });
    assert_eq!(started(&a), vec![(7, ids[2])]);
}

#[test]
fn scalecast_creates_one_machine_per_waiting_job_on_demand() {
    let mut e = sc(settings("concurrent = 10", "", "IdleCount = 0"));
    for job in 1..=3 {
        feed(&mut e, t0(), EventKind::JobArrived { job });
    }
    assert_eq!(e.fleet().counts().creating, 3);
    let a = feed(
        &mut e,
        t0().plus_secs(60),
        EventKind::MachineReady { machine: 2 },
    );
    assert_eq!(
        started(&a),
        vec![(1, 2)],
        "the ready machine serves the oldest waiting job"
    );
}

#[test]
fn scalecast_on_demand_is_capped_by_concurrent() {
    let mut e = sc(settings("concurrent = 2", "", "IdleCount = 0"));
    for job in 1..=5 {
        feed(&mut e, t0(), EventKind::JobArrived { job });
    }
    assert_eq!(
        e.fleet().counts().creating,
        2,
        "only 2 jobs could run at once"
    );
}

#[test]
fn scalecast_never_exceeds_max_growth_rate() {
    let mut e = sc(settings(
        "concurrent = 10",
        "",
        "IdleCount = 10\nMaxGrowthRate = 3",
    ));
    let a = tick(&mut e, t0());
    assert_eq!(created(&a).len(), 3);
    let a = feed(
        &mut e,
        t0().plus_secs(50),
        EventKind::MachineReady { machine: 1 },
    );
    assert_eq!(created(&a).len(), 1, "a slot freed, one more");
    assert_eq!(e.fleet().counts().creating, 3);
}

#[test]
fn scalecast_limit_caps_machines_in_every_state() {
    let mut e = sc(settings(
        "concurrent = 10",
        "limit = 4",
        "IdleCount = 10\nIdleTime = 0",
    ));
    seed(&mut e, scalecast::core::fleet::MachineState::Removing, 0, 0);
    let a = tick(&mut e, t0());
    assert_eq!(created(&a).len(), 3, "the removing machine still counts");
}

#[test]
fn scalecast_removes_surplus_longest_idle_first_after_idle_time() {
    let mut e = sc(settings("", "", "IdleCount = 1\nIdleTime = 100"));
    let old = seed(&mut e, Idle, 300, 0);
    let mid = seed(&mut e, Idle, 200, 0);
    let young = seed(&mut e, Idle, 50, 0);
    let a = tick(&mut e, t0());
    let r: Vec<u64> = removed(&a).into_iter().map(|x| x.0).collect();
    assert_eq!(
        r,
        vec![old, mid],
        "young is not past IdleTime and is the one kept"
    );
    assert_eq!(e.fleet().get(young).unwrap().state, Idle);
}

#[test]
fn scalecast_idle_time_is_strict() {
    let mut e = sc(settings("", "", "IdleCount = 0\nIdleTime = 100"));
    let m = seed(&mut e, Idle, 100, 0);
    assert!(
        removed(&tick(&mut e, t0())).is_empty(),
        "exactly IdleTime: kept"
    );
    let a = tick(&mut e, t0().plus_millis(1));
    assert_eq!(removed(&a).iter().map(|x| x.0).collect::<Vec<_>>(), vec![m]);
}

#[test]
fn scalecast_deadline_is_the_exact_idle_expiry() {
    let mut e = sc(settings("", "", "IdleCount = 0\nIdleTime = 100"));
    seed(&mut e, Idle, 30, 0);
    tick(&mut e, t0());
    assert_eq!(e.poll_timeout(), Some(t0().plus_secs(70).plus_millis(1)));
}

#[test]
fn scalecast_deadline_is_the_period_boundary() {
    let m = "IdleCount = 0\n[[runners.machine.autoscaling]]\nPeriods = [\"* * 9-17 * * mon-fri *\"]\nIdleCount = 2\nTimezone = \"UTC\"\n";
    let mut e = sc(settings("", "", m));
    assert_eq!(created(&tick(&mut e, t0())).len(), 2);
    assert_eq!(e.poll_timeout(), Some(at("2026-11-25T17:59:59Z")));
    let a = tick(&mut e, at("2026-11-25T17:59:59Z"));
    assert!(a.is_empty());
    assert_eq!(e.effective().entry, None);
    assert_eq!(e.poll_timeout(), Some(at("2026-11-26T08:59:59Z")));
    tick(&mut e, at("2026-11-26T08:59:59Z"));
    assert_eq!(e.effective().entry, Some(0));
    assert_eq!(e.effective().idle.idle_count, 2);
}

#[test]
fn scalecast_does_not_wake_without_reason() {
    let mut e = sc(settings("", "", "IdleCount = 0\nIdleTime = 100"));
    tick(&mut e, t0());
    assert_eq!(e.poll_timeout(), None);
}

#[test]
fn scalecast_spot_notice_on_idle_machine_removes_it() {
    let mut e = sc(settings("", "", "IdleCount = 1\nIdleTime = 600"));
    let m = seed(&mut e, Idle, 0, 0);
    let a = feed(&mut e, t0(), EventKind::SpotNotice { machine: m });
    assert_eq!(removed(&a), vec![(m, RemoveReason::SpotNotice)]);
    assert_eq!(created(&a).len(), 1, "a replacement for the pool");
}

#[test]
fn scalecast_noticed_busy_machine_takes_no_new_job_and_its_job_is_requeued() {
    let mut e = sc(settings(
        "concurrent = 4",
        "",
        "IdleCount = 0\nIdleTime = 600",
    ));
    let m = seed(&mut e, Idle, 0, 0);
    feed(&mut e, t0(), EventKind::JobArrived { job: 1 });
    feed(
        &mut e,
        t0().plus_secs(1),
        EventKind::SpotNotice { machine: m },
    );
    let a = feed(&mut e, t0().plus_secs(2), EventKind::JobArrived { job: 2 });
    assert!(started(&a).is_empty());
    let a = feed(
        &mut e,
        t0().plus_secs(120),
        EventKind::MachineGone { machine: m },
    );
    assert!(
        a.iter()
            .any(|x| x.kind == ActionKind::RequeueJob { job: 1, machine: m })
    );
    assert_eq!(e.jobs().waiting(), 2);
    assert_eq!(e.jobs().requeued(), 1);
}

#[test]
fn scalecast_failed_creation_is_retried() {
    let mut e = sc(settings("", "", "IdleCount = 1"));
    tick(&mut e, t0());
    let a = feed(
        &mut e,
        t0().plus_secs(20),
        EventKind::MachineFailed { machine: 1 },
    );
    assert_eq!(created(&a), vec![2]);
}

#[test]
fn scalecast_lowered_limit_removes_idle_machines() {
    let mut e = sc(settings("", "limit = 5", "IdleCount = 5\nIdleTime = 600"));
    for _ in 0..5 {
        seed(&mut e, Idle, 0, 0);
    }
    tick(&mut e, t0());
    let mut lower = e.settings().clone();
    lower.limit = 2;
    let a = feed(
        &mut e,
        t0().plus_secs(1),
        EventKind::ConfigReloaded {
            settings: Box::new(lower),
        },
    );
    let r = removed(&a);
    assert_eq!(r.len(), 3);
    assert!(
        r.iter()
            .all(|(_, w)| matches!(w, RemoveReason::TooManyMachines { .. }))
    );
}

#[test]
fn scalecast_create_reasons_say_why() {
    let mut e = sc(settings("concurrent = 3", "", "IdleCount = 1"));
    let reasons = |a: &[scalecast::core::Action]| -> Vec<CreateReason> {
        a.iter()
            .filter_map(|x| match x.kind {
                ActionKind::CreateMachine { reason, .. } => Some(reason),
                _ => None,
            })
            .collect()
    };
    let a = feed(&mut e, t0(), EventKind::JobArrived { job: 1 });
    let r = reasons(&a);
    assert_eq!(
        r.len(),
        1,
        "the machine made for the job also counts as available"
    );
    assert!(matches!(
        r[0],
        CreateReason::OnDemand {
            waiting: 1,
            creating: 0
        }
    ));
    let a = feed(
        &mut e,
        t0().plus_secs(60),
        EventKind::MachineReady { machine: 1 },
    );
    assert_eq!(started(&a), vec![(1, 1)]);
    let r = reasons(&a);
    assert!(matches!(
        r[..],
        [CreateReason::IdlePool {
            available: 0,
            target: 1,
            entry: None
        }]
    ));
}

// ---- docker-machine ----

#[test]
fn docker_machine_polls_every_check_interval() {
    let mut e = dm(settings("check_interval = 0", "", "IdleCount = 0"));
    tick(&mut e, t0());
    assert_eq!(e.poll_timeout(), Some(t0().plus_secs(3)), "0 means 3 s");
    let mut e = dm(settings("check_interval = 10", "", "IdleCount = 0"));
    tick(&mut e, t0());
    assert_eq!(e.poll_timeout(), Some(t0().plus_secs(10)));
}

#[test]
fn docker_machine_decides_only_when_it_polls() {
    let mut e = dm(settings("check_interval = 10", "", "IdleCount = 1"));
    tick(&mut e, t0());
    let a = feed(
        &mut e,
        t0().plus_secs(2),
        EventKind::MachineReady { machine: 1 },
    );
    assert!(a.is_empty());
    let a = feed(&mut e, t0().plus_secs(3), EventKind::JobArrived { job: 5 });
    assert!(a.is_empty(), "the idle machine waits for the next poll");
    let a = tick(&mut e, t0().plus_secs(10));
    assert_eq!(started(&a), vec![(5, 1)]);
}

#[test]
fn docker_machine_requests_no_job_without_an_idle_machine() {
    let mut e = dm(settings("concurrent = 5", "", "IdleCount = 2"));
    feed(&mut e, t0(), EventKind::JobArrived { job: 1 });
    assert_eq!(e.fleet().counts().creating, 2);
    assert_eq!(e.jobs().awaiting(), 0);
    assert_eq!(e.jobs().waiting(), 1);
}

#[test]
fn docker_machine_polls_again_right_away_after_receiving_a_job() {
    let mut e = dm(settings(
        "concurrent = 5",
        "",
        "IdleCount = 3\nIdleTime = 600",
    ));
    for _ in 0..3 {
        seed(&mut e, Idle, 0, 0);
    }
    tick(&mut e, t0());
    for job in 1..=2 {
        assert!(feed(&mut e, t0().plus_secs(1), EventKind::JobArrived { job }).is_empty());
    }
    let a = tick(&mut e, t0().plus_secs(3));
    assert_eq!(
        started(&a).len(),
        2,
        "one poll per job, in the same instant"
    );
    let mut once = dm(settings(
        "concurrent = 1",
        "",
        "IdleCount = 3\nIdleTime = 600",
    ));
    for _ in 0..3 {
        seed(&mut once, Idle, 0, 0);
    }
    tick(&mut once, t0());
    for job in 1..=2 {
        feed(&mut once, t0().plus_secs(1), EventKind::JobArrived { job });
    }
    assert_eq!(
        started(&tick(&mut once, t0().plus_secs(3))).len(),
        1,
        "no free worker for a second"
    );
}

#[test]
fn docker_machine_on_demand_job_takes_the_first_machine_to_free() {
    let mut e = dm(settings(
        "concurrent = 5",
        "",
        "IdleCount = 0\nIdleTime = 600",
    ));
    let busy = seed(&mut e, Used, 0, 1);
    tick(&mut e, t0());
    feed(&mut e, t0().plus_secs(1), EventKind::JobArrived { job: 1 });
    let a = tick(&mut e, t0().plus_secs(3));
    let made = created(&a);
    assert_eq!(made.len(), 1);
    assert_eq!(e.jobs().awaiting(), 1);
    let running = e
        .jobs()
        .iter()
        .find(|(_, s)| matches!(s, scalecast::core::jobs::JobState::Running(m) if *m == busy))
        .unwrap()
        .0;
    let a = feed(
        &mut e,
        t0().plus_secs(5),
        EventKind::JobFinished { job: running },
    );
    assert_eq!(
        started(&a),
        vec![(1, busy)],
        "the freed machine, before its own"
    );
    ready_and_left_idle(&mut e, made[0]);
}

#[test]
fn docker_machine_with_every_worker_busy_defers_its_poll() {
    let mut e = dm(settings(
        "concurrent = 1",
        "",
        "IdleCount = 0\nIdleTime = 600",
    ));
    seed(&mut e, Used, 0, 1);
    tick(&mut e, t0());
    assert_eq!(
        e.poll_timeout(),
        None,
        "no free worker, nothing to wake for"
    );
    feed(&mut e, t0().plus_secs(1), EventKind::JobArrived { job: 1 });
    let running = e
        .jobs()
        .iter()
        .find(|(_, s)| matches!(s, scalecast::core::jobs::JobState::Running(_)))
        .unwrap()
        .0;
    let a = feed(
        &mut e,
        t0().plus_secs(8),
        EventKind::JobFinished { job: running },
    );
    assert_eq!(
        started(&a).len(),
        1,
        "the deferred poll runs as the worker frees"
    );
}

#[test]
fn docker_machine_poll_under_limit_decides_nothing_and_a_job_end_does_not_poll() {
    // limit 1 < concurrent 5: the worker checks `limit` before the provider (acquireBuild),
    // so while the one job runs a poll neither creates nor removes, and the feeder never
    // blocks: the job's end waits for the next poll of the grid.
    let mut e = dm(settings(
        "concurrent = 5\ncheck_interval = 10",
        "limit = 1",
        "IdleCount = 0\nIdleTime = 600",
    ));
    let busy = seed(&mut e, Used, 0, 1);
    let job = e.fleet().get(busy).unwrap().job.unwrap();
    tick(&mut e, t0());
    assert_eq!(
        e.poll_timeout(),
        Some(t0().plus_secs(10)),
        "the feeder keeps ticking"
    );
    feed(&mut e, t0().plus_secs(1), EventKind::JobArrived { job: 1 });
    let a = tick(&mut e, t0().plus_secs(10));
    assert!(
        a.is_empty(),
        "limit reached: that poll decides nothing: {a:?}"
    );
    let a = feed(&mut e, t0().plus_secs(12), EventKind::JobFinished { job });
    assert!(
        started(&a).is_empty() && removed(&a).is_empty(),
        "a job ending under limit does not itself cause a poll: {a:?}"
    );
    let a = tick(&mut e, t0().plus_secs(20));
    assert_eq!(
        started(&a),
        vec![(1, busy)],
        "the next poll of the grid takes it"
    );
}

#[test]
fn docker_machine_blocked_feeder_hands_over_when_a_worker_frees_then_sleeps_an_interval() {
    let mut e = dm(settings(
        "concurrent = 1\ncheck_interval = 10",
        "",
        "IdleCount = 1\nIdleTime = 600",
    ));
    let busy = seed(&mut e, Used, 0, 1);
    let job = e.fleet().get(busy).unwrap().job.unwrap();
    seed(&mut e, Idle, 0, 0);
    tick(&mut e, t0());
    assert_eq!(e.poll_timeout(), None, "blocked: every worker is busy");
    feed(&mut e, t0().plus_secs(1), EventKind::JobArrived { job: 1 });
    // A bare tick while blocked changes nothing and moves no poll.
    assert!(tick(&mut e, t0().plus_secs(2)).is_empty());
    assert_eq!(e.poll_timeout(), None);
    let a = feed(&mut e, t0().plus_secs(7), EventKind::JobFinished { job });
    assert_eq!(
        started(&a).len(),
        1,
        "the hand-over is taken as the worker frees"
    );
    // The feeder sleeps a full interval after the hand-over, then blocks again.
    assert_eq!(e.poll_timeout(), Some(t0().plus_secs(17)));
    assert!(tick(&mut e, t0().plus_secs(17)).is_empty());
    assert_eq!(e.poll_timeout(), None);
}

#[test]
fn docker_machine_extra_ticks_do_not_move_the_poll_grid() {
    let make = || {
        let mut e = dm(settings(
            "concurrent = 3\ncheck_interval = 10",
            "",
            "IdleCount = 1\nIdleTime = 30",
        ));
        tick(&mut e, t0());
        e
    };
    let events = [
        (15, EventKind::MachineReady { machine: 1 }),
        (16, EventKind::JobArrived { job: 1 }),
        (17, EventKind::JobArrived { job: 2 }),
    ];
    let run = |e: &mut Engine, extra: &[i64]| {
        let mut out = Vec::new();
        let mut ticks: Vec<i64> = extra.to_vec();
        for (s, kind) in events.iter().cloned() {
            while let Some(t) = ticks.first().copied().filter(|t| *t < s) {
                ticks.remove(0);
                while let Some(d) = e.poll_timeout().filter(|d| *d <= t0().plus_secs(t)) {
                    out.extend(tick(e, d));
                }
                out.extend(tick(e, t0().plus_secs(t)));
            }
            while let Some(d) = e.poll_timeout().filter(|d| *d < t0().plus_secs(s)) {
                out.extend(tick(e, d));
            }
            out.extend(feed(e, t0().plus_secs(s), kind));
        }
        while let Some(d) = e.poll_timeout().filter(|d| *d <= t0().plus_secs(120)) {
            out.extend(tick(e, d));
        }
        out
    };
    let plain = run(&mut make(), &[]);
    let ticked = run(&mut make(), &[1, 5, 11, 15, 16, 18, 19]);
    assert!(!plain.is_empty());
    assert_eq!(plain, ticked);
}

#[test]
fn docker_machine_ignores_spot_notices() {
    let mut e = dm(settings("", "", "IdleCount = 1\nIdleTime = 600"));
    let m = seed(&mut e, Idle, 0, 0);
    let a = feed(&mut e, t0(), EventKind::SpotNotice { machine: m });
    assert!(removed(&a).is_empty());
    assert!(!e.fleet().get(m).unwrap().notice);
}

// ---- the JSON form (docs/events.md) ----

#[test]
fn events_and_actions_have_the_documented_json_form() {
    let ev: Event = serde_json::from_str(
        r#"{"at":"2026-11-25T10:00:41.250Z","event":"machine_ready","machine":3}"#,
    )
    .unwrap();
    assert_eq!(ev.kind, EventKind::MachineReady { machine: 3 });
    assert_eq!(ev.at, at("2026-11-25T10:00:41.250Z"));
    let ev: Event = serde_json::from_str(r#"{"at":1795600800000,"event":"tick"}"#).unwrap();
    assert_eq!(ev.at, at("2026-11-25T10:00:00Z"));
    assert!(
        serde_json::from_str::<Event>(
            r#"{"at":"2026-11-25T10:00:00Z","event":"job_arrived","job":1,"extra":2}"#
        )
        .is_err()
    );
    let json = r#"{"at":"2026-11-25T10:00:00Z","event":"config_reloaded","settings":{"concurrent":10,"check_interval":3,"limit":20,"max_builds":10,"max_growth_rate":0,"idle":{"IdleCount":1,"IdleCountMin":0,"IdleScaleFactor":0.0,"IdleTime":1800},"autoscaling":[{"Periods":["* * 9-17 * * mon-fri *"],"Timezone":"UTC","IdleCount":50,"IdleCountMin":0,"IdleScaleFactor":0.0,"IdleTime":3600}]}}"#;
    let ev: Event = serde_json::from_str(json).unwrap();
    let EventKind::ConfigReloaded { settings: reloaded } = &ev.kind else {
        panic!()
    };
    assert_eq!(
        reloaded
            .effective_at(at("2026-11-25T10:00:00Z"))
            .idle
            .idle_count,
        50
    );
    let back: Event = serde_json::from_str(&serde_json::to_string(&ev).unwrap()).unwrap();
    assert_eq!(back, ev);

    let mut e = sc(settings("", "", "IdleCount = 1"));
    let a = tick(&mut e, t0());
    assert_eq!(
        serde_json::to_string(&a[0]).unwrap(),
        r#"{"at":"2026-11-25T12:00:00.000Z","action":"create_machine","machine":1,"reason":{"why":"idle_pool","available":0,"target":1,"entry":null}}"#
    );
}
