//! Rate-limited warnings: at most one refusal warning a minute, counting the ones it held back,
//! so a client hammering the socket cannot fill the journal.
//!
//! Time comes from the broker's clock (a fake one in tests); no I/O.

use std::time::Duration;

use crate::time::Instant;

/// Logs at most one refusal warning per minute, counting the rest.
pub(super) struct Throttle {
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    pub(super) fn new() -> Self {
        Throttle {
            last: None,
            suppressed: 0,
        }
    }

    pub(super) fn allow(&mut self, now: Instant) -> bool {
        if self
            .last
            .is_some_and(|t| now.saturating_since(t) < Duration::from_secs(60))
        {
            self.suppressed += 1;
            return false;
        }
        self.last = Some(now);
        true
    }

    pub(super) fn suppressed_note(&mut self) -> String {
        let n = std::mem::take(&mut self.suppressed);
        match n {
            0 => String::new(),
            n => format!("; {n} more refused since the last warning"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Clock;

    #[test]
    fn a_failure_is_held_on_the_shared_clock() {
        // FAILURE_HOLD and the throttle read the broker's clock, not the system's.
        let clock = crate::testing::FakeClock::new(Duration::ZERO);
        let mut throttle = Throttle::new();
        assert!(throttle.allow(clock.now()));
        clock.advance(Duration::from_secs(59));
        assert!(!throttle.allow(clock.now()));
        clock.advance(Duration::from_secs(1));
        assert!(throttle.allow(clock.now()));
        assert_eq!(
            throttle.suppressed_note(),
            "; 1 more refused since the last warning"
        );
    }
}
