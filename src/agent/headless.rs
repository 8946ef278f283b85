//! The agent's side of the headless grants: enrol (JWT bearer or client credentials), run the
//! grant again when a session is needed (these grants have no refresh token), and exchange the
//! session for an asset token. The requests and the refusal table are `headless/`; this file
//! only builds assertions at the agent's clock, sends, and stores.
//!
//! A record made here names the key file and the audience, never the key, the assertion or the
//! consumer secret; the secret comes from the settings each time (its one route is
//! [`Agent::set_client_secret`]).

// Builds without some of the grants (`--no-default-features`) leave parts of this file unused.
#![cfg_attr(
    not(all(
        feature = "jwt-bearer",
        feature = "client-credentials",
        feature = "asset-token"
    )),
    allow(unused_imports, unused_variables, unreachable_code, dead_code)
)]

#[cfg(any(feature = "jwt-bearer", feature = "asset-token"))]
use std::path::Path;

use log::debug;

use super::Agent;
use crate::api::Outcome;
use crate::error::Error;
use crate::event::{Event, Paired};
use crate::flow::dialect::{Dialect, Endpoints};
use crate::flow::reply::TokenReply;
use crate::headless::grant::{self, Granted};
#[cfg(any(feature = "jwt-bearer", feature = "asset-token"))]
use crate::headless::key::SigningKey;
use crate::headless::refusals;
#[cfg(any(feature = "jwt-bearer", feature = "asset-token"))]
use crate::jwt;
#[cfg(feature = "asset-token")]
use crate::jwt::DeviceClaims;
use crate::secret::Secret;
use crate::session::Session;
use crate::signature;
use crate::store::Record;
use crate::store::record::{Grant, Headless};
use crate::url;

/// What `sfpair pair --flow jwt-bearer|client-credentials` enrols with.
#[derive(Clone, Debug)]
pub struct Enrolment {
    /// The normalized login URL (My Domain, login or test host).
    pub login_url: String,
    /// The app's consumer key.
    pub client_id: String,
    /// A headless grant (not `Grant::Device`).
    pub grant: Grant,
}

impl Agent {
    /// Runs the headless grant once, and stores a record that says how to run it again. The
    /// previous pairing, if any, is replaced only when the new record is stored.
    pub fn enrol(&mut self, enrolment: Enrolment) -> Result<Paired, Error> {
        let result = self.enrol_inner(enrolment);
        if let Err(e) = &result {
            self.emit(&Event::Failed(e.clone()));
        }
        result
    }

    fn enrol_inner(&mut self, enrolment: Enrolment) -> Result<Paired, Error> {
        self.store.check_writable()?;
        let endpoints = Endpoints::salesforce(&enrolment.login_url);
        let mut record = Record {
            refresh_token: Secret::new(""),
            client_id: enrolment.client_id,
            dialect: Dialect::Salesforce,
            login_url: enrolment.login_url.clone(),
            token_url: endpoints.token,
            revoke_url: endpoints.revoke,
            instance_url: String::new(),
            identity_url: String::new(),
            scope: String::new(),
            issued_at_ms: 0,
            paired_at: self.clock.unix_time().as_secs(),
            grant: enrolment.grant,
        };
        let tokens = self.run_grant(&record, "enrolment")?;
        record.instance_url =
            Agent::instance_from(tokens.instance_url.clone(), Some(enrolment.login_url))?;
        record.identity_url = tokens.id.clone().unwrap_or_default();
        record.scope = tokens.scope.clone().unwrap_or_default();
        record.issued_at_ms = tokens
            .issued_at
            .as_deref()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let how = format!("enrolled with the {} grant", record.grant.name());
        self.finish_pairing(record, tokens.access_token, &how)
    }

    /// A new session for a headless record: the grant once more (there is no refresh token).
    pub(super) fn regrant(&mut self, record: &Record) -> Result<Session, Error> {
        let tokens = self.run_grant(record, "new session")?;
        let instance = tokens
            .instance_url
            .filter(|u| url::is_secure(u))
            .map(|u| u.trim_end_matches('/').to_string())
            .unwrap_or_else(|| record.instance_url.clone());
        Ok(self.start_session(tokens.access_token, instance))
    }

