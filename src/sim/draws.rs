//! The world's random draws for each machine a run makes: how long it boots, and when its spot
//! interruption notice comes. Each comes from its own seeded stream (`Rng::derive`), one draw
//! per machine that was not a failed create, in the order the machines are made, so the n-th
//! machine's draws are the same whoever makes them and whenever.
//!
//! That lets a run over a trace that is still being read ([`crate::sim::scenario_run`]) have
//! them made ahead on the reading thread, which otherwise waits for the run: a lognormal boot
//! time and an exponential notice take about 450 instructions a machine. [`Ahead`] shares one
//! maker between the two threads: the reading thread adds to its ready draws whenever it looks
//! ([`Ahead::serve`]), and the run takes them all at once when its own run out, or, when none
//! are ready, makes a few itself from the same maker. The run never waits for the other
//! thread to make progress, and the draws are the same, in the same order, either way.

use crate::config::scenario::{Boot, BootSampler};
use crate::rng::Rng;
use crate::sim::WorldModel;
use std::sync::{Arc, Mutex};

/// One machine's draws.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Draw {
    /// From `create_machine` to `machine_ready`.
    pub boot_ms: i64,
    /// From `create_machine` to its spot interruption notice, when interruptions are modelled.
    pub notice_ms: Option<i64>,
}

/// The streams a run draws its machines from.
#[derive(Clone, Debug)]
pub struct MachineDraws {
    seed: u64,
    boot: Boot,
    interruptions_per_hour: f64,
    sampler: BootSampler,
    boot_rng: Rng,
    spot_rng: Rng,
}

impl MachineDraws {
    pub fn new(seed: u64, world: &WorldModel) -> Self {
        MachineDraws {
            seed,
            boot: world.boot.clone(),
            interruptions_per_hour: world.interruptions_per_hour,
            sampler: world.boot.sampler(),
            boot_rng: Rng::derive(seed, "boot"),
            spot_rng: Rng::derive(seed, "spot interruption"),
        }
    }

    /// The next machine's draws.
    #[inline]
    pub fn draw(&mut self) -> Draw {
        let boot_ms = self.sampler.draw_ms(&mut self.boot_rng);
        let notice_ms = (self.interruptions_per_hour > 0.0).then(|| {
            let hours = self.spot_rng.exp(1.0 / self.interruptions_per_hour);
            (hours * 3.6e6).min(1e15) as i64
        });
        Draw { boot_ms, notice_ms }
    }

    /// Whether these are the streams a run with `seed` in `world` draws from.
    pub fn serves(&self, seed: u64, world: &WorldModel) -> bool {
        self.seed == seed
            && self.boot == world.boot
            && self.interruptions_per_hour.to_bits() == world.interruptions_per_hour.to_bits()
    }
}

/// Draws made ahead by the reading thread are kept up to this many (the run may take a few
/// thousand between two of its looks, when many machines are made at once).
const READY_MAX: usize = 4096;
/// Draws made at each look, and by the run itself when none are ready.
const BATCH: usize = 256;

struct Shared {
    maker: MachineDraws,
    ready: Vec<Draw>,
}

impl Shared {
    fn make(&mut self, n: usize) {
        for _ in 0..n {
            let d = self.maker.draw();
            self.ready.push(d);
        }
    }
}

/// A maker shared by the reading thread (which makes draws ahead) and the run (which takes
/// them): clones are handles to the same maker.
#[derive(Clone)]
pub struct Ahead {
    shared: Arc<Mutex<Shared>>,
}

impl Ahead {
    pub fn new(maker: MachineDraws) -> Self {
        Ahead {
            shared: Arc::new(Mutex::new(Shared {
                maker,
                ready: Vec::with_capacity(READY_MAX),
            })),
        }
    }

    /// Top the ready draws up, unless the run is taking them just now.
    pub fn serve(&self) {
        if let Ok(mut s) = self.shared.try_lock() {
            while s.ready.len() + BATCH <= READY_MAX {
                s.make(BATCH);
            }
        }
    }

