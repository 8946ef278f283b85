//! The Streaming API over real TLS, with a small Bayeux client of raw requests: the
//! handshake and its cookies, subscribe with replay (-1, -2, a stored id, an invalid
//! one), the held connect and its early answer, retention, the concurrent client limit,
//! a silent client forgotten, every error path, the two faults (a forgotten client, a
//! cut reply), platform events published over REST, and change events for records
//! created and updated over REST.

mod client;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use client::{CLIENT_ID, Client, Reply};
use serde_json::{Value, json};
use sfpair_sim::{Config, Schema, Sim};

const V: &str = "/services/data/v62.0";
const COMETD: &str = "/cometd/62.0";
const COMMANDS: &str = "/event/Device_Command__e";
const DEVICES: &str = "/data/Device__ChangeEvent";
/// Short enough for tests, long enough to tell a held connect from an early answer.
const HOLD: Duration = Duration::from_millis(1500);

fn config() -> Config {
    Config {
        schema: Schema::from_json(include_str!("../schemas/example-firmware.json")).unwrap(),
        streaming_hold: HOLD,
        ..Config::default()
    }
}

/// A fresh access token through the device flow.
fn token(sim: &Sim) -> String {
    let mut client = Client::connect(sim).unwrap();
    let form = [("response_type", "device_code"), ("client_id", CLIENT_ID)];
    let step1 = client
        .post_form("/services/oauth2/token", &form)
        .unwrap()
        .json();
    assert!(sim.approve(step1["user_code"].as_str().unwrap()));
    let form = [
        ("grant_type", "device"),
        ("client_id", CLIENT_ID),
        ("code", step1["device_code"].as_str().unwrap()),
    ];
    let token = client
        .post_form("/services/oauth2/token", &form)
        .unwrap()
        .json();
    token["access_token"].as_str().unwrap().to_string()
}

/// One REST call on its own connection.
fn rest(sim: &Sim, token: &str, method: &str, path: &str, body: Option<Value>) -> Reply {
    let mut client = Client::connect(sim).unwrap();
    let auth = format!("Bearer {token}");
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    client
        .request(method, &format!("{V}{path}"), &headers, body.as_bytes())
        .unwrap()
}

/// A Bayeux client: one connection, a session, and a cookie jar.
struct Bayeux {
    client: Client,
    auth: Option<String>,
    cookies: BTreeMap<String, String>,
    client_id: String,
    next_id: u64,
}

impl Bayeux {
    fn new(sim: &Sim, token: &str) -> Bayeux {
        Bayeux {
            client: Client::connect(sim).unwrap(),
            auth: Some(format!("Bearer {token}")),
            cookies: BTreeMap::new(),
            client_id: String::new(),
            next_id: 0,
        }
    }

    /// Posts messages; keeps the cookies the answer sets. `Err` when the connection
    /// failed before a whole answer.
    fn try_post(&mut self, path: &str, messages: Value) -> std::io::Result<Reply> {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(auth) = &self.auth {
            headers.push(("Authorization", auth.as_str()));
        }
        if !cookie.is_empty() {
            headers.push(("Cookie", cookie.as_str()));
        }
        let reply = self
            .client
            .request("POST", path, &headers, messages.to_string().as_bytes())?;
        for (name, value) in &reply.headers {
            if name.eq_ignore_ascii_case("set-cookie") {
                let pair = value.split(';').next().unwrap();
                let (k, v) = pair.split_once('=').unwrap();
                self.cookies.insert(k.to_string(), v.to_string());
            }
        }
        Ok(reply)
    }

    /// Sends one message and returns every message of the answer.
    fn send(&mut self, mut message: Value) -> Vec<Value> {
        self.next_id += 1;
        message["id"] = json!(self.next_id.to_string());
        if !self.client_id.is_empty() && message.get("clientId").is_none() {
            message["clientId"] = json!(self.client_id);
        }
        let reply = self.try_post(COMETD, json!([message])).unwrap();
        assert_eq!(reply.status, 200, "{}", reply.text());
        let answer = reply.json().as_array().unwrap().clone();
        // Every reply names the request it answers.
        let last = answer.last().unwrap();
        assert_eq!(last["id"], json!(self.next_id.to_string()), "{answer:?}");
        answer
    }

    fn handshake(&mut self) -> Value {
        let reply = self.send(json!({
            "channel": "/meta/handshake",
            "version": "1.0",
            "supportedConnectionTypes": ["long-polling"],
        }));
        let reply = reply[0].clone();
        if reply["successful"] == true {
            self.client_id = reply["clientId"].as_str().unwrap().to_string();
        }
        reply
    }

    fn subscribe(&mut self, channel: &str, replay: Option<Value>) -> Value {
        let mut message = json!({"channel": "/meta/subscribe", "subscription": channel});
        if let Some(replay) = replay {
            message["ext"] = json!({"replay": {channel: replay}});
        }
        self.send(message)[0].clone()
    }

