//! The long-running agent behind `sfpair run` (and `sfpair serve`, which is `run` without
//! pairing): the broker serves tokens while a supervisor thread keeps the pairing alive.
//!
//! The supervisor, the one thread that does the service's own work:
//! - pairs when nothing is paired (`run`), showing the code on the configured displays;
//! - refreshes at least every `--keepalive` (±10 %, so a fleet spreads out), because an app's
//!   refresh-token policy may expire a refresh token that is not used for a while;
//! - when the pairing dies (a refresh refused, here or in a broker request), shows "re-pair
//!   needed" with the cause on every display and in the JSON events, answers broker clients
//!   `repair_needed`, and pairs again as `--repair` says: `never`, `prompt` (when a person asks:
//!   SIGUSR1 or `{"do":"pair"}`, as RFC 8628 section 3.1 asks), or `auto` (at once);
//! - speaks the systemd notify protocol: `READY=1` once the broker serves, `STATUS=` lines a
//!   person can read, `WATCHDOG=1` at half of `WATCHDOG_USEC`, from this thread, so a hung
//!   supervisor is restarted.
//!
//! A pairing runs on an agent of its own, so broker clients keep being answered meanwhile; the
//! new record replaces the old one only once it is stored (the old one survives a failed
//! re-pair). Nothing here prints a token; STATUS lines carry codes, ids and ages only.
//!
//! Stopping (SIGTERM, SIGINT; docs/run.md, "Stopping"): one [`Stop`] for the whole run, set
//! as soon as the broker stops accepting. Every wait ends on it: the pairing's countdown,
//! polls and retries, the keepalive's backoff, the delivery thread's waits, an agent's retry
//! backoff. The run then gives its threads [`GRACE`] to finish and does not wait for a pairing
//! poll or a delivery request still in flight (neither loses anything: a poll's grant is
//! simply not used, and a delivery is sent again by external id); only a refresh already sent
//! is waited for, as its reply may hold a rotated refresh token that must be stored.

use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use log::info;

use crate::agent::{Agent, Pairing};
use crate::broker::{self, ServeOptions, Shared, hooks::Hooks, lock};
use crate::error::Error;
use crate::flow::backoff::Jitter;
use crate::health::{self, RunStatus, State};
use crate::notify::Notifier;
use crate::present::select;
use crate::present::spec::Display;
use crate::stop::Stop;
use crate::time::SystemClock;

#[cfg(feature = "outbox")]
pub mod delivery_thread;
#[cfg(feature = "listen")]
mod listening;
#[cfg(feature = "outbox")]
mod shared_caller;
mod supervisor;

use crate::mailbox::{Receiver, Sender, channel};
use supervisor::Supervisor;

/// The outbox `run` delivers from, and how.
#[cfg(feature = "outbox")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxRun {
    pub place: crate::outbox::place::Place,
    pub delivery: crate::delivery::Options,
    /// Named on purpose (`--outbox`, `SFPAIR_OUTBOX`): one that cannot be opened stops the
    /// run at start. The default place beside the store only costs the outbox (a warning).
    pub required: bool,
}

/// The broker's handle on the outbox, opened at start: `None` without one, or when the default
/// place cannot be opened (said once); an outbox named on purpose that cannot be opened is the
/// run's error.
#[cfg(feature = "outbox")]
fn open_outbox(options: &Options) -> Result<Option<crate::outbox::Outbox>, Error> {
    let Some(run) = &options.outbox else {
        return Ok(None);
    };
    match run.place.open() {
        Ok(outbox) => Ok(Some(outbox)),
        Err(e) if run.required => Err(e),
        Err(e) => {
            log::warn!("no outbox: {e}; tokens are served, records are not queued");
            Ok(None)
        }
    }
}

/// What to do when the pairing dies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repair {
    /// Say so, and wait for `sfpair pair` (or a restart) to fix it.
    Never,
    /// Pair again when a person asks (SIGUSR1 or `{"do":"pair"}`).
    Prompt,
    /// Pair again at once (kiosks).
    Auto,
}

impl Repair {
    pub fn from_name(name: &str) -> Option<Repair> {
        match name {
            "never" => Some(Repair::Never),
            "prompt" => Some(Repair::Prompt),
            "auto" => Some(Repair::Auto),
            _ => None,
        }
    }
}

/// How the service runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// How to pair (`run`); `None` for `serve`, which never pairs.
    pub pair: Option<Pairing>,
    pub displays: Vec<Display>,
    pub json: bool,
    /// Refresh at least this often; `None`: only when asked.
    pub keepalive: Option<Duration>,
    pub repair: Repair,
    pub serve: ServeOptions,
    /// How long to wait for an implausible wall clock before a pairing.
    pub wait_for_clock: Duration,
    /// The outbox to deliver from; `None`: no delivery.
    #[cfg(feature = "outbox")]
    pub outbox: Option<OutboxRun>,
    /// `--listen` (and, with `--desired` alone, the stream its change events come on).
    #[cfg(feature = "listen")]
    pub listen: Option<crate::listen::Options>,
    /// `--desired`: the record the device follows.
    #[cfg(feature = "desired")]
    pub desired: Option<crate::desired::Options>,
}

