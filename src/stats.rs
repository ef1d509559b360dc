//! Quantiles in bounded memory: exact while there are few values, then a log-linear histogram
//! (values below 1,024 exact, above that within 1/128 relative), so memory stays flat however
//! long the trace.

/// Values kept exactly before switching to the histogram.
pub const EXACT_LIMIT: usize = 100_000;
const SUB_BITS: u32 = 7;
const SUB: u64 = 1 << SUB_BITS;

#[derive(Clone, Debug, Default)]
pub struct Quantiles {
    exact: Vec<u64>,
    hist: Vec<u64>,
    limit: usize,
    count: u64,
    sum: u128,
    max: u64,
    sorted: bool,
}

fn bucket_of(v: u64) -> usize {
    if v < 1024 {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros(); // >= 10
    let sub = (v >> (exp - SUB_BITS)) & (SUB - 1);
    (1024 + (exp as u64 - 10) * SUB + sub) as usize
}

fn bucket_low(b: usize) -> u64 {
    if b < 1024 {
        return b as u64;
    }
    let i = b as u64 - 1024;
    let exp = i / SUB + 10;
    let sub = i % SUB;
    (1u64 << exp) | (sub << (exp - SUB_BITS as u64))
}

impl Quantiles {
    pub fn new() -> Self {
        Self::with_limit(EXACT_LIMIT)
    }

    /// Exact up to `limit` values.
    pub fn with_limit(limit: usize) -> Self {
        Quantiles {
            limit,
            ..Default::default()
        }
    }

    pub fn add(&mut self, v: u64) {
        self.count += 1;
        self.sum += v as u128;
        self.max = self.max.max(v);
        if self.hist.is_empty() {
            self.exact.push(v);
            self.sorted = false;
            if self.exact.len() > self.limit {
                for x in std::mem::take(&mut self.exact) {
                    self.hist_add(x);
                }
            }
        } else {
            self.hist_add(v);
        }
    }

    fn hist_add(&mut self, v: u64) {
        let b = bucket_of(v);
        if self.hist.len() <= b {
            self.hist.resize(b + 1, 0);
        }
        self.hist[b] += 1;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }

    /// The value at quantile `q` (0..=1), nearest-rank; 0 when empty.
    pub fn quantile(&mut self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        if self.hist.is_empty() {
            if !self.sorted {
                self.exact.sort_unstable();
                self.sorted = true;
            }
            return self.exact[(rank - 1) as usize];
        }
        let mut seen = 0;
        for (b, &n) in self.hist.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return bucket_low(b).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_below_the_limit() {
        let mut q = Quantiles::with_limit(10);
        for v in [5, 1, 9, 3, 7] {
            q.add(v);
        }
        assert_eq!(q.quantile(0.5), 5);
        assert_eq!(q.quantile(1.0), 9);
        assert_eq!(q.quantile(0.0), 1);
        assert_eq!(q.mean(), 5.0);
    }

    #[test]
    fn histogram_within_one_percent() {
        let mut q = Quantiles::with_limit(100);
        for v in 1..=100_000u64 {
            q.add(v * 37);
        }
        let p50 = q.quantile(0.5) as f64;
        assert!((p50 / (50_000.0 * 37.0) - 1.0).abs() < 0.01, "{p50}");
        assert_eq!(q.max(), 3_700_000);
    }

    #[test]
    fn buckets_round_trip_their_low_bound() {
        for v in [0u64, 1, 1023, 1024, 1025, 5000, 1 << 40, u64::MAX / 2] {
            let b = bucket_of(v);
            assert!(bucket_low(b) <= v);
            assert_eq!(bucket_of(bucket_low(b)), b);
        }
    }
}
