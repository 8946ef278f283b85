//! `sfpair token`: a fresh access token on standard output (with `--json`, the instance too).

use std::io::Write;
use std::time::Duration;

use serde_json::json;

use super::say;
use crate::agent::Agent;
use crate::error::Error;

#[derive(Clone, Debug, Default)]
pub struct Options {
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
    let session = agent.access_token()?;
    if options.json {
        let line = json!({
            "access_token": session.access_token.expose(),
            "instance_url": session.instance_url,
        });
        say(
            out,
            zeroize::Zeroizing::new(crate::sanitize::json_line(&line)).as_str(),
        )?;
    } else {
        say(out, session.access_token.expose())?;
    }
    Ok(0)
}
