//! The desired state's settings, for `sfpair desired` and `sfpair run --desired`: the record
//! (`--desired SOBJECT/FIELD/VALUE`), the file, the program, the fields and how often to read.
//! Checked here, before anything runs.
//!
//! Parsing only.

use super::settings::Settings;
use super::sources::Sources;
use crate::cli::{CommandName, Opt};
use crate::desired::{DEFAULT_EVERY, Options, Target};
use crate::error::Error;
use crate::listen::runner::{DEFAULT_TIMEOUT, Exec};
use crate::outbox::input::api_name;

/// The desired state's options, or `None` when the command follows no record (`run` without
/// `--desired`).
pub fn options(
    sources: &Sources,
    command: Option<CommandName>,
    settings: &Settings,
) -> Result<Option<Options>, Error> {
    if !matches!(command, Some(CommandName::Desired | CommandName::Run)) {
        return Ok(None);
    }
    let Some(target) = sources.text(Opt::Desired)? else {
        if command == Some(CommandName::Desired) {
            return Err(Error::config(
                "sfpair desired needs --desired SOBJECT/FIELD/VALUE (SFPAIR_DESIRED): the \
                 device's record by its external id, e.g. Device__c/Device_Id__c/GW-0042",
            ));
        }
        return Ok(None);
    };
    let target = Target::parse(&target)?;
    let file = sources.path(Opt::DesiredFile)?.ok_or_else(|| {
        Error::config("--desired needs --desired-file PATH (SFPAIR_DESIRED_FILE): where it goes")
    })?;
    let fields = match sources.text(Opt::DesiredFields)? {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .map(|f| api_name(f, "--desired-fields").map(|()| f.to_string()))
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let every = sources
        .duration(Opt::DesiredEvery, DEFAULT_EVERY)?
        .unwrap_or(DEFAULT_EVERY);
    Ok(Some(Options {
        target,
        file,
        exec: sources.path(Opt::DesiredExec)?.map(|program| Exec {
            program,
            args: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }),
        fields,
        every,
        api_version: settings.api_version_or_default(),
    }))
}
