//! Checking the `signature` of a Salesforce token response against the consumer secret.
//!
//! Salesforce signs every token response: `signature = base64(HMAC-SHA256(key = consumer
//! secret, msg = id + issued_at))` (docs/protocol.md,
//! "Token response and signature"). It proves that the identity URL
//! and the issue time came from a server that knows the secret. A device without the secret
//! cannot check it, so the check runs only when a secret is configured; then a missing or wrong
//! signature rejects the response (an attacker who could alter a reply could also strip the
//! field).
//!
//! Pure: no I/O, no clock. It needs `ring` (HMAC, constant-time comparison) and `base64`, so it is
//! built with the `std` feature. It never logs or echoes the secret or the signature.

use ring::hmac;

use base64::Engine as _;

use crate::error::Error;
use crate::flow::reply::TokenReply;
use crate::secret::Secret;

/// Why a signature did not verify (for messages; never shows the values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// The response has no `signature`, `id` or `issued_at` to check.
    Missing,
    /// `signature` is not base64 of 32 bytes.
    Malformed,
    /// The HMAC does not match.
    Wrong,
}

/// Checks `signature` against HMAC-SHA256(`secret`, `id` + `issued_at`) in constant time.
pub fn check(secret: &Secret, id: &str, issued_at: &str, signature: &str) -> Result<(), Mismatch> {
    let mut tag = [0u8; 32];
    let decoded = base64::engine::general_purpose::STANDARD
        .decode_slice(signature.trim().as_bytes(), &mut tag)
        .map_err(|_| Mismatch::Malformed)?;
    if decoded != tag.len() {
        return Err(Mismatch::Malformed);
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.expose().as_bytes());
    let mut message = Vec::with_capacity(id.len() + issued_at.len());
    message.extend_from_slice(id.as_bytes());
    message.extend_from_slice(issued_at.as_bytes());
    hmac::verify(&key, &message, &tag).map_err(|_| Mismatch::Wrong)
}

/// Verifies a token response when a consumer secret is configured. The error is a server error
/// (exit code 1): nothing from this response may be stored or used.
pub fn verify_reply(tokens: &TokenReply, secret: &Secret, what: &str) -> Result<(), Error> {
    let fields = (
        tokens.id.as_deref(),
        tokens.issued_at.as_deref(),
        tokens.signature.as_deref(),
    );
    let outcome = match fields {
        (Some(id), Some(issued_at), Some(signature)) if !id.is_empty() => {
            check(secret, id, issued_at, signature)
        }
        _ => Err(Mismatch::Missing),
    };
    outcome.map_err(|why| {
        let detail = match why {
            Mismatch::Missing => "has no signature, id or issued_at to check",
            Mismatch::Malformed => "has a signature that is not base64 of an HMAC-SHA256",
            Mismatch::Wrong => "has a signature that does not match the consumer secret",
        };
        Error::server(format!(
            "the {what} response {detail}, so it was rejected and nothing was stored. Check that \
             the configured consumer secret (--client-secret-file or SFPAIR_CLIENT_SECRET) is \
             this app's; if it is, the response did not come from the org"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "https://127.0.0.1:8443/id/00DSIM000000001AAA/005SIM000000001AAA";
    /// Computed independently with Python:
    /// `base64.b64encode(hmac.new(b"sim-secret", (ID + "1477674717112").encode(), sha256).digest())`
    /// (the same vector the simulator's signing test pins).
    const GOOD: &str = "UD1NMeZsPfGsOUetORZsPeBEqgR+lQs2vYkDSZbdmUY=";

    fn reply(signature: Option<&str>) -> TokenReply {
        TokenReply {
            access_token: Secret::new("00D!AT"),
            refresh_token: None,
            instance_url: None,
            id: Some(ID.into()),
            issued_at: Some("1477674717112".into()),
            signature: signature.map(Into::into),
            scope: None,
            token_type: None,
        }
    }

    #[test]
    fn a_known_signature_verifies() {
        let secret = Secret::new("sim-secret");
        assert_eq!(check(&secret, ID, "1477674717112", GOOD), Ok(()));
        assert!(verify_reply(&reply(Some(GOOD)), &secret, "refresh").is_ok());
    }

    #[test]
    fn any_change_is_a_mismatch() {
        let secret = Secret::new("sim-secret");
        assert_eq!(
            check(&Secret::new("other-secret"), ID, "1477674717112", GOOD),
            Err(Mismatch::Wrong)
        );
        assert_eq!(
            check(&secret, ID, "1477674717113", GOOD),
            Err(Mismatch::Wrong)
        );
        assert_eq!(
            check(
                &secret,
                &ID.replace("005SIM", "005EVL"),
                "1477674717112",
                GOOD
            ),
            Err(Mismatch::Wrong)
        );
        assert_eq!(
            check(&secret, ID, "1477674717112", "not base64!"),
            Err(Mismatch::Malformed)
        );
        assert_eq!(
            check(&secret, ID, "1477674717112", "AAAA"),
            Err(Mismatch::Malformed)
        );
    }

    #[test]
    fn a_missing_signature_is_rejected_with_a_message_that_hides_the_values() {
        let secret = Secret::new("sim-secret");
        let e = verify_reply(&reply(None), &secret, "pairing").unwrap_err();
        assert_eq!(e.exit_code(), 1);
        assert!(e.message().contains("no signature"), "{e}");
        let e =
            verify_reply(&reply(Some(&GOOD.replace('U', "V"))), &secret, "pairing").unwrap_err();
        assert!(e.message().contains("does not match"), "{e}");
        assert!(!e.message().contains("sim-secret") && !e.message().contains(GOOD));
    }
}
