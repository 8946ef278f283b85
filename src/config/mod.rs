//! The settings wing: flags > environment (`SFPAIR_*`) > board profile (`--board`) > defaults,
//! validated with messages that say what to fix, and turned into each command's options
//! ([`plan`]), so no command reads the arguments or the environment again.
//!
//! Each setting is parsed once, into its type: the store into a `store::Spec`, displays into
//! `present::spec::Display`, the login URL by `login_url::check`. Board profiles produce the
//! same types (`board.rs`); [`sources`] owns the order of the layers. I/O here is limited to
//! reading the client secret file and the board profile: the environment comes in as a lookup
//! function, so tests pass their own. sfpair ships no default client id: Salesforce only allows
//! the device flow for the customer's own app (docs/protocol.md, "Device flow restriction
//! (2025)").

#[cfg(feature = "outbox")]
mod outbox;
mod sources;

use std::path::PathBuf;
use std::time::Duration;

use crate::agent::Enrolment;
#[cfg(feature = "boards")]
use crate::board::Board;
#[cfg(feature = "broker")]
use crate::broker::ServeOptions;
use crate::cli::{Args, Command as Cli};
use crate::commands::{self, Backends, Command, Plan};
use crate::error::Error;
use crate::flow::FlowConfig;
use crate::flow::dialect::{Client, Dialect, Endpoints};
use crate::http::HttpConfig;
use crate::login_url;
use crate::present::spec::{self, Display};
#[cfg(feature = "rest")]
use crate::rest::RestRequest;
use crate::secret::Secret;
#[cfg(feature = "broker")]
use crate::service::Repair;
use crate::store::record::Grant;
use crate::store::{self, file::FileStore};
use crate::url;
#[cfg(feature = "rest")]
use crate::wire::Method;
use sources::Sources;

pub use crate::flow::DEFAULT_SCOPE;
pub use crate::login_url::DEFAULT as DEFAULT_LOGIN_URL;

/// The settings every command shares, validated.
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
    pub store: store::Spec,
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
    /// `run`/`serve`: refresh at least this often; `None`: keepalive off.
    pub keepalive: Option<Duration>,
    /// `run --repair`, as given (checked when `run` is planned).
    pub repair: Option<String>,
    /// `--issuer` (RFC 8628): the endpoints come from the provider's metadata at pairing.
    pub issuer: Option<String>,
    /// `--flow` and the headless grant's settings, as given; checked by `enrolment` for `pair`
    /// only (after pairing, the stored record says which grant runs).
    pub flow: Option<String>,
    pub key_file: Option<PathBuf>,
    pub username: Option<String>,
    pub audience: Option<String>,
    /// The outbox, for `send`, `outbox` and `run`/`serve` (which go without one when there is
    /// no place for it); `None` for the other commands.
    #[cfg(feature = "outbox")]
    pub outbox: Option<crate::commands::outbox::Place>,
    /// How delivery talks to the org (`--api-reserve`, `--api-version`).
    #[cfg(feature = "outbox")]
    pub delivery: crate::outbox::deliver::Options,
    /// `--seal`, `--tpm`, `--pkcs11-module`, `--pkcs11-pin-file` (docs/sealing.md).
    pub seal: crate::commands::seal::Settings,
}

/// `--keepalive` when none is given: well inside the 30-day idle limit of a refresh token
/// policy ("expire if not used for 30 days"), with room for a week of outages.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(7 * 86_400);

