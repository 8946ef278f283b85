//! Monotonic time for every deadline, and the one real clock.
//!
//! [`Instant`] is a point on a monotonic clock, as the time since the clock's origin, so the pure
//! flow can do arithmetic on it and tests can write `Instant::from_secs(5)`. The wall clock is
//! only read for timestamps that leave the device (issued-at, pairing age) and for the clock
//! sanity check; never for a deadline, because a board without a battery-backed clock jumps from
//! 1970 to now when NTP syncs. `FakeClock` lives in `testing.rs`.

use core::ops::Add;
use core::time::Duration;

/// A point on a monotonic clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(Duration);

impl Instant {
    pub const ZERO: Instant = Instant(Duration::ZERO);

    pub const fn from_millis(ms: u64) -> Self {
        Instant(Duration::from_millis(ms))
    }

    pub const fn from_secs(s: u64) -> Self {
        Instant(Duration::from_secs(s))
    }

    /// Time since the clock's origin.
    pub const fn since_origin(self) -> Duration {
        self.0
    }

    /// `self - earlier`, or zero when `earlier` is later.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;

    fn add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(d))
    }
}

/// Where the agent gets time from and how it waits. The real one is [`SystemClock`].
pub trait Clock: Send {
    /// Now, on the monotonic clock.
    fn now(&self) -> Instant;
    /// Blocks for `d` (a fake clock just advances).
    fn sleep(&self, d: Duration);
    /// Wall-clock time since the Unix epoch (may be wrong on boards without an RTC).
    fn unix_time(&self) -> Duration;
}

/// `std::time::Instant` (CLOCK_MONOTONIC) and `SystemTime`.
#[cfg(feature = "std")]
pub struct SystemClock {
    origin: std::time::Instant,
}

#[cfg(feature = "std")]
impl SystemClock {
    pub fn new() -> Self {
        SystemClock {
            origin: std::time::Instant::now(),
        }
    }
}

#[cfg(feature = "std")]
impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

#[cfg(feature = "std")]
impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant(self.origin.elapsed())
    }

    fn sleep(&self, d: Duration) {
        std::thread::sleep(d)
    }

    fn unix_time(&self) -> Duration {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_add_and_subtract_without_panicking() {
        let t = Instant::from_secs(10) + Duration::from_millis(500);
        assert_eq!(
            t.saturating_since(Instant::from_secs(4)),
            Duration::from_millis(6500)
        );
        assert_eq!(Instant::from_secs(4).saturating_since(t), Duration::ZERO);
        assert_eq!(
            (Instant::from_secs(1) + Duration::MAX).since_origin(),
            Duration::MAX
        );
    }
}
