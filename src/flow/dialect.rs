//! The two dialects of the device flow: Salesforce's and standard RFC 8628.
//!
//! Salesforce polls with `grant_type=device` and the code in `code` (not RFC 8628's URN grant and
//! `device_code`), uses one endpoint for both steps, sends no `expires_in` and no
//! `verification_uri_complete` (docs/protocol.md, "Polling"). This file keeps those names apart
//! from the standard ones and turns each dialect's configuration errors into a message that tells
//! the admin what to change. Pure: it builds requests, it does not send them.

use alloc::format;
use alloc::string::String;

use crate::error::Error;
use crate::flow::reply::{DeviceCode, OAuthError};
use crate::secret::Secret;
use crate::wire::{Form, Request, percent_encode};

/// Which protocol the server speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// Salesforce's device flow (`response_type=device_code`, `grant_type=device`).
    Salesforce,
    /// Standard RFC 8628 (`urn:ietf:params:oauth:grant-type:device_code`).
    Rfc8628,
}

impl Dialect {
    /// As `--dialect` writes it: `salesforce` or `rfc8628`.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Salesforce => "salesforce",
            Dialect::Rfc8628 => "rfc8628",
        }
    }

    /// The dialect `--dialect NAME` names, if any.
    pub fn from_name(name: &str) -> Option<Dialect> {
        match name {
            "salesforce" => Some(Dialect::Salesforce),
            "rfc8628" => Some(Dialect::Rfc8628),
            _ => None,
        }
    }
}

/// Where the two steps of the flow go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    /// Device authorization endpoint (step 1).
    pub device: String,
    /// Token endpoint (polling, refresh).
    pub token: String,
    /// RFC 7009 revocation endpoint, when known.
    pub revoke: Option<String>,
}

impl Endpoints {
    /// Salesforce: everything under the login host (login, test or My Domain), one slash only.
    pub fn salesforce(login_url: &str) -> Self {
        let base = login_url.trim_end_matches('/');
        Endpoints {
            device: format!("{base}/services/oauth2/token"),
            token: format!("{base}/services/oauth2/token"),
            revoke: Some(format!("{base}/services/oauth2/revoke")),
        }
    }
}

/// The OAuth client: who we are to the server.
#[derive(Clone, Debug)]
pub struct Client {
    /// The consumer key of the customer's external client app. sfpair ships none.
    pub client_id: String,
    /// Space-separated; must include `refresh_token` or no refresh token comes back.
    pub scope: String,
}

impl Dialect {
    /// Step 1: ask for a device code and a user code.
    pub fn device_request(self, endpoints: &Endpoints, client: &Client) -> Request {
        let form = match self {
            Dialect::Salesforce => Form::new()
                .text("response_type", "device_code")
                .text("client_id", client.client_id.as_str())
                .text("scope", client.scope.as_str()),
            Dialect::Rfc8628 => Form::new()
                .text("client_id", client.client_id.as_str())
                .text("scope", client.scope.as_str()),
        };
        Request::post_form(endpoints.device.as_str(), form)
    }

    /// Step 2: ask whether the person approved yet. `client_secret` only for apps that require
    /// it (the device flow itself never does); it comes from the agent, its one route.
    pub fn poll_request(
        self,
        endpoints: &Endpoints,
        client: &Client,
        code: &Secret,
        client_secret: Option<&Secret>,
    ) -> Request {
        let mut form = match self {
            Dialect::Salesforce => Form::new()
                .text("grant_type", "device")
                .text("client_id", client.client_id.as_str())
                .secret("code", code),
            Dialect::Rfc8628 => Form::new()
                .text("grant_type", "urn:ietf:params:oauth:grant-type:device_code")
                .secret("device_code", code)
                .text("client_id", client.client_id.as_str()),
        };
        if let Some(secret) = client_secret {
            form = form.secret("client_secret", secret);
        }
        Request::post_form(endpoints.token.as_str(), form)
    }

    /// The URL for the QR code: the server's complete URI when it sends one, else (Salesforce)
    /// `verification_uri?user_code=CODE` as Salesforce's own Data Loader and VS Code opened it,
    /// optionally with `prompt=login` so a phone's existing org session does not hijack the page.
    pub fn one_tap_uri(self, code: &DeviceCode, prompt_login: bool) -> String {
        let mut uri = match (&code.verification_uri_complete, self) {
            (Some(complete), _) => complete.clone(),
            (None, Dialect::Salesforce) => {
                let mut uri = code.verification_uri.clone();
                uri.push(if uri.contains('?') { '&' } else { '?' });
                uri.push_str("user_code=");
                percent_encode(&code.user_code, &mut uri);
                uri
            }
            (None, Dialect::Rfc8628) => code.verification_uri.clone(),
        };
        if prompt_login && self == Dialect::Salesforce {
            uri.push(if uri.contains('?') { '&' } else { '?' });
            uri.push_str("prompt=login");
        }
        uri
    }

    /// The server approved but sent no refresh token: what to change, in this provider's terms.
    pub fn no_refresh_token(self) -> Error {
        Error::config(match self {
            Dialect::Salesforce => {
                "the server approved the device but sent no refresh token, so the pairing would \
                 not survive the session. Add the \"refresh_token, offline_access\" scope to the \
                 app's selected OAuth scopes and keep `refresh_token` in --scope"
            }
            Dialect::Rfc8628 => {
                "the server approved the device but sent no refresh token, so the pairing would \
                 not survive the session. Ask for the scope your provider issues refresh tokens \
                 for (many, such as oidc-provider, do so only for `offline_access`: add it to \
                 --scope) and allow the refresh_token grant for this client"
            }
        })
    }

