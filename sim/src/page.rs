//! How a person's decision reaches a device code: the approval page
//! (`/setup/connect`, as on Salesforce, and `/rfc8628/verify`), the real Salesforce
//! form target, and the test hooks under `/__mock/`.
//!
//! The page is made for a phone (viewport meta, 16 px text and more, 44 px targets)
//! and takes a person through: an optional log-in step (`prompt=login`), entering the
//! code, then a review step that shows the app, the scopes and the code to compare
//! with the device, with Approve and Deny. The review step has no text input, so the
//! keyboard's Go can only ever reach it, never approve. A one-tap URL (`?user_code=`)
//! opens the review step directly. Plain HTML without script, so a test drives it with
//! requests: `POST user_code=…&action=approve|deny` decides at once, as before.
//! Anything echoed into HTML is escaped; device codes and tokens never appear here.

use std::time::Instant;

use crate::codes::USERNAME;
use crate::device::Decision;
use crate::form::Params;
use crate::http::{HTML, Request, Response, TEXT};
use crate::state::Shared;

/// Where the real `/setup/connect` form posts (docs/protocol.md, "One-tap URL and QR").
pub const VERIFY_DEVICE: &str = "/_nc_external/identity/oauth/device/VerifyDevice";

const STYLE: &str = "*{box-sizing:border-box}\
html{-webkit-text-size-adjust:100%}\
body{font:18px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;padding:16px;color:#181818;background:#eef1f6}\
main{max-width:30rem;margin:0 auto;background:#fff;border-radius:12px;padding:20px;box-shadow:0 1px 4px rgba(0,0,0,.18)}\
header{font-size:16px;color:#3e3e3c;margin:0 auto 12px;max-width:30rem}\
h1{font-size:26px;line-height:1.25;margin:0 0 12px}\
p{margin:12px 0}\
label{display:block;font-weight:600;margin:16px 0 8px}\
input{font:inherit;font-size:20px;width:100%;min-height:52px;padding:8px 12px;border:2px solid #747474;border-radius:8px}\
input.code{font-size:24px;letter-spacing:.15em;text-transform:uppercase;font-family:ui-monospace,Menlo,Consolas,monospace}\
.code-box{font:700 34px/1.2 ui-monospace,Menlo,Consolas,monospace;letter-spacing:.18em;text-align:center;padding:16px 8px;border:2px dashed #0176d3;border-radius:10px;margin:8px 0;background:#eef4ff;word-break:break-all}\
.check{background:#fef1d3;border-left:6px solid #dd7a01;padding:12px;border-radius:6px;font-weight:600}\
.error{background:#fde8e6;border-left:6px solid #ba0517;padding:12px;border-radius:6px}\
.ok{background:#e3f6e8;border-left:6px solid #2e844a;padding:12px;border-radius:6px}\
ul{padding-left:24px;margin:8px 0}li{margin:6px 0}\
.actions{display:flex;flex-direction:column;gap:24px;margin-top:24px}\
button{font:inherit;font-weight:700;width:100%;min-height:56px;border-radius:10px;border:2px solid #0176d3;background:#0176d3;color:#fff}\
button.deny{background:#fff;color:#ba0517;border-color:#ba0517}\
.muted{color:#3e3e3c;font-size:16px}";

/// `GET /setup/connect` or `/rfc8628/verify`: the log-in step with `prompt=login`; the
/// review step for a live `user_code`; else the code entry step.
pub fn form(shared: &Shared, request: &Request) -> Response {
    let query = Params::urlencoded(request.query.as_bytes());
    let typed = query.get("user_code").unwrap_or("");
    if query.get("prompt") == Some("login") {
        return login(&request.path, typed);
    }
    match pending(shared, typed) {
        Some((code, scope)) => review(shared, &request.path, &code, scope.as_deref()),
        None if typed.is_empty() => entry(&request.path, "", None, 200),
        None => entry(
            &request.path,
            typed,
            Some("This code is invalid or expired. Check the code on your device."),
            200,
        ),
    }
}

