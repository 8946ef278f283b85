//! Unit tests of the pure flow: every poll instant is pinned, with no sleeping and no sockets.

use super::*;
use crate::testing::CleanErr;
use crate::wire::{Reply, TransportErrorKind};
use alloc::vec::Vec;

const PENDING: &str = r#"{"error":"authorization_pending"}"#;
const SLOW_DOWN: &str =
    r#"{"error":"slow_down","error_description":"polling too quickly for the token endpoint"}"#;
const TOKENS: &str = r#"{"access_token":"00D!AT","refresh_token":"5Aep-RT","instance_url":"https://x.my.salesforce.com","id":"https://login.salesforce.com/id/00DORG/005USER","issued_at":"1700000000000","token_type":"Bearer","scope":"api refresh_token"}"#;

fn sf_code(user_code: &str) -> Reply {
    Reply::json(
        200,
        &alloc::format!(
            r#"{{"user_code":"{user_code}","device_code":"DC-{user_code}","interval":5,"verification_uri":"https://login.salesforce.com/setup/connect"}}"#
        ),
    )
}

fn config() -> FlowConfig {
    FlowConfig::salesforce("https://login.salesforce.com", "KEY")
}

/// Drives a flow the way the agent does, with time moving only when the flow says to wait.
struct Driver {
    flow: Flow,
    now: Instant,
    events: Vec<Event>,
}

impl Driver {
    fn new(config: FlowConfig) -> Self {
        Driver {
            flow: Flow::new(config, 42, Instant::ZERO),
            now: Instant::ZERO,
            events: Vec::new(),
        }
    }

    /// Waits as told until the flow sends; returns the request.
    fn next_send(&mut self) -> Request {
        for _ in 0..10_000 {
            let action = self.flow.poll(self.now);
            self.events.extend(self.flow.take_events());
            match action {
                Action::Wait(t) => {
                    assert!(
                        t > self.now,
                        "wait({t:?}) is not in the future at {:?}",
                        self.now
                    );
                    self.now = t;
                }
                Action::Send(r) => return r,
                Action::Done(r) => panic!("flow ended at {:?} with {r:?}", self.now),
            }
        }
        panic!("flow never sent")
    }

    fn secs(&self) -> f64 {
        self.now.since_origin().as_secs_f64()
    }

    fn reply(&mut self, reply: Reply) {
        self.flow.handle(self.now, Ok(reply));
        self.events.extend(self.flow.take_events());
    }

    fn fail(&mut self, kind: TransportErrorKind) {
        self.flow.handle(
            self.now,
            Err(TransportError::new(kind, "login.salesforce.com: boom")),
        );
        self.events.extend(self.flow.take_events());
    }

    fn done(&mut self) -> Result<TokenReply, Error> {
        for _ in 0..10_000 {
            match self.flow.poll(self.now) {
                Action::Wait(t) => self.now = t,
                Action::Done(r) => {
                    self.events.extend(self.flow.take_events());
                    return r;
                }
                Action::Send(r) => panic!("unexpected send {r:?}"),
            }
        }
        panic!("flow never finished")
    }
}

#[test]
fn waits_one_interval_before_each_poll_while_pending() {
    let mut d = Driver::new(config());
    let first = d.next_send();
    assert_eq!(first.form_field("response_type"), Some("device_code"));
    assert_eq!(d.secs(), 0.0);
    d.reply(sf_code("AAAA1111"));
    let mut times = Vec::new();
    for _ in 0..3 {
        let poll = d.next_send();
        assert_eq!(
            poll.form_secret("code").map(Secret::expose),
            Some("DC-AAAA1111")
        );
        times.push(d.secs());
        d.reply(Reply::json(400, PENDING));
    }
    assert_eq!(times, [5.0, 10.0, 15.0]);
    d.next_send();
    assert_eq!(d.secs(), 20.0);
    d.reply(Reply::json(200, TOKENS));
    let tokens = d.done().unwrap();
    assert_eq!(tokens.refresh_token.unwrap().expose(), "5Aep-RT");
    let Event::CodeIssued(shown) = &d.events[0] else {
        panic!("{:?}", d.events)
    };
    assert_eq!(shown.user_code, "AAAA1111");
    assert_eq!(shown.expires_in, Duration::from_secs(600));
    assert_eq!(
        shown.one_tap_uri,
        "https://login.salesforce.com/setup/connect?user_code=AAAA1111"
    );
}

