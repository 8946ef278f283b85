//! The receiving side of the listener: keeps a Streaming API client subscribed, and puts what
//! arrives into the inbox before its position counts. docs/listen.md, "Staying subscribed", says
//! why each rule is there (each is a way the clients in the field went deaf or lost events):
//!
//! - after a handshake, every channel is subscribed from its stored position, never `-1`
//!   (the server forgets clients every few hours: a `-1` resubscription loses what was published
//!   meanwhile); with nothing stored, from the `--replay` rule;
//! - `403::Unknown client` (or advice `handshake`): handshake again at once and resubscribe;
//! - a refused session: renew it once, then handshake again; refused again: back off;
//! - `400 … replayId … invalid` (away longer than the org keeps events): a loud warning, and
//!   `-2`; what was already run is not run again (the inbox's finished set);
//! - network errors, 5xx, `403::Organization concurrent user limit exceeded`, a reply that
//!   cannot be stored: capped backoff with jitter, reset only by a connect that came back,
//!   never a handshake loop; after a cut reply the next handshake resubscribes from the
//!   stored position, so the events of the lost reply come again;
//! - a reply longer than the stream reads, or than the inbox's room: its beginning is taken
//!   (the position stops there) and the stream handshakes again for the rest; when nothing
//!   fits, it waits until the worker has made room (or [`FULL_WAIT`]);
//! - a doorbell channel (`run --desired`'s change events) is subscribed from `-1` at every
//!   subscription and its events only ring: nothing is stored or run, and what it missed
//!   while away is covered by the doorbell's `subscribed` call (the follower reads anew);
//! - `--listen-duty ON/EVERY`: connected for ON from the device's slot in each period (or as
//!   soon after it as the org's limit allows, retrying about once per ON), then
//!   `/meta/disconnect`.
//!
//! It never runs a command (`work.rs` does) and never sleeps but on its [`Stop`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use log::{debug, info, warn};

use super::bayeux::{self, Delivered, Reconnect, Refusal};
use super::duty::Turns;
use super::inbox::Inbox;
use super::stream::{Failure, Stream};
use super::{Bell, Doorbell, Replay, Shared};
use crate::call::Caller;
use crate::error::ErrorKind;
use crate::flow::backoff::Jitter;
use crate::http::{HttpConfig, UreqTransport};
use crate::stop::Stop;
use crate::time::Clock;

/// The first retry after a failure waits about this long; each further one doubles, up to
/// [`BACKOFF_CAP`] (with jitter: a fleet must not come back in step).
const BACKOFF_BASE: Duration = Duration::from_secs(2);
const BACKOFF_CAP: Duration = Duration::from_secs(300);
/// A full inbox is looked at again this often, or as soon as the worker has made room.
const FULL_WAIT: Duration = Duration::from_secs(30);

/// What the receiver needs.
pub struct Receiver<'a> {
    pub stream: Stream,
    pub sessions: &'a mut dyn Caller,
    /// Where command channels' events go; `None` with no command channels (a doorbell only).
    pub inbox: Option<&'a Mutex<Inbox>>,
    pub channels: &'a [String],
    pub doorbell: Option<&'a Doorbell<'a>>,
    pub replay: Replay,
    pub turns: Option<Turns>,
    /// Which events are ours (`--match`).
    pub ours: &'a (dyn Fn(&Delivered) -> bool + Sync),
    /// Rung when events arrive, for the worker.
    pub bell: &'a Bell,
    /// Rung by the worker when it has made room: ends a wait of a full inbox early.
    pub room: &'a Bell,
    pub shared: &'a Arc<Mutex<Shared>>,
    pub clock: &'a dyn Clock,
    pub stop: &'a Stop,
    pub jitter: Jitter,
    /// Ends a backoff early (a new pairing was stored), besides the stop.
    pub nudge: &'a Bell,
    /// Where the disconnect goes after a stop interrupted the stream's own connection: a
    /// fresh one with short timeouts (best effort: it frees the org's slot at once).
    pub farewell: &'a HttpConfig,
}

