//! TEMPORARY interface stub for the lead's delivery work; replaced by the storage branch (olog).
#![allow(dead_code, unused_variables)]

pub mod batch;
pub mod deliver;
pub mod input;
pub mod pace;
pub mod place;

use std::path::{Path, PathBuf};

use crate::error::Error;

pub const DEFAULT_MAX_BYTES: u64 = 16 * 1024 * 1024;
pub const DEFAULT_MAX_RECORD: usize = 128 * 1024;
pub const MAX_BATCH: usize = 200;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Upsert { object: String, field: String },
    Event { object: String },
}

pub struct Limits {
    pub max_bytes: u64,
    pub max_record: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: DEFAULT_MAX_BYTES,
            max_record: DEFAULT_MAX_RECORD,
        }
    }
}

pub struct NewRecord {
    pub target: Target,
    pub json: String,
    pub auto_id: bool,
}

pub struct Pending {
    pub seq: u64,
    pub target: Target,
    pub json: String,
    pub queued_at: u64,
}

pub struct Pushed {
    pub count: usize,
    pub first_seq: u64,
    pub queued: u64,
}

pub struct Status {
    pub queued: u64,
    pub queued_bytes: u64,
    pub oldest_queued_at: Option<u64>,
    pub delivered: u64,
    pub dead: u64,
    pub max_bytes: u64,
}

pub struct DeadLetter {
    pub seq: u64,
    pub target: Target,
    pub json: String,
    pub error: String,
    pub at: u64,
}

pub enum Settle {
    Delivered(u64),
    Dead { seq: u64, error: String },
}

pub struct DeliverLock;

pub struct Outbox {
    dir: PathBuf,
}

impl Outbox {
    pub fn open(dir: &Path, limits: Limits) -> Result<Outbox, Error> {
        todo!()
    }
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn id(&self) -> &str {
        todo!()
    }
    pub fn push(&mut self, records: Vec<NewRecord>, now: u64) -> Result<Pushed, Error> {
        todo!()
    }
    pub fn next_batch(&mut self, max: usize) -> Result<Vec<Pending>, Error> {
        todo!()
    }
    pub fn settle(&mut self, outcomes: &[Settle], now: u64) -> Result<(), Error> {
        todo!()
    }
    pub fn status(&mut self) -> Result<Status, Error> {
        todo!()
    }
    pub fn dead_letters(&mut self, limit: usize) -> Result<Vec<DeadLetter>, Error> {
        todo!()
    }
    pub fn retry_dead(&mut self, now: u64) -> Result<usize, Error> {
        todo!()
    }
    pub fn compact(&mut self) -> Result<(), Error> {
        todo!()
    }
    pub fn try_deliver_lock(&self) -> Result<Option<DeliverLock>, Error> {
        todo!()
    }
}