/// The command line, the environment and the board profile, validated into what to run.
/// `Help` and `Version` are the binary's own and have no plan.
pub fn plan(
    args: &Args,
    env: &dyn Fn(&str) -> Option<String>,
    is_root: bool,
) -> Result<Plan, Error> {
    let settings = Settings::resolve(args, env, is_root)?;
    let command = match args.command {
        Some(Cli::Pair) => Command::Pair(Box::new(commands::pair::Options {
            enrol: settings.enrolment()?.map(Box::new),
            flow: match settings.flow.as_deref() {
                None | Some("device") => settings.flow_config()?,
                // Not used by a headless enrolment; built without its client-id rule.
                Some(_) => FlowConfig::salesforce(&settings.login_url, ""),
            },
            displays: settings.displays.clone(),
            json: settings.json,
            force: args.force,
            issuer: settings.issuer.clone(),
        })),
        Some(Cli::Token) => Command::Token(commands::token::Options { json: args.json }),
        Some(Cli::Status) => Command::Status(commands::status::Options {
            check: args.check,
            json: args.json,
            socket: args.socket.clone(),
        }),
        Some(Cli::Forget) => Command::Forget,
        #[cfg(feature = "rest")]
        Some(Cli::Call) => Command::Call(settings.call_options(args)?),
        #[cfg(feature = "broker")]
        Some(Cli::Serve) => Command::Run(Box::new(settings.service_options(args, false)?)),
        #[cfg(feature = "broker")]
        Some(Cli::Run) => Command::Run(Box::new(settings.service_options(args, true)?)),
        #[cfg(not(feature = "rest"))]
        Some(Cli::Call) => return Err(commands::not_built("sfpair call", "REST calls", "rest")),
        #[cfg(not(feature = "broker"))]
        Some(Cli::Serve | Cli::Run) => {
            return Err(commands::not_built(
                "sfpair serve and sfpair run",
                "the token broker",
                "broker",
            ));
        }
        #[cfg(not(feature = "doctor"))]
        Some(Cli::Doctor) => {
            return Err(commands::not_built("sfpair doctor", "the checks", "doctor"));
        }
        #[cfg(feature = "doctor")]
        Some(Cli::Doctor) => Command::Doctor(commands::doctor::Options {
            json: args.json,
            dialect: settings.dialect,
            login_url: settings.login_url.clone(),
            endpoints: settings.endpoints.clone(),
            scope: settings.scope.clone(),
            displays: settings.displays.clone(),
        }),
        #[cfg(feature = "asset-token")]
        Some(Cli::AssetToken) => Command::AssetToken(asset_token_options(args)?),
        #[cfg(not(feature = "asset-token"))]
        Some(Cli::AssetToken) => {
            return Err(Error::config(
                "asset-token: this sfpair was built without the `asset-token` feature",
            ));
        }
        #[cfg(feature = "outbox")]
        Some(Cli::Send) => Command::Send(Box::new(outbox::send(args, settings.outbox_place()?)?)),
        #[cfg(feature = "outbox")]
        Some(Cli::Outbox) => Command::Outbox(Box::new(outbox::command(
            args,
            settings.outbox_place()?,
            settings.delivery.clone(),
        )?)),
        #[cfg(not(feature = "outbox"))]
        Some(Cli::Send | Cli::Outbox) => {
            return Err(commands::not_built(
                "sfpair send and sfpair outbox",
                "the outbox",
                "outbox",
            ));
        }
        Some(Cli::Seal) => Command::Seal(true),
        Some(Cli::Unseal) => Command::Seal(false),
        Some(Cli::Help | Cli::Version) | None => {
            return Err(Error::config("no command to run (see `sfpair --help`)"));
        }
    };
    Ok(Plan {
        backends: Backends {
            http: settings.http.clone(),
            store: settings.store.clone(),
            client_secret: settings.client_secret.clone(),
            session_lifetime: settings.session_lifetime,
            wait_for_clock: settings.wait_for_clock,
            client_id: settings.client_id.clone(),
            seal: settings.seal.clone(),
        },
        command,
    })
}

fn endpoint(raw: &str, flag: &str) -> Result<String, Error> {
    let parts = url::check(raw)
        .map_err(|problem| Error::config(format!("{flag} '{raw}' {}", problem.describe())))?;
    if !url::is_secure(raw) || parts.host.is_empty() {
        return Err(Error::config(format!(
            "{flag} '{raw}' must be an https URL (plain http only to a loopback address)"
        )));
    }
    Ok(raw.to_string())
}

/// A build without board profiles has none: this type has no values, so every `Option<Board>`
/// is `None` and the code that reads a profile compiles to nothing.
#[cfg(not(feature = "boards"))]
#[derive(Clone, Debug)]
pub enum Board {}

#[cfg(not(feature = "boards"))]
impl Board {
    pub fn env_value(&self, _var: &str) -> Option<String> {
        match *self {}
    }
    pub fn displays(&self) -> Vec<Display> {
        match *self {}
    }
}