impl Receiver<'_> {
    /// Runs until the stop; disconnects on the way out.
    pub fn run(mut self) {
        let mut failures: u32 = 0;
        let mut renewed = false;
        while !self.stop.is_stopped() {
            if let Some(wait) = self.outside_window() {
                if self.stream.is_connected() {
                    self.stream.disconnect(self.sessions);
                    self.note("waiting for its window", None);
                }
                if self.stop.sleep(wait) {
                    break;
                }
                continue;
            }
            if self.inbox_full() {
                self.note("inbox full", None);
                if self.room.wait_at_most(FULL_WAIT) {
                    break;
                }
                continue;
            }
            let connected = self.stream.is_connected();
            let step = if connected {
                self.connect()
            } else {
                self.subscribe_all()
            };
            match step {
                // The stop interrupted the request: the client is still known to the org,
                // and the disconnect below frees it.
                Err(_) if self.stop.is_stopped() => break,
                // Only a connect that came back counts as getting through: a handshake that
                // works before a connect that fails every time must not reset the backoff,
                // or the device shakes hands every second for ever.
                Ok(()) if connected => {
                    failures = 0;
                    renewed = false;
                }
                Ok(()) => {}
                Err(Failure::Refused(Refusal::UnknownClient)) => {
                    info!("streaming: the server forgot this client; shaking hands again");
                    self.stream.reset();
                }
                Err(Failure::Refused(Refusal::Session)) if !renewed => {
                    renewed = true;
                    self.stream.reset();
                    if let Err(f) = self.stream.renew_session(self.sessions) {
                        self.back_off(&mut failures, f);
                    }
                }
                Err(f) => {
                    self.stream.reset();
                    self.back_off(&mut failures, f);
                }
            }
        }
        if self.stream.is_connected()
            && let Ok(fresh) = UreqTransport::new(self.farewell)
        {
            self.stream.set_transport(Box::new(fresh));
        }
        self.stream.disconnect(self.sessions);
        self.note("stopped", None);
    }

    /// `Some(wait)` when a duty cycle keeps the device off the stream now.
    fn outside_window(&self) -> Option<Duration> {
        self.turns?.check(self.clock.unix_time().as_secs()).err()
    }

    fn inbox_full(&self) -> bool {
        self.inbox
            .is_some_and(|inbox| super::lock(inbox).nearly_full())
    }

    /// Handshake, then every channel from its stored position.
    fn subscribe_all(&mut self) -> Result<(), Failure> {
        self.note("connecting", None);
        self.stream.handshake(self.sessions)?;
        for channel in self.channels {
            let stored = self
                .inbox
                .and_then(|inbox| super::lock(inbox).position(channel));
            let from = match (stored, self.replay) {
                (_, Replay::All) => bayeux::ALL_RETAINED,
                (Some(id), _) => id,
                (None, Replay::New) => bayeux::NEW_ONLY,
                (None, Replay::Stored) => bayeux::ALL_RETAINED,
            };
            match self.stream.subscribe(self.sessions, channel, from) {
                Err(Failure::Refused(Refusal::InvalidReplay { .. })) => {
                    warn!(
                        "streaming: {channel}: the stored position {from} is older than what the \
                         org keeps (72 hours): commands published while this device was away \
                         that long are lost; subscribing to everything retained (-2), and no \
                         command that already ran runs again"
                    );
                    self.stream
                        .subscribe(self.sessions, channel, bayeux::ALL_RETAINED)?;
                }
                other => other?,
            }
            debug!("streaming: subscribed to {channel} from {from}");
        }
        if let Some(doorbell) = self.doorbell {
            self.stream
                .subscribe(self.sessions, &doorbell.channel, bayeux::NEW_ONLY)?;
            (doorbell.subscribed)();
        }
        if let Some(turns) = &mut self.turns {
            turns.connected(self.clock.unix_time().as_secs());
        }
        self.note("connected", None);
        Ok(())
    }

    /// One held `/meta/connect`; events into the inbox (a doorbell's ring); the advice obeyed.
    fn connect(&mut self) -> Result<(), Failure> {
        let mut parsed = self.stream.connect(self.sessions)?;
        if let Some(doorbell) = self.doorbell {
            parsed.events.retain(|e| {
                let rings = e.channel == doorbell.channel;
                if rings {
                    (doorbell.ring)(e);
                }
                !rings
            });
        }
        if let (Some(inbox), false) = (self.inbox, parsed.events.is_empty()) {
            let now = self.clock.unix_time().as_secs();
            let (accepted, full) = {
                let mut inbox = super::lock(inbox);
                let accepted = inbox.accept(&parsed.events, now, self.ours);
                let none = matches!(&accepted, Ok(a) if a.new + a.skipped == 0 && a.left > 0);
                (accepted, none.then(|| inbox.full()))
            };
            // Not stored, so not received: the org sends it again after the next handshake,
            // from the stored position. A storage failure backs off like a network one.
            let a = accepted.map_err(|e| Failure::Transient(format!("the inbox: {e}")))?;
            debug!(
                "streaming: {} event(s): {} new, {} already known or not ours, {} left for \
                 want of room",
                parsed.events.len(),
                a.new,
                a.skipped,
                a.left
            );
            if a.new + a.skipped > 0 {
                super::lock(self.shared).last_event_at = Some(now);
            }
            if a.new > 0 {
                self.bell.ring();
            }
            if a.left > 0 {
                self.stream.reset();
                if let Some(why) = full {
                    // Nothing fitted: room comes only as the commands waiting run.
                    warn!("streaming: {why}");
                    self.note("inbox full", Some(why));
                    self.room.wait_at_most(FULL_WAIT);
                }
                return Ok(());
            }
        }
        if parsed.cut {
            // The rest of a reply longer than the stream reads was never read: the next
            // subscription resumes after the last event taken, and it comes again.
            self.stream.reset();
            return Ok(());
        }
        let advice = parsed
            .meta_on("/meta/connect")
            .map(|m| m.advice)
            .unwrap_or_default();
        match advice.reconnect {
            Some(Reconnect::Handshake) => self.stream.reset(),
            Some(Reconnect::None) => return Err(Failure::Refused(Refusal::Session)),
            _ => {
                if let Some(ms) = advice.interval_ms.filter(|ms| *ms > 0)
                    && self.stop.sleep(Duration::from_millis(ms))
                {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Waits before the next attempt, longer after each failure in a row.
    fn back_off(&mut self, failures: &mut u32, failure: Failure) {
        let why = match &failure {
            Failure::Refused(refusal) => refusal.describe(),
            Failure::Transient(text) => text.clone(),
            Failure::Fatal(e) => e.message().to_string(),
        };
        *failures += 1;
        // A device owed its turn keeps trying about once per ON, so that a crowded slot
        // costs it a wait, not the period.
        let cap = self.turns.map_or(BACKOFF_CAP, |t| {
            t.duty().on.clamp(BACKOFF_BASE, BACKOFF_CAP)
        });
        let delay = self.jitter.retry_delay(BACKOFF_BASE, *failures, cap);
        let fatal = matches!(&failure, Failure::Fatal(e) if e.kind() == ErrorKind::RepairNeeded);
        warn!(
            "streaming: {why}; trying again in {} s{}",
            delay.as_secs(),
            if fatal {
                " (the pairing must be renewed)"
            } else {
                ""
            }
        );
        self.note("backing off", Some(why));
        self.nudge.wait_at_most(delay);
    }

    fn note(&self, state: &'static str, error: Option<String>) {
        let mut shared = super::lock(self.shared);
        shared.state = state;
        if let Some(e) = error {
            shared.last_error = Some(e);
        }
    }
}
