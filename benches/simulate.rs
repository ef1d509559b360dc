//! Jobs per second of simulation: a synthetic trace of one million jobs over a year, the
//! tutorial's settings with its periods (concurrent and limit raised so the fleet can carry
//! that load), the `scalecast` engine, one thread. And the same settings over a real CSV file
//! of 100 days (about 193,000 jobs), read and checked as `simulate` reads it: the file read
//! alone, read then simulated, read and simulated at once (the baseline on a thread of its
//! own, as `simulate` runs it), and the jobs simulated alone from memory with each engine.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use scalecast::config::ConfigFile;
use scalecast::core::EngineKind;
use scalecast::sim::{Boot, NoObserver, SimConfig, WorldModel, WorldOverrides, simulate};
use scalecast::trace::synth::{Generator, SynthParams};
use std::path::Path;

const JOBS_PER_DAY: f64 = 1_000_000.0 / 365.0;

fn config() -> SimConfig {
    let cfg = ConfigFile::load(Path::new("scenarios/tutorial/config.toml")).unwrap();
    let runner = cfg.runner(None).unwrap();
    let mut settings = cfg.settings(runner, chrono_tz::Tz::UTC);
    settings.concurrent = 200;
    settings.limit = 200;
    let world = WorldModel::resolve(
        "m4.2xlarge",
        "eu-central-1",
        true,
        16.0,
        &WorldOverrides {
            boot: Some(Boot::LogNormal {
                median: 90.0,
                p95: 180.0,
            }),
            ..Default::default()
        },
    )
    .unwrap();
    SimConfig {
        name: "bench".into(),
        settings,
        engine: EngineKind::Scalecast,
        world,
        seed: 42,
        start: None,
        end: None,
        tz: chrono_tz::Tz::UTC,
        attribution: None,
    }
}

fn bench(c: &mut Criterion) {
    let cfg = config();
    let params = SynthParams {
        days: 365,
        jobs_per_day: JOBS_PER_DAY,
        seed: 1,
        start: SynthParams::default_start(),
    };
    let jobs = {
        let mut g = Generator::new(params.clone());
        std::iter::from_fn(|| g.next_job()).count() as u64
    };
    let mut g = c.benchmark_group("simulate");
    g.sample_size(10);
    g.throughput(Throughput::Elements(jobs));
    g.bench_function("year_1m_jobs_tutorial_scalecast", |b| {
        b.iter(|| {
            let mut generator = Generator::new(params.clone());
            let mut arrivals = std::iter::from_fn(move || generator.next_job().map(Ok));
            let r = simulate(&cfg, &mut arrivals, &mut NoObserver, &mut |_| {}).unwrap();
            assert_eq!(r.jobs, jobs);
            r.cost_usd
        })
    });
    g.bench_function("generate_1m_jobs_only", |b| {
        b.iter(|| {
            let mut generator = Generator::new(params.clone());
            std::iter::from_fn(move || generator.next_job()).count()
        })
    });
    g.finish();

    // A CSV file on disk, written once, as `scalecast trace synth` writes it.
    let dir = std::env::temp_dir().join(format!("scalecast-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("t100.csv");
    let p100 = SynthParams {
        days: 100,
        jobs_per_day: 1930.0,
        seed: 3,
        start: SynthParams::default_start(),
    };
    let written = scalecast::trace::synth::write_csv(
        p100,
        &mut std::io::BufWriter::new(std::fs::File::create(&csv).unwrap()),
    )
    .unwrap();
    let mut g = c.benchmark_group("csv");
    g.sample_size(20);
    g.throughput(Throughput::Elements(written));
    g.bench_function("read_and_check_100_days", |b| {
        b.iter(|| {
            scalecast::trace::TraceFile::scan(&csv)
                .unwrap()
                .summary
                .jobs
        })
    });
    g.bench_function("read_check_and_simulate_100_days", |b| {
        b.iter(|| {
            let file = scalecast::trace::TraceFile::scan(&csv).unwrap();
            let mut arrivals = file.arrivals().unwrap();
            simulate(&cfg, &mut arrivals, &mut NoObserver, &mut |_| {})
                .unwrap()
                .cost_usd
        })
    });
    // As `scalecast simulate` runs a one-variant scenario: the baseline simulated while the
    // file is read.
    let scenario = dir.join("scenario.toml");
    let config = std::env::current_dir()
        .unwrap()
        .join("scenarios/tutorial/config.toml");
    std::fs::write(
        &scenario,
        format!(
            "[runner]\nconfig = {config:?}\n[trace]\npath = \"t100.csv\"\n[sim]\nseed = 42\n[machine]\nboot_seconds = {{ median = 90, p95 = 180 }}\n"
        ),
    )
    .unwrap();
    let sets: Vec<_> = ["concurrent=200", "limit=200"]
        .iter()
        .map(|a| scalecast::config::overrides::parse_assignment(a).unwrap())
        .collect();
    let sc =
        scalecast::config::scenario::Scenario::load(&scenario, &sets, chrono_tz::Tz::UTC).unwrap();
    g.bench_function("read_and_simulate_at_once_100_days", |b| {
        use scalecast::sim::scenario_run::{prepare_overlapped, run_variant};
        b.iter(|| {
            let (_, run) = prepare_overlapped(&sc, None, |p| {
                run_variant(&sc, p, &sc.variants[0], &mut NoObserver, &mut |_| {})
            })
            .unwrap();
            run.expect("a sorted trace").unwrap().cost_usd
        })
    });
    // The jobs from memory: the simulation alone, with each engine.
    let file = scalecast::trace::TraceFile::scan(&csv).unwrap();
    for engine in [EngineKind::Scalecast, EngineKind::DockerMachine] {
        let cfg = SimConfig {
            engine,
            ..cfg.clone()
        };
        g.bench_function(format!("simulate_100_days_{}", engine.name()), |b| {
            b.iter(|| {
                let mut arrivals = file.arrivals().unwrap();
                simulate(&cfg, &mut arrivals, &mut NoObserver, &mut |_| {})
                    .unwrap()
                    .cost_usd
            })
        });
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group! {
    name = benches;
    // No HTML plots: they need system fonts, which this project does not assume.
    config = Criterion::default().without_plots();
    targets = bench
}
criterion_main!(benches);
