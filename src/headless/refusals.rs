//! The one table of headless-grant refusals an admin can act on: the server's `error` and a
//! piece of its `error_description`, and what to change in Setup. A match is a usage or
//! configuration error (exit 2); anything else is exit 1 with the server's own words.
//!
//! The descriptions Salesforce is documented or reported to send are in docs/protocol.md,
//! "Headless grants (JWT bearer, client credentials, asset token)", which also marks the
//! wordings that are unconfirmed (the simulator sends those). Matching is on lower-case
//! substrings, so a reworded sentence around the same phrase still matches. Pure.

use alloc::format;
use alloc::string::String;

use crate::error::Error;
use crate::flow::reply::OAuthError;

/// One row: `error` (empty: any), a lower-case piece of `error_description`, the advice.
pub struct Refusal {
    pub error: &'static str,
    pub description: &'static str,
    pub advice: &'static str,
    /// The assertion's time window: the message adds what the local clock reads.
    pub clock: bool,
}

const fn row(error: &'static str, description: &'static str, advice: &'static str) -> Refusal {
    Refusal {
        error,
        description,
        advice,
        clock: false,
    }
}

/// First match wins: the specific rows come before the general ones.
/// Two texts of Salesforce's say the same thing.
const NOT_PRE_APPROVED: &str = "the user is not pre-approved for the app: in the app's Policies \
    set Permitted Users to \"Admin approved users are pre-authorized\" and add the user's profile \
    or a permission set that names the app";

pub const TABLE: &[Refusal] = &[
    row(
        "invalid_client_id",
        "",
        "the org does not know this consumer key: check --client-id against the app's \
         Consumer Key (Setup > External Client App Manager > the app > Settings > OAuth \
         Settings), and that the app is installed in this org",
    ),
    row("", "hasn't approved this consumer", NOT_PRE_APPROVED),
    row("", "not admin approved", NOT_PRE_APPROVED),
    row(
        "",
        "audience",
        "the assertion's audience is not this org's: https://login.salesforce.com for \
         production, https://test.salesforce.com for a sandbox, or the Experience Cloud site \
         URL; set it with --audience (SFPAIR_AUDIENCE)",
    ),
    Refusal {
        error: "",
        description: "expired",
        advice: "the assertion's time window (exp, at most 3 minutes ahead) does not fit the \
                 server's clock: set this device's clock (NTP), then try again",
        clock: true,
    },
    row(
        "",
        "certificate",
        "the app has no certificate, so the JWT bearer flow is off: in the app's OAuth settings \
         turn on the JWT bearer flow (\"Use digital signatures\") and upload the certificate \
         of this device's key",
    ),
    row(
        "",
        "actor token",
        "the actor token's signature does not match the key in its cnf.jwk: give --device-key \
         the private key whose public half goes into the token",
    ),
    row(
        "",
        "token exchange",
        "the app does not allow the asset token flow: in the app's settings enable asset \
         tokens, with the token signing certificate, the audiences and the validity",
    ),
    row(
        "",
        "not supported on this domain",
        "the client credentials flow works only on the org's My Domain: use --login-url \
         https://NAME.my.salesforce.com (Setup > My Domain)",
    ),
    row(
        "",
        "no client credentials user",
        "the app has no run-as user: in the app's Policies enable the client credentials flow \
         and set Run As to an integration user with the API Only permission",
    ),
    row(
        "invalid_client",
        "",
        "the consumer key and secret do not match: put the app's current Consumer Secret in \
         --client-secret-file (SFPAIR_CLIENT_SECRET_FILE)",
    ),
    row(
        "",
        "invalid assertion",
        "the assertion's signature does not match the app's certificate: --key-file is not the \
         key of the certificate uploaded to the app",
    ),
];

/// The row for a refusal, if there is one.
pub fn lookup(e: &OAuthError) -> Option<&'static Refusal> {
    TABLE.iter().find(|r| {
        (r.error.is_empty() || r.error == e.error)
            && (r.description.is_empty() || e.description_contains(r.description))
    })
}

/// The error for a refused `flow` (`"the JWT bearer grant"`): exit 2 with the advice, or exit
/// 1 with the server's `error` and `error_description`. `clock` is what the local clock reads,
/// for the time-window row.
pub fn error_for(flow: &str, e: &OAuthError, clock: &str) -> Error {
    match lookup(e) {
        Some(r) if r.clock => Error::config(format!(
            "{flow} was refused ({}): {}; this device's clock reads {clock}",
            e.summary(),
            r.advice
        )),
        Some(r) => Error::config(format!(
            "{flow} was refused ({}): {}",
            e.summary(),
            r.advice
        )),
        None => Error::server(format!("{flow} was refused: {}", e.summary())),
    }
}

/// For messages: the rows as `error | description -> advice` (docs and tests).
pub fn describe(r: &Refusal) -> String {
    format!("{} | {} -> {}", r.error, r.description, r.advice)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn e(error: &str, description: &str) -> OAuthError {
        OAuthError {
            error: error.to_string(),
            description: Some(description.to_string()),
            interval: None,
            status: 400,
        }
    }

    #[test]
    fn each_known_refusal_is_exit_2_and_the_rest_exit_1() {
        let cases = [
            (
                "invalid_client_id",
                "client identifier invalid",
                "Consumer Key",
            ),
            (
                "invalid_grant",
                "user hasn't approved this consumer",
                "pre-approved",
            ),
            (
                "invalid_app_access",
                "user is not admin approved to access this app",
                "pre-approved",
            ),
            ("invalid_grant", "audience is invalid", "--audience"),
            (
                "invalid_grant",
                "request not supported on this domain",
                "My Domain",
            ),
            (
                "invalid_grant",
                "no client credentials user enabled",
                "API Only",
            ),
            (
                "invalid_client",
                "invalid client credentials",
                "Consumer Secret",
            ),
        ];
        for (error, description, advice) in cases {
            let err = error_for("the grant", &e(error, description), "now");
            assert_eq!(err.exit_code(), 2, "{error} {description}");
            assert!(err.message().contains(advice), "{}", err.message());
            assert!(err.message().contains(description));
        }
        let clock = error_for(
            "the grant",
            &e("invalid_grant", "assertion expired"),
            "2026-12-01 10:00:00 UTC",
        );
        assert!(clock.message().contains("clock reads 2026-12-01"));
        let other = error_for("the grant", &e("weird", "what"), "now");
        assert_eq!(other.exit_code(), 1);
        assert!(other.message().contains("weird: what"));
        assert!(describe(&TABLE[0]).starts_with("invalid_client_id |"));
    }
}
