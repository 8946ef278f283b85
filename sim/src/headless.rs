//! The approval-free grants' knobs and the JWT checks they share: the JWT bearer flow
//! (`jwt_bearer.rs`), the client credentials flow (`client_credentials.rs`) and the asset token
//! exchange (`token_exchange.rs`), as docs/protocol.md, "Headless grants (JWT bearer, client
//! credentials, asset token)" describes them.
//!
//! JWTs are parsed here and their RS256 signatures verified with ring; assertions and tokens
//! are never logged or echoed in an error.

use std::time::Duration;

use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::Value;

use crate::codes;

/// The org's settings for the headless grants. `Default` is an org where all three work,
/// except JWT bearer, which needs a public key to trust.
#[derive(Clone, Debug)]
pub struct Headless {
    /// PKCS#1 RSAPublicKey DER of the app's certificate; `None`: the app has no certificate,
    /// so the JWT bearer flow is off.
    pub jwt_public_key: Option<Vec<u8>>,
    /// The JWT bearer user is pre-approved (admin-approved users plus a profile or
    /// permission set); off: "user hasn't approved this consumer".
    pub pre_approved: bool,
    /// The app has a client credentials run-as user.
    pub run_as_user: bool,
    /// The sim stands for a My Domain host; off: the client credentials flow answers
    /// "request not supported on this domain", as the generic login hosts do.
    pub my_domain: bool,
    /// The app allows the asset token flow (token exchange).
    pub token_exchange: bool,
    /// The asset token's `expires_in`.
    pub asset_token_ttl: Duration,
    /// How far ahead an assertion's `exp` may be (Salesforce documents three minutes).
    pub max_exp_ahead: Duration,
}

impl Default for Headless {
    fn default() -> Self {
        Headless {
            jwt_public_key: None,
            pre_approved: true,
            run_as_user: true,
            my_domain: true,
            token_exchange: true,
            asset_token_ttl: Duration::from_secs(600),
            max_exp_ahead: Duration::from_secs(180),
        }
    }
}

impl Headless {
    /// Applies `--headless LIST` (see `sfpair-sim --help`).
    pub fn apply(&mut self, list: &str) -> Result<(), String> {
        for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            match item.split_once('=') {
                Some(("jwt-key", path)) => {
                    let pem = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
                    self.jwt_public_key =
                        Some(public_key_der(&pem).map_err(|e| format!("{path}: {e}"))?);
                }
                Some(("max-exp-ahead", s)) => {
                    let secs = s
                        .parse()
                        .map_err(|_| format!("max-exp-ahead={s} is not seconds"))?;
                    self.max_exp_ahead = Duration::from_secs(secs);
                }
                Some(("asset-ttl", s)) => {
                    let secs = s
                        .parse()
                        .map_err(|_| format!("asset-ttl={s} is not seconds"))?;
                    self.asset_token_ttl = Duration::from_secs(secs);
                }
                None if item == "no-pre-approval" => self.pre_approved = false,
                None if item == "no-run-as-user" => self.run_as_user = false,
                None if item == "not-my-domain" => self.my_domain = false,
                None if item == "no-token-exchange" => self.token_exchange = false,
                _ => return Err(format!("unknown item '{item}'")),
            }
        }
        Ok(())
    }
}

/// A parsed compact JWT.
pub struct Jwt {
    pub header: Value,
    pub claims: Value,
    /// `header.claims`, what the signature covers.
    pub signing_input: String,
    pub signature: Vec<u8>,
}

/// Decodes base64url with or without padding.
pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    codes::base64_decode(&text.replace('-', "+").replace('_', "/"))
}

