//! What a handler's answer turns into on the connection: a response, or one of the
//! transport-level misbehaviours the fault queue asks for.
//!
//! Data only: `router.rs` picks a [`Reply`], `server.rs` carries it out. It sits low so
//! that both, and `faults.rs`, can name it without importing each other.

use std::time::Duration;

use crate::http::Response;

/// What the connection should do with a request.
#[derive(Debug)]
pub enum Reply {
    /// Answer normally.
    Send(Response),
    /// Close without answering.
    Close,
    /// Write half of this response's head, then reset the connection.
    Reset(Response),
    /// Announce this response's body but send only half of it, then close.
    Truncate(Response),
    /// Answer nothing for this long, then close.
    Stall(Duration),
    /// Answer normally, but only after this long (the server did its work at once: a rotated
    /// token or a committed record is already in its state while the reply is on its way).
    Late(Duration, Response),
    /// Send this response's head (announcing far more body than will come) and its body, then
    /// one more byte every this long, for at most `faults::TRICKLE_FOR`.
    Trickle(Response, Duration),
}

impl Reply {
    /// The status sent, or 0 when no complete status line goes out.
    pub fn status(&self) -> u16 {
        match self {
            Reply::Send(r) | Reply::Truncate(r) | Reply::Late(_, r) | Reply::Trickle(r, _) => {
                r.status
            }
            Reply::Close | Reply::Reset(_) | Reply::Stall(_) => 0,
        }
    }
}