    /// A connect: the event messages, then the connect reply.
    fn connect(&mut self) -> (Vec<Value>, Value) {
        let mut answer =
            self.send(json!({"channel": "/meta/connect", "connectionType": "long-polling"}));
        let reply = answer.pop().unwrap();
        (answer, reply)
    }

    /// Handshake, subscribe, and the first connect (which answers at once).
    fn ready(sim: &Sim, token: &str, channel: &str, replay: Value) -> Bayeux {
        let mut bayeux = Bayeux::new(sim, token);
        assert_eq!(bayeux.handshake()["successful"], true);
        assert_eq!(bayeux.subscribe(channel, Some(replay))["successful"], true);
        let (events, reply) = bayeux.connect();
        assert!(events.is_empty(), "{events:?}");
        assert_eq!(reply["successful"], true);
        bayeux
    }
}

fn replay_ids(events: &[Value]) -> Vec<i64> {
    events
        .iter()
        .map(|e| e["data"]["event"]["replayId"].as_i64().unwrap())
        .collect()
}

fn command(sim: &Sim, device: &str, verb: &str) -> (i64, String) {
    sim.publish_event(
        "Device_Command__e",
        json!({"Device_Id__c": device, "Command__c": verb}),
    )
    .unwrap()
}

#[test]
fn handshake_sets_the_cookies_and_the_first_connect_gives_the_advice() {
    let sim = Sim::start(config()).unwrap();
    let t = token(&sim);
    let mut bayeux = Bayeux::new(&sim, &t);
    let reply = bayeux.handshake();
    assert_eq!(reply["successful"], true);
    assert_eq!(reply["channel"], "/meta/handshake");
    assert_eq!(reply["version"], "1.0");
    assert_eq!(reply["supportedConnectionTypes"], json!(["long-polling"]));
    assert_eq!(reply["ext"]["replay"], true);
    assert!(
        reply.get("advice").is_none(),
        "Salesforce's handshake has none"
    );
    let id = reply["clientId"].as_str().unwrap();
    assert!(id.len() > 20 && id.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert!(bayeux.cookies.contains_key("BAYEUX_BROWSER"));
    assert!(bayeux.cookies.contains_key("sfdc-stream"));

    let started = Instant::now();
    let (events, first) = bayeux.connect();
    assert!(
        started.elapsed() < HOLD / 2,
        "the first connect is not held"
    );
    assert!(events.is_empty());
    assert_eq!(first["clientId"], id);
    assert_eq!(
        first["advice"],
        json!({"interval": 0, "timeout": HOLD.as_millis() as u64, "reconnect": "retry"})
    );
    // A second handshake of the same browser keeps its cookie.
    let browser = bayeux.cookies["BAYEUX_BROWSER"].clone();
    let again = bayeux.handshake();
    assert_eq!(again["successful"], true);
    assert_ne!(again["clientId"], json!(id));
    assert_eq!(bayeux.cookies["BAYEUX_BROWSER"], browser);
    assert_eq!(sim.streaming_stats().handshakes, 2);
}

#[test]
fn a_held_connect_lasts_the_hold_and_an_event_answers_it_early() {
    let sim = Sim::start(config()).unwrap();
    let t = token(&sim);
    let mut bayeux = Bayeux::ready(&sim, &t, COMMANDS, json!(-1));

    let started = Instant::now();
    let (events, reply) = bayeux.connect();
    let held = started.elapsed();
    assert!(events.is_empty());
    assert!(held >= HOLD, "held {held:?}");
    assert!(held < HOLD * 3, "held {held:?}");
    assert_eq!(reply["successful"], true);
    assert!(
        reply.get("advice").is_none(),
        "only the first connect advises"
    );

    let (published, waited) = std::thread::scope(|scope| {
        let publisher = scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            command(&sim, "GW-1", "reboot")
        });
        let started = Instant::now();
        let answer = bayeux.connect();
        (publisher.join().unwrap(), (answer, started.elapsed()))
    });
    let ((events, reply), elapsed) = waited;
    assert!(elapsed < HOLD, "answered after {elapsed:?}");
    assert_eq!(replay_ids(&events), [published.0]);
    let event = &events[0];
    assert_eq!(event["channel"], COMMANDS);
    assert_eq!(event["data"]["event"]["EventUuid"], published.1.as_str());
    assert_eq!(event["data"]["payload"]["Device_Id__c"], "GW-1");
    assert_eq!(event["data"]["payload"]["Command__c"], "reboot");
    assert_eq!(event["data"]["payload"]["Args__c"], Value::Null);
    assert!(
        event["data"]["payload"]["CreatedDate"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert!(
        event["data"]["payload"]["CreatedById"]
            .as_str()
            .unwrap()
            .starts_with("005")
    );
    assert!(event["data"]["schema"].as_str().unwrap().len() >= 20);
    assert_eq!(reply["channel"], "/meta/connect");
    assert_eq!(reply["successful"], true);

    let view = sim.streaming_clients();
    assert_eq!(view.len(), 1);
    assert_eq!(view[0].last_replay_id, Some(published.0));
    assert_eq!(view[0].events_delivered, 1);
    assert_eq!(view[0].subscriptions, [(COMMANDS.to_string(), published.0)]);
    assert_eq!(view[0].connects, 3);
    let stats = sim.streaming_stats();
    assert_eq!((stats.connects, stats.events_delivered), (3, 1));
}

#[test]
fn replay_new_all_from_an_id_and_an_invalid_id() {
    let sim = Sim::start(config()).unwrap();
    let t = token(&sim);
    let before: Vec<(i64, String)> = (0..3)
        .map(|i| command(&sim, "GW-1", &format!("c{i}")))
        .collect();
    let ids: Vec<i64> = before.iter().map(|(id, _)| *id).collect();
    assert!(ids.windows(2).all(|w| w[1] > w[0]));

    // -1: only what comes after the subscription.
    let mut new_only = Bayeux::ready(&sim, &t, COMMANDS, json!(-1));
    let later = command(&sim, "GW-1", "later");
    let (events, _) = new_only.connect();
    assert_eq!(replay_ids(&events), [later.0]);

    // -2: everything retained.
    let mut all = Bayeux::new(&sim, &t);
    all.handshake();
    all.subscribe(COMMANDS, Some(json!(-2)));
    let (events, _) = all.connect();
    assert_eq!(replay_ids(&events), [ids[0], ids[1], ids[2], later.0]);
    let uuids: Vec<&str> = events
        .iter()
        .map(|e| e["data"]["event"]["EventUuid"].as_str().unwrap())
        .collect();
    assert_eq!(
        uuids[..3],
        [&before[0].1, &before[1].1, &before[2].1].map(String::as_str)
    );

    // A stored id (sent as text, as some clients do): the events after it.
    let mut stored = Bayeux::new(&sim, &t);
    stored.handshake();
    assert_eq!(
        stored.subscribe(COMMANDS, Some(json!(ids[0].to_string())))["successful"],
        true
    );
    let (events, _) = stored.connect();
    assert_eq!(replay_ids(&events), [ids[1], ids[2], later.0]);

    // No replay extension: new events only.
    let mut plain = Bayeux::new(&sim, &t);
    plain.handshake();
    assert_eq!(plain.subscribe(COMMANDS, None)["successful"], true);
    assert!(plain.connect().0.is_empty());

    // Never issued: refused in Salesforce's words, and nothing is subscribed.
    let mut wrong = Bayeux::new(&sim, &t);
    wrong.handshake();
    let never = later.0 + 1_000_000;
    for bad in [json!(never), json!(1), json!(-3)] {
        let refused = wrong.subscribe(COMMANDS, Some(bad.clone()));
        assert_eq!(refused["successful"], false);
        assert_eq!(refused["subscription"], COMMANDS);
        assert_eq!(
            refused["error"],
            format!(
                "400::The replayId {{{bad}}} you provided was invalid. Please provide a valid ID, -2 to replay all events, or -1 to replay only new events."
            )
        );
    }
    // An id of another channel is no position on this one.
    let alarm = rest(
        &sim,
        &t,
        "POST",
        "/sobjects/Device_Alarm__e",
        Some(json!({"Code__c": "HOT"})),
    );
    assert_eq!(alarm.status, 201);
    let alarm_id = sim.published_events().last().unwrap().replay_id;
    let refused = wrong.subscribe(COMMANDS, Some(json!(alarm_id)));
    assert_eq!(refused["successful"], false);
    let (events, _) = wrong.connect();
    assert!(events.is_empty());
    assert_eq!(sim.streaming_stats().invalid_replays, 4);
    let view = sim.streaming_clients();
    let wrong_view = view
        .iter()
        .find(|c| c.client_id == wrong.client_id)
        .unwrap();
    assert!(wrong_view.subscriptions.is_empty());
}

#[test]
fn events_past_the_retention_are_gone_and_their_ids_refused() {
    let sim = Sim::start(config()).unwrap();
    let t = token(&sim);
    sim.set_event_retention(Duration::from_millis(700));
    let old = command(&sim, "GW-1", "old");
    std::thread::sleep(Duration::from_millis(800));
    let fresh = command(&sim, "GW-1", "fresh");
    assert_eq!(
        sim.published_events()
            .iter()
            .map(|e| e.replay_id)
            .collect::<Vec<_>>(),
        [fresh.0]
    );
    let mut bayeux = Bayeux::new(&sim, &t);
    bayeux.handshake();
    let refused = bayeux.subscribe(COMMANDS, Some(json!(old.0)));
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .starts_with(&format!("400::The replayId {{{}}}", old.0))
    );
    bayeux.subscribe(COMMANDS, Some(json!(-2)));
    let (events, _) = bayeux.connect();
    assert_eq!(replay_ids(&events), [fresh.0]);
    // The newest id itself ages out too: a device away longer than the retention.
    std::thread::sleep(Duration::from_millis(800));
    let refused = bayeux.subscribe(COMMANDS, Some(json!(fresh.0)));
    assert_eq!(refused["successful"], false);
}

