//! How a person's decision reaches a device code: the approval page
//! (`/setup/connect`, as on Salesforce, and `/rfc8628/verify`), the real Salesforce
//! form target, and the test hooks under `/__mock/`.
//!
//! All of them serve codes of both dialects. The page is deliberately plain HTML with
//! no script, so a test can drive it with two requests. Anything echoed into HTML is
//! escaped; device codes and tokens never appear here.

use std::time::Instant;

use crate::device::Decision;
use crate::form::Params;
use crate::http::{HTML, Request, Response, TEXT};
use crate::state::Shared;

/// Where the real `/setup/connect` form posts (docs/protocol.md, "One-tap URL and QR").
pub const VERIFY_DEVICE: &str = "/_nc_external/identity/oauth/device/VerifyDevice";

/// `GET /setup/connect` or `/rfc8628/verify`: the form, prefilled from `user_code`.
pub fn form(request: &Request) -> Response {
    let query = Params::urlencoded(request.query.as_bytes());
    let user_code = escape(query.get("user_code").unwrap_or(""));
    let prompt_note = match query.get("prompt") {
        Some("login") => {
            "<p><small>prompt=login: this simulator has no login step; you are signed in as technician@sim.example.</small></p>"
        }
        _ => "",
    };
    let action = escape(&request.path);
    page(
        200,
        "Connect your device",
        &format!(
            "<p>Enter the code shown on your device.</p>{prompt_note}\
             <form method=\"post\" action=\"{action}\">\
             <input name=\"user_code\" value=\"{user_code}\" autocomplete=\"off\" autofocus>\
             <button name=\"action\" value=\"approve\">Approve</button>\
             <button name=\"action\" value=\"deny\">Deny</button></form>"
        ),
    )
}

/// `POST /setup/connect` or `/rfc8628/verify` with `user_code` and `action=approve|deny`.
pub fn submit(shared: &Shared, request: &Request) -> Response {
    let params = Params::from_body(request);
    let decision = match params.get("action") {
        Some("deny") => Decision::Deny,
        _ => Decision::Approve,
    };
    answer(shared, params.get("user_code"), decision)
}

/// `POST` to the real form target: `save=Connect` approves, anything else cancels.
pub fn verify_device(shared: &Shared, request: &Request) -> Response {
    let params = Params::from_body(request);
    let decision = match params.get("save") {
        Some("Connect") => Decision::Approve,
        _ => Decision::Deny,
    };
    answer(shared, params.get("user_code"), decision)
}

/// `POST /__mock/{approve,deny,expire,ip_block}?user_code=…` → 200, or 404 when no
/// live code matches (docs/protocol.md, "What a stand-in server must do").
pub fn hook(shared: &Shared, request: &Request, name: &str) -> Response {
    let decision = match name {
        "approve" => Decision::Approve,
        "deny" => Decision::Deny,
        "expire" => Decision::Expire,
        "ip_block" => Decision::IpBlock,
        _ => return Response::new(404, TEXT, "Not Found\n"),
    };
    let params = Params::from_query_and_body(request);
    if decide(shared, params.get("user_code"), decision) {
        Response::new(200, TEXT, format!("{name}: ok\n"))
    } else {
        Response::new(404, TEXT, "no live code with that user_code\n")
    }
}

/// Applies a decision to the live code typed as `user_code`.
pub fn decide(shared: &Shared, user_code: Option<&str>, decision: Decision) -> bool {
    let Some(user_code) = user_code else {
        return false;
    };
    shared
        .world()
        .devices
        .decide(user_code, decision, Instant::now(), &shared.rules)
}

fn answer(shared: &Shared, user_code: Option<&str>, decision: Decision) -> Response {
    if !decide(shared, user_code, decision) {
        return page(
            400,
            "Invalid code",
            "<p>invalid or expired code</p><p><a href=\"/setup/connect\">Try again</a></p>",
        );
    }
    match decision {
        Decision::Approve => page(
            200,
            "Device connected",
            "<p>Device connected. You can close this page.</p>",
        ),
        _ => page(
            200,
            "Access denied",
            "<p>Access denied. The device will not be connected.</p>",
        ),
    }
}

fn page(status: u16, title: &str, body: &str) -> Response {
    Response::new(
        status,
        HTML,
        format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
             <body><h1>{title}</h1>{body}<p><small>sfpair-sim</small></p></body></html>"
        ),
    )
}

/// HTML-escapes text for element content and quoted attributes.
fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&#39;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_is_prefilled_and_escaped() {
        let request = Request {
            path: "/setup/connect".into(),
            query: "user_code=AB%22%3E%3Cx&prompt=login".into(),
            ..Request::default()
        };
        let crate::http::Body::Bytes(html) = form(&request).body else {
            panic!("the form is a plain body");
        };
        let html = String::from_utf8(html).unwrap();
        assert!(html.contains("value=\"AB&quot;&gt;&lt;x\""));
        assert!(html.contains("prompt=login"));
        assert!(html.contains("action=\"/setup/connect\""));
    }
}
