//! Settings from flags > environment (`SFPAIR_*`) > board profile (`--board`) > defaults,
//! validated with messages that say what to fix.
//!
//! Pure apart from reading the client secret file and the board profile: the environment comes
//! in as a lookup function, so tests pass their own. sfpair ships no default client id:
//! Salesforce only allows the device flow for the customer's own app (docs/protocol.md,
//! "Device flow restriction (2025)").

use std::path::PathBuf;
use std::time::Duration;

use crate::board::Board;
use crate::broker::ServeOptions;
use crate::cli::Args;
use crate::error::Error;
use crate::flow::FlowConfig;
use crate::flow::dialect::{Client, Dialect, Endpoints};
use crate::http::HttpConfig;
use crate::rest::RestRequest;
use crate::secret::Secret;
use crate::store::file::FileStore;
use crate::url;
use crate::wire::Method;

pub const DEFAULT_LOGIN_URL: &str = "https://login.salesforce.com";
pub use crate::flow::DEFAULT_SCOPE;
use crate::present::spec::Display;

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
    /// Keep retrying for a device code this long before giving up with a network error.
    pub retry_for: Duration,
    /// Random delay before the first request, up to this.
    pub start_jitter: Duration,
    /// How long to wait for an implausible wall clock to be set.
    pub wait_for_clock: Duration,
    /// `--session-lifetime`: refresh a cached session this old; `None`: only on 401.
    pub session_lifetime: Option<Duration>,
    /// `--api-version` for `call`, normalized (`62.0`).
    pub api_version: Option<String>,
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

