//! `forget`: revoke the stored grant at the server, then wipe the store, in that order, and
//! say what was and was not done.

use log::warn;

use super::Agent;
use crate::api::{self};
use crate::error::Error;
use crate::store::Loaded;

/// What `forget` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Forgotten {
    /// Nothing was stored.
    NothingStored,
    /// Revoked at the server and wiped.
    Revoked,
    /// Wiped, but the server was not told: the token may still be valid there.
    WipedOnly {
        /// Why the server was not told.
        reason: String,
    },
    /// The record was unreadable, so there was nothing to revoke with; it was wiped.
    WipedUnreadable {
        /// Why the record could not be read.
        reason: String,
    },
    /// Wiped a headless enrolment: it holds no refresh token, so nothing was revoked; the app
    /// accepts the device's grant again until an admin changes the app or the user.
    NoRefreshToken,
}

impl Agent {
    /// Revokes the refresh token at the server (when it can), then wipes the store, even when the
    /// server cannot be reached. Holds the store's lock throughout, so a refresh in another
    /// process cannot rotate the token between the revocation and the wipe.
    pub fn forget(&mut self) -> Result<Forgotten, Error> {
        self.session = None;
        self.store.lock()?;
        let result = self.forget_locked();
        self.store.unlock();
        result
    }

    pub(super) fn forget_locked(&mut self) -> Result<Forgotten, Error> {
        let record = match self.store.load()? {
            Loaded::Empty => return Ok(Forgotten::NothingStored),
            Loaded::Corrupt(reason) => {
                // The store refuses to wipe what is not an sfpair record (exit 2, nothing
                // erased); an unreadable record of ours is wiped.
                self.store.wipe()?;
                warn!("the stored pairing was unreadable ({reason}); wiped it without revoking");
                return Ok(Forgotten::WipedUnreadable { reason });
            }
            // Never wiped: it cannot be revoked, and putting its seal back opens it again.
            Loaded::Unopened(reason) => {
                return Err(crate::store::unopened(&self.store.describe(), &reason));
            }
            Loaded::Paired(record) if record.grant.is_headless() => {
                self.store.wipe()?;
                return Ok(Forgotten::NoRefreshToken);
            }
            Loaded::Paired(record) => record,
        };
        let revoked = match api::revoke_request(&record) {
            Some(request) => self.exchange(&request, api::revoke_outcome),
            None => Err(Error::config(
                "the provider has no known revocation endpoint",
            )),
        };
        self.store.wipe()?;
        Ok(match revoked {
            Ok(()) => Forgotten::Revoked,
            Err(e) => Forgotten::WipedOnly {
                reason: e.message().to_string(),
            },
        })
    }
}
