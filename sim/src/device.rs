//! The device-code state machine shared by both dialects:
//! PENDING → APPROVED → CONSUMED, PENDING → DENIED, any live state → EXPIRED.
//!
//! Pure: the caller passes `now`, so tests pin every step without sleeping. Time-driven
//! transitions (expiry, auto-approval) happen lazily whenever a code is looked at, so
//! no timer thread exists. This file knows no wire format: `oauth.rs` and `rfc8628.rs`
//! turn a [`Poll`] into each dialect's answer.

use std::time::{Duration, Instant};

use crate::codes::normalise_user_code;
use crate::config::{Config, SlowDown};

/// Which provider issued a code; they share the table so one approval page serves both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Salesforce,
    Rfc8628,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Pending,
    Approved,
    Denied,
    Consumed,
    Expired,
}

/// The knobs of `Config` that drive the state machine.
#[derive(Clone, Copy, Debug)]
pub struct Rules {
    pub interval: Duration,
    pub code_ttl: Duration,
    pub slow_down: SlowDown,
    pub auto_approve_after: Option<Duration>,
}

impl From<&Config> for Rules {
    fn from(config: &Config) -> Self {
        Rules {
            interval: Duration::from_secs(config.interval),
            code_ttl: config.code_ttl,
            slow_down: config.slow_down,
            auto_approve_after: config.auto_approve_after,
        }
    }
}

/// What a poll of a device code found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Poll {
    /// The user has not decided yet.
    Pending,
    /// Too fast: the code now requires this interval, for good.
    SlowDown { interval: Duration },
    /// The user denied; each dialect decides what that looks like.
    Denied,
    /// The code outlived its lifetime.
    Expired,
    /// Unknown or already redeemed.
    Invalid,
    /// Approved, but the token exchange is refused (the `ip_block` hook).
    ExchangeFailed,
    /// Approved: mint tokens for this scope. The code is now consumed.
    Approved { scope: Option<String> },
}

/// What a person (or a test hook) does to a user code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Deny,
    Expire,
    /// Let the user approve, but fail the token exchange afterwards, as Salesforce
    /// does when the org's login IP ranges exclude the device.
    IpBlock,
}

#[derive(Debug)]
struct Device {
    dialect: Dialect,
    device_code: String,
    user_code: String,
    scope: Option<String>,
    issued: Instant,
    state: State,
    /// Grows by 5 s with every `slow_down`.
    interval: Duration,
    last_poll: Option<Instant>,
    polls: u32,
    ip_blocked: bool,
}

impl Device {
    fn is_live(&self) -> bool {
        matches!(self.state, State::Pending | State::Approved | State::Denied)
    }

    /// Applies the transitions that time alone causes.
    fn settle(&mut self, now: Instant, rules: &Rules) {
        let age = now.saturating_duration_since(self.issued);
        if self.is_live() && age >= rules.code_ttl {
            self.state = State::Expired;
        }
        if self.state == State::Pending
            && rules.auto_approve_after.is_some_and(|after| age >= after)
        {
            self.state = State::Approved;
        }
    }

    /// Whether this poll is one `slow_down` must answer; records the poll either way.
    fn too_fast(&mut self, now: Instant, rules: &Rules) -> bool {
        self.polls += 1;
        let previous = self.last_poll.replace(now);
        match rules.slow_down {
            SlowDown::Off => false,
            SlowDown::Strict => {
                previous.is_some_and(|p| now.saturating_duration_since(p) < self.interval)
            }
            SlowDown::FirstPolls(n) => self.polls <= n,
        }
    }
}

/// Every device code issued so far, in issue order.
#[derive(Debug, Default)]
pub struct Devices {
    devices: Vec<Device>,
}

impl Devices {
    /// Every device code issued so far (for leak checks in tests).
    pub fn every_device_code(&self) -> Vec<String> {
        self.devices.iter().map(|d| d.device_code.clone()).collect()
    }

    /// Whether a live code already uses this user code (after normalisation); the
    /// caller draws another one, so a typed code always names exactly one device.
    pub fn user_code_taken(&self, user_code: &str) -> bool {
        let wanted = normalise_user_code(user_code);
        self.devices
            .iter()
            .any(|d| d.is_live() && normalise_user_code(&d.user_code) == wanted)
    }

    /// Records a new PENDING code.
    pub fn issue(
        &mut self,
        dialect: Dialect,
        device_code: String,
        user_code: String,
        scope: Option<String>,
        now: Instant,
        rules: &Rules,
    ) {
        self.devices.push(Device {
            dialect,
            device_code,
            user_code,
            scope,
            issued: now,
            state: State::Pending,
            interval: rules.interval,
            last_poll: None,
            polls: 0,
            ip_blocked: false,
        });
    }

