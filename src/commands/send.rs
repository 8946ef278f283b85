//! `sfpair send`: checks the records (`outbox::input`), appends them to the outbox, and exits 0
//! only once they are on stable storage. No network and no pairing are needed: delivery is
//! `sfpair run`'s or `sfpair outbox flush`'s.
//!
//! The data streams: the push reads it twice, one record at a time (to check it all,
//! then to write it), so it must be readable twice. `--data TEXT` is in memory already; a file,
//! or standard input redirected from one, is read where it is; a pipe that does not end within
//! `IN_MEMORY` bytes is first copied into an unnamed file in the outbox directory (private,
//! gone when `send` exits), at most twice `--outbox-max-bytes`. Must not: hold all the records
//! at once, or write to the outbox before every record is checked.

use std::fs::File;
use std::io::{self, Cursor, Read, Seek, Write};
use std::path::Path;

use super::call::Body;
use super::outbox::Place;
use super::report;
use crate::error::Error;
use crate::outbox::input::{self, Rewind};
use crate::outbox::{DEFAULT_MAX_RECORD, Target};
use crate::sanitize;
use crate::time::{Clock, SystemClock};

/// Piped data that ends within this many bytes stays in memory (most sends are a few records).
const IN_MEMORY: usize = 64 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub place: Place,
    pub target: Target,
    pub auto_id: bool,
    /// `--data`; standard input when not given.
    pub data: Body,
    pub json: bool,
    /// `--socket`: hand the records to the running agent (`sfpair run`) instead of writing
    /// the outbox here.
    pub socket: Option<std::path::PathBuf>,
}

pub fn run(options: &Options, out: &mut dyn Write) -> Result<u8, Error> {
    let (receipt, by) = match &options.socket {
        Some(socket) => (
            through_broker(options, socket)?,
            format!("by the agent at {}", socket.display()),
        ),
        None => {
            let mut outbox = options.place.open()?;
            let mut data = replayable(
                &options.data,
                outbox.dir(),
                options.place.max_bytes.saturating_mul(2),
            )?;
            let mut records = input::Input::new(
                &mut *data,
                &options.target,
                options.auto_id,
                DEFAULT_MAX_RECORD,
            )
            .map_err(|e| Error::config(format!("cannot read the data: {e}")))?;
            let now = SystemClock::new().unix_time().as_secs();
            let pushed = outbox.push_all(&mut records, now)?;
            (
                crate::outbox::place::receipt(&pushed),
                format!("in {}", outbox.dir().display()),
            )
        }
    };
    if options.json {
        report(out, sanitize::json_line(&receipt));
    } else {
        report(
            out,
            format!(
                "{} record(s) queued {by} ({} waiting for delivery)",
                receipt["queued"], receipt["outbox_queued"]
            ),
        );
    }
    Ok(0)
}

/// `--data`: text given on the command line, or a file (standard input is one) and its name.
enum Data {
    Text(Vec<u8>),
    File(File, String),
}

fn data_of(data: &Body) -> Result<Data, Error> {
    Ok(match data {
        Body::Inline(bytes) => Data::Text(bytes.clone()),
        Body::File(path) => Data::File(
            File::open(path).map_err(|e| {
                Error::config(format!("cannot read --data file {}: {e}", path.display()))
            })?,
            path.display().to_string(),
        ),
        Body::None | Body::Stdin => {
            use std::os::fd::AsFd;
            let fd = io::stdin()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| Error::config(format!("cannot read standard input: {e}")))?;
            Data::File(File::from(fd), "standard input".into())
        }
    })
}

