//! Just enough URL handling for sfpair: split `scheme://host[:port]/path`, tell loopback hosts
//! apart, and decide whether a URL may carry a token.
//!
//! Pure. The rule it enforces everywhere: https only, plain http only to a loopback address
//! (the simulator in tests), so a token never crosses a network in clear text.

use alloc::string::String;

/// The parts of an absolute http(s) URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parts<'a> {
    pub scheme: &'a str,
    /// Without brackets for IPv6 and without user info.
    pub host: &'a str,
    pub port: Option<u16>,
    /// From the first `/` (may be empty), including any query.
    pub path: &'a str,
}

/// Why a text is not an absolute http(s) URL, worded to finish "… is not usable: it …".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    /// No `scheme://`, or a scheme other than http and https.
    NotHttp,
    /// `user:password@` before the host: a mistake at best and a phishing trick at worst.
    UserInfo,
    /// A port that is not a number from 0 to 65535.
    BadPort,
    /// Nothing between `://` and the path.
    NoHost,
    /// A space or control character (often a trailing space from a copied value).
    Whitespace,
    /// `[` for an IPv6 address without its `]`.
    UnclosedBracket,
}

impl Problem {
    /// What is wrong, for messages: "has a space or control character in it".
    pub const fn describe(self) -> &'static str {
        match self {
            Problem::NotHttp => "does not start with https://",
            Problem::UserInfo => "has user:password@ before the host; give the host alone",
            Problem::BadPort => "has a port that is not a number from 1 to 65535",
            Problem::NoHost => "has no host name",
            Problem::Whitespace => {
                "has a space or control character in it (check for a trailing space)"
            }
            Problem::UnclosedBracket => "opens an IPv6 address with [ but never closes it",
        }
    }
}

/// Splits an absolute `http`/`https` URL, or `None` when it is not one.
pub fn parse(url: &str) -> Option<Parts<'_>> {
    check(url).ok()
}

/// Splits an absolute `http`/`https` URL, or says which part is wrong.
pub fn check(url: &str) -> Result<Parts<'_>, Problem> {
    if url.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(Problem::Whitespace);
    }
    let (scheme, rest) = url.split_once("://").ok_or(Problem::NotHttp)?;
    if !scheme.eq_ignore_ascii_case("https") && !scheme.eq_ignore_ascii_case("http") {
        return Err(Problem::NotHttp);
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.contains('@') {
        return Err(Problem::UserInfo);
    }
    let port = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or(Problem::BadPort)
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or(Problem::UnclosedBracket)?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(port(p)?),
            None if after.is_empty() => None,
            None => return Err(Problem::BadPort),
        };
        (host, port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(port(p)?)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(Problem::NoHost);
    }
    Ok(Parts {
        scheme,
        host,
        port,
        path,
    })
}

/// The host as DNS sees it: lower case, without the trailing dot of a fully qualified name
/// (`ACME.my.salesforce.com.` is `acme.my.salesforce.com`).
pub fn canonical_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// 127.0.0.0/8, ::1 and `localhost`.
pub fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host == "::1"
        || host.strip_prefix("127.").is_some_and(|rest| {
            rest.split('.').count() == 3 && rest.split('.').all(|o| o.parse::<u8>().is_ok())
        })
}

/// May a token be sent to this URL? https anywhere, http only to loopback.
pub fn is_secure(url: &str) -> bool {
    match parse(url) {
        Some(p) if p.scheme.eq_ignore_ascii_case("https") => true,
        Some(p) => is_loopback_host(p.host),
        None => false,
    }
}

/// The host, for messages and for the one-line hint on small displays.
pub fn host(url: &str) -> Option<&str> {
    parse(url).map(|p| p.host)
}

/// `scheme://host[:port]` with the path dropped.
pub fn origin(url: &str) -> Option<String> {
    let p = parse(url)?;
    Some(String::from(&url[..url.len() - p.path.len()]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_the_urls_sfpair_meets() {
        let p = parse("https://acme--dev.sandbox.my.salesforce.com/services/oauth2/token").unwrap();
        assert_eq!(p.host, "acme--dev.sandbox.my.salesforce.com");
        assert_eq!(p.port, None);
        assert_eq!(p.path, "/services/oauth2/token");
        let p = parse("https://127.0.0.1:8443").unwrap();
        assert_eq!((p.host, p.port, p.path), ("127.0.0.1", Some(8443), ""));
        let p = parse("http://[::1]:80/x?y").unwrap();
        assert_eq!((p.host, p.port, p.path), ("::1", Some(80), "/x?y"));
        assert_eq!(origin("https://h:1/a/b").unwrap(), "https://h:1");
    }

    #[test]
    fn refuses_what_is_not_an_http_url() {
        for bad in [
            "login.salesforce.com",
            "ftp://x",
            "https://",
            "https://user:pw@login.salesforce.com",
            "https://h:notaport/",
            "https://[::1",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn says_which_part_is_wrong() {
        for (bad, problem) in [
            ("login.salesforce.com", Problem::NotHttp),
            ("https://user:pw@login.salesforce.com", Problem::UserInfo),
            ("https://login.salesforce.com:99999", Problem::BadPort),
            ("https://login.salesforce.com:0", Problem::BadPort),
            ("https://login.salesforce.com ", Problem::Whitespace),
            ("https://", Problem::NoHost),
            ("https://[::1", Problem::UnclosedBracket),
        ] {
            assert_eq!(check(bad), Err(problem), "{bad}");
        }
        assert_eq!(
            canonical_host("ACME.Lightning.force.com."),
            "acme.lightning.force.com"
        );
    }

    #[test]
    fn plain_http_only_to_loopback() {
        assert!(is_secure("https://login.salesforce.com"));
        assert!(is_secure("http://127.0.0.1:9000/x"));
        assert!(is_secure("http://localhost/x"));
        assert!(is_secure("http://[::1]/x"));
        assert!(!is_secure("http://login.salesforce.com"));
        assert!(!is_secure("http://127.0.0.1.evil.example/"));
        assert!(!is_secure("http://10.0.0.1/"));
    }
}
