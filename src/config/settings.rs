//! The settings every command shares, resolved from the flags, the environment, the board
//! profile and the defaults ([`Sources`] owns that order) into their types: the store into a
//! `store::Spec`, displays into `present::spec::Display`, the login URL by `login_url::check`,
//! the flow and the repair mode into enums. A value that is given and wrong is a usage error
//! (exit 2), whatever layer gave it.
//!
//! I/O here is limited to reading the client secret file and the board profile; the stored
//! pairing, a layer of its own (`stored.rs`), is read by the caller's function. sfpair ships
//! no default client id: Salesforce allows the device flow only for the customer's own app
//! (docs/protocol.md, "Device flow restriction (2025)").

use std::path::PathBuf;
use std::time::Duration;

#[cfg(feature = "boards")]
use crate::board::Board;
use crate::cli::{Args, Opt};
use crate::error::Error;
use crate::flow::FlowConfig;
use crate::flow::dialect::{Client, Dialect, Endpoints};
use crate::http::HttpConfig;
use crate::login_url;
use crate::present::spec::{self, Display};
use crate::secret::Secret;
#[cfg(feature = "broker")]
use crate::service::Repair;
use crate::store::{self, file::FileStore};
use crate::url;

#[cfg(not(feature = "boards"))]
use super::Board;
use super::sources::Sources;
use super::stored::{self, Stored};
use super::{DEFAULT_KEEPALIVE, DEFAULT_LOGIN_URL, DEFAULT_SCOPE};

/// How a pairing is made (`--flow`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowName {
    /// The device flow: a person approves.
    Device,
    /// A JWT bearer assertion signed with the device's key.
    JwtBearer,
    /// The app's consumer key and secret, for its run-as user.
    ClientCredentials,
}

impl FlowName {
    fn parse(name: &str) -> Result<FlowName, Error> {
        match name.trim() {
            "device" => Ok(FlowName::Device),
            "jwt-bearer" => Ok(FlowName::JwtBearer),
            "client-credentials" => Ok(FlowName::ClientCredentials),
            other => Err(Error::config(format!(
                "unknown --flow '{other}': use device, jwt-bearer or client-credentials"
            ))),
        }
    }

    /// As written on the command line.
    pub fn name(self) -> &'static str {
        match self {
            FlowName::Device => "device",
            FlowName::JwtBearer => "jwt-bearer",
            FlowName::ClientCredentials => "client-credentials",
        }
    }
}

/// The settings every command shares, validated.
#[derive(Clone, Debug)]
pub struct Settings {
    pub dialect: Dialect,
    /// Salesforce: the normalized login URL (no trailing slash).
    pub login_url: String,
    pub endpoints: Endpoints,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    /// The file `client_secret` was read from, absolute (a client credentials pairing
    /// remembers it); `None` when it came from `SFPAIR_CLIENT_SECRET` or is not set.
    pub client_secret_file: Option<PathBuf>,
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
    /// `--api-version`, normalized (`62.0`).
    pub api_version: Option<String>,
    /// `run`/`serve`: refresh at least this often; `None`: keepalive off.
    pub keepalive: Option<Duration>,
    /// `run --repair`.
    #[cfg(feature = "broker")]
    pub repair: Repair,
    /// `--issuer` (RFC 8628): the endpoints come from the provider's metadata at pairing.
    pub issuer: Option<String>,
    /// `--flow` and the headless grant's settings; checked by `enrolment` when pairing (after
    /// pairing, the stored record says which grant runs).
    pub flow: FlowName,
    pub key_file: Option<PathBuf>,
    pub username: Option<String>,
    pub audience: Option<String>,
    /// The outbox, for `send`, `outbox` and `run`/`serve`; `None` for the other commands.
    #[cfg(feature = "outbox")]
    pub outbox: Option<crate::commands::outbox::Place>,
    /// Whether `--outbox` or `SFPAIR_OUTBOX` named it (else it is the default place).
    #[cfg(feature = "outbox")]
    pub outbox_given: bool,
    /// How delivery talks to the org (`--api-reserve`, `--api-version`).
    #[cfg(feature = "outbox")]
    pub delivery: crate::delivery::Options,
    /// The listener (`listen`, `run --listen`); `None` when the command listens to nothing.
    #[cfg(feature = "listen")]
    pub listen: Option<crate::listen::Options>,
    /// The desired state (`desired`, `run --desired`); `None` when the command follows none.
    #[cfg(feature = "desired")]
    pub desired: Option<crate::desired::Options>,
    /// The channels `doctor` subscribes to once (`--listen`, and `--desired`'s change events).
    #[cfg(feature = "listen")]
    pub checked_channels: Vec<String>,
    /// `--seal`, `--tpm`, `--pkcs11-module`, `--pkcs11-pin-file` (docs/sealing.md).
    pub seal: crate::commands::seal::Settings,
}

