//! Writing a report: the tutorial scenario (two weeks of jobs, its variants) simulated once
//! with the series a report draws, then `write_report` into a fresh folder each time: the
//! fleet, wait, cost and heatmap plots (drawn on every core) and the page that embeds them.

use criterion::{Criterion, criterion_group, criterion_main};
use scalecast::config::scenario::Scenario;
use scalecast::sim::scenario_run::{prepare, run_variant};
use scalecast::sim::series::Recorder;
use std::path::Path;

fn bench(c: &mut Criterion) {
    let sc = Scenario::load(
        Path::new("scenarios/tutorial/scenario.toml"),
        &[],
        chrono_tz::Tz::UTC,
    )
    .unwrap();
    let prepared = prepare(&sc).unwrap();
    let (start, end) = (
        sc.start.or(prepared.trace_start()).unwrap(),
        sc.end.or(prepared.trace_end()).unwrap(),
    );
    let mut results = Vec::new();
    let mut series = Vec::new();
    for v in &sc.variants {
        let mut rec = Recorder::new(start, end, sc.tz);
        let r = run_variant(&sc, &prepared, v, &mut rec, &mut |_| {}).unwrap();
        series.push(rec.finish(r.end).unwrap());
        results.push(r);
    }
    let dir = std::env::temp_dir().join(format!("scalecast-bench-report-{}", std::process::id()));
    let mut group = c.benchmark_group("report");
    group.sample_size(20);
    group.bench_function(format!("tutorial, {} variants", results.len()), |b| {
        b.iter(|| {
            let _ = std::fs::remove_dir_all(&dir);
            scalecast::report::write_report(&dir, "bench", &results, &series, &[], sc.tz).unwrap();
        })
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
