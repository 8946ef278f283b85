//! When delivery may send next: capped exponential backoff with jitter after failures, and a
//! pause while the org's API allocation is nearly used up.
//!
//! - `Sforce-Limit-Info: api-usage=N/M` comes back on every REST reply. At or above
//!   `--api-reserve PERCENT` (default 90) of M, delivery pauses, leaving the rest of the daily
//!   allocation to the org's other integrations; a 403 `REQUEST_LIMIT_EXCEEDED` pauses it too,
//!   for the server's `Retry-After` when it gives one.
//! - Retries after a failure (a network error, a lost reply, a 5xx, a locked row) back off
//!   from `base` doubling to `cap`, with jitter so that a fleet coming back after an outage
//!   does not retry in lockstep (the same generator as the pairing flow's, `flow::backoff`).
//!
//! Pure: the caller sleeps.

use core::time::Duration;

use crate::flow::backoff::Jitter;

/// `--api-reserve` when not given.
pub const DEFAULT_RESERVE_PERCENT: u8 = 90;

/// The org's API use, from `Sforce-Limit-Info`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// API requests used today.
    pub used: u64,
    /// The org's daily allocation.
    pub max: u64,
}

impl Usage {
    /// Whether `used` has reached `reserve` percent of `max`.
    pub fn over(&self, reserve: u8) -> bool {
        self.max > 0 && u128::from(self.used) * 100 >= u128::from(self.max) * u128::from(reserve)
    }
}

/// `api-usage=N/M` in a `Sforce-Limit-Info` value (which may list other usages, comma
/// separated, such as `per-app-api-usage=…`).
pub fn usage(limit_info: &str) -> Option<Usage> {
    limit_info.split(',').find_map(|part| {
        let value = part.trim().strip_prefix("api-usage=")?;
        let (used, max) = value.split_once('/')?;
        Some(Usage {
            used: used.trim().parse().ok()?,
            max: max.trim().parse().ok()?,
        })
    })
}

/// How long waits grow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The first retry's delay after a failure.
    pub retry_base: Duration,
    /// The longest retry delay.
    pub retry_cap: Duration,
    /// A pause for the API limit without a `Retry-After`.
    pub limit_base: Duration,
    /// The longest such pause.
    pub limit_cap: Duration,
}

impl Policy {
    /// `sfpair run`: keeps trying for as long as it runs.
    pub const RUN: Policy = Policy {
        retry_base: Duration::from_secs(1),
        retry_cap: Duration::from_secs(300),
        limit_base: Duration::from_secs(60),
        limit_cap: Duration::from_secs(3600),
    };
    /// `sfpair outbox flush`: a few quick retries, then exit 7 with everything still queued.
    pub const FLUSH: Policy = Policy {
        retry_base: Duration::from_millis(250),
        retry_cap: Duration::from_secs(4),
        limit_base: Duration::from_secs(60),
        limit_cap: Duration::from_secs(3600),
    };
}

/// The failure count and the generator behind the waits.
#[derive(Clone, Debug)]
pub struct Pace {
    policy: Policy,
    jitter: Jitter,
    failures: u32,
    limited: u32,
}

impl Pace {
    /// The pace under `policy`; `seed` spreads a fleet's retries.
    pub fn new(policy: Policy, seed: u64) -> Self {
        Pace {
            policy,
            jitter: Jitter::new(seed),
            failures: 0,
            limited: 0,
        }
    }

    /// Some record was settled: the next failure starts from the base delay again.
    pub fn progress(&mut self) {
        self.failures = 0;
        self.limited = 0;
    }

    /// Failures in a row without progress.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// A failure: the wait before the next attempt.
    pub fn failed(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let p = self.policy;
        self.jitter
            .retry_delay(p.retry_base, self.failures, p.retry_cap)
    }

    /// The API limit: the server's `Retry-After` when it sent one, else a growing pause.
    pub fn limited(&mut self, retry_after: Option<Duration>) -> Duration {
        self.limited = self.limited.saturating_add(1);
        if let Some(wait) = retry_after {
            return wait.min(self.policy.limit_cap);
        }
        let p = self.policy;
        self.jitter
            .retry_delay(p.limit_base, self.limited, p.limit_cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_info_is_read_among_other_usages() {
        assert_eq!(
            usage("api-usage=25/15000"),
            Some(Usage {
                used: 25,
                max: 15000
            })
        );
        assert_eq!(
            usage("per-app-api-usage=2/250(appName=x), api-usage=14000/15000"),
            Some(Usage {
                used: 14000,
                max: 15000
            })
        );
        for bad in [
            "",
            "api-usage=",
            "api-usage=x/1",
            "api-usage=1",
            "usage=1/2",
        ] {
            assert_eq!(usage(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_reserve_is_a_percentage_of_the_allocation() {
        let u = |used| Usage { used, max: 15000 };
        assert!(!u(13499).over(90));
        assert!(u(13500).over(90));
        assert!(u(15000).over(100));
        assert!(!u(14999).over(100));
        assert!(
            !Usage { used: 5, max: 0 }.over(90),
            "no allocation reported: no pause"
        );
        assert!(
            Usage {
                used: u64::MAX,
                max: u64::MAX
            }
            .over(90),
            "no overflow"
        );
    }

    #[test]
    fn failures_back_off_and_progress_resets_them() {
        let mut pace = Pace::new(Policy::FLUSH, 3);
        let first = pace.failed();
        assert!(first >= Duration::from_millis(125) && first <= Duration::from_millis(250));
        for _ in 0..10 {
            assert!(pace.failed() <= Duration::from_secs(4));
        }
        assert_eq!(pace.failures(), 11);
        pace.progress();
        assert_eq!(pace.failures(), 0);
        assert!(pace.failed() <= Duration::from_millis(250));
    }

    #[test]
    fn the_limit_pause_honours_retry_after_up_to_the_cap() {
        let mut pace = Pace::new(Policy::RUN, 3);
        assert_eq!(
            pace.limited(Some(Duration::from_secs(30))),
            Duration::from_secs(30)
        );
        assert_eq!(
            pace.limited(Some(Duration::from_secs(86_400))),
            Duration::from_secs(3600)
        );
        let d = pace.limited(None);
        assert!(
            d >= Duration::from_secs(120) && d <= Duration::from_secs(240),
            "{d:?}"
        );
    }
}
