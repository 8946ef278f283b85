//! Agent tests with a fake clock, a scripted transport and a memory store: the loops, the
//! storing rules and the retry bounds, without sockets or sleeping.

use super::*;
use crate::flow::FlowConfig;
use crate::flow::dialect::Dialect;
use crate::rest::RestRequest;
use crate::store::record;
use crate::testing::{CleanErr, EventLog, FakeClock, MemoryStore, ScriptedTransport};
use crate::wire::{Body, Reply, TransportErrorKind};

const TOKENS: &str = r#"{"access_token":"00D!AT1","refresh_token":"RT-1","instance_url":"https://acme.my.salesforce.com","id":"https://login.salesforce.com/id/00DORG/005USER","issued_at":"1700000000000","token_type":"Bearer","scope":"api refresh_token"}"#;

struct Rig {
    clock: FakeClock,
    transport: ScriptedTransport,
    store: MemoryStore,
    events: EventLog,
    agent: Agent,
}

fn rig() -> Rig {
    let clock = FakeClock::new(Duration::from_secs(1_800_000_000));
    let transport = ScriptedTransport::new().with_clock(&clock);
    let store = MemoryStore::new();
    let events = EventLog::new();
    let mut agent = Agent::new(
        Box::new(clock.clone()),
        Box::new(transport.clone()),
        Box::new(store.clone()),
    )
    .with_seed(9);
    agent.add_presenter(Box::new(events.clone()));
    Rig {
        clock,
        transport,
        store,
        events,
        agent,
    }
}

fn flow_config() -> FlowConfig {
    FlowConfig::salesforce("https://login.salesforce.com", "KEY")
}

fn code_reply() -> Reply {
    Reply::json(
        200,
        r#"{"user_code":"X1D9SEET","device_code":"DC","interval":5,"verification_uri":"https://login.salesforce.com/setup/connect"}"#,
    )
}

fn stored_record(rt: &str) -> Record {
    Record {
        refresh_token: Secret::new(rt),
        client_id: "KEY".into(),
        dialect: Dialect::Salesforce,
        login_url: "https://login.salesforce.com".into(),
        token_url: "https://login.salesforce.com/services/oauth2/token".into(),
        revoke_url: Some("https://login.salesforce.com/services/oauth2/revoke".into()),
        instance_url: "https://acme.my.salesforce.com".into(),
        identity_url: String::new(),
        scope: "api refresh_token".into(),
        issued_at_ms: 1,
        paired_at: 2,
        grant: Default::default(),
    }
}

