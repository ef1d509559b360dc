//! A trace small enough to compute by hand: three jobs, a fixed 60 s boot, $0.36/h (one
//! hundredth of a cent a second), no storage. Every wait and the exact cost are asserted.

use scalecast::core::settings::IdleSettings;
use scalecast::core::{EngineKind, Settings, Time};
use scalecast::sim::attribution::{AttributionSpec, Rule};
use scalecast::sim::world::PriceCurve;
use scalecast::sim::{Boot, Observer, SimConfig, WorldModel, simulate};
use scalecast::trace::TraceJob;
use scalecast::trace::keys::{KeyKind, Keys};

fn world() -> WorldModel {
    WorldModel {
        instance_type: "test".into(),
        region: "test".into(),
        spot: false,
        boot: Boot::Fixed(60.0),
        create_failure_probability: 0.0,
        create_retry_seconds: 30.0,
        remove_seconds: 0.0,
        price: PriceCurve::Fixed(0.36),
        ondemand_usd_per_hour: 0.36,
        interruptions_per_hour: 0.0,
        root_size_gb: 0.0,
        ebs_usd_per_gb_month: 0.08,
        pickup_seconds: 0.0,
        notes: vec![],
    }
}

fn t(s: f64) -> Time {
    Time::parse_rfc3339("2026-11-25T10:00:00Z")
        .unwrap()
        .plus_millis((s * 1000.0) as i64)
}

fn trace() -> Vec<TraceJob> {
    vec![
        TraceJob {
            id: 1,
            arrival: t(0.0),
            duration_ms: 300_000,
            queued_ms: None,
        },
        TraceJob {
            id: 2,
            arrival: t(100.0),
            duration_ms: 250_000,
            queued_ms: None,
        },
        TraceJob {
            id: 3,
            arrival: t(1000.0),
            duration_ms: 100_000,
            queued_ms: None,
        },
    ]
}

#[derive(Default)]
struct Waits(Vec<(u64, i64, Time)>);
impl Observer for Waits {
    fn job_done(&mut self, id: u64, _arrival: Time, start: Time, _end: Time, wait_ms: i64) {
        self.0.push((id, wait_ms, start));
    }
}

fn run(idle_count: u32, idle_time: u64) -> (scalecast::sim::VariantResult, Vec<(u64, i64, Time)>) {
    let cfg = SimConfig {
        name: "hand".into(),
        settings: Settings {
            concurrent: 10,
            idle: IdleSettings {
                idle_count,
                idle_time,
                ..Default::default()
            },
            ..Settings::default()
        },
        engine: EngineKind::Scalecast,
        world: world(),
        seed: 1,
        start: None,
        end: None,
        tz: chrono_tz::Tz::UTC,
        attribution: None,
    };
    let mut obs = Waits::default();
    let mut arrivals = trace().into_iter().map(Ok);
    let r = simulate(&cfg, &mut arrivals, &mut obs, &mut |_| {}).unwrap();
    let mut w = obs.0;
    w.sort();
    (r, w)
}

