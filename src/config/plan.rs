//! From settings to a plan: the command the line names, with the options it needs, checked
//! before anything runs (a headless enrolment's key and user, a call's method and path, the
//! broker's socket), so no command reads the arguments or the environment again.
//!
//! No I/O.

use crate::agent::{Enrolment, Pairing};
#[cfg(feature = "broker")]
use crate::broker::ServeOptions;
use crate::cli::{Args, CommandName as Cli, Opt};
use crate::commands::{self, Backends, Command, Plan};
use crate::error::Error;
use crate::flow::dialect::Dialect;
#[cfg(feature = "rest")]
use crate::rest::RestRequest;
use crate::store::record::Grant;
#[cfg(feature = "rest")]
use crate::wire::Method;

use super::settings::{FlowName, Settings, endpoint};

/// The command line, the environment, the board profile and the stored pairing (read by
/// `stored`, `commands::stored_pairing` for the binary), validated into what to run. `Help`
/// and `Version` are the binary's own and have no plan.
pub fn plan(
    args: &Args,
    env: &dyn Fn(&str) -> Option<String>,
    is_root: bool,
    stored: &super::StoredReader<'_>,
) -> Result<Plan, Error> {
    let settings = Settings::resolve(args, env, is_root, stored)?;
    let command = match args.command {
        Some(Cli::Pair) => Command::Pair(Box::new(commands::pair::Options {
            how: pairing(&settings, args)?,
            displays: settings.displays.clone(),
            json: settings.json,
            force: args.has(Opt::Force),
        })),
        Some(Cli::Token) => Command::Token(commands::token::Options {
            json: settings.json,
        }),
        Some(Cli::Status) => Command::Status(commands::status::Options {
            check: args.has(Opt::Check),
            json: settings.json,
            socket: args.value(Opt::Socket).map(Into::into),
        }),
        Some(Cli::Forget) => Command::Forget,
        #[cfg(feature = "rest")]
        Some(Cli::Call) => Command::Call(call_options(&settings, args)?),
        #[cfg(not(feature = "rest"))]
        Some(Cli::Call) => return Err(commands::not_built("sfpair call", "REST calls", "rest")),
        #[cfg(feature = "broker")]
        Some(Cli::Serve) => Command::Run(Box::new(service_options(&settings, args, false)?)),
        #[cfg(feature = "broker")]
        Some(Cli::Run) => Command::Run(Box::new(service_options(&settings, args, true)?)),
        #[cfg(not(feature = "broker"))]
        Some(Cli::Serve | Cli::Run) => {
            return Err(commands::not_built(
                "sfpair serve and sfpair run",
                "the token broker",
                "broker",
            ));
        }
        #[cfg(feature = "doctor")]
        Some(Cli::Doctor) => Command::Doctor(commands::doctor::Options {
            json: settings.json,
            dialect: settings.dialect,
            login_url: settings.login_url.clone(),
            endpoints: settings.endpoints.clone(),
            scope: settings.scope.clone(),
            displays: settings.displays.clone(),
            #[cfg(feature = "listen")]
            channels: settings.checked_channels.clone(),
            #[cfg(feature = "listen")]
            api_version: settings.api_version_or_default(),
        }),
        #[cfg(not(feature = "doctor"))]
        Some(Cli::Doctor) => {
            return Err(commands::not_built("sfpair doctor", "the checks", "doctor"));
        }
        #[cfg(feature = "asset-token")]
        Some(Cli::AssetToken) => Command::AssetToken(asset_token_options(&settings, args)?),
        #[cfg(not(feature = "asset-token"))]
        Some(Cli::AssetToken) => {
            return Err(commands::not_built(
                "sfpair asset-token",
                "the asset token exchange",
                "asset-token",
            ));
        }
        #[cfg(feature = "outbox")]
        Some(Cli::Send) => Command::Send(Box::new(super::outbox::send(
            args,
            outbox_place(&settings)?,
            settings.json,
        )?)),
        #[cfg(feature = "outbox")]
        Some(Cli::Outbox) => Command::Outbox(Box::new(super::outbox::command(
            args,
            outbox_place(&settings)?,
            settings.delivery.clone(),
            settings.json,
        )?)),
        #[cfg(not(feature = "outbox"))]
        Some(Cli::Send | Cli::Outbox) => {
            return Err(commands::not_built(
                "sfpair send and sfpair outbox",
                "the outbox",
                "outbox",
            ));
        }
        #[cfg(feature = "listen")]
        Some(Cli::Listen) => Command::Listen(Box::new(commands::listen::Options {
            listen: settings
                .listen
                .clone()
                .ok_or_else(|| Error::config("sfpair listen needs a CHANNEL"))?,
            outbox: settings.outbox.clone(),
            delivery: settings.delivery.clone(),
        })),
        #[cfg(feature = "desired")]
        Some(Cli::Desired) => Command::Desired(Box::new(
            settings
                .desired
                .clone()
                .ok_or_else(|| Error::config("sfpair desired needs --desired"))?,
        )),
        #[cfg(not(feature = "desired"))]
        Some(Cli::Desired) => {
            return Err(commands::not_built(
                "sfpair desired",
                "the desired state",
                "desired",
            ));
        }
        #[cfg(not(feature = "listen"))]
        Some(Cli::Listen) => {
            return Err(commands::not_built(
                "sfpair listen",
                "the Streaming API listener",
                "listen",
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

#[cfg(feature = "outbox")]
fn outbox_place(settings: &Settings) -> Result<commands::outbox::Place, Error> {
    settings
        .outbox
        .clone()
        .ok_or_else(|| Error::config("no outbox: pass --outbox DIR or set SFPAIR_OUTBOX"))
}

/// `sfpair call METHOD PATH [--data …] [--header …] [--socket …]`.
#[cfg(feature = "rest")]
fn call_options(settings: &Settings, args: &Args) -> Result<commands::call::Options, Error> {
    let (Some(method), Some(path)) = (args.positional(0), args.positional(1)) else {
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
        path: crate::rest::resolve_path(path, Some(&settings.api_version_or_default()))?,
        body: None,
        headers: Vec::new(),
        deadline: None,
    };
    for line in args.values(Opt::Header) {
        request.headers.push(crate::rest::header(line)?);
    }
    Ok(commands::call::Options {
        request,
        body: args
            .value(Opt::Data)
            .map_or(commands::call::Body::None, commands::call::Body::from_arg),
        socket: args.value(Opt::Socket).map(Into::into),
    })
}

/// `run` (`pair`: it pairs) and `serve` (it does not).
#[cfg(feature = "broker")]
fn service_options(
    settings: &Settings,
    args: &Args,
    pair: bool,
) -> Result<commands::run::Options, Error> {
    Ok(commands::run::Options {
        pair: if pair {
            Some(pairing(settings, args)?)
        } else {
            None
        },
        displays: settings.displays.clone(),
        json: settings.json,
        keepalive: settings.keepalive,
        repair: settings.repair,
        serve: serve_options(args)?,
        wait_for_clock: settings.wait_for_clock,
        #[cfg(feature = "outbox")]
        outbox: settings
            .outbox
            .clone()
            .map(|place| crate::service::OutboxRun {
                place,
                delivery: settings.delivery.clone(),
                required: settings.outbox_given,
            }),
        #[cfg(feature = "listen")]
        listen: settings.listen.clone().or_else(|| {
            // `--desired` alone: a stream for the record's change events only.
            #[cfg(feature = "desired")]
            if let Some(d) = &settings.desired {
                return Some(crate::listen::Options::doorbell_only(
                    &d.api_version,
                    &settings.http,
                ));
            }
            None
        }),
        #[cfg(feature = "desired")]
        desired: settings.desired.clone(),
    })
}

/// The broker's socket and who may use it.
#[cfg(feature = "broker")]
fn serve_options(args: &Args) -> Result<ServeOptions, Error> {
    let socket = args.value(Opt::Socket).ok_or_else(|| {
        Error::config("sfpair serve and run need --socket PATH, e.g. /run/sfpair/token.sock")
    })?;
    let ids = |opt: Opt, what: &str| {
        args.values(opt)
            .map(|v| {
                v.trim().parse::<u32>().map_err(|_| {
                    Error::config(format!("--{what} '{v}' is not a number (a numeric id)"))
                })
            })
            .collect::<Result<Vec<u32>, Error>>()
    };
    Ok(ServeOptions {
        socket: socket.into(),
        group: args
            .value(Opt::SocketGroup)
            .map(crate::broker::group_id)
            .transpose()?,
        allow_uids: ids(Opt::AllowUid, "allow-uid")?,
        allow_gids: ids(Opt::AllowGid, "allow-gid")?,
    })
}

/// `sfpair asset-token` options.
#[cfg(feature = "asset-token")]
fn asset_token_options(
    settings: &Settings,
    args: &Args,
) -> Result<commands::asset_token::Options, Error> {
    let nonempty = |opt: Opt, flag: &str| match args.value(opt) {
        Some(v) if v.trim().is_empty() => Err(Error::config(format!(
            "{flag} is empty: give a value, or leave it out"
        ))),
        other => Ok(other.map(str::to_string)),
    };
    let device_id = nonempty(Opt::DeviceId, "--device-id")?.ok_or_else(|| {
        Error::config("sfpair asset-token needs --device-id ID (the device's own id, `did`)")
    })?;
    Ok(commands::asset_token::Options {
        device: crate::jwt::DeviceClaims {
            device_id,
            asset_name: nonempty(Opt::AssetName, "--asset-name")?,
            serial: nonempty(Opt::Serial, "--serial")?,
        },
        device_key: args.value(Opt::DeviceKey).map(Into::into),
        json: settings.json,
    })
}

/// Flags only the device flow uses (codes a person approves, and its provider).
const DEVICE_FLOW_ONLY: [Opt; 9] = [
    Opt::MaxCodes,
    Opt::CodeLifetime,
    Opt::PromptLogin,
    Opt::RetryFor,
    Opt::Scope,
    Opt::Issuer,
    Opt::DeviceUrl,
    Opt::TokenUrl,
    Opt::RevokeUrl,
];
/// Flags only the JWT bearer grant uses.
const JWT_BEARER_ONLY: [Opt; 3] = [Opt::KeyFile, Opt::Username, Opt::Audience];

/// How `pair` and `run` pair: the device flow, or the headless grant `--flow` names (or the
/// stored pairing's), checked before any request. A flag the chosen flow would not use is a
/// usage error, not a value dropped without a word.
fn pairing(settings: &Settings, args: &Args) -> Result<Pairing, Error> {
    let unused = |opt: &Opt| match settings.flow {
        FlowName::Device => JWT_BEARER_ONLY.contains(opt),
        FlowName::JwtBearer => DEVICE_FLOW_ONLY.contains(opt),
        FlowName::ClientCredentials => true,
    };
    let given = |opt: &Opt| args.has(*opt) || args.value(*opt).is_some();
    let all = DEVICE_FLOW_ONLY.iter().chain(&JWT_BEARER_ONLY);
    if let Some(opt) = all.filter(|o| unused(o)).find(|o| given(o)) {
        return Err(Error::config(format!(
            "--{} does not apply to the {} flow, which this pairing uses: leave it out, or \
             give the --flow it belongs to",
            crate::cli::table::spec(*opt).long,
            settings.flow.name()
        )));
    }
    Ok(match enrolment(settings)? {
        Some(enrolment) => Pairing::Headless {
            enrolment: Box::new(enrolment),
            start_spread: settings.start_jitter,
        },
        None => Pairing::Device {
            flow: Box::new(settings.flow_config()?),
            issuer: settings.issuer.clone(),
        },
    })
}

/// `pair --flow jwt-bearer|client-credentials`: the enrolment, checked before any request;
/// `None` for the device flow.
pub(super) fn enrolment(settings: &Settings) -> Result<Option<Enrolment>, Error> {
    let flow = match settings.flow {
        FlowName::Device => return Ok(None),
        other => other.name(),
    };
    if settings.dialect != Dialect::Salesforce {
        return Err(Error::config(format!(
            "--flow {flow} is a Salesforce grant: leave out --dialect"
        )));
    }
    let client_id = settings.client_id.clone().ok_or_else(|| {
        Error::config(format!(
            "--flow {flow} needs the app's consumer key: pass --client-id KEY or set \
             SFPAIR_CLIENT_ID"
        ))
    })?;
    let built = match settings.flow {
        FlowName::JwtBearer => cfg!(feature = "jwt-bearer"),
        _ => cfg!(feature = "client-credentials"),
    };
    if !built {
        return Err(Error::config(format!(
            "--flow {flow}: this sfpair was built without the `{flow}` feature"
        )));
    }
    let grant = if settings.flow == FlowName::JwtBearer {
        let key_file = settings.key_file.as_ref().ok_or_else(|| {
            Error::config(
                "--flow jwt-bearer needs --key-file PEM (SFPAIR_KEY_FILE): the RSA private key \
                 whose certificate is uploaded to the app",
            )
        })?;
        // Stored in the record and read again at every new session, maybe from another
        // working directory (a service): so absolute. A `pkcs11:` URI names a key in a
        // token instead (`headless/signer.rs`).
        let key_file = match crate::headless::signer::token_key(key_file)? {
            Some(uri) => std::path::PathBuf::from(uri),
            None => std::path::absolute(key_file)
                .map_err(|e| Error::config(format!("--key-file {}: {e}", key_file.display())))?,
        };
        let key_file = key_file.to_str().ok_or_else(|| {
            Error::config("--key-file must be a UTF-8 path (it is stored in the record)")
        })?;
        let username = settings.username.clone().ok_or_else(|| {
            Error::config(
                "--flow jwt-bearer needs --username USER (SFPAIR_USERNAME): the Salesforce user \
                 the device acts as, pre-approved for the app",
            )
        })?;
        let audience = match &settings.audience {
            Some(aud) => {
                endpoint(aud, "--audience")?;
                aud.trim_end_matches('/').to_string()
            }
            None => crate::headless::default_audience(&settings.login_url),
        };
        Grant::jwt_bearer(username, key_file.to_string(), audience)
    } else {
        if crate::headless::is_generic_login_host(&settings.login_url) {
            return Err(Error::config(format!(
                "--flow client-credentials works only on the org's My Domain, not on {}: use \
                 --login-url https://NAME.my.salesforce.com (Setup > My Domain)",
                settings.login_url
            )));
        }
        if settings.client_secret.is_none() {
            return Err(Error::config(
                "--flow client-credentials needs the consumer secret: --client-secret-file FILE \
                 or SFPAIR_CLIENT_SECRET_FILE (never an argument)",
            ));
        }
        // The file's path is kept (never the secret), as the JWT grant keeps its key file's.
        let secret_file = settings
            .client_secret_file
            .as_ref()
            .and_then(|p| p.to_str())
            .map(str::to_string);
        Grant::client_credentials_from(secret_file)
    };
    Ok(Some(Enrolment {
        login_url: settings.login_url.clone(),
        client_id,
        grant,
    }))
}
