//! What is read back from the outbox is checked again before it goes on the wire: the target's
//! names go into the request's path, and each record's text into its body, as written.
//!
//! `send` checked both before queueing (`outbox::input`), but the log is a file: whoever can
//! write to it (a bug, a disk that flips a bit past its checksum, another program running as
//! the same user) could put a name like `Account/../../sobjects/User` into a URL, or a record
//! text that closes its object and adds others of any type to an insert. So the one rule for
//! names, `input::target`, is applied again, and each record must still be exactly one JSON
//! object. A record that fails is not sent: it goes to the dead letters with the reason,
//! kept whole for a person to look at, and the rest of the batch goes on.
//!
//! Pure: no I/O. Must not put a record's values in its reasons (they are logged).

use serde_json::{Map, Value};

use crate::outbox::input;
use crate::outbox::{Pending, Settle, Target};

/// Splits `batch` into the records that may be sent and the dead letters of the others.
pub fn split(batch: Vec<Pending>) -> (Vec<Pending>, Vec<Settle>) {
    let mut sendable = Vec::with_capacity(batch.len());
    let mut refused = Vec::new();
    for pending in batch {
        match check(&pending) {
            Ok(()) => sendable.push(pending),
            Err(why) => {
                log::warn!("outbox: record {} is not sent: {why}", pending.seq);
                refused.push(Settle::Dead {
                    seq: pending.seq,
                    error: why,
                });
            }
        }
    }
    (sendable, refused)
}

/// Why `pending` must not be sent, if it must not.
pub fn check(pending: &Pending) -> Result<(), String> {
    let changed = "the outbox was changed by another program: look at the record in the dead \
                   letters (sfpair outbox status) before sending it again";
    let target = match &pending.target {
        Target::Upsert { object, field } => input::target(object, Some(field), false),
        Target::Event { object } => input::target(object, None, true),
    };
    if let Err(e) = target {
        return Err(format!(
            "its target, read back from disk, is refused: {e}; {changed}"
        ));
    }
    // Parsed as a map (the type the outbox already parses records as: no new code on the
    // board), only to check; the text goes out as it is.
    if serde_json::from_str::<Map<String, Value>>(&pending.json).is_err() {
        return Err(format!(
            "its text, read back from disk, is not exactly one JSON object; {changed}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(seq: u64, target: Target, json: &str) -> Pending {
        Pending {
            seq,
            target,
            json: json.into(),
            queued_at: 0,
        }
    }

    fn upsert(object: &str, field: &str) -> Target {
        Target::Upsert {
            object: object.into(),
            field: field.into(),
        }
    }

    #[test]
    fn names_that_bend_the_path_and_texts_that_are_not_one_object_are_dead_letters() {
        let good = upsert("Device_Reading__c", "Reading_Key__c");
        let batch = vec![
            pending(1, good.clone(), r#"{"Reading_Key__c":"a"}"#),
            pending(2, upsert("Account/../../sobjects/User", "Id"), "{}"),
            pending(3, upsert("Account", "Id?x=1"), "{}"),
            pending(
                4,
                Target::Event {
                    object: "Not_An_Event__c".into(),
                },
                "{}",
            ),
            pending(
                5,
                good.clone(),
                r#"{"Reading_Key__c":"b"},{"attributes":{"type":"User"},"Id":"005"}"#,
            ),
            pending(6, good.clone(), "[1]"),
            pending(7, good, " {\"Reading_Key__c\":\"c\"} "),
        ];
        let (sendable, refused) = split(batch);
        let seqs: Vec<u64> = sendable.iter().map(|p| p.seq).collect();
        assert_eq!(seqs, [1, 7]);
        let dead: Vec<u64> = refused
            .iter()
            .map(|s| match s {
                Settle::Dead { seq, error } => {
                    assert!(error.contains("changed by another program"), "{error}");
                    assert!(!error.contains("005"), "no values: {error}");
                    *seq
                }
                Settle::Delivered(seq) => panic!("{seq} was not refused"),
            })
            .collect();
        assert_eq!(dead, [2, 3, 4, 5, 6]);
    }
}
