//! Request parameters: query strings, `application/x-www-form-urlencoded` bodies and
//! `multipart/form-data` bodies (the Salesforce CLI sends the latter,
//! docs/protocol.md, "Device code request").
//!
//! Pure parsing; the values may be secrets, so nothing here prints them.

use crate::http::Request;

/// Name/value pairs in arrival order.
#[derive(Debug, Default, PartialEq)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// The first value of `name`, if present and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// Parses `a=1&b=x%20y` (also a query string).
    pub fn urlencoded(text: &[u8]) -> Params {
        Params(
            text.split(|&b| b == b'&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let mut parts = pair.splitn(2, |&b| b == b'=');
                    let name = percent_decode(parts.next().unwrap_or_default());
                    let value = percent_decode(parts.next().unwrap_or_default());
                    (name, value)
                })
                .collect(),
        )
    }

    /// Parses a multipart body; parts without a `name` are skipped, files are read as text.
    pub fn multipart(body: &[u8], boundary: &str) -> Params {
        let delimiter = format!("--{boundary}");
        let mut pairs = Vec::new();
        for part in split(body, delimiter.as_bytes()).into_iter().skip(1) {
            if part.starts_with(b"--") {
                break; // the closing delimiter
            }
            let part = part.strip_prefix(b"\r\n").unwrap_or(part);
            let Some(split_at) = part.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let headers = String::from_utf8_lossy(&part[..split_at]);
            let value = &part[split_at + 4..];
            let value = value.strip_suffix(b"\r\n").unwrap_or(value);
            if let Some(name) = disposition_name(&headers) {
                pairs.push((name, String::from_utf8_lossy(value).into_owned()));
            }
        }
        Params(pairs)
    }

    /// The body's parameters, by content type. A body without a content type is read as
    /// urlencoded, which is what `curl -d` means; other types carry no parameters.
    pub fn from_body(request: &Request) -> Params {
        let content_type = request
            .header("content-type")
            .unwrap_or("application/x-www-form-urlencoded");
        let mime = content_type.split(';').next().unwrap_or("").trim();
        if mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            Params::urlencoded(&request.body)
        } else if mime.eq_ignore_ascii_case("multipart/form-data") {
            match attribute(content_type, "boundary") {
                Some(boundary) => Params::multipart(&request.body, &boundary),
                None => Params::default(),
            }
        } else {
            Params::default()
        }
    }

    /// The query string's parameters followed by the body's, so `get` prefers the query.
    pub fn from_query_and_body(request: &Request) -> Params {
        let mut params = Params::urlencoded(request.query.as_bytes());
        params.0.extend(Params::from_body(request).0);
        params
    }
}

/// `name="x"` from a part's `Content-Disposition: form-data; name="x"` header.
fn disposition_name(headers: &str) -> Option<String> {
    headers
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))
        .and_then(|l| attribute(l, "name"))
}

/// The value of `key=value` or `key="value"` among `;`-separated header attributes.
fn attribute(header: &str, key: &str) -> Option<String> {
    header.split(';').skip(1).find_map(|attr| {
        let (k, v) = attr.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(key)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

fn split<'a>(data: &'a [u8], delimiter: &[u8]) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    let mut rest = data;
    while let Some(i) = rest.windows(delimiter.len()).position(|w| w == delimiter) {
        parts.push(&rest[..i]);
        rest = &rest[i + delimiter.len()..];
    }
    parts.push(rest);
    parts
}

/// `+` is a space and `%XX` a byte; malformed escapes are kept as they are.
fn percent_decode(text: &[u8]) -> String {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match (text[i], escaped(&text[i + 1..])) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 2;
            }
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The byte that the two hex digits at the start of `rest` spell.
fn escaped(rest: &[u8]) -> Option<u8> {
    let digit = |b: &u8| (*b as char).to_digit(16);
    let (high, low) = (digit(rest.first()?)?, digit(rest.get(1)?)?);
    Some((high * 16 + low) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlencoded_decodes_plus_and_percent() {
        let p = Params::urlencoded(b"scope=api%20refresh_token&code=a%2Bb%3D&x=a+b&bad=%zz&empty=");
        assert_eq!(p.get("scope"), Some("api refresh_token"));
        assert_eq!(p.get("code"), Some("a+b="));
        assert_eq!(p.get("x"), Some("a b"));
        assert_eq!(p.get("bad"), Some("%zz"));
        assert_eq!(p.get("empty"), None);
        assert_eq!(p.get("missing"), None);
    }

    #[test]
    fn trailing_percent_is_kept() {
        assert_eq!(Params::urlencoded(b"a=1%").get("a"), Some("1%"));
        assert_eq!(Params::urlencoded(b"a=%4").get("a"), Some("%4"));
    }

    #[test]
    fn multipart_as_the_salesforce_cli_sends_it() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"response_type\"\r\n\r\ndevice_code\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"scope\"\r\nContent-Type: text/plain\r\n\r\nrefresh_token web api\r\n\
--XyZ--\r\n";
        let p = Params::multipart(body, "XyZ");
        assert_eq!(p.get("response_type"), Some("device_code"));
        assert_eq!(p.get("scope"), Some("refresh_token web api"));
    }

    #[test]
    fn body_parsing_follows_the_content_type() {
        let mut request = Request {
            headers: vec![(
                "Content-Type".into(),
                "multipart/form-data; boundary=\"b1\"".into(),
            )],
            body: b"--b1\r\nContent-Disposition: form-data; name=\"code\"\r\n\r\nabc\r\n--b1--"
                .to_vec(),
            ..Request::default()
        };
        assert_eq!(Params::from_body(&request).get("code"), Some("abc"));

        request.headers = vec![("Content-Type".into(), "application/json".into())];
        assert_eq!(Params::from_body(&request), Params::default());

        request.headers.clear();
        request.body = b"code=xyz".to_vec();
        request.query = "code=q".into();
        assert_eq!(Params::from_body(&request).get("code"), Some("xyz"));
        assert_eq!(Params::from_query_and_body(&request).get("code"), Some("q"));
    }
}
