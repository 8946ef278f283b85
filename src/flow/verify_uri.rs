//! Which verification URLs a device code reply may send the user to (a hostile
//! server). The text and the QR code must lead to the same place, and that place must be one
//! the user can trust from what the screen shows:
//!
//! - Salesforce: `verification_uri` and `verification_uri_complete` are https URLs on the login
//!   host (the host of the device endpoint this agent asked), as Salesforce always sends.
//! - RFC 8628: `verification_uri` is https (the provider chooses its host, §3.2), and
//!   `verification_uri_complete`, which the QR encodes, is on the same host as the text
//!   `verification_uri` the screen shows: a one-tap link to another host is refused.
//! - Either: printable ASCII only (no spaces, no control characters), at most 2 KiB, so a URL
//!   cannot carry terminal escapes or hide a different host behind bidi tricks.
//!
//! Pure: the flow calls [`check`] where it accepts a code reply.

use alloc::format;
use alloc::string::String;

use super::dialect::Dialect;
use crate::url;

/// Longer URLs do not fit a QR code a phone can read from a small display anyway.
pub const MAX_URI: usize = 2048;

/// The host, lower-cased, when `uri` is an https URL of printable ASCII. Hosts, not origins,
/// are compared: the port does not change who runs the site (and a relay in front of the login
/// host, as in the fault tests, changes only the port).
fn https_host(field: &str, uri: &str) -> Result<String, String> {
    let authority = uri
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(""))
        .unwrap_or("");
    let why = if uri.len() > MAX_URI || !uri.bytes().all(|b| (0x21..=0x7E).contains(&b)) {
        "has spaces, control characters or more than 2 KiB"
    } else if authority.contains('@') {
        // https://a@b/ shows a and leads to b.
        "has user info before its host"
    } else {
        match url::parse(uri) {
            Some(p) if p.scheme.eq_ignore_ascii_case("https") && !p.host.is_empty() => {
                return Ok(p.host.to_ascii_lowercase());
            }
            _ => "is not an https URL",
        }
    };
    Err(refused(field, why))
}

fn refused(field: &str, why: &str) -> String {
    format!("the server sent a {field} that {why}; no code is shown")
}

/// Checks a code reply's URLs against the device endpoint the agent asked (`device_endpoint`).
/// `Err` is a message for people: the pairing stops as an unexpected server reply.
pub fn check(
    dialect: Dialect,
    device_endpoint: &str,
    verification_uri: &str,
    complete: Option<&str>,
) -> Result<(), String> {
    let shown = https_host("verification_uri", verification_uri)?;
    let encoded = match complete {
        Some(c) => Some(https_host("verification_uri_complete", c)?),
        None => None,
    };
    match dialect {
        Dialect::Salesforce => {
            let login = url::host(device_endpoint)
                .unwrap_or_default()
                .to_ascii_lowercase();
            for (field, host) in [
                ("verification_uri", Some(&shown)),
                ("verification_uri_complete", encoded.as_ref()),
            ] {
                if host.is_some_and(|h| *h != login) {
                    return Err(refused(field, "is not on the login host"));
                }
            }
        }
        Dialect::Rfc8628 => {
            if encoded.is_some_and(|h| h != shown) {
                return Err(refused(
                    "verification_uri_complete",
                    "is on another host than the verification_uri shown",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEVICE: &str = "https://login.salesforce.com/services/oauth2/token";

    #[test]
    fn salesforce_urls_must_be_https_on_the_login_host() {
        let ok = "https://login.salesforce.com/setup/connect";
        assert_eq!(check(Dialect::Salesforce, DEVICE, ok, None), Ok(()));
        assert_eq!(
            check(
                Dialect::Salesforce,
                DEVICE,
                "https://LOGIN.salesforce.com/setup/connect",
                Some("https://login.salesforce.com/setup/connect?user_code=A")
            ),
            Ok(())
        );
        for (uri, complete, needle) in [
            (
                "http://login.salesforce.com/setup/connect",
                None,
                "not an https URL",
            ),
            ("javascript:alert(1)", None, "not an https URL"),
            (
                "https://login.salesforce.com.evil.example/setup/connect",
                None,
                "not on the login host",
            ),
            (
                ok,
                Some("https://evil.example/x?user_code=A"),
                "verification_uri_complete that is not on the login host",
            ),
            (ok, Some("javascript:alert(1)"), "not an https URL"),
            (
                "https://login.salesforce.com/\x1b[2J",
                None,
                "control characters",
            ),
            ("https://login.salesforce.com/a b", None, "spaces"),
            (
                "https://evil.example@login.salesforce.com/setup/connect",
                None,
                "user info",
            ),
            (
                "https://login.salesforce.com@evil.example/setup/connect",
                None,
                "user info",
            ),
        ] {
            let err = check(Dialect::Salesforce, DEVICE, uri, complete).unwrap_err();
            assert!(err.contains(needle), "{uri}: {err}");
            assert!(!err.contains('\x1b'));
        }
    }

    #[test]
    fn rfc8628_qr_must_encode_the_host_the_text_shows() {
        let shown = "https://idp.example/device";
        assert_eq!(check(Dialect::Rfc8628, DEVICE, shown, None), Ok(()));
        assert_eq!(
            check(
                Dialect::Rfc8628,
                DEVICE,
                shown,
                Some("https://idp.example/device?user_code=A")
            ),
            Ok(())
        );
        let err = check(
            Dialect::Rfc8628,
            DEVICE,
            shown,
            Some("https://evil.example/device"),
        )
        .unwrap_err();
        assert!(err.contains("another host"), "{err}");
        assert!(check(Dialect::Rfc8628, DEVICE, "http://idp.example/device", None).is_err());
        let long = format!("https://idp.example/{}", "a".repeat(MAX_URI));
        assert!(check(Dialect::Rfc8628, DEVICE, &long, None).is_err());
    }
}
