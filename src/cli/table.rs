//! The command line as data: every command, every option, which commands take which option, the
//! environment variable behind it, and the help text. The one place the options live: the
//! parser (`cli.rs`), the settings (`config/`), `--help`, the man pages and the shell
//! completions all read these tables, so none of them can drift from another.
//!
//! Data only: no parsing, no I/O.

use CommandName::*;

/// A command's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CommandName {
    Pair,
    Token,
    Status,
    Forget,
    Call,
    Serve,
    Run,
    Doctor,
    AssetToken,
    Send,
    Outbox,
    Listen,
    Desired,
    Seal,
    Unseal,
    Help,
    Version,
}

/// One option. The names say what it sets; [`OptionSpec`] says how it is written. The order is
/// that of [`OPTIONS`], whose entry `n` is the option `n` (tested).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Opt {
    LoginUrl,
    ClientId,
    ClientSecretFile,
    CaFile,
    Store,
    Board,
    Timeout,
    WaitForClock,
    SessionLifetime,
    Json,
    Display,
    Force,
    MaxCodes,
    CodeLifetime,
    PromptLogin,
    RetryFor,
    StartJitter,
    Dialect,
    DeviceUrl,
    TokenUrl,
    RevokeUrl,
    Issuer,
    Scope,
    Flow,
    KeyFile,
    Username,
    Audience,
    Check,
    Socket,
    SocketGroup,
    AllowUid,
    AllowGid,
    Keepalive,
    Repair,
    Data,
    Header,
    ApiVersion,
    DeviceId,
    AssetName,
    Serial,
    DeviceKey,
    ExternalId,
    Event,
    AutoId,
    Outbox,
    OutboxMaxBytes,
    ApiReserve,
    Listen,
    Match,
    Exec,
    ExecTimeout,
    Replay,
    Results,
    ExpiresField,
    ListenDuty,
    Inbox,
    InboxMaxBytes,
    Desired,
    DesiredFile,
    DesiredExec,
    DesiredFields,
    DesiredEvery,
    Seal,
    Tpm,
    Pkcs11Module,
    Pkcs11PinFile,
}

/// The last option: the table has one entry per option up to it (tested).
pub const LAST_OPTION: Opt = Opt::Pkcs11PinFile;

/// What a shell may complete an option's value with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Complete {
    /// A switch: no value.
    Nothing,
    /// Free text (a URL, a name, a number).
    Text,
    /// A file.
    File,
    /// A directory.
    Dir,
    /// One of these words.
    Words(&'static [&'static str]),
}

/// How an option is written and what it does.
#[derive(Clone, Copy, Debug)]
pub struct OptionSpec {
    pub opt: Opt,
    /// The long name without dashes: `login-url`.
    pub long: &'static str,
    /// The value's name in help (`URL`); empty for a switch.
    pub value: &'static str,
    pub complete: Complete,
    /// The environment variable that gives it when the flag does not (board profiles use the
    /// same names).
    pub env: Option<&'static str>,
    /// May be given more than once, each value kept.
    pub repeatable: bool,
    /// Takes the rest of the command line as its value's arguments (`--exec PROGRAM ARG…`),
    /// so it must come last.
    pub rest: bool,
    /// The commands that take it.
    pub commands: &'static [CommandName],
    /// One or more lines; the first is the summary.
    pub help: &'static str,
}

impl OptionSpec {
    /// Whether `command` takes this option.
    pub fn applies_to(&self, command: CommandName) -> bool {
        self.commands.contains(&command)
    }

    /// Whether most commands take it (shown with the common options).
    pub fn is_common(&self) -> bool {
        self.commands.len() >= ORG.len()
    }
}

/// How a command is written and what it does.
#[derive(Clone, Copy, Debug)]
pub struct CommandSpec {
    pub name: CommandName,
    /// As typed: `asset-token`.
    pub word: &'static str,
    /// One line for the list of commands.
    pub summary: &'static str,
    /// The usage lines, after `sfpair `.
    pub usage: &'static [&'static str],
    /// The positional arguments, in order (all optional to the parser; `config` says which
    /// are required).
    pub positionals: &'static [&'static str],
    /// What it does, in paragraphs.
    pub about: &'static str,
}

/// The commands that talk to the org.
const ORG: &[CommandName] = &[
    Pair, Token, Status, Forget, Call, Serve, Run, Doctor, AssetToken, Outbox, Listen, Desired,
];
/// Every command that runs (not `help` or `version`).
const ALL: &[CommandName] = &[
    Pair, Token, Status, Forget, Call, Serve, Run, Doctor, AssetToken, Send, Outbox, Listen,
    Desired, Seal, Unseal,
];
/// The commands that pair (`run` pairs when nothing is paired).
const PAIRING: &[CommandName] = &[Pair, Run];
/// The commands that run the device flow's requests, or check them.
const DEVICE_FLOW: &[CommandName] = &[Pair, Run, Doctor];
/// The commands that serve the broker.
const SERVING: &[CommandName] = &[Serve, Run];
/// The commands that use an outbox.
const OUTBOX: &[CommandName] = &[Send, Outbox, Serve, Run, Listen];
/// The commands that listen for the org's commands.
const LISTENING: &[CommandName] = &[Listen, Run];
/// The commands that follow the device's record.
const DESIRED: &[CommandName] = &[Desired, Run];
/// `--desired` itself: doctor checks the record's change event channel too.
const DESIRED_CHECKED: &[CommandName] = &[Desired, Run, Doctor];
/// The commands that open the store, so may meet a sealed pairing, or sign with a key in a
/// token: they need the way to the sealer (`--tpm`, `--pkcs11-*`). Not `send`, which only
/// queues.
const SEALED: &[CommandName] = &[
    Pair, Token, Status, Forget, Call, Serve, Run, Doctor, AssetToken, Outbox, Listen, Desired,
    Seal, Unseal,
];
/// The commands that store a new pairing (or seal the stored one): `--seal` says how.
const SEALING: &[CommandName] = &[Pair, Run, Seal];