/// `POST /setup/connect` or `/rfc8628/verify`: `action=login|review` moves to the next
/// step; `action=approve|deny` decides. Any other action (the keyboard's Go on the
/// entry step sends `review`) never approves.
pub fn submit(shared: &Shared, request: &Request) -> Response {
    let params = Params::from_body(request);
    let typed = params.get("user_code");
    match params.get("action") {
        Some("approve") => answer(shared, typed, Decision::Approve),
        Some("deny") => answer(shared, typed, Decision::Deny),
        _ => match pending(shared, typed.unwrap_or("")) {
            Some((code, scope)) => review(shared, &request.path, &code, scope.as_deref()),
            None if params.get("action") == Some("login") && typed.unwrap_or("").is_empty() => {
                entry(&request.path, "", None, 200)
            }
            None => entry(
                &request.path,
                typed.unwrap_or(""),
                Some("invalid or expired code: check the code on your device and type it again."),
                400,
            ),
        },
    }
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

fn pending(shared: &Shared, typed: &str) -> Option<(String, Option<String>)> {
    shared
        .world()
        .devices
        .pending(typed, Instant::now(), &shared.rules)
}

/// Step 0, with `prompt=login`: who is approving. The simulator has one user and
/// accepts any password; the step exists so a phone's flow looks like the real one.
fn login(action: &str, typed: &str) -> Response {
    let (action, typed) = (escape(action), escape(typed));
    page(
        200,
        "Log in",
        &format!(
            "<p>Log in to approve a device. <span class=\"muted\">(Simulated: any password works.)</span></p>\
             <form method=\"post\" action=\"{action}\">\
             <input type=\"hidden\" name=\"user_code\" value=\"{typed}\">\
             <label for=\"username\">Username</label>\
             <input id=\"username\" name=\"username\" type=\"email\" value=\"{USERNAME}\" autocomplete=\"username\" autocapitalize=\"none\" spellcheck=\"false\">\
             <label for=\"password\">Password</label>\
             <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
             <div class=\"actions\"><button name=\"action\" value=\"login\">Log in</button></div></form>"
        ),
    )
}

/// Step 1: type the code. Its only button (and the keyboard's Go) leads to the review.
fn entry(action: &str, typed: &str, error: Option<&str>, status: u16) -> Response {
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    let (action, typed) = (escape(action), escape(typed));
    page(
        status,
        if status == 400 {
            "Invalid code"
        } else {
            "Connect a device"
        },
        &format!(
            "{error}<p>Type the code that your device shows.</p>\
             <form method=\"post\" action=\"{action}\">\
             <label for=\"user_code\">Code shown on your device</label>\
             <input id=\"user_code\" class=\"code\" name=\"user_code\" value=\"{typed}\" maxlength=\"12\" \
             autocomplete=\"off\" autocapitalize=\"characters\" autocorrect=\"off\" spellcheck=\"false\" \
             inputmode=\"text\" enterkeyhint=\"next\" required>\
             <div class=\"actions\"><button name=\"action\" value=\"review\">Continue</button></div></form>"
        ),
    )
}

/// Step 2: what is asked, and the code to compare with the device's, then the decision.
/// No text input here, so no implicit submission can approve.
fn review(shared: &Shared, action: &str, code: &str, scope: Option<&str>) -> Response {
    let scopes: String = scope
        .unwrap_or("api refresh_token")
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(|s| format!("<li>{}</li>", escape(&describe_scope(s))))
        .collect();
    let (action, code_html, app) = (
        escape(action),
        escape(code),
        escape(&shared.config.app_name),
    );
    page(
        200,
        "Allow access?",
        &format!(
            "<p><strong>{app}</strong> asks to connect as <strong>{USERNAME}</strong> and to:</p>\
             <ul class=\"scopes\">{scopes}</ul>\
             <p id=\"code-label\">Code</p>\
             <div class=\"code-box\" aria-labelledby=\"code-label\">{code_html}</div>\
             <p class=\"check\">Check that this code is the one on your device. If it is not, press Deny.</p>\
             <form method=\"post\" action=\"{action}\">\
             <input type=\"hidden\" name=\"user_code\" value=\"{code_html}\">\
             <div class=\"actions\">\
             <button name=\"action\" value=\"approve\">Approve</button>\
             <button class=\"deny\" name=\"action\" value=\"deny\">Deny</button></div></form>"
        ),
    )
}

/// What a scope lets the app do, in the words of Salesforce's OAuth scope list.
fn describe_scope(scope: &str) -> String {
    let words = match scope {
        "api" => "Manage user data via APIs",
        "refresh_token" | "offline_access" => "Perform requests at any time",
        "openid" => "Access unique user identifiers",
        "id" | "profile" | "email" | "address" | "phone" => "Access the identity URL service",
        "full" => "Full access",
        "web" => "Manage user data via Web browsers",
        _ => return scope.to_string(),
    };
    format!("{words} ({scope})")
}

fn answer(shared: &Shared, user_code: Option<&str>, decision: Decision) -> Response {
    if !decide(shared, user_code, decision) {
        return page(
            400,
            "Invalid code",
            "<p class=\"error\" role=\"alert\">invalid or expired code</p>\
             <p>Check the code on your device, then <a href=\"/setup/connect\">try again</a>.</p>",
        );
    }
    match decision {
        Decision::Approve => page(
            200,
            "Device connected",
            "<p class=\"ok\">Device connected. You can close this page; the device finishes on its own.</p>",
        ),
        _ => page(
            200,
            "Access denied",
            "<p class=\"error\">Access denied. The device will not be connected.</p>",
        ),
    }
}

fn page(status: u16, title: &str, body: &str) -> Response {
    Response::new(
        status,
        HTML,
        format!(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{title}</title><style>{STYLE}</style></head>\
             <body><header>sfpair-sim &middot; a simulated Salesforce org</header>\
             <main><h1>{title}</h1>{body}</main></body></html>"
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

/// `POST /__mock/revoke_user`: every grant of the user dies, as when an admin revokes the
/// user's access to the app; 200 with how many.
pub fn revoke_user(shared: &Shared) -> Response {
    let revoked = shared.world().grants.revoke_all();
    Response::new(200, TEXT, format!("revoke_user: {revoked} grants\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn html(response: Response) -> String {
        let crate::http::Body::Bytes(html) = response.body else {
            panic!("pages are plain bodies");
        };
        String::from_utf8(html).unwrap()
    }

    #[test]
    fn echoed_text_is_escaped() {
        let page = html(entry("/setup/connect", "AB\"><x", Some("<b>"), 400));
        assert!(page.contains("value=\"AB&quot;&gt;&lt;x\""));
        assert!(page.contains("&lt;b&gt;"));
        let page = html(login("/setup/connect", "A'B"));
        assert!(page.contains("value=\"A&#39;B\""));
    }

    #[test]
    fn pages_are_made_for_a_phone() {
        let page = html(entry("/setup/connect", "", None, 200));
        assert!(page.contains("name=\"viewport\" content=\"width=device-width, initial-scale=1\""));
        assert!(
            page.contains("autocapitalize=\"characters\"") && page.contains("inputmode=\"text\"")
        );
        assert!(page.contains("<label for=\"user_code\">"));
        // The entry step's only submit button leads to the review, never to approval.
        assert!(!page.contains("value=\"approve\""));
        assert_eq!(page.matches("<button").count(), 1);
        assert!(STYLE.contains("min-height:56px") && STYLE.contains("gap:24px"));
    }

    #[test]
    fn scopes_read_as_words() {
        assert_eq!(describe_scope("api"), "Manage user data via APIs (api)");
        assert_eq!(describe_scope("custom_x"), "custom_x");
    }
}
