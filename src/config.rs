//! Settings from flags > environment (`SFPAIR_*`) > board profile (`--board`) > defaults,
//! validated with messages that say what to fix.
//!
//! Pure apart from reading the client secret file and the board profile: the environment comes
//! in as a lookup function, so tests pass their own. sfpair ships no default client id:
//! Salesforce only allows the device flow for the customer's own app (docs/salesforce-oauth.md
//! §0).

use std::path::PathBuf;
use std::time::Duration;

use crate::board::Board;
use crate::cli::Args;
use crate::error::Error;
use crate::flow::FlowConfig;
use crate::flow::dialect::{Client, Dialect, Endpoints};
use crate::http::HttpConfig;
use crate::secret::Secret;
use crate::store::file::FileStore;
use crate::url;

pub const DEFAULT_LOGIN_URL: &str = "https://login.salesforce.com";
pub const DEFAULT_SCOPE: &str = "api refresh_token";

/// Where the pairing screen goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Display {
    /// Code, URL and QR on the terminal.
    Console,
    /// Plain ASCII lines, no QR.
    Text,
}

/// Everything the commands need, validated.
#[derive(Clone, Debug)]
pub struct Settings {
    pub dialect: Dialect,
    /// Salesforce: the normalized login URL (no trailing slash).
    pub login_url: String,
    pub endpoints: Endpoints,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub scope: String,
    pub http: HttpConfig,
    /// A `--store` value, e.g. `file:/var/lib/sfpair/token`.
    pub store: String,
    pub displays: Vec<Display>,
    pub json: bool,
    pub max_codes: u32,
    pub code_lifetime: Duration,
    pub prompt_login: bool,
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

/// A Salesforce login URL: https, host only, not a Lightning domain; returned normalized.
pub fn login_url(raw: &str) -> Result<String, Error> {
    let bad = |why: &str| {
        Error::config(format!(
            "--login-url '{raw}' {why}. Use https://login.salesforce.com (production), \
             https://test.salesforce.com (sandbox) or your My Domain, \
             https://NAME.my.salesforce.com"
        ))
    };
    let parts = url::parse(raw).ok_or_else(|| bad("is not an https URL"))?;
    if !url::is_secure(raw) {
        return Err(bad(
            "must use https (plain http is allowed only to a loopback address)",
        ));
    }
    if !parts.path.trim_end_matches('/').is_empty() {
        return Err(bad("must be the host alone, without a path"));
    }
    if parts
        .host
        .to_ascii_lowercase()
        .ends_with(".lightning.force.com")
    {
        return Err(bad("is a Lightning domain, which has no OAuth endpoints"));
    }
    Ok(raw.trim_end_matches('/').to_string())
}

fn endpoint(raw: &str, flag: &str) -> Result<String, Error> {
    if url::parse(raw).is_none() || !url::is_secure(raw) {
        return Err(Error::config(format!(
            "{flag} '{raw}' must be an https URL (plain http only to a loopback address)"
        )));
    }
    Ok(raw.to_string())
}

impl Settings {
    /// Merges `args` over the environment over the defaults.
    pub fn resolve(
        args: &Args,
        env: &dyn Fn(&str) -> Option<String>,
        is_root: bool,
    ) -> Result<Settings, Error> {
        // A board profile (--board / SFPAIR_BOARD) is a layer between the environment and the
        // defaults: it answers like the environment for the variables it sets, and gives the
        // displays when no --display flag does.
        let board = Board::for_settings(args, env)?;
        let env_or_board = |var: &str| {
            non_empty(env(var)).or_else(|| board.as_ref().and_then(|b| b.env_value(var)))
        };
        let env: &dyn Fn(&str) -> Option<String> = &env_or_board;
        let with_board_displays;
        let args = match &board {
            Some(b) if args.displays.is_empty() => {
                with_board_displays = Args {
                    displays: b.display_specs(),
                    ..args.clone()
                };
                &with_board_displays
            }
            _ => args,
        };

        let pick = |flag: &Option<String>, var: &str| {
            non_empty(flag.clone()).or_else(|| non_empty(env(var)))
        };

        let dialect = match args.dialect.as_deref() {
            None => Dialect::Salesforce,
            Some(name) => Dialect::from_name(name).ok_or_else(|| {
                Error::config(format!(
                    "unknown --dialect '{name}': use salesforce or rfc8628"
                ))
            })?,
        };
        let login_url = login_url(
            &pick(&args.login_url, "SFPAIR_LOGIN_URL").unwrap_or_else(|| DEFAULT_LOGIN_URL.into()),
        )?;
        let endpoints = match dialect {
            Dialect::Salesforce => {
                if args.device_url.is_some() || args.token_url.is_some() {
                    return Err(Error::config(
                        "--device-url and --token-url need --dialect rfc8628; for Salesforce give --login-url",
                    ));
                }
                Endpoints::salesforce(&login_url)
            }
            Dialect::Rfc8628 => {
                let (Some(device), Some(token)) = (&args.device_url, &args.token_url) else {
                    return Err(Error::config(
                        "--dialect rfc8628 needs --device-url and --token-url",
                    ));
                };
                Endpoints {
                    device: endpoint(device, "--device-url")?,
                    token: endpoint(token, "--token-url")?,
                    revoke: args
                        .revoke_url
                        .as_deref()
                        .map(|u| endpoint(u, "--revoke-url"))
                        .transpose()?,
                }
            }
        };

        let secret_file = args
            .client_secret_file
            .clone()
            .or_else(|| non_empty(env("SFPAIR_CLIENT_SECRET_FILE")).map(PathBuf::from));
        let client_secret = match secret_file {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    Error::config(format!(
                        "cannot read the client secret file {}: {e}",
                        path.display()
                    ))
                })?;
                let secret = Secret::new(text.trim_end_matches(['\r', '\n']));
                if secret.is_empty() {
                    return Err(Error::config(format!(
                        "the client secret file {} is empty",
                        path.display()
                    )));
                }
                Some(secret)
            }
            None => non_empty(env("SFPAIR_CLIENT_SECRET")).map(Secret::new),
        };

        let store = match pick(&args.store, "SFPAIR_STORE") {
            Some(spec) => spec,
            None => {
                let path = FileStore::default_path(env, is_root).ok_or_else(|| {
                    Error::config("no store given and no home directory: pass --store file:PATH or set SFPAIR_STATE_DIR")
                })?;
                format!("file:{}", path.display())
            }
        };

        let displays = args
            .displays
            .iter()
            .map(|d| match d.as_str() {
                "console" => Ok(Display::Console),
                "text" => Ok(Display::Text),
                other => Err(Error::config(format!(
                    "unknown --display '{other}': use console or text"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;

        let max_codes = args.max_codes.unwrap_or(3);
        if max_codes == 0 {
            return Err(Error::config("--max-codes must be at least 1"));
        }
        let code_lifetime = Duration::from_secs(args.code_lifetime.unwrap_or(600));
        if code_lifetime.is_zero() {
            return Err(Error::config("--code-lifetime must be at least 1 second"));
        }

        Ok(Settings {
            dialect,
            login_url,
            endpoints,
            client_id: pick(&args.client_id, "SFPAIR_CLIENT_ID"),
            client_secret,
            scope: pick(&args.scope, "SFPAIR_SCOPE").unwrap_or_else(|| DEFAULT_SCOPE.into()),
            http: HttpConfig {
                ca_file: args
                    .ca_file
                    .clone()
                    .or_else(|| non_empty(env("SFPAIR_CA_FILE")).map(PathBuf::from)),
                ..HttpConfig::default()
            },
            store,
            displays,
            json: args.json,
            max_codes,
            code_lifetime,
            prompt_login: args.prompt_login,
        })
    }

    /// The flow configuration for `pair`; needs a client id.
    pub fn flow_config(&self) -> Result<FlowConfig, Error> {
        let client_id = self.client_id.clone().ok_or_else(|| {
            Error::config(
                "no client id: pass --client-id KEY or set SFPAIR_CLIENT_ID to the consumer key \
                 of your external client app (with \"Enable Device Flow\" on). sfpair ships none: \
                 Salesforce blocks the device flow for its own apps",
            )
        })?;
        if !self
            .scope
            .split_whitespace()
            .any(|s| s == "refresh_token" || s == "offline_access")
        {
            log::warn!(
                "--scope '{}' lacks refresh_token: the pairing will not survive the session",
                self.scope
            );
        }
        let mut config = FlowConfig::new(
            self.dialect,
            self.endpoints.clone(),
            Client {
                client_id,
                client_secret: self.client_secret.clone(),
                scope: self.scope.clone(),
            },
        );
        config.max_codes = self.max_codes;
        config.default_lifetime = self.code_lifetime;
        config.prompt_login = self.prompt_login;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::parse;
    use std::ffi::OsString;

    fn resolve(args: &[&str], env: &[(&str, &str)]) -> Result<Settings, Error> {
        let args = parse(["sfpair"].iter().chain(args).map(OsString::from)).unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::resolve(
            &args,
            &move |k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()),
            false,
        )
    }

    #[test]
    fn flags_beat_the_environment_which_beats_defaults() {
        let s = resolve(&["pair"], &[("HOME", "/h")]).unwrap();
        assert_eq!(s.login_url, DEFAULT_LOGIN_URL);
        assert_eq!(s.scope, DEFAULT_SCOPE);
        assert_eq!(s.store, "file:/h/.local/state/sfpair/token");
        assert_eq!(s.client_id, None);
        let env = [
            ("SFPAIR_LOGIN_URL", "https://test.salesforce.com/"),
            ("SFPAIR_CLIENT_ID", "ENVKEY"),
            ("SFPAIR_STORE", "file:/env/token"),
        ];
        let s = resolve(&["pair"], &env).unwrap();
        assert_eq!(s.login_url, "https://test.salesforce.com");
        assert_eq!(
            s.endpoints.token,
            "https://test.salesforce.com/services/oauth2/token"
        );
        assert_eq!(s.client_id.as_deref(), Some("ENVKEY"));
        let s = resolve(
            &["pair", "--client-id", "FLAG", "--store", "file:/flag"],
            &env,
        )
        .unwrap();
        assert_eq!(s.client_id.as_deref(), Some("FLAG"));
        assert_eq!(s.store, "file:/flag");
    }

    #[test]
    fn login_urls_are_checked_and_normalized() {
        assert_eq!(
            login_url("https://acme.my.salesforce.com/").unwrap(),
            "https://acme.my.salesforce.com"
        );
        assert_eq!(
            login_url("http://127.0.0.1:8443").unwrap(),
            "http://127.0.0.1:8443"
        );
        for bad in [
            "http://login.salesforce.com",
            "login.salesforce.com",
            "https://login.salesforce.com/services/oauth2/token",
            "https://acme.lightning.force.com",
        ] {
            let e = login_url(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
            assert!(e.message().contains("my.salesforce.com"), "{e}");
        }
    }

    #[test]
    fn pairing_needs_a_client_id_and_says_where_it_comes_from() {
        let s = resolve(&["pair"], &[("HOME", "/h")]).unwrap();
        let e = s.flow_config().unwrap_err();
        assert!(e.message().contains("Enable Device Flow"));
    }

    #[test]
    fn rfc8628_needs_both_endpoints() {
        assert!(resolve(&["pair", "--dialect", "rfc8628"], &[("HOME", "/h")]).is_err());
        let s = resolve(
            &[
                "pair",
                "--dialect",
                "rfc8628",
                "--device-url",
                "https://idp/device",
                "--token-url",
                "https://idp/token",
            ],
            &[("HOME", "/h")],
        )
        .unwrap();
        assert_eq!(s.endpoints.device, "https://idp/device");
        assert_eq!(s.endpoints.revoke, None);
        assert!(
            resolve(
                &["pair", "--device-url", "https://idp/device"],
                &[("HOME", "/h")]
            )
            .is_err()
        );
    }

    #[test]
    fn the_secret_comes_from_a_file_or_the_environment() {
        let path = std::env::temp_dir().join(format!("sfpair-secret-{}", std::process::id()));
        std::fs::write(&path, "s3cret\n").unwrap();
        let s = resolve(
            &["pair", "--client-secret-file", path.to_str().unwrap()],
            &[("HOME", "/h")],
        )
        .unwrap();
        assert_eq!(s.client_secret.unwrap().expose(), "s3cret");
        std::fs::remove_file(&path).unwrap();
        let s = resolve(
            &["pair"],
            &[("HOME", "/h"), ("SFPAIR_CLIENT_SECRET", "envsecret")],
        )
        .unwrap();
        assert_eq!(s.client_secret.unwrap().expose(), "envsecret");
        assert!(
            format!(
                "{:?}",
                resolve(
                    &["pair"],
                    &[("HOME", "/h"), ("SFPAIR_CLIENT_SECRET", "envsecret")]
                )
            )
            .find("envsecret")
            .is_none()
        );
    }
}
