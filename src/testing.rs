//! Public test doubles: a fake clock, a scripted transport and an in-memory store.
//!
//! They are part of the crate's API (like embedded-graphics' `MockDisplay`) so firmware that
//! embeds sfpair can test its own code against them. Handles are cheap clones that share state,
//! so a test keeps one to inspect what the agent did with the other. Only for tests of logic:
//! the integration tests use the real binary, real TLS and real files.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::error::Error;
use crate::http::Transport;
use crate::store::record;
use crate::store::{Loaded, Record, TokenStore};
use crate::time::{Clock, Instant};
use crate::wire::{Reply, Request, TransportError, TransportErrorKind};

/// An in-memory flash chip that loses power on demand, and the power-cut sweep.
#[cfg(feature = "flash")]
mod flash;
#[cfg(feature = "flash")]
pub use self::flash::{
    NorFlash, Open, Step, StepFigures, Sweep, Torn, sweep_power_cuts, sweep_power_cuts_with,
};

/// `unwrap_err` for tests that also checks the error's message is fit for people
/// ([`text::is_clean`](crate::text::is_clean): no double spaces, no control characters).
pub trait CleanErr {
    /// The error, after checking its message; panics on `Ok` or on a message with holes.
    fn clean_err(self) -> Error;
}

impl<T: core::fmt::Debug> CleanErr for Result<T, Error> {
    #[track_caller]
    fn clean_err(self) -> Error {
        let e = self.unwrap_err();
        assert!(
            crate::text::is_clean(e.message()),
            "the message has a double space or a control character: {:?}",
            e.message()
        );
        e
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Debug)]
struct ClockState {
    now: Instant,
    unix_at_zero: Duration,
    /// A wall-clock step (as NTP makes it): from this instant on, the wall clock reads the
    /// given time plus what elapsed since.
    step: Option<(Instant, Duration)>,
    sleeps: Vec<Duration>,
}

/// A clock that only moves when the code under test sleeps (or the test advances it).
#[derive(Clone, Debug)]
pub struct FakeClock(Arc<Mutex<ClockState>>);

impl FakeClock {
    /// Starts at monotonic zero and at `unix` on the wall clock.
    pub fn new(unix: Duration) -> Self {
        FakeClock(Arc::new(Mutex::new(ClockState {
            now: Instant::ZERO,
            unix_at_zero: unix,
            step: None,
            sleeps: Vec::new(),
        })))
    }

    /// Moves the clock `d` ahead.
    pub fn advance(&self, d: Duration) {
        let mut s = lock(&self.0);
        s.now = s.now + d;
    }

    /// Makes the wall clock jump to `to` at monotonic instant `at`, like an NTP step.
    pub fn step_unix_at(&self, at: Instant, to: Duration) {
        lock(&self.0).step = Some((at, to));
    }

    /// Every sleep the code under test asked for, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        lock(&self.0).sleeps.clone()
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Instant {
        lock(&self.0).now
    }

    fn sleep(&self, d: Duration) {
        let mut s = lock(&self.0);
        s.sleeps.push(d);
        s.now = s.now + d;
    }

    fn unix_time(&self) -> Duration {
        let s = lock(&self.0);
        match s.step {
            Some((at, to)) if s.now >= at => to + s.now.saturating_since(at),
            _ => s.unix_at_zero + s.now.since_origin(),
        }
    }
}

type Responder = Box<dyn FnMut(&Request) -> Result<Reply, TransportError> + Send>;

struct Script {
    queue: VecDeque<Result<Reply, TransportError>>,
    responder: Option<Responder>,
    sent: Vec<(Instant, Request)>,
}

/// A transport that answers from a queue, then from a responder function, and records every
/// request with the fake time it was sent at.
#[derive(Clone)]
pub struct ScriptedTransport {
    script: Arc<Mutex<Script>>,
    clock: Option<FakeClock>,
}

impl ScriptedTransport {
    /// A transport with nothing scripted yet.
    pub fn new() -> Self {
        ScriptedTransport {
            script: Arc::new(Mutex::new(Script {
                queue: VecDeque::new(),
                responder: None,
                sent: Vec::new(),
            })),
            clock: None,
        }
    }

    /// Stamps each request with this clock's time.
    pub fn with_clock(mut self, clock: &FakeClock) -> Self {
        self.clock = Some(clock.clone());
        self
    }

    /// Scripts the next reply (or failure).
    pub fn push(&self, outcome: Result<Reply, TransportError>) -> &Self {
        lock(&self.script).queue.push_back(outcome);
        self
    }

    /// Scripts the next reply: `status` with a JSON body.
    pub fn push_json(&self, status: u16, body: &str) -> &Self {
        self.push(Ok(Reply::json(status, body)))
    }

