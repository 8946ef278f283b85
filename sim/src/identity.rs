//! Who the simulated user is: `GET /services/oauth2/userinfo` and the identity URL
//! `GET /id/{org}/{user}` (docs/protocol.md, "Userinfo and identity"), both behind a Bearer access
//! token.
//!
//! One fixed user in one fixed org; nothing here changes state except marking the
//! session as used.

use std::time::Instant;

use serde_json::{Value, json};

use crate::codes::{ORG_ID, USER_ID, USERNAME};
use crate::errors::{invalid_session, not_found};
use crate::http::{Request, Response};
use crate::state::Shared;

/// `GET /services/oauth2/userinfo`: OpenID Connect-style claims.
pub fn userinfo(shared: &Shared, request: &Request) -> Response {
    if !authenticated(shared, request) {
        return invalid_session();
    }
    Response::json(
        200,
        &json!({
            "sub": shared.identity_url(),
            "user_id": USER_ID,
            "organization_id": ORG_ID,
            "preferred_username": USERNAME,
            "nickname": "technician",
            "name": "Sim Technician",
            "given_name": "Sim",
            "family_name": "Technician",
            "email": USERNAME,
            "email_verified": true,
            "zoneinfo": "Europe/Paris",
            "locale": "en_US",
            "user_type": "STANDARD",
            "active": true,
            "urls": urls(shared),
        }),
    )
}

/// `GET /id/{org}/{user}`: the identity service, for the `id` of a token response.
pub fn identity(shared: &Shared, request: &Request) -> Response {
    if request.path != format!("/id/{ORG_ID}/{USER_ID}") {
        return not_found();
    }
    if !authenticated(shared, request) {
        return invalid_session();
    }
    Response::json(
        200,
        &json!({
            "id": shared.identity_url(),
            "asserted_user": true,
            "user_id": USER_ID,
            "organization_id": ORG_ID,
            "username": USERNAME,
            "nick_name": "technician",
            "display_name": "Sim Technician",
            "email": USERNAME,
            "active": true,
            "user_type": "STANDARD",
            "language": "en_US",
            "locale": "en_US",
            "urls": urls(shared),
        }),
    )
}

fn authenticated(shared: &Shared, request: &Request) -> bool {
    request
        .bearer()
        .is_some_and(|token| shared.world().grants.authenticate(token, Instant::now()))
}

/// The `urls` object, with `{version}` placeholders as Salesforce returns them.
fn urls(shared: &Shared) -> Value {
    let base = &shared.instance_url;
    json!({
        "rest": format!("{base}/services/data/v{{version}}/"),
        "sobjects": format!("{base}/services/data/v{{version}}/sobjects/"),
        "query": format!("{base}/services/data/v{{version}}/query/"),
        "limits": format!("{base}/services/data/v{{version}}/limits/"),
        "userinfo": format!("{base}/services/oauth2/userinfo"),
        "profile": format!("{base}/{USER_ID}"),
        "custom_domain": base,
    })
}
