//! The outbox's settings: where it is (`--outbox`, `SFPAIR_OUTBOX`, else `outbox/` beside the
//! file store), its size limit (`--outbox-max-bytes`), the API reserve (`--api-reserve`), and
//! the `send` and `outbox` commands built from them.
//!
//! Parsing only; the commands open the outbox when they run.

use std::path::{Path, PathBuf};

use super::sources::Sources;
use crate::cli::{Args, Opt};
use crate::commands::call::Body;
use crate::commands::outbox::{self, Action, Place};
use crate::commands::send;
use crate::delivery;
use crate::error::Error;
use crate::outbox::{DEFAULT_MAX_BYTES, input};
use crate::store::{self, file::FileStore};

/// The smallest `--outbox-max-bytes`: room for a few records and the log's own frames.
const MIN_MAX_BYTES: u64 = 64 * 1024;

/// The outbox's place: `--outbox`, `SFPAIR_OUTBOX`, else `outbox/` beside the file store.
/// `None` when the command takes no outbox, or when there is no place for one (no home
/// directory); a value that is given and wrong is an error, for every command.
pub fn place(
    sources: &Sources,
    store: &store::Spec,
    is_root: bool,
) -> Result<Option<Place>, Error> {
    if !sources.applies(Opt::Outbox) {
        return Ok(None);
    }
    let max_bytes = match sources.given(Opt::OutboxMaxBytes)? {
        Some((text, from)) => bytes(&text, &from)?,
        None => DEFAULT_MAX_BYTES,
    };
    let dir = match sources.path(Opt::Outbox)? {
        Some(dir) => dir,
        None => match beside(store, sources, is_root, "outbox") {
            Some(dir) => dir,
            None => return Ok(None),
        },
    };
    Ok(Some(Place { dir, max_bytes }))
}

/// `name` (`outbox`, `inbox`) in the directory of the file store, or of the default file store
/// when the pairing lives in raw flash.
pub(super) fn beside(
    store: &store::Spec,
    sources: &Sources,
    is_root: bool,
    name: &str,
) -> Option<PathBuf> {
    let token = match store {
        store::Spec::File(path) => path.clone(),
        #[allow(unreachable_patterns)]
        _ => FileStore::default_path(|k| sources.raw(k), is_root)?,
    };
    Some(token.parent().unwrap_or(Path::new("/")).join(name))
}

/// `16777216`, `64K`, `16M`, `1G` (binary multiples); `from` names where it came from.
pub(super) fn bytes(text: &str, from: &str) -> Result<u64, Error> {
    let t = text.trim();
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, ""),
    };
    let scale: u64 = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        _ => 0,
    };
    let n = digits
        .parse::<u64>()
        .ok()
        .filter(|_| scale > 0)
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| {
            Error::config(format!(
                "{from} '{t}' is not a size: use bytes, or a number with K, M or G"
            ))
        })?;
    if n < MIN_MAX_BYTES {
        return Err(Error::config(format!(
            "{from} '{t}' is below the smallest allowed, {} KiB",
            MIN_MAX_BYTES / 1024
        )));
    }
    Ok(n)
}

/// `--api-reserve PERCENT` and `--api-version` for delivery; `deadline` is `--timeout`.
pub fn delivery(
    sources: &Sources,
    api_version: Option<&str>,
    deadline: std::time::Duration,
) -> Result<delivery::Options, Error> {
    let reserve = match sources.given(Opt::ApiReserve)? {
        None => crate::delivery::pace::DEFAULT_RESERVE_PERCENT,
        Some((text, from)) => text
            .trim()
            .trim_end_matches('%')
            .parse::<u8>()
            .ok()
            .filter(|p| (1..=100).contains(p))
            .ok_or_else(|| {
                Error::config(format!(
                    "{from} '{}' is not a percentage from 1 to 100",
                    text.trim()
                ))
            })?,
    };
    Ok(delivery::Options {
        api_version: api_version.unwrap_or(delivery::DEFAULT_API_VERSION).into(),
        reserve,
        deadline,
    })
}

/// `sfpair send SOBJECT --external-id FIELD` / `sfpair send --event EVENT__e`.
pub fn send(args: &Args, place: Place, json: bool) -> Result<send::Options, Error> {
    let auto_id = args.has(Opt::AutoId);
    let target = input::target_of(
        args.positional(0),
        args.value(Opt::ExternalId),
        args.value(Opt::Event),
        auto_id,
    )?;
    Ok(send::Options {
        place,
        target,
        auto_id,
        data: args.value(Opt::Data).map_or(Body::Stdin, Body::from_arg),
        json,
        socket: args.value(Opt::Socket).map(Into::into),
    })
}

/// `sfpair outbox flush|status|retry-dead`.
pub fn command(
    args: &Args,
    place: Place,
    delivery: delivery::Options,
    json: bool,
) -> Result<outbox::Options, Error> {
    let action = match args.positional(0) {
        Some("flush") => Action::Flush(delivery),
        Some("status") => Action::Status { json },
        Some("retry-dead") => Action::RetryDead,
        Some(other) => {
            return Err(Error::config(format!(
                "unknown outbox action '{other}': use flush, status or retry-dead"
            )));
        }
        None => {
            return Err(Error::config(
                "sfpair outbox needs an action: flush, status or retry-dead",
            ));
        }
    };
    Ok(outbox::Options { place, action })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::CleanErr;

    #[test]
    fn sizes_take_binary_units_and_refuse_nonsense() {
        let bytes = |t| bytes(t, "--outbox-max-bytes");
        assert_eq!(bytes("16M").unwrap(), 16 << 20);
        assert_eq!(bytes("65536").unwrap(), 65536);
        assert_eq!(bytes("64k").unwrap(), 65536);
        assert_eq!(bytes("1GiB").unwrap(), 1 << 30);
        for bad in ["", "M", "12X", "-1", "1.5M", "99999999999999999999G"] {
            let e = bytes(bad).clean_err();
            assert!(
                e.message().contains("is not a size"),
                "{bad}: {}",
                e.message()
            );
        }
        assert!(
            bytes("1K")
                .clean_err()
                .message()
                .contains("below the smallest")
        );
    }
}
