//! Events carrying hostile server text (user codes, URLs, error descriptions) become exactly one
//! valid JSON line each that round-trips the text, and the console screen off a TTY never
//! contains a control character other than newline.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sfpair::error::Error;
use sfpair::event::{Event, Paired, ShownCode};
use sfpair::present::Presenter;
use sfpair::present::console::{Console, Style};
use sfpair::present::json::to_json;

fuzz_target!(|data: &[u8]| {
    // Real server strings are short; long ones only make every QR encoding slow.
    let text = String::from_utf8_lossy(&data[..data.len().min(600)]);
    let mut parts = text.split('\u{1}');
    let mut next = || parts.next().unwrap_or("").to_string();
    let (user_code, uri, one_tap, reason) = (next(), next(), next(), next());
    let events = [
        Event::CodeIssued(ShownCode {
            user_code: user_code.clone(),
            verification_uri: uri,
            one_tap_uri: one_tap,
            expires_in: Duration::from_secs(600),
            interval: Duration::from_secs(5),
            number: 2,
            max_codes: 3,
        }),
        Event::Retrying {
            reason: reason.clone(),
            delay: Duration::from_millis(1500),
        },
        Event::CodeExpired {
            number: 1,
            last: false,
            reason: reason.clone(),
        },
        Event::Paired(Paired {
            instance_url: reason.clone(),
            org_id: Some(user_code.clone()),
            user_id: None,
        }),
        Event::Failed(Error::server(reason.clone())),
    ];
    for style in [Style::Qr, Style::Text] {
        let mut console = Console::new(Vec::new(), style, false);
        for event in &events {
            console.show(event);
        }
        let out = String::from_utf8(console.into_inner()).expect("the console writes UTF-8");
        assert!(
            !out.chars().any(|c| c.is_control() && c != '\n'),
            "control character on screen"
        );
        if style == Style::Text {
            assert!(out.is_ascii());
        }
    }
    for event in &events {
        let Some(value) = to_json(event) else {
            continue;
        };
        let line = value.to_string();
        assert!(!line.contains('\n'));
        let back: serde_json::Value = serde_json::from_str(&line).expect("one valid JSON line");
        assert_eq!(back, value);
    }
    assert_eq!(
        to_json(&events[0]).unwrap()["user_code"],
        user_code.as_str()
    );
});
