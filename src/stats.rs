//! Quantiles in bounded memory: exact while there are few values, then a log-linear histogram,
//! so memory stays flat however long the trace. The fine histogram keeps values below 1,024
//! exact and larger ones within 1/128; the coarse one (for one day's figures) within 1/16.

/// Values kept exactly before switching to the histogram.
pub const EXACT_LIMIT: usize = 100_000;

/// The usual summary of a distribution, in the unit asked for.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Summary {
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Clone, Copy, Debug, Default)]
struct Shape {
    /// Values below `1 << exact_bits` get a bucket each.
    exact_bits: u32,
    /// Each power of two above that is split in `1 << sub_bits` buckets.
    sub_bits: u32,
}

const FINE: Shape = Shape {
    exact_bits: 10,
    sub_bits: 7,
};
const COARSE: Shape = Shape {
    exact_bits: 4,
    sub_bits: 4,
};

#[derive(Clone, Debug, Default)]
pub struct Quantiles {
    exact: Vec<u64>,
    hist: Vec<u64>,
    shape: Shape,
    limit: usize,
    count: u64,
    sum: u128,
    max: u64,
    sorted: bool,
}

fn bucket_of(v: u64, sh: Shape) -> usize {
    let exact = 1u64 << sh.exact_bits;
    if v < exact {
        return v as usize;
    }
    let sub_n = 1u64 << sh.sub_bits;
    let exp = 63 - v.leading_zeros(); // >= exact_bits >= sub_bits
    let sub = (v >> (exp - sh.sub_bits)) & (sub_n - 1);
    (exact + (exp - sh.exact_bits) as u64 * sub_n + sub) as usize
}

fn bucket_low(b: usize, sh: Shape) -> u64 {
    let exact = 1u64 << sh.exact_bits;
    if (b as u64) < exact {
        return b as u64;
    }
    let sub_n = 1u64 << sh.sub_bits;
    let i = b as u64 - exact;
    let exp = i / sub_n + sh.exact_bits as u64;
    let sub = i % sub_n;
    (1u64 << exp) | (sub << (exp - sh.sub_bits as u64))
}

impl Quantiles {
    pub fn new() -> Self {
        Self::with_limit(EXACT_LIMIT)
    }

    /// Exact up to `limit` values, then within 1/128.
    pub fn with_limit(limit: usize) -> Self {
        Quantiles {
            limit,
            shape: FINE,
            ..Default::default()
        }
    }

    /// Small: exact up to 64 values, then within 1/16 (a few hundred bytes at most).
    pub fn coarse() -> Self {
        Quantiles {
            limit: 64,
            shape: COARSE,
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
        let b = bucket_of(v, self.shape);
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

    /// Mean, p50, p90, p95, p99 and max, each divided by `unit` (1000 for ms to s).
    pub fn summary(&mut self, unit: f64) -> Summary {
        Summary {
            mean: self.mean() / unit,
            p50: self.quantile(0.5) as f64 / unit,
            p90: self.quantile(0.9) as f64 / unit,
            p95: self.quantile(0.95) as f64 / unit,
            p99: self.quantile(0.99) as f64 / unit,
            max: self.max() as f64 / unit,
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
                return bucket_low(b, self.shape).min(self.max);
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
    fn coarse_within_a_sixteenth() {
        let mut q = Quantiles::coarse();
        for v in 1..=10_000u64 {
            q.add(v * 100);
        }
        let p95 = q.quantile(0.95) as f64;
        assert!((p95 / 950_000.0 - 1.0).abs() < 1.0 / 16.0, "{p95}");
        assert!(q.hist.len() < 300);
    }

    #[test]
    fn buckets_round_trip_their_low_bound() {
        for sh in [FINE, COARSE] {
            for v in [
                0u64,
                1,
                15,
                16,
                17,
                1023,
                1024,
                1025,
                5000,
                1 << 40,
                u64::MAX / 2,
            ] {
                let b = bucket_of(v, sh);
                assert!(bucket_low(b, sh) <= v);
                assert_eq!(bucket_of(bucket_low(b, sh), sh), b);
            }
        }
    }
}
