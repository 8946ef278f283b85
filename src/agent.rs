//! The agent: the only loops in sfpair. It wires a clock, a transport, a store and presenters to
//! the pure flow and API, and is the one place that sleeps and sends.
//!
//! `pair` runs the device flow to the end and stores the pairing; `access_token` hands out the
//! session cached in memory, or turns the stored refresh token into a new one (storing a rotated
//! refresh token first); `call` makes a REST call that renews an expired session once (see
//! `call.rs`); `forget` revokes and wipes. Every loop is bounded: the flow by its deadlines and
//! code count, the other requests by a fixed number of attempts.
//!
//! Sessions: Salesforce returns no `expires_in`, so a session is used until the server answers
//! 401 `INVALID_SESSION_ID`, or until an explicitly configured lifetime
//! ([`Agent::set_session_lifetime`]) has passed, or, for a JWT access token, until shortly
//! before its `exp` (`access_expiry.rs`). With a consumer secret configured, every token
//! response of a Salesforce pairing or refresh must carry a valid `signature` (`signature.rs`).
//!
//! This file holds the agent's parts and what they share (the store's record, presenters, the
//! bounded retry of one request); the work is in `agent/`: `pair.rs` (the device flow, and
//! finishing any new pairing), `headless.rs` (enrolment without a person, the asset token),
//! `session.rs` (the cached session), `refresh.rs`, `forget.rs`, `identity.rs` (userinfo),
//! `calls.rs` (REST calls), `clock.rs` (waiting out an implausible clock).

use std::time::Duration;

use log::{debug, warn};

use crate::api::Outcome;
use crate::error::{Error, ErrorKind};
use crate::event::Event;
use crate::flow::backoff::Jitter;
use crate::http::Transport;
use crate::present::Presenter;
use crate::secret::Secret;
pub use crate::session::Session;
use crate::stop::Stop;
use crate::store::{Loaded, Record, TokenStore};
use crate::time::{Clock, Instant};
use crate::wire::Request;

/// Attempts for a refresh, revocation or userinfo request before reporting a network error.
pub(super) const ATTEMPTS: u32 = 3;
const RETRY_BASE: Duration = Duration::from_secs(1);
const RETRY_CAP: Duration = Duration::from_secs(8);
/// The countdown ticks about once a second.
pub(super) const TICK: Duration = Duration::from_secs(1);

/// The agent: pairs, keeps the session, refreshes, forgets, makes REST calls. Built from
/// a clock, a transport and a store ([`Agent::new`]); presenters show the pairing.
pub struct Agent {
    clock: Box<dyn Clock>,
    transport: Box<dyn Transport>,
    store: Box<dyn TokenStore>,
    presenters: Vec<Box<dyn Presenter>>,
    jitter: Jitter,
    client_secret: Option<Secret>,
    session: Option<Session>,
    /// Refresh a session this old before using it; `None`: only on `INVALID_SESSION_ID`.
    session_lifetime: Option<Duration>,
    /// The generation of the newest session obtained so far.
    generation: u64,
    /// The client id the settings name, if any; a stored pairing of another app is warned
    /// about once (the stored one is used: it is the app the refresh token belongs to).
    expected_client_id: Option<String>,
    warned_client_id: bool,
    last_refresh: Option<RefreshOutcome>,
    /// When the cached session should be refreshed because its token says it expires then (a
    /// JWT access token's `exp`, `access_expiry.rs`), on the monotonic clock; `None` for opaque
    /// tokens. Kept beside the session, not in it, while the broker builds sessions itself.
    session_deadline: Option<Instant>,
    /// Why the last refresh was refused, if it was (`refusal.rs`); cleared by a success.
    last_refusal: Option<crate::refusal::Cause>,
    /// Ends every wait and loop of this agent when set ([`Agent::set_stop`]).
    stop: Stop,
    /// How to reach a JWT bearer key in a PKCS#11 token (`headless/signer.rs`).
    key_access: crate::headless::signer::KeyAccess,
}

impl Agent {
    /// An agent over `clock`, `transport` and `store`, with no presenter yet and a jitter seed
    /// from the kernel.
    pub fn new(
        clock: Box<dyn Clock>,
        transport: Box<dyn Transport>,
        store: Box<dyn TokenStore>,
    ) -> Self {
        Agent {
            clock,
            transport,
            store,
            presenters: Vec::new(),
            jitter: Jitter::new(random_seed()),
            client_secret: None,
            session: None,
            session_lifetime: None,
            generation: 0,
            expected_client_id: None,
            warned_client_id: false,
            last_refresh: None,
            last_refusal: None,
            session_deadline: None,
            stop: Stop::new(),
            key_access: Default::default(),
        }
    }

    /// How to reach a JWT bearer key in a token (`--pkcs11-module`, `--pkcs11-pin-file`).
    pub fn set_key_access(&mut self, access: crate::headless::signer::KeyAccess) {
        self.key_access = access;
    }

