//! `sfpair asset-token`: the asset token flow. The current session (of any flow) and an actor
//! token about this device are exchanged for an asset token, printed on standard output (with
//! `--json`, the whole reply). Nothing is stored: the asset token is short-lived, and is for
//! the device's own backend, not for Salesforce REST.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use super::say;
use crate::agent::Agent;
use crate::error::Error;
use crate::headless::grant;
use crate::jwt::DeviceClaims;

#[derive(Clone, Debug)]
pub struct Options {
    pub device: DeviceClaims,
    /// The device's RSA key: its public half goes into the actor token, which it signs.
    pub device_key: Option<PathBuf>,
    pub json: bool,
}

pub fn run(
    agent: &mut Agent,
    options: &Options,
    wait_for_clock: Duration,
    out: &mut dyn Write,
) -> Result<u8, Error> {
    agent.stored()?;
    agent.wait_for_clock(wait_for_clock)?;
    let reply = agent.asset_token(&options.device, options.device_key.as_deref())?;
    if options.json {
        // The one JSON output path: C1, bidi and zero-width characters escaped.
        say(
            out,
            zeroize::Zeroizing::new(crate::sanitize::json_line(&reply)).as_str(),
        )?;
    } else {
        say(out, grant::asset_token(&reply).expose())?;
    }
    Ok(0)
}