    /// Scripts the next request to fail with `kind`.
    pub fn push_failure(&self, kind: TransportErrorKind) -> &Self {
        self.push(Err(TransportError::new(
            kind,
            "test.invalid: scripted failure",
        )))
    }

    /// Answers requests once the queue is empty.
    pub fn respond(
        &self,
        f: impl FnMut(&Request) -> Result<Reply, TransportError> + Send + 'static,
    ) {
        lock(&self.script).responder = Some(Box::new(f));
    }

    /// Every request sent so far, with its send time.
    pub fn sent(&self) -> Vec<(Instant, Request)> {
        lock(&self.script).sent.clone()
    }
}

impl Default for ScriptedTransport {
    fn default() -> Self {
        ScriptedTransport::new()
    }
}

impl Transport for ScriptedTransport {
    fn send(&mut self, request: &Request) -> Result<Reply, TransportError> {
        let at = self.clock.as_ref().map(|c| c.now()).unwrap_or_default();
        let mut script = lock(&self.script);
        script.sent.push((at, request.clone()));
        if let Some(next) = script.queue.pop_front() {
            return next;
        }
        match script.responder.as_mut() {
            Some(f) => f(request),
            None => Err(TransportError::new(
                TransportErrorKind::Refused,
                "test.invalid: the script has no reply for this request",
            )),
        }
    }
}

#[derive(Debug, Default)]
struct Memory {
    bytes: Option<Vec<u8>>,
    saves: usize,
    fail_saves: bool,
}

/// A store in memory that keeps the encoded bytes, like a real backend.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore(Arc<Mutex<Memory>>);

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    /// Makes every later `save` fail with a storage error.
    pub fn fail_saves(&self, fail: bool) {
        lock(&self.0).fail_saves = fail;
    }

    /// Replaces the stored bytes (to simulate corruption).
    pub fn set_bytes(&self, bytes: Option<Vec<u8>>) {
        lock(&self.0).bytes = bytes;
    }

    /// The record's bytes, as stored.
    pub fn bytes(&self) -> Option<Vec<u8>> {
        lock(&self.0).bytes.clone()
    }

    /// How many saves were made.
    pub fn saves(&self) -> usize {
        lock(&self.0).saves
    }
}

impl TokenStore for MemoryStore {
    fn load(&mut self) -> Result<Loaded, Error> {
        Ok(match &lock(&self.0).bytes {
            None => Loaded::Empty,
            Some(bytes) => match record::decode(bytes) {
                Ok(d) => Loaded::Paired(d.record),
                Err(e) => Loaded::Corrupt(e.to_string()),
            },
        })
    }

    fn save(&mut self, record: &Record) -> Result<(), Error> {
        let mut m = lock(&self.0);
        if m.fail_saves {
            return Err(Error::storage("memory store: scripted save failure"));
        }
        let bytes = record::to_bytes(record, 0).map_err(|e| Error::storage(e.to_string()))?;
        m.bytes = Some(bytes.to_vec());
        m.saves += 1;
        Ok(())
    }

    fn wipe(&mut self) -> Result<(), Error> {
        lock(&self.0).bytes = None;
        Ok(())
    }

    fn describe(&self) -> String {
        "memory".into()
    }
}

/// A presenter that keeps every event, for assertions.
#[derive(Clone, Debug, Default)]
pub struct EventLog(Arc<Mutex<Vec<crate::event::Event>>>);

impl EventLog {
    /// An empty log.
    pub fn new() -> Self {
        EventLog::default()
    }

    /// The events shown so far.
    pub fn events(&self) -> Vec<crate::event::Event> {
        lock(&self.0).clone()
    }
}

impl crate::present::Presenter for EventLog {
    fn show(&mut self, event: &crate::event::Event) {
        lock(&self.0).push(event.clone());
    }
}

/// A code to show, built from its one-tap URL (`…/setup/connect?user_code=CODE[&…]`): code 1 of
/// 3, valid 600 s, polled every 5 s. For tests and examples that draw screens.
pub fn shown_code(one_tap_uri: &str) -> crate::event::ShownCode {
    let (verification_uri, query) = one_tap_uri.split_once('?').unwrap_or((one_tap_uri, ""));
    let user_code = query
        .split('&')
        .find_map(|p| p.strip_prefix("user_code="))
        .unwrap_or_default();
    crate::event::ShownCode {
        user_code: user_code.into(),
        verification_uri: verification_uri.into(),
        one_tap_uri: one_tap_uri.into(),
        expires_in: Duration::from_secs(600),
        interval: Duration::from_secs(5),
        number: 1,
        max_codes: 3,
    }
}