/// Builds an agent like the command's own (a pairing runs on a second one).
pub type MakeAgent = Box<dyn Fn() -> Result<Agent, Error> + Send>;

/// Why the supervisor wakes up.
enum Notice {
    Serving,
    Pair,
    Died(Error),
    Stop,
}

/// The broker's side of the supervisor: health from the shared status, requests as wake-ups.
struct Link {
    status: Arc<Mutex<RunStatus>>,
    wake: Mutex<Sender<Notice>>,
    /// Set when the broker stops accepting.
    stop: Stop,
    can_pair: bool,
    repair: Repair,
    /// A handle of its own on the outbox, for the broker's `send`.
    #[cfg(feature = "outbox")]
    outbox: Option<Mutex<crate::outbox::Outbox>>,
    /// The listener and the follower, for health.
    #[cfg(feature = "listen")]
    listening: Option<Arc<listening::Handle>>,
}

impl Hooks for Link {
    fn serving(&self) {
        let _ = lock(&self.wake).send(Notice::Serving);
    }

    fn stopping(&self) {
        self.stop.stop();
        let _ = lock(&self.wake).send(Notice::Stop);
    }

    fn health(&self, agent: &mut Agent) -> serde_json::Value {
        let status = lock(&self.status).clone();
        #[allow(unused_mut)]
        let mut value = health::of_agent(agent, Some(&status));
        #[cfg(feature = "listen")]
        if let Some(l) = &self.listening {
            l.add_health(&mut value);
        }
        value
    }

    fn pair_requested(&self) -> Result<String, String> {
        if !self.can_pair {
            return Err(
                "this broker does not pair (sfpair serve): run `sfpair pair`, or use `sfpair run`"
                    .into(),
            );
        }
        if self.repair == Repair::Never {
            return Err("pairing on request is off (--repair never): run `sfpair pair`".into());
        }
        if matches!(lock(&self.status).state, State::Pairing { .. }) {
            return Err("a pairing is already running: enter the code shown".into());
        }
        let _ = lock(&self.wake).send(Notice::Pair);
        Ok("a new pairing starts: watch the display for the code".into())
    }

    fn pairing_died(&self, error: &Error) {
        let _ = lock(&self.wake).send(Notice::Died(error.clone()));
    }

    #[cfg(feature = "outbox")]
    fn send(&self, send: &crate::broker::protocol::SendAsk) -> Result<serde_json::Value, Error> {
        use crate::outbox::{DEFAULT_MAX_RECORD, input, place};
        let Some(outbox) = &self.outbox else {
            return Err(Error::storage(
                "this sfpair run has no outbox (see its log for why): nothing was queued",
            ));
        };
        let target = input::target_of(
            send.sobject.as_deref(),
            send.external_id.as_deref(),
            send.event.as_deref(),
            send.auto_id,
        )?;
        // Streamed from the request line (at most MAX_SEND_LINE), one record at a time.
        let mut line = std::io::Cursor::new(send.records.as_bytes());
        let mut records = input::Input::new(&mut line, &target, send.auto_id, DEFAULT_MAX_RECORD)
            .map_err(|e| Error::config(format!("cannot read the records: {e}")))?;
        let now = crate::time::Clock::unix_time(&SystemClock::new()).as_secs();
        let pushed = lock(outbox).push_all(&mut records, now)?;
        Ok(place::receipt(&pushed))
    }
}

/// How long a stopping run waits for its supervisor and delivery threads once every wait has
/// been told to end: enough for a store write or an outbox step under way, well inside the 2 s
/// a stop may take (docs/run.md, "Stopping").
pub const GRACE: Duration = Duration::from_millis(1000);

