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

/// Splits an absolute `http`/`https` URL, or `None` when it is not one.
pub fn parse(url: &str) -> Option<Parts<'_>> {
    let (scheme, rest) = url.split_once("://")?;
    if !scheme.eq_ignore_ascii_case("https") && !scheme.eq_ignore_ascii_case("http") {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.contains('@') {
        // User info in a login URL is a mistake at best and a phishing trick at worst.
        return None;
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        (host, port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p.parse().ok()?)),
            None => (authority, None),
        }
    };
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return None;
    }
    Some(Parts {
        scheme,
        host,
        port,
        path,
    })
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