#[test]
fn the_concurrent_client_limit_denies_a_handshake_until_a_slot_frees() {
    let sim = Sim::start(config()).unwrap();
    let t = token(&sim);
    sim.set_streaming_client_limit(2);
    let mut a = Bayeux::new(&sim, &t);
    let mut b = Bayeux::new(&sim, &t);
    let mut c = Bayeux::new(&sim, &t);
    assert_eq!(a.handshake()["successful"], true);
    assert_eq!(b.handshake()["successful"], true);
    let denied = c.handshake();
    assert_eq!(denied["successful"], false);
    assert_eq!(denied["error"], "403::Handshake denied");
    assert_eq!(
        denied["ext"]["sfdc"]["failureReason"],
        "403::Organization concurrent user limit exceeded"
    );
    assert_eq!(denied["advice"]["reconnect"], "none");
    assert!(denied.get("clientId").is_none());
    let limits = rest(&sim, &t, "GET", "/limits", None).json();
    assert_eq!(
        limits["DurableStreamingApiConcurrentClients"],
        json!({"Max": 2, "Remaining": 0})
    );

    let bye = a.send(json!({"channel": "/meta/disconnect"}));
    assert_eq!(bye[0]["successful"], true);
    assert_eq!(c.handshake()["successful"], true);
    // The disconnected client is gone.
    let (_, gone) = a.connect();
    assert_eq!(gone["error"], "403::Unknown client");
    let stats = sim.streaming_stats();
    assert_eq!(
        (
            stats.handshakes,
            stats.denied_handshakes,
            stats.limit_refusals,
            stats.disconnects
        ),
        (3, 1, 1, 1)
    );
    assert_eq!((stats.clients_now, stats.clients_max), (2, 2));
    // The log shows the Bayeux error of each answer.
    assert!(
        sim.log()
            .iter()
            .any(|e| e.path == COMETD && e.error.as_deref() == Some("403::Handshake denied"))
    );
}