#[test]
fn pairs_and_stores_the_refresh_token() {
    let mut r = rig();
    r.transport.push(Ok(code_reply()));
    r.transport
        .push_json(400, r#"{"error":"authorization_pending"}"#);
    r.transport
        .push_json(400, r#"{"error":"authorization_pending"}"#);
    r.transport.push_json(200, TOKENS);
    let paired = r.agent.pair(flow_config()).unwrap();
    assert_eq!(paired.instance_url, "https://acme.my.salesforce.com");
    assert_eq!(paired.org_id.as_deref(), Some("00DORG"));

    let sent: Vec<f64> = r
        .transport
        .sent()
        .iter()
        .map(|(t, _)| t.since_origin().as_secs_f64())
        .collect();
    assert_eq!(sent, [0.0, 5.0, 10.0, 15.0]);
    // Every sleep is at most a second, so the countdown ticks.
    assert!(
        r.clock
            .sleeps()
            .iter()
            .all(|s| *s <= Duration::from_secs(1))
    );

    let saved = record::decode(&r.store.bytes().unwrap()).unwrap().record;
    assert_eq!(saved.refresh_token.expose(), "RT-1");
    assert_eq!(saved.login_url, "https://login.salesforce.com");
    assert_eq!(saved.issued_at_ms, 1_700_000_000_000);
    assert_eq!(saved.paired_at, 1_800_000_015);

    let events = r.events.events();
    assert!(matches!(events.first(), Some(Event::CodeIssued(c)) if c.user_code == "X1D9SEET"));
    assert!(matches!(events.last(), Some(Event::Paired(_))));
    let countdowns = events
        .iter()
        .filter(|e| matches!(e, Event::Countdown { .. }))
        .count();
    assert_eq!(countdowns, 15, "one per second of waiting");
}

#[test]
fn a_pairing_that_cannot_be_stored_is_revoked_and_reported() {
    let mut r = rig();
    r.store.set_bytes(Some(
        record::to_bytes(&stored_record("OLD"), 0).unwrap().to_vec(),
    ));
    r.store.fail_saves(true);
    r.transport.push(Ok(code_reply()));
    r.transport.push_json(200, TOKENS);
    r.transport.push(Ok(Reply::new(200, "", "")));
    let err = r.agent.pair(flow_config()).clean_err();
    assert_eq!(err.kind(), ErrorKind::Storage);
    let sent = r.transport.sent();
    let revoke = &sent.last().unwrap().1;
    assert!(revoke.url.ends_with("/services/oauth2/revoke"));
    assert_eq!(
        revoke.form_secret("token").map(Secret::expose),
        Some("RT-1")
    );
    // The old pairing is untouched.
    let kept = record::decode(&r.store.bytes().unwrap()).unwrap().record;
    assert_eq!(kept.refresh_token.expose(), "OLD");
    assert!(
        matches!(r.events.events().last(), Some(Event::Failed(e)) if e.kind() == ErrorKind::Storage)
    );
}

#[test]
fn an_insecure_instance_url_is_never_stored() {
    let mut r = rig();
    r.transport.push(Ok(code_reply()));
    r.transport
        .push_json(200, &TOKENS.replace("https://acme.my", "http://acme.my"));
    r.transport.push(Ok(Reply::new(200, "", "")));
    let err = r.agent.pair(flow_config()).clean_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert!(r.store.bytes().is_none());
}

#[test]
fn a_denied_pairing_stores_nothing() {
    let mut r = rig();
    r.transport.push(Ok(code_reply()));
    r.transport.push_json(400, r#"{"error":"access_denied"}"#);
    let err = r.agent.pair(flow_config()).clean_err();
    assert_eq!(err.kind(), ErrorKind::Denied);
    assert!(r.store.bytes().is_none());
    assert_eq!(r.store.saves(), 0);
}

#[test]
fn refresh_without_rotation_writes_nothing() {
    let mut r = rig();
    r.agent.store.save(&stored_record("RT-A")).unwrap();
    let before = r.store.saves();
    r.transport.push_json(200, r#"{"access_token":"00D!NEW","instance_url":"https://acme.my.salesforce.com","issued_at":"1"}"#);
    let s = r.agent.access_token().unwrap();
    assert_eq!(s.access_token.expose(), "00D!NEW");
    assert_eq!(r.store.saves(), before, "no write when nothing changed");
    let sent = r.transport.sent();
    assert_eq!(
        sent[0].1.form_secret("refresh_token").map(Secret::expose),
        Some("RT-A")
    );
}

#[test]
fn a_rotated_refresh_token_is_stored_before_use() {
    let mut r = rig();
    r.agent.store.save(&stored_record("RT-A")).unwrap();
    r.transport.push_json(200, r#"{"access_token":"00D!NEW","refresh_token":"RT-B","instance_url":"https://acme.my.salesforce.com"}"#);
    r.agent.access_token().unwrap();
    let saved = record::decode(&r.store.bytes().unwrap()).unwrap().record;
    assert_eq!(saved.refresh_token.expose(), "RT-B");

    // If the rotated token cannot be stored, the caller is told (a bare store, as here, keeps
    // nothing; `store::Checked` keeps it in memory: the next test).
    r.store.fail_saves(true);
    r.transport.push_json(200, r#"{"access_token":"00D!NEWER","refresh_token":"RT-C","instance_url":"https://acme.my.salesforce.com"}"#);
    let err = r.agent.refresh().clean_err();
    assert_eq!(err.kind(), ErrorKind::Storage);
}

#[test]
fn a_rotated_token_that_cannot_be_stored_is_kept_in_memory_and_stored_once_it_can() {
    let clock = FakeClock::new(Duration::from_secs(1_800_000_000));
    let transport = ScriptedTransport::new().with_clock(&clock);
    let store = MemoryStore::new();
    let mut agent = Agent::new(
        Box::new(clock.clone()),
        Box::new(transport.clone()),
        Box::new(crate::store::Checked::new(store.clone())),
    )
    .with_seed(9);
    agent.store.save(&stored_record("RT-A")).unwrap();
    store.fail_saves(true);
    transport.push_json(200, r#"{"access_token":"00D!NEW","refresh_token":"RT-B","instance_url":"https://acme.my.salesforce.com"}"#);
    let err = agent.refresh().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Storage);
    assert!(
        err.message().contains("keeps the new one in memory"),
        "{err}"
    );
    // The store still holds RT-A; this agent goes on with the session and with RT-B.
    let held = record::decode(&store.bytes().unwrap()).unwrap().record;
    assert_eq!(held.refresh_token.expose(), "RT-A");
    assert_eq!(
        agent.access_token().unwrap().access_token.expose(),
        "00D!NEW"
    );
    // The next refresh spends RT-B (not the rotated-out RT-A); once saves work, it is stored.
    store.fail_saves(false);
    transport.push_json(200, r#"{"access_token":"00D!NEWER","refresh_token":"RT-C","instance_url":"https://acme.my.salesforce.com"}"#);
    agent.refresh().unwrap();
    let sent = transport.sent();
    assert_eq!(
        sent.last()
            .unwrap()
            .1
            .form_secret("refresh_token")
            .map(|s| s.expose()),
        Some("RT-B")
    );
    let held = record::decode(&store.bytes().unwrap()).unwrap().record;
    assert_eq!(held.refresh_token.expose(), "RT-C");
}

#[test]
fn a_rejected_refresh_token_keeps_the_record() {
    let mut r = rig();
    r.agent.store.save(&stored_record("RT-A")).unwrap();
    let bytes = r.store.bytes();
    r.transport.push_json(
        400,
        r#"{"error":"invalid_grant","error_description":"expired access/refresh token"}"#,
    );
    let err = r.agent.access_token().clean_err();
    assert_eq!(err.kind(), ErrorKind::RepairNeeded);
    assert_eq!(err.oauth_error(), Some("invalid_grant"));
    assert_eq!(r.store.bytes(), bytes);
    assert_eq!(
        r.agent.last_refusal(),
        Some(crate::refusal::Cause::RevokedOrExpired)
    );
}

#[test]
fn refresh_retries_a_bounded_number_of_times() {
    let mut r = rig();
    r.agent.store.save(&stored_record("RT-A")).unwrap();
    for _ in 0..3 {
        r.transport.push_failure(TransportErrorKind::Timeout);
    }
    let err = r.agent.access_token().clean_err();
    assert_eq!(err.kind(), ErrorKind::Network);
    assert_eq!(r.transport.sent().len(), 3);
    let waited: Duration = r.clock.sleeps().iter().sum();
    assert!(
        waited >= Duration::from_millis(1500) && waited <= Duration::from_secs(3),
        "{waited:?}"
    );

    r.transport
        .push(Ok(Reply::new(503, "text/html", "<html>maintenance</html>")));
    r.transport.push_json(
        200,
        r#"{"access_token":"00D!OK","instance_url":"https://acme.my.salesforce.com"}"#,
    );
    let session = r.agent.access_token().unwrap();
    assert_eq!(session.access_token.expose(), "00D!OK");
}

#[test]
fn forget_revokes_then_wipes_even_when_the_network_is_down() {
    let mut r = rig();
    r.agent.store.save(&stored_record("RT-A")).unwrap();
    r.transport.push(Ok(Reply::new(200, "", "")));
    assert_eq!(r.agent.forget().unwrap(), Forgotten::Revoked);
    assert!(r.store.bytes().is_none());

    r.agent.store.save(&stored_record("RT-B")).unwrap();
    for _ in 0..3 {
        r.transport.push_failure(TransportErrorKind::Refused);
    }
    assert!(matches!(
        r.agent.forget().unwrap(),
        Forgotten::WipedOnly { .. }
    ));
    assert!(r.store.bytes().is_none());
    assert_eq!(r.agent.forget().unwrap(), Forgotten::NothingStored);
}

#[test]
fn a_corrupt_record_reads_as_not_paired_and_stays() {
    let mut r = rig();
    let mut bytes = record::to_bytes(&stored_record("RT"), 0).unwrap().to_vec();
    bytes[20] ^= 1;
    r.store.set_bytes(Some(bytes.clone()));
    let err = r.agent.access_token().clean_err();
    assert_eq!(err.kind(), ErrorKind::NotPaired);
    assert!(err.message().contains("checksum"), "{err}");
    assert_eq!(r.store.bytes(), Some(bytes));
    assert!(r.transport.sent().is_empty());
}

const SESSION_EXPIRED: &str =
    r#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#;

fn refreshed(token: &str) -> String {
    format!(r#"{{"access_token":"{token}","instance_url":"https://acme.my.salesforce.com"}}"#)
}

fn grants(r: &Rig) -> Vec<String> {
    r.transport
        .sent()
        .iter()
        .map(|(_, req)| match req.form_field("grant_type") {
            Some(grant) => grant.to_string(),
            None => format!(
                "{} {} {}",
                req.method.as_str(),
                req.url.trim_start_matches("https://acme.my.salesforce.com"),
                req.bearer.as_ref().map(|b| b.expose()).unwrap_or("-")
            ),
        })
        .collect()
}

#[cfg(feature = "rest")]
#[test]
fn a_cached_session_is_reused_until_the_server_refuses_it() {
    let mut r = rig();
    r.agent.store.save(&stored_record("RT-A")).unwrap();
    r.transport.push_json(200, &refreshed("AT-1"));
    r.transport.push_json(200, r#"{"DailyApiRequests":{}}"#);
    r.transport.push_json(200, r#"{"DailyApiRequests":{}}"#);
    let limits = RestRequest::get("/services/data/v62.0/limits").unwrap();
    for _ in 0..2 {
        let mut body = Vec::new();
        let reply = r.agent.call(&limits, &mut body).unwrap();
        assert_eq!(reply.status, 200);
        assert!(!reply.refreshed);
        assert_eq!(body, br#"{"DailyApiRequests":{}}"#);
    }
    assert_eq!(
        grants(&r),
        [
            "refresh_token",
            "GET /services/data/v62.0/limits AT-1",
            "GET /services/data/v62.0/limits AT-1"
        ]
    );
}

#[cfg(feature = "rest")]
#[test]
fn an_expired_session_is_refreshed_once_and_the_same_body_sent_again() {
    let mut r = rig();
    r.agent.store.save(&stored_record("RT-A")).unwrap();
    r.transport.push_json(200, &refreshed("AT-1"));
    r.transport.push_json(401, SESSION_EXPIRED);
    r.transport.push_json(200, &refreshed("AT-2"));
    r.transport
        .push_json(201, r#"{"id":"001X","errors":[],"success":true}"#);
    let create =
        RestRequest::post_json("/services/data/v62.0/sobjects/Account/", r#"{"Name":"A"}"#)
            .unwrap();
    let mut body = Vec::new();
    let reply = r.agent.call(&create, &mut body).unwrap();
    assert_eq!((reply.status, reply.refreshed), (201, true));
    assert_eq!(
        body, br#"{"id":"001X","errors":[],"success":true}"#,
        "the 401 body never reaches the caller"
    );
    assert_eq!(
        grants(&r),
        [
            "refresh_token",
            "POST /services/data/v62.0/sobjects/Account/ AT-1",
            "refresh_token",
            "POST /services/data/v62.0/sobjects/Account/ AT-2"
        ]
    );
    let sent = r.transport.sent();
    assert_eq!(sent[1].1.body, sent[3].1.body);
    assert_eq!(sent[3].1.body, Body::Json(br#"{"Name":"A"}"#.to_vec()));
}

#[cfg(feature = "rest")]
#[test]
fn a_fresh_session_refused_too_means_pair_again_without_a_loop() {
    let mut r = rig();
    r.agent.store.save(&stored_record("RT-A")).unwrap();
    r.transport.push_json(200, &refreshed("AT-1"));
    r.transport.push_json(401, SESSION_EXPIRED);
    r.transport.push_json(200, &refreshed("AT-2"));
    r.transport.push_json(401, SESSION_EXPIRED);
    let mut body = Vec::new();
    let reply = r
        .agent
        .call(&RestRequest::get("/x").unwrap(), &mut body)
        .unwrap();
    assert_eq!(reply.error().unwrap().kind(), ErrorKind::RepairNeeded);
    assert_eq!(r.transport.sent().len(), 4);
    assert_eq!(body, SESSION_EXPIRED.as_bytes(), "the last reply's body");
}

#[cfg(feature = "rest")]
#[test]
fn limits_and_unfixable_401s_are_never_refreshed() {
    let mut r = rig();
    r.agent.store.save(&stored_record("RT-A")).unwrap();
    r.transport.push_json(200, &refreshed("AT-1"));
    let mut limit = Reply::json(
        403,
        r#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#,
    );
    limit.retry_after = Some(Duration::from_secs(30));
    r.transport.push(Ok(limit));
    r.transport.push_json(
        401,
        r#"[{"message":"This session is not valid for use with the REST API","errorCode":"INVALID_SESSION_ID"}]"#,
    );
    r.transport
        .push(Ok(Reply::new(503, "text/html", "<html>down</html>")));
    let get = RestRequest::get("/services/data/v62.0/limits").unwrap();
    let e = r
        .agent
        .call(&get, &mut Vec::new())
        .unwrap()
        .error()
        .unwrap();
    assert!(e.message().contains("retry after 30 s"), "{e}");
    let e = r
        .agent
        .call(&get, &mut Vec::new())
        .unwrap()
        .error()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::Http);
    let reply = r.agent.call(&get, &mut Vec::new()).unwrap();
    assert!(reply.html);
    let refreshes = grants(&r).iter().filter(|g| *g == "refresh_token").count();
    assert_eq!(refreshes, 1);
}

#[test]
fn a_configured_lifetime_refreshes_before_use() {
    let mut r = rig();
    r.agent.store.save(&stored_record("RT-A")).unwrap();
    r.agent.set_session_lifetime(Some(Duration::from_secs(600)));
    r.transport.push_json(200, &refreshed("AT-1"));
    let first = r.agent.access_token().unwrap();
    assert_eq!(r.agent.expires_in(&first), Some(Duration::from_secs(600)));
    r.clock.advance(Duration::from_secs(599));
    assert_eq!(r.agent.access_token().unwrap().generation, first.generation);
    r.clock.advance(Duration::from_secs(1));
    r.transport.push_json(200, &refreshed("AT-2"));
    let second = r.agent.access_token().unwrap();
    assert_eq!(second.access_token.expose(), "AT-2");
    assert_eq!(second.generation, first.generation + 1);
}

#[test]
fn many_reports_of_the_same_refused_session_cause_one_refresh() {
    let mut r = rig();
    r.agent.store.save(&stored_record("RT-A")).unwrap();
    r.transport.push_json(200, &refreshed("AT-1"));
    r.transport.push_json(200, &refreshed("AT-2"));
    let first = r.agent.access_token().unwrap();
    for _ in 0..5 {
        r.agent.session_refused(first.generation);
        let now = r.agent.access_token().unwrap();
        assert_eq!(now.access_token.expose(), "AT-2");
    }
    assert_eq!(r.transport.sent().len(), 2);
}

const SIGNED_ID: &str = "https://127.0.0.1:8443/id/00DSIM000000001AAA/005SIM000000001AAA";
/// HMAC-SHA256("sim-secret", SIGNED_ID + "1477674717112"), computed independently with Python.
const SIGNATURE: &str = "UD1NMeZsPfGsOUetORZsPeBEqgR+lQs2vYkDSZbdmUY=";

fn signed(refresh_token: &str, signature: &str) -> String {
    format!(
        r#"{{"access_token":"AT-S","refresh_token":"{refresh_token}","instance_url":"https://acme.my.salesforce.com","id":"{SIGNED_ID}","issued_at":"1477674717112","signature":"{signature}"}}"#
    )
}

#[test]
fn with_a_secret_a_refresh_must_be_signed_and_a_bad_one_stores_nothing() {
    let mut r = rig();
    r.agent.store.save(&stored_record("RT-A")).unwrap();
    r.agent.set_client_secret(Some(Secret::new("sim-secret")));
    r.transport.push_json(200, &signed("RT-B", SIGNATURE));
    r.agent.refresh().unwrap();
    let saved = record::decode(&r.store.bytes().unwrap()).unwrap().record;
    assert_eq!(saved.refresh_token.expose(), "RT-B");

    let before = r.store.bytes();
    r.transport
        .push_json(200, &signed("RT-C", &SIGNATURE.replace('U', "u")));
    let e = r.agent.refresh().clean_err();
    assert_eq!(e.kind(), ErrorKind::Server);
    assert!(e.message().contains("signature"), "{e}");
    assert_eq!(r.store.bytes(), before, "the rotated token was not stored");
    assert_eq!(
        r.agent.access_token().unwrap().generation,
        1,
        "the session cached is still the one from the good reply"
    );
}

#[test]
fn a_pairing_with_a_bad_signature_is_not_stored_and_is_revoked() {
    let mut r = rig();
    r.agent
        .set_client_secret(Some(Secret::new("another-secret")));
    r.transport.push(Ok(code_reply()));
    r.transport.push_json(200, &signed("RT-P", SIGNATURE));
    r.transport.push(Ok(Reply::new(200, "", "")));
    let e = r.agent.pair(flow_config()).clean_err();
    assert_eq!(e.kind(), ErrorKind::Server);
    assert!(r.store.bytes().is_none());
    let sent = r.transport.sent();
    assert_eq!(sent.len(), 3);
    assert!(sent[2].1.url.ends_with("/services/oauth2/revoke"));
    assert_eq!(
        sent[2].1.form_secret("token").map(Secret::expose),
        Some("RT-P")
    );
}

#[test]
fn a_clock_before_the_build_is_waited_out_then_reported() {
    // A board that booted in 1970 and never gets NTP.
    let clock = FakeClock::new(Duration::from_secs(3));
    let mut agent = Agent::new(
        Box::new(clock.clone()),
        Box::new(ScriptedTransport::new()),
        Box::new(MemoryStore::new()),
    );
    let err = agent.wait_for_clock(Duration::from_secs(5)).clean_err();
    assert_eq!(err.kind(), ErrorKind::Network);
    assert!(err.message().contains("1970-01-01"), "{err}");
    assert!(err.message().contains("NTP"), "{err}");
    assert_eq!(
        clock.sleeps().iter().sum::<Duration>(),
        Duration::from_secs(5)
    );
}

#[test]
fn a_clock_that_syncs_while_waiting_lets_the_agent_go_on() {
    let clock = FakeClock::new(Duration::from_secs(3));
    // NTP steps the wall clock to the present 2.5 s after boot.
    let synced = Duration::from_secs(crate::clock_check::BUILD_UNIX + 10);
    clock.step_unix_at(Instant::from_millis(2500), synced);
    let mut agent = Agent::new(
        Box::new(clock.clone()),
        Box::new(ScriptedTransport::new()),
        Box::new(MemoryStore::new()),
    );
    agent.wait_for_clock(Duration::from_secs(60)).unwrap();
    assert_eq!(
        clock.now(),
        Instant::from_secs(3),
        "checked once a second until the step"
    );
    assert!(agent.wait_for_clock(Duration::ZERO).is_ok());
}

#[cfg(feature = "rest")]
#[test]
fn a_certificate_failure_on_a_call_is_reported_as_the_transport_said_it() {
    let mut r = rig();
    r.agent.store.save(&stored_record("RT-A")).unwrap();
    r.transport.push_json(200, &refreshed("AT-1"));
    let detail = "acme.my.salesforce.com: TLS verification failed. If the server uses a private \
                  CA, pass its certificate with --ca-file";
    r.transport.push(Err(crate::wire::TransportError::new(
        TransportErrorKind::Certificate,
        detail,
    )));
    let mut body = Vec::new();
    let err = r
        .agent
        .call(&RestRequest::get("/x").unwrap(), &mut body)
        .clean_err();
    assert_eq!(err.kind(), ErrorKind::Network);
    // The hint the transport gave, once: nothing appended on the way.
    assert_eq!(err.message(), detail);
    assert!(body.is_empty());
}

/// A JWT access token `exp` seconds after the rig's clock (1,800,000,000).
fn jwt_access_token(lifetime: u64) -> String {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    format!(
        "{}.{}.c2ln",
        b64(r#"{"alg":"RS256"}"#),
        b64(&format!(r#"{{"exp":{}}}"#, 1_800_000_000 + lifetime))
    )
}

#[test]
fn a_jwt_access_token_is_refreshed_shortly_before_its_exp() {
    let mut r = rig();
    r.agent.store.save(&stored_record("RT-A")).unwrap();
    r.transport
        .push_json(200, &refreshed(&jwt_access_token(7200)));
    let first = r.agent.access_token().unwrap();
    assert_eq!(
        r.agent.expires_in(&first),
        Some(Duration::from_secs(7200 - 60))
    );
    r.clock.advance(Duration::from_secs(7200 - 61));
    assert_eq!(r.agent.access_token().unwrap().generation, first.generation);
    r.clock.advance(Duration::from_secs(1));
    r.transport.push_json(200, &refreshed("00D!OPAQUE"));
    let second = r.agent.access_token().unwrap();
    assert_eq!(second.generation, first.generation + 1);
    // An opaque token says nothing: used until the server refuses it.
    assert_eq!(r.agent.expires_in(&second), None);
    r.clock.advance(Duration::from_secs(100_000));
    assert_eq!(
        r.agent.access_token().unwrap().generation,
        second.generation
    );
    assert_eq!(
        grants(&r),
        ["refresh_token", "refresh_token"],
        "two refreshes, no 401 needed"
    );
}

#[cfg(feature = "client-credentials")]
#[test]
fn a_headless_record_is_renewed_by_its_grant_and_never_by_a_refresh_token() {
    let mut r = rig();
    r.agent.set_client_secret(Some(Secret::new("sim-secret")));
    let record = Record {
        refresh_token: Secret::new(""),
        login_url: "https://acme.my.salesforce.com".into(),
        token_url: "https://acme.my.salesforce.com/services/oauth2/token".into(),
        grant: record::Grant::client_credentials(),
        ..stored_record("")
    };
    r.agent.store.save(&record).unwrap();
    let before = r.store.saves();
    // A consumer secret is configured, so the reply must carry a valid signature.
    let reply = signed("", SIGNATURE)
        .replace(r#""refresh_token":"","#, "")
        .replace("AT-S", "00D!CC1");
    r.transport.push_json(200, &reply);
    let first = r.agent.access_token().unwrap();
    assert_eq!(first.access_token.expose(), "00D!CC1");
    // Refused by the server: one more grant, once, however many report it.
    r.agent.session_refused(first.generation);
    r.agent.session_refused(first.generation);
    r.transport
        .push_json(200, &reply.replace("00D!CC1", "00D!CC2"));
    let second = r.agent.access_token().unwrap();
    assert_eq!(second.access_token.expose(), "00D!CC2");
    assert_eq!(second.generation, first.generation + 1);
    let sent = r.transport.sent();
    assert_eq!(sent.len(), 2);
    for (_, request) in &sent {
        assert_eq!(request.form_field("grant_type"), Some("client_credentials"));
        assert_eq!(
            request.form_secret("client_secret").map(Secret::expose),
            Some("sim-secret")
        );
        assert!(request.form_secret("refresh_token").is_none());
    }
    assert_eq!(
        r.store.saves(),
        before,
        "a new session changes nothing stored"
    );
    // forget: nothing to revoke, nothing sent, the store wiped.
    assert_eq!(r.agent.forget().unwrap(), Forgotten::NoRefreshToken);
    assert_eq!(r.transport.sent().len(), 2);
    assert!(r.store.bytes().is_none());
}

#[cfg(all(feature = "client-credentials", feature = "asset-token"))]
#[test]
fn an_asset_token_exchange_renews_a_refused_subject_token_once() {
    let mut r = rig();
    r.agent.set_client_secret(Some(Secret::new("sim-secret")));
    let record = Record {
        refresh_token: Secret::new(""),
        grant: record::Grant::client_credentials(),
        ..stored_record("")
    };
    r.agent.store.save(&record).unwrap();
    let session = signed("", SIGNATURE).replace(r#""refresh_token":"","#, "");
    let refused = r#"{"error":"invalid_grant","error_description":"the subject token is not a valid session"}"#;
    let asset = r#"{"access_token":"eyJ.asset.t","issued_token_type":"urn:ietf:params:oauth:token-type:jwt","token_type":"Bearer","expires_in":600}"#;
    r.transport.push_json(200, &session);
    r.transport.push_json(400, refused);
    r.transport.push_json(200, &session);
    r.transport.push_json(200, asset);
    let device = crate::jwt::DeviceClaims {
        device_id: "GW-1".into(),
        ..Default::default()
    };
    let reply = r.agent.asset_token(&device, None).unwrap();
    assert_eq!(reply["expires_in"], 600);
    let grants: Vec<_> = r
        .transport
        .sent()
        .iter()
        .map(|(_, q)| q.form_field("grant_type").unwrap_or("").to_string())
        .collect();
    assert_eq!(
        grants,
        [
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:token-exchange",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:token-exchange"
        ]
    );
    // Refused twice: exit 1 with the server's words (not a table row), no third grant.
    r.agent.session_refused(u64::MAX);
    r.transport.push_json(400, refused);
    r.transport.push_json(200, &session);
    r.transport.push_json(400, refused);
    let err = r.agent.asset_token(&device, None).unwrap_err();
    assert_eq!(err.exit_code(), 1, "{}", err.message());
    assert!(err.message().contains("not a valid session"));
    assert_eq!(r.transport.sent().len(), 7);
}

/// A presenter that asks for a stop when the code is shown: the person walks away.
struct StopOnCode(crate::stop::Stop);

impl crate::present::Presenter for StopOnCode {
    fn show(&mut self, event: &crate::event::Event) {
        if matches!(event, crate::event::Event::CodeIssued(_)) {
            self.0.stop();
        }
    }
}

#[test]
fn a_stop_ends_a_pairing_at_its_next_wait_and_sends_nothing_more() {
    let mut r = rig();
    let stop = crate::stop::Stop::new();
    r.agent.set_stop(stop.clone());
    r.agent.add_presenter(Box::new(StopOnCode(stop)));
    r.transport.push(Ok(code_reply()));
    r.transport
        .push_json(400, r#"{"error":"authorization_pending"}"#);
    let e = r.agent.pair(flow_config()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Stopped, "{e}");
    assert_eq!(e.exit_code(), 0);
    assert_eq!(
        r.transport.sent().len(),
        1,
        "the code request only: no poll"
    );
    assert!(matches!(r.store.load().unwrap(), Loaded::Empty));
    assert!(
        r.events.events().iter().any(
            |ev| matches!(ev, crate::event::Event::Failed(f) if f.kind() == ErrorKind::Stopped)
        ),
        "the presenters are told"
    );
}

#[test]
fn a_stop_ends_a_retry_backoff_before_the_next_attempt() {
    let mut r = rig();
    r.agent.store.save(&stored_record("RT-1")).unwrap();
    let stop = crate::stop::Stop::new();
    r.agent.set_stop(stop.clone());
    r.transport.push_json(503, "{}");
    stop.stop();
    let e = r.agent.refresh().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Stopped, "{e}");
    assert!(
        r.transport.sent().is_empty(),
        "stopped before the first request"
    );
}