/// Every command, in the order `sfpair --help` lists them.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: Pair,
        word: "pair",
        summary: "Show a code and a QR, wait for a person to approve, store the pairing",
        usage: &[
            "pair --client-id KEY [--login-url URL] [OPTIONS]",
            "pair --flow jwt-bearer --key-file PEM --username USER [--audience URL]",
            "pair --flow client-credentials --client-secret-file FILE --login-url MYDOMAIN",
        ],
        positionals: &[],
        about: "Requests a device code, shows the user code, the URL and a QR code, and polls \
            until a person approves on https://<login host>/setup/connect. The refresh token is \
            then stored; nothing is stored on denial, expiry or error. If a pairing is already \
            stored, exits 0 without pairing unless --force (the old pairing is replaced only \
            when the new one is stored).\n\
            Without a person (--flow jwt-bearer or client-credentials, docs/headless.md), no \
            refresh token is kept: each new session runs the grant again.",
    },
    CommandSpec {
        name: Token,
        word: "token",
        summary: "Print a fresh access token (--json adds instance_url)",
        usage: &["token [--json]"],
        positionals: &[],
        about: "Exchanges the stored refresh token for a fresh access token and prints it on \
            standard output. A rotated refresh token is stored before the access token is \
            printed. Exit code 6 when the server rejects the refresh token.",
    },
    CommandSpec {
        name: Status,
        word: "status",
        summary: "Show the stored pairing, never a token (--check also tests it)",
        usage: &["status [--check] [--json] [--socket PATH]"],
        positionals: &[],
        about: "Shows where the pairing is stored, the org and instance, the client id and when \
            it was paired; never a token. Exit code 5 when not paired. With --socket, asks the \
            running agent (`sfpair run`) for its health instead: the state, the last refresh, \
            the next keepalive, and why the pairing died when it did; the exit code follows the \
            state: 0 paired, 5 not paired (or only a code up), 6 re-pair needed.",
    },
    CommandSpec {
        name: Forget,
        word: "forget",
        summary: "Revoke the refresh token at the server, then wipe the store",
        usage: &["forget"],
        positionals: &[],
        about: "Revokes the stored refresh token at the server (which also ends its access \
            tokens), then wipes the store. The store is wiped even when the server cannot be \
            reached; then the exit code is 7 and the server-side token may stay valid until it \
            expires or an admin revokes it.",
    },
    CommandSpec {
        name: Call,
        word: "call",
        summary: "Make a REST call with the paired session (refreshed when it expires)",
        usage: &["call METHOD PATH [--data JSON|@FILE|@-] [--header N:V]... [--socket PATH]"],
        positionals: &["METHOD", "PATH"],
        about: "Sends METHOD (GET, POST, PATCH, PUT, DELETE) to PATH on the paired instance with \
            the session's access token, and streams the reply body to standard output, whatever \
            its size. On 401 INVALID_SESSION_ID the session is refreshed once and the request \
            sent once more; nothing else is retried. PATH is relative to the instance URL \
            (/services/data/v62.0/limits). A PATH that does not start with /services/ goes to \
            the data API of --api-version (default 62.0): limits is \
            /services/data/v62.0/limits, sobjects/Account/ is \
            /services/data/v62.0/sobjects/Account/; vXX.X in PATH is that version too.\n\
            Exit code: 0 for 2xx; 9 for another status (403 REQUEST_LIMIT_EXCEEDED and 5xx with \
            the server's Retry-After); 6 when even a refreshed session gets 401 or the refresh \
            token is rejected; 7 network. The error goes to standard error, the body still to \
            standard output.",
    },
    CommandSpec {
        name: Serve,
        word: "serve",
        summary: "Hand out access tokens to local processes over a Unix socket",
        usage: &["serve --socket PATH [--socket-group GROUP] [--allow-uid UID]... [OPTIONS]"],
        positionals: &[],
        about: "Holds the refresh token and answers local requests for an access token over a \
            Unix socket, one JSON line each way (docs/broker.md): {\"get\":\"access_token\"} or \
            {\"get\":\"instance_url\"}. The socket is created 0600 (0660 with --socket-group), \
            in a directory no other user may write. Only root, this user, the --allow-uid users \
            and the --allow-gid (effective) groups, and the socket group are answered; others \
            get {\"error\":\"forbidden\"} without their request being read. A stale socket file \
            is replaced; SIGTERM or SIGINT stops the broker and removes the socket.\n\
            `serve` is `sfpair run` without pairing: it also keeps the pairing alive \
            (--keepalive) and answers {\"get\":\"health\"}.",
    },
    CommandSpec {
        name: Run,
        word: "run",
        summary: "The long-running agent: pair if needed, serve tokens, keep the pairing alive",
        usage: &["run --socket PATH [--keepalive 7d] [--repair never|prompt|auto] [OPTIONS]"],
        positionals: &[],
        about: "The one process a board starts. If nothing is paired, pairs (as `sfpair pair`, \
            on the configured displays); then serves the token broker on --socket (everything \
            `sfpair serve` does, plus {\"get\":\"health\"} and {\"do\":\"pair\"}), delivers the \
            outbox, and keeps the pairing alive.\n\
            With NOTIFY_SOCKET set (systemd Type=notify) it sends READY=1 once the broker \
            serves, STATUS= lines, and WATCHDOG=1 at half of WATCHDOG_USEC. SIGTERM or SIGINT \
            stops it.",
    },
    CommandSpec {
        name: Doctor,
        word: "doctor",
        summary: "Check clock, network, TLS, app, store and displays; say what to fix",
        usage: &["doctor [--json]"],
        positionals: &[],
        about: "Checks, in order: the clock (against this build, and NTP sync), DNS for the login \
            host, a TCP connection, the proxy settings, TLS (the certificate chain and who \
            issued it, so a proxy that inspects TLS is named), the app as far as the server \
            tells without a person, the store, the configured displays, and a refresh with the \
            stored pairing. Each check says ok, warning or failed, and what to do. Nothing it \
            prints is secret. Exit code 0 when nothing failed, else 1.",
    },
    CommandSpec {
        name: AssetToken,
        word: "asset-token",
        summary: "Exchange the session for an asset token about this device",
        usage: &["asset-token --device-id ID [--asset-name NAME] [--serial SN] [--device-key PEM]"],
        positionals: &[],
        about: "Exchanges the current session (of any flow) and an actor token about this device \
            for an asset token (the asset token flow, docs/headless.md), and prints it on \
            standard output (--json: the whole reply). The actor token carries the device id, \
            the asset's name and serial number and, with --device-key (RSA, mode 0600), the \
            key's public half; it is then signed with that key. The asset token is short-lived \
            and is not stored.",
    },
    CommandSpec {
        name: Send,
        word: "send",
        summary: "Queue records for delivery to the org, durably, exactly once (upserts)",
        usage: &[
            "send SOBJECT --external-id FIELD [--auto-id] [--data JSON|@FILE|@-]",
            "send --event EVENT__e [--data JSON|@FILE|@-]",
        ],
        positionals: &["SOBJECT"],
        about: "Appends records to the outbox and exits 0 once they are on stable storage; \
            `sfpair run` (or `sfpair outbox flush`) delivers them as sObject Collections upserts \
            by FIELD, so a record sent again updates the same row: exactly once. The data is \
            one JSON object, an array of objects, or JSON lines (default: standard input). Each \
            record needs FIELD as a string; --auto-id fills a missing one with an id unique to \
            this device. A bad record refuses them all (exit 2, which and why); a full outbox \
            refuses with exit 8 and keeps what it had. --event publishes platform events \
            (insert only: delivered at least once, a lost reply can publish one twice).",
    },
    CommandSpec {
        name: Outbox,
        word: "outbox",
        summary: "Deliver the queue now, show it, or requeue the dead letters",
        usage: &[
            "outbox flush [--api-reserve PERCENT] [--api-version 62.0]",
            "outbox status [--json]",
            "outbox retry-dead",
        ],
        positionals: &["ACTION"],
        about: "flush: delivers every queued record now, in batches of up to 200, and exits 0 \
            when the outbox is empty; 7 when the network is down or the org's API limit is \
            reached (nothing is lost: flush again later); 6 when the pairing must be renewed. \
            Records the org refuses for good (a field it lacks, a value too long) go to the \
            dead letters with the server's error; the rest are delivered.\n\
            status: queued records and bytes, the oldest one's age, delivered and dead counts, \
            and the dead letters with their errors.\n\
            retry-dead: puts the dead letters back in the queue, once the org is fixed.",
    },
    CommandSpec {
        name: Listen,
        word: "listen",
        summary: "Receive the org's commands (platform events) and run each once",
        usage: &[
            "listen CHANNEL... [--match FIELD=VALUE]... [--replay stored|new|all]",
            "listen CHANNEL... [--results SOBJECT] --exec PROGRAM [ARG...]",
        ],
        positionals: &["CHANNEL..."],
        about: "Subscribes to CHANNEL (a platform event's API name, Device_Command__e, or \
            /event/NAME__e, /data/NAMEChangeEvent) over the Streaming API and acts on each event \
            whose payload matches every --match, once: with --exec, runs PROGRAM (no shell) \
            with the payload on standard input and SFPAIR_CHANNEL, SFPAIR_EVENT_UUID, \
            SFPAIR_REPLAY_ID and SFPAIR_ATTEMPT set; without it, prints the event as one JSON \
            line (channel, replay_id, event_uuid, payload). Each event is stored in the inbox \
            before it counts as received, and runs to completion at most once across restarts, \
            reconnects and replays; a run cut by a crash runs again with the next attempt \
            number. With --results, each outcome is queued in the outbox (and delivered) as a \
            record upserted by Event_Uuid__c. Runs until SIGTERM or SIGINT (docs/listen.md).",
    },
    CommandSpec {
        name: Desired,
        word: "desired",
        summary: "Read the device's record in the org and apply it to a file, once per change",
        usage: &[
            "desired --desired SOBJECT/FIELD/VALUE --desired-file PATH [--desired-exec PROGRAM]",
        ],
        positionals: &[],
        about: "Reads the device's record by its external id (GET \
            /services/data/vXX.X/sobjects/SOBJECT/FIELD/VALUE), and when its content differs \
            from what PATH holds, replaces PATH atomically (mode 0640) and runs PROGRAM once, \
            with the new JSON on standard input and SFPAIR_PREVIOUS naming a file with the old. \
            A record that does not exist, a field the org lacks, or a network failure leaves PATH \
            as it is (exit 9, or 7). `sfpair run --desired ...` follows the record: at start, on \
            each change event for it, after each reconnect and every --desired-every \
            (docs/desired.md).",
    },
    CommandSpec {
        name: Seal,
        word: "seal",
        summary: "Seal the stored pairing to this board (--seal), keeping it",
        usage: &["seal --seal systemd-creds|tpm2|pkcs11:URI"],
        positionals: &[],
        about: "Encrypts the stored pairing under a new data key that the sealer keeps bound to \
            this board, so a copied store is worth nothing elsewhere: systemd-creds \
            (systemd-creds encrypt --with-key=auto), tpm2 (tpm2-tools), or pkcs11:URI (RFC 7512: \
            the key that wraps the data key). The pairing is kept: one atomic replace, safe \
            across a power cut. A sealed store opens with the way to its sealer alone (--tpm, \
            --pkcs11-module, --pkcs11-pin-file); --seal only says what new pairings are sealed \
            with. See docs/sealing.md.\n\
            Exit code 5 when nothing is paired; 6 when a stored seal cannot be opened here \
            (another board, a cleared TPM, a missing token): the sealed pairing is kept as it is.",
    },
    CommandSpec {
        name: Unseal,
        word: "unseal",
        summary: "Store the sealed pairing plain again, keeping it",
        usage: &["unseal"],
        positionals: &[],
        about: "Opens the sealed pairing with the sealer its record names and stores it plain \
            again, in one atomic replace, safe across a power cut. See docs/sealing.md.\n\
            Exit code 5 when nothing is paired; 6 when the seal cannot be opened here: the \
            sealed pairing is kept as it is.",
    },
    CommandSpec {
        name: Help,
        word: "help",
        summary: "Show this text; `sfpair <COMMAND> --help` shows a command's options",
        usage: &["help", "<COMMAND> --help"],
        positionals: &[],
        about: "",
    },
];

