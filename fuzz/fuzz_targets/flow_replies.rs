//! The whole pairing flow fed arbitrary replies and transport failures: it never panics, never
//! spins (every wait moves time forward), never polls faster than its minimum interval, and ends
//! within its bounds.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sfpair::flow::dialect::{Client, Dialect, Endpoints};
use sfpair::flow::{Action, Flow, FlowConfig, MIN_INTERVAL};
use sfpair::time::Instant;
use sfpair::wire::{TransportError, TransportErrorKind};

mod reply_input;

fuzz_target!(|data: &[u8]| {
    let dialect = if data.first().is_some_and(|b| b & 1 == 1) {
        Dialect::Rfc8628
    } else {
        Dialect::Salesforce
    };
    let mut config = FlowConfig::new(
        dialect,
        Endpoints::salesforce("https://login.salesforce.com"),
        Client {
            client_id: "K".into(),
            scope: "api refresh_token".into(),
        },
    );
    config.max_codes = 2;
    let mut flow = Flow::new(config, 1, Instant::ZERO);
    let mut now = Instant::ZERO;
    let mut last_poll: Option<Instant> = None;
    // Replies are length-prefixed chunks of the input; a zero length means a transport failure.
    let mut rest = data.get(1..).unwrap_or_default();
    for _ in 0..10_000 {
        match flow.poll(now) {
            Action::Wait(t) => {
                assert!(t > now, "a wait must move time forward");
                now = t;
            }
            Action::Send(request) => {
                let is_poll = request.form_field("response_type").is_none()
                    && request.form_field("client_id").is_some()
                    && (request.form_secret("code").is_some()
                        || request.form_secret("device_code").is_some());
                if is_poll {
                    if let Some(prev) = last_poll {
                        assert!(
                            now.saturating_since(prev) >= MIN_INTERVAL,
                            "polled too fast"
                        );
                    }
                    last_poll = Some(now);
                } else {
                    last_poll = None;
                }
                let Some((&len, tail)) = rest.split_first() else {
                    return;
                };
                let len = (len as usize).min(tail.len());
                let (chunk, tail) = tail.split_at(len);
                rest = tail;
                let outcome = if len == 0 {
                    Err(TransportError::new(TransportErrorKind::Timeout, "fuzz"))
                } else {
                    Ok(reply_input::reply(chunk))
                };
                flow.handle(now, outcome);
                let _ = flow.take_events().count();
            }
            Action::Done(_) => return,
        }
        assert!(
            now.since_origin() < Duration::from_secs(24 * 3600),
            "the flow outlived a day"
        );
    }
    panic!("the flow neither finished nor ran out of input in 10,000 steps");
});
