//! The working side of the listener: takes the inbox's events in order and acts on each, once:
//! runs `--exec` (or prints the event as a JSON line), records how it ended, and queues its
//! result in the outbox (`--results`). An event whose `--expires-field` is past is not run.
//!
//! Order of the durable steps, so that a crash at any point runs nothing twice that finished
//! and loses nothing: `Start` (fsynced) → the run → `Done` (fsynced) → the result queued in the
//! outbox (an upsert by the event's id: queueing it twice updates one row) → `Sent`. A crash
//! during a run runs it again after the restart, with the next attempt number.

use std::io::Write;
use std::sync::{Arc, Mutex};

use log::{info, warn};

use super::inbox::{Inbox, Outcome, Pending};
use super::runner::{self, Exec, Ran};
use super::{Bell, Shared};
use crate::clock_check::{self, Verdict};
use crate::outbox::{NewRecord, Outbox, Target};
use crate::stop::Stop;
use crate::time::Clock;

/// What the worker needs.
pub struct Worker<'a> {
    pub inbox: &'a Mutex<Inbox>,
    pub exec: Option<&'a Exec>,
    /// Where event lines go without `--exec`.
    pub out: &'a Mutex<dyn Write + Send + 'a>,
    /// `--results SOBJECT` and the outbox it queues in.
    pub results: Option<(&'a str, &'a Mutex<Outbox>)>,
    /// Called after results were queued (`listen` delivers them; `run`'s delivery thread
    /// sees the outbox change by itself).
    pub after_results: &'a (dyn Fn() + Sync),
    pub expires_field: Option<&'a str>,
    pub bell: &'a Bell,
    /// Rung when the queue is drained (and the log compacted if it was mostly history): a
    /// receiver waiting for room looks again.
    pub room: &'a Bell,
    pub shared: &'a Arc<Mutex<Shared>>,
    pub clock: &'a dyn Clock,
    pub stop: &'a Stop,
}

impl Worker<'_> {
    /// Runs until the stop.
    pub fn run(self) {
        loop {
            self.queue_results();
            loop {
                let next = super::lock(self.inbox).next().cloned();
                let Some(event) = next else { break };
                if self.stop.is_stopped() || !self.act(&event) {
                    return;
                }
                self.queue_results();
            }
            let now = self.clock.unix_time().as_secs();
            if let Err(e) = super::lock(self.inbox).maybe_compact(now) {
                warn!("listen: {e}");
            }
            self.room.ring();
            if self.bell.wait() {
                return;
            }
        }
    }

    /// Acts on one event; `false` when a stop cut it (it runs again after the restart).
    fn act(&self, event: &Pending) -> bool {
        let attempt = event.attempts + 1;
        let now = self.clock.unix_time().as_secs();
        let ran = if self.expired(event, now) {
            info!(
                "command {}: expired before it could run; not run",
                event.uuid
            );
            Ran {
                status: Outcome::Expired,
                exit_code: None,
                output: String::new(),
            }
        } else {
            if let Err(e) = super::lock(self.inbox).start(&event.uuid) {
                warn!("listen: {e}; the command waits");
                return !self.stop.sleep(std::time::Duration::from_secs(30));
            }
            match self.exec {
                Some(exec) => match runner::run(exec, event, attempt, self.stop) {
                    Some(ran) => ran,
                    None => return false,
                },
                None => self.print(event),
            }
        };
        let at = self.clock.unix_time().as_secs();
        let output = self.results.is_some().then(|| ran.output.clone());
        let finished =
            super::lock(self.inbox).finish(&event.uuid, ran.status, ran.exit_code, output, at);
        if let Err(e) = finished {
            warn!("listen: {e}; the command will run again");
            return !self.stop.sleep(std::time::Duration::from_secs(30));
        }
        let mut shared = super::lock(self.shared);
        shared.last_command = Some((event.uuid.clone(), ran.status.name(), at));
        true
    }

    /// `--expires-field`: past, by a trusted clock. With a clock that cannot be trusted (before
    /// this build), the command runs, and the log says why.
    fn expired(&self, event: &Pending, now: u64) -> bool {
        let Some(field) = self.expires_field else {
            return false;
        };
        let Some(at) = serde_json::from_str::<serde_json::Value>(&event.payload)
            .ok()
            .and_then(|p| {
                p.get(field)
                    .and_then(|v| v.as_str())
                    .and_then(crate::time::parse_datetime)
            })
        else {
            return false;
        };
        if let Verdict::BeforeBuild { .. } =
            clock_check::check(self.clock.unix_time(), clock_check::BUILD_UNIX)
        {
            warn!(
                "command {}: the clock cannot be trusted (it reads before this build), so its \
                 {field} is not checked: it runs",
                event.uuid
            );
            return false;
        }
        at <= now
    }

    /// Without `--exec`: the event as one JSON line.
    fn print(&self, event: &Pending) -> Ran {
        let line = format!(
            "{{\"channel\":{},\"replay_id\":{},\"event_uuid\":{},\"payload\":{}}}",
            serde_json::to_string(&event.channel).unwrap_or_default(),
            event.replay_id,
            serde_json::to_string(&event.uuid).unwrap_or_default(),
            event.payload
        );
        let written = {
            let mut out = super::lock(self.out);
            writeln!(out, "{line}").and_then(|()| out.flush())
        };
        match written {
            Ok(()) => Ran {
                status: Outcome::Done,
                exit_code: Some(0),
                output: String::new(),
            },
            Err(e) => Ran {
                status: Outcome::Failed,
                exit_code: None,
                output: format!("the event could not be written: {e}"),
            },
        }
    }

    /// Queues the results not yet queued (also those a crash left behind).
    fn queue_results(&self) {
        let Some((sobject, outbox)) = self.results else {
            return;
        };
        let unsent = super::lock(self.inbox).unsent();
        if unsent.is_empty() {
            return;
        }
        for (uuid, finished) in unsent {
            let record = serde_json::json!({
                "Event_Uuid__c": uuid,
                "Status__c": finished.status.name(),
                "Exit_Code__c": finished.exit_code,
                "Output__c": finished.output.unwrap_or_default(),
                "Finished_At__c": crate::time::format_iso8601(finished.at),
            });
            let pushed = super::lock(outbox).push(
                vec![NewRecord {
                    target: Target::Upsert {
                        object: sobject.to_string(),
                        field: "Event_Uuid__c".to_string(),
                    },
                    json: record.to_string(),
                    auto_id: false,
                }],
                finished.at,
            );
            match pushed {
                Ok(_) => {
                    if let Err(e) = super::lock(self.inbox).sent(&uuid) {
                        warn!("listen: {e}");
                    }
                }
                Err(e) => {
                    warn!("listen: the result of {uuid} waits: {e}");
                    return;
                }
            }
        }
        (self.after_results)();
    }
}
