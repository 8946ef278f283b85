//! What happens during a pairing, as the person (or a host UI) should learn about it.
//!
//! The flow emits the protocol events (a code, slow down, a retry, an expired code); the agent adds
//! the countdown and the outcome. Presenters (console, JSON lines, displays) only ever see these.
//! An event never holds the device code or a token: the user code and the URLs are meant to be
//! shown, nothing else here is secret.

use alloc::string::String;
use core::time::Duration;

use crate::error::Error;

/// A user code to show, with where to enter it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShownCode {
    /// Exactly as the server sent it.
    pub user_code: String,
    /// The URL to type by hand.
    pub verification_uri: String,
    /// The URL for the QR code: it carries the user code, so one tap opens the right page.
    pub one_tap_uri: String,
    /// How long the code is valid, from when it was issued.
    pub expires_in: Duration,
    /// The polling interval the server asked for.
    pub interval: Duration,
    /// 1 for the first code, 2 for the first replacement after expiry, …
    pub number: u32,
    /// How many codes this pairing will show at most.
    pub max_codes: u32,
}

/// Who the device is now paired as (no secrets).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paired {
    /// The instance the session works with.
    pub instance_url: String,
    /// From the identity URL's last two path segments, when present.
    pub org_id: Option<String>,
    /// The paired user's id, from the identity URL.
    pub user_id: Option<String>,
}

/// What happens during a pairing, for presenters to show. New kinds of events may come: a
/// presenter ignores the ones it does not know (`_ => {}`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A code to show: the first one when `number == 1`, a fresh one after expiry otherwise.
    CodeIssued(ShownCode),
    /// The shown code can no longer be used (it ran out, or the server refused it); `last` when
    /// no other code will follow. `reason` is for people.
    CodeExpired {
        /// Which code expired: 1 for the first.
        number: u32,
        /// Whether it was the last one (`--max-codes`): the pairing ends.
        last: bool,
        /// Why, for a person.
        reason: String,
    },
    /// The server asked us to poll less often; `interval` is the new one, for good.
    SlowDown {
        /// The new polling interval.
        interval: Duration,
    },
    /// A request failed in a way that may pass; the next try is in `delay`.
    Retrying {
        /// What failed.
        reason: String,
        /// How long until the next try.
        delay: Duration,
    },
    /// Time left on the shown code (sent about once a second while waiting).
    Countdown {
        /// How long the code is still valid.
        remaining: Duration,
    },
    /// Pairing succeeded and the pairing is stored.
    Paired(Paired),
    /// Pairing stopped for good.
    Failed(Error),
}
