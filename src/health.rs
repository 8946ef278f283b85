//! How the long-running agent is: its state, shared by the supervisor (`service/`, which
//! changes it) and the broker (which answers `{"get":"health"}` from it), and the health answer
//! itself. Below both, so neither depends on the other for it.
//!
//! Never holds or prints a token: the answer is built from the state, the stored record's
//! ids and flow, and how the last refresh ended.
//!
//! The store has the last word: the flow is the stored grant's, and a supervisor that believes
//! it is paired (or that its pairing died) is not believed once the store holds nothing (a
//! `sfpair forget`, a deleted file): health then says `not_paired`; nor one that believes
//! nothing is paired once another process stored a pairing.

use serde_json::{Value, json};

use crate::agent::Agent;
use crate::api;
use crate::refusal::Cause;

/// Where the pairing stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// Nothing (valid) is stored, and no pairing is running.
    NotPaired,
    /// A pairing is running; the code shown, once there is one.
    Pairing {
        user_code: Option<String>,
    },
    Paired,
    /// The server refused the pairing; `cause` says why.
    RepairNeeded {
        cause: Cause,
    },
}

impl State {
    pub fn name(&self) -> &'static str {
        match self {
            State::NotPaired => "not_paired",
            State::Pairing { .. } => "pairing",
            State::Paired => "paired",
            State::RepairNeeded { .. } => "repair_needed",
        }
    }
}

/// What the supervisor knows beyond the agent.
#[derive(Clone, Debug)]
pub struct RunStatus {
    pub state: State,
    /// When the next keepalive refresh is due, in seconds since the epoch.
    pub next_keepalive: Option<u64>,
    /// The outbox's figures (queue depth, dead letters, paused or not), from `run`'s delivery
    /// thread; `None` without an outbox.
    pub outbox: Option<Value>,
}

/// The health answer: `status` from the supervisor (`None` under a plain `serve`, where the
/// store alone says whether the device is paired).
pub fn of_agent(agent: &mut Agent, status: Option<&RunStatus>) -> Value {
    let record = agent.stored().ok();
    let state = match status.map(|s| &s.state) {
        Some(State::Paired | State::RepairNeeded { .. }) if record.is_none() => State::NotPaired,
        // Paired by another process (`sfpair pair`) while this one was not: the broker serves it.
        Some(State::NotPaired) if record.is_some() => State::Paired,
        Some(state) => state.clone(),
        None if record.is_some() => State::Paired,
        None => State::NotPaired,
    };
    let (org_id, user_id) = record
        .as_ref()
        .map(|r| api::org_and_user(&r.identity_url))
        .unwrap_or_default();
    let mut value = json!({
        "state": state.name(),
        "flow": record.as_ref().map(|r| r.grant.name()),
        "org_id": org_id,
        "user_id": user_id,
        "instance_url": record.as_ref().map(|r| r.instance_url.clone()),
        "last_refresh": agent.last_refresh().map(|r| json!({
            "at": r.at,
            "ok": r.error.is_none(),
            "error": r.error.as_ref().map(|e| e.kind().name()),
        })),
        "next_keepalive": status.and_then(|s| s.next_keepalive),
        "outbox": status.and_then(|s| s.outbox.clone()),
    });
    match &state {
        State::RepairNeeded { cause } => {
            value["cause"] = json!(cause.name());
            value["cause_text"] = json!(cause.for_person());
            value["admin_action"] = json!(cause.admin_action());
        }
        State::Pairing {
            user_code: Some(code),
        } => value["user_code"] = json!(code),
        _ => {}
    }
    value
}
