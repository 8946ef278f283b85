//! The device flow as a pure state machine: it decides what to send and when, and never sends,
//! sleeps or reads a clock.
//!
//! The caller (`agent.rs`) asks [`Flow::poll`] what to do at time `now`; the answer is to wait
//! until an instant, to send a request, or that the flow is done. When a request was sent the
//! caller feeds the reply (or the transport error) back with [`Flow::handle`]. Events for the
//! person (a code to show, slow down, a retry, an expired code) queue up in between and are
//! drained with [`Flow::take_events`]. Because time only comes in as an argument, tests pin the
//! exact instant of every poll.
//!
//! ```text
//!            ┌──────────── retry (backoff + jitter, until give_up_after) ─┐
//!            v                                                            │
//!   NeedCode ──send──> CodeInFlight ──code──> Polling ──send──> PollInFlight
//!      ^                    │                   ^  │                  │
//!      │                    └─ config error ─>  │  └─ deadline ─┐     ├─ pending / slow_down / transient
//!      │                                        └───────────────┼─────┘
//!      └──── expired (another code, up to max_codes) <──────────┘     ├─ tokens ─> Done(Ok)
//!                                                                     └─ denied / config ─> Done(Err)
//! ```
//!
//! Rules (RFC 8628 §3.4–3.5, docs/protocol.md, "Client rules"): wait one interval before the first
//! poll;
//! `authorization_pending` keeps the interval; `slow_down` adds 5 s for good (or takes the
//! server's larger interval); transport failures and 5xx/HTML/garbage replies back off
//! exponentially with jitter, never faster than the interval, and keep the same device code;
//! the code's deadline is `expires_in`, or the configured default when the server sends none.

pub mod backoff;
pub mod dialect;
pub mod discovery;
pub mod reply;
pub mod verify_uri;

use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::{String, ToString};
use core::mem;
use core::time::Duration;

use crate::error::{Error, ErrorKind};
use crate::event::{Event, ShownCode};
use crate::secret::Secret;
use crate::time::Instant;
use crate::wire::{Reply, Request, TransportError, TransportErrorKind};

use self::backoff::Jitter;
use self::dialect::{Client, Dialect, Endpoints};
use self::reply::{OAuthError, Parsed, TokenReply};

/// RFC 8628 §3.2: "If no value is provided, clients MUST use 5 as the default."
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// Salesforce's CLI unit tests use `interval: 0`; never spin on such a reply.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// RFC 8628 §3.5: `slow_down` increases the interval by 5 seconds.
pub const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// First retry delay for the device code request.
pub const CODE_RETRY_BASE: Duration = Duration::from_secs(2);

/// Everything the flow needs to know up front.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct FlowConfig {
    /// Salesforce's dialect or standard RFC 8628.
    pub dialect: Dialect,
    /// Where the device, token and revocation requests go.
    pub endpoints: Endpoints,
    /// The client id and the scopes asked for.
    pub client: Client,
    /// How many user codes to show before giving up (a fresh one after each expiry).
    pub max_codes: u32,
    /// Code lifetime when the server sends no `expires_in` (Salesforce never does).
    pub default_lifetime: Duration,
    /// Longest delay between retries after failures.
    pub retry_cap: Duration,
    /// Stop retrying the device code request after this long without success.
    pub give_up_after: Duration,
    /// The first request goes out at a random point in `[0, start_spread)`, so a fleet that
    /// boots together does not hit the org in lockstep.
    pub start_spread: Duration,
    /// Add `prompt=login` to the Salesforce one-tap URL.
    pub prompt_login: bool,
    /// Stop at once when the very first request finds no such host or a refused connection:
    /// for a device that was never paired (the URL is likelier mistyped than the network
    /// briefly down), instead of [`give_up_after`](FlowConfig::give_up_after) of retries.
    pub fail_fast_unreachable: bool,
}

/// What to check when the login host cannot be reached: the doctor's advice, in one place.
pub const UNREACHABLE_HINT: &str = "check the login URL's host name (--login-url) and the \
     network (the DNS servers in /etc/resolv.conf, a firewall, a proxy); `sfpair doctor` checks \
     each step";

/// The scopes a device needs: REST access, and a refresh token so the pairing outlives the
/// session (`refresh_token` covers `offline_access` on Salesforce).
pub const DEFAULT_SCOPE: &str = "api refresh_token";

impl FlowConfig {
    /// Salesforce at `login_url` (login, test or My Domain), with a public client and
    /// [`DEFAULT_SCOPE`], and the defaults of [`FlowConfig::new`].
    pub fn salesforce(login_url: &str, client_id: &str) -> Self {
        FlowConfig::new(
            Dialect::Salesforce,
            Endpoints::salesforce(login_url),
            Client {
                client_id: client_id.into(),
                scope: DEFAULT_SCOPE.into(),
            },
        )
    }