#[test]
fn a_silent_client_is_forgotten() {
    let sim = Sim::start(config()).unwrap();
    let t = token(&sim);
    sim.set_streaming_silence(Duration::from_millis(500));
    let mut bayeux = Bayeux::ready(&sim, &t, COMMANDS, json!(-1));
    // Held connects are not silence: this one lasts 1.5 s, three windows.
    let (_, held) = bayeux.connect();
    assert_eq!(held["successful"], true);
    std::thread::sleep(Duration::from_millis(700));
    let (events, reply) = bayeux.connect();
    assert!(events.is_empty());
    assert_eq!(reply["error"], "403::Unknown client");
    assert_eq!(
        reply["advice"],
        json!({"interval": 0, "reconnect": "handshake"})
    );
    assert!(reply.get("clientId").is_none());
    assert_eq!(sim.streaming_stats().forgotten, 1);
    assert_eq!(sim.streaming_stats().clients_now, 0);
}

#[test]
fn cookies_must_come_back_and_be_the_clients_own() {
    let sim = Sim::start(config()).unwrap();
    let t = token(&sim);
    let mut bayeux = Bayeux::ready(&sim, &t, COMMANDS, json!(-1));
    let jar = bayeux.cookies.clone();

    // No BAYEUX_BROWSER: CometD's cookie error.
    bayeux.cookies.remove("BAYEUX_BROWSER");
    let (_, reply) = bayeux.connect();
    assert_eq!(reply["successful"], false);
    assert_eq!(
        reply["error"],
        format!(
            "400::Client {} has established a session, but no BAYEUX_BROWSER cookie present",
            bayeux.client_id
        )
    );

    // No sfdc-stream: another server, which does not know the client; the load
    // balancer pins a new one.
    bayeux.cookies = jar.clone();
    bayeux.cookies.remove("sfdc-stream");
    let (_, reply) = bayeux.connect();
    assert_eq!(reply["error"], "403::Unknown client");
    assert_eq!(reply["advice"]["reconnect"], "handshake");
    assert!(bayeux.cookies.contains_key("sfdc-stream"));
    assert_ne!(bayeux.cookies["sfdc-stream"], jar["sfdc-stream"]);

    // Another client's cookies.
    let other = Bayeux::ready(&sim, &t, COMMANDS, json!(-1));
    bayeux.cookies = other.cookies.clone();
    let (_, reply) = bayeux.connect();
    assert_eq!(reply["error"], "403::Unknown client");

    // Its own cookies again: still known.
    bayeux.cookies = jar;
    let event = command(&sim, "GW-1", "x");
    let (events, reply) = bayeux.connect();
    assert_eq!(reply["successful"], true);
    assert_eq!(replay_ids(&events), [event.0]);
}

