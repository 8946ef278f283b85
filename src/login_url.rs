//! The Salesforce login URL rule, in one place: https (plain http only to a loopback address),
//! the host alone, not a Lightning domain. Flags, the environment and board profiles all go
//! through [`check`].
//!
//! Pure: text in, normalized text or an error out.

use alloc::format;
use alloc::string::{String, ToString};

use crate::error::Error;
use crate::url;

/// Production's login host: the default when nothing names another.
pub const DEFAULT: &str = "https://login.salesforce.com";

/// A Salesforce login URL, returned without a trailing slash; the error names the part that is
/// wrong and what to give instead.
pub fn check(raw: &str) -> Result<String, Error> {
    let bad = |why: &str| {
        Error::config(format!(
            "--login-url '{raw}' {why}. Use https://login.salesforce.com (production), \
             https://test.salesforce.com (sandbox) or your My Domain, \
             https://NAME.my.salesforce.com"
        ))
    };
    let parts = url::check(raw).map_err(|problem| bad(problem.describe()))?;
    if !url::is_secure(raw) {
        return Err(bad(
            "must use https (plain http is allowed only to a loopback address)",
        ));
    }
    if !parts.path.trim_end_matches('/').is_empty() {
        return Err(bad("must be the host alone, without a path"));
    }
    if url::canonical_host(parts.host).ends_with(".lightning.force.com") {
        return Err(bad("is a Lightning domain, which has no OAuth endpoints"));
    }
    Ok(raw.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_urls_are_checked_and_normalized() {
        assert_eq!(
            check("https://acme.my.salesforce.com/").unwrap(),
            "https://acme.my.salesforce.com"
        );
        assert_eq!(
            check("http://127.0.0.1:8443").unwrap(),
            "http://127.0.0.1:8443"
        );
        for (bad, why) in [
            ("http://login.salesforce.com", "must use https"),
            ("login.salesforce.com", "does not start with https://"),
            (
                "https://login.salesforce.com/services/oauth2/token",
                "without a path",
            ),
            ("https://acme.lightning.force.com", "Lightning domain"),
            ("https://acme.Lightning.force.com.", "Lightning domain"),
            ("https://me:pw@login.salesforce.com", "user:password@"),
            ("https://login.salesforce.com:99999", "port"),
            ("https://login.salesforce.com ", "trailing space"),
        ] {
            let e = check(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
            assert!(e.message().contains(why), "{bad}: {e}");
            assert!(e.message().contains("my.salesforce.com"), "{e}");
        }
    }
}