    /// A configuration error the admin must fix, worded for this dialect.
    pub fn config_error(self, err: &OAuthError, client_id: &str) -> Error {
        let summary = err.summary();
        let advice = match (self, err.error.as_str()) {
            (Dialect::Salesforce, "invalid_client_id") => format!(
                "the org does not know the consumer key '{client_id}'. Check --client-id (the \
                 consumer key of your external client app) and --login-url (production, sandbox \
                 or My Domain: the app must live in the org behind that URL)"
            ),
            (Dialect::Salesforce, "invalid_grant") if err.description_contains("not enabled") => {
                "the app does not allow the device flow. In Setup, open the external client app \
                 (or connected app), and under OAuth Settings turn on \"Enable Device Flow\"; \
                 sfpair cannot use Salesforce's own apps, which are blocked for the device flow \
                 since 2025"
                    .into()
            }
            (Dialect::Salesforce, "invalid_client") if err.description_contains("install") => {
                "the connected app is not installed in this org, and Salesforce blocks the device \
                 flow for uninstalled apps since September 2025. Install the app (Setup > \
                 Connected Apps OAuth Usage > Install), or create a local external client app \
                 with \"Enable Device Flow\" on"
                    .into()
            }
            (_, "invalid_client" | "invalid_client_id" | "unauthorized_client") => format!(
                "the server does not accept client '{client_id}' for the device flow: check the \
                 client id and that the app allows the device grant"
            ),
            (_, "invalid_scope") => {
                "the server refused the requested scope: check --scope against the app's \
                 allowed OAuth scopes"
                    .into()
            }
            _ => "the server refused the request: check the login URL, client id and the app's \
                  OAuth settings"
                .into(),
        };
        Error::config(format!("{advice} (server said {summary})")).with_oauth(err.fields())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;

    fn client() -> Client {
        Client {
            client_id: "KEY".into(),
            scope: "api refresh_token".into(),
        }
    }

    fn code(complete: Option<&str>) -> DeviceCode {
        DeviceCode {
            device_code: Secret::new("dc"),
            user_code: "X1D9SEET".into(),
            verification_uri: "https://login.salesforce.com/setup/connect".into(),
            verification_uri_complete: complete.map(Into::into),
            expires_in: None,
            interval: Some(Duration::from_secs(5)),
        }
    }

    #[test]
    fn the_missing_refresh_token_advice_speaks_the_providers_language() {
        let sf = Dialect::Salesforce.no_refresh_token();
        assert!(sf.message().contains("selected OAuth scopes"), "{sf}");
        let rfc = Dialect::Rfc8628.no_refresh_token();
        assert!(rfc.message().contains("offline_access"), "{rfc}");
        assert!(
            !rfc.message().contains("app's selected OAuth scopes"),
            "{rfc}"
        );
        assert_eq!(rfc.exit_code(), 2);
    }

    #[test]
    fn salesforce_requests_use_salesforce_names() {
        let ep = Endpoints::salesforce("https://login.salesforce.com/");
        assert_eq!(
            ep.token,
            "https://login.salesforce.com/services/oauth2/token"
        );
        let r = Dialect::Salesforce.device_request(&ep, &client());
        assert_eq!(r.form_field("response_type"), Some("device_code"));
        assert_eq!(r.form_field("scope"), Some("api refresh_token"));
        let p = Dialect::Salesforce.poll_request(&ep, &client(), &Secret::new("dc"), None);
        assert_eq!(p.form_field("grant_type"), Some("device"));
        assert_eq!(p.form_secret("code").map(Secret::expose), Some("dc"));
        assert_eq!(p.form_secret("device_code").map(Secret::expose), None);
    }

    #[test]
    fn rfc8628_requests_use_standard_names() {
        let ep = Endpoints {
            device: "https://idp/device".into(),
            token: "https://idp/token".into(),
            revoke: None,
        };
        let p = Dialect::Rfc8628.poll_request(&ep, &client(), &Secret::new("dc"), None);
        assert_eq!(
            p.form_field("grant_type"),
            Some("urn:ietf:params:oauth:grant-type:device_code")
        );
        assert_eq!(p.form_secret("device_code").map(Secret::expose), Some("dc"));
        assert_eq!(p.url, "https://idp/token");
    }

    #[test]
    fn one_tap_uri_prefers_the_servers_complete_uri() {
        assert_eq!(
            Dialect::Salesforce.one_tap_uri(&code(None), false),
            "https://login.salesforce.com/setup/connect?user_code=X1D9SEET"
        );
        assert_eq!(
            Dialect::Salesforce.one_tap_uri(&code(None), true),
            "https://login.salesforce.com/setup/connect?user_code=X1D9SEET&prompt=login"
        );
        assert_eq!(
            Dialect::Rfc8628.one_tap_uri(&code(Some("https://idp/d?user_code=A")), false),
            "https://idp/d?user_code=A"
        );
        assert_eq!(
            Dialect::Rfc8628.one_tap_uri(&code(None), false),
            "https://login.salesforce.com/setup/connect"
        );
    }

    #[test]
    fn config_errors_tell_the_admin_what_to_enable() {
        let err = OAuthError {
            error: "invalid_grant".into(),
            description: Some("device flow is not enabled for the app".into()),
            interval: None,
            status: 400,
        };
        let e = Dialect::Salesforce.config_error(&err, "KEY");
        assert_eq!(e.kind(), crate::error::ErrorKind::Config);
        assert!(e.message().contains("Enable Device Flow"), "{e}");
        assert_eq!(e.oauth_error(), Some("invalid_grant"));
        assert_eq!(
            e.oauth_description(),
            Some("device flow is not enabled for the app")
        );
    }
}