/// Serves until SIGTERM or SIGINT, keeping the pairing alive. `agent` serves the broker;
/// `make_agent` builds the one a pairing runs on.
pub fn run(mut agent: Agent, make_agent: MakeAgent, options: Options) -> Result<(), Error> {
    // Before any thread starts: a SIGTERM from now on stops the run, the threads included.
    broker::signals::install()
        .map_err(|e| Error::config(format!("cannot install signal handlers: {e}")))?;
    let stop = Stop::new();
    agent.set_stop(stop.clone());
    let clock: broker::SharedClock = Arc::new(SystemClock::new());
    let shared = Shared::new(agent, Arc::clone(&clock));
    let status = Arc::new(Mutex::new(RunStatus {
        state: State::NotPaired,
        next_keepalive: None,
        outbox: None,
    }));
    #[cfg(feature = "outbox")]
    let outbox = open_outbox(&options)?;
    let (wake, woken) = channel();
    // Each thread holds a sender until it ends: all gone means all ended.
    let (running, ended) = channel::<()>();
    #[cfg(feature = "outbox")]
    let delivery = outbox.as_ref().and_then(|_| {
        start_delivery(
            &options,
            &shared,
            &make_agent,
            &status,
            &wake,
            &stop,
            &running,
        )
    });
    #[cfg(feature = "listen")]
    let listening = start_listening(&options, &shared, &make_agent, &wake, &stop, &running)?;
    let link = Arc::new(Link {
        status: Arc::clone(&status),
        wake: Mutex::new(wake.clone()),
        stop: stop.clone(),
        can_pair: options.pair.is_some(),
        repair: options.repair,
        #[cfg(feature = "outbox")]
        outbox: outbox.map(Mutex::new),
        #[cfg(feature = "listen")]
        listening: listening.clone(),
    });
    let serve = options.serve.clone();
    let supervisor = Supervisor {
        shared: Arc::clone(&shared),
        status,
        make_agent,
        presenters: select::presenters(&options.displays, options.json),
        notifier: Notifier::from_env(),
        clock: SystemClock::new(),
        jitter: Jitter::new(crate::agent::random_seed()),
        options,
        keepalive_due: None,
        failures: 0,
        last_ping: None,
        stop: stop.clone(),
        #[cfg(feature = "outbox")]
        poker: delivery.as_ref().map(|d| d.poker()),
        #[cfg(feature = "listen")]
        listening,
    };
    let supervising = running.clone();
    std::thread::Builder::new()
        .name("sfpair-supervisor".into())
        .stack_size(crate::http::THREAD_STACK)
        .spawn(move || {
            let _running = supervising;
            supervisor.supervise(woken)
        })
        .map_err(|e| Error::config(format!("cannot start the supervisor thread: {e}")))?;
    drop(running);
    let served = broker::serve_with(Arc::clone(&shared), &serve, link, clock);
    // Also when the broker could not start: nothing may go on pairing without it.
    stop.stop();
    let _ = wake.send(Notice::Stop);
    finish(&ended, &shared);
    served
}

/// Waits [`GRACE`] for the threads, then for a refresh in flight: every refresh of the run goes
/// through the shared agent under its lock, so taking the lock waits for exactly that one
/// request (a single attempt: the stop ends its retries), whose reply may hold a rotated refresh
/// token that must be stored. Nothing else is waited for.
fn finish(ended: &Receiver<()>, shared: &Arc<Mutex<Shared>>) {
    if let Err(RecvTimeoutError::Timeout) = ended.recv_timeout(GRACE) {
        info!(
            "stopping without waiting for the request in flight (a pairing's poll or a \
             delivery: nothing is lost, a delivery is sent again by external id)"
        );
    }
    drop(lock(shared));
}

/// The delivery thread, when `run` has an outbox; a run without one (no place for it, or it
/// cannot be opened) still serves tokens, and says why it does not deliver.
#[cfg(feature = "outbox")]
fn start_delivery(
    options: &Options,
    shared: &Arc<Mutex<Shared>>,
    make_agent: &MakeAgent,
    status: &Arc<Mutex<RunStatus>>,
    wake: &Sender<Notice>,
    stop: &Stop,
    running: &Sender<()>,
) -> Option<delivery_thread::Handle> {
    let run = options.outbox.as_ref()?;
    // A refresh refused during delivery is news for the supervisor, as in a broker request.
    let wake = Mutex::new(wake.clone());
    let died: delivery_thread::Died = Box::new(move |e: &Error| {
        let _ = lock(&wake).send(Notice::Died(e.clone()));
    });
    let started = run.place.open().and_then(|outbox| {
        delivery_thread::start(
            outbox,
            run.delivery.clone(),
            Arc::clone(shared),
            make_agent()?,
            Arc::clone(status),
            died,
            stop.clone(),
            running.clone(),
        )
    });
    match started {
        Ok(handle) => Some(handle),
        Err(e) => {
            log::warn!("no delivery from the outbox: {e}");
            None
        }
    }
}

/// The listener and the follower, with `--listen` or `--desired`. A refresh refused in their
/// requests is news for the supervisor, as in a broker request.
#[cfg(feature = "listen")]
fn start_listening(
    options: &Options,
    shared: &Arc<Mutex<Shared>>,
    make_agent: &MakeAgent,
    wake: &Sender<Notice>,
    stop: &Stop,
    running: &Sender<()>,
) -> Result<Option<Arc<listening::Handle>>, Error> {
    let Some(listen) = options.listen.clone() else {
        return Ok(None);
    };
    let wake = wake.clone();
    let died = move || -> shared_caller::Died {
        let wake = Mutex::new(wake.clone());
        Box::new(move |e: &Error| {
            let _ = lock(&wake).send(Notice::Died(e.clone()));
        })
    };
    let handle = listening::start(listening::Start {
        listen,
        #[cfg(feature = "desired")]
        desired: options.desired.clone(),
        outbox: options.outbox.as_ref(),
        shared,
        make_agent,
        died: &died,
        stop,
        running,
    })?;
    Ok(Some(Arc::new(handle)))
}