    /// Builds and sends the record's grant: a JWT bearer assertion signed now, or the client
    /// credentials; retries transient failures; turns refusals into the table's advice.
    fn run_grant(&mut self, record: &Record, why: &str) -> Result<TokenReply, Error> {
        let Some(headless) = record.grant.headless() else {
            return Err(Error::config(
                "this pairing uses the device flow's refresh token, not a headless grant",
            ));
        };
        let (flow, request) = match headless {
            #[cfg(feature = "jwt-bearer")]
            Headless::JwtBearer {
                username,
                key_file,
                audience,
            } => {
                let now = self.clock.unix_time().as_secs();
                let claims = jwt::bearer_claims(&record.client_id, username, audience, now);
                let input = jwt::signing_input(jwt::HEADER_RS256, &claims);
                let signature = crate::headless::signer::sign_rs256(
                    key_file,
                    input.as_bytes(),
                    &self.key_access,
                )?;
                let assertion = Secret::new(jwt::assemble(&input, &signature));
                (
                    "the JWT bearer grant",
                    grant::jwt_bearer_request(&record.token_url, &assertion),
                )
            }
            #[cfg(feature = "client-credentials")]
            Headless::ClientCredentials { .. } => {
                let secret = self.client_secret.clone().ok_or_else(|| {
                    Error::config(
                        "the client credentials flow needs the consumer secret: give \
                         --client-secret-file FILE (or SFPAIR_CLIENT_SECRET_FILE) with the app's \
                         Consumer Secret",
                    )
                })?;
                (
                    "the client credentials grant",
                    grant::client_credentials_request(
                        &record.token_url,
                        &record.client_id,
                        &secret,
                    ),
                )
            }
            #[allow(unreachable_patterns)]
            other => return Err(not_built(other)),
        };
        debug!("{why}: {flow} to {}", record.token_url);
        let clock = crate::time::format_utc(self.clock.unix_time().as_secs());
        let tokens = self.exchange(&request, |reply| match grant::session_reply(reply) {
            Granted::Ok(tokens) => Outcome::Done(tokens),
            Granted::Refused(e) => Outcome::Fail(refusals::error_for(flow, &e, &clock)),
            Granted::Other(outcome) => outcome,
        })?;
        if let Some(secret) = &self.client_secret {
            signature::verify_reply(&tokens, secret, why)?;
        }
        Ok(tokens)
    }

    #[cfg(feature = "asset-token")]
    /// The asset token flow: exchanges the current session (any flow) and an actor token about
    /// this device for an asset token. With `device_key` the actor token carries its public
    /// half (`cnf.jwk`) and is signed RS256 with it; without, it is an unsigned JWT
    /// (`alg: none`). The reply is returned whole; nothing is stored (the token is short-lived).
    /// A session refused as expired is renewed once, as for REST calls.
    pub fn asset_token(
        &mut self,
        device: &DeviceClaims,
        device_key: Option<&Path>,
    ) -> Result<serde_json::Value, Error> {
        let key = device_key
            .map(|path| SigningKey::load(path, "device key (--device-key)"))
            .transpose()?;
        let claims = jwt::actor_claims(device, key.as_ref().map(|k| k.public()).as_ref());
        let actor = match &key {
            Some(key) => {
                let input = jwt::signing_input(jwt::HEADER_RS256, &claims);
                let signature = key.sign_rs256(input.as_bytes())?;
                jwt::assemble(&input, &signature)
            }
            None => jwt::assemble(&jwt::signing_input(jwt::HEADER_NONE, &claims), &[]),
        };
        let actor = Secret::new(actor);
        let record = self.stored()?;
        let clock = crate::time::format_utc(self.clock.unix_time().as_secs());
        let mut session = self.access_token()?;
        let mut refused = None;
        for attempt in 0..2 {
            let request =
                grant::token_exchange_request(&record.token_url, &session.access_token, &actor);
            let result = self.exchange(&request, |reply| match grant::exchange_reply(reply) {
                Granted::Ok(v) => Outcome::Done(Ok(v)),
                // A refused session: renewed once below, like a REST call's 401.
                Granted::Refused(e)
                    if e.error == "invalid_grant" && e.description_contains("session") =>
                {
                    Outcome::Done(Err(e))
                }
                Granted::Refused(e) => {
                    Outcome::Fail(refusals::error_for("the asset token exchange", &e, &clock))
                }
                Granted::Other(outcome) => match outcome {
                    Outcome::Done(v) => Outcome::Done(Ok(v)),
                    Outcome::Retry(r) => Outcome::Retry(r),
                    Outcome::Fail(e) => Outcome::Fail(e),
                },
            })?;
            match result {
                Ok(reply) => return Ok(reply),
                Err(e) => {
                    refused = Some(e);
                    if attempt == 0 {
                        debug!("the subject token was refused; renewing the session once");
                        self.session_refused(session.generation);
                        session = self.access_token()?;
                    }
                }
            }
        }
        Err(match refused {
            Some(e) => refusals::error_for("the asset token exchange", &e, &clock),
            None => Error::server("the asset token exchange gave no answer"),
        })
    }
}

/// A stored grant this build leaves out (a minimal build reading a full build's record).
#[allow(dead_code)]
fn not_built(grant: &Headless) -> Error {
    let name = match grant {
        Headless::JwtBearer { .. } => "jwt-bearer",
        Headless::ClientCredentials { .. } => "client-credentials",
    };
    Error::config(format!(
        "this pairing uses the {name} grant, but this sfpair was built without the `{name}` \
         feature: use a build with it, or pair again (`sfpair pair --force`)"
    ))
}