/// The data, readable from its start again (see the module documentation); `dir` takes the
/// copy of a pipe, which may be at most `limit` bytes.
fn replayable(data: &Body, dir: &Path, limit: u64) -> Result<Box<dyn Rewind>, Error> {
    let (mut file, name) = match data_of(data)? {
        Data::Text(bytes) => return Ok(Box::new(Cursor::new(bytes))),
        Data::File(file, name) => (file, name),
    };
    let read_error = |e: io::Error| Error::config(format!("cannot read --data from {name}: {e}"));
    if file.metadata().map_err(read_error)?.is_file() {
        return Ok(Box::new(file));
    }
    let mut head = Vec::with_capacity(IN_MEMORY);
    (&mut file)
        .take(IN_MEMORY as u64 + 1)
        .read_to_end(&mut head)
        .map_err(read_error)?;
    if head.len() <= IN_MEMORY {
        return Ok(Box::new(Cursor::new(head)));
    }
    let mut copy = unnamed_file(dir).map_err(|e| {
        Error::storage(format!(
            "cannot copy --data from {name} into {} to read it twice: {e}",
            dir.display()
        ))
    })?;
    let copied = copy
        .write_all(&head)
        .and_then(|()| {
            io::copy(
                &mut (&mut file).take(limit + 1 - head.len() as u64),
                &mut copy,
            )
        })
        .map_err(|e| {
            Error::storage(format!(
                "cannot copy --data from {name} into {}: {e}",
                dir.display()
            ))
        })?;
    if copied + head.len() as u64 > limit {
        return Err(Error::config(format!(
            "--data from {name} is more than {limit} bytes, twice what the outbox may hold \
             (--outbox-max-bytes): nothing was queued; send it in parts"
        )));
    }
    copy.rewind().map_err(read_error)?;
    Ok(Box::new(copy))
}

/// A private file in `dir` with no name, so it goes when the process does: `O_TMPFILE` (mode
/// 0600 from the first byte), or where the filesystem lacks it a new 0600 file removed at once.
fn unnamed_file(dir: &Path) -> io::Result<File> {
    use std::fs::OpenOptions;
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = OpenOptions::new();
    options.read(true).write(true).mode(0o600);
    if let Ok(file) = options.clone().custom_flags(libc::O_TMPFILE).open(dir) {
        return Ok(file);
    }
    let path = dir.join(format!(".send-{}", std::process::id()));
    let file = options
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(file)
}

/// The checked records, to the agent at `--socket`, in one request (at most the broker's
/// line limit: a bigger send goes in parts, or without `--socket`); its receipt.
#[cfg(feature = "broker")]
fn through_broker(options: &Options, socket: &Path) -> Result<serde_json::Value, Error> {
    use crate::broker::{
        client::Broker,
        protocol::{MAX_SEND_LINE, SendAsk},
    };
    let mut reader: Box<dyn Read> = match data_of(&options.data)? {
        Data::Text(bytes) => Box::new(Cursor::new(bytes)),
        Data::File(file, _) => Box::new(file),
    };
    // What the request needs besides the records: the names and the field names.
    let room = MAX_SEND_LINE - 512;
    let mut array = String::from("[");
    input::each(
        &mut reader,
        &options.target,
        options.auto_id,
        DEFAULT_MAX_RECORD,
        &mut |json, _| {
            if array.len() + json.len() + 2 > room {
                return Err(Error::config(format!(
                    "the records are more than the agent takes in one request ({} KiB): \
                     nothing was queued; send them in parts, or without --socket",
                    MAX_SEND_LINE / 1024
                )));
            }
            if array.len() > 1 {
                array.push(',');
            }
            array.push_str(json);
            Ok(())
        },
    )?;
    array.push(']');
    let (sobject, external_id, event) = match &options.target {
        Target::Upsert { object, field } => (Some(object.clone()), Some(field.clone()), None),
        Target::Event { object } => (None, None, Some(object.clone())),
    };
    Broker::new(socket).send(SendAsk {
        sobject,
        external_id,
        event,
        auto_id: options.auto_id,
        records: array,
    })
}

#[cfg(not(feature = "broker"))]
fn through_broker(_: &Options, _: &Path) -> Result<serde_json::Value, Error> {
    Err(super::not_built(
        "sfpair send --socket",
        "the token broker",
        "broker",
    ))
}
