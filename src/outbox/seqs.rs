//! The settled seqs above the oldest unsettled one (`State::above`): a sorted list of distinct
//! seqs. Not a `BTreeSet<u64>`: that set type would be linked for this one use (3,584 bytes
//! more on armv7; BENCHMARKS.md, "Bytes for the third wave"), and the list stays
//! short: the outbox compacts when it passes `MAX_ABOVE` seqs, and seqs are settled mostly in
//! order, so an insert is mostly a push.
//!
//! Pure: no I/O.

/// Distinct seqs, ascending.
#[derive(Default)]
pub(super) struct Seqs(Vec<u64>);

impl Seqs {
    /// Adds `seq` (once).
    pub(super) fn insert(&mut self, seq: u64) {
        if let Err(at) = self.0.binary_search(&seq) {
            self.0.insert(at, seq);
        }
    }

    pub(super) fn contains(&self, seq: u64) -> bool {
        self.0.binary_search(&seq).is_ok()
    }

    /// Forgets the seqs below `low`.
    pub(super) fn keep_from(&mut self, low: u64) {
        let below = self.0.partition_point(|&s| s < low);
        self.0.drain(..below);
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    pub(super) fn clear(&mut self) {
        self.0.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seqs_in_any_order_are_kept_once_sorted_and_forgotten_below_a_low() {
        let mut seqs = Seqs::default();
        for s in [5, 3, 9, 5, 1, 7, 3] {
            seqs.insert(s);
        }
        assert_eq!(seqs.0, [1, 3, 5, 7, 9]);
        assert!(seqs.contains(7) && !seqs.contains(6) && !seqs.contains(10));
        seqs.keep_from(5);
        assert_eq!((seqs.0.as_slice(), seqs.len()), (&[5, 7, 9][..], 3));
        seqs.keep_from(100);
        assert_eq!(seqs.len(), 0);
        seqs.insert(2);
        seqs.clear();
        assert!(!seqs.contains(2));
    }
}
