//! PKCS#11 URIs (RFC 7512): which token, which object, and where the module is.
//!
//! `pkcs11:token=dev;object=sfpair?module-path=/usr/lib/softhsm/libsofthsm2.so`. Path
//! attributes (`;`-separated) choose the token (`token`, `manufacturer`, `model`, `serial`)
//! and the object (`object` = its label, `id`, `type`); query attributes (`&`-separated) say
//! how to reach it (`module-path`, `pin-source`). Values are percent-encoded (RFC 7512 §2.3).
//!
//! A URI is stored in the record (it names the sealer, or the JWT key), so it must never hold
//! a secret: `pin-value` is refused. An attribute this parser does not know is refused too
//! (RFC 7512 §2.3: a URI with an unknown attribute matches nothing), so a typo is an error
//! rather than a wider match.

use std::path::PathBuf;

use crate::error::Error;

/// A parsed URI. Empty fields match anything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Uri {
    pub token: Option<String>,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    /// The object's label (`CKA_LABEL`).
    pub object: Option<String>,
    /// The object's `CKA_ID`, as bytes.
    pub id: Option<Vec<u8>>,
    pub module_path: Option<PathBuf>,
    /// A file holding the PIN (`pin-source=file:/path` or `pin-source=/path`).
    pub pin_source: Option<PathBuf>,
}

/// A refusal naming the URI without its query part (which might hold a PIN).
fn bad(uri: &str, why: &str) -> Error {
    let shown = uri.split('?').next().unwrap_or_default();
    Error::config(format!(
        "the PKCS#11 URI '{shown}' {why} (RFC 7512, docs/sealing.md)"
    ))
}

/// RFC 3986 percent-decoding.
fn decode(raw: &str, uri: &str) -> Result<Vec<u8>, Error> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = raw
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| bad(uri, "has a bad %-escape"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn text(raw: &str, uri: &str) -> Result<String, Error> {
    String::from_utf8(decode(raw, uri)?).map_err(|_| bad(uri, "has a value that is not UTF-8"))
}

impl Uri {
    pub fn parse(uri: &str) -> Result<Uri, Error> {
        let rest = uri
            .strip_prefix("pkcs11:")
            .ok_or_else(|| bad(uri, "does not start with pkcs11:"))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut out = Uri::default();
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            let (name, value) = attr
                .split_once('=')
                .ok_or_else(|| bad(uri, "has an attribute without a value"))?;
            match name {
                "token" => out.token = Some(text(value, uri)?),
                "manufacturer" => out.manufacturer = Some(text(value, uri)?),
                "model" => out.model = Some(text(value, uri)?),
                "serial" => out.serial = Some(text(value, uri)?),
                "object" => out.object = Some(text(value, uri)?),
                "id" => out.id = Some(decode(value, uri)?),
                // The operation decides the class (a private key to sign or unwrap, the
                // public one to wrap); a URI may still say which kind of key it means.
                "type" if matches!(value, "private" | "public") => {}
                other => {
                    return Err(bad(
                        uri,
                        &format!("has '{other}', which sfpair does not use"),
                    ));
                }
            }
        }
        for attr in query.split('&').filter(|a| !a.is_empty()) {
            let (name, value) = attr
                .split_once('=')
                .ok_or_else(|| bad(uri, "has a query attribute without a value"))?;
            match name {
                "module-path" => out.module_path = Some(PathBuf::from(text(value, uri)?)),
                "pin-source" => {
                    let source = text(value, uri)?;
                    let path = source.strip_prefix("file:").unwrap_or(&source);
                    out.pin_source = Some(PathBuf::from(path));
                }
                "pin-value" => {
                    return Err(bad(
                        uri,
                        "holds the PIN itself: the URI is stored and shown, so give the PIN in a \
                         file (--pkcs11-pin-file, or pin-source=file:PATH)",
                    ));
                }
                other => {
                    return Err(bad(
                        uri,
                        &format!("has '{other}', which sfpair does not use"),
                    ));
                }
            }
        }
        if out.object.is_none() && out.id.is_none() {
            return Err(bad(uri, "names no object: add object=LABEL (or id=)"));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_and_query_attributes_parse_with_percent_escapes() {
        let uri = Uri::parse(
            "pkcs11:token=My%20Token;object=sfpair;id=%01%02;type=private\
             ?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/sfpair/pin",
        )
        .unwrap();
        assert_eq!(uri.token.as_deref(), Some("My Token"));
        assert_eq!(uri.object.as_deref(), Some("sfpair"));
        assert_eq!(uri.id.as_deref(), Some(&[1u8, 2][..]));
        assert_eq!(
            uri.module_path,
            Some(PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"))
        );
        assert_eq!(uri.pin_source, Some(PathBuf::from("/etc/sfpair/pin")));
    }

    #[test]
    fn a_pin_in_the_uri_unknown_attributes_and_no_object_are_refused() {
        for (uri, needle) in [
            ("pkcs11:token=dev;object=k?pin-value=1234", "PIN itself"),
            ("pkcs11:token=dev;objet=k", "'objet'"),
            ("pkcs11:token=dev", "names no object"),
            ("pkcs11:object=%zz", "%-escape"),
            ("pkcs11:object", "without a value"),
        ] {
            let e = Uri::parse(uri).unwrap_err();
            assert!(e.message().contains(needle), "{uri}: {e}");
            assert!(!e.message().contains("1234"), "the PIN is never shown: {e}");
        }
    }
}
