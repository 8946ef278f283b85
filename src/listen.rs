//! The org talks to the device: commands published as platform events (an admin, a Flow or Apex
//! publishes `Device_Command__e`), received over the Streaming API, each run to completion at
//! most once, with its result sent back through the outbox. `sfpair listen` runs it in the
//! foreground; `sfpair run --listen` beside the broker. docs/listen.md has the whole story.
//!
//! Two threads share the inbox: the receiver (`receive.rs`: keeps a Bayeux client subscribed,
//! stores what arrives) and the worker (`work.rs`: runs each event's program, records the
//! outcome, queues the result). The parts: `bayeux.rs` (the messages, pure), `stream.rs` (one
//! client over HTTP), `inbox.rs` (durable, once), `runner.rs` (`--exec`), `duty.rs`
//! (`--listen-duty`).
//!
//! The transport is a seam: the receiver takes events from a [`Stream`]; a Pub/Sub API client
//! (gRPC over HTTP/2, not built) would be another source behind the same inbox and worker.

pub mod bayeux;
pub mod duty;
pub mod inbox;
mod receive;
pub mod runner;
pub mod stream;
mod work;

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};

use crate::call::Caller;
use crate::error::Error;
use crate::flow::backoff::Jitter;
use crate::http::{HttpConfig, UreqTransport};
use crate::outbox::Outbox;
use crate::stop::{Bell, Stop};
use crate::time::Clock;
use bayeux::Delivered;
use duty::Duty;
use inbox::Inbox;
use runner::Exec;
use stream::Stream;

/// Where to start a channel that has no stored position (`--replay`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replay {
    /// The stored position; with none, everything the org retains (`-2`), so a device that
    /// has received nothing yet loses nothing published before its first event.
    Stored,
    /// The stored position; with none, only what is published from now on (`-1`).
    New,
    /// Everything retained (`-2`) at every subscription (what already ran is not run again).
    All,
}

impl Replay {
    /// `stored`, `new` or `all`.
    pub fn from_name(name: &str) -> Option<Replay> {
        match name.trim() {
            "stored" => Some(Replay::Stored),
            "new" => Some(Replay::New),
            "all" => Some(Replay::All),
            _ => None,
        }
    }
}

/// What to listen to and what to do.
#[derive(Clone, Debug)]
pub struct Options {
    /// Channels as Salesforce writes them (`/event/Device_Command__e`).
    pub channels: Vec<String>,
    /// `--match FIELD=VALUE`: all must hold for an event to be acted on.
    pub matches: Vec<(String, String)>,
    /// `--exec`: what to run for each event; `None` prints each as a JSON line.
    pub exec: Option<Exec>,
    /// `--replay`: where a channel with no stored position starts.
    pub replay: Replay,
    /// `--results SOBJECT`: one record per acted-on event, upserted by `Event_Uuid__c`.
    pub results: Option<String>,
    /// `--expires-field FIELD`: a datetime in the payload past which the event is not run.
    pub expires_field: Option<String>,
    /// `--listen-duty`.
    pub duty: Option<Duty>,
    /// The inbox's directory and size limit.
    pub inbox: PathBuf,
    /// `--inbox-max-bytes`.
    pub inbox_max_bytes: u64,
    /// The Streaming API's version (`62.0`).
    pub api_version: String,
    /// How to reach the org (the stream's own connection gets a longer read timeout).
    pub http: HttpConfig,
}

/// A channel whose events only wake someone (`run --desired`: a change event for the
/// device's record means "read it again"): never stored, never run, subscribed from `-1`.
pub struct Doorbell<'a> {
    /// The channel (`/data/Device__ChangeEvent`).
    pub channel: String,
    /// Called with each event on it.
    pub ring: &'a (dyn Fn(&Delivered) + Sync),
    /// Called after each (re)subscription: events may have been missed meanwhile.
    pub subscribed: &'a (dyn Fn() + Sync),
}

/// The read timeout of the stream's connection: above the 110 s Salesforce holds a connect.
pub const STREAM_READ_TIMEOUT: Duration = Duration::from_secs(140);

/// A connect reply carries every event the org queued for the client, each up to 1 MB: the
/// stream reads this much of a reply (an event of 1 MB and room around it); of a longer reply
/// it takes the whole messages read, and the rest comes again from the stored position. A
/// reply read whole or not at all would leave a device with a large enough backlog deaf for
/// ever; more at a time would cost memory (each byte read is held about four times over while
/// it is parsed and stored), and catching up takes a handshake per 2 MiB.
pub const REPLY_LIMIT: u64 = 2 * 1024 * 1024;

