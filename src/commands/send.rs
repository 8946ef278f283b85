//! `sfpair send`: checks the records (`outbox::input`), appends them to the outbox, and exits 0
//! only once they are on stable storage. No network and no pairing are needed: delivery is
//! `sfpair run`'s or `sfpair outbox flush`'s.

use std::io::Write;

use super::call::Body;
use super::outbox::Place;
use super::report;
use crate::error::Error;
use crate::outbox::{Target, input};
use crate::sanitize;
use crate::time::{Clock, SystemClock};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub place: Place,
    pub target: Target,
    pub auto_id: bool,
    /// `--data`; standard input when not given.
    pub data: Body,
    pub json: bool,
    /// `--socket`: hand the records to the running agent (`sfpair run`) instead of writing
    /// the outbox here.
    pub socket: Option<std::path::PathBuf>,
}

pub fn run(options: &Options, out: &mut dyn Write) -> Result<u8, Error> {
    let bytes = options.data.read()?.unwrap_or_default();
    let text = String::from_utf8(bytes)
        .map_err(|_| Error::config("the data is not UTF-8 text: give JSON"))?;
    let records = input::records(
        &text,
        &options.target,
        options.auto_id,
        crate::outbox::DEFAULT_MAX_RECORD,
    )?;
    let (receipt, by) = match &options.socket {
        Some(socket) => (
            through_broker(options, socket, &records)?,
            format!("by the agent at {}", socket.display()),
        ),
        None => {
            let mut outbox = options.place.open()?;
            let pushed = outbox.push(records, SystemClock::new().unix_time().as_secs())?;
            (
                crate::outbox::place::receipt(&pushed),
                format!("in {}", outbox.dir().display()),
            )
        }
    };
    if options.json {
        report(out, sanitize::json_line(&receipt));
    } else {
        report(
            out,
            format!(
                "{} record(s) queued {by} ({} waiting for delivery)",
                receipt["queued"], receipt["outbox_queued"]
            ),
        );
    }
    Ok(0)
}

/// The checked records, to the agent at `--socket`; its receipt.
#[cfg(feature = "broker")]
fn through_broker(
    options: &Options,
    socket: &std::path::Path,
    records: &[crate::outbox::NewRecord],
) -> Result<serde_json::Value, Error> {
    use crate::broker::{client::Broker, protocol::SendAsk};
    use crate::outbox::Target;
    let mut array = String::from("[");
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            array.push(',');
        }
        array.push_str(&r.json);
    }
    array.push(']');
    let (sobject, external_id, event) = match &options.target {
        Target::Upsert { object, field } => (Some(object.clone()), Some(field.clone()), None),
        Target::Event { object } => (None, None, Some(object.clone())),
    };
    Broker::new(socket).send(SendAsk {
        sobject,
        external_id,
        event,
        auto_id: options.auto_id,
        records: array,
    })
}

#[cfg(not(feature = "broker"))]
fn through_broker(
    _: &Options,
    _: &std::path::Path,
    _: &[crate::outbox::NewRecord],
) -> Result<serde_json::Value, Error> {
    Err(super::not_built(
        "sfpair send --socket",
        "the token broker",
        "broker",
    ))
}
