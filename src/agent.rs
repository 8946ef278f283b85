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

use std::time::Duration;

use log::{debug, info, warn};

use crate::api::{self, Outcome};
#[cfg(feature = "rest")]
use crate::call::{self, Caller};
use crate::clock_check;
use crate::error::{Error, ErrorKind};
use crate::event::{Event, Paired};
use crate::flow::backoff::Jitter;
use crate::flow::dialect::Dialect;
use crate::flow::reply::TokenReply;
use crate::flow::{Action, Flow, FlowConfig};
#[cfg(feature = "rest")]
use crate::http::OpenReply;
use crate::http::Transport;
use crate::present::Presenter;
use crate::rest::{self, Unauthorized};
#[cfg(feature = "rest")]
use crate::rest::{RestReply, RestRequest};
use crate::secret::Secret;
pub use crate::session::Session;
use crate::signature;
use crate::store::record::Grant;
use crate::store::{Loaded, Record, SaveCheck, TokenStore};
use crate::time::{Clock, Instant};
use crate::url;
use crate::wire::Request;
#[cfg(feature = "rest")]
use crate::wire::TransportError;

/// Attempts for a refresh, revocation or userinfo request before reporting a network error.
const ATTEMPTS: u32 = 3;
const RETRY_BASE: Duration = Duration::from_secs(1);
const RETRY_CAP: Duration = Duration::from_secs(8);
/// The countdown ticks about once a second.
const TICK: Duration = Duration::from_secs(1);

/// How a refresh ended, for health answers: when (seconds since the epoch) and the error, if
/// it failed. Holds no token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshOutcome {
    pub at: u64,
    pub error: Option<Error>,
}

/// What `forget` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Forgotten {
    /// Nothing was stored.
    NothingStored,
    /// Revoked at the server and wiped.
    Revoked,
    /// Wiped, but the server was not told: the token may still be valid there.
    WipedOnly { reason: String },
    /// The record was unreadable, so there was nothing to revoke with; it was wiped.
    WipedUnreadable { reason: String },
    /// Wiped a headless enrolment: it holds no refresh token, so nothing was revoked; the app
    /// accepts the device's grant again until an admin changes the app or the user.
    NoRefreshToken,
}

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
    /// How to reach a JWT bearer key in a PKCS#11 token (`headless/signer.rs`).
    key_access: crate::headless::signer::KeyAccess,
}

impl Agent {
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

