//! Where an outbox lives and how big it may grow: what the settings decide (`config/outbox.rs`)
//! and `send`, `outbox` and `run` open.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::{DEFAULT_MAX_RECORD, Limits, Outbox, Pushed};
use crate::error::Error;

#[derive(Clone, Debug, PartialEq, Eq)]
/// Where an outbox lives and how large it may grow: opened when used.
pub struct Place {
    /// Its directory.
    pub dir: PathBuf,
    /// Its size limit (`--outbox-max-bytes`).
    pub max_bytes: u64,
}

impl Place {
    /// Opens (creating) the outbox.
    pub fn open(&self) -> Result<Outbox, Error> {
        Outbox::open(
            &self.dir,
            Limits {
                max_bytes: self.max_bytes,
                max_record: DEFAULT_MAX_RECORD,
            },
        )
    }
}

/// What `send --json` and the broker's `send` answer once records are queued.
pub fn receipt(pushed: &Pushed) -> Value {
    json!({
        "queued": pushed.count,
        "first_seq": pushed.first_seq,
        "outbox_queued": pushed.queued,
    })
}