    /// The defaults: 3 codes, 10 minutes each, retries capped at 60 s, give up after 5 minutes
    /// without a code, no start spread.
    pub fn new(dialect: Dialect, endpoints: Endpoints, client: Client) -> Self {
        FlowConfig {
            dialect,
            endpoints,
            client,
            max_codes: 3,
            default_lifetime: Duration::from_secs(600),
            retry_cap: Duration::from_secs(60),
            give_up_after: Duration::from_secs(300),
            start_spread: Duration::ZERO,
            prompt_login: false,
            fail_fast_unreachable: false,
        }
    }
}

/// What the caller should do next.
#[derive(Debug)]
pub enum Action {
    /// Nothing to do before this instant.
    Wait(Instant),
    /// Send this request now and pass the outcome to [`Flow::handle`].
    Send(Request),
    /// The flow is over.
    Done(Result<TokenReply, Error>),
}

/// A shown code being polled.
#[derive(Debug)]
struct Code {
    device_code: Secret,
    deadline: Instant,
    interval: Duration,
    next_poll: Instant,
    failures: u32,
    /// Why the last poll failed, while it keeps failing: if the code runs out like this, the
    /// person never had a chance, and the error must say "network", not "nobody approved".
    failing: Option<String>,
}

#[derive(Debug)]
enum State {
    NeedCode {
        at: Instant,
        failures: u32,
        since: Instant,
    },
    CodeInFlight {
        failures: u32,
        since: Instant,
    },
    Polling(Code),
    PollInFlight(Code),
    Done(Option<Result<TokenReply, Error>>),
}

/// One pairing attempt, from the first device code request to tokens or a final error.
#[derive(Debug)]
pub struct Flow {
    config: FlowConfig,
    jitter: Jitter,
    state: State,
    codes_issued: u32,
    events: VecDeque<Event>,
    /// Sent with every poll when the app requires it; set by the agent, the secret's one route.
    client_secret: Option<Secret>,
}

impl Flow {
    /// Starts a flow at `now`; `seed` drives the jitter (random in the agent, fixed in tests).
    pub fn new(config: FlowConfig, seed: u64, now: Instant) -> Self {
        let mut jitter = Jitter::new(seed);
        let at = now + jitter.below(config.start_spread);
        Flow {
            config,
            jitter,
            state: State::NeedCode {
                at,
                failures: 0,
                since: now,
            },
            codes_issued: 0,
            events: VecDeque::new(),
            client_secret: None,
        }
    }

    /// Sends `secret` as `client_secret` with every poll (apps that require the consumer secret).
    pub fn with_client_secret(mut self, secret: Option<Secret>) -> Self {
        self.client_secret = secret;
        self
    }

