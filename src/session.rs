//! A session: an access token and the instance it is for. It lives in memory only, never in a
//! store, and is handed from the agent (or the broker) to whatever makes REST calls.
//!
//! Pure data; no I/O. The token is a [`Secret`], so Debug output never shows it.

use crate::secret::Secret;
use alloc::string::String;

use crate::time::Instant;

/// An access token and where to use it. Lives in memory only, never in the store.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Session {
    /// The access token (secret).
    pub access_token: Secret,
    /// The instance it works with.
    pub instance_url: String,
    /// When it was obtained, on the agent's monotonic clock.
    pub obtained_at: Instant,
    /// Which session of this agent it is: 1 for the first, one more at every refresh. A client
    /// that saw this session refused names it, so that many such reports cause one refresh.
    pub generation: u64,
}