    /// One poll of the token endpoint with `device_code` in `dialect`. A code from the
    /// other dialect counts as unknown: each provider only honours its own codes.
    pub fn poll(
        &mut self,
        dialect: Dialect,
        device_code: &str,
        now: Instant,
        rules: &Rules,
    ) -> Poll {
        let Some(device) = self
            .devices
            .iter_mut()
            .find(|d| d.dialect == dialect && d.device_code == device_code)
        else {
            return Poll::Invalid;
        };
        device.settle(now, rules);
        match device.state {
            State::Consumed => return Poll::Invalid,
            State::Expired => return Poll::Expired,
            _ => {}
        }
        if device.too_fast(now, rules) {
            device.interval += Duration::from_secs(5);
            return Poll::SlowDown {
                interval: device.interval,
            };
        }
        match device.state {
            State::Pending => Poll::Pending,
            State::Denied => Poll::Denied,
            _ => {
                device.state = State::Consumed;
                if device.ip_blocked {
                    Poll::ExchangeFailed
                } else {
                    Poll::Approved {
                        scope: device.scope.clone(),
                    }
                }
            }
        }
    }

    /// Applies a person's decision to the live code typed as `user_code`.
    /// Returns false when no live code matches or the decision does not apply
    /// (only a pending code can be approved or denied).
    pub fn decide(
        &mut self,
        user_code: &str,
        decision: Decision,
        now: Instant,
        rules: &Rules,
    ) -> bool {
        let wanted = normalise_user_code(user_code);
        if wanted.is_empty() {
            return false;
        }
        for device in &mut self.devices {
            device.settle(now, rules);
        }
        let Some(device) = self
            .devices
            .iter_mut()
            .find(|d| d.is_live() && normalise_user_code(&d.user_code) == wanted)
        else {
            return false;
        };
        match (decision, device.state) {
            (Decision::Approve, State::Pending) => device.state = State::Approved,
            (Decision::Deny, State::Pending) => device.state = State::Denied,
            (Decision::Expire, _) => device.state = State::Expired,
            (Decision::IpBlock, _) => device.ip_blocked = true,
            _ => return false,
        }
        true
    }

    /// A live, pending code typed as `user_code`: the code as issued and its scope.
    pub fn pending(
        &mut self,
        user_code: &str,
        now: Instant,
        rules: &Rules,
    ) -> Option<(String, Option<String>)> {
        let wanted = normalise_user_code(user_code);
        let device = self
            .devices
            .iter_mut()
            .find(|d| !wanted.is_empty() && normalise_user_code(&d.user_code) == wanted)?;
        device.settle(now, rules);
        (device.state == State::Pending).then(|| (device.user_code.clone(), device.scope.clone()))
    }

