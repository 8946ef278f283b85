//! The simulated org's records, in memory: what the REST handlers create, read,
//! change and delete.
//!
//! Storage only: no wire format, no validation (that is `schema.rs`), nothing above it.

use std::collections::HashMap;

use serde_json::{Map, Value};

/// Records created through the API, by id.
#[derive(Default)]
pub struct Records {
    pub(crate) records: HashMap<String, (String, Map<String, Value>)>,
    pub(crate) created: u64,
}
