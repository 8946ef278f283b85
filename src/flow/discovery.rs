//! `--issuer URL` for RFC 8628 providers: where the server's metadata lives, and the device,
//! token and revocation endpoints read from it, so a provider is named once instead of by three
//! URLs, and `forget` can revoke without a `--revoke-url`.
//!
//! Two well-known documents, tried in this order: OAuth 2.0 Authorization Server Metadata
//! (RFC 8414 section 3.1: `/.well-known/oauth-authorization-server` inserted between the host
//! and the issuer's path) and OpenID Connect Discovery (`{issuer}/.well-known/openid-configuration`).
//! RFC 8414 section 3.3: the document's `issuer` must be the issuer asked for, exactly, or the
//! document is refused (a document for another issuer could send tokens anywhere). Every
//! endpoint must be https (plain http only to a loopback address), like every URL sfpair sends
//! a secret to.
//!
//! Pure: the agent fetches (`Agent::discover`), this file builds the URLs and reads the reply.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use serde::Deserialize;

use super::dialect::Endpoints;
use crate::error::Error;
use crate::url;

/// The metadata URLs for `issuer`, in the order to try them.
pub fn metadata_urls(issuer: &str) -> Vec<String> {
    let issuer = issuer.trim_end_matches('/');
    let rfc8414 = match url::parse(issuer) {
        Some(parts) if !parts.path.is_empty() => {
            let origin = &issuer[..issuer.len() - parts.path.len()];
            format!(
                "{origin}/.well-known/oauth-authorization-server{}",
                parts.path
            )
        }
        _ => format!("{issuer}/.well-known/oauth-authorization-server"),
    };
    vec![
        rfc8414,
        format!("{issuer}/.well-known/openid-configuration"),
    ]
}

#[derive(Deserialize)]
struct Metadata {
    issuer: Option<String>,
    device_authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    revocation_endpoint: Option<String>,
}

/// The endpoints in a metadata document fetched for `issuer`.
pub fn endpoints(issuer: &str, body: &[u8]) -> Result<Endpoints, Error> {
    let bad = |why: String| {
        Error::server(format!(
            "the metadata of --issuer {issuer} {why}; give --device-url and --token-url instead"
        ))
    };
    let meta: Metadata =
        serde_json::from_slice(body).map_err(|_| bad("is not a JSON metadata document".into()))?;
    let wanted = issuer.trim_end_matches('/');
    match meta.issuer.as_deref().map(|i| i.trim_end_matches('/')) {
        Some(named) if named == wanted => {}
        Some(named) => {
            return Err(bad(format!(
                "names another issuer ({}): RFC 8414 section 3.3 forbids using it",
                crate::text::server_text(named)
            )));
        }
        None => return Err(bad("names no issuer".into())),
    }
    let secure = |name: &str, value: Option<String>| -> Result<Option<String>, Error> {
        match value {
            Some(u) if url::parse(&u).is_some() && url::is_secure(&u) => Ok(Some(u)),
            Some(u) => Err(bad(format!(
                "gives a {name} that is not https: {}",
                crate::text::server_text(&u)
            ))),
            None => Ok(None),
        }
    };
    let device = secure(
        "device_authorization_endpoint",
        meta.device_authorization_endpoint,
    )?
    .ok_or_else(|| {
        bad(
            "has no device_authorization_endpoint: the provider does not offer the device flow"
                .into(),
        )
    })?;
    let token = secure("token_endpoint", meta.token_endpoint)?
        .ok_or_else(|| bad("has no token_endpoint".to_string()))?;
    Ok(Endpoints {
        device,
        token,
        revoke: secure("revocation_endpoint", meta.revocation_endpoint)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_lives_where_rfc_8414_and_openid_put_it() {
        assert_eq!(
            metadata_urls("https://idp.example/tenant/a/"),
            [
                "https://idp.example/.well-known/oauth-authorization-server/tenant/a",
                "https://idp.example/tenant/a/.well-known/openid-configuration",
            ]
        );
        assert_eq!(
            metadata_urls("https://idp.example"),
            [
                "https://idp.example/.well-known/oauth-authorization-server",
                "https://idp.example/.well-known/openid-configuration",
            ]
        );
    }

    #[test]
    fn the_endpoints_come_from_a_document_for_this_issuer_only() {
        let doc = br#"{"issuer":"https://idp.example/t","device_authorization_endpoint":
            "https://idp.example/t/device","token_endpoint":"https://idp.example/t/token",
            "revocation_endpoint":"https://idp.example/t/revoke"}"#;
        let e = endpoints("https://idp.example/t/", doc).unwrap();
        assert_eq!(e.device, "https://idp.example/t/device");
        assert_eq!(e.token, "https://idp.example/t/token");
        assert_eq!(e.revoke.as_deref(), Some("https://idp.example/t/revoke"));
        for (doc, says) in [
            (&br#"{"issuer":"https://evil.example/t","device_authorization_endpoint":"https://x/d","token_endpoint":"https://x/t"}"#[..], "another issuer"),
            (br#"{"device_authorization_endpoint":"https://x/d","token_endpoint":"https://x/t"}"#, "no issuer"),
            (br#"{"issuer":"https://idp.example/t","token_endpoint":"https://x/t"}"#, "device flow"),
            (br#"{"issuer":"https://idp.example/t","device_authorization_endpoint":"http://x/d","token_endpoint":"https://x/t"}"#, "not https"),
            (b"<html>", "not a JSON"),
        ] {
            let e = endpoints("https://idp.example/t", doc).unwrap_err();
            assert_eq!(e.exit_code(), 1);
            assert!(e.message().contains(says), "{e}");
        }
    }
}
