//! The RFC 8628 provider's metadata, so a client can be given the issuer alone: OAuth 2.0
//! Authorization Server Metadata (RFC 8414 section 3: `GET
//! /.well-known/oauth-authorization-server/rfc8628`) and the same document at OpenID Connect
//! Discovery's place (`GET /rfc8628/.well-known/openid-configuration`). The issuer is
//! `https://HOST:PORT/rfc8628`, with the host the client called.
//!
//! The provider shares the Salesforce dialect's grants, so its revocation endpoint is the
//! same `/services/oauth2/revoke`.

use serde_json::json;

use crate::http::{Request, Response};
use crate::state::Shared;

/// RFC 8414's path for the issuer `…/rfc8628`.
pub const RFC8414_PATH: &str = "/.well-known/oauth-authorization-server/rfc8628";
/// OpenID Connect Discovery's path for the same issuer.
pub const OPENID_PATH: &str = "/rfc8628/.well-known/openid-configuration";

pub fn metadata(shared: &Shared, request: &Request) -> Response {
    let base = shared.public_url(request);
    Response::json(
        200,
        &json!({
            "issuer": format!("{base}/rfc8628"),
            "device_authorization_endpoint": format!("{base}/rfc8628/device"),
            "token_endpoint": format!("{base}/rfc8628/token"),
            "revocation_endpoint": format!("{base}/services/oauth2/revoke"),
            "grant_types_supported": [
                "urn:ietf:params:oauth:grant-type:device_code",
                "refresh_token"
            ],
            "response_types_supported": [],
        }),
    )
}
