//! Enrolment without a person: the JWT bearer and client credentials grants, and the asset
//! token exchange (docs/protocol.md, "Headless grants (JWT bearer, client credentials, asset
//! token)"). These grants have no refresh token: the agent runs the grant again when a
//! session is refused or too old (`agent/headless.rs`).
//!
//! This module builds requests and reads replies (`grant`), holds the one table of refusals
//! an admin can act on (`refusals`) and, with I/O, loads RSA keys (`key`). The JWT bytes are
//! `jwt.rs`. It sends nothing and sleeps nowhere: that is the agent.

pub mod grant;
#[cfg(any(feature = "jwt-bearer", feature = "asset-token"))]
pub mod key;
pub mod refusals;
pub mod signer;

use alloc::string::String;

use crate::url;

/// The JWT bearer `aud` for a login URL when `--audience` is not given: the test host for
/// sandboxes (`test.salesforce.com`, `*.sandbox.my.salesforce.com`), the login URL itself for
/// a loopback host (the simulator), else `https://login.salesforce.com` (also for a
/// production My Domain, as Salesforce documents).
pub fn default_audience(login_url: &str) -> String {
    let host = url::check(login_url)
        .map(|parts| parts.host.to_ascii_lowercase())
        .unwrap_or_default();
    if host == "test.salesforce.com" || host.ends_with(".sandbox.my.salesforce.com") {
        "https://test.salesforce.com".into()
    } else if host == "127.0.0.1" || host == "localhost" || host == "[::1]" || host == "::1" {
        login_url.trim_end_matches('/').into()
    } else {
        "https://login.salesforce.com".into()
    }
}

/// The client credentials flow works only on the org's My Domain: Salesforce's generic login
/// hosts answer "request not supported on this domain", so sfpair says so before asking.
pub fn is_generic_login_host(login_url: &str) -> bool {
    url::check(login_url).is_ok_and(|parts| {
        let host = parts.host.to_ascii_lowercase();
        host == "login.salesforce.com" || host == "test.salesforce.com"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audience_follows_the_login_host() {
        let aud = default_audience;
        assert_eq!(
            aud("https://login.salesforce.com"),
            "https://login.salesforce.com"
        );
        assert_eq!(
            aud("https://acme.my.salesforce.com"),
            "https://login.salesforce.com"
        );
        assert_eq!(
            aud("https://test.salesforce.com"),
            "https://test.salesforce.com"
        );
        assert_eq!(
            aud("https://acme--uat.sandbox.my.salesforce.com"),
            "https://test.salesforce.com"
        );
        assert_eq!(aud("https://127.0.0.1:8443/"), "https://127.0.0.1:8443");
        assert!(is_generic_login_host("https://login.salesforce.com"));
        assert!(is_generic_login_host("https://TEST.salesforce.com/"));
        assert!(!is_generic_login_host("https://acme.my.salesforce.com"));
    }
}
