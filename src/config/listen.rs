//! The listener's settings, for `sfpair listen CHANNEL…` and `sfpair run --listen CHANNEL`:
//! the channels, `--match`, `--exec` (and its arguments), `--exec-timeout`, `--replay`,
//! `--results`, `--expires-field`, `--listen-duty`, and where the inbox lives (`--inbox`,
//! `SFPAIR_INBOX`, else `inbox/` beside the file store). Each is checked here, before anything
//! runs, with the message naming the flag or variable that gave it.
//!
//! Parsing only; the listener opens its inbox when it runs.

use super::outbox::{beside, bytes};
use super::settings::Settings;
use super::sources::Sources;
use crate::cli::{Args, CommandName, Opt};
use crate::error::Error;
use crate::listen::{Options, Replay, bayeux, duty::Duty, inbox, runner};
use crate::outbox::input::api_name;

/// The channels `doctor` subscribes to once: each `--listen` channel, and the change event
/// channel of the `--desired` record.
pub fn checked_channels(sources: &Sources) -> Result<Vec<String>, Error> {
    #[allow(unused_mut)] // pushed to only with `desired`
    let mut channels = sources
        .list(Opt::Listen)?
        .iter()
        .map(|c| bayeux::channel(c))
        .collect::<Result<Vec<_>, _>>()?;
    #[cfg(feature = "desired")]
    if let Some(target) = sources.text(Opt::Desired)? {
        channels.push(crate::desired::Target::parse(&target)?.change_channel());
    }
    Ok(channels)
}

/// The listener's options, or `None` when the command listens to nothing (`run` without
/// `--listen`).
pub fn options(
    sources: &Sources,
    args: &Args,
    settings: &Settings,
    is_root: bool,
) -> Result<Option<Options>, Error> {
    let named = match args.command {
        Some(CommandName::Listen) => args.positionals().to_vec(),
        Some(CommandName::Run) => sources.list(Opt::Listen)?,
        _ => return Ok(None),
    };
    if named.is_empty() {
        if args.command == Some(CommandName::Listen) {
            return Err(Error::config(
                "sfpair listen needs a CHANNEL, e.g. `sfpair listen Device_Command__e`",
            ));
        }
        return Ok(None);
    }
    let channels = named
        .iter()
        .map(|c| bayeux::channel(c))
        .collect::<Result<Vec<_>, _>>()?;
    let matches = sources
        .list(Opt::Match)?
        .into_iter()
        .map(|rule| match rule.split_once('=') {
            Some((field, value)) if api_name(field, "--match").is_ok() => {
                Ok((field.to_string(), value.to_string()))
            }
            _ => Err(Error::config(format!(
                "--match '{rule}' is not FIELD=VALUE with FIELD an API name (Device_Id__c=GW-1)"
            ))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let exec = match sources.path(Opt::Exec)? {
        Some(program) => Some(runner::Exec {
            program,
            args: args.rest().to_vec(),
            timeout: sources
                .seconds(Opt::ExecTimeout, Some(runner::DEFAULT_TIMEOUT.as_secs()))?
                .unwrap_or(runner::DEFAULT_TIMEOUT),
        }),
        None => None,
    };
    if exec.as_ref().is_some_and(|e| e.timeout.is_zero()) {
        return Err(Error::config("--exec-timeout must be at least 1 second"));
    }
    let replay = match sources.given(Opt::Replay)? {
        None => Replay::Stored,
        Some((name, from)) => Replay::from_name(&name)
            .ok_or_else(|| Error::config(format!("{from} '{name}': use stored, new or all")))?,
    };
    let results = sources.text(Opt::Results)?;
    if let Some(object) = &results {
        api_name(object, "--results")?;
    }
    let expires_field = sources.text(Opt::ExpiresField)?;
    if let Some(field) = &expires_field {
        api_name(field, "--expires-field")?;
    }
    let duty = sources
        .text(Opt::ListenDuty)?
        .map(|d| Duty::parse(&d))
        .transpose()?;
    let inbox = match sources.path(Opt::Inbox)? {
        Some(dir) => dir,
        None => beside(&settings.store, sources, is_root, "inbox").ok_or_else(|| {
            Error::config(
                "no inbox given and no place for one: pass --inbox DIR or set SFPAIR_INBOX",
            )
        })?,
    };
    let inbox_max_bytes = match sources.given(Opt::InboxMaxBytes)? {
        Some((text, from)) => bytes(&text, &from)?,
        None => inbox::DEFAULT_MAX_BYTES,
    };
    Ok(Some(Options {
        channels,
        matches,
        exec,
        replay,
        results,
        expires_field,
        duty,
        inbox,
        inbox_max_bytes,
        api_version: settings.api_version_or_default(),
        http: settings.http.clone(),
    }))
}