impl Options {
    /// A listener with no command channels, for a doorbell only (`run --desired` without
    /// `--listen`): no inbox is opened, nothing is run.
    pub fn doorbell_only(api_version: &str, http: &HttpConfig) -> Options {
        Options {
            channels: Vec::new(),
            matches: Vec::new(),
            exec: None,
            replay: Replay::New,
            results: None,
            expires_field: None,
            duty: None,
            inbox: PathBuf::new(),
            inbox_max_bytes: 0,
            api_version: api_version.to_string(),
            http: http.clone(),
        }
    }
}

/// What a running listener is connected to.
pub struct Hookup<'a> {
    /// Where sessions come from (an agent, or `run`'s shared one).
    pub sessions: &'a mut (dyn Caller + Send),
    /// The outbox the results are queued in (`--results`).
    pub results: Option<&'a Mutex<Outbox>>,
    /// Called after each batch of results (`listen` delivers them then; `run`'s delivery
    /// thread sees the outbox change by itself).
    pub after_results: &'a (dyn Fn() + Sync),
    /// Where events go as JSON lines without `--exec`.
    pub out: &'a Mutex<dyn Write + Send + 'a>,
    /// The wall clock (positions, expiry, the duty cycle).
    pub clock: &'a (dyn Clock + Sync),
    /// For the backoff's jitter.
    pub seed: u64,
    /// A channel whose events only ring (`run --desired`'s change events).
    pub doorbell: Option<&'a Doorbell<'a>>,
    /// Rung when trying again at once makes sense (`run` stored a new pairing): a receiver
    /// backing off goes on without waiting out its delay.
    pub nudge: Option<&'a Bell>,
    /// Ends everything: the held connect, a running program, the waits.
    pub stop: &'a Stop,
}

/// The disconnect after a stop gets this long to connect and this long for its answer: the
/// stop as a whole has 2 s (docs/run.md, "Stopping").
const FAREWELL_TIMEOUT: Duration = Duration::from_millis(700);

/// What the listener is doing, for health and `doctor`.
#[derive(Clone, Debug, Default)]
pub struct Shared {
    /// `connecting`, `connected`, `backing off`, `waiting for its window`, `inbox full`,
    /// `stopped`.
    pub state: &'static str,
    /// When the last event arrived (seconds since the epoch).
    pub last_event_at: Option<u64>,
    /// The last error, as said in the log.
    pub last_error: Option<String>,
    /// The last command that finished: its id, how, when.
    pub last_command: Option<(String, &'static str, u64)>,
}

/// Locks, whatever a panicking holder left.
fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether every `--match FIELD=VALUE` holds for the event's payload: the field is a string
/// equal to VALUE, or a number or boolean written as VALUE.
pub fn matches(event: &Delivered, rules: &[(String, String)]) -> bool {
    if rules.is_empty() {
        return true;
    }
    let Ok(payload) = serde_json::from_str::<Value>(&event.payload) else {
        return false;
    };
    rules.iter().all(|(field, want)| match payload.get(field) {
        Some(Value::String(s)) => s == want,
        Some(Value::Number(n)) => n.to_string() == want.as_str(),
        Some(Value::Bool(b)) => {
            if *b {
                want == "true"
            } else {
                want == "false"
            }
        }
        _ => false,
    })
}

/// The listener's health: its state, the stored positions, the inbox's depth and counts.
pub fn health(shared: &Shared, inbox: Option<&inbox::Figures>) -> Value {
    let mut v = json!({
        "state": shared.state,
        "last_event_at": shared.last_event_at,
        "last_error": shared.last_error,
        "last_command": shared.last_command.as_ref().map(|(u, s, at)| json!({
            "event_uuid": u, "status": s, "at": at,
        })),
    });
    if let Some(f) = inbox {
        v["positions"] = json!(f.positions);
        v["inbox"] = json!({
            "pending": f.pending, "done": f.done, "failed": f.failed,
            "bytes": f.bytes, "max_bytes": f.max_bytes,
        });
    }
    v
}

/// The listener's running parts, for `listen` and `run --listen`.
pub struct Listener {
    /// What to listen to and what to do.
    pub options: Options,
    /// The inbox, shared by the receiver and the worker; `None` without command channels
    /// (`run --desired` alone listens for its doorbell only).
    pub inbox: Option<Arc<Mutex<Inbox>>>,
    /// What it is doing, for health.
    pub shared: Arc<Mutex<Shared>>,
}

impl Listener {
    /// Opens the inbox (one listener per inbox), when there are command channels.
    pub fn open(options: Options) -> Result<Listener, Error> {
        let inbox = match options.channels.is_empty() {
            true => None,
            false => Some(Arc::new(Mutex::new(Inbox::open(
                &options.inbox,
                options.inbox_max_bytes,
            )?))),
        };
        Ok(Listener {
            options,
            inbox,
            shared: Arc::new(Mutex::new(Shared {
                state: "starting",
                ..Shared::default()
            })),
        })
    }

