//! `sfpair send`: checks the records (`outbox::input`), appends them to the outbox, and exits 0
//! only once they are on stable storage. No network and no pairing are needed: delivery is
//! `sfpair run`'s or `sfpair outbox flush`'s.

use std::io::Write;

use serde_json::json;

use super::call::Body;
use super::outbox::Place;
use super::say;
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
    let mut outbox = options.place.open()?;
    let pushed = outbox.push(records, SystemClock::new().unix_time().as_secs())?;
    if options.json {
        say(
            out,
            sanitize::json_line(&json!({
                "queued": pushed.count,
                "first_seq": pushed.first_seq,
                "outbox_queued": pushed.queued,
            })),
        )?;
    } else {
        say(
            out,
            format!(
                "{} record(s) queued in {} ({} waiting for delivery)",
                pushed.count,
                outbox.dir().display(),
                pushed.queued
            ),
        )?;
    }
    Ok(0)
}
