//! The store record decoder never panics on any bytes (a corrupt file or flash slot), and what
//! it accepts survives a round trip through the encoder unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sfpair::store::record;

fuzz_target!(|data: &[u8]| {
    if let Ok(decoded) = record::decode(data) {
        let again =
            record::to_bytes(&decoded.record, decoded.seq).expect("a decoded record encodes");
        assert_eq!(record::decode(&again).expect("and decodes again"), decoded);
    }
    let mut source = data;
    let _ = record::read_record(&mut source);
});