pub fn b64url_encode(data: &[u8]) -> String {
    codes::base64_encode(data)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

/// Splits and decodes a compact JWT; `None` when it is not one.
pub fn parse(token: &str) -> Option<Jwt> {
    let mut parts = token.split('.');
    let (h, c, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    Some(Jwt {
        header: serde_json::from_slice(&b64url_decode(h)?).ok()?,
        claims: serde_json::from_slice(&b64url_decode(c)?).ok()?,
        signing_input: format!("{h}.{c}"),
        signature: b64url_decode(s)?,
    })
}

impl Jwt {
    pub fn alg(&self) -> Option<&str> {
        self.header.get("alg").and_then(Value::as_str)
    }

    /// RS256 over the signing input with a PKCS#1 RSAPublicKey DER.
    pub fn verifies_with_der(&self, der: &[u8]) -> bool {
        self.alg() == Some("RS256")
            && UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, der)
                .verify(self.signing_input.as_bytes(), &self.signature)
                .is_ok()
    }

    /// RS256 with a JWK's `n` and `e`.
    pub fn verifies_with_jwk(&self, jwk: &Value) -> bool {
        let part = |name| {
            jwk.get(name)
                .and_then(Value::as_str)
                .and_then(b64url_decode)
        };
        let (Some(n), Some(e)) = (part("n"), part("e")) else {
            return false;
        };
        jwk.get("kty").and_then(Value::as_str) == Some("RSA")
            && self.alg() == Some("RS256")
            && RsaPublicKeyComponents { n: &n, e: &e }
                .verify(
                    &RSA_PKCS1_2048_8192_SHA256,
                    self.signing_input.as_bytes(),
                    &self.signature,
                )
                .is_ok()
    }

    pub fn claim(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }
}

/// The PKCS#1 RSAPublicKey DER in a PEM file: `RSA PUBLIC KEY` as it is, or the key inside a
/// `PUBLIC KEY` (SubjectPublicKeyInfo, what `openssl pkey -pubout` writes).
pub fn public_key_der(pem: &str) -> Result<Vec<u8>, String> {
    let label = pem
        .lines()
        .find_map(|l| l.trim().strip_prefix("-----BEGIN ")?.strip_suffix("-----"))
        .ok_or("no -----BEGIN line")?
        .to_string();
    let body: String = pem
        .lines()
        .map(str::trim)
        .skip_while(|l| !l.starts_with("-----BEGIN "))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END "))
        .collect();
    let der = codes::base64_decode(&body).ok_or("the PEM body is not base64")?;
    match label.as_str() {
        "RSA PUBLIC KEY" => Ok(der),
        "PUBLIC KEY" => spki_key(&der).ok_or_else(|| "not an RSA SubjectPublicKeyInfo".into()),
        other => Err(format!("a {other}, not a PUBLIC KEY or RSA PUBLIC KEY")),
    }
}

/// One DER element at the start of `input`: (tag, contents, rest).
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |a, &b| (a << 8) | b as usize);
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// SEQUENCE { SEQUENCE { algorithm }, BIT STRING { 0, RSAPublicKey } } -> RSAPublicKey.
fn spki_key(spki: &[u8]) -> Option<Vec<u8>> {
    let (0x30, body, _) = der(spki)? else {
        return None;
    };
    let (0x30, _algorithm, rest) = der(body)? else {
        return None;
    };
    let (0x03, bits, _) = der(rest)? else {
        return None;
    };
    let (&0, key) = bits.split_first()? else {
        return None;
    };
    Some(key.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwts_split_and_decode() {
        let token = format!(
            "{}.{}.{}",
            b64url_encode(br#"{"alg":"none"}"#),
            b64url_encode(br#"{"did":"X"}"#),
            ""
        );
        let jwt = parse(&token).unwrap();
        assert_eq!(jwt.alg(), Some("none"));
        assert_eq!(jwt.claim("did"), Some("X"));
        assert!(jwt.signature.is_empty());
        assert!(parse("a.b").is_none());
        assert!(parse("a.b.c.d").is_none());
        assert!(!jwt.verifies_with_der(&[]));
    }

    #[test]
    fn der_walks_a_short_spki() {
        // SEQUENCE { SEQUENCE { NULL }, BIT STRING { 0, 0x30 0x00 } }
        let spki = [0x30, 0x08, 0x30, 0x02, 0x05, 0x00, 0x03, 0x03, 0x00, 0x30];
        assert!(
            spki_key(&spki).is_none(),
            "a BIT STRING shorter than it says"
        );
        let spki = [
            0x30, 0x09, 0x30, 0x02, 0x05, 0x00, 0x03, 0x03, 0x00, 0x30, 0x00,
        ];
        assert_eq!(spki_key(&spki).unwrap(), [0x30, 0x00]);
    }
}