/// Reads a small text file, refusing anything longer than `limit` bytes (a secret file pointed
/// at /dev/zero must not hang the agent or fill its memory).
pub fn read_small(path: &std::path::Path, limit: u64) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > limit {
        return Err(std::io::Error::other(format!("longer than {limit} bytes")));
    }
    Ok(text)
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
                let text = read_small(&path, 4096).map_err(|e| {
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
            .map(|d| crate::present::spec::display(d))
            .collect::<Result<Vec<_>, _>>()?;

        let max_codes = args.max_codes.unwrap_or(3);
        if max_codes == 0 {
            return Err(Error::config("--max-codes must be at least 1"));
        }
        let code_lifetime = Duration::from_secs(args.code_lifetime.unwrap_or(600));
        if code_lifetime.is_zero() {
            return Err(Error::config("--code-lifetime must be at least 1 second"));
        }
        let seconds =
            |flag: Option<u64>, var: &str, name: &str, default: u64| -> Result<Duration, Error> {
                let value = match flag {
                    Some(v) => v,
                    None => match non_empty(env(var)) {
                        Some(text) => text.trim().parse().map_err(|_| {
                            Error::config(format!(
                                "{var}='{text}' is not a whole number of seconds ({name})"
                            ))
                        })?,
                        None => default,
                    },
                };
                Ok(Duration::from_secs(value))
            };
        let timeout = seconds(args.timeout, "SFPAIR_TIMEOUT", "--timeout", 30)?;
        if timeout.is_zero() {
            return Err(Error::config("--timeout must be at least 1 second"));
        }
        let retry_for = seconds(args.retry_for, "SFPAIR_RETRY_FOR", "--retry-for", 300)?;
        let start_jitter = seconds(
            args.start_jitter,
            "SFPAIR_START_JITTER",
            "--start-jitter",
            0,
        )?;
        let wait_for_clock = seconds(
            args.wait_for_clock,
            "SFPAIR_WAIT_FOR_CLOCK",
            "--wait-for-clock",
            60,
        )?;

        let session_lifetime = match args.session_lifetime {
            Some(seconds) => Some(seconds),
            None => match non_empty(env("SFPAIR_SESSION_LIFETIME")) {
                Some(v) => Some(v.trim().parse::<u64>().map_err(|_| {
                    Error::config(format!(
                        "SFPAIR_SESSION_LIFETIME '{v}' needs a whole number of seconds"
                    ))
                })?),
                None => None,
            },
        };
        if session_lifetime == Some(0) {
            return Err(Error::config(
                "--session-lifetime must be at least 1 second",
            ));
        }
        let api_version = pick(&args.api_version, "SFPAIR_API_VERSION")
            .map(|v| crate::rest::api_version(&v))
            .transpose()?;

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
                connect_timeout: timeout.min(Duration::from_secs(10)),
                read_timeout: timeout,
                ..HttpConfig::default()
            },
            store,
            displays,
            json: args.json,
            max_codes,
            code_lifetime,
            prompt_login: args.prompt_login,
            retry_for,
            start_jitter,
            wait_for_clock,
            session_lifetime: session_lifetime.map(Duration::from_secs),
            api_version,
        })
    }

    /// The request of `sfpair call METHOD PATH [--data …] [--header …]`.
    pub fn rest_request(&self, args: &Args) -> Result<RestRequest, Error> {
        let (Some(method), Some(path)) = (&args.call_method, &args.call_path) else {
            return Err(Error::config(
                "sfpair call needs METHOD and PATH, e.g. `sfpair call GET /services/data/v62.0/limits`",
            ));
        };
        let method = match method.to_ascii_uppercase().as_str() {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            other => {
                return Err(Error::config(format!(
                    "unknown METHOD '{other}': use GET, POST, PATCH, PUT or DELETE"
                )));
            }
        };
        let mut request = RestRequest {
            method,
            path: crate::rest::resolve_path(path, self.api_version.as_deref())?,
            body: args.data.as_deref().map(request_body).transpose()?,
            headers: Vec::new(),
        };
        for line in &args.headers {
            request.headers.push(crate::rest::header(line)?);
        }
        Ok(request)
    }

    /// `sfpair serve` options.
    pub fn serve_options(&self, args: &Args) -> Result<ServeOptions, Error> {
        let socket = args.socket.clone().ok_or_else(|| {
            Error::config("sfpair serve needs --socket PATH, e.g. /run/sfpair/token.sock")
        })?;
        Ok(ServeOptions {
            socket,
            group: args
                .socket_group
                .as_deref()
                .map(crate::broker::group_id)
                .transpose()?,
            allow_uids: args.allow_uids.clone(),
            allow_gids: args.allow_gids.clone(),
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
        config.give_up_after = self.retry_for;
        config.start_spread = self.start_jitter;
        Ok(config)
    }
}

/// Largest request body `call` reads from a file or standard input.
pub const MAX_DATA: u64 = 16 * 1024 * 1024;

/// `--data` text as is, `@FILE` or `@-` (standard input) read whole, within [`MAX_DATA`]: the
/// body must be in memory to be sent again after a refresh.
fn request_body(data: &str) -> Result<Vec<u8>, Error> {
    use std::io::Read;
    let Some(source) = data.strip_prefix('@') else {
        return Ok(data.as_bytes().to_vec());
    };
    let (name, reader): (String, Box<dyn Read>) = if source == "-" {
        ("standard input".into(), Box::new(std::io::stdin()))
    } else {
        let file = std::fs::File::open(source)
            .map_err(|e| Error::config(format!("cannot read --data file {source}: {e}")))?;
        (source.to_string(), Box::new(file))
    };
    let mut body = Vec::new();
    reader
        .take(MAX_DATA + 1)
        .read_to_end(&mut body)
        .map_err(|e| Error::config(format!("cannot read --data from {name}: {e}")))?;
    if body.len() as u64 > MAX_DATA {
        return Err(Error::config(format!(
            "--data from {name} is larger than {} MiB",
            MAX_DATA / 1024 / 1024
        )));
    }
    Ok(body)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cli::parse;
    use std::ffi::OsString;

    impl Settings {
        fn flow_config_for_test(&self) -> FlowConfig {
            Settings {
                client_id: Some("K".into()),
                ..self.clone()
            }
            .flow_config()
            .unwrap()
        }
    }

    /// Settings from a command line and an environment given as pairs (shared with the board
    /// tests).
    pub(crate) fn resolve(args: &[&str], env: &[(&str, &str)]) -> Result<Settings, Error> {
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
    fn timing_knobs_come_from_flags_or_the_environment() {
        let s = resolve(&["pair"], &[("HOME", "/h")]).unwrap();
        assert_eq!(s.http.read_timeout, Duration::from_secs(30));
        assert_eq!(s.http.connect_timeout, Duration::from_secs(10));
        assert_eq!(s.retry_for, Duration::from_secs(300));
        assert_eq!(s.start_jitter, Duration::ZERO);
        assert_eq!(s.wait_for_clock, Duration::from_secs(60));
        let s = resolve(
            &["pair", "--timeout", "3", "--start-jitter", "30"],
            &[("HOME", "/h"), ("SFPAIR_RETRY_FOR", "20")],
        )
        .unwrap();
        assert_eq!(s.http.read_timeout, Duration::from_secs(3));
        assert_eq!(s.http.connect_timeout, Duration::from_secs(3));
        assert_eq!(s.retry_for, Duration::from_secs(20));
        assert_eq!(
            s.flow_config_for_test().start_spread,
            Duration::from_secs(30)
        );
        let e = resolve(&["pair"], &[("HOME", "/h"), ("SFPAIR_TIMEOUT", "soon")]).unwrap_err();
        assert!(e.message().contains("SFPAIR_TIMEOUT"), "{e}");
        assert!(resolve(&["pair", "--timeout", "0"], &[("HOME", "/h")]).is_err());
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
    fn call_requests_follow_the_path_rule_and_read_bodies() {
        let path = std::env::temp_dir().join(format!("sfpair-body-{}", std::process::id()));
        std::fs::write(&path, r#"{"Name":"x"}"#).unwrap();
        let data = format!("@{}", path.display());
        let args = [
            "call",
            "post",
            "sobjects/Account/",
            "--data",
            &data,
            "--header",
            "X-A: 1",
        ];
        let s = resolve(&args, &[("HOME", "/h"), ("SFPAIR_API_VERSION", "v66.0")]).unwrap();
        let argv = parse(["sfpair"].iter().chain(&args).map(OsString::from)).unwrap();
        let r = s.rest_request(&argv).unwrap();
        assert_eq!(r.method, Method::Post);
        assert_eq!(r.path, "/services/data/v66.0/sobjects/Account/");
        assert_eq!(r.body.as_deref(), Some(&br#"{"Name":"x"}"#[..]));
        assert_eq!(r.headers, [("X-A".to_string(), "1".to_string())]);
        std::fs::remove_file(&path).unwrap();
        let e = s.rest_request(&argv).unwrap_err();
        assert!(e.message().contains("cannot read --data file"), "{e}");
        assert!(resolve(&["call", "--api-version", "x"], &[("HOME", "/h")]).is_err());
    }

    #[test]
    fn session_lifetime_from_the_flag_or_the_environment() {
        let s = resolve(&["token"], &[("HOME", "/h")]).unwrap();
        assert_eq!(s.session_lifetime, None);
        let s = resolve(
            &["token"],
            &[("HOME", "/h"), ("SFPAIR_SESSION_LIFETIME", "900")],
        )
        .unwrap();
        assert_eq!(s.session_lifetime, Some(Duration::from_secs(900)));
        let s = resolve(
            &["token", "--session-lifetime", "60"],
            &[("HOME", "/h"), ("SFPAIR_SESSION_LIFETIME", "900")],
        )
        .unwrap();
        assert_eq!(s.session_lifetime, Some(Duration::from_secs(60)));
        assert!(resolve(&["token", "--session-lifetime", "0"], &[("HOME", "/h")]).is_err());
        assert!(
            resolve(
                &["token"],
                &[("HOME", "/h"), ("SFPAIR_SESSION_LIFETIME", "2h")]
            )
            .is_err()
        );
    }

    #[test]
    fn serve_needs_a_socket() {
        let s = resolve(&["serve"], &[("HOME", "/h")]).unwrap();
        let argv = parse(["sfpair", "serve"].iter().map(OsString::from)).unwrap();
        assert!(
            s.serve_options(&argv)
                .unwrap_err()
                .message()
                .contains("--socket")
        );
        let argv = parse(
            [
                "sfpair",
                "serve",
                "--socket",
                "/run/s",
                "--socket-group",
                "0",
                "--allow-gid",
                "5",
            ]
            .iter()
            .map(OsString::from),
        )
        .unwrap();
        let o = s.serve_options(&argv).unwrap();
        assert_eq!((o.group, o.allow_gids), (Some(0), vec![5]));
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
        let e = resolve(
            &["pair", "--client-secret-file", "/dev/zero"],
            &[("HOME", "/h")],
        )
        .unwrap_err();
        assert!(e.message().contains("longer than"), "{e}");
    }
}
