//! The commands behind `sfpair`, as library code: each takes the options `config` validated
//! and returns the exit code, so the binary is parse -> settings -> run -> exit code, and an
//! embedder can run the same commands.
//!
//! Nothing here reads arguments or the environment (that is `config`), and nothing prints a
//! token except `token`, whose job it is. Output goes to the writer given to [`Plan::run`]; a
//! failed write is an error ([`ErrorKind::Output`]), never a panic.

#[cfg(feature = "asset-token")]
pub mod asset_token;
#[cfg(feature = "rest")]
pub mod call;
#[cfg(feature = "desired")]
pub mod desired;
#[cfg(feature = "doctor")]
pub mod doctor;
pub mod forget;
#[cfg(feature = "listen")]
pub mod listen;
#[cfg(feature = "outbox")]
pub mod outbox;
pub mod pair;
#[cfg(feature = "broker")]
pub mod run;
pub mod seal;
#[cfg(feature = "outbox")]
pub mod send;
pub mod status;
pub mod token;

use std::io::{self, Write};
use std::time::Duration;

use crate::agent::Agent;
use crate::error::{Error, ErrorKind};
use crate::http::{HttpConfig, UreqTransport};
use crate::secret::Secret;
use crate::store;
use crate::time::SystemClock;

/// What every command needs to build its agent.
#[derive(Clone, Debug)]
pub struct Backends {
    pub http: HttpConfig,
    pub store: store::Spec,
    /// The consumer secret, for apps that require it (its one route is the agent).
    pub client_secret: Option<Secret>,
    /// `--session-lifetime`: refresh a cached session this old; `None`: only on 401.
    pub session_lifetime: Option<Duration>,
    /// How long to wait for an implausible wall clock to be set.
    pub wait_for_clock: Duration,
    /// The client id the settings give (the stored pairing's when none is given), if any:
    /// the doctor's app check uses it.
    pub client_id: Option<String>,
    /// How records are sealed and keys in tokens reached (`--seal`, `--tpm`, `--pkcs11-*`).
    pub seal: seal::Settings,
}

impl Backends {
    /// The configured store, sealing as the settings say.
    pub fn open_store(&self) -> Result<Box<dyn store::TokenStore>, Error> {
        seal::open_store(&self.store, &self.seal)
    }

    /// The agent over the real clock, HTTPS and the configured store.
    pub fn agent(&self) -> Result<Agent, Error> {
        let mut agent = Agent::new(
            Box::new(SystemClock::new()),
            Box::new(UreqTransport::new(&self.http)?),
            self.open_store()?,
        );
        agent.set_key_access(seal::key_access(&self.seal));
        agent.set_client_secret(self.client_secret.clone());
        agent.set_session_lifetime(self.session_lifetime);
        // A client id that contradicts the stored pairing was said once by `config` already.
        Ok(agent)
    }
}

/// The pairing in the store `spec` names, if one can be read now: the layer of the settings
/// below the board profile (`config`), so a command is not told again what the device paired
/// with. A store that cannot be opened or read gives none here; the command that uses it says
/// why.
pub fn stored_pairing(spec: &store::Spec, sealing: &seal::Settings) -> Option<store::Record> {
    // A sealed pairing is opened here too (its sealer runs once more when the command opens
    // the store again); one that cannot be opened gives none, and the command says why.
    match seal::open_store(spec, sealing).ok()?.load().ok()? {
        store::Loaded::Paired(record) => Some(record),
        _ => None,
    }
}

/// One command and its options.
#[derive(Clone, Debug)]
pub enum Command {
    /// Boxed: the flow configuration is large beside the other commands' options.
    Pair(Box<pair::Options>),
    Token(token::Options),
    Status(status::Options),
    Forget,
    #[cfg(feature = "rest")]
    Call(call::Options),
    /// `run`, and `serve` (`run` without pairing).
    #[cfg(feature = "broker")]
    Run(Box<run::Options>),
    #[cfg(feature = "doctor")]
    Doctor(doctor::Options),
    #[cfg(feature = "asset-token")]
    AssetToken(asset_token::Options),
    #[cfg(feature = "outbox")]
    Send(Box<send::Options>),
    #[cfg(feature = "outbox")]
    Outbox(Box<outbox::Options>),
    #[cfg(feature = "listen")]
    Listen(Box<listen::Options>),
    #[cfg(feature = "desired")]
    Desired(Box<crate::desired::Options>),
    /// `seal` (true) or `unseal` (false).
    Seal(bool),
}

