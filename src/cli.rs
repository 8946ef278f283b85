//! Command-line parsing: arguments in, raw options out. No validation beyond syntax (that is
//! `config.rs`), no I/O beyond printing help.
//!
//! A client secret is never accepted as an argument value: arguments are visible to every user
//! in `ps` and `/proc/PID/cmdline`.

use std::ffi::OsString;
use std::path::PathBuf;

use lexopt::prelude::*;

use crate::error::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Pair,
    Token,
    Status,
    Forget,
    Help,
    Version,
}

/// Options as given on the command line; `None` means "not given".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Args {
    pub command: Option<Command>,
    /// `--help` after a command: show that command's help.
    pub help: bool,
    pub login_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    pub scope: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub store: Option<String>,
    pub displays: Vec<String>,
    pub json: bool,
    pub dialect: Option<String>,
    pub device_url: Option<String>,
    pub token_url: Option<String>,
    pub revoke_url: Option<String>,
    pub max_codes: Option<u32>,
    pub code_lifetime: Option<u64>,
    pub prompt_login: bool,
    pub force: bool,
    pub check: bool,
    /// `--board FILE`: a board profile (see `board.rs`).
    pub board: Option<PathBuf>,
}

fn usage(msg: impl std::fmt::Display) -> Error {
    Error::config(format!("{msg} (see `sfpair --help`)"))
}

fn text(value: OsString, flag: &str) -> Result<String, Error> {
    value
        .into_string()
        .map_err(|_| usage(format!("{flag} is not valid UTF-8")))
}

fn number<T: std::str::FromStr>(value: OsString, flag: &str) -> Result<T, Error> {
    text(value, flag)?
        .parse()
        .map_err(|_| usage(format!("{flag} needs a whole number")))
}

/// Parses `sfpair [COMMAND] [OPTIONS]` (options may come before or after the command).
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Args, Error> {
    let mut parser = lexopt::Parser::from_iter(args);
    let mut a = Args::default();
    let err = |e: lexopt::Error| usage(e);
    while let Some(arg) = parser.next().map_err(err)? {
        match arg {
            Short('h') | Long("help") => a.help = true,
            Short('V') | Long("version") => a.command = Some(Command::Version),
            Long("login-url") => {
                a.login_url = Some(text(parser.value().map_err(err)?, "--login-url")?)
            }
            Long("client-id") => {
                a.client_id = Some(text(parser.value().map_err(err)?, "--client-id")?)
            }
            Long("client-secret") => {
                return Err(usage(
                    "--client-secret is not accepted: arguments are visible to every user. Put \
                     the secret in a file (--client-secret-file) or in SFPAIR_CLIENT_SECRET",
                ));
            }
            Long("client-secret-file") => {
                a.client_secret_file = Some(parser.value().map_err(err)?.into())
            }
            Long("scope") => a.scope = Some(text(parser.value().map_err(err)?, "--scope")?),
            Long("ca-file") => a.ca_file = Some(parser.value().map_err(err)?.into()),
            Long("store") => a.store = Some(text(parser.value().map_err(err)?, "--store")?),
            Long("display") => a
                .displays
                .push(text(parser.value().map_err(err)?, "--display")?),
            Long("json") => a.json = true,
            Long("dialect") => a.dialect = Some(text(parser.value().map_err(err)?, "--dialect")?),
            Long("device-url") => {
                a.device_url = Some(text(parser.value().map_err(err)?, "--device-url")?)
            }
            Long("token-url") => {
                a.token_url = Some(text(parser.value().map_err(err)?, "--token-url")?)
            }
            Long("revoke-url") => {
                a.revoke_url = Some(text(parser.value().map_err(err)?, "--revoke-url")?)
            }
            Long("max-codes") => {
                a.max_codes = Some(number(parser.value().map_err(err)?, "--max-codes")?)
            }
            Long("code-lifetime") => {
                a.code_lifetime = Some(number(parser.value().map_err(err)?, "--code-lifetime")?)
            }
            Long("prompt-login") => a.prompt_login = true,
            Long("force") => a.force = true,
            Long("check") => a.check = true,
            Long("board") => a.board = Some(parser.value().map_err(err)?.into()),
            Value(v) if a.command.is_none() => {
                a.command = Some(match text(v, "command")?.as_str() {
                    "pair" => Command::Pair,
                    "token" => Command::Token,
                    "status" => Command::Status,
                    "forget" => Command::Forget,
                    "help" => Command::Help,
                    other => return Err(usage(format!("unknown command '{other}'"))),
                });
            }
            other => return Err(usage(other.unexpected())),
        }
    }
    Ok(a)
}

pub const HELP: &str = "\
sfpair: pair this device with Salesforce through the OAuth 2.0 device flow

Usage: sfpair <COMMAND> [OPTIONS]

Commands:
  pair     Show a code and a QR, wait for a person to approve, store the pairing
  token    Print a fresh access token (--json adds instance_url)
  status   Show the stored pairing, never a token (--check also tests it)
  forget   Revoke the refresh token at the server, then wipe the store
  help     Show this text; `sfpair <COMMAND> --help` shows a command's options