#[test]
fn sessions_and_requests_that_are_refused() {
    let sim = Sim::start(config()).unwrap();
    let t = token(&sim);

    let mut stranger = Bayeux::new(&sim, "00DSIM0000000012BA!not.a.session");
    let denied = stranger.handshake();
    assert_eq!(denied["error"], "403::Handshake denied");
    assert_eq!(
        denied["ext"]["sfdc"]["failureReason"],
        "401::Authentication invalid"
    );
    assert_eq!(denied["advice"], json!({"reconnect": "none"}));

    // `OAuth` is accepted as well as `Bearer` (jsforce's faye client sends it).
    let mut bayeux = Bayeux::ready(&sim, &t, COMMANDS, json!(-1));
    bayeux.auth = Some(format!("OAuth {t}"));
    let event = command(&sim, "GW-1", "x");
    assert_eq!(replay_ids(&bayeux.connect().0), [event.0]);

    sim.expire_sessions();
    let (_, refused) = bayeux.connect();
    assert_eq!(refused["error"], "401::Authentication invalid");
    assert_eq!(
        refused["advice"],
        json!({"reconnect": "none", "interval": 0})
    );
    assert_eq!(refused["clientId"], bayeux.client_id.as_str());
    let subscribe = bayeux.subscribe(COMMANDS, Some(json!(-1)));
    assert_eq!(subscribe["error"], "401::Authentication invalid");

    let t = token(&sim);
    let mut fresh = Bayeux::new(&sim, &t);
    fresh.auth = None;
    let reply = fresh
        .try_post(COMETD, json!([{"channel": "/meta/handshake"}]))
        .unwrap();
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.json()[0]["error"],
        "401::Request requires authentication"
    );
    fresh.auth = Some(format!("Bearer {t}"));
    for (path, error) in [
        (
            "/cometd",
            "400::API version in the URI is mandatory. URI format: '/cometd/67.0'",
        ),
        (
            "/cometd/36.0",
            "400::Unsupported API version. Only API versions '37.0' and later are supported. URI format: '/cometd/67.0'",
        ),
    ] {
        let reply = fresh
            .try_post(path, json!([{"channel": "/meta/handshake"}]))
            .unwrap();
        assert_eq!(reply.status, 400, "{path}");
        assert_eq!(reply.json()[0]["error"], error, "{path}");
    }
    let big = json!([{"channel": "/meta/handshake", "pad": "x".repeat(33_000)}]);
    assert_eq!(fresh.try_post(COMETD, big).unwrap().status, 413);

    fresh.handshake();
    for (channel, error) in [
        (
            "/event/Nope__e",
            "400::The channel you requested to subscribe to does not exist {/event/Nope__e}",
        ),
        (
            "/event/device_command__e",
            "400::The channel you requested to subscribe to does not exist {/event/device_command__e}",
        ),
        (
            "/data/Nope__ChangeEvent",
            "400::The channel you requested to subscribe to does not exist {/data/Nope__ChangeEvent}",
        ),
        (
            "event/Device_Command__e",
            "400::Channel subscriptions must start with a leading '/'",
        ),
        ("", "400::Channel name not specified"),
    ] {
        let reply = fresh.subscribe(channel, None);
        assert_eq!(reply["successful"], false, "{channel}");
        assert_eq!(reply["error"], error, "{channel}");
    }
    let reply =
        fresh.send(json!({"channel": "/meta/connect", "connectionType": "callback-polling"}));
    assert_eq!(
        reply[0]["error"],
        "400::Invalid connection type {callback-polling}"
    );
    let never = fresh.send(
        json!({"channel": "/meta/connect", "clientId": "nobody", "connectionType": "long-polling"}),
    );
    assert_eq!(never[0]["error"], "403::Unknown client");
    // The session never reaches the request log.
    let log = format!("{:?}", sim.log());
    assert!(!log.contains(&t));
}

#[test]
fn unsubscribe_stops_delivery_and_change_events_reach_the_all_channel() {
    let sim = Sim::start(config()).unwrap();
    let t = token(&sim);
    let mut bayeux = Bayeux::ready(&sim, &t, COMMANDS, json!(-1));
    bayeux.subscribe("/data/ChangeEvents", Some(json!(-1)));
    let reply = bayeux.send(json!({"channel": "/meta/unsubscribe", "subscription": COMMANDS}));
    assert_eq!(reply[0]["successful"], true);
    command(&sim, "GW-1", "ignored");
    let created = rest(
        &sim,
        &t,
        "POST",
        "/sobjects/Device__c",
        Some(json!({"Name": "GW-1", "Device_Id__c": "GW-1"})),
    );
    assert_eq!(created.status, 201);
    let (events, _) = bayeux.connect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["channel"], DEVICES);
    assert_eq!(sim.streaming_stats().unsubscribes, 1);
}

