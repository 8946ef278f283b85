//! Device authorization replies never panic, and a parsed one has every field the flow needs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sfpair::flow::reply::{self, Parsed};

mod reply_input;

fuzz_target!(|data: &[u8]| {
    if let Parsed::Ok(code) = reply::device_code(&reply_input::reply(data)) {
        assert!(!code.device_code.is_empty());
        assert!(!code.user_code.trim().is_empty());
        assert!(!code.verification_uri.is_empty());
    }
});