    /// Events produced since the last call, oldest first.
    pub fn take_events(&mut self) -> impl Iterator<Item = Event> + '_ {
        self.events.drain(..)
    }

    /// When the shown code runs out, while one is shown.
    pub fn code_deadline(&self) -> Option<Instant> {
        match &self.state {
            State::Polling(code) | State::PollInFlight(code) => Some(code.deadline),
            _ => None,
        }
    }

    /// What to do at `now`.
    pub fn poll(&mut self, now: Instant) -> Action {
        loop {
            match mem::replace(&mut self.state, State::Done(None)) {
                State::NeedCode {
                    at,
                    failures,
                    since,
                } if now < at => {
                    self.state = State::NeedCode {
                        at,
                        failures,
                        since,
                    };
                    return Action::Wait(at);
                }
                State::NeedCode {
                    failures, since, ..
                } => {
                    self.state = State::CodeInFlight { failures, since };
                    let c = &self.config;
                    return Action::Send(c.dialect.device_request(&c.endpoints, &c.client));
                }
                State::Polling(code) if now >= code.deadline => {
                    self.state = match code.failing {
                        Some(reason) => self.expire_unreachable(now, &reason),
                        None => {
                            self.expire(now, "the code expired before anyone approved it", None)
                        }
                    };
                }
                State::Polling(code) if now < code.next_poll => {
                    let wake = code.next_poll.min(code.deadline);
                    self.state = State::Polling(code);
                    return Action::Wait(wake);
                }
                State::Polling(code) => {
                    let c = &self.config;
                    let request = c.dialect.poll_request(
                        &c.endpoints,
                        &c.client,
                        &code.device_code,
                        self.client_secret.as_ref(),
                    );
                    self.state = State::PollInFlight(code);
                    return Action::Send(request);
                }
                in_flight @ (State::CodeInFlight { .. } | State::PollInFlight(_)) => {
                    self.state = in_flight;
                    return Action::Done(Err(Error::server(
                        "internal error: the flow was polled while a request was in flight",
                    )));
                }
                State::Done(result) => {
                    return Action::Done(result.unwrap_or_else(|| {
                        Err(Error::server("internal error: the flow already finished"))
                    }));
                }
            }
        }
    }

    /// Feeds the outcome of the request from the last [`Action::Send`], received at `now`.
    pub fn handle(&mut self, now: Instant, outcome: Result<Reply, TransportError>) {
        self.state = match mem::replace(&mut self.state, State::Done(None)) {
            State::CodeInFlight { failures, since } => {
                self.on_code_reply(now, failures, since, outcome)
            }
            State::PollInFlight(code) => self.on_poll_reply(now, code, outcome),
            // A reply nobody waits for (a caller bug): keep the state as it was.
            other => other,
        };
    }

    fn on_code_reply(
        &mut self,
        now: Instant,
        failures: u32,
        since: Instant,
        outcome: Result<Reply, TransportError>,
    ) -> State {
        let reply = match outcome {
            Ok(reply) => reply,
            Err(e)
                if self.config.fail_fast_unreachable
                    && failures == 0
                    && self.codes_issued == 0
                    && matches!(
                        e.kind,
                        TransportErrorKind::Dns | TransportErrorKind::Refused
                    ) =>
            {
                return done_err(Error::network(format!(
                    "cannot reach {}: {}; nothing was ever paired here, so this is not retried: \
                     {UNREACHABLE_HINT}",
                    self.config.endpoints.device, e.detail
                )));
            }
            Err(e) if e.kind.is_transient() => {
                return self.retry_code(now, failures, since, e.detail);
            }
            Err(e) => return done_err(e.into_error()),
        };
        match reply::device_code(&reply) {
            Parsed::Ok(code) => match verify_uri::check(
                self.config.dialect,
                &self.config.endpoints.device,
                &code.verification_uri,
                code.verification_uri_complete.as_deref(),
            ) {
                Ok(()) => self.issue(now, code),
                Err(reason) => done_err(Error::server(reason)),
            },
            Parsed::OAuth(e) if e.is_transient() => {
                match self.retry_code(now, failures, since, e.summary()) {
                    // Gave up on this refusal: keep the server's fields.
                    State::Done(Some(Err(err))) => done_err(err.with_oauth(e.fields())),
                    next => next,
                }
            }
            Parsed::OAuth(e) => {
                let c = &self.config;
                done_err(c.dialect.config_error(&e, &c.client.client_id))
            }
            Parsed::Transient(reason) => self.retry_code(now, failures, since, reason),
            Parsed::Rejected(reason) => done_err(Error::config(format!(
                "{} answered {reason}",
                self.config.endpoints.device
            ))),
        }
    }

    fn on_poll_reply(
        &mut self,
        now: Instant,
        mut code: Code,
        outcome: Result<Reply, TransportError>,
    ) -> State {
        let reply = match outcome {
            Ok(reply) => reply,
            Err(e) if e.kind.is_transient() => return self.retry_poll(now, code, e.detail),
            Err(e) => return done_err(e.into_error()),
        };
        let err = match reply::token(&reply) {
            Parsed::Ok(tokens) => {
                if tokens.refresh_token.as_ref().is_none_or(Secret::is_empty) {
                    return done_err(self.config.dialect.no_refresh_token());
                }
                return State::Done(Some(Ok(tokens)));
            }
            Parsed::OAuth(err) => err,
            Parsed::Transient(reason) => return self.retry_poll(now, code, reason),
            Parsed::Rejected(reason) => {
                return done_err(Error::server(format!(
                    "{} answered {reason}",
                    self.config.endpoints.token
                )));
            }
        };
        match err.error.as_str() {
            "authorization_pending" => {
                code.failures = 0;
                code.failing = None;
                code.next_poll = now + code.interval;
                State::Polling(code)
            }
            "slow_down" => {
                code.failures = 0;
                code.failing = None;
                code.interval =
                    (code.interval + SLOW_DOWN_STEP).max(err.interval.unwrap_or_default());
                code.next_poll = now + code.interval;
                self.events.push_back(Event::SlowDown {
                    interval: code.interval,
                });
                State::Polling(code)
            }
            "access_denied" => done_err(Error::oauth(
                ErrorKind::Denied,
                "the person at the approval page denied access; nothing was stored",
                err.fields(),
            )),
            "expired_token" => self.expire(now, "the server says the code expired", Some(&err)),
            "invalid_grant" if err.description_contains("not enabled") => {
                let c = &self.config;
                done_err(c.dialect.config_error(&err, &c.client.client_id))
            }
            "invalid_grant" if err.description_contains("token exchange failed") => self.expire(
                now,
                "the server refused the approved code (invalid_grant: token exchange failed); \
                 if the org or the user's profile restricts login IP ranges, allow this \
                 device's public address",
                Some(&err),
            ),
            "invalid_grant" => self.expire(
                now,
                &format!("the server no longer accepts the code ({})", err.summary()),
                Some(&err),
            ),
            "invalid_client" | "invalid_client_id" | "unauthorized_client" => {
                let c = &self.config;
                done_err(c.dialect.config_error(&err, &c.client.client_id))
            }
            _ if err.is_transient() => self.retry_poll(now, code, err.summary()),
            _ => done_err(
                Error::server(format!("the server stopped the pairing: {}", err.summary()))
                    .with_oauth(err.fields()),
            ),
        }
    }

    /// A device code arrived: show it and schedule the first poll one interval later.
    fn issue(&mut self, now: Instant, code: reply::DeviceCode) -> State {
        self.codes_issued += 1;
        let interval = code.interval.unwrap_or(DEFAULT_INTERVAL).max(MIN_INTERVAL);
        let lifetime = code
            .expires_in
            .filter(|d| !d.is_zero())
            .unwrap_or(self.config.default_lifetime);
        let one_tap_uri = self
            .config
            .dialect
            .one_tap_uri(&code, self.config.prompt_login);
        self.events.push_back(Event::CodeIssued(ShownCode {
            user_code: code.user_code,
            verification_uri: code.verification_uri,
            one_tap_uri,
            expires_in: lifetime,
            interval,
            number: self.codes_issued,
            max_codes: self.config.max_codes,
        }));
        State::Polling(Code {
            device_code: code.device_code,
            deadline: now + lifetime,
            interval,
            next_poll: now + interval,
            failures: 0,
            failing: None,
        })
    }

    fn retry_code(&mut self, now: Instant, failures: u32, since: Instant, reason: String) -> State {
        let waited = now.saturating_since(since);
        if waited >= self.config.give_up_after {
            return done_err(Error::network(format!(
                "could not get a device code from {} in {} s: {reason}; {UNREACHABLE_HINT}",
                self.config.endpoints.device,
                waited.as_secs()
            )));
        }
        let failures = failures + 1;
        let delay = self
            .jitter
            .retry_delay(CODE_RETRY_BASE, failures, self.config.retry_cap);
        self.events.push_back(Event::Retrying { reason, delay });
        State::NeedCode {
            at: now + delay,
            failures,
            since,
        }
    }

    /// RFC 8628 §3.5: on a connection failure, poll less often (doubling, capped, jittered), but
    /// never more often than the interval; keep the same device code.
    fn retry_poll(&mut self, now: Instant, mut code: Code, reason: String) -> State {
        code.failures += 1;
        let delay = self
            .jitter
            .retry_delay(code.interval * 2, code.failures, self.config.retry_cap)
            .max(code.interval);
        code.next_poll = now + delay;
        code.failing = Some(reason.clone());
        self.events.push_back(Event::Retrying { reason, delay });
        State::Polling(code)
    }

    /// The shown code ran out while the server could not be reached: after the last code this
    /// is a network failure, not "nobody approved".
    fn expire_unreachable(&mut self, now: Instant, failure: &str) -> State {
        let reason = format!("the code expired while the server could not be reached ({failure})");
        match self.expire(now, &reason, None) {
            State::Done(Some(Err(e))) if e.kind() == ErrorKind::Expired => {
                done_err(Error::network(format!(
                    "{reason}; check the device's network, then run `sfpair pair` again"
                )))
            }
            next => next,
        }
    }

    /// The shown code is no longer usable: show a new one, or stop after the last. `refusal` is
    /// the server's OAuth error when it is the server that ended the code; the final error
    /// carries its fields.
    fn expire(&mut self, now: Instant, reason: &str, refusal: Option<&OAuthError>) -> State {
        let last = self.codes_issued >= self.config.max_codes;
        self.events.push_back(Event::CodeExpired {
            number: self.codes_issued,
            last,
            reason: reason.to_string(),
        });
        if last {
            let e = Error::new(
                ErrorKind::Expired,
                format!(
                    "nobody approved the pairing in time ({} code{} shown; last: {reason}). \
                     Salesforce does not tell the device when someone presses Deny, so a denial \
                     ends here too. Run `sfpair pair` again when someone is ready to approve",
                    self.codes_issued,
                    if self.codes_issued == 1 { "" } else { "s" },
                ),
            );
            return done_err(match refusal {
                Some(r) => e.with_oauth(r.fields()),
                None => e,
            });
        }
        State::NeedCode {
            at: now,
            failures: 0,
            since: now,
        }
    }
}

fn done_err(e: Error) -> State {
    State::Done(Some(Err(e)))
}

#[cfg(test)]
mod tests;
