//! REST calls with the agent's session (`call.rs` has the rules): the agent holds the refresh
//! token itself, so it renews a refused session by refreshing.

use super::Agent;
use crate::call::{self, Caller};
use crate::error::Error;
use crate::http::OpenReply;
use crate::rest::{RestReply, RestRequest};
use crate::session::Session;
use crate::wire::Request;
use crate::wire::TransportError;

impl Agent {
    /// Sends a REST request to the paired instance and streams the reply body into `sink`, in
    /// bounded memory whatever its size. On 401 `INVALID_SESSION_ID` the session is refreshed
    /// once and the request sent once more; nothing else is retried. The HTTP status is in the
    /// returned reply ([`RestReply::error`] says what to report); `Err` means no complete reply:
    /// not paired, refresh rejected (re-pair needed), network, or the sink failed.
    ///
    /// ```no_run
    /// # fn demo(agent: &mut sfpair::agent::Agent) -> Result<(), sfpair::error::Error> {
    /// use sfpair::rest::RestRequest;
    /// let create = RestRequest::post_json(
    ///     "/services/data/v62.0/sobjects/Account/",
    ///     r#"{"Name":"Express Logistics"}"#,
    /// )?;
    /// let mut body = Vec::new();
    /// let reply = agent.call(&create, &mut body)?;
    /// if let Some(e) = reply.error() {
    ///     return Err(e);
    /// }
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "rest")]
    pub fn call(
        &mut self,
        request: &RestRequest,
        sink: &mut dyn std::io::Write,
    ) -> Result<RestReply, Error> {
        call::call(self, request, sink)
    }
}

/// The agent holds the refresh token itself: it renews by refreshing.
#[cfg(feature = "rest")]
impl Caller for Agent {
    fn session(&mut self) -> Result<Session, Error> {
        self.access_token()
    }

    fn renew(&mut self, stale: &Session) -> Result<Session, Error> {
        self.session_refused(stale.generation);
        self.access_token()
    }

    fn open(&mut self, request: &Request) -> Result<OpenReply, TransportError> {
        self.transport.open(request)
    }
}
