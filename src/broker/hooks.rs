//! What the broker asks of whoever runs it, beyond handing out tokens: the health answer,
//! a pairing on request, and news of a pairing that died. `sfpair serve` uses [`Plain`];
//! `sfpair run` passes its supervisor (`service.rs`), which keeps the pairing alive.
//!
//! Hooks are called from the broker's threads with the agent locked (`health`) or not; they
//! must answer quickly and never block on a request to the server.

use serde_json::Value;

use crate::agent::Agent;
use crate::broker::protocol::SendAsk;
use crate::error::Error;

/// What `sfpair run` adds to a plain token broker: health from its supervisor, pairing on
/// request, news of a dead pairing, the outbox for `send`.
pub trait Hooks: Send + Sync {
    /// The socket is bound and the workers are running.
    fn serving(&self) {}

    /// SIGTERM or SIGINT: the broker has stopped accepting and now waits for the requests in
    /// progress. Whatever else the owner runs is told to stop here, not after that wait.
    fn stopping(&self) {}

    /// The answer to `{"get":"health"}`: one JSON object, never a token.
    fn health(&self, agent: &mut Agent) -> Value;

    /// `{"do":"pair"}` from an admitted client: `Ok` with what happens, or why not.
    fn pair_requested(&self) -> Result<String, String>;

    /// A request found the pairing refused (re-pair needed).
    fn pairing_died(&self, _error: &Error) {}

    /// `{"do":"send",…}`: queue the records durably and say how many (`{"queued":N,…}`), or
    /// why not (a bad record: exit 2; a full outbox: 8).
    fn send(&self, _send: &SendAsk) -> Result<Value, Error> {
        Err(Error::config(
            "this broker has no outbox (sfpair serve, or a build without the `outbox` \
             feature): use `sfpair run`, or `sfpair send` with access to the outbox",
        ))
    }
}

/// A plain token broker: health from the store alone, and no pairing.
pub struct Plain;

impl Hooks for Plain {
    fn health(&self, agent: &mut Agent) -> Value {
        crate::health::of_agent(agent, None)
    }

    fn pair_requested(&self) -> Result<String, String> {
        Err(
            "this broker does not pair (sfpair serve): run `sfpair pair`, or use `sfpair run`"
                .into(),
        )
    }
}