    pub fn add_presenter(&mut self, presenter: Box<dyn Presenter>) {
        self.presenters.push(presenter);
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

    /// An RFC 8628 provider's endpoints from its metadata (`--issuer`, `flow/discovery.rs`):
    /// RFC 8414's document first, then OpenID's; one bounded retry policy as every request.
    pub fn discover(&mut self, issuer: &str) -> Result<crate::flow::dialect::Endpoints, Error> {
        let urls = crate::flow::discovery::metadata_urls(issuer);
        for url in &urls {
            let found = self.exchange(&Request::get(url.clone()), |reply| match reply.status {
                200 => Outcome::Done(Some(crate::flow::discovery::endpoints(issuer, &reply.body))),
                404 | 400 | 401 | 403 | 405 => Outcome::Done(None),
                500.. => Outcome::Retry(format!("{url} answered HTTP {}", reply.status)),
                s => Outcome::Done(Some(Err(Error::server(format!("{url} answered HTTP {s}"))))),
            })?;
            if let Some(result) = found {
                return result;
            }
        }
        Err(Error::config(format!(
            "--issuer {issuer}: no metadata at {}; check the URL, or give --device-url and \
             --token-url",
            urls.join(" or ")
        )))
    }

    /// Runs the device flow until the device is paired, and stores the pairing. The previous
    /// pairing, if any, is replaced only when the new one is stored, and is then revoked so its
    /// grant does not linger at the server.
    pub fn pair(&mut self, config: FlowConfig) -> Result<Paired, Error> {
        // Before a code is shown: a pairing the store would refuse to keep is not started.
        if let Err(e) = self.store.check_writable() {
            self.emit(&Event::Failed(e.clone()));
            return Err(e);
        }
        let mut previous = None;
        let secret = self.client_secret.clone();
        let token_url = config.endpoints.token.clone();
        let dialect = config.dialect;
        let revoke_url = config.endpoints.revoke.clone();
        let client_id = config.client.client_id.clone();
        let requested_scope = config.client.scope.clone();
        let seed = self.jitter.next_u64();
        let mut flow = Flow::new(config, seed, self.clock.now()).with_client_secret(secret.clone());
        let tokens = loop {
            let action = flow.poll(self.clock.now());
            let events: Vec<Event> = flow.take_events().collect();
            for e in &events {
                self.emit(e);
            }
            if let Some(why) = self.nobody_sees() {
                // Polling on would wait minutes for an approval nobody can give.
                return Err(Error::new(
                    ErrorKind::Output,
                    format!("nobody can see the code: {why}; stopped pairing"),
                ));
            }
            match action {
                Action::Wait(until) => self.wait_until(until, flow.code_deadline()),
                Action::Send(request) => {
                    let outcome = self.transport.send(&request);
                    if let Err(e) = &outcome {
                        debug!("request failed: {e}");
                    }
                    flow.handle(self.clock.now(), outcome);
                }
                Action::Done(Ok(tokens)) => break tokens,
                Action::Done(Err(e)) => {
                    self.emit(&Event::Failed(e.clone()));
                    return Err(e);
                }
            }
        };
        // Built now, used only if the pairing cannot be kept: a grant we cannot store would still
        // count against the user's five authorizations for this app.
        let orphan = tokens
            .refresh_token
            .as_ref()
            .and_then(|rt| api::revoke_token_request(revoke_url.as_deref(), &client_id, rt));
        let session_token = tokens.access_token.clone();
        let verified = match (&secret, dialect) {
            (Some(secret), Dialect::Salesforce) => {
                signature::verify_reply(&tokens, secret, "pairing")
            }
            _ => Ok(()),
        };
        let stored = verified
            .and_then(|()| {
                self.record_from(
                    tokens,
                    dialect,
                    token_url,
                    revoke_url,
                    client_id,
                    requested_scope,
                )
            })
            .and_then(|record| self.store_pairing(record, &mut previous));
        let record = match stored {
            Ok(record) => record,
            Err(e) => {
                self.emit(&Event::Failed(e.clone()));
                if let Some(request) = orphan {
                    let revoked = self.transport.send(&request).is_ok();
                    debug!("revoked the grant that could not be stored: {revoked}");
                }
                return Err(e);
            }
        };
        info!("paired; the pairing is stored in {}", self.store.describe());
        self.revoke_previous(previous, &record);
        self.start_session(session_token, record.instance_url.clone());
        let (org_id, user_id) = api::org_and_user(&record.identity_url);
        let paired = Paired {
            instance_url: record.instance_url,
            org_id,
            user_id,
        };
        self.emit(&Event::Paired(paired.clone()));
        Ok(paired)
    }

    /// Revokes the refresh token of the pairing `new` replaced (a headless one has none).
    fn revoke_previous(&mut self, previous: Option<Record>, new: &Record) {
        let Some(old) = previous
            .filter(|old| !old.grant.is_headless() && old.refresh_token != new.refresh_token)
        else {
            return;
        };
        let revoked = api::revoke_request(&old).map(|r| self.exchange(&r, api::revoke_outcome));
        match revoked {
            Some(Ok(())) => info!("revoked the previous pairing's refresh token"),
            Some(Err(e)) => warn!("could not revoke the previous pairing's refresh token: {e}"),
            None => {}
        }
    }

    /// Caches a new session, one generation newer.
    fn start_session(&mut self, access_token: Secret, instance_url: String) -> Session {
        self.generation += 1;
        self.session_deadline = self.deadline_for(&access_token);
        let session = Session {
            access_token,
            instance_url,
            obtained_at: self.clock.now(),
            generation: self.generation,
        };
        self.session = Some(session.clone());
        session
    }

    /// Stores a new pairing under the store's lock. What it replaces is read under that lock,
    /// not when the pairing started: during the minutes a code waits for approval another
    /// process may have rotated the old token or stored a pairing of its own, and whatever is
    /// replaced is what must be revoked (`previous`), so no grant is left behind at the server.
    /// The lock is not held during the wait itself: that would stall `token` and the broker
    /// for as long as a technician takes. Two concurrent pairings: the last stored wins and
    /// revokes the other's grant.
    fn store_pairing(
        &mut self,
        record: Record,
        previous: &mut Option<Record>,
    ) -> Result<Record, Error> {
        self.store.lock()?;
        let saved = match self.store.load() {
            Ok(loaded) => {
                *previous = match loaded {
                    Loaded::Paired(old) => Some(old),
                    _ => None,
                };
                self.store.save(&record)
            }
            Err(e) => Err(e),
        };
        self.store.unlock();
        saved.map(|()| record)
    }

    fn record_from(
        &self,
        tokens: TokenReply,
        dialect: Dialect,
        token_url: String,
        revoke_url: Option<String>,
        client_id: String,
        requested_scope: String,
    ) -> Result<Record, Error> {
        let login_url = match dialect {
            Dialect::Salesforce => url::origin(&token_url).unwrap_or_default(),
            Dialect::Rfc8628 => String::new(),
        };
        let instance_url = tokens
            .instance_url
            .filter(|u| !u.is_empty())
            .or_else(|| url::origin(&token_url))
            .unwrap_or_default();
        if !url::is_secure(&instance_url) {
            return Err(Error::server(format!(
                "the server gave an instance URL that is not https ({instance_url}); nothing \
                 was stored"
            )));
        }
        let refresh_token = tokens
            .refresh_token
            .ok_or_else(|| Error::server("no refresh token to store"))?;
        Ok(Record {
            refresh_token,
            client_id,
            dialect,
            login_url,
            token_url,
            revoke_url,
            instance_url: instance_url.trim_end_matches('/').to_string(),
            identity_url: tokens.id.unwrap_or_default(),
            scope: tokens.scope.unwrap_or(requested_scope),
            issued_at_ms: tokens.issued_at.and_then(|s| s.parse().ok()).unwrap_or(0),
            paired_at: self.clock.unix_time().as_secs(),
            grant: Grant::Device,
        })
    }

    /// Sleeps until `until`, in steps that keep the countdown on whole seconds.
    fn wait_until(&mut self, until: Instant, code_deadline: Option<Instant>) {
        loop {
            let now = self.clock.now();
            if now >= until {
                return;
            }
            let mut step = until.saturating_since(now);
            if let Some(deadline) = code_deadline {
                let remaining = deadline.saturating_since(now);
                self.emit(&Event::Countdown { remaining });
                let to_next_second = Duration::from_nanos(u64::from(remaining.subsec_nanos()));
                let tick = if to_next_second.is_zero() {
                    TICK
                } else {
                    to_next_second
                };
                step = step.min(tick);
            }
            self.clock.sleep(step);
        }
    }

    /// Waits (at most `limit`) until the wall clock is plausible, i.e. not earlier than this
    /// binary's build. Call before the first TLS handshake: with a clock in 1970 every
    /// certificate is "not yet valid", and the person deserves the real reason.
    pub fn wait_for_clock(&mut self, limit: Duration) -> Result<(), Error> {
        let started = self.clock.now();
        let mut warned = false;
        loop {
            let clock_check::Verdict::BeforeBuild { now, built } =
                clock_check::check(self.clock.unix_time(), clock_check::BUILD_UNIX)
            else {
                if warned {
                    info!("the system clock is set now; going on");
                }
                return Ok(());
            };
            let waited = self.clock.now().saturating_since(started);
            if waited >= limit {
                return Err(Error::network(format!(
                    "the system clock says {} but this sfpair was built on {}: the clock is \
                     not set, so no server certificate can be checked. Set the time or let NTP \
                     sync (waited {} s; --wait-for-clock sets how long)",
                    crate::time::format_utc(now),
                    crate::time::format_utc(built),
                    waited.as_secs()
                )));
            }
            if !warned {
                warn!(
                    "the system clock says {}, before this sfpair was built ({}); waiting up to \
                     {} s for time sync (NTP) before connecting",
                    crate::time::format_utc(now),
                    crate::time::format_utc(built),
                    limit.as_secs()
                );
                warned = true;
            }
            self.clock.sleep(TICK.min(limit - waited));
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
                self.clock.sleep(delay);
            }
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

    /// An access token to use: the session cached in memory while it is usable (not refused by
    /// the server, younger than the configured lifetime), else a [`refresh`](Agent::refresh).
    pub fn access_token(&mut self) -> Result<Session, Error> {
        match self.cached() {
            Some(session) => Ok(session),
            None => self.refresh(),
        }
    }

    /// When a session with `token`, obtained now, should be refreshed: shortly before the
    /// `exp` of a JWT access token, converted from the wall clock to the monotonic one now.
    fn deadline_for(&self, token: &Secret) -> Option<Instant> {
        let after = crate::access_expiry::refresh_after(token.expose(), self.clock.unix_time())?;
        debug!(
            "the access token says when it expires: refreshing in {} s",
            after.as_secs()
        );
        Some(self.clock.now() + after)
    }

    /// The cached session, if it is still usable.
    fn cached(&self) -> Option<Session> {
        let session = self.session.as_ref()?;
        if self.session_deadline.is_some_and(|d| self.clock.now() >= d) {
            debug!("the access token is about to expire (its exp); refreshing");
            return None;
        }
        match self.session_lifetime {
            Some(lifetime) if self.age(session) >= lifetime => {
                debug!("the session reached its configured lifetime; refreshing");
                None
            }
            _ => Some(session.clone()),
        }
    }

    fn age(&self, session: &Session) -> Duration {
        self.clock.now().saturating_since(session.obtained_at)
    }

    /// How long `session` has left under the configured lifetime or, for a JWT access token,
    /// until shortly before its `exp`; `None` when neither says (opaque Salesforce tokens).
    pub fn expires_in(&self, session: &Session) -> Option<Duration> {
        let by_lifetime = self
            .session_lifetime
            .map(|lifetime| lifetime.saturating_sub(self.age(session)));
        let by_exp = self
            .session_deadline
            .filter(|_| self.session.as_ref().map(|s| s.generation) == Some(session.generation))
            .map(|d| d.saturating_since(self.clock.now()));
        match (by_lifetime, by_exp) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Reports that the server refused session `generation` (401 `INVALID_SESSION_ID`): it is
    /// dropped unless a newer one has replaced it already, so the next
    /// [`access_token`](Agent::access_token) refreshes at most once however many callers report.
    pub fn session_refused(&mut self, generation: u64) {
        if self
            .session
            .as_ref()
            .is_some_and(|s| s.generation == generation)
        {
            self.session = None;
        }
    }

    /// The instance URL for REST calls, from the cached session or the stored pairing; no
    /// request is sent.
    pub fn instance_url(&mut self) -> Result<String, Error> {
        match &self.session {
            Some(session) => Ok(session.instance_url.clone()),
            None => Ok(self.stored()?.instance_url),
        }
    }

    /// A fresh access token from the stored refresh token, whatever is cached. A rotated refresh
    /// token is stored before the new access token is handed out: losing it would kill the grant.
    /// A headless pairing has no refresh token: its grant runs again (`agent/headless.rs`).
    /// How it ended is kept for [`last_refresh`](Agent::last_refresh) (health answers).
    ///
    /// The whole load -> request -> save runs under the store's lock, and the record is loaded
    /// after the lock is taken: two processes never spend the same refresh token (with a
    /// rotating server the second would be told "re-pair needed", and a server that revokes the
    /// grant on reuse would lose it). Before the request, the store checks that a save can
    /// succeed (`prepare_save`: space reserved), so a token is not rotated away into a full
    /// disk: no refresh is sent then. A store that cannot be written at all (read-only mount or
    /// partition) is still refreshed from, as a server that does not rotate needs no save. If
    /// a save fails after a rotation, the store keeps the rotated token in memory
    /// (`save_rotated`) and this agent goes on with it; the error says so.
    pub fn refresh(&mut self) -> Result<Session, Error> {
        let outcome = self.refresh_now();
        self.last_refresh = Some(RefreshOutcome {
            at: self.clock.unix_time().as_secs(),
            error: outcome.as_ref().err().cloned(),
        });
        outcome
    }

    /// How the last refresh of this agent ended, if there was one.
    pub fn last_refresh(&self) -> Option<&RefreshOutcome> {
        self.last_refresh.as_ref()
    }

    /// Drops the cached session, so the next request reads the store again (another agent,
    /// such as a re-pairing one, stored a new pairing).
    pub fn forget_session(&mut self) {
        self.session = None;
        self.warned_client_id = false;
    }

    /// Hands the presenters back (a long-running agent lends them to a pairing and takes them
    /// back after it).
    pub fn take_presenters(&mut self) -> Vec<Box<dyn Presenter>> {
        std::mem::take(&mut self.presenters)
    }

    /// The refresh under the store's lock (see [`refresh`](Agent::refresh)).
    fn refresh_now(&mut self) -> Result<Session, Error> {
        self.store.lock()?;
        let result = self.refresh_locked();
        self.store.unlock();
        result
    }

    fn refresh_locked(&mut self) -> Result<Session, Error> {
        let record = self.stored()?;
        if record.grant.is_headless() {
            return self.regrant(&record);
        }
        // `SaveCheck::ReadOnly` goes ahead: a read-only store works with a server that does not
        // rotate refresh tokens; if this one does, the save below fails and says so.
        let _ready: SaveCheck = self.store.prepare_save().map_err(|e| {
            Error::new(
                e.kind(),
                format!(
                    "{}; no refresh was sent and the stored pairing is unchanged",
                    e.message()
                ),
            )
        })?;
        let request = api::refresh_request(&record, self.client_secret.as_ref());
        let refused = std::cell::Cell::new(None);
        let result = self.exchange(&request, |reply| {
            let outcome = api::refresh_outcome(reply);
            if let Outcome::Fail(e) = &outcome {
                refused.set(crate::refusal::cause_of(e));
            }
            outcome
        });
        self.last_refusal = refused.get();
        let tokens = result?;
        if let (Some(secret), Dialect::Salesforce) = (&self.client_secret, record.dialect) {
            signature::verify_reply(&tokens, secret, "refresh")?;
        }
        let mut updated = record.clone();
        if let Some(rotated) = tokens.refresh_token.filter(|t| !t.is_empty()) {
            updated.refresh_token = rotated;
        }
        if let Some(instance) = tokens.instance_url.filter(|u| url::is_secure(u)) {
            updated.instance_url = instance.trim_end_matches('/').to_string();
        }
        self.generation += 1;
        self.session_deadline = self.deadline_for(&tokens.access_token);
        let session = Session {
            access_token: tokens.access_token,
            instance_url: updated.instance_url.clone(),
            obtained_at: self.clock.now(),
            generation: self.generation,
        };
        if updated != record {
            debug!("the refresh changed the pairing (rotation or a new instance); storing it");
            if let Err(e) = self.store.save_rotated(&updated) {
                // The session is good: a long-running agent (the broker) goes on with it and
                // with the rotated token the store keeps in memory.
                self.session = Some(session);
                return Err(Error::storage(format!(
                    "the server rotated the refresh token but it could not be stored ({e}). \
                     {} still holds the previous token, which the server may no longer accept; \
                     this process keeps the new one in memory and stores it as soon as it can. \
                     Free space or fix the store, or the device will need to pair again",
                    self.store.describe()
                )));
            }
        }
        self.session = Some(session.clone());
        Ok(session)
    }

    /// Why the server refused the last refresh (revoked or expired, IP restricted, secret
    /// required, ...), or `None` when the last refresh did not fail that way. For status lines
    /// (`notify::status_repair_needed`); the error's message names the cause too.
    pub fn last_refusal(&self) -> Option<crate::refusal::Cause> {
        self.last_refusal
    }

    /// Sends a REST request to the paired instance and streams the reply body into `sink`, in
    /// bounded memory whatever its size. On 401 `INVALID_SESSION_ID` the session is refreshed
    /// once and the request sent once more; nothing else is retried. The HTTP status is in the
    /// returned reply ([`RestReply::error`] says what to report); `Err` means no complete reply:
    /// not paired, refresh rejected (re-pair needed), network, or the sink failed.
    ///
    /// ```no_run
    /// # fn demo(agent: &mut sfpair::agent::Agent) -> Result<(), sfpair::error::Error> {
    /// use sfpair::rest::RestRequest;
    /// let create = RestRequest::post_json(
    ///     "/services/data/v62.0/sobjects/Account/",
    ///     r#"{"Name":"Express Logistics"}"#,
    /// )?;
    /// let mut body = Vec::new();
    /// let reply = agent.call(&create, &mut body)?;
    /// if let Some(e) = reply.error() {
    ///     return Err(e);
    /// }
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "rest")]
    pub fn call(
        &mut self,
        request: &RestRequest,
        sink: &mut dyn std::io::Write,
    ) -> Result<RestReply, Error> {
        call::call(self, request, sink)
    }

    /// The user info of the paired user (OpenID Connect userinfo). An expired session is
    /// refreshed once, as for [`call`](Agent::call).
    pub fn userinfo(&mut self) -> Result<serde_json::Value, Error> {
        let session = self.access_token()?;
        if let Some(info) = self.userinfo_with(&session)? {
            return Ok(info);
        }
        self.session_refused(session.generation);
        let fresh = self.refresh()?;
        self.userinfo_with(&fresh)?.ok_or_else(|| {
            Error::new(
                ErrorKind::RepairNeeded,
                "userinfo refused a freshly refreshed session (401): pair again with \
                 `sfpair pair --force`",
            )
        })
    }

    /// userinfo with `session`; `None` when the session was refused as expired.
    fn userinfo_with(&mut self, session: &Session) -> Result<Option<serde_json::Value>, Error> {
        let request = api::userinfo_request(&session.instance_url, &session.access_token);
        self.exchange(&request, |reply| match reply.status {
            200..=299 => match serde_json::from_slice(&reply.body) {
                Ok(v) => Outcome::Done(Some(v)),
                Err(_) => Outcome::Retry("malformed userinfo reply".into()),
            },
            401 if rest::unauthorized(&reply.body[..]) == Unauthorized::SessionExpired => {
                Outcome::Done(None)
            }
            500.. => Outcome::Retry(format!("HTTP {}", reply.status)),
            s => Outcome::Fail(Error::new(
                ErrorKind::Http,
                format!("userinfo answered HTTP {s}"),
            )),
        })
    }

    /// Revokes the refresh token at the server (when it can), then wipes the store, even when the
    /// server cannot be reached. Holds the store's lock throughout, so a refresh in another
    /// process cannot rotate the token between the revocation and the wipe.
    pub fn forget(&mut self) -> Result<Forgotten, Error> {
        self.session = None;
        self.store.lock()?;
        let result = self.forget_locked();
        self.store.unlock();
        result
    }

    fn forget_locked(&mut self) -> Result<Forgotten, Error> {
        let record = match self.store.load()? {
            Loaded::Empty => return Ok(Forgotten::NothingStored),
            Loaded::Corrupt(reason) => {
                // The store refuses to wipe what is not an sfpair record (exit 2, nothing
                // erased); an unreadable record of ours is wiped.
                self.store.wipe()?;
                warn!("the stored pairing was unreadable ({reason}); wiped it without revoking");
                return Ok(Forgotten::WipedUnreadable { reason });
            }
            // Never wiped: it cannot be revoked, and putting its seal back opens it again.
            Loaded::Unopened(reason) => {
                return Err(crate::store::unopened(&self.store.describe(), &reason));
            }
            Loaded::Paired(record) if record.grant.is_headless() => {
                self.store.wipe()?;
                return Ok(Forgotten::NoRefreshToken);
            }
            Loaded::Paired(record) => record,
        };
        let revoked = match api::revoke_request(&record) {
            Some(request) => self.exchange(&request, api::revoke_outcome),
            None => Err(Error::config(
                "the provider has no known revocation endpoint",
            )),
        };
        self.store.wipe()?;
        Ok(match revoked {
            Ok(()) => Forgotten::Revoked,
            Err(e) => Forgotten::WipedOnly {
                reason: e.message().to_string(),
            },
        })
    }
}

/// The agent holds the refresh token itself: it renews by refreshing.
#[cfg(feature = "rest")]
impl Caller for Agent {
    fn session(&mut self) -> Result<Session, Error> {
        self.access_token()
    }

    fn renew(&mut self, stale: &Session) -> Result<Session, Error> {
        self.session_refused(stale.generation);
        self.access_token()
    }

    fn open(&mut self, request: &Request) -> Result<OpenReply, TransportError> {
        self.transport.open(request)
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

mod headless;
pub use headless::Enrolment;

#[cfg(test)]
mod tests;
