//! The supervisor: the one thread of `sfpair run` that does the service's own work (the list is
//! in `service.rs`): pairing when nothing is paired, the keepalive, "re-pair needed" and the
//! re-pairing `--repair` asks for, and the systemd notify protocol (`Beat` keeps the watchdog
//! fed while a pairing blocks this thread).
//!
//! Nothing here prints a token; STATUS lines carry codes, ids and ages only.

use std::io::Write;
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use log::{error, info, warn};

#[cfg(feature = "outbox")]
use super::delivery_thread;
#[cfg(feature = "listen")]
use super::listening;
use super::{MakeAgent, Notice, Options, Repair};
use crate::broker::{Shared, lock};
use crate::error::Error;
use crate::event::Event;
use crate::flow::backoff::Jitter;
use crate::health::{RunStatus, State};
use crate::keepalive;
use crate::mailbox::Receiver;
use crate::notify::{self, Notifier};
use crate::present::Presenter;
use crate::refusal;
use crate::stop::Stop;
use crate::time::{Clock, Instant, SystemClock};

pub(super) struct Supervisor {
    pub(super) shared: Arc<Mutex<Shared>>,
    pub(super) status: Arc<Mutex<RunStatus>>,
    pub(super) make_agent: MakeAgent,
    /// The displays, lent to each pairing and shown "re-pair needed" on.
    pub(super) presenters: Vec<Box<dyn Presenter>>,
    pub(super) notifier: Notifier,
    pub(super) clock: SystemClock,
    pub(super) jitter: Jitter,
    pub(super) options: Options,
    /// When the next keepalive refresh is due (monotonic).
    pub(super) keepalive_due: Option<Instant>,
    /// Keepalive refreshes that failed in a row without killing the pairing (network).
    pub(super) failures: u32,
    pub(super) last_ping: Option<Instant>,
    /// The run's stop: a pairing's waits end on it.
    pub(super) stop: Stop,
    /// Wakes the delivery thread once a pairing is stored.
    #[cfg(feature = "outbox")]
    pub(super) poker: Option<delivery_thread::Poker>,
    /// The listener and the follower, nudged once a pairing is stored.
    #[cfg(feature = "listen")]
    pub(super) listening: Option<Arc<listening::Handle>>,
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
    pub(super) fn supervise(mut self, woken: Receiver<Notice>) {
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
                None => woken.recv(),
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
                if self.repair_needed() {
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
