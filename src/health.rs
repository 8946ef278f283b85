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
//! nothing is paired once another process stored a pairing. A sealed pairing this board cannot
//! open is neither: health says `repair_needed`, cause `seal_unopened` (docs/sealing.md).

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
    let stored = agent.stored();
    // A seal that cannot be opened: the same message as every command and `doctor` give.
    let unopened = stored
        .as_ref()
        .err()
        .filter(|e| crate::store::is_unopened(e))
        .map(|e| e.message().to_string());
    let record = stored.ok();
    let state = match status.map(|s| &s.state) {
        Some(pairing @ State::Pairing { .. }) => pairing.clone(),
        // A seal this board cannot open is not "nothing stored": the pairing is kept, and
        // putting its seal back opens it (whatever the supervisor saw last, or under `serve`).
        _ if unopened.is_some() => State::RepairNeeded {
            cause: crate::refusal::Cause::SealUnopened,
        },
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
    if let Some(message) = unopened {
        value["store"] = json!(message);
    }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::error::Error;
    use crate::store::{Loaded, Record, TokenStore};
    use crate::testing::{FakeClock, ScriptedTransport};

    /// A store whose sealed pairing cannot be opened here.
    struct Unopenable;

    impl TokenStore for Unopenable {
        fn load(&mut self) -> Result<Loaded, Error> {
            Ok(Loaded::Unopened("sealed with tpm2: there is no TPM".into()))
        }
        fn save(&mut self, _: &Record) -> Result<(), Error> {
            Err(Error::storage("not in this test"))
        }
        fn wipe(&mut self) -> Result<(), Error> {
            Err(Error::storage("not in this test"))
        }
        fn describe(&self) -> String {
            "file:/var/lib/sfpair/token".into()
        }
    }

    #[test]
    fn a_seal_that_cannot_be_opened_is_repair_needed_whatever_the_supervisor_saw() {
        let clock = FakeClock::new(Duration::from_secs(1_800_000_000));
        let mut agent = Agent::new(
            Box::new(clock),
            Box::new(ScriptedTransport::new()),
            Box::new(Unopenable),
        );
        let status = |state| RunStatus {
            state,
            next_keepalive: None,
            outbox: None,
        };
        for seen in [None, Some(State::Paired), Some(State::NotPaired)] {
            let answer = of_agent(&mut agent, seen.clone().map(status).as_ref());
            assert_eq!(answer["state"], "repair_needed", "{seen:?}: {answer}");
            assert_eq!(answer["cause"], "seal_unopened", "{seen:?}: {answer}");
            let store = answer["store"].as_str().unwrap();
            assert!(store.contains("there is no TPM"), "{store}");
        }
        let pairing = status(State::Pairing { user_code: None });
        let answer = of_agent(&mut agent, Some(&pairing));
        assert_eq!(
            answer["state"], "pairing",
            "a new pairing is under way: {answer}"
        );
    }
}
