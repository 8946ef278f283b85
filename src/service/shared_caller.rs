//! Sessions from `run`'s shared agent for the service's own threads (delivery, the listener,
//! the desired state's follower): one refresh for everyone, under the broker's lock, and a
//! refused session renewed once, as for a broker client. Requests go over an agent of the
//! thread's own (only its transport is used), so a slow org never holds the lock the broker's
//! clients wait on.
//!
//! A session that cannot be had because the pairing died (a refresh refused) is news for the
//! supervisor: the `died` hook, when given, hears of it.

use std::sync::{Arc, Mutex};

use crate::agent::Agent;
use crate::broker::{Shared, lock};
use crate::call::Caller;
use crate::error::{Error, ErrorKind};
use crate::http::OpenReply;
use crate::session::Session;
use crate::wire::{Request, TransportError};

/// Told when a thread finds the pairing dead.
pub type Died = Box<dyn Fn(&Error) + Send>;

/// A [`Caller`] on the shared agent.
pub struct SharedCaller {
    shared: Arc<Mutex<Shared>>,
    sender: Agent,
    died: Option<Died>,
}

impl SharedCaller {
    /// Sessions from `shared`, requests over `sender`'s transport; `died` hears of a pairing
    /// found dead.
    pub fn new(shared: Arc<Mutex<Shared>>, sender: Agent, died: Option<Died>) -> SharedCaller {
        SharedCaller {
            shared,
            sender,
            died,
        }
    }

    fn told(&self, result: Result<Session, Error>) -> Result<Session, Error> {
        if let (Err(e), Some(died)) = (&result, &self.died)
            && e.kind() == ErrorKind::RepairNeeded
        {
            died(e);
        }
        result
    }
}

impl Caller for SharedCaller {
    fn session(&mut self) -> Result<Session, Error> {
        let session = lock(&self.shared).agent().access_token();
        self.told(session)
    }

    fn renew(&mut self, stale: &Session) -> Result<Session, Error> {
        let session = {
            let mut shared = lock(&self.shared);
            shared.agent().session_refused(stale.generation);
            shared.agent().access_token()
        };
        self.told(session)
    }

    fn open(&mut self, request: &Request) -> Result<OpenReply, TransportError> {
        Caller::open(&mut self.sender, request)
    }
}