Common options (environment variable in brackets):
  --login-url URL          Org login host [SFPAIR_LOGIN_URL] (https://login.salesforce.com,
                           https://test.salesforce.com or https://MyDomain.my.salesforce.com)
  --client-id KEY          Consumer key of your external client app [SFPAIR_CLIENT_ID]
  --client-secret-file F   Consumer secret, only for apps that require it
                           [SFPAIR_CLIENT_SECRET_FILE, or the value in SFPAIR_CLIENT_SECRET]
  --scope SCOPES           OAuth scopes [SFPAIR_SCOPE] (default: api refresh_token)
  --ca-file F              Trust these PEM certificates instead of the built-in Mozilla
                           roots [SFPAIR_CA_FILE]
  --store SPEC             Where the pairing lives [SFPAIR_STORE] (file:PATH; default
                           $SFPAIR_STATE_DIR/token, /var/lib/sfpair/token as root, else
                           $XDG_STATE_HOME/sfpair/token)
  --json                   Machine-readable output (JSON lines for pair)
  --board FILE             Board profile (boards/*.toml): target, display, store, login URL;
                           flags and SFPAIR_* variables beat it [SFPAIR_BOARD]
  -h, --help               Help;  -V, --version  Version

Exit codes: 0 ok, 1 unexpected server reply, 2 usage or configuration error, 3 denied,
4 expired after the last code, 5 not paired, 6 re-pair needed, 7 network or TLS failure,
8 storage failure, 9 HTTP error status from a REST call.
Logs go to standard error; set RUST_LOG=info or debug for more (tokens are never logged).
";

pub const HELP_PAIR: &str = "\
Usage: sfpair pair --client-id KEY [--login-url URL] [OPTIONS]

Requests a device code, shows the user code, the URL and a QR code, and polls until a person
approves on https://<login host>/setup/connect. The refresh token is then stored; nothing is
stored on denial, expiry or error. If a pairing is already stored, exits 0 without pairing
unless --force (the old pairing is replaced only when the new one is stored).

Options:
  --display KIND           console (code, URL and QR; default) or text (plain ASCII, for
                           serial consoles); repeatable
  --json                   JSON lines on standard output instead (see the README)
  --max-codes N            Fresh codes to show after expiry before giving up (default 3)
  --code-lifetime SECONDS  Code lifetime when the server sends none (default 600)
  --prompt-login           Add prompt=login to the QR URL, so the phone's existing session
                           does not pick the org
  --force                  Pair again even when a pairing is stored
  --dialect rfc8628 --device-url URL --token-url URL [--revoke-url URL]
                           Standard RFC 8628 provider instead of Salesforce
Plus the common options in `sfpair --help`.
";

pub const HELP_TOKEN: &str = "\
Usage: sfpair token [--json]

Exchanges the stored refresh token for a fresh access token and prints it on standard output
(with --json: {\"access_token\": ..., \"instance_url\": ...}). A rotated refresh token is stored
before the access token is printed. Exit code 6 when the server rejects the refresh token.
";

pub const HELP_STATUS: &str = "\
Usage: sfpair status [--check] [--json]

Shows where the pairing is stored, the org and instance, the client id and when it was paired;
never a token. --check also gets an access token and the user's identity, to prove the pairing
still works. Exit code 5 when not paired.
";

pub const HELP_FORGET: &str = "\
Usage: sfpair forget

Revokes the stored refresh token at the server (which also ends its access tokens), then wipes
the store. The store is wiped even when the server cannot be reached; then the exit code is 7
and the server-side token may stay valid until it expires or an admin revokes it.
";

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Args, Error> {
        parse(["sfpair"].iter().chain(args).map(OsString::from))
    }

    #[test]
    fn options_go_before_or_after_the_command() {
        let a = p(&[
            "--client-id",
            "K",
            "pair",
            "--display",
            "text",
            "--display",
            "console",
            "--force",
        ])
        .unwrap();
        assert_eq!(a.command, Some(Command::Pair));
        assert_eq!(a.client_id.as_deref(), Some("K"));
        assert_eq!(a.displays, ["text", "console"]);
        assert!(a.force);
        let a = p(&["token", "--json"]).unwrap();
        assert_eq!(a.command, Some(Command::Token));
        assert!(a.json);
    }

    #[test]
    fn a_secret_is_never_taken_from_the_command_line() {
        let err = p(&["pair", "--client-secret", "hunter2"]).unwrap_err();
        assert!(err.message().contains("--client-secret-file"));
        assert!(!err.message().contains("hunter2"));
    }

    #[test]
    fn bad_input_is_a_usage_error() {
        assert_eq!(p(&["fly"]).unwrap_err().exit_code(), 2);
        assert_eq!(
            p(&["pair", "--max-codes", "many"]).unwrap_err().exit_code(),
            2
        );
        assert_eq!(p(&["pair", "--bogus"]).unwrap_err().exit_code(), 2);
        assert_eq!(p(&["pair", "extra"]).unwrap_err().exit_code(), 2);
        assert_eq!(p(&["pair", "--login-url"]).unwrap_err().exit_code(), 2);
    }
}
