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

use std::io::Write;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use log::{error, info, warn};

use crate::agent::{Agent, Pairing};
use crate::broker::{self, ServeOptions, Shared, hooks::Hooks, lock};
use crate::error::Error;
use crate::event::Event;
use crate::flow::backoff::Jitter;
use crate::health::{self, RunStatus, State};
use crate::keepalive;
use crate::notify::{self, Notifier};
use crate::present::Presenter;
use crate::present::select;
use crate::present::spec::Display;
use crate::refusal;
use crate::stop::Stop;
use crate::time::{Clock, Instant, SystemClock};

#[cfg(feature = "outbox")]
pub mod delivery_thread;
#[cfg(feature = "listen")]
mod listening;
#[cfg(feature = "outbox")]
mod shared_caller;

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
            warn!("no outbox: {e}; tokens are served, records are not queued");
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
        let now = SystemClock::new().unix_time().as_secs();
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
            warn!("no delivery from the outbox: {e}");
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

struct Supervisor {
    shared: Arc<Mutex<Shared>>,
    status: Arc<Mutex<RunStatus>>,
    make_agent: MakeAgent,
    /// The displays, lent to each pairing and shown "re-pair needed" on.
    presenters: Vec<Box<dyn Presenter>>,
    notifier: Notifier,
    clock: SystemClock,
    jitter: Jitter,
    options: Options,
    /// When the next keepalive refresh is due (monotonic).
    keepalive_due: Option<Instant>,
    /// Keepalive refreshes that failed in a row without killing the pairing (network).
    failures: u32,
    last_ping: Option<Instant>,
    /// The run's stop: a pairing's waits end on it.
    stop: Stop,
    /// Wakes the delivery thread once a pairing is stored.
    #[cfg(feature = "outbox")]
    poker: Option<delivery_thread::Poker>,
    /// The listener and the follower, nudged once a pairing is stored.
    #[cfg(feature = "listen")]
    listening: Option<Arc<listening::Handle>>,
}

/// A keepalive that failed for a reason that may pass (network) is tried again after this,
/// doubling up to [`RETRY_CAP`].
const RETRY_BASE: Duration = Duration::from_secs(60);
const RETRY_CAP: Duration = Duration::from_secs(3600);
/// The first keepalive after start-up comes after this (or the keepalive itself if shorter),
/// ±10 %: a device that reboots daily still uses its refresh token once per boot, and a
/// fleet that boots together does not refresh together. (The record does not say when the
/// token was last used, so a fresh process cannot wait a whole period.)
const FIRST_KEEPALIVE: Duration = Duration::from_secs(3600);
/// How soon a seal that cannot be opened is tried again, and the most it waits.
const SEAL_RECHECK: Duration = Duration::from_secs(10);
const SEAL_RECHECK_CAP: Duration = Duration::from_secs(600);

