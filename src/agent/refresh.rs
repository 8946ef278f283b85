//! The refresh: the stored refresh token (or a headless grant) turned into a new session,
//! under the store's lock, a rotated refresh token stored before the session is handed out.
//!
//! Never sends a refresh into a store that cannot keep its result (`prepare_save`).

use log::debug;

use super::Agent;
use crate::api::{self, Outcome};
use crate::error::Error;
use crate::flow::dialect::Dialect;
use crate::session::Session;
use crate::signature;
use crate::store::SaveCheck;
use crate::url;

/// How a refresh ended, for health answers: when (seconds since the epoch) and the error, if
/// it failed. Holds no token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshOutcome {
    /// When it ended, in seconds since the epoch.
    pub at: u64,
    /// Why it failed; `None` when it succeeded.
    pub error: Option<Error>,
}

impl Agent {
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

    /// The refresh under the store's lock (see [`refresh`](Agent::refresh)).
    pub(super) fn refresh_now(&mut self) -> Result<Session, Error> {
        self.store.lock()?;
        let result = self.refresh_locked();
        self.store.unlock();
        result
    }

    pub(super) fn refresh_locked(&mut self) -> Result<Session, Error> {
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
        // The session is good even if the save below fails: a long-running agent (the broker)
        // goes on with it and with the rotated token the store keeps in memory.
        let session = self.start_session(tokens.access_token, updated.instance_url.clone());
        if updated != record {
            debug!("the refresh changed the pairing (rotation or a new instance); storing it");
            if let Err(e) = self.store.save_rotated(&updated) {
                return Err(Error::storage(format!(
                    "the server rotated the refresh token but it could not be stored ({e}). \
                     {} still holds the previous token, which the server may no longer accept; \
                     this process keeps the new one in memory and stores it as soon as it can. \
                     Free space or fix the store, or the device will need to pair again",
                    self.store.describe()
                )));
            }
        }
        Ok(session)
    }

    /// Why the server refused the last refresh (revoked or expired, IP restricted, secret
    /// required, ...), or `None` when the last refresh did not fail that way. For status lines
    /// (`notify::status_repair_needed`); the error's message names the cause too.
    pub fn last_refusal(&self) -> Option<crate::refusal::Cause> {
        self.last_refusal
    }
}
