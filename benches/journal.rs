//! Journal speed: batched appends (1,000 events a flush), single flushed appends, recovery
//! (replaying every event into the engine) and reading the machines' launches from the first
//! event on — on the crash test's workload.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use scalecast::core::{EngineKind, Event};
use scalecast::journal::workload::{Workload, crash_settings};
use scalecast::journal::{Header, Journal};
use std::path::PathBuf;

fn events(n: usize) -> Vec<Event> {
    let (settings, start) = crash_settings();
    let mut w = Workload::new(1, EngineKind::Scalecast, settings, start);
    (0..n).map(|_| w.next_event()).collect()
}

fn fresh(name: &str, i: u64) -> (PathBuf, Journal) {
    let dir =
        std::env::temp_dir().join(format!("scalecast-bench-{}-{name}-{i}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (settings, start) = crash_settings();
    let mut h = Header::new(EngineKind::Scalecast, settings, start, None);
    h.snapshot_every = u64::MAX;
    let j = Journal::create(&dir, h).unwrap();
    (dir, j)
}

/// Closes a journal and removes its folder when dropped (outside the timed part).
struct Cleanup(PathBuf, Option<Journal>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.1.take();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn bench(c: &mut Criterion) {
    let evs = events(100_000);
    let mut g = c.benchmark_group("journal");
    g.sample_size(10);

    g.throughput(Throughput::Elements(evs.len() as u64));
    let mut i = 0;
    for size in [1000usize, 10_000] {
        g.bench_function(format!("append_batches_of_{size}_flushed"), |b| {
            b.iter_batched(
                || {
                    i += 1;
                    fresh("batch", i)
                },
                |(dir, mut j)| {
                    for chunk in evs.chunks(size) {
                        j.append_batch(chunk).unwrap();
                    }
                    Cleanup(dir, Some(j)) // closed and removed after the timing
                },
                BatchSize::PerIteration,
            )
        });
    }

    let single = &evs[..200];
    g.throughput(Throughput::Elements(single.len() as u64));
    g.bench_function("append_single_flushed", |b| {
        b.iter_batched(
            || {
                i += 1;
                fresh("single", i)
            },
            |(dir, mut j)| {
                for e in single {
                    j.append(e).unwrap().unwrap();
                }
                Cleanup(dir, Some(j))
            },
            BatchSize::PerIteration,
        )
    });

    let (dir, mut j) = fresh("replay", 0);
    for chunk in evs.chunks(5000) {
        j.append_batch(chunk).unwrap();
    }
    drop(j);
    g.throughput(Throughput::Elements(evs.len() as u64));
    g.bench_function("recover_by_replaying_every_event", |b| {
        b.iter(|| {
            let (j, rec) = Journal::open(&dir).unwrap();
            assert_eq!(rec.replayed, evs.len() as u64);
            j.last_seq()
        })
    });
    // What a restarting daemon reads for its machines' types when its oldest machine is as
    // old as the journal: every event from the first on.
    let (j, _) = Journal::open(&dir).unwrap();
    let first = evs[0].at;
    g.bench_function("read_launches_from_the_first_event", |b| {
        b.iter(|| j.log().launches_since(first, |_| true).unwrap().len())
    });
    drop(j);
    let _ = std::fs::remove_dir_all(dir);
    g.finish();
}

criterion_group! {
    name = benches;
    // No HTML plots: they need system fonts, which this project does not assume.
    config = Criterion::default().without_plots();
    targets = bench
}
criterion_main!(benches);
