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
use sfpair::cli::{self, Args, Command};
use sfpair::config::{Controller, Display, Settings};
use sfpair::error::{Error, ErrorKind};
use sfpair::http::UreqTransport;
use sfpair::present::Presenter;
use sfpair::present::console::{Console, Style};
use sfpair::present::fbdev::FrameBuffer;
use sfpair::present::json::JsonLines;
use sfpair::present::pbm::PbmFile;
use sfpair::present::png::PngFile;
use sfpair::present::screen::{Panel, Screen};
use sfpair::present::sh1106::Sh1106;
use sfpair::present::ssd1306::Ssd1306;
use sfpair::store::{self, Loaded};
use sfpair::time::{SystemClock, format_utc};

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
    match command {
        Command::Pair => pair(&mut agent, &settings, args.force),
        Command::Token => token(&mut agent, args.json),
        Command::Status => status(&mut agent, args),
        Command::Forget => forget(&mut agent),
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

fn token(agent: &mut Agent, as_json: bool) -> Result<u8, Error> {
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

fn status(agent: &mut Agent, args: &Args) -> Result<u8, Error> {
    let record = agent.stored()?;
    let (org_id, user_id) = api::org_and_user(&record.identity_url);
    let paired_at = if record.issued_at_ms > 0 {
        record.issued_at_ms / 1000
    } else {
        record.paired_at
    };
    let mut user = None;
    if args.check {
        agent.access_token()?;
        let info = agent.userinfo()?;
        user = info
            .get("preferred_username")
            .or_else(|| info.get("name"))
            .and_then(|v| v.as_str())
            .map(str::to_string);
    }
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
        });
        if args.check {
            value["check"] = json!({"refresh": "ok", "username": user});
        }
        println!("{value}");
        return Ok(0);
    }
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
    println!("  paired     {}", format_utc(paired_at));
    if args.check {
        println!(
            "  check      refresh works; signed in as {}",
            user.as_deref().unwrap_or("(unknown user)")
        );
    }
    Ok(0)
}

fn forget(agent: &mut Agent) -> Result<u8, Error> {
    let store = agent.store_description();
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
        } => PbmFile::new(path, *width, *height).map(boxed),
        Display::Png {
            path,
            width,
            height,
        } => PngFile::new(path, *width, *height).map(boxed),
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
