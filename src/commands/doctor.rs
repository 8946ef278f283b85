//! `sfpair doctor`: placeholder while it is written.
use std::io::Write;

use crate::commands::Backends;
use crate::error::Error;
use crate::flow::dialect::{Dialect, Endpoints};
use crate::present::spec::Display;

/// What the doctor checks against.
#[derive(Clone, Debug)]
pub struct Options {
    pub json: bool,
    pub dialect: Dialect,
    pub login_url: String,
    pub endpoints: Endpoints,
    pub scope: String,
    pub displays: Vec<Display>,
}

pub fn run(_options: &Options, _backends: &Backends, _out: &mut dyn Write) -> Result<u8, Error> {
    Err(Error::config("sfpair doctor is not written yet"))
}