#[test]
fn slow_down_adds_five_seconds_for_good() {
    let mut d = Driver::new(config());
    d.next_send();
    d.reply(sf_code("B"));
    d.next_send();
    assert_eq!(d.secs(), 5.0);
    d.reply(Reply::json(400, SLOW_DOWN));
    d.next_send();
    assert_eq!(d.secs(), 15.0, "interval is now 10 s");
    d.reply(Reply::json(400, PENDING));
    d.next_send();
    assert_eq!(d.secs(), 25.0, "pending keeps the slowed interval");
    d.reply(Reply::json(400, SLOW_DOWN));
    d.next_send();
    assert_eq!(d.secs(), 40.0, "second slow_down: 15 s");
    assert!(d.events.contains(&Event::SlowDown {
        interval: Duration::from_secs(15)
    }));
}

#[test]
fn slow_down_honours_a_larger_interval_from_the_server() {
    let mut d = Driver::new(config());
    d.next_send();
    d.reply(sf_code("C"));
    d.next_send();
    d.reply(Reply::json(400, r#"{"error":"slow_down","interval":30}"#));
    d.next_send();
    assert_eq!(d.secs(), 35.0);
}

#[test]
fn local_deadline_brings_a_new_code_then_stops_after_the_last() {
    let mut d = Driver::new(config());
    let mut polls = 0;
    let mut code_requests = Vec::new();
    let result = loop {
        match d.flow.poll(d.now) {
            Action::Wait(t) => d.now = t,
            Action::Send(r) if r.form_field("response_type").is_some() => {
                code_requests.push(d.secs());
                let n = code_requests.len();
                d.reply(sf_code(&alloc::format!("CODE{n}")));
            }
            Action::Send(_) => {
                polls += 1;
                d.reply(Reply::json(400, PENDING));
            }
            Action::Done(r) => break r,
        }
        d.events.extend(d.flow.take_events());
    };
    d.events.extend(d.flow.take_events());
    assert_eq!(code_requests, [0.0, 600.0, 1200.0]);
    // Polls at 5, 10, ... 595 for each code: 119 each; the 600th second is the deadline.
    assert_eq!(polls, 3 * 119);
    assert_eq!(d.secs(), 1800.0);
    let err = result.clean_err();
    assert_eq!(err.kind(), ErrorKind::Expired);
    assert!(err.message().contains("3 codes"), "{err}");
    let expired: Vec<_> = d
        .events
        .iter()
        .filter_map(|e| match e {
            Event::CodeExpired { number, last, .. } => Some((*number, *last)),
            _ => None,
        })
        .collect();
    assert_eq!(expired, [(1, false), (2, false), (3, true)]);
}

#[test]
fn server_expiry_and_invalid_grant_bring_a_new_code_at_once() {
    let mut d = Driver::new(config());
    d.next_send();
    d.reply(sf_code("ONE"));
    d.next_send();
    d.reply(Reply::json(400, r#"{"error":"expired_token"}"#));
    let r = d.next_send();
    assert_eq!(r.form_field("response_type"), Some("device_code"));
    assert_eq!(d.secs(), 5.0);
    d.reply(sf_code("TWO"));
    d.next_send();
    d.reply(Reply::json(
        400,
        r#"{"error":"invalid_grant","error_description":"expired authorization code"}"#,
    ));
    let r = d.next_send();
    assert_eq!(r.form_field("response_type"), Some("device_code"));
    let numbers: Vec<u32> = d
        .events
        .iter()
        .filter_map(|e| match e {
            Event::CodeIssued(c) => Some(c.number),
            _ => None,
        })
        .collect();
    assert_eq!(numbers, [1, 2]);
}

#[test]
fn the_servers_expiry_of_the_last_code_carries_its_oauth_fields() {
    let mut cfg = config();
    cfg.max_codes = 1;
    let mut d = Driver::new(cfg);
    d.next_send();
    d.reply(sf_code("ONE"));
    d.next_send();
    d.reply(Reply::json(
        400,
        r#"{"error":"invalid_grant","error_description":"expired authorization code"}"#,
    ));
    let err = d.done().clean_err();
    assert_eq!(err.kind(), ErrorKind::Expired);
    assert_eq!(err.oauth_error(), Some("invalid_grant"));
    assert_eq!(err.oauth_description(), Some("expired authorization code"));
}

#[test]
fn access_denied_carries_the_servers_code() {
    let mut d = Driver::new(config());
    d.next_send();
    d.reply(sf_code("D"));
    d.next_send();
    d.reply(Reply::json(400, r#"{"error":"access_denied"}"#));
    let err = d.done().clean_err();
    assert_eq!(err.kind(), ErrorKind::Denied);
    assert_eq!(err.oauth_error(), Some("access_denied"));
    assert_eq!(err.oauth_description(), None);
}

#[test]
fn server_expires_in_sets_the_deadline() {
    let mut cfg = config();
    cfg.dialect = Dialect::Rfc8628;
    cfg.max_codes = 1;
    let mut d = Driver::new(cfg);
    d.next_send();
    d.reply(Reply::json(
        200,
        r#"{"device_code":"d","user_code":"WDJB-MJHT","verification_uri":"https://idp/device","verification_uri_complete":"https://idp/device?user_code=WDJB-MJHT","expires_in":12,"interval":5}"#,
    ));
    d.next_send();
    d.reply(Reply::json(400, PENDING));
    d.next_send();
    assert_eq!(d.secs(), 10.0);
    d.reply(Reply::json(400, PENDING));
    let err = d.done().clean_err();
    assert_eq!(d.secs(), 12.0);
    assert_eq!(err.kind(), ErrorKind::Expired);
}

#[test]
fn access_denied_stops_with_denied() {
    let mut d = Driver::new(config());
    d.next_send();
    d.reply(sf_code("D"));
    d.next_send();
    d.reply(Reply::json(400, r#"{"error":"access_denied"}"#));
    assert_eq!(d.done().clean_err().kind(), ErrorKind::Denied);
}

#[test]
fn transport_failures_back_off_but_never_below_the_interval_and_keep_the_code() {
    let mut d = Driver::new(config());
    d.next_send();
    d.reply(sf_code("E"));
    d.next_send();
    let mut last = d.secs();
    // Nominal delays double from 2 x interval (10 s) to the 60 s cap; equal jitter keeps
    // each in [nominal / 2, nominal].
    for nominal in [10.0, 20.0, 40.0, 60.0, 60.0] {
        d.fail(TransportErrorKind::Timeout);
        let poll = d.next_send();
        assert_eq!(
            poll.form_secret("code").map(Secret::expose),
            Some("DC-E"),
            "same device code"
        );
        let delay = d.secs() - last;
        assert!(
            delay >= f64::max(5.0, nominal / 2.0) && delay <= nominal,
            "delay {delay} for nominal {nominal}"
        );
        last = d.secs();
    }
    // A well-formed reply resets the backoff.
    d.reply(Reply::json(400, PENDING));
    d.next_send();
    assert_eq!(d.secs() - last, 5.0);
}

#[test]
fn a_code_that_runs_out_while_the_network_is_down_is_a_network_error() {
    let mut cfg = config();
    cfg.max_codes = 1;
    cfg.default_lifetime = Duration::from_secs(60);
    let mut d = Driver::new(cfg);
    d.next_send();
    d.reply(sf_code("N"));
    let err = loop {
        match d.flow.poll(d.now) {
            Action::Wait(t) => d.now = t,
            Action::Send(_) => d.fail(TransportErrorKind::Reset),
            Action::Done(r) => break r.clean_err(),
        }
    };
    assert_eq!(err.kind(), ErrorKind::Network, "{err}");
    assert!(err.message().contains("could not be reached"), "{err}");
    assert_eq!(d.secs(), 60.0);
}

#[test]
fn html_and_5xx_while_polling_are_retried_like_network_failures() {
    let mut d = Driver::new(config());
    d.next_send();
    d.reply(sf_code("F"));
    d.next_send();
    d.reply(Reply::new(
        503,
        "text/html",
        "<html><body>Server down for maintenance</body></html>",
    ));
    d.next_send();
    d.reply(Reply::new(200, "text/html", "<html>captive portal</html>"));
    d.next_send();
    d.reply(Reply::json(200, r#"{"access_tok"#));
    d.next_send();
    d.reply(Reply::json(200, TOKENS));
    assert_eq!(d.done().unwrap().access_token.expose(), "00D!AT");
    let retries = d
        .events
        .iter()
        .filter(|e| matches!(e, Event::Retrying { .. }))
        .count();
    assert_eq!(retries, 3);
}

#[test]
fn a_rate_limit_to_the_end_gives_up_with_the_servers_code() {
    let mut d = Driver::new(config());
    let err = loop {
        match d.flow.poll(d.now) {
            Action::Wait(t) => d.now = t,
            Action::Send(_) => d.reply(Reply::json(
                400,
                r#"{"error":"rate_limit_exceeded","error_description":"too many requests"}"#,
            )),
            Action::Done(r) => break r.clean_err(),
        }
    };
    assert_eq!(err.kind(), ErrorKind::Network);
    assert_eq!(err.oauth_error(), Some("rate_limit_exceeded"));
    assert_eq!(err.oauth_description(), Some("too many requests"));
}

#[test]
fn device_code_request_retries_then_gives_up_as_a_network_error() {
    let mut d = Driver::new(config());
    let mut times = Vec::new();
    let err = loop {
        match d.flow.poll(d.now) {
            Action::Wait(t) => d.now = t,
            Action::Send(_) => {
                times.push(d.secs());
                d.fail(TransportErrorKind::Refused);
            }
            Action::Done(r) => break r.clean_err(),
        }
    };
    assert_eq!(err.kind(), ErrorKind::Network);
    assert_eq!(
        err.oauth_error(),
        None,
        "a transport failure has no OAuth fields"
    );
    assert!(
        err.message().contains("could not get a device code"),
        "{err}"
    );
    // Retries stop once 300 s passed since the first attempt, and never spin.
    assert!(
        *times.last().unwrap() >= 300.0 && *times.last().unwrap() < 360.0,
        "{times:?}"
    );
    assert!(times.len() < 20, "{times:?}");
    for w in times.windows(2) {
        assert!(w[1] - w[0] >= 1.0);
    }
}

#[test]
fn configuration_errors_stop_at_once_with_advice() {
    for (body, code, needle) in [
        (
            r#"{"error":"invalid_client_id","error_description":"client identifier invalid"}"#,
            "invalid_client_id",
            "consumer key",
        ),
        (
            r#"{"error":"invalid_grant","error_description":"device flow is not enabled for the app"}"#,
            "invalid_grant",
            "Enable Device Flow",
        ),
        (
            r#"{"error":"invalid_client","error_description":"app must be installed into org"}"#,
            "invalid_client",
            "not installed",
        ),
    ] {
        let mut d = Driver::new(config());
        d.next_send();
        d.reply(Reply::json(400, body));
        let err = d.done().clean_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{body}");
        assert_eq!(err.oauth_error(), Some(code), "{body}");
        // The advice is what the admin is promised.
        assert!(err.message().contains(needle), "{err}");
        assert_eq!(d.secs(), 0.0, "no retry for {body}");
    }
}

#[test]
fn certificate_errors_stop_at_once() {
    let mut d = Driver::new(config());
    d.next_send();
    d.fail(TransportErrorKind::Certificate);
    let err = d.done().clean_err();
    assert_eq!(err.kind(), ErrorKind::Network);
    // The transport's detail, exactly: nothing appended, no OAuth fields.
    assert_eq!(err.message(), "login.salesforce.com: boom");
    assert_eq!(err.oauth_error(), None);
}

#[test]
fn approval_without_refresh_token_is_a_config_error() {
    let mut d = Driver::new(config());
    d.next_send();
    d.reply(sf_code("G"));
    d.next_send();
    d.reply(Reply::json(
        200,
        r#"{"access_token":"00D!AT","instance_url":"https://x"}"#,
    ));
    let err = d.done().clean_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.message().contains("refresh_token"));
}

#[test]
fn a_zero_interval_is_raised_to_one_second() {
    let mut d = Driver::new(config());
    d.next_send();
    d.reply(Reply::json(
        200,
        r#"{"user_code":"Z","device_code":"d","interval":0,"verification_uri":"https://login.salesforce.com/setup/connect"}"#,
    ));
    d.next_send();
    assert_eq!(d.secs(), 1.0);
}

#[test]
fn start_spread_delays_the_first_request_randomly() {
    let mut cfg = config();
    cfg.start_spread = Duration::from_secs(30);
    let mut firsts = Vec::new();
    for seed in 0..50 {
        let mut flow = Flow::new(cfg.clone(), seed, Instant::ZERO);
        match flow.poll(Instant::ZERO) {
            Action::Wait(t) => firsts.push(t.since_origin().as_secs_f64()),
            // A zero delay sends at once.
            Action::Send(r) => {
                assert_eq!(r.form_field("response_type"), Some("device_code"));
                firsts.push(0.0);
            }
            Action::Done(r) => panic!("the flow ended before its first request: {r:?}"),
        }
    }
    assert!(firsts.iter().all(|t| *t < 30.0));
    let spread =
        firsts.iter().cloned().fold(0.0, f64::max) - firsts.iter().cloned().fold(30.0, f64::min);
    assert!(spread > 15.0, "{firsts:?}");
}

#[test]
fn unknown_poll_errors_stop_with_the_servers_words() {
    let mut d = Driver::new(config());
    d.next_send();
    d.reply(sf_code("H"));
    d.next_send();
    d.reply(Reply::json(
        400,
        r#"{"error":"inactive_user","error_description":"user is inactive"}"#,
    ));
    let err = d.done().clean_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(err.oauth_error(), Some("inactive_user"));
    assert_eq!(err.oauth_description(), Some("user is inactive"));
    // "With the server's words": the message quotes them.
    assert!(err.message().contains("inactive_user: user is inactive"));
}

/// The instant of each device's first request, for a fleet of flows seeded like real devices.
fn first_requests(devices: u64, spread: Duration) -> Vec<Duration> {
    let mut cfg = config();
    cfg.start_spread = spread;
    (0..devices)
        .map(|device| {
            // Real devices seed from the kernel; distinct seeds stand in for that here.
            let seed = device.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
            let mut flow = Flow::new(cfg.clone(), seed, Instant::ZERO);
            match flow.poll(Instant::ZERO) {
                Action::Wait(t) => t.since_origin(),
                Action::Send(_) => Duration::ZERO,
                Action::Done(r) => panic!("{r:?}"),
            }
        })
        .collect()
}

#[test]
fn a_fleet_booting_together_spreads_its_first_requests() {
    let times = first_requests(10_000, Duration::from_secs(30));
    let mut per_second = [0u32; 30];
    for t in &times {
        per_second[t.as_secs() as usize] += 1;
    }
    // Uniform would be 333 per second; allow statistical wobble but no pile-up.
    let (min, max) = (
        per_second.iter().min().unwrap(),
        per_second.iter().max().unwrap(),
    );
    assert!(
        *min >= 250 && *max <= 420,
        "per-second counts {per_second:?}"
    );
}

#[test]
fn a_fleet_failing_together_retries_apart() {
    // Everyone's first request fails at the same instant (the org is down after a power cut).
    let mut cfg = config();
    cfg.start_spread = Duration::ZERO;
    let mut retry_ms = Vec::new();
    for device in 0..10_000u64 {
        let mut flow = Flow::new(
            cfg.clone(),
            device.wrapping_mul(0x2545_F491_4F6C_DD1D),
            Instant::ZERO,
        );
        let Action::Send(_) = flow.poll(Instant::ZERO) else {
            panic!()
        };
        flow.handle(
            Instant::ZERO,
            Err(TransportError::new(TransportErrorKind::Refused, "down")),
        );
        let Action::Wait(t) = flow.poll(Instant::ZERO) else {
            panic!()
        };
        retry_ms.push(t.since_origin().as_millis() as u64);
    }
    // The first retry is "equal jitter" over [1 s, 2 s): spread over the whole second.
    assert!(retry_ms.iter().all(|ms| (1000..2000).contains(ms)));
    let mut per_100ms = [0u32; 10];
    for ms in &retry_ms {
        per_100ms[((ms - 1000) / 100) as usize] += 1;
    }
    assert!(
        per_100ms.iter().all(|n| (850..=1150).contains(n)),
        "{per_100ms:?}"
    );
}

#[test]
fn a_device_never_paired_stops_at_the_first_unknown_host_or_refused_connection() {
    for kind in [TransportErrorKind::Dns, TransportErrorKind::Refused] {
        let mut d = Driver::new(FlowConfig {
            fail_fast_unreachable: true,
            ..config()
        });
        d.next_send();
        d.fail(kind);
        let e = d.done().clean_err();
        assert_eq!(e.exit_code(), 7, "{kind:?}");
        assert!(e.message().contains("--login-url"), "{}", e.message());
        assert!(e.message().contains("sfpair doctor"), "{}", e.message());
        assert_eq!(d.secs(), 0.0, "no retry");
    }
    // A timeout may pass: retried as ever; and without the rule, an unknown host is too.
    for (fast, kind) in [
        (true, TransportErrorKind::Timeout),
        (false, TransportErrorKind::Dns),
    ] {
        let mut d = Driver::new(FlowConfig {
            fail_fast_unreachable: fast,
            ..config()
        });
        d.next_send();
        d.fail(kind);
        d.next_send();
        assert!(d.secs() > 0.0, "{kind:?} retried");
    }
}
