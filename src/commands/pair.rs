//! `sfpair pair`: the device flow on the configured displays, or a headless grant (`--flow
//! jwt-bearer|client-credentials`), unless a pairing is stored already (`--force` pairs again;
//! the old pairing is replaced only once the new one is stored).

use std::io::Write;
use std::time::Duration;

use serde_json::json;

use super::say;
use crate::agent::{Agent, Pairing};
use crate::error::Error;
use crate::present::select;
use crate::present::spec::Display;
use crate::store::Loaded;

#[derive(Clone, Debug)]
pub struct Options {
    /// The device flow or a headless grant.
    pub how: Pairing,
    /// Where the code goes; empty: the console (or only JSON lines with `json`).
    pub displays: Vec<Display>,
    /// JSON lines on standard output.
    pub json: bool,
    pub force: bool,
}

pub fn run(
    agent: &mut Agent,
    options: &Options,
    wait_for_clock: Duration,
    out: &mut dyn Write,
) -> Result<u8, Error> {
    let loaded = agent.load()?;
    let never_paired = matches!(loaded, Loaded::Empty);
    match loaded {
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
    let mut how = options.how.clone();
    if let Pairing::Device { flow, .. } = &mut how {
        // A person at a new device: a mistyped URL says so now, not after minutes of retries.
        flow.fail_fast_unreachable = never_paired;
    }
    agent.pair_by(&how)?;
    Ok(0)
}