#[test]
fn forget_every_nth_connect_and_cut_every_nth_event_reply() {
    let sim = Sim::start(config()).unwrap();
    let t = token(&sim);
    let mut bayeux = Bayeux::ready(&sim, &t, COMMANDS, json!(-2));
    // Connects so far: 1. The 3rd forgets its client.
    sim.set_forget_client_every(3);
    command(&sim, "GW-1", "a");
    assert_eq!(bayeux.connect().0.len(), 1);
    let (_, forgotten) = bayeux.connect();
    assert_eq!(forgotten["error"], "403::Unknown client");
    assert_eq!(forgotten["advice"]["reconnect"], "handshake");
    sim.set_forget_client_every(0);

    // A new client replays from the stored id; every 3rd reply with events is cut (the
    // count is the org's: the 1st was the reply that carried "a").
    let stored = sim.published_events()[0].replay_id;
    sim.set_cut_event_reply_every(3);
    let mut again = Bayeux::new(&sim, &t);
    again.handshake();
    again.subscribe(COMMANDS, Some(json!(stored)));
    assert!(again.connect().0.is_empty());
    let b = command(&sim, "GW-1", "b");
    assert_eq!(replay_ids(&again.connect().0), [b.0]);
    let c = command(&sim, "GW-1", "c");
    let d = command(&sim, "GW-1", "d");
    let cut = again.try_post(
        COMETD,
        json!([{"channel": "/meta/connect", "clientId": again.client_id, "connectionType": "long-polling", "id": "x"}]),
    );
    assert!(cut.is_err(), "the reply was cut: {cut:?}");
    let stats = sim.streaming_stats();
    assert_eq!((stats.event_replies, stats.cut_replies), (3, 1));
    // The events were taken: the server moved past them ...
    let view = sim.streaming_clients();
    let taken = view
        .iter()
        .find(|v| v.client_id == again.client_id)
        .unwrap();
    assert_eq!(taken.last_replay_id, Some(d.0));
    // ... so only a replay from the last id the client stored gets them again.
    let mut replayed = Bayeux::new(&sim, &t);
    replayed.handshake();
    replayed.subscribe(COMMANDS, Some(json!(b.0)));
    sim.set_cut_event_reply_every(0);
    assert_eq!(replay_ids(&replayed.connect().0), [c.0, d.0]);
}

