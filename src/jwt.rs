//! JSON Web Tokens as the headless grants need them (RFC 7519, RFC 7515 compact form): the
//! header and claims as JSON, base64url without padding, the signing input, and the assembled
//! token. Pure: no I/O, no clock, no key. The caller passes the time and signs the signing
//! input (`headless::key` signs RS256); this file only lays out bytes, so a fixed key, claims
//! and clock give a fixed token (pinned in the tests).
//!
//! What goes in each token is docs/protocol.md, "Headless grants (JWT bearer, client
//! credentials, asset token)". The header is Salesforce's documented `{"alg":"RS256"}` exactly.

use alloc::string::String;
use alloc::vec::Vec;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// Salesforce allows an assertion to expire at most three minutes ahead (help: "OAuth 2.0 JWT
/// Bearer Flow for Server-to-Server Integration"); we ask for a little less, so a clock a few
/// seconds fast at the server still accepts it.
pub const ASSERTION_LIFETIME_SECS: u64 = 150;

/// The header of every signed token we make.
pub const HEADER_RS256: &str = r#"{"alg":"RS256"}"#;
/// The header of an unsigned actor token (RFC 7519 §6, "Unsecured JWTs").
pub const HEADER_NONE: &str = r#"{"alg":"none"}"#;

pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `base64url(header) . base64url(claims)`: the bytes an RS256 signature covers.
pub fn signing_input(header: &str, claims: &Value) -> String {
    let claims = serde_json::to_vec(claims).unwrap_or_default();
    let mut out = b64url(header.as_bytes());
    out.push('.');
    out.push_str(&b64url(&claims));
    out
}

/// The compact token: the signing input, a dot, and the signature (empty for `alg: none`).
pub fn assemble(signing_input: &str, signature: &[u8]) -> String {
    let mut out = String::with_capacity(signing_input.len() + 1 + signature.len() * 4 / 3 + 4);
    out.push_str(signing_input);
    out.push('.');
    out.push_str(&b64url(signature));
    out
}

/// The JWT bearer assertion's claims: `iss` the consumer key, `sub` the username, `aud` the
/// login host (or Experience Cloud site), `exp` in whole seconds since the epoch (never
/// milliseconds), [`ASSERTION_LIFETIME_SECS`] after `now_unix`.
pub fn bearer_claims(client_id: &str, username: &str, audience: &str, now_unix: u64) -> Value {
    json!({
        "iss": client_id,
        "sub": username,
        "aud": audience,
        "exp": now_unix + ASSERTION_LIFETIME_SECS,
    })
}

/// What the actor token of the asset token flow says about the device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceClaims {
    pub device_id: String,
    pub asset_name: Option<String>,
    pub serial: Option<String>,
}

/// An RSA public key as a JWK's `n` and `e` (big-endian, leading zeros stripped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RsaPublic {
    pub modulus: Vec<u8>,
    pub exponent: Vec<u8>,
}

/// The actor token's claims: `did`, the Asset's `Name` and `SerialNumber` under `Asset`, and
/// with a device key its public half as `cnf.jwk` (RFC 7800 §3.2). The placement of the
/// asset fields is UNCONFIRMED (docs/protocol.md says which parts are).
pub fn actor_claims(device: &DeviceClaims, key: Option<&RsaPublic>) -> Value {
    let mut claims = json!({ "did": device.device_id });
    let mut asset = serde_json::Map::new();
    if let Some(name) = &device.asset_name {
        asset.insert("Name".into(), Value::String(name.clone()));
    }
    if let Some(serial) = &device.serial {
        asset.insert("SerialNumber".into(), Value::String(serial.clone()));
    }
    if !asset.is_empty() {
        claims["Asset"] = Value::Object(asset);
    }
    if let Some(key) = key {
        claims["cnf"] = json!({"jwk": {
            "kty": "RSA",
            "n": b64url(strip_zeros(&key.modulus)),
            "e": b64url(strip_zeros(&key.exponent)),
        }});
    }
    claims
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_seconds_and_the_layout_is_fixed() {
        let claims = bearer_claims(
            "3MVG9KEY",
            "gw@acme.com",
            "https://login.salesforce.com",
            1_700_000_000,
        );
        assert_eq!(claims["exp"], 1_700_000_150u64);
        assert_eq!(
            signing_input(HEADER_RS256, &claims),
            // serde_json orders object keys alphabetically (no preserve_order feature).
            format!(
                "eyJhbGciOiJSUzI1NiJ9.{}",
                b64url(br#"{"aud":"https://login.salesforce.com","exp":1700000150,"iss":"3MVG9KEY","sub":"gw@acme.com"}"#)
            )
        );
        assert_eq!(assemble("a.b", &[]), "a.b.");
        assert_eq!(assemble("a.b", &[0xfb, 0xff]), "a.b.-_8");
    }

    #[test]
    fn actor_claims_carry_the_device_and_its_key() {
        let device = DeviceClaims {
            device_id: "GW-0042".into(),
            asset_name: Some("Gateway 42".into()),
            serial: Some("SN42".into()),
        };
        let key = RsaPublic {
            modulus: vec![0, 0xc3, 0x01],
            exponent: vec![1, 0, 1],
        };
        let claims = actor_claims(&device, Some(&key));
        assert_eq!(claims["did"], "GW-0042");
        assert_eq!(claims["Asset"]["Name"], "Gateway 42");
        assert_eq!(claims["Asset"]["SerialNumber"], "SN42");
        assert_eq!(claims["cnf"]["jwk"]["n"], "wwE");
        assert_eq!(claims["cnf"]["jwk"]["e"], "AQAB");
        let bare = actor_claims(
            &DeviceClaims {
                device_id: "X".into(),
                ..DeviceClaims::default()
            },
            None,
        );
        assert_eq!(bare, json!({"did": "X"}));
    }
}