/// An https endpoint given on the command line (`--issuer`, `--device-url`, ...).
pub(super) fn endpoint(raw: &str, flag: &str) -> Result<String, Error> {
    let parts = url::check(raw)
        .map_err(|problem| Error::config(format!("{flag} '{raw}' {}", problem.describe())))?;
    if !url::is_secure(raw) || parts.host.is_empty() {
        return Err(Error::config(format!(
            "{flag} '{raw}' must be an https URL (plain http only to a loopback address)"
        )));
    }
    Ok(raw.to_string())
}

/// The board profile named by `--board` or `SFPAIR_BOARD`, if any. A profile whose login URL
/// is still the placeholder is refused unless a flag or the environment gives the URL.
#[cfg(feature = "boards")]
fn board(args: &Args, env: &dyn Fn(&str) -> Option<String>) -> Result<Option<Board>, Error> {
    let sources = Sources::new(args, env, None);
    let Some(path) = sources.path(Opt::Board)? else {
        return Ok(None);
    };
    let board = Board::load(&path)?;
    if board.login_url_is_placeholder() && sources.text(Opt::LoginUrl)?.is_none() {
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

/// `--board` or `SFPAIR_BOARD` in a build without board profiles: a usage error, never ignored.
#[cfg(not(feature = "boards"))]
fn board(args: &Args, env: &dyn Fn(&str) -> Option<String>) -> Result<Option<Board>, Error> {
    if Sources::new(args, env, None).text(Opt::Board)?.is_some() {
        return Err(crate::commands::not_built(
            "--board",
            "board profiles",
            "boards",
        ));
    }
    Ok(None)
}

/// The client secret from `--client-secret-file` / `SFPAIR_CLIENT_SECRET_FILE` (or the file a
/// stored client credentials pairing names), or the value of `SFPAIR_CLIENT_SECRET`; never from
/// an argument (`cli.rs` refuses `--client-secret`). With the file's absolute path.
fn client_secret(sources: &Sources) -> Result<(Option<Secret>, Option<PathBuf>), Error> {
    if !sources.applies(Opt::ClientSecretFile) {
        return Ok((None, None));
    }
    let Some((path, from)) = sources.given(Opt::ClientSecretFile)? else {
        return Ok((sources.var("SFPAIR_CLIENT_SECRET")?.map(Secret::new), None));
    };
    let path = PathBuf::from(path);
    // The rules for secret files (not blocking, a regular file, ours, 0600, one final newline
    // off) have one home: files.rs.
    // Which setting named the file: a stale path in the stored pairing must say so.
    let what = format!("the client secret file (given by {from})");
    let bytes = crate::files::read_secret(&path, 4096, &what)?;
    let secret = crate::files::secret_text(&bytes, &path, &what)?;
    Ok((Some(secret), std::path::absolute(&path).ok()))
}

/// The dialect, the login URL, the endpoints and the issuer, checked together.
fn endpoints(sources: &Sources) -> Result<(Dialect, String, Endpoints, Option<String>), Error> {
    let dialect = match sources.text(Opt::Dialect)? {
        None => Dialect::Salesforce,
        Some(name) => Dialect::from_name(&name).ok_or_else(|| {
            Error::config(format!(
                "unknown --dialect '{name}': use salesforce or rfc8628"
            ))
        })?,
    };
    let login_url = login_url::check(
        &sources
            .text(Opt::LoginUrl)?
            .unwrap_or_else(|| DEFAULT_LOGIN_URL.into()),
    )?;
    let issuer = sources
        .text(Opt::Issuer)?
        .map(|u| endpoint(&u, "--issuer"))
        .transpose()?;
    if issuer.is_some() && dialect != Dialect::Rfc8628 {
        return Err(Error::config(
            "--issuer is for --dialect rfc8628; for Salesforce give --login-url",
        ));
    }
    let (device, token) = (sources.text(Opt::DeviceUrl)?, sources.text(Opt::TokenUrl)?);
    let endpoints = match dialect {
        Dialect::Salesforce => {
            if device.is_some() || token.is_some() {
                return Err(Error::config(
                    "--device-url and --token-url need --dialect rfc8628; for Salesforce give \
                     --login-url",
                ));
            }
            Endpoints::salesforce(&login_url)
        }
        Dialect::Rfc8628 if issuer.is_some() => {
            if device.is_some() || token.is_some() {
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
            let (Some(device), Some(token)) = (device, token) else {
                return Err(Error::config(
                    "--dialect rfc8628 needs --issuer URL, or --device-url and --token-url",
                ));
            };
            Endpoints {
                device: endpoint(&device, "--device-url")?,
                token: endpoint(&token, "--token-url")?,
                revoke: sources
                    .text(Opt::RevokeUrl)?
                    .map(|u| endpoint(&u, "--revoke-url"))
                    .transpose()?,
            }
        }
    };
    Ok((dialect, login_url, endpoints, issuer))
}

/// Where the pairing lives: `--store`, `SFPAIR_STORE`, the board's store, else the default
/// file store.
fn store(sources: &Sources, board: Option<&Board>, is_root: bool) -> Result<store::Spec, Error> {
    if let Some(spec) = sources.text(Opt::Store)? {
        return store::Spec::parse(&spec);
    }
    match board {
        #[cfg(feature = "boards")]
        Some(board) => Ok(board.store.clone()),
        #[cfg(not(feature = "boards"))]
        Some(board) => match *board {},
        None => FileStore::default_path(|k| sources.raw(k), is_root)
            .map(store::Spec::File)
            .ok_or_else(|| {
                Error::config(
                    "no store given and no home directory: pass --store file:PATH or set \
                     SFPAIR_STATE_DIR",
                )
            }),
    }
}

/// The timeouts and trust: `--timeout`, `--ca-file`.
fn http(sources: &Sources) -> Result<HttpConfig, Error> {
    let timeout = sources.seconds(Opt::Timeout, Some(30))?.unwrap_or_default();
    if timeout.is_zero() {
        return Err(Error::config("--timeout must be at least 1 second"));
    }
    Ok(HttpConfig {
        ca_file: sources.path(Opt::CaFile)?,
        connect_timeout: timeout.min(Duration::from_secs(10)),
        read_timeout: timeout,
        ..HttpConfig::default()
    })
}

impl Settings {
    /// Merges the flags over the environment over the board profile over the stored pairing
    /// over the defaults. `stored` reads the pairing in a store (I/O is the caller's); it is
    /// called only for a command that takes a setting the pairing can give.
    pub fn resolve(
        args: &Args,
        env: &dyn Fn(&str) -> Option<String>,
        is_root: bool,
        stored: &super::StoredReader<'_>,
    ) -> Result<Settings, Error> {
        let board = board(args, env)?;
        let sources = Sources::new(args, env, board.as_ref());
        let store = store(&sources, board.as_ref(), is_root)?;
        // Before the stored layer: a sealed pairing is read through them.
        let seal = super::seal::settings(&sources)?;
        let layer = match stored::LAYERED.iter().any(|o| sources.applies(*o)) {
            true => stored(&store, &seal)
                .map(|record| Stored::new(&record, &sources))
                .transpose()?,
            false => None,
        };
        if let Some(layer) = &layer {
            layer.note_disagreements(&sources, args.command);
        }
        let sources = sources.with_stored(layer.as_ref());
        let (dialect, login_url, endpoints, issuer) = endpoints(&sources)?;
        let displays = match sources.all(Opt::Display) {
            given if !given.is_empty() => given
                .into_iter()
                .map(spec::display)
                .collect::<Result<Vec<_>, _>>()?,
            _ => board.as_ref().map(Board::displays).unwrap_or_default(),
        };
        let max_codes = sources
            .number(Opt::MaxCodes, "a whole number")?
            .unwrap_or(3);
        if max_codes == 0 {
            return Err(Error::config("--max-codes must be at least 1"));
        }
        let code_lifetime = sources
            .seconds(Opt::CodeLifetime, Some(600))?
            .unwrap_or_default();
        if code_lifetime.is_zero() {
            return Err(Error::config("--code-lifetime must be at least 1 second"));
        }
        let seconds = |opt, default| {
            sources
                .seconds(opt, Some(default))
                .map(Option::unwrap_or_default)
        };
        let session_lifetime = sources.seconds(Opt::SessionLifetime, None)?;
        if session_lifetime == Some(Duration::ZERO) {
            return Err(Error::config(
                "--session-lifetime must be at least 1 second",
            ));
        }
        let api_version = sources
            .text(Opt::ApiVersion)?
            .map(|v| crate::rest::api_version(&v))
            .transpose()?;
        let (client_secret, client_secret_file) = client_secret(&sources)?;
        #[cfg(feature = "outbox")]
        let outbox = super::outbox::place(&sources, &store, is_root)?;
        let http = http(&sources)?;
        #[cfg(feature = "outbox")]
        let delivery =
            super::outbox::delivery(&sources, api_version.as_deref(), http.read_timeout)?;
        let settings = Settings {
            seal,
            #[cfg(feature = "listen")]
            listen: None,
            #[cfg(feature = "desired")]
            desired: None,
            #[cfg(feature = "listen")]
            checked_channels: Vec::new(),
            #[cfg(feature = "outbox")]
            outbox,
            #[cfg(feature = "outbox")]
            outbox_given: sources.given(Opt::Outbox)?.is_some(),
            #[cfg(feature = "outbox")]
            delivery,
            flow: sources
                .text(Opt::Flow)?
                .map(|f| FlowName::parse(&f))
                .transpose()?
                .unwrap_or(FlowName::Device),
            key_file: sources.path(Opt::KeyFile)?,
            username: sources.text(Opt::Username)?,
            audience: sources.text(Opt::Audience)?,
            dialect,
            login_url,
            endpoints,
            client_id: sources.text(Opt::ClientId)?,
            client_secret,
            client_secret_file,
            scope: sources
                .text(Opt::Scope)?
                .unwrap_or_else(|| DEFAULT_SCOPE.into()),
            http,
            store,
            displays,
            json: sources.switch(Opt::Json),
            max_codes,
            code_lifetime,
            prompt_login: sources.switch(Opt::PromptLogin),
            retry_for: seconds(Opt::RetryFor, 300)?,
            start_jitter: seconds(Opt::StartJitter, 0)?,
            wait_for_clock: seconds(Opt::WaitForClock, 60)?,
            session_lifetime,
            api_version,
            keepalive: sources.duration(Opt::Keepalive, DEFAULT_KEEPALIVE)?,
            #[cfg(feature = "broker")]
            repair: match sources.text(Opt::Repair)? {
                None => Repair::Prompt,
                Some(name) => Repair::from_name(name.trim()).ok_or_else(|| {
                    Error::config(format!(
                        "unknown --repair '{name}': use never, prompt or auto"
                    ))
                })?,
            },
            issuer,
        };
        #[cfg(feature = "listen")]
        let settings = Settings {
            listen: super::listen::options(&sources, args, &settings, is_root)?,
            checked_channels: match args.command {
                Some(crate::cli::CommandName::Doctor) => super::listen::checked_channels(&sources)?,
                _ => Vec::new(),
            },
            ..settings
        };
        #[cfg(feature = "desired")]
        let settings = Settings {
            desired: super::desired::options(&sources, args.command, &settings)?,
            ..settings
        };
        Ok(settings)
    }

    /// `--api-version`, or the version sfpair speaks when none is given.
    #[cfg(feature = "rest")]
    pub fn api_version_or_default(&self) -> String {
        self.api_version
            .clone()
            .unwrap_or_else(|| crate::rest::DEFAULT_API_VERSION.into())
    }

    /// The flow configuration for the device flow; needs a client id.
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