impl Supervisor {
    fn supervise(mut self, woken: Receiver<Notice>) {
        let stored = lock(&self.shared).agent().stored();
        if stored.is_ok() {
            self.set_state(State::Paired);
            self.schedule_first_keepalive();
        } else if let Some(e) = stored.err().filter(crate::store::is_unopened) {
            // Kept and reported, never paired over unasked (`died`: --repair auto does).
            self.died(e);
        } else if self.options.pair.is_some() {
            self.pair();
        } else {
            self.set_state(State::NotPaired);
        }
        loop {
            let timeout = self
                .next_deadline()
                .map(|at| at.saturating_since(self.clock.now()));
            let wake = match timeout {
                Some(t) => woken.recv_timeout(t),
                None => woken.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match wake {
                Ok(Notice::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                Ok(Notice::Serving) => {
                    let _ = self.notifier.ready();
                    self.announce();
                    self.say_serving();
                }
                Ok(Notice::Pair) => self.pair(),
                Ok(Notice::Died(e)) => self.died(e),
                Err(RecvTimeoutError::Timeout) => {}
            }
            self.ping_if_due();
            if self
                .keepalive_due
                .is_some_and(|due| self.clock.now() >= due)
            {
                self.keepalive();
            }
        }
        let _ = self.notifier.stopping();
    }

    /// One line on standard output when the broker starts serving a pairing that was stored
    /// already (a pairing shows its own screens): where, for which org and user, and when the
    /// next keepalive comes, for whoever reads the journal. A JSON event with `--json`.
    fn say_serving(&self) {
        if lock(&self.status).state != State::Paired {
            return;
        }
        let record = lock(&self.shared).agent().stored().ok();
        let (org, user) = record
            .as_ref()
            .map(|r| crate::api::org_and_user(&r.identity_url))
            .unwrap_or_default();
        let socket = self.options.serve.socket.display().to_string();
        let line = if self.options.json {
            crate::sanitize::json_line(&serde_json::json!({
                "event": "serving",
                "socket": socket,
                "org_id": org,
                "user_id": user,
                "instance_url": record.as_ref().map(|r| r.instance_url.clone()),
                "next_keepalive": lock(&self.status).next_keepalive,
            }))
        } else {
            let keepalive = match self.keepalive_due {
                Some(due) => format!(
                    "next keepalive in {}",
                    crate::time::format_age(due.saturating_since(self.clock.now()).as_secs())
                ),
                None => "no keepalive (--keepalive 0)".into(),
            };
            let shown = |id: Option<String>| {
                id.map_or("?".into(), |s| crate::text::server_text(&s).into_owned())
            };
            format!(
                "serving on {socket}, paired with org {} as {}, {keepalive}",
                shown(org),
                shown(user)
            )
        };
        let mut out = std::io::stdout().lock();
        if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
            log::debug!("the serving line could not be written: {e}");
        }
    }

    /// The earlier of the next keepalive and the next watchdog ping.
    fn next_deadline(&self) -> Option<Instant> {
        let ping = self.notifier.next_ping(self.last_ping, self.clock.now());
        match (self.keepalive_due, ping) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn ping_if_due(&mut self) {
        let now = self.clock.now();
        self.notifier.ping_if_due(&mut self.last_ping, now);
    }

    fn set_state(&mut self, state: State) {
        lock(&self.status).state = state;
        self.announce();
    }

    /// The STATUS line for `systemctl status`.
    fn announce(&self) {
        let status = lock(&self.status).clone();
        let line = match &status.state {
            State::NotPaired => notify::status_not_paired(),
            State::Pairing { user_code: None } => notify::status_asking_for_code(),
            State::Pairing {
                user_code: Some(code),
            } => notify::status_waiting(code, 0),
            State::Paired => {
                let mut shared = lock(&self.shared);
                let agent = shared.agent();
                let org = agent
                    .stored()
                    .ok()
                    .and_then(|r| crate::api::org_and_user(&r.identity_url).0)
                    .unwrap_or_else(|| "?".into());
                let age = agent.last_refresh().map(|r| {
                    Duration::from_secs(self.clock.unix_time().as_secs().saturating_sub(r.at))
                });
                notify::status_paired(&org, age)
            }
            State::RepairNeeded { cause } => notify::status_repair_needed(*cause),
        };
        let _ = self.notifier.status(&line);
    }

    fn schedule_first_keepalive(&mut self) {
        if let Some(period) = self.options.keepalive {
            self.keepalive_in(period.min(FIRST_KEEPALIVE));
        }
    }

    /// After a good refresh: the next one a keepalive period later.
    fn schedule_keepalive(&mut self) {
        self.failures = 0;
        if let Some(period) = self.options.keepalive {
            self.keepalive_in(period);
        }
    }

    /// Due `after` from now, ±10 % (`keepalive::next_due`).
    fn keepalive_in(&mut self, after: Duration) {
        if let Some(due) = keepalive::next_due(self.clock.now(), after, &mut self.jitter) {
            self.set_keepalive(due);
        }
    }

    fn set_keepalive(&mut self, due: Instant) {
        self.keepalive_due = Some(due);
        let wall = self.clock.unix_time() + due.saturating_since(self.clock.now());
        lock(&self.status).next_keepalive = Some(wall.as_secs());
    }

    fn keepalive(&mut self) {
        self.keepalive_due = None;
        // A broker client's request may have refreshed lately: that use counts, so wait a
        // period from it instead of refreshing again.
        let period = self.options.keepalive.unwrap_or_default();
        let recent = lock(&self.shared).agent().last_refresh().and_then(|r| {
            let age = self.clock.unix_time().as_secs().saturating_sub(r.at);
            (r.error.is_none() && Duration::from_secs(age) < period * 9 / 10).then_some(age)
        });
        if let Some(age) = recent {
            self.keepalive_in(
                period
                    .saturating_sub(Duration::from_secs(age))
                    .max(Duration::from_secs(1)),
            );
            return;
        }
        let refreshed = lock(&self.shared).agent().refresh();
        match refreshed {
            Ok(_) => {
                info!("keepalive: the refresh token is in use again");
                self.schedule_keepalive();
                if matches!(lock(&self.status).state, State::RepairNeeded { .. }) {
                    // A seal that opens again (the token or the TPM's state is back).
                    self.set_state(State::Paired);
                } else {
                    self.announce();
                }
            }
            Err(e) if crate::store::is_unopened(&e) && self.repair_needed() => self.recheck_seal(),
            Err(e) if refusal::is_death(&e) => self.died(e),
            Err(e) => {
                self.failures += 1;
                let delay = self
                    .jitter
                    .retry_delay(RETRY_BASE, self.failures, RETRY_CAP);
                warn!(
                    "keepalive refresh failed ({e}); trying again in {} s",
                    delay.as_secs()
                );
                self.set_keepalive(self.clock.now() + delay);
            }
        }
    }

    /// The server refused the pairing: say so everywhere, then pair again as `--repair` says.
    fn died(&mut self, e: Error) {
        if matches!(
            lock(&self.status).state,
            State::RepairNeeded { .. } | State::Pairing { .. }
        ) {
            return;
        }
        error!("re-pair needed: {e}");
        self.keepalive_due = None;
        lock(&self.status).next_keepalive = None;
        let cause = refusal::cause_of(&e).unwrap_or(refusal::Cause::Unknown);
        for p in &mut self.presenters {
            p.show(&Event::Failed(e.clone()));
        }
        self.set_state(State::RepairNeeded { cause });
        if self.options.repair == Repair::Auto && self.options.pair.is_some() {
            self.pair();
        } else if cause == refusal::Cause::SealUnopened {
            self.failures = 0;
            self.recheck_seal();
        }
    }

    fn repair_needed(&self) -> bool {
        matches!(lock(&self.status).state, State::RepairNeeded { .. })
    }

    /// A seal that cannot be opened is tried again, backing off from [`SEAL_RECHECK`] to
    /// [`SEAL_RECHECK_CAP`]: opening is local (no request until it opens), and putting the
    /// token or the TPM's state back then brings the pairing back without a restart.
    fn recheck_seal(&mut self) {
        self.failures += 1;
        let delay = self
            .jitter
            .retry_delay(SEAL_RECHECK, self.failures, SEAL_RECHECK_CAP);
        self.set_keepalive(self.clock.now() + delay);
    }

    /// A pairing on an agent of its own, with the displays lent to it. The broker goes on
    /// answering from the old pairing (or `not_paired`) until the new one is stored.
    fn pair(&mut self) {
        let Some(how) = self.options.pair.clone() else {
            return;
        };
        let before = lock(&self.status).state.clone();
        self.set_state(State::Pairing { user_code: None });
        let mut agent = match (self.make_agent)() {
            Ok(agent) => agent,
            Err(e) => {
                error!("cannot start a pairing: {e}");
                self.set_state(before);
                return;
            }
        };
        agent.set_stop(self.stop.clone());
        for p in self.presenters.drain(..) {
            agent.add_presenter(p);
        }
        agent.add_presenter(Box::new(Beat {
            notifier: Notifier::from_env(),
            status: Arc::clone(&self.status),
            clock: SystemClock::new(),
            last_ping: None,
        }));
        let paired = agent
            .wait_for_clock(self.options.wait_for_clock)
            .and_then(|()| agent.pair_by(&how));
        let mut presenters = agent.take_presenters();
        presenters.pop(); // the Beat
        self.presenters = presenters;
        match paired {
            Ok(_) => {
                {
                    let mut shared = lock(&self.shared);
                    shared.agent().forget_session();
                    shared.clear_failure();
                }
                info!("paired; serving tokens for the new pairing");
                #[cfg(feature = "outbox")]
                if let Some(p) = &self.poker {
                    p.poke();
                }
                #[cfg(feature = "listen")]
                if let Some(l) = &self.listening {
                    l.paired();
                }
                self.set_state(State::Paired);
                self.schedule_keepalive();
            }
            Err(e) => {
                if e.kind() == crate::error::ErrorKind::Stopped {
                    info!("the pairing did not complete: {e}");
                } else {
                    warn!("the pairing did not complete: {e}");
                }
                // Another process may have paired meanwhile (`sfpair pair` holding the lock).
                let stored = lock(&self.shared).agent().stored().is_ok();
                let back = match before {
                    State::NotPaired | State::Pairing { .. } if stored => State::Paired,
                    State::Pairing { .. } => State::NotPaired,
                    other => other,
                };
                let still_paired = back == State::Paired;
                self.set_state(back);
                if still_paired {
                    self.schedule_keepalive();
                }
            }
        }
    }
}

/// Rides along with a pairing's presenters: keeps the watchdog fed (the pairing blocks the
/// supervisor for minutes; the countdown ticks every second) and the STATUS line current.
struct Beat {
    notifier: Notifier,
    status: Arc<Mutex<RunStatus>>,
    clock: SystemClock,
    last_ping: Option<Instant>,
}

impl Presenter for Beat {
    fn show(&mut self, event: &Event) {
        let now = self.clock.now();
        self.notifier.ping_if_due(&mut self.last_ping, now);
        match event {
            Event::CodeIssued(code) => {
                lock(&self.status).state = State::Pairing {
                    user_code: Some(code.user_code.clone()),
                };
                let _ = self.notifier.status(&notify::status_waiting(
                    &code.user_code,
                    code.expires_in.as_secs().div_ceil(60),
                ));
            }
            Event::Countdown { remaining } if remaining.as_secs() % 60 == 0 => {
                if let State::Pairing {
                    user_code: Some(code),
                } = &lock(&self.status).state
                {
                    let _ = self.notifier.status(&notify::status_waiting(
                        code,
                        remaining.as_secs().div_ceil(60),
                    ));
                }
            }
            _ => {}
        }
    }
}
