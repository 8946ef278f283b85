//! Capped exponential backoff with jitter, from a seeded generator.
//!
//! Jitter matters for fleets: after a power cut thousands of devices boot together, and without it
//! they would retry in lockstep. The generator is seeded by the caller (from the kernel in the
//! agent, a fixed number in tests) so the pure flow stays deterministic under test.

use core::time::Duration;

/// SplitMix64: tiny, fast, and good enough to spread retries (not for secrets).
#[derive(Clone, Debug)]
pub struct Jitter {
    state: u64,
}

impl Jitter {
    /// A generator from `seed` (the same seed gives the same delays, for tests).
    pub fn new(seed: u64) -> Self {
        Jitter { state: seed }
    }

    /// The next 64 random bits (also used to seed a child generator).
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, max)` at millisecond resolution; zero when `max` is zero.
    pub fn below(&mut self, max: Duration) -> Duration {
        let ms = max.as_millis().min(u64::MAX as u128) as u64;
        if ms == 0 {
            return Duration::ZERO;
        }
        Duration::from_millis(self.next_u64() % ms)
    }

    /// The delay before retry number `failures` (1 for the first retry): `base · 2^(failures-1)`,
    /// capped at `cap`, then "equal jitter": half of it fixed, half random, so the spread is wide
    /// but a retry never comes sooner than half the nominal delay.
    pub fn retry_delay(&mut self, base: Duration, failures: u32, cap: Duration) -> Duration {
        let doublings = failures.saturating_sub(1).min(20);
        let nominal = base.saturating_mul(1 << doublings).min(cap.max(base));
        let half = nominal / 2;
        half + self.below(nominal - half)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_stays_in_range_and_spreads() {
        let mut j = Jitter::new(7);
        let max = Duration::from_secs(10);
        let mut seen_low = false;
        let mut seen_high = false;
        for _ in 0..1000 {
            let d = j.below(max);
            assert!(d < max);
            seen_low |= d < Duration::from_secs(1);
            seen_high |= d > Duration::from_secs(9);
        }
        assert!(seen_low && seen_high);
        assert_eq!(j.below(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn retry_delays_double_up_to_the_cap() {
        let mut j = Jitter::new(1);
        let base = Duration::from_secs(2);
        let cap = Duration::from_secs(60);
        for (failures, nominal) in [(1, 2), (2, 4), (3, 8), (4, 16), (5, 32), (6, 60), (30, 60)] {
            let d = j.retry_delay(base, failures, cap);
            let n = Duration::from_secs(nominal);
            assert!(
                d >= n / 2 && d <= n,
                "failure {failures}: {d:?} not in [{:?}, {n:?}]",
                n / 2
            );
        }
    }

    #[test]
    fn a_cap_below_the_base_never_shortens_the_base() {
        let mut j = Jitter::new(3);
        let d = j.retry_delay(Duration::from_secs(30), 1, Duration::from_secs(10));
        assert!(d >= Duration::from_secs(15));
    }
}
