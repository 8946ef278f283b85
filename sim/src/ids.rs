//! Salesforce record ids: 15 case-sensitive characters, and the 18-character form that
//! adds a 3-character case-safe checksum (help article "What is a Salesforce ID?").
//!
//! The first three characters name the object (its key prefix: 001 Account, 005 User,
//! a00.. custom objects, e00.. platform events). The simulator's ids are the prefix, `SIM` (so a log shows
//! whose ids they are, like the org id `00DSIM…`), and a per-object counter in characters
//! 7 to 15, so two records never share their 15-character form. Pure functions only.

/// Characters of the case-safe suffix: one per 5-bit pattern of uppercase letters.
const SUFFIX_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
/// Digits of the counter, as in real ids.
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The three checksum characters of a 15-character id: for each 5-character chunk,
/// bit i is set when character i of the chunk is an uppercase letter.
pub fn checksum(id15: &str) -> String {
    id15.as_bytes()
        .chunks(5)
        .take(3)
        .map(|chunk| {
            let bits = chunk
                .iter()
                .enumerate()
                .filter(|(_, b)| b.is_ascii_uppercase())
                .fold(0usize, |bits, (i, _)| bits | 1 << i);
            SUFFIX_ALPHABET[bits] as char
        })
        .collect()
}

/// The 18-character form of a 15- or 18-character id (the suffix is recomputed, so a
/// client's case-folded suffix still finds the record); `None` for any other shape.
pub fn canonical(id: &str) -> Option<String> {
    let valid = (id.len() == 15 || id.len() == 18) && id.bytes().all(|b| b.is_ascii_alphanumeric());
    valid.then(|| {
        let id15 = &id[..15];
        format!("{id15}{}", checksum(id15))
    })
}

/// The `n`-th id of an object with this 3-character key prefix: prefix, `SIM`, then
/// `n` in nine base-62 digits, then the checksum.
pub fn record_id(prefix: &str, n: u64) -> String {
    let mut digits = [b'0'; 9];
    let mut rest = n;
    for digit in digits.iter_mut().rev() {
        *digit = BASE62[(rest % 62) as usize];
        rest /= 62;
    }
    let id15 = format!("{prefix}SIM{}", String::from_utf8_lossy(&digits));
    format!("{id15}{}", checksum(&id15))
}

/// The key prefix of the `index`-th custom object: `a00`, `a01`, … `a0z`, `a10`, …
pub fn custom_prefix(index: usize) -> String {
    let (high, low) = (index / 62, index % 62);
    format!("a{}{}", BASE62[high.min(61)] as char, BASE62[low] as char)
}

/// The key prefix of the `index`-th platform event: `e00`, `e01`, …
pub fn event_prefix(index: usize) -> String {
    let (high, low) = (index / 62, index % 62);
    format!("e{}{}", BASE62[high.min(61)] as char, BASE62[low] as char)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Worked by hand, chunk by chunk (bits are 1 for A-Z at chunk positions 0..4):
    /// - `001000000000000`: no capitals in any chunk -> 0,0,0 -> `AAA`.
    /// - `0015000000Gv7qJ` (an Account-shaped sample): `00150` -> 0 `A`;
    ///   `00000` -> 0 `A`; `Gv7qJ`: G at 0, J at 4 -> 1 + 16 = 17 -> `R`.
    /// - `00DSIM000000001`: `00DSI`: D,S,I at 2,3,4 -> 4+8+16 = 28 -> `2`; `M0000`: M at
    ///   0 -> 1 -> `B`; `00001` -> `A`.
    /// - `a0XSmABCDE00001`: `a0XSm`: X,S at 2,3 -> 12 -> `M`; `ABCDE` -> 31 -> `5`.
    #[test]
    fn checksums_of_known_ids() {
        assert_eq!(checksum("001000000000000"), "AAA");
        assert_eq!(checksum("0015000000Gv7qJ"), "AAR");
        assert_eq!(checksum("00DSIM000000001"), "2BA");
        assert_eq!(checksum("a0XSmABCDE00001"), "M5A");
    }

    #[test]
    fn canonical_accepts_both_lengths_and_refuses_others() {
        assert_eq!(
            canonical("0015000000Gv7qJ").as_deref(),
            Some("0015000000Gv7qJAAR")
        );
        assert_eq!(
            canonical("0015000000Gv7qJaar").as_deref(),
            Some("0015000000Gv7qJAAR")
        );
        assert_eq!(canonical("001"), None);
        assert_eq!(canonical("001500000-Gv7qJ"), None);
    }

    #[test]
    fn record_ids_are_valid_and_distinct_in_fifteen_characters() {
        let ids: Vec<String> = (1..=200).map(|n| record_id("001", n)).collect();
        for id in &ids {
            assert_eq!(id.len(), 18);
            assert!(id.starts_with("001"));
            assert_eq!(canonical(id).as_deref(), Some(id.as_str()));
        }
        let mut short: Vec<&str> = ids.iter().map(|id| &id[..15]).collect();
        short.sort();
        short.dedup();
        assert_eq!(short.len(), ids.len());
        // `001SI`: S, I at 3, 4 -> 8 + 16 = 24 -> `Y`; `M0000`: M at 0 -> 1 -> `B`;
        // `00001` -> `A`.
        assert_eq!(record_id("001", 1), "001SIM000000001YBA");
        // 35 is `Z` in base 62. `a00SI` -> `Y`; `M0000` -> `B`; `0000Z`: Z at 4 -> 16 -> `Q`.
        assert_eq!(record_id("a00", 35), "a00SIM00000000ZYBQ");
        // 61 is `z`: lower case sets no bit.
        assert_eq!(record_id("a00", 61), "a00SIM00000000zYBA");
        assert_eq!(custom_prefix(0), "a00");
        assert_eq!(custom_prefix(63), "a11");
        assert_eq!(event_prefix(1), "e01");
    }
}
