//! `grant_type=client_credentials` (RFC 6749 §4.4; Salesforce help "OAuth 2.0 Client
//! Credentials Flow for Server-to-Server Integration"): the consumer key and secret (form or
//! HTTP Basic) for the app's run-as user, on My Domain only; a session, no refresh token.

use std::time::Instant;

use crate::errors::oauth_error as error;
use crate::form::Params;
use crate::http::{Request, Response};
use crate::oauth;
use crate::state::Shared;

pub fn grant(shared: &Shared, request: &Request, params: &Params) -> Response {
    let config = &shared.config.headless;
    if !config.my_domain {
        return error(400, "invalid_grant", "request not supported on this domain");
    }
    let (client_id, secret) = oauth::client_credentials(request, params);
    if let Err(refusal) = oauth::check_client(shared, client_id.as_deref()) {
        return refusal;
    }
    let expected = shared.config.consumer_secret.as_deref();
    if expected.is_none() || secret.as_deref() != expected {
        return error(400, "invalid_client", "invalid client credentials");
    }
    if !config.run_as_user {
        return error(400, "invalid_grant", "no client credentials user enabled");
    }
    oauth::headless_session(shared, Instant::now())
}
