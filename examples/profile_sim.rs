// Profiling helper: one simulated year of synthetic load (not part of the product).
use scalecast::config::ConfigFile;
use scalecast::core::EngineKind;
use scalecast::sim::{Boot, NoObserver, SimConfig, WorldModel, WorldOverrides, simulate};
use scalecast::trace::synth::{Generator, SynthParams};
use std::path::Path;

fn main() {
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
    let sc = SimConfig {
        name: "p".into(),
        settings,
        engine: EngineKind::Scalecast,
        world,
        seed: 42,
        start: None,
        end: None,
        tz: chrono_tz::Tz::UTC,
    };
    let params = SynthParams {
        days: 365,
        jobs_per_day: 1_000_000.0 / 365.0,
        seed: 1,
        start: SynthParams::default_start(),
    };
    let mut generator = Generator::new(params);
    let mut arrivals = std::iter::from_fn(move || generator.next_job().map(Ok));
    let r = simulate(&sc, &mut arrivals, &mut NoObserver, &mut |_| {}).unwrap();
    println!(
        "{} jobs, ${:.2}, created {}",
        r.jobs, r.cost_usd, r.machines_created
    );
}
