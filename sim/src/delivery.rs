//! The delivery faults of a durable outbox's tests: persistent knobs, not the
//! one-shot queue of `faults.rs`, that a test may flip on a running simulator.
//!
//! - every N-th sObject Collections request is committed, then its reply is lost (and the
//!   next few, when a test asks for it at a moment of its choosing);
//! - every N-th record submitted through collections is refused `UNABLE_TO_LOCK_ROW`,
//!   each distinct record at most once, so a retry succeeds;
//! - a daily API allocation that, once used up, refuses REST requests with 403;
//! - offline: every connection is cut before it can carry a request.
//!
//! It also keeps the last [`KEPT_BODIES`] collections request bodies byte for byte, so a
//! test sees exactly what arrived (the org's records are `serde_json::Value`s, whose numbers
//! are f64: `123456789.123456789` stored is not what was sent).
//!
//! Knobs and counters only, in atomics (and one small lock for the records already
//! refused), so the setters never wait for the org's lock. What the refusals look like
//! on the wire is `rest.rs`'s and `rest/collections.rs`'s; cutting sockets is `server.rs`'s.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use crate::config::Config;

/// Collections request bodies kept for tests (the newest).
pub const KEPT_BODIES: usize = 16;

/// `api_limit` when no allocation is enforced.
const UNLIMITED: u64 = u64::MAX;

#[derive(Default)]
pub struct Delivery {
    drop_every: AtomicU32,
    /// Collections requests still to be committed and then lost, before `drop_every` counts.
    drop_next: AtomicU32,
    lock_every: AtomicU32,
    /// The enforced daily allocation, or [`UNLIMITED`].
    api_limit: AtomicU64,
    offline: AtomicBool,
    collections: AtomicU64,
    dropped: AtomicU64,
    lock_refusals: AtomicU64,
    locks: Mutex<Locks>,
    bodies: Mutex<VecDeque<Vec<u8>>>,
}

/// Records seen through collections, and those already refused once.
#[derive(Default)]
struct Locks {
    seen: u64,
    refused: HashSet<String>,
}

impl Delivery {
    pub fn new(config: &Config) -> Delivery {
        Delivery {
            drop_every: AtomicU32::new(config.commit_then_drop_every),
            lock_every: AtomicU32::new(config.lock_row_every),
            api_limit: AtomicU64::new(config.api_limit.unwrap_or(UNLIMITED)),
            ..Delivery::default()
        }
    }

    pub fn set_drop_every(&self, n: u32) {
        self.drop_every.store(n, Ordering::SeqCst);
    }

    pub fn drop_next(&self, n: u32) {
        self.drop_next.store(n, Ordering::SeqCst);
    }

    pub fn set_lock_every(&self, n: u32) {
        self.lock_every.store(n, Ordering::SeqCst);
    }

    pub fn set_api_limit(&self, max: Option<u64>) {
        self.api_limit
            .store(max.unwrap_or(UNLIMITED), Ordering::SeqCst);
    }

    /// The enforced daily allocation, if any.
    pub fn api_limit(&self) -> Option<u64> {
        let limit = self.api_limit.load(Ordering::SeqCst);
        (limit != UNLIMITED).then_some(limit)
    }

    pub fn set_offline(&self, offline: bool) {
        self.offline.store(offline, Ordering::SeqCst);
    }

    pub fn offline(&self) -> bool {
        self.offline.load(Ordering::SeqCst)
    }