/// A validated command line: what to run, and with what.
#[derive(Clone, Debug)]
pub struct Plan {
    pub backends: Backends,
    pub command: Command,
}

impl Plan {
    /// Runs the command; `Ok` is the exit code (0, or 7 for `forget` without revocation).
    /// The agent is built by the commands that use one: the doctor builds its own (a store or
    /// transport that cannot be opened is one of its findings), and `send`, `outbox status`
    /// and `retry-dead` touch only the outbox (`send` queues while unpaired); `seal` and
    /// `unseal` only the store (no network, so no agent and no CA file).
    pub fn run(&self, out: &mut (dyn Write + Send)) -> Result<u8, Error> {
        let agent = || self.backends.agent();
        let wait = self.backends.wait_for_clock;
        match &self.command {
            Command::Pair(options) => pair::run(&mut agent()?, options, wait, out),
            Command::Token(options) => token::run(&mut agent()?, options, wait, out),
            Command::Status(options) => status::run(&mut agent()?, options, wait, out),
            Command::Forget => forget::run(&mut agent()?, wait, out),
            #[cfg(feature = "rest")]
            Command::Call(options) => call::run(&mut agent()?, options, &self.backends, out),
            #[cfg(feature = "broker")]
            Command::Run(options) => run::run(agent()?, &self.backends, options),
            #[cfg(feature = "doctor")]
            Command::Doctor(options) => doctor::run(options, &self.backends, out),
            #[cfg(feature = "asset-token")]
            Command::AssetToken(options) => asset_token::run(&mut agent()?, options, wait, out),
            #[cfg(feature = "outbox")]
            Command::Send(options) => send::run(options, out),
            #[cfg(feature = "outbox")]
            Command::Outbox(options) => outbox::run(options, &self.backends, out),
            #[cfg(feature = "listen")]
            Command::Listen(options) => listen::run(agent()?, &self.backends, options, out),
            #[cfg(feature = "desired")]
            Command::Desired(options) => desired::run(&mut agent()?, options, wait, out),
            Command::Seal(seal) => seal::run(&self.backends, *seal, out),
        }
    }
}

/// The usage error for a command or option this build leaves out (exit 2, naming the feature).
pub fn not_built(what: &str, capability: &str, feature: &str) -> Error {
    Error::config(format!(
        "{what}: this sfpair is built without {capability} (the `{feature}` feature); use a \
         build with it (the default build has it)"
    ))
}

/// What [`output_error`] says when the reader went away (`sfpair status | head -1`): the
/// binary ends quietly on it, as Unix tools do.
pub const BROKEN_PIPE: &str = "standard output was closed (broken pipe)";

/// A failed write of the product's output: exit 10, and quiet for a closed pipe.
pub fn output_error(e: io::Error) -> Error {
    if e.kind() == io::ErrorKind::BrokenPipe {
        return Error::new(ErrorKind::Output, BROKEN_PIPE);
    }
    Error::new(
        ErrorKind::Output,
        format!("cannot write to standard output: {e}"),
    )
}

/// Reports what a command did when the doing is the product (`send` queued records, `flush`
/// delivered them): the work stands whether or not the report can be written, so a failed
/// write is a warning, never an exit code that would make a caller do it again.
pub fn report(out: &mut dyn Write, text: impl std::fmt::Display) {
    if let Err(e) = say(out, text) {
        log::warn!("the report could not be written: {}", e.message());
    }
}

/// Writes `text` and a newline, then flushes: output that cannot be written is an error.
pub fn say(out: &mut dyn Write, text: impl std::fmt::Display) -> Result<(), Error> {
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(output_error)
}
