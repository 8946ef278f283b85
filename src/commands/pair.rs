//! `sfpair pair`: the device flow on the configured displays, or a headless grant (`--flow
//! jwt-bearer|client-credentials`), unless a pairing is stored already (`--force` pairs again;
//! the old pairing is replaced only once the new one is stored).

use std::io::Write;
use std::time::Duration;

use serde_json::json;

use super::say;
use crate::agent::{Agent, Enrolment};
use crate::error::Error;
use crate::flow::FlowConfig;
use crate::present::select;
use crate::present::spec::Display;
use crate::store::Loaded;

#[derive(Clone, Debug)]
pub struct Options {
    pub flow: FlowConfig,
    /// A headless grant instead of the device flow (`flow` is then unused); boxed, so the
    /// command stays small.
    pub enrol: Option<Box<Enrolment>>,
    /// Where the code goes; empty: the console (or only JSON lines with `json`).
    pub displays: Vec<Display>,
    /// JSON lines on standard output.
    pub json: bool,
    pub force: bool,
    /// `--issuer`: read the endpoints from this provider's metadata before pairing.
    pub issuer: Option<String>,
}

pub fn run(
    agent: &mut Agent,
    options: &Options,
    wait_for_clock: Duration,
    out: &mut dyn Write,
) -> Result<u8, Error> {
    match agent.load()? {
        Loaded::Paired(record) if !options.force => {
            if options.json {
                let line = json!({"event": "already_paired", "instance_url": record.instance_url});
                say(out, crate::sanitize::json_line(&line))?;
            } else {
                say(
                    out,
                    format!(
                        "Already paired with {} (stored in {}). Use --force to pair again, or \
                         `sfpair forget` first.",
                        record.instance_url,
                        agent.store_description()
                    ),
                )?;
            }
            return Ok(0);
        }
        // Replaced only on request: putting its seal back would open it again.
        Loaded::Unopened(reason) if !options.force => {
            return Err(crate::store::unopened(&agent.store_description(), &reason));
        }
        Loaded::Unopened(reason) => log::warn!(
            "the sealed pairing in {} cannot be opened here ({reason}); --force replaces it \
             once this pairing succeeds",
            agent.store_description()
        ),
        Loaded::Corrupt(reason) => log::warn!(
            "the stored pairing in {} is unreadable ({reason}); it stays until this pairing succeeds",
            agent.store_description()
        ),
        Loaded::Paired(_) | Loaded::Empty => {}
    }
    // Before the first handshake: a clock in 1970 makes every certificate "not yet valid".
    agent.wait_for_clock(wait_for_clock)?;
    for presenter in select::presenters(&options.displays, options.json) {
        agent.add_presenter(presenter);
    }
    match &options.enrol {
        Some(enrolment) => agent.enrol((**enrolment).clone()).map(|_| ())?,
        None => {
            let mut flow = options.flow.clone();
            if let Some(issuer) = &options.issuer {
                flow.endpoints = agent.discover(issuer)?;
            }
            agent.pair(flow).map(|_| ())?;
        }
    }
    Ok(0)
}
