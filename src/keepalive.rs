//! When the next keepalive refresh is due: one period after the last successful refresh,
//! spread ±10% so that a fleet paired (or powered up) together does not refresh together.
//!
//! Why refresh with nobody asking: a refresh token policy can expire a token that was not
//! used for N days (Salesforce's "Limit the Idle Refresh Token TTL": a 30-day idle window that
//! each use resets). A device whose clients are quiet for a month would lose its pairing. Pure:
//! the instant and the random source come in; the caller (the coming `sfpair run`) sleeps.

use core::time::Duration;

use crate::flow::backoff::Jitter;
use crate::time::Instant;

/// How far either side of the period a device may refresh, in percent.
pub const SPREAD_PERCENT: u32 = 10;

/// When the keepalive refresh after `last_refresh` is due: uniform in
/// `[0.9, 1.1) x period` after it, at millisecond resolution. `None` when keepalive is off
/// (a zero period).
pub fn next_due(last_refresh: Instant, period: Duration, jitter: &mut Jitter) -> Option<Instant> {
    if period.is_zero() {
        return None;
    }
    let spread = period * SPREAD_PERCENT / 100;
    let earliest = period - spread;
    Some(last_refresh + earliest + jitter.below(spread * 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_means_never() {
        let mut j = Jitter::new(1);
        assert_eq!(
            next_due(Instant::from_secs(5), Duration::ZERO, &mut j),
            None
        );
    }

    /// 10,000 devices, each with its own seed (as each has its own kernel random seed), paired at
    /// the same instant: their keepalives land in [0.9, 1.1) x period, and spread evenly: every
    /// tenth of that window gets about a tenth of the fleet.
    #[test]
    fn a_fleet_spreads_over_nine_tenths_to_eleven_tenths_of_the_period() {
        let period = Duration::from_secs(7 * 86_400);
        let start = Instant::from_secs(1_000);
        let mut seeds = Jitter::new(0x5eed);
        let low = start + period * 9 / 10;
        let window = period / 5;
        let mut buckets = [0u32; 10];
        let (mut min, mut max) = (Duration::MAX, Duration::ZERO);
        for _ in 0..10_000 {
            let mut device = Jitter::new(seeds.next_u64());
            let due = next_due(start, period, &mut device).unwrap();
            assert!(due >= low && due < low + window, "{due:?}");
            let offset = due.saturating_since(low);
            min = min.min(offset);
            max = max.max(offset);
            let bucket = (offset.as_millis() * 10 / window.as_millis()) as usize;
            buckets[bucket] += 1;
        }
        for (i, n) in buckets.iter().enumerate() {
            assert!(
                (850..=1150).contains(n),
                "bucket {i}: {n} of 10,000: {buckets:?}"
            );
        }
        // The extremes reach the edges of the window (within 0.1% of the period).
        assert!(
            min < period / 1000 && max > window - period / 1000,
            "{min:?} {max:?}"
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_schedule() {
        let period = Duration::from_secs(3600);
        let a = next_due(Instant::ZERO, period, &mut Jitter::new(42));
        let b = next_due(Instant::ZERO, period, &mut Jitter::new(42));
        assert_eq!(a, b);
    }
}