/// A run with no observer.
fn quiet(
    cfg: &SimConfig,
    arrivals: &mut dyn Iterator<Item = scalecast::trace::TraceResult<TraceJob>>,
) -> scalecast::sim::VariantResult {
    simulate(cfg, arrivals, &mut scalecast::sim::NoObserver, &mut |_| {}).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn idle_count_zero_every_job_waits_for_its_own_machine() {
    let (r, waits) = run(0, 0);
    // M1 0..360.001 (A 60..360, removed 1 ms after it idles), M2 100..410.001 (B 160..410),
    // M3 1000..1160 (C 1060..1160; the run ends when C finishes, M3 billed to then).
    assert_eq!(
        waits,
        vec![
            (1, 60_000, t(60.0)),
            (2, 60_000, t(160.0)),
            (3, 60_000, t(1060.0))
        ]
    );
    assert!(close(r.cost_usd, 830.002 * 0.0001), "{}", r.cost_usd);
    assert!(close(r.cost.on_demand_usd, r.cost_usd));
    assert_eq!(r.machines_created, 3);
    assert_eq!((r.jobs, r.jobs_unfinished), (3, 0));
    assert_eq!(r.end, t(1160.0));
    assert!(close(r.wait_s.mean, 60.0) && close(r.wait_s.max, 60.0));
    assert!(close(r.machine_hours.busy * 3600.0, 650.0));
    assert!(close(r.machine_hours.booting * 3600.0, 180.0));
    // The day's cost splits by what the machines were doing: 180 s booting, 650 s busy,
    // 0.002 s idle (the millisecond before each removal).
    let d = &r.per_day[0];
    assert!(close(d.booting_usd, 180.0 * 0.0001));
    assert!(close(d.busy_usd, 650.0 * 0.0001));
    assert!(close(d.idle_usd, 0.002 * 0.0001));
    assert!(close(
        d.busy_usd + d.idle_usd + d.booting_usd + d.removing_usd + d.storage_usd,
        d.cost_usd
    ));
}

#[test]
fn idle_count_one_keeps_a_warm_machine() {
    let (r, waits) = run(1, 600);
    // M1 0..960.001, M2 60..1100 (alive at the end), M3 120..780.001, M4 1000..1100.
    assert_eq!(
        waits,
        vec![
            (1, 60_000, t(60.0)),
            (2, 20_000, t(120.0)),
            (3, 0, t(1000.0))
        ]
    );
    assert!(close(r.cost_usd, 2760.002 * 0.0001), "{}", r.cost_usd);
    assert_eq!(r.machines_created, 4);
    assert_eq!(r.per_day.len(), 1);
    assert!(close(r.per_day[0].cost_usd, r.cost_usd));
    assert!(close(r.wait_s.p50, 20.0));
}

#[test]
fn sixty_second_minimum_is_billed() {
    // One job of 1 s on a machine that boots in 0 s and is removed at once: billed 60 s.
    let cfg = SimConfig {
        name: "min".into(),
        settings: Settings {
            concurrent: 1,
            ..Settings::default()
        },
        engine: EngineKind::Scalecast,
        world: WorldModel {
            boot: Boot::Fixed(0.0),
            ..world()
        },
        seed: 1,
        start: None,
        end: Some(t(3600.0)),
        tz: chrono_tz::Tz::UTC,
        attribution: None,
    };
    let mut arrivals = vec![TraceJob {
        id: 1,
        arrival: t(0.0),
        duration_ms: 1000,
        queued_ms: None,
    }]
    .into_iter()
    .map(Ok);
    let r = quiet(&cfg, &mut arrivals);
    assert!(close(r.cost_usd, 60.0 * 0.0001), "{}", r.cost_usd);
}

/// Two jobs on one machine, every job its own key: A (0 s, 300 s long) boots M1 (60 s) and
/// runs 60..360; M1 idles until B (400 s, 100 s long) takes it, 400..500; M1 idles again and
/// is removed when IdleTime (300 s) runs out, at 800; the window ends at 1000.
fn attributed(rule: Rule, jobs: &[(u64, f64, i64)]) -> (scalecast::sim::VariantResult, Vec<f64>) {
    let mut keys = Keys::new(KeyKind::Job);
    for (id, _, _) in jobs {
        keys.insert(*id, Some(&id.to_string()));
    }
    let cfg = SimConfig {
        name: "attributed".into(),
        settings: Settings {
            concurrent: 10,
            idle: IdleSettings {
                idle_count: 0,
                idle_time: 300,
                ..Default::default()
            },
            ..Settings::default()
        },
        engine: EngineKind::Scalecast,
        world: world(),
        seed: 1,
        start: Some(t(0.0)),
        end: Some(t(1000.0)),
        tz: chrono_tz::Tz::UTC,
        attribution: Some(AttributionSpec {
            keys: std::sync::Arc::new(keys),
            rule,
        }),
    };
    let mut arrivals = jobs.iter().map(|&(id, at, secs)| {
        Ok(TraceJob {
            id,
            arrival: t(at),
            duration_ms: secs * 1000,
            queued_ms: None,
        })
    });
    let r = quiet(&cfg, &mut arrivals);
    let by = r.by.clone().unwrap();
    let cost = jobs
        .iter()
        .map(|(id, _, _)| {
            by.keys
                .iter()
                .find(|k| k.key == id.to_string())
                .map_or(0.0, |k| k.cost_usd)
        })
        .collect();
    (r, cost)
}

#[test]
fn a_job_alone_on_a_fresh_machine_carries_its_whole_cost() {
    for rule in [Rule::NextJob, Rule::Spread] {
        let (r, cost) = attributed(rule, &[(1, 0.0, 300)]);
        // M1 lives 0..660.001 (boot 60, busy 300, idle 300, removed): all of it is job 1's.
        assert!(close(r.cost_usd, 660.001 * 0.0001), "{}", r.cost_usd);
        assert!(close(cost[0], r.cost_usd), "{rule:?}: {cost:?}");
    }
}

#[test]
fn idle_time_goes_to_the_next_job_and_the_rest_by_busy_cost() {
    // The worked example of docs/attribution.md. M1: booting 0..60 ($0.006), A 60..360
    // ($0.030), idle 360..400 ($0.004), B 400..500 ($0.010), idle 500..800.001 ($0.0300001).
    let jobs = [(1, 0.0, 300), (2, 400.0, 100)];
    let (r, cost) = attributed(Rule::NextJob, &jobs);
    assert!(close(r.cost_usd, 800.001 * 0.0001), "{}", r.cost_usd);
    // A: its boot and its run; B: the idle time before it and its run; the idle time after B
    // nobody took: 3/4 to A, 1/4 to B (their busy dollars, 0.030 and 0.010).
    let tail = 300.001 * 0.0001;
    assert!(close(cost[0], 0.006 + 0.030 + tail * 0.75), "{cost:?}");
    assert!(close(cost[1], 0.004 + 0.010 + tail * 0.25), "{cost:?}");
    // spread: every idle and booting dollar by busy cost.
    let (r, cost) = attributed(Rule::Spread, &jobs);
    let idle = 0.006 + 0.004 + tail;
    assert!(close(cost[0], 0.030 + idle * 0.75), "{cost:?}");
    assert!(close(cost[1], 0.010 + idle * 0.25), "{cost:?}");
    assert!(close(cost[0] + cost[1], r.cost_usd));
}
