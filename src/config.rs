//! The settings wing: flags > environment (`SFPAIR_*`) > board profile (`--board`) > defaults,
//! validated with messages that say what to fix, and turned into each command's options
//! (`plan`), so no command reads the arguments or the environment again.
//!
//! `sources.rs` owns the order of the layers and types each value; `stored.rs` is the stored
//! pairing's layer; `settings.rs` resolves the settings every command shares; `plan.rs` builds
//! the command's options; `outbox.rs` the outbox's; `seal.rs` the sealing's. Which flag and
//! which variable give a setting is the command table's
//! (`cli/table.rs`).

#[cfg(feature = "desired")]
mod desired;
#[cfg(feature = "listen")]
mod listen;
#[cfg(feature = "outbox")]
mod outbox;
mod plan;
mod seal;
mod settings;
mod sources;
mod stored;
#[cfg(test)]
pub(crate) mod tests;

use std::time::Duration;

use crate::commands::seal::Settings as Sealing;
#[cfg(not(feature = "boards"))]
use crate::present::spec::Display;
use crate::store::{Record, Spec};

pub use crate::flow::DEFAULT_SCOPE;
pub use crate::login_url::DEFAULT as DEFAULT_LOGIN_URL;
pub use plan::plan;
pub use settings::{FlowName, Settings};

/// Reads the pairing in a store, if one can be read now (`commands::stored_pairing`): the
/// stored layer of the settings (`stored.rs`). A sealed pairing is opened with the sealing
/// settings, which come from the layers above it.
pub type StoredReader<'a> = dyn Fn(&Spec, &Sealing) -> Option<Record> + 'a;

/// `--keepalive` when none is given: well inside the 30-day idle limit of a refresh token
/// policy ("expire if not used for 30 days"), with room for a week of outages.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(7 * 86_400);

/// A build without board profiles has none: this type has no values, so every `Option<Board>`
/// is `None` and the code that reads a profile compiles to nothing.
#[cfg(not(feature = "boards"))]
#[derive(Clone, Debug)]
pub enum Board {}

#[cfg(not(feature = "boards"))]
impl Board {
    pub fn env_value(&self, _var: &str) -> Option<String> {
        match *self {}
    }
    pub fn displays(&self) -> Vec<Display> {
        match *self {}
    }
}

#[cfg(feature = "boards")]
use crate::board::Board;
