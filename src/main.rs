//! The `sfpair` command: parse → settings → backends → agent → exit code.
//!
//! CLI only: each command is a few lines over the library. Errors are printed once, as
//! `error: …`, and mapped to the documented exit codes (see `sfpair --help` and the README).
//! Nothing here prints a token except `sfpair token`, whose job it is.

use std::io::Write;
use std::process::ExitCode;

use serde_json::json;

use sfpair::agent::{Agent, Forgotten};
use sfpair::api;
use sfpair::broker::{self, client::Broker, client::BrokerCaller};
use sfpair::cli::{self, Args, Command};
use sfpair::config::Settings;
use sfpair::error::{Error, ErrorKind};
use sfpair::http::UreqTransport;
use sfpair::present::Presenter;
use sfpair::present::console::{Console, Style};
use sfpair::present::fbdev::FrameBuffer;
use sfpair::present::frame_file::{Format, FrameFile};
use sfpair::present::json::JsonLines;
use sfpair::present::screen::{Panel, Screen};
use sfpair::present::sh1106::Sh1106;
use sfpair::present::spec::{Controller, Display};
use sfpair::present::ssd1306::Ssd1306;
use sfpair::store::{self, Loaded};
use sfpair::time::{Clock, SystemClock, format_age, format_utc};