    /// The health answer's part for the listener.
    pub fn health(&self) -> Value {
        let figures = self.inbox.as_ref().map(|inbox| lock(inbox).figures());
        health(&lock(&self.shared), figures.as_ref())
    }

    /// Receives and works until `hookup.stop`: the receiver on this thread, the worker (when
    /// there are command channels) on another.
    pub fn run(&self, hookup: Hookup<'_>) -> Result<(), Error> {
        let Hookup {
            sessions,
            results,
            after_results,
            out,
            clock,
            seed,
            doorbell,
            nudge,
            stop,
        } = hookup;
        let http = HttpConfig {
            read_timeout: STREAM_READ_TIMEOUT,
            ..self.options.http.clone()
        };
        let transport = UreqTransport::new(&http)?;
        // A stop ends the held connect at once instead of after the server's hold.
        let interrupter = transport.interrupter();
        stop.on_stop(move || interrupter.interrupt());
        let farewell = HttpConfig {
            connect_timeout: FAREWELL_TIMEOUT,
            read_timeout: FAREWELL_TIMEOUT,
            ..self.options.http.clone()
        };
        let bell = Bell::new(stop);
        let room = Bell::new(stop);
        let quiet = Bell::new(stop);
        let rules = self.options.matches.clone();
        let ours = move |e: &Delivered| matches(e, &rules);
        let identity = self
            .options
            .inbox
            .canonicalize()
            .unwrap_or_else(|_| self.options.inbox.clone())
            .display()
            .to_string();
        let turns = self
            .options
            .duty
            .map(|d| duty::Turns::new(d, d.offset(&identity), clock.unix_time().as_secs()));
        let inbox = self.inbox.as_deref();
        std::thread::scope(|scope| {
            let worker = std::thread::Builder::new()
                .name("sfpair-listen-work".into())
                .stack_size(crate::http::THREAD_STACK);
            let started = worker.spawn_scoped(scope, || {
                let Some(inbox) = inbox else { return };
                work::Worker {
                    inbox,
                    exec: self.options.exec.as_ref(),
                    out,
                    results: self.options.results.as_deref().zip(results),
                    after_results,
                    expires_field: self.options.expires_field.as_deref(),
                    bell: &bell,
                    room: &room,
                    shared: &self.shared,
                    clock,
                    stop,
                }
                .run();
            });
            if let Err(e) = started {
                return Err(Error::config(format!(
                    "cannot start the listener's worker thread: {e}"
                )));
            }
            receive::Receiver {
                stream: Stream::new(Box::new(transport), &self.options.api_version, REPLY_LIMIT),
                sessions,
                inbox,
                channels: &self.options.channels,
                doorbell,
                replay: self.options.replay,
                turns,
                ours: &ours,
                bell: &bell,
                room: &room,
                shared: &self.shared,
                clock,
                stop,
                jitter: Jitter::new(seed),
                farewell: &farewell,
                nudge: nudge.unwrap_or(&quiet),
            }
            .run();
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(payload: &str) -> Delivered {
        Delivered {
            channel: "/event/Device_Command__e".into(),
            replay_id: 1,
            uuid: Some("u".into()),
            payload: payload.into(),
        }
    }

    #[test]
    fn every_match_must_hold_on_strings_numbers_and_booleans() {
        let rules = |r: &[(&str, &str)]| -> Vec<(String, String)> {
            r.iter()
                .map(|(f, v)| (f.to_string(), v.to_string()))
                .collect()
        };
        let e = event(r#"{"Device_Id__c":"GW-1","Zone__c":7,"Urgent__c":true}"#);
        assert!(matches(&e, &[]));
        assert!(matches(&e, &rules(&[("Device_Id__c", "GW-1")])));
        assert!(matches(
            &e,
            &rules(&[("Device_Id__c", "GW-1"), ("Zone__c", "7")])
        ));
        assert!(matches(&e, &rules(&[("Urgent__c", "true")])));
        assert!(!matches(&e, &rules(&[("Device_Id__c", "GW-2")])));
        assert!(!matches(
            &e,
            &rules(&[("Device_Id__c", "GW-1"), ("Zone__c", "8")])
        ));
        assert!(!matches(&e, &rules(&[("Missing__c", "x")])));
        assert!(!matches(&event("not json"), &rules(&[("A__c", "x")])));
    }
}
