//! How a pairing is made, whichever way: the device flow (its endpoints read first from an
//! RFC 8628 provider's metadata when an issuer is given) or a headless grant. `sfpair pair` and
//! `sfpair run` both pair through [`Pairing`], so a setting that one honours the other cannot
//! drop (`run --flow jwt-bearer` used to pair with the device flow).
//!
//! Chooses, and holds the store's pairing lock for the whole of it; the work is `pair.rs`'s and
//! `headless.rs`'s.

use std::time::Duration;

use super::{Agent, Enrolment};
use crate::error::Error;
use crate::event::{Event, Paired};
use crate::flow::FlowConfig;

/// One way to pair.
#[derive(Clone, Debug)]
pub enum Pairing {
    /// The device flow: a person approves a code.
    Device {
        /// The endpoints, the client and the rules of the flow.
        flow: Box<FlowConfig>,
        /// An RFC 8628 provider whose metadata gives the endpoints (`--issuer`).
        issuer: Option<String>,
    },
    /// A headless grant (JWT bearer, client credentials): no person. Its first request waits
    /// a random time below `start_spread`, as the device flow's does (`--start-jitter`).
    Headless {
        /// Who the device enrols as, and with which grant.
        enrolment: Box<Enrolment>,
        /// The first request waits a random time below this (`--start-jitter`).
        start_spread: Duration,
    },
}

impl Agent {
    /// Pairs as `how` says, storing the pairing; the previous one is replaced only once the new
    /// one is stored. One pairing of a store at a time: while another process pairs it, this
    /// one is refused at once (exit 2), saying so, rather than replacing the other's approval.
    pub fn pair_by(&mut self, how: &Pairing) -> Result<Paired, Error> {
        if !self.store.try_lock_pairing()? {
            let e = Error::config(format!(
                "another sfpair is pairing {} right now (its code is on show): approve that \
                 one, or stop it and try again",
                self.store.describe()
            ));
            self.emit(&Event::Failed(e.clone()));
            return Err(e);
        }
        let paired = self.pair_locked(how);
        self.store.unlock_pairing();
        paired
    }

    fn pair_locked(&mut self, how: &Pairing) -> Result<Paired, Error> {
        match how {
            Pairing::Device { flow, issuer } => {
                let mut flow = (**flow).clone();
                if let Some(issuer) = issuer {
                    flow.endpoints = self.discover(issuer)?;
                }
                self.pair(flow)
            }
            Pairing::Headless {
                enrolment,
                start_spread,
            } => {
                // A fleet that boots together spreads its grants as it spreads its codes.
                let wait = self.jitter.below(*start_spread);
                self.pause(wait, "waiting out the start jitter")?;
                self.enrol((**enrolment).clone())
            }
        }
    }
}