/// Every option, in the order help lists them (the common ones first).
pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        opt: Opt::LoginUrl,
        long: "login-url",
        value: "URL",
        complete: Complete::Text,
        env: Some("SFPAIR_LOGIN_URL"),
        repeatable: false,
        rest: false,
        commands: ORG,
        help: "Org login host (https://login.salesforce.com, https://test.salesforce.com or \
            https://MyDomain.my.salesforce.com)",
    },
    OptionSpec {
        opt: Opt::ClientId,
        long: "client-id",
        value: "KEY",
        complete: Complete::Text,
        env: Some("SFPAIR_CLIENT_ID"),
        repeatable: false,
        rest: false,
        commands: ORG,
        help: "Consumer key of your external client app (with \"Enable Device Flow\" on)",
    },
    OptionSpec {
        opt: Opt::ClientSecretFile,
        long: "client-secret-file",
        value: "FILE",
        complete: Complete::File,
        env: Some("SFPAIR_CLIENT_SECRET_FILE"),
        repeatable: false,
        rest: false,
        commands: ORG,
        help: "Consumer secret, only for apps that require it (or its value in \
            SFPAIR_CLIENT_SECRET; never an argument)",
    },
    OptionSpec {
        opt: Opt::CaFile,
        long: "ca-file",
        value: "FILE",
        complete: Complete::File,
        env: Some("SFPAIR_CA_FILE"),
        repeatable: false,
        rest: false,
        commands: ORG,
        help: "Trust these PEM certificates instead of the built-in Mozilla roots",
    },
    OptionSpec {
        opt: Opt::Store,
        long: "store",
        value: "SPEC",
        complete: Complete::Text,
        env: Some("SFPAIR_STORE"),
        repeatable: false,
        rest: false,
        commands: ALL,
        help: "Where the pairing lives: file:PATH (default $SFPAIR_STATE_DIR/token, \
            /var/lib/sfpair/token as root, else $XDG_STATE_HOME/sfpair/token)\n\
            Raw flash: mtd:/dev/mtdN, flash-image:PATH[:erase=N,size=N,write=N]",
    },
    OptionSpec {
        opt: Opt::Board,
        long: "board",
        value: "FILE",
        complete: Complete::File,
        env: Some("SFPAIR_BOARD"),
        repeatable: false,
        rest: false,
        commands: ALL,
        help: "Board profile (boards/*.toml): target, display, store, login URL; flags and \
            SFPAIR_* variables beat it",
    },
    OptionSpec {
        opt: Opt::Timeout,
        long: "timeout",
        value: "SECONDS",
        complete: Complete::Text,
        env: Some("SFPAIR_TIMEOUT"),
        repeatable: false,
        rest: false,
        commands: ORG,
        help: "Limit for connecting and for each send or receive, and for a delivery request \
            as a whole (default 30; connecting: at most 10)",
    },
    OptionSpec {
        opt: Opt::WaitForClock,
        long: "wait-for-clock",
        value: "SECONDS",
        complete: Complete::Text,
        env: Some("SFPAIR_WAIT_FOR_CLOCK"),
        repeatable: false,
        rest: false,
        commands: ORG,
        help: "When the system clock is earlier than this build (no RTC, no NTP yet), wait this \
            long for time sync before failing (default 60)",
    },
    OptionSpec {
        opt: Opt::SessionLifetime,
        long: "session-lifetime",
        value: "SECONDS",
        complete: Complete::Text,
        env: Some("SFPAIR_SESSION_LIFETIME"),
        repeatable: false,
        rest: false,
        commands: ORG,
        help: "Refresh a session this old before use (default: use it until the server answers \
            401 INVALID_SESSION_ID)",
    },
    OptionSpec {
        opt: Opt::Json,
        long: "json",
        value: "",
        complete: Complete::Nothing,
        env: None,
        repeatable: false,
        rest: false,
        commands: &[Pair, Token, Status, Run, Doctor, AssetToken, Send, Outbox],
        help: "Machine-readable output (JSON lines for pair and run, docs/json-events.md; one \
            JSON object for the others)",
    },
    OptionSpec {
        opt: Opt::Display,
        long: "display",
        value: "KIND",
        complete: Complete::Text,
        env: None,
        repeatable: true,
        rest: false,
        commands: DEVICE_FLOW,
        help: "console (code, URL and QR; default) or text (plain ASCII, for serial consoles); \
            repeatable\n\
            Small displays: ssd1306:/dev/i2c-N[@0x3c][:128x32], sh1106:/dev/i2c-N[@0x3c], \
            sh1106-no-offset:/dev/i2c-N[@0x3c], fb:/dev/fbN, pbm:PATH[:WxH] or png:PATH[:WxH] \
            (frame files, default 128x64)",
    },
    OptionSpec {
        opt: Opt::Force,
        long: "force",
        value: "",
        complete: Complete::Nothing,
        env: None,
        repeatable: false,
        rest: false,
        commands: &[Pair],
        help: "Pair again even when a pairing is stored",
    },
    OptionSpec {
        opt: Opt::MaxCodes,
        long: "max-codes",
        value: "N",
        complete: Complete::Text,
        env: None,
        repeatable: false,
        rest: false,
        commands: PAIRING,
        help: "Fresh codes to show after expiry before giving up (default 3)",
    },
    OptionSpec {
        opt: Opt::CodeLifetime,
        long: "code-lifetime",
        value: "SECONDS",
        complete: Complete::Text,
        env: None,
        repeatable: false,
        rest: false,
        commands: PAIRING,
        help: "Code lifetime when the server sends none (default 600)",
    },
    OptionSpec {
        opt: Opt::PromptLogin,
        long: "prompt-login",
        value: "",
        complete: Complete::Nothing,
        env: None,
        repeatable: false,
        rest: false,
        commands: PAIRING,
        help: "Add prompt=login to the QR URL, so the phone's existing session does not pick the \
            org",
    },
    OptionSpec {
        opt: Opt::RetryFor,
        long: "retry-for",
        value: "SECONDS",
        complete: Complete::Text,
        env: Some("SFPAIR_RETRY_FOR"),
        repeatable: false,
        rest: false,
        commands: PAIRING,
        help: "Keep retrying to reach the server for a code this long before exit 7 (default \
            300)",
    },
    OptionSpec {
        opt: Opt::StartJitter,
        long: "start-jitter",
        value: "SECONDS",
        complete: Complete::Text,
        env: Some("SFPAIR_START_JITTER"),
        repeatable: false,
        rest: false,
        commands: PAIRING,
        help: "Wait a random time up to this before the first request, so a fleet that boots \
            together does not hit the org at once (default 0; the board units use 30)",
    },
    OptionSpec {
        opt: Opt::Dialect,
        long: "dialect",
        value: "NAME",
        complete: Complete::Words(&["salesforce", "rfc8628"]),
        env: None,
        repeatable: false,
        rest: false,
        commands: DEVICE_FLOW,
        help: "salesforce (default) or rfc8628: a standard RFC 8628 provider, with --issuer, or \
            --device-url and --token-url",
    },
    OptionSpec {
        opt: Opt::DeviceUrl,
        long: "device-url",
        value: "URL",
        complete: Complete::Text,
        env: None,
        repeatable: false,
        rest: false,
        commands: DEVICE_FLOW,
        help: "RFC 8628: the device authorization endpoint",
    },
    OptionSpec {
        opt: Opt::TokenUrl,
        long: "token-url",
        value: "URL",
        complete: Complete::Text,
        env: None,
        repeatable: false,
        rest: false,
        commands: DEVICE_FLOW,
        help: "RFC 8628: the token endpoint",
    },
    OptionSpec {
        opt: Opt::RevokeUrl,
        long: "revoke-url",
        value: "URL",
        complete: Complete::Text,
        env: None,
        repeatable: false,
        rest: false,
        commands: DEVICE_FLOW,
        help: "RFC 8628: the revocation endpoint, if the provider has one",
    },
    OptionSpec {
        opt: Opt::Issuer,
        long: "issuer",
        value: "URL",
        complete: Complete::Text,
        env: Some("SFPAIR_ISSUER"),
        repeatable: false,
        rest: false,
        commands: DEVICE_FLOW,
        help: "RFC 8628: the endpoints read once from the provider's metadata (RFC 8414 or \
            OpenID discovery) and kept in the pairing",
    },
    OptionSpec {
        opt: Opt::Scope,
        long: "scope",
        value: "SCOPES",
        complete: Complete::Text,
        env: Some("SFPAIR_SCOPE"),
        repeatable: false,
        rest: false,
        commands: DEVICE_FLOW,
        help: "OAuth scopes (default: api refresh_token)",
    },
    OptionSpec {
        opt: Opt::Flow,
        long: "flow",
        value: "NAME",
        complete: Complete::Words(&["device", "jwt-bearer", "client-credentials"]),
        env: Some("SFPAIR_FLOW"),
        repeatable: false,
        rest: false,
        commands: PAIRING,
        help: "device (default, a person approves), jwt-bearer (a signed assertion; the admin \
            pre-approved the user for the app) or client-credentials (the app's key and secret \
            for its run-as user; My Domain only)",
    },
    OptionSpec {
        opt: Opt::KeyFile,
        long: "key-file",
        value: "PEM",
        complete: Complete::File,
        env: Some("SFPAIR_KEY_FILE"),
        repeatable: false,
        rest: false,
        commands: PAIRING,
        help: "jwt-bearer: the RSA private key (PKCS#8 or PKCS#1, mode 0600), or pkcs11:URI: a \
            key in a PKCS#11 token, which signs (the key never leaves it)",
    },
    OptionSpec {
        opt: Opt::Username,
        long: "username",
        value: "USER",
        complete: Complete::Text,
        env: Some("SFPAIR_USERNAME"),
        repeatable: false,
        rest: false,
        commands: PAIRING,
        help: "jwt-bearer: the Salesforce user to act as",
    },
    OptionSpec {
        opt: Opt::Audience,
        long: "audience",
        value: "URL",
        complete: Complete::Text,
        env: Some("SFPAIR_AUDIENCE"),
        repeatable: false,
        rest: false,
        commands: PAIRING,
        help: "jwt-bearer: aud (default: the login or test host)",
    },
    OptionSpec {
        opt: Opt::Check,
        long: "check",
        value: "",
        complete: Complete::Nothing,
        env: None,
        repeatable: false,
        rest: false,
        commands: &[Status],
        help: "Also get an access token and the user's identity, to prove the pairing works",
    },
    OptionSpec {
        opt: Opt::Socket,
        long: "socket",
        value: "PATH",
        complete: Complete::File,
        env: None,
        repeatable: false,
        rest: false,
        commands: &[Serve, Run, Status, Call, Send],
        help: "serve, run: the broker's Unix socket (required). status: ask the running agent \
            there for its health. call: get sessions from that broker instead of the store. \
            send: hand the records to `sfpair run` there",
    },
    OptionSpec {
        opt: Opt::SocketGroup,
        long: "socket-group",
        value: "GROUP",
        complete: Complete::Text,
        env: None,
        repeatable: false,
        rest: false,
        commands: SERVING,
        help: "The socket's group (a name or a gid): mode 0660, and the group may ask",
    },
    OptionSpec {
        opt: Opt::AllowUid,
        long: "allow-uid",
        value: "UID",
        complete: Complete::Text,
        env: None,
        repeatable: true,
        rest: false,
        commands: SERVING,
        help: "Another user who may ask for tokens; repeatable",
    },
    OptionSpec {
        opt: Opt::AllowGid,
        long: "allow-gid",
        value: "GID",
        complete: Complete::Text,
        env: None,
        repeatable: true,
        rest: false,
        commands: SERVING,
        help: "A group whose (effective) members may ask for tokens; repeatable",
    },
    OptionSpec {
        opt: Opt::Keepalive,
        long: "keepalive",
        value: "DURATION",
        complete: Complete::Text,
        env: Some("SFPAIR_KEEPALIVE"),
        repeatable: false,
        rest: false,
        commands: SERVING,
        help: "Refresh at least this often even when nobody asks for a token, spread by +-10% \
            (seconds, or 90s, 15m, 12h, 7d; 0: off; default 7d). Choose it below the app's \
            refresh token policy (\"expire if not used for N days\")",
    },
    OptionSpec {
        opt: Opt::Repair,
        long: "repair",
        value: "MODE",
        complete: Complete::Words(&["never", "prompt", "auto"]),
        env: Some("SFPAIR_REPAIR"),
        repeatable: false,
        rest: false,
        commands: &[Run],
        help: "When the pairing dies: never (say so and wait), prompt (pair again when a person \
            asks: SIGUSR1 or {\"do\":\"pair\"}; default), auto (pair again at once, for kiosks)",
    },
    OptionSpec {
        opt: Opt::Data,
        long: "data",
        value: "JSON|@FILE|@-",
        complete: Complete::Text,
        env: None,
        repeatable: false,
        rest: false,
        commands: &[Call, Send],
        help: "The body (call) or the records (send): JSON text, a file, or standard input. A \
            file or standard input is read whole for call (at most 16 MiB, so it can be sent \
            again after a refresh); send reads standard input by default",
    },
    OptionSpec {
        opt: Opt::Header,
        long: "header",
        value: "Name:value",
        complete: Complete::Text,
        env: None,
        repeatable: true,
        rest: false,
        commands: &[Call],
        help: "Extra request header, repeatable (not Authorization); a body goes as \
            application/json unless a Content-Type header says otherwise",
    },
    OptionSpec {
        opt: Opt::ApiVersion,
        long: "api-version",
        value: "V",
        complete: Complete::Text,
        env: Some("SFPAIR_API_VERSION"),
        repeatable: false,
        rest: false,
        commands: &[Call, Outbox, Serve, Run, Listen, Desired],
        help: "API version (default 62.0): a call's PATH outside /services/ goes to its data \
            API, and vXX.X in PATH is filled in; the outbox's, the listener's and the desired \
            state's requests use it",
    },
    OptionSpec {
        opt: Opt::DeviceId,
        long: "device-id",
        value: "ID",
        complete: Complete::Text,
        env: None,
        repeatable: false,
        rest: false,
        commands: &[AssetToken],
        help: "The device's own id (the actor token's did; required)",
    },
    OptionSpec {
        opt: Opt::AssetName,
        long: "asset-name",
        value: "NAME",
        complete: Complete::Text,
        env: None,
        repeatable: false,
        rest: false,
        commands: &[AssetToken],
        help: "The asset's name",
    },
    OptionSpec {
        opt: Opt::Serial,
        long: "serial",
        value: "SN",
        complete: Complete::Text,
        env: None,
        repeatable: false,
        rest: false,
        commands: &[AssetToken],
        help: "The asset's serial number",
    },
    OptionSpec {
        opt: Opt::DeviceKey,
        long: "device-key",
        value: "PEM",
        complete: Complete::File,
        env: None,
        repeatable: false,
        rest: false,
        commands: &[AssetToken],
        help: "Sign the actor token with this RSA key (mode 0600) and put its public half in it",
    },
    OptionSpec {
        opt: Opt::ExternalId,
        long: "external-id",
        value: "FIELD",
        complete: Complete::Text,
        env: None,
        repeatable: false,
        rest: false,
        commands: &[Send],
        help: "The external id field the records are upserted by",
    },
    OptionSpec {
        opt: Opt::Event,
        long: "event",
        value: "EVENT__e",
        complete: Complete::Text,
        env: None,
        repeatable: false,
        rest: false,
        commands: &[Send],
        help: "Publish the records as this platform event instead (at least once)",
    },
    OptionSpec {
        opt: Opt::AutoId,
        long: "auto-id",
        value: "",
        complete: Complete::Nothing,
        env: None,
        repeatable: false,
        rest: false,
        commands: &[Send],
        help: "Fill a missing external id with one unique to this device",
    },
    OptionSpec {
        opt: Opt::Outbox,
        long: "outbox",
        value: "DIR",
        complete: Complete::Dir,
        env: Some("SFPAIR_OUTBOX"),
        repeatable: false,
        rest: false,
        commands: OUTBOX,
        help: "The outbox (default: outbox/ beside the file store)",
    },
    OptionSpec {
        opt: Opt::OutboxMaxBytes,
        long: "outbox-max-bytes",
        value: "N",
        complete: Complete::Text,
        env: Some("SFPAIR_OUTBOX_MAX_BYTES"),
        repeatable: false,
        rest: false,
        commands: OUTBOX,
        help: "Most bytes queued: bytes, or a number with K, M or G (default 16M, at least 64K)",
    },
    OptionSpec {
        opt: Opt::ApiReserve,
        long: "api-reserve",
        value: "PERCENT",
        complete: Complete::Text,
        env: Some("SFPAIR_API_RESERVE"),
        repeatable: false,
        rest: false,
        commands: &[Outbox, Serve, Run],
        help: "Pause delivery once the org has used this much of its daily API requests \
            (Sforce-Limit-Info; default 90)",
    },
    OptionSpec {
        opt: Opt::Listen,
        long: "listen",
        value: "CHANNEL",
        complete: Complete::Text,
        env: Some("SFPAIR_LISTEN"),
        repeatable: true,
        rest: false,
        commands: &[Run, Doctor],
        help: "Receive the org's commands on this channel (Device_Command__e, /event/NAME__e), as \
            `sfpair listen` does (doctor subscribes to it once); repeatable (the variable: \
            channels separated by spaces)",
    },
    OptionSpec {
        opt: Opt::Match,
        long: "match",
        value: "FIELD=VALUE",
        complete: Complete::Text,
        env: Some("SFPAIR_MATCH"),
        repeatable: true,
        rest: false,
        commands: LISTENING,
        help: "Act only on events whose payload FIELD equals VALUE (this device's id); others \
            still move the stored position; repeatable, all must hold",
    },
    OptionSpec {
        opt: Opt::Exec,
        long: "exec",
        value: "PROGRAM [ARG...]",
        complete: Complete::File,
        env: Some("SFPAIR_EXEC"),
        repeatable: false,
        rest: true,
        commands: LISTENING,
        help: "Run PROGRAM for each event (no shell; the rest of the command line is its \
            arguments, so --exec comes last; the variable: the program alone)",
    },
    OptionSpec {
        opt: Opt::ExecTimeout,
        long: "exec-timeout",
        value: "SECONDS",
        complete: Complete::Text,
        env: Some("SFPAIR_EXEC_TIMEOUT"),
        repeatable: false,
        rest: false,
        commands: LISTENING,
        help: "Kill a program still running after this long: timed_out (default 60)",
    },
    OptionSpec {
        opt: Opt::Replay,
        long: "replay",
        value: "MODE",
        complete: Complete::Words(&["stored", "new", "all"]),
        env: Some("SFPAIR_REPLAY"),
        repeatable: false,
        rest: false,
        commands: LISTENING,
        help: "Where a channel with no stored position starts: stored (everything the org still \
            keeps; default), new (only what is published from now on), all (everything kept, at \
            every subscription; nothing runs twice)",
    },
    OptionSpec {
        opt: Opt::Results,
        long: "results",
        value: "SOBJECT",
        complete: Complete::Text,
        env: Some("SFPAIR_RESULTS"),
        repeatable: false,
        rest: false,
        commands: LISTENING,
        help: "Queue each outcome as a record of SOBJECT upserted by Event_Uuid__c, with \
            Status__c, Exit_Code__c, Output__c and Finished_At__c",
    },
    OptionSpec {
        opt: Opt::ExpiresField,
        long: "expires-field",
        value: "FIELD",
        complete: Complete::Text,
        env: Some("SFPAIR_EXPIRES_FIELD"),
        repeatable: false,
        rest: false,
        commands: LISTENING,
        help: "A datetime field of the payload: an event past it is not run (expired), when the \
            clock can be trusted",
    },
    OptionSpec {
        opt: Opt::ListenDuty,
        long: "listen-duty",
        value: "ON/EVERY",
        complete: Complete::Text,
        env: Some("SFPAIR_LISTEN_DUTY"),
        repeatable: false,
        rest: false,
        commands: LISTENING,
        help: "Connect for ON out of every EVERY (2m/20m), in this device's own slot, so a fleet \
            larger than the org's streaming client limit shares it",
    },
    OptionSpec {
        opt: Opt::Inbox,
        long: "inbox",
        value: "DIR",
        complete: Complete::Dir,
        env: Some("SFPAIR_INBOX"),
        repeatable: false,
        rest: false,
        commands: LISTENING,
        help: "The inbox (default: inbox/ beside the file store)",
    },
    OptionSpec {
        opt: Opt::InboxMaxBytes,
        long: "inbox-max-bytes",
        value: "N",
        complete: Complete::Text,
        env: Some("SFPAIR_INBOX_MAX_BYTES"),
        repeatable: false,
        rest: false,
        commands: LISTENING,
        help: "Most bytes the inbox holds: bytes, or a number with K, M or G (default 4M, at \
            least 64K); a full inbox takes no more commands until some have run",
    },
    OptionSpec {
        opt: Opt::Desired,
        long: "desired",
        value: "SOBJECT/FIELD/VALUE",
        complete: Complete::Text,
        env: Some("SFPAIR_DESIRED"),
        repeatable: false,
        rest: false,
        commands: DESIRED_CHECKED,
        help: "The device's record by its external id (Device__c/Device_Id__c/GW-0042), whose \
            content is the desired state",
    },
    OptionSpec {
        opt: Opt::DesiredFile,
        long: "desired-file",
        value: "PATH",
        complete: Complete::File,
        env: Some("SFPAIR_DESIRED_FILE"),
        repeatable: false,
        rest: false,
        commands: DESIRED,
        help: "Where the record goes, as JSON, replaced atomically when it changes",
    },
    OptionSpec {
        opt: Opt::DesiredExec,
        long: "desired-exec",
        value: "PROGRAM",
        complete: Complete::File,
        env: Some("SFPAIR_DESIRED_EXEC"),
        repeatable: false,
        rest: false,
        commands: DESIRED,
        help: "Run PROGRAM once after each change, the new JSON on standard input, \
            SFPAIR_PREVIOUS naming a file with the old",
    },
    OptionSpec {
        opt: Opt::DesiredFields,
        long: "desired-fields",
        value: "FIELD,...",
        complete: Complete::Text,
        env: Some("SFPAIR_DESIRED_FIELDS"),
        repeatable: false,
        rest: false,
        commands: DESIRED,
        help: "Read only these fields of the record (and so compare only them)",
    },
    OptionSpec {
        opt: Opt::DesiredEvery,
        long: "desired-every",
        value: "DURATION",
        complete: Complete::Text,
        env: Some("SFPAIR_DESIRED_EVERY"),
        repeatable: false,
        rest: false,
        commands: &[Run],
        help: "Read the record at least this often, under the change events (default 6h)",
    },
    OptionSpec {
        opt: Opt::Seal,
        long: "seal",
        value: "SEALER",
        complete: Complete::Text,
        env: Some("SFPAIR_SEAL"),
        repeatable: false,
        rest: false,
        commands: SEALING,
        help: "Seal new pairings to this board: none, systemd-creds, tpm2 or pkcs11:URI (default: \
            like the pairing replaced; a sealed store opens without it)",
    },
    OptionSpec {
        opt: Opt::Tpm,
        long: "tpm",
        value: "TCTI",
        complete: Complete::Text,
        env: Some("SFPAIR_TPM"),
        repeatable: false,
        rest: false,
        commands: SEALED,
        help: "The TPM of a tpm2 seal (default /dev/tpmrm0; or swtpm:host=127.0.0.1,port=2321)",
    },
    OptionSpec {
        opt: Opt::Pkcs11Module,
        long: "pkcs11-module",
        value: "PATH",
        complete: Complete::File,
        env: Some("SFPAIR_PKCS11_MODULE"),
        repeatable: false,
        rest: false,
        commands: SEALED,
        help: "The PKCS#11 module of a pkcs11: seal or key, when the URI has no module-path",
    },
    OptionSpec {
        opt: Opt::Pkcs11PinFile,
        long: "pkcs11-pin-file",
        value: "PATH",
        complete: Complete::File,
        env: Some("SFPAIR_PKCS11_PIN_FILE"),
        repeatable: false,
        rest: false,
        commands: SEALED,
        help: "The token's user PIN (mode 0600; else the URI's pin-source, else the service's \
            pkcs11-pin credential; never an argument)",
    },
];

