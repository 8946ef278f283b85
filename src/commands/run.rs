//! `sfpair run` (and `sfpair serve`, which is `run` without pairing): the long-running agent in
//! `service/`, with agents built from the command's backends.

use super::Backends;
use crate::agent::Agent;
use crate::error::Error;
use crate::service;

pub type Options = service::Options;

pub fn run(mut agent: Agent, backends: &Backends, options: &Options) -> Result<u8, Error> {
    agent.wait_for_clock(options.wait_for_clock)?;
    let for_pairing = backends.clone();
    service::run(
        agent,
        Box::new(move || for_pairing.agent()),
        options.clone(),
    )?;
    Ok(0)
}