    /// Fixes the jitter seed (tests).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.jitter = Jitter::new(seed);
        self
    }

    /// Adds a presenter: it is shown every event of the pairings this agent runs.
    pub fn add_presenter(&mut self, presenter: Box<dyn Presenter>) {
        self.presenters.push(presenter);
    }

    /// A stop request this agent obeys: once it is set, a pairing, a retry's backoff or a wait
    /// for the clock ends at once with [`ErrorKind::Stopped`] (exit code 0), and no new request
    /// is sent. A request already in flight finishes (its reply may hold a rotated token).
    ///
    /// ```no_run
    /// # fn demo(mut agent: sfpair::agent::Agent, config: sfpair::flow::FlowConfig) {
    /// let stop = sfpair::stop::Stop::new();
    /// agent.set_stop(stop.clone());
    /// let pairing = std::thread::spawn(move || agent.pair(config));
    /// // ... the person walked away: cancel.
    /// stop.stop();
    /// let result = pairing.join().unwrap();
    /// assert!(matches!(result, Err(e) if e.kind() == sfpair::error::ErrorKind::Stopped));
    /// # }
    /// ```
    pub fn set_stop(&mut self, stop: Stop) {
        self.stop = stop;
    }

    /// Sleeps for `d` unless a stop is asked for: then `Err(Stopped)`, saying what it was
    /// `doing`.
    fn pause(&mut self, d: Duration, doing: &str) -> Result<(), Error> {
        if self.clock.sleep_or_stop(d, &self.stop) {
            return Err(crate::stop::stopped(doing));
        }
        Ok(())
    }

    /// The consumer secret, for apps that require it: sent when polling and refreshing, and the
    /// key that checks every Salesforce token response's signature. This is its one route: the
    /// flow configuration carries no secret.
    pub fn set_client_secret(&mut self, secret: Option<Secret>) {
        self.client_secret = secret;
    }

    /// Refresh a cached session once it is this old (`--session-lifetime`). Set it a little
    /// below the org's session timeout; without it a session is used until the server refuses it.
    pub fn set_session_lifetime(&mut self, lifetime: Option<Duration>) {
        self.session_lifetime = lifetime;
    }

    /// The client id the settings give (`--client-id`): a stored pairing made with another one
    /// is used as it is (its refresh token belongs to that app), with a warning, once.
    pub fn set_expected_client_id(&mut self, client_id: Option<String>) {
        self.expected_client_id = client_id;
    }

    /// The store, as people say it (`file:/var/lib/sfpair/token`, `mtd:/dev/mtd3`).
    pub fn store_description(&self) -> String {
        self.store.describe()
    }

    fn emit(&mut self, event: &Event) {
        for p in &mut self.presenters {
            p.show(event);
        }
    }

    /// Why no presenter can show anything, when that is so (and there is at least one).
    fn nobody_sees(&self) -> Option<String> {
        let mut reasons = self.presenters.iter().map(|p| p.broken());
        let first = reasons.next()??;
        reasons.all(|r| r.is_some()).then(|| first.to_string())
    }

    /// What the store holds.
    pub fn load(&mut self) -> Result<Loaded, Error> {
        self.store.load()
    }

    /// The stored pairing, or `NotPaired` (a corrupt record is reported, not used).
    pub fn stored(&mut self) -> Result<Record, Error> {
        match self.store.load()? {
            Loaded::Paired(record) => {
                self.warn_other_client(&record);
                Ok(record)
            }
            Loaded::Empty => Err(Error::new(
                ErrorKind::NotPaired,
                format!(
                    "not paired ({} is empty): run `sfpair pair`",
                    self.store.describe()
                ),
            )),
            Loaded::Corrupt(reason) => Err(Error::new(
                ErrorKind::NotPaired,
                format!(
                    "the stored pairing in {} is unreadable ({reason}); it is kept as it is \
                     until a new pairing succeeds: run `sfpair pair`",
                    self.store.describe()
                ),
            )),
            Loaded::Unopened(reason) => {
                Err(crate::store::unopened(&self.store.describe(), &reason))
            }
        }
    }

    fn warn_other_client(&mut self, record: &Record) {
        match &self.expected_client_id {
            Some(expected) if *expected != record.client_id && !self.warned_client_id => {
                self.warned_client_id = true;
                warn!(
                    "the client id given ({expected}) is not the one this device paired with \
                     ({}); the stored pairing's is used, as its refresh token belongs to that \
                     app. To pair with the other app, run `sfpair pair --force`",
                    record.client_id
                );
            }
            _ => {}
        }
    }

    /// Sends `request`, retrying transient failures a few times with backoff.
    fn exchange<T>(
        &mut self,
        request: &Request,
        interpret: impl Fn(&crate::wire::Reply) -> Outcome<T>,
    ) -> Result<T, Error> {
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            if attempt > 1 {
                let delay = self.jitter.retry_delay(RETRY_BASE, attempt - 1, RETRY_CAP);
                debug!("retrying in {} ms: {last}", delay.as_millis());
                self.pause(delay, "waiting to retry")?;
            }
            self.stop.check("sending a request")?;
            match self.transport.send(request) {
                Ok(reply) => match interpret(&reply) {
                    Outcome::Done(v) => return Ok(v),
                    Outcome::Fail(e) => return Err(e),
                    Outcome::Retry(reason) => last = reason,
                },
                Err(e) if e.kind.is_transient() => last = e.detail,
                Err(e) => return Err(e.into_error()),
            }
        }
        Err(Error::network(format!(
            "gave up after {ATTEMPTS} attempts: {last}"
        )))
    }

    /// Hands the presenters back (a long-running agent lends them to a pairing and takes them
    /// back after it).
    pub fn take_presenters(&mut self) -> Vec<Box<dyn Presenter>> {
        std::mem::take(&mut self.presenters)
    }
}

/// A seed for jitter from the kernel's random source (getrandom via ring), so two devices that
/// boot at the same instant still spread their requests.
pub(crate) fn random_seed() -> u64 {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 8];
    match ring::rand::SystemRandom::new().fill(&mut bytes) {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(_) => {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            t.as_nanos() as u64 ^ u64::from(std::process::id()).rotate_left(32)
        }
    }
}

#[cfg(feature = "rest")]
mod calls;
mod clock;
mod forget;
mod headless;
mod identity;
mod pair;
mod pairing;
mod refresh;
mod session;

pub use forget::Forgotten;
pub use headless::Enrolment;
pub use pairing::Pairing;
pub use refresh::RefreshOutcome;

#[cfg(test)]
mod tests;
