//! `sfpair forget`: revoke at the server, then wipe the store, even when the server is out of
//! reach (exit 7 then, with a warning that the grant may stay valid there).

use std::io::Write;
use std::time::Duration;

use super::say;
use crate::agent::{Agent, Forgotten};
use crate::error::{Error, ErrorKind};
use crate::store::Loaded;

pub fn run(agent: &mut Agent, wait_for_clock: Duration, out: &mut dyn Write) -> Result<u8, Error> {
    let store = agent.store_description();
    if matches!(agent.load()?, Loaded::Paired(_)) {
        // The wipe happens whatever the clock says; the wait only gives revocation a chance.
        if let Err(e) = agent.wait_for_clock(wait_for_clock) {
            log::warn!("{e}");
        }
    }
    match agent.forget()? {
        Forgotten::NothingStored => {
            say(out, format!("Nothing to forget: {store} holds no pairing."))?;
            Ok(0)
        }
        Forgotten::Revoked => {
            say(
                out,
                format!("Revoked the refresh token at the server and wiped {store}."),
            )?;
            Ok(0)
        }
        Forgotten::NoRefreshToken => {
            say(
                out,
                format!(
                    "Wiped {store}. This enrolment kept no refresh token, so there was nothing \
                     to revoke; the app accepts this device's grant again until an admin \
                     removes its certificate or secret, or the user's approval."
                ),
            )?;
            Ok(0)
        }
        Forgotten::WipedUnreadable { reason } => {
            // No request could be made (nothing readable to revoke): not a network failure.
            say(
                out,
                format!(
                    "Wiped {store}: its record was unreadable ({reason}), so there was no token \
                     to revoke."
                ),
            )?;
            Ok(0)
        }
        Forgotten::WipedOnly { reason } => {
            // Said whatever RUST_LOG says: the person must know the grant may live on. A
            // standard error that cannot be written has nobody to tell.
            let _ = writeln!(
                std::io::stderr(),
                "warning: wiped {store}, but the server was not told ({reason}). The refresh \
                 token may stay valid at the server until it expires or an admin revokes it \
                 (Setup > Connected Apps OAuth Usage)."
            );
            Ok(ErrorKind::Network.exit_code())
        }
    }
}
