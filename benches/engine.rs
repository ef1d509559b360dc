//! Events per second through the `scalecast` engine with 1,000 machines in the fleet, in one
//! thread. The event stream is a steady state: jobs arrive, start on idle machines, finish.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use scalecast::core::fleet::MachineState;
use scalecast::core::settings::IdleSettings;
use scalecast::core::{Engine, EngineKind, Event, EventKind, Settings, Time};
use std::hint::black_box;

const MACHINES: u32 = 1_000;
const EVENTS: u64 = 200_000;

fn fleet(kind: EngineKind) -> Engine {
    let settings = Settings {
        concurrent: 2_000,
        limit: 1_200,
        idle: IdleSettings {
            idle_count: MACHINES / 2,
            idle_time: 1_800,
            ..Default::default()
        },
        ..Settings::default()
    };
    let start = Time::parse_rfc3339("2026-11-23T00:00:00Z").unwrap();
    let mut e = Engine::new(kind, settings, start);
    for i in 0..MACHINES {
        let state = if i % 2 == 0 {
            MachineState::Idle
        } else {
            MachineState::Used
        };
        e.seed_machine(state, 0, 0, Some(1_000_000_000 + i as u64))
            .unwrap();
    }
    e.handle(&Event::new(start, EventKind::Tick)).unwrap();
    e.drain_actions().for_each(drop);
    e
}

/// Arrivals and completions interleaved so about half the fleet stays busy.
fn events(start: Time) -> Vec<Event> {
    let mut out = Vec::with_capacity(EVENTS as usize);
    let mut t = start;
    let mut next_job = 1u64;
    let mut running = std::collections::VecDeque::new();
    for i in 0..EVENTS {
        t = t.plus_millis(7);
        if i % 2 == 0 || running.is_empty() {
            out.push(Event::new(t, EventKind::JobArrived { job: next_job }));
            running.push_back(next_job);
            next_job += 1;
        } else {
            let job = running.pop_front().unwrap();
            out.push(Event::new(t, EventKind::JobFinished { job }));
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(EVENTS));
    g.sample_size(20);
    let base = fleet(EngineKind::Scalecast);
    let evs = events(base.now());
    g.bench_function("scalecast_1000_machines", |b| {
        b.iter_batched(
            || base.clone(),
            |mut e| {
                for ev in &evs {
                    e.handle(ev).unwrap();
                    for a in e.drain_actions() {
                        black_box(a);
                    }
                }
                black_box(e.poll_timeout())
            },
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();

    // Every period change over a year, tutorial-style weekday and weekend entries.
    let mut settings = Settings::default();
    let entry = |p: &str, n: u32| scalecast::core::AutoscalingEntry {
        periods: vec![scalecast::core::cron::CronExpr::parse(p).unwrap()],
        timezone: chrono_tz::Tz::Europe__Berlin,
        idle: IdleSettings {
            idle_count: n,
            ..Default::default()
        },
    };
    settings.autoscaling = vec![
        entry("* * 9-17 * * mon-fri *", 50),
        entry("* * * * * sat,sun *", 5),
    ];
    let from = Time::parse_rfc3339("2027-01-01T00:00:00Z").unwrap();
    let to = Time::parse_rfc3339("2028-01-01T00:00:00Z").unwrap();
    c.bench_function("periods/changes_over_a_year", |b| {
        b.iter(|| black_box(settings.changes(from, to)).len())
    });
}

criterion_group! {
    name = benches;
    // No HTML plots: they need system fonts, which this project does not assume.
    config = Criterion::default().without_plots();
    targets = bench
}
criterion_main!(benches);