    /// User codes still waiting for a decision, in issue order, as they were issued.
    pub fn pending_user_codes(&mut self, now: Instant, rules: &Rules) -> Vec<String> {
        self.devices
            .iter_mut()
            .filter_map(|d| {
                d.settle(now, rules);
                (d.state == State::Pending).then(|| d.user_code.clone())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SF: Dialect = Dialect::Salesforce;

    fn rules(slow_down: SlowDown) -> Rules {
        Rules {
            interval: Duration::from_secs(5),
            code_ttl: Duration::from_secs(600),
            slow_down,
            auto_approve_after: None,
        }
    }

    fn one_code(t0: Instant, rules: &Rules) -> Devices {
        let mut devices = Devices::default();
        devices.issue(
            SF,
            "DC".into(),
            "ABCD1234".into(),
            Some("api".into()),
            t0,
            rules,
        );
        devices
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn pending_then_approved_then_consumed() {
        let (t0, r) = (Instant::now(), rules(SlowDown::Off));
        let mut d = one_code(t0, &r);
        assert_eq!(d.poll(SF, "DC", t0 + secs(5), &r), Poll::Pending);
        assert!(d.decide("abcd-1234", Decision::Approve, t0 + secs(7), &r));
        assert_eq!(
            d.poll(SF, "DC", t0 + secs(10), &r),
            Poll::Approved {
                scope: Some("api".into())
            }
        );
        assert_eq!(d.poll(SF, "DC", t0 + secs(15), &r), Poll::Invalid);
        assert!(!d.decide("ABCD1234", Decision::Approve, t0 + secs(16), &r));
    }

    #[test]
    fn unknown_and_other_dialect_codes_are_invalid() {
        let (t0, r) = (Instant::now(), rules(SlowDown::Off));
        let mut d = one_code(t0, &r);
        assert_eq!(d.poll(SF, "nope", t0, &r), Poll::Invalid);
        assert_eq!(d.poll(Dialect::Rfc8628, "DC", t0, &r), Poll::Invalid);
    }

    #[test]
    fn codes_expire_after_their_ttl_even_when_approved() {
        let (t0, r) = (Instant::now(), rules(SlowDown::Off));
        let mut d = one_code(t0, &r);
        assert_eq!(d.pending_user_codes(t0 + secs(599), &r), ["ABCD1234"]);
        assert!(d.decide("ABCD1234", Decision::Approve, t0 + secs(599), &r));
        assert_eq!(d.poll(SF, "DC", t0 + secs(600), &r), Poll::Expired);
        assert!(!d.decide("ABCD1234", Decision::Expire, t0 + secs(601), &r));
    }

    #[test]
    fn denied_codes_stay_denied_until_they_expire() {
        let (t0, r) = (Instant::now(), rules(SlowDown::Off));
        let mut d = one_code(t0, &r);
        assert!(d.decide("ABCD1234", Decision::Deny, t0, &r));
        assert!(!d.decide("ABCD1234", Decision::Approve, t0, &r));
        assert_eq!(d.poll(SF, "DC", t0 + secs(5), &r), Poll::Denied);
        assert_eq!(d.poll(SF, "DC", t0 + secs(600), &r), Poll::Expired);
        assert!(d.pending_user_codes(t0, &r).is_empty());
    }

    #[test]
    fn expire_hook_ends_a_pending_code() {
        let (t0, r) = (Instant::now(), rules(SlowDown::Off));
        let mut d = one_code(t0, &r);
        assert!(d.decide("ABCD1234", Decision::Expire, t0, &r));
        assert_eq!(d.poll(SF, "DC", t0 + secs(5), &r), Poll::Expired);
    }

    #[test]
    fn ip_block_fails_the_exchange_after_approval() {
        let (t0, r) = (Instant::now(), rules(SlowDown::Off));
        let mut d = one_code(t0, &r);
        assert!(d.decide("ABCD1234", Decision::IpBlock, t0, &r));
        assert_eq!(d.poll(SF, "DC", t0 + secs(5), &r), Poll::Pending);
        assert!(d.decide("ABCD1234", Decision::Approve, t0 + secs(6), &r));
        assert_eq!(d.poll(SF, "DC", t0 + secs(10), &r), Poll::ExchangeFailed);
        assert_eq!(d.poll(SF, "DC", t0 + secs(15), &r), Poll::Invalid);
    }

    #[test]
    fn auto_approval_happens_after_the_delay_but_not_after_expiry() {
        let (t0, mut r) = (Instant::now(), rules(SlowDown::Off));
        r.auto_approve_after = Some(secs(3));
        let mut d = one_code(t0, &r);
        assert_eq!(d.poll(SF, "DC", t0 + secs(2), &r), Poll::Pending);
        assert!(matches!(
            d.poll(SF, "DC", t0 + secs(3), &r),
            Poll::Approved { .. }
        ));

        r.auto_approve_after = Some(secs(700));
        let mut d = one_code(t0, &r);
        assert_eq!(d.poll(SF, "DC", t0 + secs(700), &r), Poll::Expired);
    }

    #[test]
    fn strict_slow_down_adds_five_seconds_cumulatively() {
        let (t0, r) = (Instant::now(), rules(SlowDown::Strict));
        let mut d = one_code(t0, &r);
        let slow = |s| Poll::SlowDown { interval: secs(s) };
        // The first poll has no previous poll to be too close to.
        assert_eq!(d.poll(SF, "DC", t0, &r), Poll::Pending);
        // 4 s < 5 s: too fast; the interval becomes 10 s.
        assert_eq!(d.poll(SF, "DC", t0 + secs(4), &r), slow(10));
        // 5 s after the previous poll is now too fast too: 15 s.
        assert_eq!(d.poll(SF, "DC", t0 + secs(9), &r), slow(15));
        // Waiting the full 15 s is fine, and so is waiting longer.
        assert_eq!(d.poll(SF, "DC", t0 + secs(24), &r), Poll::Pending);
        assert_eq!(d.poll(SF, "DC", t0 + secs(44), &r), Poll::Pending);
        // 14 s is not enough any more.
        assert_eq!(d.poll(SF, "DC", t0 + secs(58), &r), slow(20));
    }

    #[test]
    fn first_polls_slow_down_whatever_the_timing() {
        let (t0, r) = (Instant::now(), rules(SlowDown::FirstPolls(2)));
        let mut d = one_code(t0, &r);
        assert_eq!(
            d.poll(SF, "DC", t0 + secs(60), &r),
            Poll::SlowDown { interval: secs(10) }
        );
        assert_eq!(
            d.poll(SF, "DC", t0 + secs(120), &r),
            Poll::SlowDown { interval: secs(15) }
        );
        assert_eq!(d.poll(SF, "DC", t0 + secs(180), &r), Poll::Pending);
    }

    #[test]
    fn taken_user_codes_are_found_in_any_spelling() {
        let (t0, r) = (Instant::now(), rules(SlowDown::Off));
        let d = one_code(t0, &r);
        assert!(d.user_code_taken("abcd-1234"));
        assert!(!d.user_code_taken("ABCD1235"));
    }
}