/// The table entry of `opt`.
pub fn spec(opt: Opt) -> &'static OptionSpec {
    &OPTIONS[opt as usize]
}

/// The table entry of a command.
pub fn command(name: CommandName) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|c| c.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/options.md is the reference page: every flag and every variable is there.
    #[test]
    fn the_options_page_names_every_option_and_variable() {
        let page = include_str!("../../docs/options.md");
        for o in OPTIONS {
            assert!(
                page.contains(&format!("`--{}", o.long)),
                "docs/options.md lacks --{}",
                o.long
            );
            if let Some(var) = o.env {
                assert!(
                    page.contains(&format!("`{var}`")),
                    "docs/options.md lacks {var}"
                );
            }
        }
        for c in COMMANDS.iter().filter(|c| c.name != Help) {
            assert!(
                page.contains(&format!("sfpair {}", c.word)),
                "docs/options.md lacks {}",
                c.word
            );
        }
    }

    #[test]
    fn every_option_has_one_entry_with_a_unique_name_and_a_command() {
        assert_eq!(
            OPTIONS.len(),
            LAST_OPTION as usize + 1,
            "one entry per option"
        );
        for (n, o) in OPTIONS.iter().enumerate() {
            assert_eq!(o.opt as usize, n, "{} is out of place", o.long);
            assert!(!o.commands.is_empty(), "{} applies to nothing", o.long);
            assert_eq!(
                OPTIONS.iter().filter(|p| p.long == o.long).count(),
                1,
                "--{} twice",
                o.long
            );
            assert_eq!(
                o.value.is_empty(),
                o.complete == Complete::Nothing,
                "{}",
                o.long
            );
            assert!(!o.help.is_empty(), "{}", o.long);
            if let Some(var) = o.env {
                assert!(var.starts_with("SFPAIR_"), "{var}");
            }
        }
        for c in COMMANDS {
            assert!(!c.summary.is_empty() && !c.usage.is_empty(), "{}", c.word);
        }
    }
}
