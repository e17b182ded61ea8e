//! A small log-linear latency histogram in microseconds: exact below 128 µs, then 128 buckets per
//! power of two (a reported percentile is within 0.4% of a recorded value). It takes a few KiB
//! however many values are recorded, so a thousand watchers can each keep one, and histograms
//! merge by adding counts. (hdrhistogram would do too, but this is all we need of it.)

/// Sub-buckets per power of two, as a power of two.
const SUB_BITS: u32 = 7;
const SUB: u64 = 1 << SUB_BITS;

/// Counts of values in microseconds.
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    sum: u128,
    min: u64,
    max: u64,
}

fn index_of(value: u64) -> usize {
    if value < SUB {
        return value as usize;
    }
    let exponent = 63 - value.leading_zeros(); // >= SUB_BITS
    let group = (exponent - SUB_BITS + 1) as u64;
    let sub = (value >> (exponent - SUB_BITS)) - SUB;
    (group * SUB + sub) as usize
}

/// The smallest and largest value that land in bucket `index`.
fn bounds_of(index: usize) -> (u64, u64) {
    let index = index as u64;
    if index < SUB {
        return (index, index);
    }
    let group = index >> SUB_BITS;
    let sub = index & (SUB - 1);
    let shift = group - 1;
    let low = (sub + SUB) << shift;
    (low, low + ((1u64 << shift) - 1))
}

impl Histogram {
    /// Records one value.
    pub fn record(&mut self, micros: u64) {
        let index = index_of(micros);
        if index >= self.counts.len() {
            self.counts.resize(index + 1, 0);
        }
        self.counts[index] += 1;
        if self.total == 0 || micros < self.min {
            self.min = micros;
        }
        self.max = self.max.max(micros);
        self.total += 1;
        self.sum += u128::from(micros);
    }

    /// Records a duration.
    pub fn record_duration(&mut self, duration: std::time::Duration) {
        self.record(u64::try_from(duration.as_micros()).unwrap_or(u64::MAX));
    }

    /// Adds `other`'s counts.
    pub fn merge(&mut self, other: &Histogram) {
        if other.total == 0 {
            return;
        }
        if other.counts.len() > self.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        if self.total == 0 || other.min < self.min {
            self.min = other.min;
        }
        self.max = self.max.max(other.max);
        self.total += other.total;
        self.sum += other.sum;
    }

    /// How many values.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The largest value, exactly.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The smallest value, exactly.
    pub fn min(&self) -> u64 {
        self.min
    }

    /// The arithmetic mean.
    pub fn mean(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum as f64 / self.total as f64
        }
    }

    /// The nearest-rank percentile `q` (0 < q ≤ 100): the smallest recorded value such that at
    /// least q% of the values are at or below it, to within its bucket's width (the bucket
    /// midpoint, clamped to the exact min and max). 0 when empty.
    pub fn percentile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q / 100.0) * self.total as f64)
            .ceil()
            .clamp(1.0, self.total as f64) as u64;
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let (low, high) = bounds_of(index);
                return (low + (high - low) / 2).clamp(self.min, self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_tight() {
        let mut expected_low = 0;
        for index in 0..(SUB as usize * 40) {
            let (low, high) = bounds_of(index);
            assert_eq!(low, expected_low, "bucket {index}");
            assert!(high >= low);
            // Relative width below 1/SUB.
            assert!(
                (high - low) as f64 <= low as f64 / SUB as f64,
                "bucket {index}"
            );
            assert_eq!(index_of(low), index);
            assert_eq!(index_of(high), index);
            expected_low = high + 1;
        }
        assert_eq!(bounds_of(index_of(u64::MAX)).1, u64::MAX);
    }

    #[test]
    fn exact_percentiles_for_small_values() {
        let mut h = Histogram::default();
        for v in 1..=100 {
            h.record(v);
        }
        assert_eq!(
            (h.percentile(50.0), h.percentile(90.0), h.percentile(99.0)),
            (50, 90, 99)
        );
        assert_eq!((h.percentile(100.0), h.max(), h.min()), (100, 100, 1));
        assert_eq!(h.percentile(0.0), 1);
        assert!((h.mean() - 50.5).abs() < 1e-9);
    }

    #[test]
    fn nearest_rank_on_few_values() {
        let mut h = Histogram::default();
        for v in [5, 1, 3] {
            h.record(v);
        }
        // ranks: p50 → ceil(1.5) = 2nd smallest; p99 → 3rd.
        assert_eq!((h.percentile(50.0), h.percentile(99.0)), (3, 5));
        assert_eq!(Histogram::default().percentile(50.0), 0);
    }

    #[test]
    fn large_values_within_relative_error() {
        let mut h = Histogram::default();
        let values: Vec<u64> = (1..=10_000).map(|i| i * 997).collect();
        for v in &values {
            h.record(*v);
        }
        for q in [50.0, 90.0, 99.0, 99.9] {
            let exact = values[((q / 100.0) * values.len() as f64).ceil() as usize - 1];
            let got = h.percentile(q);
            let error = (got as f64 - exact as f64).abs() / exact as f64;
            assert!(error < 1.0 / SUB as f64, "p{q}: {got} vs {exact}");
        }
        assert_eq!(h.max(), 9_970_000);
    }

    #[test]
    fn merging_equals_recording_together() {
        let (mut a, mut b, mut all) = (
            Histogram::default(),
            Histogram::default(),
            Histogram::default(),
        );
        for v in 0..5000u64 {
            let value = v * v % 100_003;
            if v % 3 == 0 {
                a.record(value)
            } else {
                b.record(value)
            }
            all.record(value);
        }
        a.merge(&b);
        for q in [1.0, 50.0, 90.0, 99.0, 100.0] {
            assert_eq!(a.percentile(q), all.percentile(q));
        }
        assert_eq!(
            (a.count(), a.min(), a.max()),
            (all.count(), all.min(), all.max())
        );
        let mut empty = Histogram::default();
        empty.merge(&all);
        assert_eq!(empty.min(), all.min());
    }
}
