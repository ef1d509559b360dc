//! Every case of spec section 5, as written there. Engine docker-machine unless stated.

mod common;
use common::*;
use scalecast::core::fleet::MachineState::{Idle, Used};
use scalecast::core::{EventKind, RemoveReason};

#[test]
fn case1_growth_rate_one_creates_exactly_one_machine_and_requests_no_job() {
    let mut e = dm(settings(
        "",
        "limit = 10",
        "IdleCount = 2\nIdleTime = 1800\nMaxGrowthRate = 1",
    ));
    e.handle(&scalecast::core::Event::new(
        t0(),
        EventKind::JobArrived { job: 1 },
    ))
    .unwrap();
    let actions: Vec<_> = e.drain_actions().collect();
    assert_eq!(created(&actions).len(), 1);
    assert!(started(&actions).is_empty());
    assert_eq!(e.jobs().waiting(), 1, "the job was not requested");
    assert_eq!(e.jobs().awaiting(), 0);
}

#[test]
fn case2_limit_caps_creation_then_lowered_limit_keeps_first_two() {
    let mut e = dm(settings("", "limit = 5", "IdleCount = 10\nIdleTime = 5"));
    let a = tick(&mut e, t0());
    assert_eq!(created(&a).len(), 5);

    let mut e = dm(settings("", "limit = 2", "IdleCount = 10\nIdleTime = 5"));
    let ids: Vec<u64> = (0..8).map(|_| seed(&mut e, Idle, 0, 0)).collect();
    let a = tick(&mut e, t0());
    let r = removed(&a);
    assert_eq!(r.len(), 6);
    assert_eq!(r.iter().map(|x| x.0).collect::<Vec<_>>(), ids[2..].to_vec());
    assert!(
        r.iter()
            .all(|(_, why)| matches!(why, RemoveReason::TooManyMachines { .. }))
    );
    assert!(created(&a).is_empty());
}

#[test]
fn case3_third_idle_machine_past_idle_time_is_removed() {
    let mut e = dm(settings("", "", "IdleCount = 2\nIdleTime = 10"));
    let ids: Vec<u64> = (0..3).map(|_| seed(&mut e, Idle, 60, 0)).collect();
    let a = tick(&mut e, t0());
    let r = removed(&a);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].0, ids[2]);
    assert!(matches!(r[0].1, RemoveReason::TooManyIdleMachines { .. }));
}

#[test]
fn case4_on_demand_two_polls_request_and_create_third_requests_nothing() {
    let mut e = dm(settings(
        "concurrent = 10",
        "limit = 2",
        "IdleCount = 0\nIdleTime = 1",
    ));
    assert!(tick(&mut e, t0()).is_empty());
    for job in 1..=3 {
        assert!(feed(&mut e, t0().plus_secs(1), EventKind::JobArrived { job }).is_empty());
    }
    let a = tick(&mut e, t0().plus_secs(3));
    assert_eq!(created(&a).len(), 2, "two polls, one machine each");
    assert_eq!(e.jobs().awaiting(), 2, "two jobs requested");
    assert_eq!(e.jobs().waiting(), 1);
    let a = feed(
        &mut e,
        t0().plus_secs(30),
        EventKind::MachineReady { machine: 1 },
    );
    assert_eq!(started(&a), vec![(1, 1)]);
    let a = feed(
        &mut e,
        t0().plus_secs(31),
        EventKind::MachineReady { machine: 2 },
    );
    assert_eq!(started(&a), vec![(2, 2)]);
    assert_eq!(e.fleet().counts().used, 2);
    let a = tick(&mut e, t0().plus_secs(60));
    assert!(a.is_empty(), "third poll requests nothing: {a:?}");
    assert_eq!(e.jobs().waiting(), 1);
}

#[test]
fn case5_scale_factor_target() {
    let m = "IdleCount = 100\nIdleCountMin = 10\nIdleScaleFactor = 1.1";
    let mut e = dm(settings("concurrent = 100", "limit = 200", m));
    for _ in 0..5 {
        seed(&mut e, Idle, 0, 0);
    }
    for _ in 0..10 {
        seed(&mut e, Used, 0, 1);
    }
    assert_eq!(created(&tick(&mut e, t0())).len(), 6, "T = 11");

    let mut e = dm(settings("concurrent = 1000", "limit = 200", m));
    for _ in 0..90 {
        seed(&mut e, Idle, 0, 0);
    }
    for _ in 0..100 {
        seed(&mut e, Used, 0, 1);
    }
    assert_eq!(created(&tick(&mut e, t0())).len(), 10, "T = min(100, 110)");
}