fn main() -> ExitCode {
    sfpair::logging::init();
    let result = cli::parse(std::env::args_os()).and_then(|args| run(&args));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(args: &Args) -> Result<u8, Error> {
    let command = args.command.unwrap_or(Command::Help);
    if args.help || command == Command::Help {
        print!(
            "{}",
            match command {
                Command::Pair => cli::HELP_PAIR,
                Command::Token => cli::HELP_TOKEN,
                Command::Status => cli::HELP_STATUS,
                Command::Forget => cli::HELP_FORGET,
                Command::Call => cli::HELP_CALL,
                Command::Serve => cli::HELP_SERVE,
                Command::Help | Command::Version => cli::HELP,
            }
        );
        return Ok(0);
    }
    if command == Command::Version {
        println!("sfpair {}", env!("CARGO_PKG_VERSION"));
        return Ok(0);
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let is_root = unsafe { libc::geteuid() } == 0;
    let settings = Settings::resolve(args, &|k| std::env::var(k).ok(), is_root)?;
    let transport = UreqTransport::new(&settings.http)?;
    let mut agent = Agent::new(
        Box::new(SystemClock::new()),
        Box::new(transport),
        store::open(&settings.store)?,
    );
    agent.set_client_secret(settings.client_secret.clone());
    agent.set_session_lifetime(settings.session_lifetime);
    match command {
        Command::Pair => pair(&mut agent, &settings, args.force),
        Command::Token => token(&mut agent, &settings, args.json),
        Command::Status => status(&mut agent, &settings, args),
        Command::Forget => forget(&mut agent, &settings),
        Command::Call => call(&mut agent, args, &settings),
        Command::Serve => serve(agent, args, &settings),
        Command::Help | Command::Version => Ok(0),
    }
}

fn pair(agent: &mut Agent, settings: &Settings, force: bool) -> Result<u8, Error> {
    let flow = settings.flow_config()?;
    match agent.load()? {
        Loaded::Paired(record) if !force => {
            if settings.json {
                println!(
                    "{}",
                    json!({"event": "already_paired", "instance_url": record.instance_url})
                );
            } else {
                println!(
                    "Already paired with {} (stored in {}). Use --force to pair again, or \
                     `sfpair forget` first.",
                    record.instance_url,
                    agent.store_description()
                );
            }
            return Ok(0);
        }
        Loaded::Corrupt(reason) => log::warn!(
            "the stored pairing in {} is unreadable ({reason}); it stays until this pairing succeeds",
            agent.store_description()
        ),
        Loaded::Paired(_) | Loaded::Empty => {}
    }
    // Before the first handshake: a clock in 1970 makes every certificate "not yet valid".
    agent.wait_for_clock(settings.wait_for_clock)?;
    let displays = if settings.displays.is_empty() && !settings.json {
        vec![Display::Console]
    } else {
        settings.displays.clone()
    };
    let consoles = displays
        .iter()
        .any(|d| matches!(d, Display::Console | Display::Text));
    let mut panels = Vec::new();
    for display in displays {
        let style = match display {
            Display::Console => Style::Qr,
            Display::Text => Style::Text,
            panel => {
                let opened = open_panel(&panel);
                panels.push(opened.is_some());
                if let Some(presenter) = opened {
                    agent.add_presenter(presenter);
                }
                continue;
            }
        };
        // With --json, standard output carries only JSON lines; a console goes to stderr.
        if settings.json {
            agent.add_presenter(Box::new(Console::stderr(style)));
        } else {
            agent.add_presenter(Box::new(Console::stdout(style)));
        }
    }
    if settings.json {
        agent.add_presenter(Box::new(JsonLines::stdout()));
    }
    if !panels.is_empty() && !panels.contains(&true) && !consoles {
        no_panel_opened(agent, settings.json);
    }
    agent.pair(flow)?;
    Ok(0)
}

fn token(agent: &mut Agent, settings: &Settings, as_json: bool) -> Result<u8, Error> {
    agent.stored()?;
    agent.wait_for_clock(settings.wait_for_clock)?;
    let session = agent.access_token()?;
    let mut out = std::io::stdout().lock();
    let written = if as_json {
        writeln!(
            out,
            "{}",
            json!({
                "access_token": session.access_token.expose(),
                "instance_url": session.instance_url,
            })
        )
    } else {
        writeln!(out, "{}", session.access_token.expose())
    };
    written.map_err(|e| Error::new(ErrorKind::Server, format!("cannot write the token: {e}")))?;
    Ok(0)
}

fn status(agent: &mut Agent, settings: &Settings, args: &Args) -> Result<u8, Error> {
    let record = agent.stored()?;
    let (org_id, user_id) = api::org_and_user(&record.identity_url);
    let paired_at = if record.issued_at_ms > 0 {
        record.issued_at_ms / 1000
    } else {
        record.paired_at
    };
    // The device's wall clock; `None` when it is behind the pairing (a board without an RTC
    // before NTP has synced).
    let age = SystemClock::new()
        .unix_time()
        .as_secs()
        .checked_sub(paired_at);
    let check = args.check.then(|| {
        // Before the first handshake: a clock in 1970 makes every certificate "not yet valid".
        agent
            .wait_for_clock(settings.wait_for_clock)
            .and_then(|()| check(agent))
    });
    if args.json {
        let mut value = json!({
            "paired": true,
            "store": agent.store_description(),
            "dialect": record.dialect.name(),
            "instance_url": record.instance_url,
            "login_url": record.login_url,
            "token_url": record.token_url,
            "client_id": record.client_id,
            "org_id": org_id,
            "user_id": user_id,
            "scope": record.scope,
            "paired_at": paired_at,
            "age_seconds": age,
            "age": age.map(format_age),
        });
        match &check {
            Some(Ok(user)) => {
                value["check"] = json!({
                    "refresh": "ok",
                    "username": user.username,
                    "name": user.name,
                    "email": user.email,
                    "user_id": user.user_id,
                    "org_id": user.org_id,
                })
            }
            Some(Err(e)) => {
                value["check"] = json!({
                    "refresh": if e.kind() == ErrorKind::RepairNeeded { "rejected" } else { "failed" },
                    "error": e.kind().name(),
                    "message": e.message(),
                })
            }
            None => {}
        }
        println!("{value}");
    } else {
        println!("Paired, stored in {}", agent.store_description());
        println!("  instance   {}", record.instance_url);
        if !record.login_url.is_empty() {
            println!("  login URL  {}", record.login_url);
        } else {
            println!("  token URL  {}", record.token_url);
        }
        println!("  client id  {}", record.client_id);
        if let (Some(org), Some(user_id)) = (&org_id, &user_id) {
            println!("  org        {org}, user {user_id}");
        }
        println!("  scope      {}", record.scope);
        match age {
            Some(age) => println!(
                "  paired     {} ({} ago)",
                format_utc(paired_at),
                format_age(age)
            ),
            None => println!(
                "  paired     {} (age unknown: this device's clock is behind that time)",
                format_utc(paired_at)
            ),
        }
        match &check {
            Some(Ok(user)) => {
                let who = user.username.as_deref().unwrap_or("(unknown user)");
                let name = user
                    .name
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default();
                println!("  user       {who}{name}");
                if let Some(org) = &user.org_id {
                    println!("  org id     {org}");
                }
                println!("  check      the refresh token works");
            }
            Some(Err(_)) => println!("  check      FAILED (see the error below)"),
            None => {}
        }
    }
    match check {
        Some(Err(e)) => Err(e),
        _ => Ok(0),
    }
}

/// Who the pairing acts as, from the userinfo endpoint.
struct UserInfo {
    username: Option<String>,
    name: Option<String>,
    email: Option<String>,
    user_id: Option<String>,
    org_id: Option<String>,
}

/// `status --check`: a refresh (proves the refresh token works) and userinfo.
fn check(agent: &mut Agent) -> Result<UserInfo, Error> {
    agent.refresh()?;
    let info = agent.userinfo()?;
    let text = |key: &str| info.get(key).and_then(|v| v.as_str()).map(str::to_string);
    Ok(UserInfo {
        username: text("preferred_username"),
        name: text("name"),
        email: text("email"),
        user_id: text("user_id"),
        org_id: text("organization_id"),
    })
}

/// `sfpair call`: the body to standard output, the status to the exit code.
fn call(agent: &mut Agent, args: &Args, settings: &Settings) -> Result<u8, Error> {
    let request = settings.rest_request(args)?;
    agent.wait_for_clock(settings.wait_for_clock)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let reply = match &args.socket {
        Some(path) => {
            let mut caller = BrokerCaller {
                broker: Broker::new(path),
                transport: Box::new(UreqTransport::new(&settings.http)?),
            };
            sfpair::call::call(&mut caller, &request, &mut out)?
        }
        None => agent.call(&request, &mut out)?,
    };
    log::info!(
        "HTTP {} ({} bytes{}){}",
        reply.status,
        reply.bytes,
        if reply.refreshed {
            ", after refreshing the session"
        } else {
            ""
        },
        reply
            .limit_info
            .as_deref()
            .map(|l| format!(", Sforce-Limit-Info: {l}"))
            .unwrap_or_default()
    );
    match reply.error() {
        None => Ok(0),
        Some(e) => Err(e),
    }
}

/// `sfpair serve`: the token broker, until SIGTERM or SIGINT.
fn serve(mut agent: Agent, args: &Args, settings: &Settings) -> Result<u8, Error> {
    let options = settings.serve_options(args)?;
    agent.wait_for_clock(settings.wait_for_clock)?;
    broker::serve(agent, &options)?;
    Ok(0)
}

fn forget(agent: &mut Agent, settings: &Settings) -> Result<u8, Error> {
    let store = agent.store_description();
    if matches!(agent.load()?, Loaded::Paired(_)) {
        // The wipe happens whatever the clock says; the wait only gives revocation a chance.
        if let Err(e) = agent.wait_for_clock(settings.wait_for_clock) {
            log::warn!("{e}");
        }
    }
    match agent.forget()? {
        Forgotten::NothingStored => {
            println!("Nothing to forget: {store} holds no pairing.");
            Ok(0)
        }
        Forgotten::Revoked => {
            println!("Revoked the refresh token at the server and wiped {store}.");
            Ok(0)
        }
        Forgotten::WipedOnly { reason } => {
            eprintln!(
                "warning: wiped {store}, but the server was not told ({reason}). The refresh \
                 token may stay valid at the server until it expires or an admin revokes it \
                 (Setup > Connected Apps OAuth Usage)."
            );
            Ok(ErrorKind::Network.exit_code())
        }
    }
}

/// Opens a small display (OLED, framebuffer, PBM or PNG frame file) for the pairing screen. A display that
/// cannot be opened is logged, naming the device and what to check, and pairing goes on without
/// it: a missing panel must not keep the device from pairing.
fn open_panel(display: &Display) -> Option<Box<dyn Presenter>> {
    fn boxed<P: Panel + 'static>(panel: P) -> Box<dyn Presenter> {
        let panel: Box<dyn Panel> = Box::new(panel);
        Box::new(Screen::new(panel))
    }
    let opened = match display {
        Display::Oled(oled) => match oled.controller {
            Controller::Ssd1306 => Ssd1306::open(&oled.bus, oled.address, oled.height).map(boxed),
            Controller::Sh1106 { column_offset } => {
                Sh1106::open(&oled.bus, oled.address, column_offset).map(boxed)
            }
        },
        Display::Framebuffer(path) => FrameBuffer::open(path).map(boxed),
        Display::Pbm {
            path,
            width,
            height,
        } => FrameFile::new(path, *width, *height, Format::Pbm).map(boxed),
        Display::Png {
            path,
            width,
            height,
        } => FrameFile::new(path, *width, *height, Format::Png).map(boxed),
        Display::Console | Display::Text => return None,
    };
    opened
        .map_err(|e| log::error!("cannot open the display {e}; pairing goes on without it"))
        .ok()
}

/// Every display failed and no console was asked for: nobody would see the code. Say so loudly,
/// and show the code as plain text on standard error (standard output may carry JSON lines).
fn no_panel_opened(agent: &mut Agent, json: bool) {
    if json {
        log::error!(
            "none of the displays could be opened: the code is shown only in the JSON events"
        );
    } else {
        log::error!(
            "none of the displays could be opened: showing the code as text on standard error"
        );
        agent.add_presenter(Box::new(Console::stderr(Style::Text)));
    }
}
