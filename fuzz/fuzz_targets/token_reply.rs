//! Token replies (polling, refresh, revoke) never panic, and a parsed success always has an
//! access token.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sfpair::api::{self, Outcome};
use sfpair::flow::reply::{self, Parsed};

mod reply_input;

fuzz_target!(|data: &[u8]| {
    let reply = reply_input::reply(data);
    if let Parsed::Ok(tokens) = reply::token(&reply) {
        assert!(!tokens.access_token.is_empty());
    }
    if let Outcome::Done(tokens) = api::refresh_outcome(&reply) {
        assert!(!tokens.access_token.is_empty());
    }
    let _ = api::revoke_outcome(&reply);
});
