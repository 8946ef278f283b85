//! `sfpair desired`: reads the device's record once and applies it to the file (running the
//! program when it changed), then exits. The work is `desired.rs`'s.

use std::io::Write;
use std::time::Duration;

use super::report;
use crate::agent::Agent;
use crate::desired::{self, Applied};
use crate::error::Error;
use crate::stop::Stop;

/// Reads and applies once: exit 0 (whether or not it changed), 9 when the record is missing or
/// unreadable, 7 for the network.
pub fn run(
    agent: &mut Agent,
    options: &desired::Options,
    wait_for_clock: Duration,
    out: &mut dyn Write,
) -> Result<u8, Error> {
    agent.stored()?;
    agent.wait_for_clock(wait_for_clock)?;
    let (read, applied) = desired::once(agent, options, &Stop::new())?;
    let when = read.last_modified.as_deref().unwrap_or("unknown");
    let line = match applied {
        Applied::Unchanged => format!(
            "{} is up to date with {} (last modified {when})",
            options.file.display(),
            options.target.describe()
        ),
        Applied::Changed { program } => format!(
            "{} now holds {} (last modified {when}){}",
            options.file.display(),
            options.target.describe(),
            match program {
                Some(ran) => format!(
                    "; {} {}",
                    options
                        .exec
                        .as_ref()
                        .map(|e| e.program.display().to_string())
                        .unwrap_or_default(),
                    ran.status.name()
                ),
                None => String::new(),
            }
        ),
    };
    report(out, line);
    Ok(0)
}
