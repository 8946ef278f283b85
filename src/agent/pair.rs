//! Pairing with a person: the device flow run to the end (`pair`), an RFC 8628 provider's
//! endpoints from its metadata (`discover`), and how every new pairing is finished, whoever made
//! it (the device flow here, a headless grant in `headless.rs`): stored under the store's lock,
//! the pairing it replaced revoked, a first session cached, `Paired` shown.
//!
//! The one place the agent waits for a person; it sleeps only through the clock.

use std::time::Duration;

use log::{debug, info, warn};

use super::{Agent, TICK};
use crate::api::{self, Outcome};
use crate::error::{Error, ErrorKind};
use crate::event::{Event, Paired};
use crate::flow::dialect::Dialect;
use crate::flow::reply::TokenReply;
use crate::flow::{Action, Flow, FlowConfig};
use crate::secret::Secret;
use crate::signature;
use crate::store::record::Grant;
use crate::store::{Loaded, Record};
use crate::time::Instant;
use crate::url;
use crate::wire::Request;

impl Agent {
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
            let step = match action {
                Action::Wait(until) => self.wait_until(until, flow.code_deadline()),
                Action::Send(request) => self.stop.check("pairing").map(|()| {
                    let outcome = self.transport.send(&request);
                    if let Err(e) = &outcome {
                        debug!("request failed: {e}");
                    }
                    flow.handle(self.clock.now(), outcome);
                }),
                Action::Done(Ok(tokens)) => break tokens,
                Action::Done(Err(e)) => Err(e),
            };
            if let Err(e) = step {
                self.emit(&Event::Failed(e.clone()));
                return Err(e);
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
        let finished = verified
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
            .and_then(|record| self.finish_pairing(record, session_token, "paired"));
        finished.inspect_err(|e| {
            self.emit(&Event::Failed(e.clone()));
            if let Some(request) = orphan {
                let revoked = self.transport.send(&request).is_ok();
                debug!("revoked the grant that could not be stored: {revoked}");
            }
        })
    }

    /// Finishes a new pairing, whoever made it (the device flow, or a headless grant): stores
    /// `record` under the store's lock ([`store_pairing`](Agent::store_pairing)), revokes what it
    /// replaced, caches the first session, and shows `Paired`. `how` begins the log line.
    pub(super) fn finish_pairing(
        &mut self,
        record: Record,
        access_token: Secret,
        how: &str,
    ) -> Result<Paired, Error> {
        let mut previous = None;
        let record = self.store_pairing(record, &mut previous)?;
        info!("{how}; the pairing is stored in {}", self.store.describe());
        self.revoke_previous(previous, &record);
        self.start_session(access_token, record.instance_url.clone());
        let (org_id, user_id) = api::org_and_user(&record.identity_url);
        let paired = Paired {
            instance_url: record.instance_url,
            org_id,
            user_id,
        };
        self.emit(&Event::Paired(paired.clone()));
        Ok(paired)
    }

    /// The instance URL a token reply gives (else `fallback`), which must be https: every REST
    /// call and the broker's answers go there with the session.
    pub(super) fn instance_from(
        reply: Option<String>,
        fallback: Option<String>,
    ) -> Result<String, Error> {
        let instance_url = reply
            .filter(|u| !u.is_empty())
            .or(fallback)
            .unwrap_or_default();
        if !url::is_secure(&instance_url) {
            return Err(Error::server(format!(
                "the server gave an instance URL that is not https ({instance_url}); nothing \
                 was stored"
            )));
        }
        Ok(instance_url.trim_end_matches('/').to_string())
    }

    /// Revokes the refresh token of the pairing `new` replaced (a headless one has none).
    pub(super) fn revoke_previous(&mut self, previous: Option<Record>, new: &Record) {
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

    /// Stores a new pairing under the store's lock. What it replaces is read under that lock,
    /// not when the pairing started: during the minutes a code waits for approval another
    /// process may have rotated the old token or stored a pairing of its own, and whatever is
    /// replaced is what must be revoked (`previous`), so no grant is left behind at the server.
    /// The lock is not held during the wait itself: that would stall `token` and the broker
    /// for as long as a technician takes. Two concurrent pairings (a store without a pairing
    /// lock, `TokenStore::try_lock_pairing`): the last stored wins and revokes the other's grant.
    pub(super) fn store_pairing(
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

    pub(super) fn record_from(
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
        let instance_url = Agent::instance_from(tokens.instance_url, url::origin(&token_url))?;
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
            instance_url,
            identity_url: tokens.id.unwrap_or_default(),
            scope: tokens.scope.unwrap_or(requested_scope),
            issued_at_ms: tokens.issued_at.and_then(|s| s.parse().ok()).unwrap_or(0),
            paired_at: self.clock.unix_time().as_secs(),
            grant: Grant::Device,
        })
    }

    /// Sleeps until `until`, in steps that keep the countdown on whole seconds; a stop ends it.
    pub(super) fn wait_until(
        &mut self,
        until: Instant,
        code_deadline: Option<Instant>,
    ) -> Result<(), Error> {
        loop {
            let now = self.clock.now();
            if now >= until {
                return Ok(());
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
            self.pause(step, "waiting for the approval")?;
        }
    }
}
