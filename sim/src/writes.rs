//! The write ledger: every save of a record through the REST API (a create or an update,
//! upserts included), in order, with the request that made it and whether that request's
//! reply was sent.
//!
//! Counting rows is not enough to check "exactly once": an upsert sent twice rewrites its row
//! and leaves the count as it was. The ledger tells the two writes apart, and tells a write
//! whose reply was lost (the client had to send it again) from one the client was told about
//! (sending it again is a duplicate). A platform event is a new record at every publish, so
//! each publish is its own row here; tests group events by their content.
//!
//! Bookkeeping only: the saves themselves are `rest/records.rs`'s, the lost replies
//! `delivery.rs`'s. Holds record ids and object names, never field values.

/// One save of one record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    /// The object's canonical name.
    pub object: String,
    /// The record's id (18 characters, as the org answers it).
    pub id: String,
    /// The REST request that saved it: 1 for the first request that saved anything.
    pub request: u64,
    /// Whether that request's reply was sent. `false`: the connection was cut after the org
    /// committed (`Config::commit_then_drop_every`), so the client cannot know it landed.
    pub acknowledged: bool,
}

/// The writes so far.
#[derive(Default)]
pub struct Ledger {
    writes: Vec<Write>,
    requests: u64,
}

impl Ledger {
    /// Files the saves of one request, once its reply is decided. A request that saved
    /// nothing takes no number.
    pub fn record(&mut self, saved: Vec<(String, String)>, acknowledged: bool) {
        if saved.is_empty() {
            return;
        }
        self.requests += 1;
        let request = self.requests;
        self.writes
            .extend(saved.into_iter().map(|(object, id)| Write {
                object,
                id,
                request,
                acknowledged,
            }));
    }

    pub fn all(&self) -> Vec<Write> {
        self.writes.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(ids: &[&str]) -> Vec<(String, String)> {
        ids.iter()
            .map(|id| ("A__c".to_string(), id.to_string()))
            .collect()
    }

    #[test]
    fn each_request_that_saved_gets_the_next_number_and_its_reply_state() {
        let mut ledger = Ledger::default();
        ledger.record(saved(&["a", "b"]), false);
        ledger.record(Vec::new(), true);
        ledger.record(saved(&["a"]), true);
        let got: Vec<_> = ledger
            .all()
            .into_iter()
            .map(|w| (w.id, w.request, w.acknowledged))
            .collect();
        assert_eq!(
            got,
            [
                ("a".to_string(), 1, false),
                ("b".to_string(), 1, false),
                ("a".to_string(), 2, true)
            ]
        );
    }
}
