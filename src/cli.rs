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
    Call,
    Serve,
    Run,
    Doctor,
    /// `asset-token`: exchange the session for an asset token (the asset token flow).
    AssetToken,
    /// `send SOBJECT --external-id FIELD` / `send --event EVENT__e`: queue records.
    Send,
    /// `outbox flush|status|retry-dead`.
    Outbox,
    /// `seal` / `unseal`: move the stored pairing to sealed, or back to plain.
    Seal,
    Unseal,
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
    /// `--issuer URL`: an RFC 8628 provider's endpoints from its metadata (RFC 8414, OpenID).
    pub issuer: Option<String>,
    pub max_codes: Option<u32>,
    pub code_lifetime: Option<u64>,
    pub prompt_login: bool,
    pub force: bool,
    pub check: bool,
    pub timeout: Option<u64>,
    pub retry_for: Option<u64>,
    pub start_jitter: Option<u64>,
    pub wait_for_clock: Option<u64>,
    /// `call METHOD PATH`.
    pub call_method: Option<String>,
    pub call_path: Option<String>,
    /// `--data JSON`, `--data @FILE` or `--data @-`.
    pub data: Option<String>,
    /// `--header Name:value`, repeatable.
    pub headers: Vec<String>,
    pub api_version: Option<String>,
    pub session_lifetime: Option<u64>,
    /// `serve --socket PATH`, or `call --socket PATH` to get sessions from that broker.
    pub socket: Option<PathBuf>,
    pub socket_group: Option<String>,
    pub allow_uids: Vec<u32>,
    pub allow_gids: Vec<u32>,
    /// `--board FILE`: a board profile (see `board.rs`).
    pub board: Option<PathBuf>,
    /// `run`/`serve --keepalive DURATION` (`7d`, `12h`, `0` off).
    pub keepalive: Option<String>,
    /// `run --repair never|prompt|auto`.
    pub repair: Option<String>,
    /// `pair --flow device|jwt-bearer|client-credentials`.
    pub flow: Option<String>,
    /// `--key-file PEM`: the JWT bearer signing key.
    pub key_file: Option<PathBuf>,
    /// `--username USER`: the JWT bearer `sub`.
    pub username: Option<String>,
    /// `--audience URL`: the JWT bearer `aud`.
    pub audience: Option<String>,
    /// `asset-token --device-id ID [--asset-name N] [--serial SN] [--device-key PEM]`.
    pub device_id: Option<String>,
    pub asset_name: Option<String>,
    pub serial: Option<String>,
    pub device_key: Option<PathBuf>,
    /// `send SOBJECT`: the sObject's API name.
    pub send_object: Option<String>,
    /// `send --external-id FIELD`.
    pub external_id: Option<String>,
    /// `send --event EVENT__e`: a platform event instead of an upsert.
    pub event: Option<String>,
    /// `send --auto-id`: fill a missing external id with one unique to this device.
    pub auto_id: bool,
    /// `outbox ACTION`: `flush`, `status` or `retry-dead`.
    pub outbox_action: Option<String>,
    /// `--outbox DIR` [SFPAIR_OUTBOX].
    pub outbox: Option<PathBuf>,
    /// `--outbox-max-bytes N` [SFPAIR_OUTBOX_MAX_BYTES], as given (`16M` allowed).
    pub outbox_max_bytes: Option<String>,
    /// `--api-reserve PERCENT` [SFPAIR_API_RESERVE].
    pub api_reserve: Option<String>,
    /// `--seal none|systemd-creds|tpm2|pkcs11:URI`, `--tpm TCTI`, `--pkcs11-module PATH`,
    /// `--pkcs11-pin-file PATH` (checked by `seal::Settings`).
    pub seal: Option<String>,
    pub tpm: Option<String>,
    pub pkcs11_module: Option<PathBuf>,
    pub pkcs11_pin_file: Option<PathBuf>,
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
            Long("issuer") => a.issuer = Some(text(parser.value().map_err(err)?, "--issuer")?),
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
            Long("timeout") => a.timeout = Some(number(parser.value().map_err(err)?, "--timeout")?),
            Long("retry-for") => {
                a.retry_for = Some(number(parser.value().map_err(err)?, "--retry-for")?)
            }
            Long("start-jitter") => {
                a.start_jitter = Some(number(parser.value().map_err(err)?, "--start-jitter")?)
            }
            Long("wait-for-clock") => {
                a.wait_for_clock = Some(number(parser.value().map_err(err)?, "--wait-for-clock")?)
            }
            Long("check") => a.check = true,
            Long("data") => a.data = Some(text(parser.value().map_err(err)?, "--data")?),
            Long("header") => a
                .headers
                .push(text(parser.value().map_err(err)?, "--header")?),
            Long("api-version") => {
                a.api_version = Some(text(parser.value().map_err(err)?, "--api-version")?)
            }
            Long("session-lifetime") => {
                a.session_lifetime =
                    Some(number(parser.value().map_err(err)?, "--session-lifetime")?)
            }
            Long("socket") => a.socket = Some(parser.value().map_err(err)?.into()),
            Long("socket-group") => {
                a.socket_group = Some(text(parser.value().map_err(err)?, "--socket-group")?)
            }
            Long("allow-uid") => a
                .allow_uids
                .push(number(parser.value().map_err(err)?, "--allow-uid")?),
            Long("allow-gid") => a
                .allow_gids
                .push(number(parser.value().map_err(err)?, "--allow-gid")?),
            Long("board") => a.board = Some(parser.value().map_err(err)?.into()),
            Long("keepalive") => {
                a.keepalive = Some(text(parser.value().map_err(err)?, "--keepalive")?)
            }
            Long("repair") => a.repair = Some(text(parser.value().map_err(err)?, "--repair")?),
            Long("flow") => a.flow = Some(text(parser.value().map_err(err)?, "--flow")?),
            Long("key-file") => a.key_file = Some(parser.value().map_err(err)?.into()),
            Long("username") => {
                a.username = Some(text(parser.value().map_err(err)?, "--username")?)
            }
            Long("audience") => {
                a.audience = Some(text(parser.value().map_err(err)?, "--audience")?)
            }
            Long("device-id") => {
                a.device_id = Some(text(parser.value().map_err(err)?, "--device-id")?)
            }
            Long("asset-name") => {
                a.asset_name = Some(text(parser.value().map_err(err)?, "--asset-name")?)
            }
            Long("serial") => a.serial = Some(text(parser.value().map_err(err)?, "--serial")?),
            Long("device-key") => a.device_key = Some(parser.value().map_err(err)?.into()),
            Long("external-id") => {
                a.external_id = Some(text(parser.value().map_err(err)?, "--external-id")?)
            }
            Long("event") => a.event = Some(text(parser.value().map_err(err)?, "--event")?),
            Long("auto-id") => a.auto_id = true,
            Long("outbox") => a.outbox = Some(parser.value().map_err(err)?.into()),
            Long("outbox-max-bytes") => {
                a.outbox_max_bytes = Some(text(parser.value().map_err(err)?, "--outbox-max-bytes")?)
            }
            Long("api-reserve") => {
                a.api_reserve = Some(text(parser.value().map_err(err)?, "--api-reserve")?)
            }
            Long("seal") => a.seal = Some(text(parser.value().map_err(err)?, "--seal")?),
            Long("tpm") => a.tpm = Some(text(parser.value().map_err(err)?, "--tpm")?),
            Long("pkcs11-module") => a.pkcs11_module = Some(parser.value().map_err(err)?.into()),
            Long("pkcs11-pin-file") => {
                a.pkcs11_pin_file = Some(parser.value().map_err(err)?.into())
            }
            Long("pkcs11-pin") => {
                return Err(usage(
                    "--pkcs11-pin is not accepted: arguments are visible to every user. Put the \
                     PIN in a file (--pkcs11-pin-file) or in the service's pkcs11-pin credential",
                ));
            }
            Value(v) if a.command.is_none() => {
                a.command = Some(match text(v, "command")?.as_str() {
                    "pair" => Command::Pair,
                    "token" => Command::Token,
                    "status" => Command::Status,
                    "forget" => Command::Forget,
                    "call" => Command::Call,
                    "serve" => Command::Serve,
                    "run" => Command::Run,
                    "doctor" => Command::Doctor,
                    "asset-token" => Command::AssetToken,
                    "send" => Command::Send,
                    "outbox" => Command::Outbox,
                    "seal" => Command::Seal,
                    "unseal" => Command::Unseal,
                    "help" => Command::Help,
                    other => return Err(usage(format!("unknown command '{other}'"))),
                });
            }
            Value(v) if a.command == Some(Command::Call) && a.call_method.is_none() => {
                a.call_method = Some(text(v, "METHOD")?)
            }
            Value(v) if a.command == Some(Command::Call) && a.call_path.is_none() => {
                a.call_path = Some(text(v, "PATH")?)
            }
            Value(v) if a.command == Some(Command::Send) && a.send_object.is_none() => {
                a.send_object = Some(text(v, "SOBJECT")?)
            }
            Value(v) if a.command == Some(Command::Outbox) && a.outbox_action.is_none() => {
                a.outbox_action = Some(text(v, "ACTION")?)
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
  call     Make a REST call with the paired session (refreshed when it expires)
  serve    Hand out access tokens to local processes over a Unix socket
  run      The long-running agent: pair if needed, serve tokens, keep the pairing alive
  doctor   Check clock, network, TLS, app, store and displays; say what to fix
  asset-token  Exchange the session for an asset token about this device
  send     Queue records for delivery to the org, durably, exactly once (upserts)
  outbox   Deliver the queue now (flush), show it (status), requeue dead letters (retry-dead)
  seal     Seal the stored pairing to this board (--seal); unseal: store it plain again
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
                           Raw flash: mtd:/dev/mtdN, flash-image:PATH[:erase=N,size=N,write=N]
  --json                   Machine-readable output (JSON lines for pair)
  --timeout SECONDS        Limit for connecting and for each send or receive (default 30;
                           connecting: at most 10) [SFPAIR_TIMEOUT]
  --wait-for-clock SECONDS When the system clock is earlier than this build (no RTC, no NTP
                           yet), wait this long for time sync before failing (default 60)
                           [SFPAIR_WAIT_FOR_CLOCK]
  --board FILE             Board profile (boards/*.toml): target, display, store, login URL;
                           flags and SFPAIR_* variables beat it [SFPAIR_BOARD]
  --seal SEALER            Seal new pairings to this board [SFPAIR_SEAL]: none, systemd-creds,
                           tpm2 or pkcs11:URI (default: like the pairing it replaces; a sealed
                           store opens without it). See `sfpair seal --help`
  -h, --help               Help;  -V, --version  Version

Exit codes: 0 ok, 1 unexpected server reply, 2 usage or configuration error, 3 denied,
4 expired after the last code, 5 not paired, 6 re-pair needed, 7 network or TLS failure,
8 storage failure, 9 HTTP error status from a REST call, 10 output could not be written.
Sessions: --session-lifetime SECONDS [SFPAIR_SESSION_LIFETIME] refreshes a session this old
before use; without it a session is used until the server answers 401 INVALID_SESSION_ID.
Logs go to standard error; set RUST_LOG=info or debug for more (tokens are never logged).
";

pub const HELP_PAIR: &str = "\
Usage: sfpair pair --client-id KEY [--login-url URL] [OPTIONS]
       sfpair pair --flow jwt-bearer --key-file PEM --username USER [--audience URL]
       sfpair pair --flow client-credentials --client-secret-file FILE --login-url MYDOMAIN

Requests a device code, shows the user code, the URL and a QR code, and polls until a person
approves on https://<login host>/setup/connect. The refresh token is then stored; nothing is
stored on denial, expiry or error. If a pairing is already stored, exits 0 without pairing
unless --force (the old pairing is replaced only when the new one is stored).

Options:
  --display KIND           console (code, URL and QR; default) or text (plain ASCII, for
                           serial consoles); repeatable
                           Small displays: ssd1306:/dev/i2c-N[@0x3c][:128x32],
                           sh1106:/dev/i2c-N[@0x3c], sh1106-no-offset:/dev/i2c-N[@0x3c],
                           fb:/dev/fbN, pbm:PATH[:WxH] or png:PATH[:WxH] (frame files,
                           default 128x64)
  --json                   JSON lines on standard output instead (see docs/json-events.md)
  --max-codes N            Fresh codes to show after expiry before giving up (default 3)
  --code-lifetime SECONDS  Code lifetime when the server sends none (default 600)
  --prompt-login           Add prompt=login to the QR URL, so the phone's existing session
                           does not pick the org
  --force                  Pair again even when a pairing is stored
  --retry-for SECONDS      Keep retrying to reach the server for a code this long before
                           exit 7 (default 300) [SFPAIR_RETRY_FOR]
  --start-jitter SECONDS   Wait a random time up to this before the first request, so a fleet
                           that boots together does not hit the org at once (default 0; the
                           board units use 30) [SFPAIR_START_JITTER]
  --dialect rfc8628 --device-url URL --token-url URL [--revoke-url URL]
                           Standard RFC 8628 provider instead of Salesforce
  --dialect rfc8628 --issuer URL
                           The same, with the endpoints read once from the provider's metadata
                           (RFC 8414 or OpenID discovery) and kept in the pairing

Without a person (docs/headless.md) [SFPAIR_FLOW]:
  --flow jwt-bearer        A signed assertion; the admin pre-approved the user for the app
    --key-file PEM         RSA private key (PKCS#8 or PKCS#1, mode 0600) [SFPAIR_KEY_FILE],
                           or pkcs11:URI: the key stays in the token, which signs
    --username USER        The Salesforce user to act as [SFPAIR_USERNAME]
    --audience URL         aud (default: the login or test host) [SFPAIR_AUDIENCE]
  --flow client-credentials  The app's key and secret for its run-as user; My Domain only
These keep no refresh token: each new session runs the grant again.
Plus the common options in `sfpair --help`.
";

pub const HELP_ASSET_TOKEN: &str = "\
Usage: sfpair asset-token --device-id ID [--asset-name NAME] [--serial SN] [--device-key PEM]
                          [--json]

Exchanges the current session (of any flow) and an actor token about this device for an asset
token (the asset token flow, docs/headless.md), and prints it on standard output (--json: the
whole reply). The actor token carries the device id, the asset's name and serial number and,
with --device-key (RSA, mode 0600), the key's public half; it is then signed with that key. The
asset token is short-lived and is not stored.
";

pub const HELP_SEND: &str = "\
Usage: sfpair send SOBJECT --external-id FIELD [--auto-id] [--data JSON|@FILE|@-]
       sfpair send --event EVENT__e [--data JSON|@FILE|@-]

Appends records to the outbox and exits 0 once they are on stable storage; `sfpair run` (or
`sfpair outbox flush`) delivers them as sObject Collections upserts by FIELD, so a record sent
again updates the same row: exactly once. The data is one JSON object, an array of objects, or
JSON lines (default: standard input). Each record needs FIELD as a string; --auto-id fills a
missing one with an id unique to this device. A bad record refuses them all (exit 2, which and
why); a full outbox refuses with exit 8 and keeps what it had. --event publishes platform
events (insert only: delivered at least once, a lost reply can publish one twice).

Options:
  --outbox DIR             The outbox [SFPAIR_OUTBOX] (default: outbox/ beside the file store)
  --outbox-max-bytes N     Most bytes queued, e.g. 16M (default 16M) [SFPAIR_OUTBOX_MAX_BYTES]
  --socket PATH            Hand the records to `sfpair run` at this socket instead (no access
                           to the outbox's files needed)
  --json                   Print {\"queued\": N, \"first_seq\": S, \"outbox_queued\": M}
";

pub const HELP_OUTBOX: &str = "\
Usage: sfpair outbox flush [--api-reserve PERCENT] [--api-version 62.0]
       sfpair outbox status [--json]
       sfpair outbox retry-dead

flush       Delivers every queued record now, in batches of up to 200, and exits 0 when the
            outbox is empty; 7 when the network is down or the org's API limit is reached
            (nothing is lost: flush again later); 6 when the pairing must be renewed.
            Records the org refuses for good (a field it lacks, a value too long) go to the
            dead letters with the server's error; the rest are delivered.
status      Queued records and bytes, the oldest one's age, delivered and dead counts, and
            the dead letters with their errors (--json: one JSON object).
retry-dead  Puts the dead letters back in the queue, once the org is fixed.

Options:
  --outbox DIR             The outbox [SFPAIR_OUTBOX] (default: outbox/ beside the file store)
  --api-reserve PERCENT    Pause delivery once the org has used this much of its daily API
                           requests (Sforce-Limit-Info; default 90) [SFPAIR_API_RESERVE]
  --api-version V          API version of the requests (default 62.0) [SFPAIR_API_VERSION]
";

/// A build without sealing says so instead (its bytes are a budget: BENCHMARKS.md, "Sealing").
#[cfg(not(feature = "seal"))]
pub const HELP_SEAL: &str =
    "sfpair seal and unseal: this sfpair is built without sealing (the `seal` feature)";

#[cfg(feature = "seal")]
pub const HELP_SEAL: &str = "\
Usage: sfpair seal --seal systemd-creds|tpm2|pkcs11:URI
       sfpair unseal

seal encrypts the stored pairing with a new data key that the sealer keeps bound to this board
(a copied store is worth nothing elsewhere); unseal stores it plain again. Either way the
pairing is kept: one atomic replace, safe across a power cut. A sealed store opens with the way
to its sealer alone; --seal only says what new pairings are sealed with. See docs/sealing.md.

Options:
  --seal SEALER            none, systemd-creds (systemd-creds encrypt --with-key=auto), tpm2
                           (tpm2-tools), or pkcs11:URI (RFC 7512: the key that wraps the data
                           key) [SFPAIR_SEAL]
  --tpm TCTI               The TPM (default /dev/tpmrm0; e.g. swtpm:host=127.0.0.1,port=2321)
                           [SFPAIR_TPM]
  --pkcs11-module PATH     The PKCS#11 module, when the URI has no module-path
                           [SFPAIR_PKCS11_MODULE]
  --pkcs11-pin-file PATH   The token's user PIN (mode 0600; else the pkcs11-pin credential)
                           [SFPAIR_PKCS11_PIN_FILE]
Exit code 6 when a stored seal cannot be opened here (another board, a cleared TPM, a
missing token): the sealed pairing is kept as it is.
";

pub const HELP_TOKEN: &str = "\
Usage: sfpair token [--json]

Exchanges the stored refresh token for a fresh access token and prints it on standard output
(with --json: {\"access_token\": ..., \"instance_url\": ...}). A rotated refresh token is stored
before the access token is printed. Exit code 6 when the server rejects the refresh token.
";

pub const HELP_STATUS: &str = "\
Usage: sfpair status [--check] [--json] [--socket PATH]

Shows where the pairing is stored, the org and instance, the client id and when it was paired;
never a token. --check also gets an access token and the user's identity, to prove the pairing
still works. Exit code 5 when not paired. With --socket, asks the running agent (`sfpair run`)
for its health instead: the state, the last refresh, the next keepalive, and why the pairing
died when it did (--json: the answer as is).
";

pub const HELP_FORGET: &str = "\
Usage: sfpair forget

Revokes the stored refresh token at the server (which also ends its access tokens), then wipes
the store. The store is wiped even when the server cannot be reached; then the exit code is 7
and the server-side token may stay valid until it expires or an admin revokes it.
";

pub const HELP_CALL: &str = "\
Usage: sfpair call METHOD PATH [--data JSON | --data @FILE | --data @-] [--header Name:value]...
                   [--api-version 62.0] [--socket PATH]

Sends METHOD (GET, POST, PATCH, PUT, DELETE) to PATH on the paired instance with the session's
access token, and streams the reply body to standard output, whatever its size. On 401
INVALID_SESSION_ID the session is refreshed once and the request sent once more; nothing else
is retried. PATH is relative to the instance URL (/services/data/v62.0/limits). With
--api-version [SFPAIR_API_VERSION], vXX.X in PATH is filled in, and a PATH that does not start
with /services/ gets /services/data/vNN.N/ in front (limits, sobjects/Account/).

Options:
  --data JSON | @FILE | @-  Request body (a file or standard input is read whole, at most
                           16 MiB, so it can be sent again after a refresh); sent as
                           application/json unless --header Content-Type:... says otherwise
  --header Name:value      Extra request header, repeatable (not Authorization)
  --socket PATH            Get sessions from `sfpair serve --socket PATH` instead of the store

Exit code: 0 for 2xx; 9 for another status (403 REQUEST_LIMIT_EXCEEDED and 5xx with the
server's Retry-After); 6 when even a refreshed session gets 401 or the refresh token is
rejected; 7 network. The error goes to standard error, the body still to standard output.
";

pub const HELP_RUN: &str = "\
Usage: sfpair run --socket PATH [--keepalive 7d] [--repair never|prompt|auto] [OPTIONS]

The one process a board starts. If nothing is paired, pairs (as `sfpair pair`, on the
configured displays); then serves the token broker on --socket (everything `sfpair serve`
does, plus {\"get\":\"health\"} and {\"do\":\"pair\"}), and keeps the pairing alive:
  --keepalive DURATION     Refresh at least this often even when nobody asks for a token,
                           spread by +-10% (seconds, or 90s, 15m, 12h, 7d; 0: off; default
                           7d) [SFPAIR_KEEPALIVE]. Choose it below the app's refresh token
                           policy (\"expire if not used for N days\").
  --repair MODE            When the pairing dies: never (say so and wait), prompt (pair
                           again when a person asks: SIGUSR1 or {\"do\":\"pair\"}; default),
                           auto (pair again at once, for kiosks) [SFPAIR_REPAIR]
With NOTIFY_SOCKET set (systemd Type=notify) it sends READY=1 once the broker serves,
STATUS= lines, and WATCHDOG=1 at half of WATCHDOG_USEC. SIGTERM or SIGINT stops it.
Plus the options of `sfpair pair --help` and `sfpair serve --help`.
";

pub const HELP_DOCTOR: &str = "\
Usage: sfpair doctor [--json]

Checks, in order: the clock (against this build, and NTP sync), DNS for the login host, a TCP
connection, the proxy settings, TLS (the certificate chain and who issued it, so a proxy that
inspects TLS is named), the app as far as the server tells without a person, the store, the
configured displays, and a refresh with the stored pairing. Each check says ok, warning or
failed, and what to do. Nothing it prints is secret. Exit code 0 when nothing failed, else 1.
--json prints one JSON object with a `checks` array instead.
";

pub const HELP_SERVE: &str = "\
Usage: sfpair serve --socket PATH [--socket-group GROUP] [--allow-uid UID]... [--allow-gid GID]...

Holds the refresh token and answers local requests for an access token over a Unix socket,
one JSON line each way (see docs/broker.md): {\"get\":\"access_token\"} or
{\"get\":\"instance_url\"}. The socket is created 0600 (0660 with --socket-group). Only root,
this user, the --allow-uid users and the --allow-gid (effective) groups, and the socket group
are answered; others get {\"error\":\"forbidden\"} without their request being read. A stale
socket file is replaced; SIGTERM or SIGINT stops the broker and removes the socket.
`serve` is `sfpair run` without pairing: it also keeps the pairing alive (--keepalive) and
answers {\"get\":\"health\"}.
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
    fn call_takes_a_method_a_path_and_repeatable_headers() {
        let a = p(&[
            "call",
            "POST",
            "sobjects/Account/",
            "--data",
            "{\"Name\":\"x\"}",
            "--header",
            "A: 1",
            "--header",
            "B: 2",
            "--api-version",
            "62.0",
        ])
        .unwrap();
        assert_eq!(a.command, Some(Command::Call));
        assert_eq!(a.call_method.as_deref(), Some("POST"));
        assert_eq!(a.call_path.as_deref(), Some("sobjects/Account/"));
        assert_eq!(a.headers, ["A: 1", "B: 2"]);
        assert_eq!(p(&["call", "GET", "/a", "/b"]).unwrap_err().exit_code(), 2);
        let a = p(&[
            "serve",
            "--socket",
            "/run/s",
            "--allow-uid",
            "7",
            "--allow-uid",
            "8",
        ])
        .unwrap();
        assert_eq!(a.allow_uids, [7, 8]);
        assert!(p(&["serve", "--allow-gid", "wheel"]).is_err());
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