/// `--board` or `SFPAIR_BOARD` in a build without board profiles: a usage error, never ignored.
#[cfg(not(feature = "boards"))]
fn board(args: &Args, env: &dyn Fn(&str) -> Option<String>) -> Result<Option<Board>, Error> {
    if args.board.is_some() || env("SFPAIR_BOARD").is_some_and(|b| !b.trim().is_empty()) {
        return Err(commands::not_built("--board", "board profiles", "boards"));
    }
    Ok(None)
}

/// The board profile named by `--board` or `SFPAIR_BOARD`, if any. A profile whose login URL
/// is still the placeholder is refused unless a flag or the environment gives the URL.
#[cfg(feature = "boards")]
fn board(args: &Args, env: &dyn Fn(&str) -> Option<String>) -> Result<Option<Board>, Error> {
    let sources = Sources::new(env, None);
    let path = match &args.board {
        Some(path) if path.as_os_str().is_empty() => {
            return Err(Error::config(
                "--board is empty: give a profile, or leave it out",
            ));
        }
        Some(path) => path.clone(),
        None => match sources.var("SFPAIR_BOARD")? {
            Some(path) => PathBuf::from(path),
            None => return Ok(None),
        },
    };
    let board = Board::load(&path)?;
    let url_given = sources
        .text(&args.login_url, "--login-url", "SFPAIR_LOGIN_URL")?
        .is_some();
    if board.login_url_is_placeholder() && !url_given {
        return Err(Error::config(format!(
            "the board profile {} still has the placeholder login_url '{}': put your org's \
             login URL there (https://login.salesforce.com, https://test.salesforce.com or \
             https://NAME.my.salesforce.com), or give --login-url / SFPAIR_LOGIN_URL",
            path.display(),
            board.login_url
        )));
    }
    Ok(Some(board))
}

