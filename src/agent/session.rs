//! The session cached in memory: when it may be handed out (not refused by the server, younger
//! than the configured lifetime, before a JWT access token's `exp`), and its generations, so a
//! client that reports a refused session causes one refresh, not one each.
//!
//! No request is sent here except through `refresh`.

use std::time::Duration;

use log::debug;

use super::Agent;
use crate::error::Error;
use crate::secret::Secret;
use crate::session::Session;
use crate::time::Instant;

impl Agent {
    /// Caches a new session, one generation newer.
    pub(super) fn start_session(&mut self, access_token: Secret, instance_url: String) -> Session {
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
    pub(super) fn deadline_for(&self, token: &Secret) -> Option<Instant> {
        let after = crate::access_expiry::refresh_after(token.expose(), self.clock.unix_time())?;
        debug!(
            "the access token says when it expires: refreshing in {} s",
            after.as_secs()
        );
        Some(self.clock.now() + after)
    }

    /// The cached session, if it is still usable.
    pub(super) fn cached(&self) -> Option<Session> {
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

    pub(super) fn age(&self, session: &Session) -> Duration {
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

    /// Drops the cached session, so the next request reads the store again (another agent,
    /// such as a re-pairing one, stored a new pairing).
    pub fn forget_session(&mut self) {
        self.session = None;
        self.warned_client_id = false;
    }
}