    /// The run's end, if these are the streams it draws from.
    pub fn taker(&self, seed: u64, world: &WorldModel) -> Option<Taker> {
        let s = self.shared.lock().ok()?;
        s.maker.serves(seed, world).then(|| Taker {
            shared: self.shared.clone(),
            local: Vec::with_capacity(READY_MAX),
            at: 0,
        })
    }
}

/// The run's end of an [`Ahead`]: draws in the maker's order.
pub struct Taker {
    shared: Arc<Mutex<Shared>>,
    local: Vec<Draw>,
    at: usize,
}

impl Taker {
    #[inline]
    pub fn draw(&mut self) -> Draw {
        if self.at == self.local.len() {
            self.take();
        }
        let d = self.local[self.at];
        self.at += 1;
        d
    }

    /// Take every ready draw, or make a batch here when none are ready.
    #[cold]
    #[inline(never)]
    fn take(&mut self) {
        self.local.clear();
        self.at = 0;
        let mut s = match self.shared.lock() {
            Ok(s) => s,
            // The reading thread panicked while making draws: the maker is whole (a draw is
            // pushed only once made), so go on with it.
            Err(poisoned) => poisoned.into_inner(),
        };
        if s.ready.is_empty() {
            s.make(BATCH);
        }
        std::mem::swap(&mut s.ready, &mut self.local);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world(boot: Boot, per_hour: f64) -> WorldModel {
        let mut w =
            WorldModel::resolve("m5.large", "us-east-1", true, 30.0, &Default::default()).unwrap();
        w.boot = boot;
        w.interruptions_per_hour = per_hour;
        w
    }

    /// Whatever the reading thread makes ahead and whenever, the run takes the draws the
    /// maker alone would give, in order: with notices and without, from every kind of boot.
    #[test]
    fn draws_taken_are_the_makers_in_order_however_they_were_made() {
        let mut rng = Rng::new(3);
        for (boot, per_hour) in [
            (
                Boot::LogNormal {
                    median: 90.0,
                    p95: 180.0,
                },
                0.01,
            ),
            (Boot::Fixed(60.0), 0.0),
            (Boot::Samples(vec![30.0, 45.5, 61.25]), 0.2),
        ] {
            let w = world(boot, per_hour);
            let mut alone = MachineDraws::new(9, &w);
            let ahead = Ahead::new(MachineDraws::new(9, &w));
            let mut taker = ahead.taker(9, &w).expect("the same streams");
            assert!(ahead.taker(10, &w).is_none(), "another seed");
            for i in 0..20_000 {
                // The reading thread looks now and then, sometimes many times in a row.
                for _ in 0..rng.below(3) {
                    ahead.serve();
                }
                let want = alone.draw();
                assert_eq!(want.notice_ms.is_some(), per_hour > 0.0);
                assert_eq!(taker.draw(), want, "machine {i}");
            }
        }
    }

    /// Made on another thread at the same time, the draws are still the maker's, in order.
    #[test]
    fn draws_made_on_another_thread_are_the_same() {
        let w = world(
            Boot::LogNormal {
                median: 90.0,
                p95: 180.0,
            },
            0.05,
        );
        let mut alone = MachineDraws::new(4, &w);
        let want: Vec<Draw> = (0..50_000).map(|_| alone.draw()).collect();
        let ahead = Ahead::new(MachineDraws::new(4, &w));
        let mut taker = ahead.taker(4, &w).unwrap();
        let done = std::sync::atomic::AtomicBool::new(false);
        let got = std::thread::scope(|s| {
            s.spawn(|| {
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    ahead.serve();
                }
            });
            let got: Vec<Draw> = (0..want.len()).map(|_| taker.draw()).collect();
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            got
        });
        assert!(got == want, "the draws differ");
    }
}