#[test]
fn case6_used_first_then_idle_keeps_22_available_removes_78() {
    let m = "IdleCount = 100\nIdleCountMin = 10\nIdleScaleFactor = 1.1\nIdleTime = 1800";
    let mut e = dm(settings("concurrent = 1000", "limit = 200", m));
    for _ in 0..20 {
        seed(&mut e, Used, 0, 1);
    }
    for _ in 0..100 {
        seed(&mut e, Idle, 7200, 0);
    }
    let a = tick(&mut e, t0());
    assert_eq!(removed(&a).len(), 78);
    assert_eq!(e.fleet().counts().available(), 22);
    assert!(created(&a).is_empty());
}

#[test]
fn case7_max_builds_machine_removed_on_release() {
    let mut e = dm(settings(
        "",
        "",
        "IdleCount = 1\nMaxBuilds = 2\nIdleTime = 600",
    ));
    let m = seed(&mut e, Idle, 0, 1);
    feed(&mut e, t0(), EventKind::JobArrived { job: 9 });
    assert_eq!(e.fleet().get(m).unwrap().uses, 2);
    let a = feed(
        &mut e,
        t0().plus_secs(100),
        EventKind::JobFinished { job: 9 },
    );
    let r = removed(&a);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].0, m);
    assert!(matches!(
        r[0].1,
        RemoveReason::TooManyBuilds {
            uses: 2,
            max_builds: 2
        }
    ));
}

const CASE8: &str = r#"IdleCount = 10
IdleTime = 1800
[[runners.machine.autoscaling]]
Periods = ["* * 9-17 * * mon-fri *"]
IdleCount = 50
IdleTime = 3600
Timezone = "UTC"
[[runners.machine.autoscaling]]
Periods = ["* * * * * sat,sun *"]
IdleCount = 5
IdleTime = 60
Timezone = "UTC"
"#;

#[test]
fn case8_periods_weekday_weekend_and_outside() {
    let s = settings("", "", CASE8);
    let wed10 = s.effective_at(at("2026-11-25T10:00:00Z"));
    assert_eq!((wed10.idle.idle_count, wed10.idle.idle_time), (50, 3600));
    let sat10 = s.effective_at(at("2026-11-28T10:00:00Z"));
    assert_eq!((sat10.idle.idle_count, sat10.idle.idle_time), (5, 60));
    let wed18 = s.effective_at(at("2026-11-25T18:00:00Z"));
    assert_eq!((wed18.idle.idle_count, wed18.idle.idle_time), (10, 1800));
    assert_eq!(wed18.entry, None);
}

#[test]
fn case9_last_matching_entry_wins() {
    let a = "[[runners.machine.autoscaling]]\nPeriods = [\"* * * * * * *\"]\nIdleCount = 1\nTimezone = \"UTC\"\n";
    let b = "[[runners.machine.autoscaling]]\nPeriods = [\"* * 9-17 * * mon-fri *\"]\nIdleCount = 5\nTimezone = \"UTC\"\n";
    let monday10 = at("2026-11-23T10:00:00Z");
    let s = settings("", "", &format!("{a}{b}"));
    assert_eq!(s.effective_at(monday10).idle.idle_count, 5);
    let s = settings("", "", &format!("{b}{a}"));
    assert_eq!(s.effective_at(monday10).idle.idle_count, 1);
    assert_eq!(
        s.effective_at(at("2026-11-28T10:00:00Z")).idle.idle_count,
        1
    );
    assert_eq!(
        s.next_change(monday10, at("2027-11-23T10:00:00Z")),
        None,
        "always 1"
    );
}

#[test]
fn case10_berlin_time_zone_follows_dst() {
    let m = "[[runners.machine.autoscaling]]\nPeriods = [\"* * 10-17 * * * *\"]\nIdleCount = 7\nTimezone = \"Europe/Berlin\"\n";
    let s = settings("", "", m);
    let active = |t: &str| s.effective_at(at(t)).entry == Some(0);
    assert!(active("2017-01-01T16:30:00Z"), "17:30 CET");
    assert!(!active("2017-07-01T16:30:00Z"), "18:30 CEST");
    assert!(active("2017-01-01T14:30:00Z"));
    assert!(active("2017-07-01T14:30:00Z"));
    assert!(!active("2017-01-01T20:30:00Z"));
    assert!(!active("2017-07-01T20:30:00Z"));
}

#[test]
fn case11_one_to_five_is_monday_to_friday() {
    let m = "[[runners.machine.autoscaling]]\nPeriods = [\"* * * * * 1-5 *\"]\nIdleCount = 3\nTimezone = \"UTC\"\n";
    let s = settings("", "", m);
    // 2026-11-22 is a Sunday.
    let days = ["22", "23", "24", "25", "26", "27", "28"];
    let on: Vec<bool> = days
        .iter()
        .map(|d| s.effective_at(at(&format!("2026-11-{d}T12:00:00Z"))).entry == Some(0))
        .collect();
    assert_eq!(on, vec![false, true, true, true, true, true, false]);
}
