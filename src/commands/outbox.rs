//! `sfpair outbox flush|status|retry-dead`, and where the outbox is ([`Place`]), shared with
//! `send` and `run`.
//!
//! `flush` is delivery in one shot (`delivery::flush`) with the paired agent; `status`
//! and `retry-dead` only read and rewrite the outbox, so they work without a pairing and
//! without a network. Nothing here prints a token; dead letters print the server's error and
//! the record's sObject and external id, not its other fields.

use std::io::Write;

use serde_json::json;

use super::{Backends, report, say};
use crate::delivery::{self, Flushed};
use crate::error::Error;
pub use crate::outbox::place::Place;
use crate::outbox::{DeadLetter, Outbox, QueueStatus, Target};
use crate::sanitize;
use crate::time::{Clock, SystemClock};

/// Dead letters `status` lists (the count is always whole).
const SHOWN_DEAD: usize = 20;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Flush(delivery::Options),
    Status { json: bool },
    RetryDead,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub place: Place,
    pub action: Action,
}

/// Runs the action; only `flush` builds the agent (and so opens the store).
pub fn run(options: &Options, backends: &Backends, out: &mut dyn Write) -> Result<u8, Error> {
    let now = || SystemClock::new().unix_time().as_secs();
    match &options.action {
        Action::Status { json } => status(&mut options.place.open()?, *json, now(), out),
        Action::RetryDead => {
            let n = options.place.open()?.retry_dead(now())?;
            report(out, format!("{n} dead letter(s) queued again"));
            Ok(0)
        }
        Action::Flush(delivery) => {
            let mut agent = backends.agent()?;
            agent.wait_for_clock(backends.wait_for_clock)?;
            let flushed = delivery::flush(
                &mut options.place.open()?,
                &mut agent,
                delivery.clone(),
                &mut || SystemClock::new().unix_time().as_secs(),
                &mut std::thread::sleep,
                crate::agent::random_seed(),
            )?;
            report(out, summary(&flushed));
            Ok(0)
        }
    }
}

fn summary(f: &Flushed) -> String {
    let mut s = format!("outbox empty: {} record(s) delivered", f.delivered);
    if f.dead > 0 {
        s.push_str(&format!(
            ", {} moved to the dead letters (see `sfpair outbox status`)",
            f.dead
        ));
    }
    if f.retries > 0 {
        s.push_str(&format!(", {} request(s) sent again", f.retries));
    }
    s
}

fn status(outbox: &mut Outbox, json: bool, now: u64, out: &mut dyn Write) -> Result<u8, Error> {
    let s = outbox.status()?;
    let dead = outbox.dead_letters(SHOWN_DEAD)?;
    if json {
        say(
            out,
            sanitize::json_line(&status_json(&s, &dead, now, outbox)),
        )?;
        return Ok(0);
    }
    let age = s
        .oldest_queued_at
        .map(|t| format!(", the oldest {} old", age_words(now.saturating_sub(t))))
        .unwrap_or_default();
    say(
        out,
        format!(
            "outbox {}: {} record(s) queued, {} of {} bytes{age}; {} delivered; {} dead letter(s)",
            outbox.dir().display(),
            s.queued,
            s.queued_bytes,
            s.max_bytes,
            s.delivered,
            s.dead
        ),
    )?;
    for d in &dead {
        say(
            out,
            format!(
                "  dead: {} {}: {}",
                target_words(&d.target),
                key_of(d),
                d.error
            ),
        )?;
    }
    if s.dead as usize > dead.len() {
        say(
            out,
            format!("  … and {} more", s.dead as usize - dead.len()),
        )?;
    }
    if s.dead > 0 {
        say(
            out,
            "fix the org (add the field, grant the permission), then `sfpair outbox retry-dead`",
        )?;
    }
    Ok(0)
}

fn status_json(
    s: &QueueStatus,
    dead: &[DeadLetter],
    now: u64,
    outbox: &Outbox,
) -> serde_json::Value {
    let mut v = s.figures(now);
    v["dir"] = json!(outbox.dir().display().to_string());
    v["dead_letters"] = dead
        .iter()
        .map(|d| {
            let (object, field) = match &d.target {
                Target::Upsert { object, field } => (object.as_str(), Some(field.as_str())),
                Target::Event { object } => (object.as_str(), None),
            };
            json!({
                "seq": d.seq,
                "sobject": object,
                "external_id_field": field,
                "external_id": field.and_then(|f| external_id(&d.json, f)),
                "error": d.error,
                "at": d.at,
            })
        })
        .collect();
    v
}

fn target_words(t: &Target) -> String {
    match t {
        Target::Upsert { object, field } => format!("{object} by {field}"),
        Target::Event { object } => format!("event {object}"),
    }
}

fn key_of(d: &DeadLetter) -> String {
    match &d.target {
        Target::Upsert { field, .. } => external_id(&d.json, field)
            .map(|k| format!("{field}={}", sanitize::text(&k)))
            .unwrap_or_else(|| format!("record {}", d.seq)),
        Target::Event { .. } => format!("record {}", d.seq),
    }
}

fn external_id(json: &str, field: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    v.get(field)?.as_str().map(str::to_string)
}

fn age_words(secs: u64) -> String {
    match secs {
        0..=119 => format!("{secs} s"),
        120..=7199 => format!("{} min", secs / 60),
        7200..=172_799 => format!("{} h", secs / 3600),
        _ => format!("{} days", secs / 86_400),
    }
}
