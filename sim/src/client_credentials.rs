//! `grant_type=client_credentials` (RFC 6749 §4.4; Salesforce help "OAuth 2.0 Client
//! Credentials Flow for Server-to-Server Integration"): the consumer key and secret (form or
//! HTTP Basic) for the app's run-as user, on My Domain only; a session, no refresh token.

use crate::errors::oauth_error as error;
use crate::http::Response;
use crate::state::Shared;

/// `Ok` when the key and secret earn a session (`oauth.rs` reads them from the form or HTTP
/// Basic and mints it); `check_client` is the token endpoint's consumer-key rule.
pub fn check(
    shared: &Shared,
    client_id: Option<&str>,
    secret: Option<&str>,
    check_client: impl Fn(Option<&str>) -> Result<(), Response>,
) -> Result<(), Response> {
    let config = &shared.config.headless;
    if !config.my_domain {
        return Err(error(
            400,
            "invalid_grant",
            "request not supported on this domain",
        ));
    }
    check_client(client_id)?;
    let expected = shared.config.consumer_secret.as_deref();
    if expected.is_none() || secret != expected {
        return Err(error(400, "invalid_client", "invalid client credentials"));
    }
    if !config.run_as_user {
        return Err(error(
            400,
            "invalid_grant",
            "no client credentials user enabled",
        ));
    }
    Ok(())
}