/// The client secret from `--client-secret-file` / `SFPAIR_CLIENT_SECRET_FILE`, or the value
/// of `SFPAIR_CLIENT_SECRET`; never from an argument (`cli.rs` refuses `--client-secret`).
fn client_secret(args: &Args, sources: &Sources) -> Result<Option<Secret>, Error> {
    let file = match &args.client_secret_file {
        Some(path) if path.as_os_str().is_empty() => {
            return Err(Error::config(
                "--client-secret-file is empty: give the file, or leave it out",
            ));
        }
        Some(path) => Some(path.clone()),
        None => sources.var("SFPAIR_CLIENT_SECRET_FILE")?.map(PathBuf::from),
    };
    let Some(path) = file else {
        return Ok(sources.var("SFPAIR_CLIENT_SECRET")?.map(Secret::new));
    };
    let text = crate::files::read_small(&path, 4096).map_err(|e| {
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
    Ok(Some(secret))
}

impl Settings {
    #[cfg(feature = "outbox")]
    fn outbox_place(&self) -> Result<crate::commands::outbox::Place, Error> {
        self.outbox
            .clone()
            .ok_or_else(|| Error::config("no outbox: pass --outbox DIR or set SFPAIR_OUTBOX"))
    }

    /// Merges `args` over the environment over the board profile over the defaults.
    pub fn resolve(
        args: &Args,
        env: &dyn Fn(&str) -> Option<String>,
        is_root: bool,
    ) -> Result<Settings, Error> {
        let board = board(args, env)?;
        let sources = Sources::new(env, board.as_ref());

        let dialect = match args.dialect.as_deref() {
            None => Dialect::Salesforce,
            Some(name) => Dialect::from_name(name).ok_or_else(|| {
                Error::config(format!(
                    "unknown --dialect '{name}': use salesforce or rfc8628"
                ))
            })?,
        };
        let login_url = login_url::check(
            &sources
                .text(&args.login_url, "--login-url", "SFPAIR_LOGIN_URL")?
                .unwrap_or_else(|| DEFAULT_LOGIN_URL.into()),
        )?;
        let issuer = sources
            .text(&args.issuer, "--issuer", "SFPAIR_ISSUER")?
            .map(|u| endpoint(&u, "--issuer"))
            .transpose()?;
        if issuer.is_some() && dialect != Dialect::Rfc8628 {
            return Err(Error::config(
                "--issuer is for --dialect rfc8628; for Salesforce give --login-url",
            ));
        }
        let endpoints = match dialect {
            Dialect::Salesforce => {
                if args.device_url.is_some() || args.token_url.is_some() {
                    return Err(Error::config(
                        "--device-url and --token-url need --dialect rfc8628; for Salesforce give --login-url",
                    ));
                }
                Endpoints::salesforce(&login_url)
            }
            Dialect::Rfc8628 if issuer.is_some() => {
                if args.device_url.is_some() || args.token_url.is_some() {
                    return Err(Error::config(
                        "--issuer reads the endpoints from the provider's metadata: give it, or \
                         --device-url and --token-url, not both",
                    ));
                }
                // Filled in by `pair` from the metadata; nothing is sent to these.
                Endpoints {
                    device: String::new(),
                    token: String::new(),
                    revoke: None,
                }
            }
            Dialect::Rfc8628 => {
                let (Some(device), Some(token)) = (&args.device_url, &args.token_url) else {
                    return Err(Error::config(
                        "--dialect rfc8628 needs --issuer URL, or --device-url and --token-url",
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

        let client_secret = client_secret(args, &sources)?;

        let store = match &args.store {
            Some(spec) if spec.trim().is_empty() => {
                return Err(Error::config(
                    "--store is empty: give file:PATH, or leave it out for the default",
                ));
            }
            Some(spec) => store::Spec::parse(spec)?,
            None => match (env)("SFPAIR_STORE") {
                Some(spec) if spec.trim().is_empty() => {
                    return Err(Error::config(
                        "SFPAIR_STORE is empty: give file:PATH, or unset it for the default",
                    ));
                }
                Some(spec) => store::Spec::parse(&spec)?,
                None => match &board {
                    #[cfg(feature = "boards")]
                    Some(board) => board.store.clone(),
                    #[cfg(not(feature = "boards"))]
                    Some(board) => match *board {},
                    None => {
                        let path = FileStore::default_path(|k| sources.raw(k), is_root)
                            .ok_or_else(|| {
                                Error::config(
                                    "no store given and no home directory: pass --store \
                                     file:PATH or set SFPAIR_STATE_DIR",
                                )
                            })?;
                        store::Spec::File(path)
                    }
                },
            },
        };

        let displays = if !args.displays.is_empty() {
            args.displays
                .iter()
                .map(|d| spec::display(d))
                .collect::<Result<Vec<_>, _>>()?
        } else {
            board.as_ref().map(Board::displays).unwrap_or_default()
        };

        let max_codes = args.max_codes.unwrap_or(3);
        if max_codes == 0 {
            return Err(Error::config("--max-codes must be at least 1"));
        }
        let code_lifetime = Duration::from_secs(args.code_lifetime.unwrap_or(600));
        if code_lifetime.is_zero() {
            return Err(Error::config("--code-lifetime must be at least 1 second"));
        }
        let seconds = |flag, var, name, default: u64| {
            sources
                .seconds(flag, var, name, Some(default))
                .map(Option::unwrap_or_default)
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
        let session_lifetime = sources.seconds(
            args.session_lifetime,
            "SFPAIR_SESSION_LIFETIME",
            "--session-lifetime",
            None,
        )?;
        if session_lifetime == Some(Duration::ZERO) {
            return Err(Error::config(
                "--session-lifetime must be at least 1 second",
            ));
        }
        let api_version = sources
            .text(&args.api_version, "--api-version", "SFPAIR_API_VERSION")?
            .map(|v| crate::rest::api_version(&v))
            .transpose()?;
        let repair = sources.text(&args.repair, "--repair", "SFPAIR_REPAIR")?;
        let ca_file = match &args.ca_file {
            Some(path) if path.as_os_str().is_empty() => {
                return Err(Error::config(
                    "--ca-file is empty: give a PEM file, or leave it out",
                ));
            }
            Some(path) => Some(path.clone()),
            None => sources.var("SFPAIR_CA_FILE")?.map(PathBuf::from),
        };

        let keepalive = sources.duration(
            &args.keepalive,
            "--keepalive",
            "SFPAIR_KEEPALIVE",
            DEFAULT_KEEPALIVE,
        )?;

        let key_file = match &args.key_file {
            Some(path) if path.as_os_str().is_empty() => {
                return Err(Error::config(
                    "--key-file is empty: give the PEM key file, or leave it out",
                ));
            }
            Some(path) => Some(path.clone()),
            None => sources.var("SFPAIR_KEY_FILE")?.map(PathBuf::from),
        };
        #[cfg(feature = "outbox")]
        let outbox = match args.command {
            Some(Cli::Send | Cli::Outbox) => Some(outbox::place(args, &sources, &store, is_root)?),
            Some(Cli::Run | Cli::Serve) => outbox::place(args, &sources, &store, is_root).ok(),
            _ => None,
        };
        #[cfg(feature = "outbox")]
        let delivery = outbox::delivery(args, &sources, api_version.as_deref())?;
        let path = |flag: &Option<PathBuf>, name: &str, var: &str| match flag {
            Some(p) if p.as_os_str().is_empty() => Err(Error::config(format!(
                "{name} is empty: give a file, or leave it out"
            ))),
            Some(p) => Ok(Some(p.clone())),
            None => Ok(sources.var(var)?.map(PathBuf::from)),
        };
        let seal = crate::commands::seal::settings(
            sources.text(&args.seal, "--seal", "SFPAIR_SEAL")?,
            sources.text(&args.tpm, "--tpm", "SFPAIR_TPM")?,
            path(
                &args.pkcs11_module,
                "--pkcs11-module",
                "SFPAIR_PKCS11_MODULE",
            )?,
            path(
                &args.pkcs11_pin_file,
                "--pkcs11-pin-file",
                "SFPAIR_PKCS11_PIN_FILE",
            )?,
        )?;
        Ok(Settings {
            seal,
            #[cfg(feature = "outbox")]
            outbox,
            #[cfg(feature = "outbox")]
            delivery,
            flow: sources.text(&args.flow, "--flow", "SFPAIR_FLOW")?,
            key_file,
            username: sources.text(&args.username, "--username", "SFPAIR_USERNAME")?,
            audience: sources.text(&args.audience, "--audience", "SFPAIR_AUDIENCE")?,
            dialect,
            login_url,
            endpoints,
            client_id: sources.text(&args.client_id, "--client-id", "SFPAIR_CLIENT_ID")?,
            client_secret,
            scope: sources
                .text(&args.scope, "--scope", "SFPAIR_SCOPE")?
                .unwrap_or_else(|| DEFAULT_SCOPE.into()),
            http: HttpConfig {
                ca_file,
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
            session_lifetime,
            api_version,
            keepalive,
            repair,
            issuer,
        })
    }

    #[cfg(feature = "rest")]
    /// `sfpair call METHOD PATH [--data …] [--header …] [--socket …]`.
    fn call_options(&self, args: &Args) -> Result<commands::call::Options, Error> {
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
            body: None,
            headers: Vec::new(),
        };
        for line in &args.headers {
            request.headers.push(crate::rest::header(line)?);
        }
        Ok(commands::call::Options {
            request,
            body: args
                .data
                .as_deref()
                .map_or(commands::call::Body::None, commands::call::Body::from_arg),
            socket: args.socket.clone(),
        })
    }

    /// `run` (`pair`: it pairs) and `serve` (it does not).
    #[cfg(feature = "broker")]
    fn service_options(&self, args: &Args, pair: bool) -> Result<commands::run::Options, Error> {
        Ok(commands::run::Options {
            pair: if pair {
                Some(self.flow_config()?)
            } else {
                None
            },
            displays: self.displays.clone(),
            json: self.json,
            keepalive: self.keepalive,
            repair: match &self.repair {
                None => Repair::Prompt,
                Some(name) => Repair::from_name(name).ok_or_else(|| {
                    Error::config(format!(
                        "unknown --repair '{name}': use never, prompt or auto"
                    ))
                })?,
            },
            serve: serve_options(args)?,
            wait_for_clock: self.wait_for_clock,
            #[cfg(feature = "outbox")]
            outbox: self.outbox.clone().map(|place| crate::service::OutboxRun {
                place,
                delivery: self.delivery.clone(),
            }),
        })
    }

    /// `pair --flow jwt-bearer|client-credentials`: the enrolment, checked before any request;
    /// `None` for the device flow.
    pub fn enrolment(&self) -> Result<Option<Enrolment>, Error> {
        let flow = match self.flow.as_deref() {
            None | Some("device") => return Ok(None),
            Some(flow @ ("jwt-bearer" | "client-credentials")) => flow,
            Some(other) => {
                return Err(Error::config(format!(
                    "unknown --flow '{other}': use device, jwt-bearer or client-credentials"
                )));
            }
        };
        if self.dialect != Dialect::Salesforce {
            return Err(Error::config(format!(
                "--flow {flow} is a Salesforce grant: leave out --dialect"
            )));
        }
        let client_id = self.client_id.clone().ok_or_else(|| {
            Error::config(format!(
                "--flow {flow} needs the app's consumer key: pass --client-id KEY or set \
                 SFPAIR_CLIENT_ID"
            ))
        })?;
        let built = match flow {
            "jwt-bearer" => cfg!(feature = "jwt-bearer"),
            _ => cfg!(feature = "client-credentials"),
        };
        if !built {
            return Err(Error::config(format!(
                "--flow {flow}: this sfpair was built without the `{flow}` feature"
            )));
        }
        let grant = if flow == "jwt-bearer" {
            let key_file = self.key_file.as_ref().ok_or_else(|| {
                Error::config(
                    "--flow jwt-bearer needs --key-file PEM (SFPAIR_KEY_FILE): the RSA private \
                     key whose certificate is uploaded to the app",
                )
            })?;
            // Stored in the record and read again at every new session, maybe from another
            // working directory (a service): so absolute. A `pkcs11:` URI names a key in a
            // token instead (`headless/signer.rs`).
            let key_file = match crate::headless::signer::token_key(key_file)? {
                Some(uri) => PathBuf::from(uri),
                None => std::path::absolute(key_file).map_err(|e| {
                    Error::config(format!("--key-file {}: {e}", key_file.display()))
                })?,
            };
            let key_file = key_file.to_str().ok_or_else(|| {
                Error::config("--key-file must be a UTF-8 path (it is stored in the record)")
            })?;
            let username = self.username.clone().ok_or_else(|| {
                Error::config(
                    "--flow jwt-bearer needs --username USER (SFPAIR_USERNAME): the Salesforce \
                     user the device acts as, pre-approved for the app",
                )
            })?;
            let audience = match &self.audience {
                Some(aud) => {
                    endpoint(aud, "--audience")?;
                    aud.trim_end_matches('/').to_string()
                }
                None => crate::headless::default_audience(&self.login_url),
            };
            Grant::jwt_bearer(username, key_file.to_string(), audience)
        } else {
            if crate::headless::is_generic_login_host(&self.login_url) {
                return Err(Error::config(format!(
                    "--flow client-credentials works only on the org's My Domain, not on {}: \
                     use --login-url https://NAME.my.salesforce.com (Setup > My Domain)",
                    self.login_url
                )));
            }
            if self.client_secret.is_none() {
                return Err(Error::config(
                    "--flow client-credentials needs the consumer secret: --client-secret-file \
                     FILE or SFPAIR_CLIENT_SECRET_FILE (never an argument)",
                ));
            }
            Grant::client_credentials()
        };
        Ok(Some(Enrolment {
            login_url: self.login_url.clone(),
            client_id,
            grant,
        }))
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

/// `sfpair asset-token` options.
#[cfg(feature = "asset-token")]
fn asset_token_options(args: &Args) -> Result<commands::asset_token::Options, Error> {
    let nonempty = |v: &Option<String>, flag: &str| match v {
        Some(v) if v.trim().is_empty() => Err(Error::config(format!(
            "{flag} is empty: give a value, or leave it out"
        ))),
        other => Ok(other.clone()),
    };
    let device_id = nonempty(&args.device_id, "--device-id")?.ok_or_else(|| {
        Error::config("sfpair asset-token needs --device-id ID (the device's own id, `did`)")
    })?;
    Ok(commands::asset_token::Options {
        device: crate::jwt::DeviceClaims {
            device_id,
            asset_name: nonempty(&args.asset_name, "--asset-name")?,
            serial: nonempty(&args.serial, "--serial")?,
        },
        device_key: args.device_key.clone(),
        json: args.json,
    })
}

/// `sfpair serve` options.
#[cfg(feature = "broker")]
fn serve_options(args: &Args) -> Result<ServeOptions, Error> {
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
        assert_eq!(s.store.to_string(), "file:/h/.local/state/sfpair/token");
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
        assert_eq!(s.store.to_string(), "file:/flag");
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

    /// The plan for a command line, with the given environment.
    pub(crate) fn plan_for(args: &[&str], env: &[(&str, &str)]) -> Result<Plan, Error> {
        let args = parse(["sfpair"].iter().chain(args).map(OsString::from)).unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        plan(
            &args,
            &move |k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()),
            false,
        )
    }

    #[cfg(all(feature = "jwt-bearer", feature = "client-credentials"))]
    #[test]
    fn headless_flows_are_checked_before_any_request() {
        let env = [
            ("HOME", "/h"),
            ("SFPAIR_CLIENT_ID", "K"),
            ("SFPAIR_FLOW", "jwt-bearer"),
            ("SFPAIR_KEY_FILE", "/etc/sfpair/device.key"),
            ("SFPAIR_USERNAME", "gw@acme.com"),
            (
                "SFPAIR_LOGIN_URL",
                "https://acme--uat.sandbox.my.salesforce.com",
            ),
        ];
        let plan = plan_for(&["pair"], &env).unwrap();
        let Command::Pair(pair) = plan.command else {
            panic!("{:?}", plan.command)
        };
        let enrol = pair.enrol.expect("a headless enrolment");
        assert_eq!(
            enrol.grant,
            Grant::jwt_bearer(
                "gw@acme.com".into(),
                "/etc/sfpair/device.key".into(),
                "https://test.salesforce.com".into()
            )
        );
        let err = plan_for(&["pair"], &env[..4]).unwrap_err();
        assert!(err.message().contains("--username"), "{}", err.message());
        let err = plan_for(&["pair", "--flow", "bogus"], &env).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        // Client credentials: never on the generic login hosts, never without the secret.
        let cc = [
            ("HOME", "/h"),
            ("SFPAIR_CLIENT_ID", "K"),
            ("SFPAIR_CLIENT_SECRET", "s"),
            ("SFPAIR_LOGIN_URL", "https://test.salesforce.com"),
        ];
        let err = plan_for(&["pair", "--flow", "client-credentials"], &cc).unwrap_err();
        assert!(err.message().contains("My Domain"), "{}", err.message());
        let mydomain = [
            cc[0],
            cc[1],
            ("SFPAIR_LOGIN_URL", "https://acme.my.salesforce.com"),
        ];
        let err = plan_for(&["pair", "--flow", "client-credentials"], &mydomain).unwrap_err();
        assert!(
            err.message().contains("consumer secret"),
            "{}",
            err.message()
        );
        // After pairing the record decides: a stray SFPAIR_FLOW does not bother `token`.
        assert!(plan_for(&["token"], &[("HOME", "/h"), ("SFPAIR_FLOW", "jwt-bearer")]).is_ok());
    }

    #[cfg(feature = "rest")]
    #[test]
    fn call_requests_follow_the_path_rule_and_read_bodies_only_when_run() {
        let args = [
            "call",
            "post",
            "sobjects/Account/",
            "--data",
            "@/nonexistent/body.json",
            "--header",
            "X-A: 1",
        ];
        let plan = plan_for(&args, &[("HOME", "/h"), ("SFPAIR_API_VERSION", "v66.0")]).unwrap();
        let Command::Call(call) = plan.command else {
            panic!("{:?}", plan.command)
        };
        assert_eq!(call.request.method, Method::Post);
        assert_eq!(call.request.path, "/services/data/v66.0/sobjects/Account/");
        assert_eq!(call.request.headers, [("X-A".to_string(), "1".to_string())]);
        // Reading the body is the command's job, when it runs: settings do no such I/O.
        assert_eq!(
            call.body,
            commands::call::Body::File("/nonexistent/body.json".into())
        );
        assert!(plan_for(&["call", "--api-version", "x"], &[("HOME", "/h")]).is_err());
        let e = plan_for(&["call", "GET"], &[("HOME", "/h")]).unwrap_err();
        assert!(e.message().contains("METHOD and PATH"), "{e}");
    }

    #[test]
    fn empty_values_given_explicitly_are_usage_errors() {
        for (args, env, says) in [
            (
                &["pair", "--login-url", ""][..],
                &[][..],
                "--login-url is empty",
            ),
            (&["token", "--store", ""], &[], "--store is empty"),
            (&["token"], &[("SFPAIR_STORE", "")], "SFPAIR_STORE is empty"),
            (
                &["token"],
                &[("SFPAIR_LOGIN_URL", " ")],
                "SFPAIR_LOGIN_URL is empty",
            ),
            (&["token", "--store", "file:"], &[], "needs a path"),
        ] {
            let env: Vec<(&str, &str)> = [("HOME", "/h")].iter().chain(env).copied().collect();
            let e = resolve(args, &env).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}");
            assert!(e.message().contains(says), "{args:?}: {e}");
        }
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

    #[cfg(feature = "broker")]
    #[test]
    fn run_takes_a_keepalive_and_a_repair_mode() {
        let env = [("HOME", "/h"), ("SFPAIR_CLIENT_ID", "K")];
        let plan = plan_for(
            &[
                "run",
                "--socket",
                "/run/s",
                "--keepalive",
                "12h",
                "--repair",
                "auto",
            ],
            &env,
        )
        .unwrap();
        let Command::Run(o) = plan.command else {
            panic!("{:?}", plan.command)
        };
        assert!(o.pair.is_some());
        assert_eq!(o.keepalive, Some(Duration::from_secs(12 * 3600)));
        assert_eq!(o.repair, Repair::Auto);
        let env_off = [
            ("HOME", "/h"),
            ("SFPAIR_CLIENT_ID", "K"),
            ("SFPAIR_KEEPALIVE", "0"),
        ];
        let Command::Run(o) = plan_for(&["run", "--socket", "/s"], &env_off)
            .unwrap()
            .command
        else {
            panic!()
        };
        assert_eq!((o.keepalive, o.repair), (None, Repair::Prompt));
        for (args, says) in [
            (
                &["run", "--socket", "/s", "--keepalive", "weekly"][..],
                "not a duration",
            ),
            (
                &["run", "--socket", "/s", "--repair", "sometimes"],
                "never, prompt or auto",
            ),
            (&["run"], "--socket"),
        ] {
            let e = plan_for(args, &env).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}");
            assert!(e.message().contains(says), "{args:?}: {e}");
        }
        let e = plan_for(&["run", "--socket", "/s"], &[("HOME", "/h")]).unwrap_err();
        assert!(
            e.message().contains("no client id"),
            "run pairs, so it needs one: {e}"
        );
    }

    #[test]
    fn keepalive_defaults_to_a_week_and_zero_turns_it_off() {
        let s = resolve(&["token"], &[("HOME", "/h")]).unwrap();
        assert_eq!(s.keepalive, Some(DEFAULT_KEEPALIVE));
        let s = resolve(&["token"], &[("HOME", "/h"), ("SFPAIR_KEEPALIVE", "36h")]).unwrap();
        assert_eq!(s.keepalive, Some(Duration::from_secs(36 * 3600)));
        let s = resolve(
            &["token", "--keepalive", "0"],
            &[("HOME", "/h"), ("SFPAIR_KEEPALIVE", "36h")],
        )
        .unwrap();
        assert_eq!(s.keepalive, None);
        let e = resolve(&["token", "--keepalive", "1w"], &[("HOME", "/h")]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.message().contains("--keepalive '1w' is not a duration"),
            "{e}"
        );
        let e = resolve(&["token"], &[("HOME", "/h"), ("SFPAIR_KEEPALIVE", "")]).unwrap_err();
        assert!(e.message().contains("SFPAIR_KEEPALIVE is empty"), "{e}");
    }

    #[cfg(feature = "broker")]
    #[test]
    fn serve_needs_a_socket() {
        let e = plan_for(&["serve"], &[("HOME", "/h")]).unwrap_err();
        assert!(e.message().contains("--socket"), "{e}");
        let plan = plan_for(
            &[
                "serve",
                "--socket",
                "/run/s",
                "--socket-group",
                "0",
                "--allow-gid",
                "5",
            ],
            &[("HOME", "/h")],
        )
        .unwrap();
        let Command::Run(o) = plan.command else {
            panic!("{:?}", plan.command)
        };
        assert!(o.pair.is_none(), "serve is run without pairing");
        assert_eq!((o.serve.group, o.serve.allow_gids), (Some(0), vec![5]));
        assert_eq!(o.keepalive, Some(DEFAULT_KEEPALIVE));
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