    /// Counts one collections request that is about to run; true when its reply is
    /// to be dropped after it committed.
    pub fn collections_request(&self) -> bool {
        let n = self.collections.fetch_add(1, Ordering::SeqCst) + 1;
        let every = u64::from(self.drop_every.load(Ordering::SeqCst));
        let next = self
            .drop_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            })
            .is_ok();
        let drop = next || (every > 0 && n.is_multiple_of(every));
        if drop {
            self.dropped.fetch_add(1, Ordering::SeqCst);
        }
        drop
    }

    /// Keeps one collections request body as it arrived (the newest [`KEPT_BODIES`]).
    pub fn keep_body(&self, body: &[u8]) {
        let mut bodies = self.bodies.lock().unwrap_or_else(|e| e.into_inner());
        if bodies.len() == KEPT_BODIES {
            bodies.pop_front();
        }
        bodies.push_back(body.to_vec());
    }

    /// The kept collections request bodies, oldest first.
    pub fn bodies(&self) -> Vec<Vec<u8>> {
        let bodies = self.bodies.lock().unwrap_or_else(|e| e.into_inner());
        bodies.iter().cloned().collect()
    }

    /// Counts one record submitted through collections; true when it must be refused
    /// `UNABLE_TO_LOCK_ROW`. `key` names the record (object and external id, id, or
    /// the whole body of an insert): a record already refused once is never refused again.
    pub fn lock_row(&self, key: &str) -> bool {
        let every = u64::from(self.lock_every.load(Ordering::SeqCst));
        let mut locks = crate::lock(&self.locks);
        locks.seen += 1;
        let refuse = every > 0 && locks.seen.is_multiple_of(every) && !locks.refused.contains(key);
        if refuse {
            locks.refused.insert(key.to_string());
            self.lock_refusals.fetch_add(1, Ordering::SeqCst);
        }
        refuse
    }

    pub fn collections_requests(&self) -> u64 {
        self.collections.load(Ordering::SeqCst)
    }

    pub fn dropped_replies(&self) -> u64 {
        self.dropped.load(Ordering::SeqCst)
    }

    pub fn lock_row_refusals(&self) -> u64 {
        self.lock_refusals.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_third_request_is_dropped() {
        let delivery = Delivery::new(&Config {
            commit_then_drop_every: 3,
            ..Config::default()
        });
        let drops: Vec<bool> = (0..7).map(|_| delivery.collections_request()).collect();
        assert_eq!(drops, [false, false, true, false, false, true, false]);
        assert_eq!(
            (delivery.collections_requests(), delivery.dropped_replies()),
            (7, 2)
        );
        delivery.set_drop_every(0);
        assert!(!(0..6).any(|_| delivery.collections_request()));
    }

    #[test]
    fn the_next_replies_are_dropped_when_asked_then_the_period_resumes() {
        let delivery = Delivery::new(&Config {
            commit_then_drop_every: 4,
            ..Config::default()
        });
        delivery.collections_request();
        delivery.drop_next(2);
        let drops: Vec<bool> = (0..5).map(|_| delivery.collections_request()).collect();
        // Requests 2 and 3 on demand, then the 4th by the period; 5 and 6 go through.
        assert_eq!(drops, [true, true, true, false, false]);
        assert_eq!(delivery.dropped_replies(), 3);
    }

    #[test]
    fn each_record_is_refused_at_most_once() {
        let delivery = Delivery::new(&Config {
            lock_row_every: 2,
            ..Config::default()
        });
        // Records a, b, then b again (the retry), then c, c.
        let refused: Vec<bool> = ["a", "b", "b", "c", "c", "d"]
            .iter()
            .map(|key| delivery.lock_row(key))
            .collect();
        // The 2nd (b) is refused; the 4th (c) is refused; the 6th (d) is refused;
        // b's retry (3rd) and c's retry (5th) are not the N-th and pass.
        assert_eq!(refused, [false, true, false, true, false, true]);
        // An N-th record already refused once passes.
        assert!(!delivery.lock_row("x"));
        assert!(!delivery.lock_row("b"));
        assert_eq!(delivery.lock_row_refusals(), 3);
    }

    #[test]
    fn the_api_limit_is_off_by_default() {
        let delivery = Delivery::new(&Config::default());
        assert_eq!(delivery.api_limit(), None);
        delivery.set_api_limit(Some(5));
        assert_eq!(delivery.api_limit(), Some(5));
        delivery.set_api_limit(None);
        assert_eq!(delivery.api_limit(), None);
    }
}
