//! Back-off with a circuit breaker, for calls to the cloud: after a failure the next call
//! waits, doubling each time up to a ceiling, with jitter so that many managers do not retry
//! in step. Under persistent failure that is at most a few calls a minute, never a hot loop; a
//! success closes the breaker again. Time is passed in and the jitter comes from a seeded
//! stream, so a run can be replayed exactly.

use crate::core::Time;
use crate::rng::Rng;

#[derive(Clone, Debug)]
pub struct Breaker {
    rng: Rng,
    /// Failures in a row.
    failures: u32,
    /// No call before this.
    open_until: Option<Time>,
    base_ms: i64,
    max_ms: i64,
}

impl Breaker {
    /// First wait about `base_ms` (half to all of it), doubling to at most `max_ms`.
    pub fn new(seed: u64, base_ms: i64, max_ms: i64) -> Self {
        Breaker {
            rng: Rng::derive(seed, "breaker"),
            failures: 0,
            open_until: None,
            base_ms: base_ms.max(1),
            max_ms: max_ms.max(base_ms.max(1)),
        }
    }

    /// For calls to EC2: from one second to a minute.
    pub fn for_cloud(seed: u64) -> Self {
        Breaker::new(seed, 1_000, 60_000)
    }

    /// May a call go now? Else when it may.
    pub fn allow(&self, now: Time) -> Result<(), Time> {
        match self.open_until {
            Some(t) if now < t => Err(t),
            _ => Ok(()),
        }
    }

    /// The call worked: close.
    pub fn success(&mut self) {
        self.failures = 0;
        self.open_until = None;
    }

    /// The call failed (throttled or unreachable): wait before the next, longer each time.
    /// Returns when the next call may go.
    pub fn failure(&mut self, now: Time) -> Time {
        self.failures = self.failures.saturating_add(1);
        let doubling = self.failures.saturating_sub(1).min(30);
        let ceiling = self
            .base_ms
            .saturating_mul(1i64 << doubling)
            .min(self.max_ms);
        // Half of the wait is fixed, the other half drawn: never less than half the ceiling.
        let wait = ceiling / 2 + (self.rng.unit() * (ceiling - ceiling / 2) as f64) as i64;
        let until = now.plus_millis(wait.max(1));
        self.open_until = Some(until);
        until
    }

    /// Failures in a row so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_opens_it_and_a_success_closes_it() {
        let mut b = Breaker::new(1, 1_000, 60_000);
        let t = Time(0);
        assert_eq!(b.allow(t), Ok(()));
        let until = b.failure(t);
        assert!(
            until >= t.plus_millis(500) && until <= t.plus_millis(1_000),
            "{until:?}"
        );
        assert_eq!(b.allow(t.plus_millis(100)), Err(until));
        assert_eq!(b.allow(until), Ok(()));
        b.failure(until);
        b.success();
        assert_eq!(b.allow(until), Ok(()));
        assert_eq!(b.failures(), 0);
    }

    #[test]
    fn persistent_failure_means_a_few_calls_a_minute_not_a_hot_loop() {
        for seed in 0..50 {
            let mut b = Breaker::for_cloud(seed);
            let mut now = Time(0);
            let mut calls = Vec::new();
            // Call whenever allowed, for an hour; every call fails. (Bounded, so a breaker
            // that never waits fails this test instead of hanging it.)
            while now < Time(3_600_000) && calls.len() < 10_000 {
                match b.allow(now) {
                    Ok(()) => {
                        calls.push(now);
                        now = b.failure(now);
                    }
                    Err(t) => now = t,
                }
            }
            let late = calls.iter().filter(|t| t.0 >= 600_000).count();
            // After ten minutes the wait is 30 to 60 s: at most two calls a minute.
            assert!(
                late <= 2 * 50 + 1,
                "seed {seed}: {late} calls in 50 minutes"
            );
            assert!(
                calls.len() < 200,
                "seed {seed}: {} calls in an hour",
                calls.len()
            );
        }
    }

    #[test]
    fn the_same_seed_waits_the_same() {
        let run = |seed| {
            let mut b = Breaker::for_cloud(seed);
            (0..10)
                .map(|i| b.failure(Time(i * 1000)))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }
}