#[test]
fn platform_events_published_over_rest_are_enqueued_with_their_uuid() {
    let sim = Sim::start(config()).unwrap();
    let t = token(&sim);
    let mut bayeux = Bayeux::ready(&sim, &t, COMMANDS, json!(-1));
    let single = rest(
        &sim,
        &t,
        "POST",
        "/sobjects/Device_Command__e",
        Some(json!({"Device_Id__c": "GW-1", "Command__c": "reboot"})),
    );
    assert_eq!(single.status, 201);
    let single = single.json();
    assert!(single["id"].as_str().unwrap().starts_with("e0"));
    assert_eq!(single["success"], true);
    assert_eq!(single["errors"][0]["statusCode"], "OPERATION_ENQUEUED");
    let uuid = single["errors"][0]["message"].as_str().unwrap().to_string();
    assert_eq!(uuid.len(), 36);

    let batch = json!({"allOrNone": false, "records": [
        {"attributes": {"type": "Device_Command__e"}, "Device_Id__c": "GW-1", "Command__c": "a"},
        {"attributes": {"type": "Device_Command__e"}, "Device_Id__c": "GW-2", "Command__c": "b"},
    ]});
    let results = rest(&sim, &t, "POST", "/composite/sobjects", Some(batch)).json();
    let mut uuids = vec![uuid];
    for result in results.as_array().unwrap() {
        assert_eq!(result["errors"][0]["statusCode"], "OPERATION_ENQUEUED");
        uuids.push(result["errors"][0]["message"].as_str().unwrap().to_string());
    }
    // A rolled-back batch publishes nothing.
    let failing = json!({"allOrNone": true, "records": [
        {"attributes": {"type": "Device_Command__e"}, "Device_Id__c": "GW-3", "Command__c": "c"},
        {"attributes": {"type": "Device_Command__e"}, "Nope__c": 1},
    ]});
    let rolled = rest(&sim, &t, "POST", "/composite/sobjects", Some(failing)).json();
    assert_eq!(rolled[0]["success"], false);

    let (events, _) = bayeux.connect();
    let got: Vec<&str> = events
        .iter()
        .map(|e| e["data"]["event"]["EventUuid"].as_str().unwrap())
        .collect();
    assert_eq!(got, uuids.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(events[2]["data"]["payload"]["Device_Id__c"], "GW-2");
    // What was published is listed, and stored as records with their EventUuid.
    assert_eq!(sim.published_events().len(), 3);
    let stored = sim.records("Device_Command__e");
    assert_eq!(stored.len(), 3);
    assert_eq!(stored[0]["EventUuid"], uuids[0].as_str());
    // Before v52.0 the event carries no EventUuid.
    let mut old = Bayeux::new(&sim, &t);
    let first = old
        .try_post(
            "/cometd/51.0",
            json!([{"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["long-polling"]}]),
        )
        .unwrap()
        .json();
    old.client_id = first[0]["clientId"].as_str().unwrap().to_string();
    let subscribe = json!([{"channel": "/meta/subscribe", "clientId": old.client_id, "subscription": COMMANDS, "ext": {"replay": {COMMANDS: -2}}}]);
    old.try_post("/cometd/51.0", subscribe).unwrap();
    let connect = json!([{"channel": "/meta/connect", "clientId": old.client_id, "connectionType": "long-polling"}]);
    let answer = old.try_post("/cometd/51.0", connect).unwrap().json();
    assert_eq!(answer.as_array().unwrap().len(), 4);
    assert!(answer[0]["data"]["event"].get("EventUuid").is_none());
    assert!(answer[0]["data"]["event"]["replayId"].is_i64());
}

#[test]
fn records_created_and_updated_over_rest_raise_change_events() {
    let sim = Sim::start(config()).unwrap();
    let t = token(&sim);
    let mut bayeux = Bayeux::ready(&sim, &t, DEVICES, json!(-1));

    // Created three ways: POST, an upsert that creates, a collection.
    let post = rest(
        &sim,
        &t,
        "POST",
        "/sobjects/Device__c",
        Some(json!({"Name": "Hub 1", "Device_Id__c": "GW-1", "Desired_Brightness__c": 40})),
    )
    .json();
    let upsert = rest(
        &sim,
        &t,
        "PATCH",
        "/sobjects/Device__c/Device_Id__c/GW-2",
        Some(json!({"Name": "Hub 2"})),
    );
    assert_eq!(upsert.status, 201);
    let collection = rest(
        &sim,
        &t,
        "POST",
        "/composite/sobjects",
        Some(json!({"records": [{"attributes": {"type": "Device__c"}, "Name": "Hub 3", "Device_Id__c": "GW-3"}]})),
    )
    .json();
    let ids = [
        post["id"].as_str().unwrap().to_string(),
        upsert.json()["id"].as_str().unwrap().to_string(),
        collection[0]["id"].as_str().unwrap().to_string(),
    ];
    let (events, _) = bayeux.connect();
    assert_eq!(events.len(), 3, "{events:?}");
    let mut keys = Vec::new();
    for (event, id) in events.iter().zip(&ids) {
        assert_eq!(event["channel"], DEVICES);
        let payload = &event["data"]["payload"];
        let header = &payload["ChangeEventHeader"];
        assert_eq!(header["entityName"], "Device__c");
        assert_eq!(header["recordIds"], json!([id]));
        assert_eq!(header["changeType"], "CREATE");
        assert_eq!(header["changedFields"], json!([]));
        assert_eq!(header["sequenceNumber"], 1);
        assert_eq!(header["commitUser"], "005SIM000000001YBA");
        assert_eq!(header["changeOrigin"], "com/salesforce/api/rest/62.0");
        assert!(header["commitTimestamp"].as_u64().unwrap() > 1_700_000_000_000);
        assert!(header["commitNumber"].as_u64().is_some());
        assert_eq!(header["transactionKey"].as_str().unwrap().len(), 36);
        keys.push(header["transactionKey"].clone());
        assert!(payload.get("Id").is_none());
        assert!(payload["CreatedDate"].as_str().unwrap().ends_with('Z'));
        assert!(event["data"]["event"].get("EventUuid").is_none());
    }
    assert_eq!(events[0]["data"]["payload"]["Desired_Brightness__c"], 40);
    assert_eq!(events[1]["data"]["payload"]["Device_Id__c"], "GW-2");
    keys.dedup();
    assert_eq!(keys.len(), 3, "one transaction per request");

    // Updated three ways; only the fields that changed travel.
    let by_id = rest(
        &sim,
        &t,
        "PATCH",
        &format!("/sobjects/Device__c/{}", ids[0]),
        Some(json!({"Desired_Brightness__c": 80, "Name": "Hub 1"})),
    );
    assert_eq!(by_id.status, 204);
    let by_key = rest(
        &sim,
        &t,
        "PATCH",
        "/sobjects/Device__c/Device_Id__c/GW-2",
        Some(json!({"Firmware_Channel__c": "beta"})),
    );
    assert_eq!(by_key.status, 200);
    let batch = json!({"records": [
        {"attributes": {"type": "Device__c"}, "Id": ids[2], "Reporting_Interval__c": 60},
        {"attributes": {"type": "Device__c"}, "Id": ids[0], "Desired_Brightness__c": null},
    ]});
    let updated = rest(&sim, &t, "PATCH", "/composite/sobjects", Some(batch)).json();
    assert_eq!(updated[0]["success"], true);
    let (events, _) = bayeux.connect();
    assert_eq!(events.len(), 4, "{events:?}");
    let header = |i: usize| events[i]["data"]["payload"]["ChangeEventHeader"].clone();
    assert_eq!(header(0)["changeType"], "UPDATE");
    assert_eq!(header(0)["recordIds"], json!([ids[0]]));
    assert_eq!(
        header(0)["changedFields"],
        json!(["Desired_Brightness__c", "LastModifiedDate"])
    );
    let first = &events[0]["data"]["payload"];
    assert_eq!(first["Desired_Brightness__c"], 80);
    assert!(first.get("Name").is_none(), "Name did not change");
    assert!(first["LastModifiedDate"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        header(1)["changedFields"],
        json!(["Firmware_Channel__c", "LastModifiedDate"])
    );
    assert_eq!(events[1]["data"]["payload"]["Firmware_Channel__c"], "beta");
    // One collection is one transaction: one key, numbered changes.
    assert_eq!(header(2)["transactionKey"], header(3)["transactionKey"]);
    assert_eq!(
        (
            header(2)["sequenceNumber"].clone(),
            header(3)["sequenceNumber"].clone()
        ),
        (json!(1), json!(2))
    );
    assert_eq!(header(3)["nulledFields"], json!(["Desired_Brightness__c"]));
    assert_eq!(
        events[3]["data"]["payload"]["Desired_Brightness__c"],
        Value::Null
    );
    assert!(header(2)["commitNumber"].as_u64() > header(0)["commitNumber"].as_u64());

    // The record by external id: attributes, every field, LastModifiedDate; 404 when missing.
    let record = rest(
        &sim,
        &t,
        "GET",
        "/sobjects/Device__c/Device_Id__c/GW-1",
        None,
    );
    assert_eq!(record.status, 200);
    let record = record.json();
    assert_eq!(record["attributes"]["type"], "Device__c");
    assert_eq!(
        record["attributes"]["url"],
        format!("{V}/sobjects/Device__c/{}", ids[0])
    );
    assert_eq!(record["Id"], ids[0].as_str());
    assert_eq!(record["Desired_Brightness__c"], Value::Null);
    assert!(
        record["LastModifiedDate"]
            .as_str()
            .unwrap()
            .ends_with("+0000")
    );
    let fields = rest(
        &sim,
        &t,
        "GET",
        "/sobjects/Device__c/Device_Id__c/GW-2?fields=Firmware_Channel__c,LastModifiedDate",
        None,
    )
    .json();
    assert_eq!(fields["Firmware_Channel__c"], "beta");
    assert_eq!(fields.as_object().unwrap().len(), 3, "{fields}");
    let missing = rest(
        &sim,
        &t,
        "GET",
        "/sobjects/Device__c/Device_Id__c/GW-404",
        None,
    );
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()[0]["errorCode"], "NOT_FOUND");
}

#[test]
fn a_newer_connect_of_the_same_client_ends_the_held_one_which_takes_nothing() {
    let sim = Sim::start(config()).unwrap();
    let t = token(&sim);
    let mut first = Bayeux::ready(&sim, &t, COMMANDS, json!(-1));
    // The same client on a second connection, as after a client-side read timeout.
    let mut second = Bayeux::new(&sim, &t);
    second.cookies = first.cookies.clone();
    second.client_id = first.client_id.clone();
    let ((old, old_took), new) = std::thread::scope(|scope| {
        let held = scope.spawn(|| {
            let started = Instant::now();
            let answer = first.connect();
            (answer, started.elapsed())
        });
        std::thread::sleep(Duration::from_millis(300));
        let new = scope.spawn(|| second.connect());
        std::thread::sleep(Duration::from_millis(300));
        let event = command(&sim, "GW-1", "x");
        let (events, reply) = new.join().unwrap();
        assert_eq!(reply["successful"], true);
        assert_eq!(replay_ids(&events), [event.0]);
        (held.join().unwrap(), event)
    });
    let ((events, reply), took) = (old, old_took);
    assert!(
        events.is_empty(),
        "the older connect took nothing: {events:?}"
    );
    assert_eq!(reply["successful"], true);
    assert!(took < HOLD, "it gave way at once: {took:?}");
    assert_eq!(sim.streaming_clients()[0].last_replay_id, Some(new.0));
}

#[test]
fn stopping_the_simulator_answers_a_held_connect() {
    let mut config = config();
    config.streaming_hold = Duration::from_secs(8);
    let sim = Sim::start(config).unwrap();
    let t = token(&sim);
    let mut bayeux = Bayeux::ready(&sim, &t, COMMANDS, json!(-1));
    let took = std::thread::scope(|scope| {
        let held = scope.spawn(move || {
            let started = Instant::now();
            let _ = bayeux.connect();
            started.elapsed()
        });
        std::thread::sleep(Duration::from_millis(300));
        sim.shutdown();
        held.join().unwrap()
    });
    assert!(took < Duration::from_secs(4), "answered after {took:?}");
}
