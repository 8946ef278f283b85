//! `sfpair serve`: the token broker, until SIGTERM or SIGINT.

use std::time::Duration;

use crate::agent::Agent;
use crate::broker::{self, ServeOptions};
use crate::error::Error;

pub type Options = ServeOptions;

pub fn run(mut agent: Agent, options: &Options, wait_for_clock: Duration) -> Result<u8, Error> {
    agent.wait_for_clock(wait_for_clock)?;
    broker::serve(agent, options)?;
    Ok(0)
}
