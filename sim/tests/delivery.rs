//! What a durable outbox meets on the way to the org, over real TLS: upserts by
//! external id that a replay finds again, platform events, per-record errors, and the
//! persistent delivery faults flipped on a running simulator: a committed batch whose
//! reply is lost, `UNABLE_TO_LOCK_ROW` once per record, the daily API allocation, and
//! the network going away and coming back.

mod client;

use client::{CLIENT_ID, Client, Reply};
use serde_json::{Value, json};
use sfpair_sim::{Config, Schema, Sim};

const V: &str = "/services/data/v67.0";
const UPSERT: &str = "/composite/sobjects/Device_Reading__c/Reading_Key__c";

fn config() -> Config {
    let schema = include_str!("../schemas/example-firmware.json");
    Config {
        schema: Schema::from_json(schema).unwrap(),
        ..Config::default()
    }
}

/// A simulator with the firmware schema, a connected client and a valid access token.
fn session(config: Config) -> (Sim, Client, String) {
    let sim = Sim::start(config).unwrap();
    let mut client = Client::connect(&sim).unwrap();
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
    let token = token["access_token"].as_str().unwrap().to_string();
    (sim, client, token)
}

/// One REST call; `Err` when the connection failed or closed before a reply.
fn try_call(
    client: &mut Client,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> std::io::Result<Reply> {
    let auth = format!("Bearer {token}");
    let body = body.map(Value::to_string).unwrap_or_default();
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    client.request(method, &format!("{V}{path}"), &headers, body.as_bytes())
}

fn call(client: &mut Client, token: &str, method: &str, path: &str, body: Option<&Value>) -> Reply {
    try_call(client, token, method, path, body).unwrap()
}

/// Readings `from..to` as an outbox sends them: external id, sensor, time and value.
fn readings(keys: std::ops::Range<u32>, value: f64) -> Value {
    let records: Vec<Value> = keys
        .map(|k| {
            json!({
                "attributes": {"type": "Device_Reading__c"},
                "Reading_Key__c": format!("dev1-{k}"),
                "Sensor__c": "t0",
                "Taken_At__c": "2026-12-01T13:45:05.000+0000",
                "Value__c": value,
            })
        })
        .collect();
    json!({"allOrNone": false, "records": records})
}

/// `(success, statusCode of the first error)` of each result.
fn outcomes(reply: &Reply) -> Vec<(bool, String)> {
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let code = r["errors"][0]["statusCode"].as_str().unwrap_or("");
            (r["success"] == true, code.to_string())
        })
        .collect()
}

fn stored_keys(sim: &Sim) -> Vec<String> {
    let mut keys: Vec<String> = sim
        .records("Device_Reading__c")
        .iter()
        .map(|r| r["Reading_Key__c"].as_str().unwrap().to_string())
        .collect();
    keys.sort();
    keys
}

#[test]
fn an_upsert_batch_creates_then_a_replay_updates_the_same_rows() {
    let (sim, mut c, t) = session(config());
    let first = call(&mut c, &t, "PATCH", UPSERT, Some(&readings(0..3, 1.0))).json();
    let replay = call(&mut c, &t, "PATCH", UPSERT, Some(&readings(0..3, 2.0))).json();
    for i in 0..3 {
        assert_eq!(first[i]["success"], true);
        assert_eq!(first[i]["created"], true);
        assert_eq!(first[i]["errors"], json!([]));
        assert_eq!(replay[i]["created"], false);
        assert_eq!(
            replay[i]["id"], first[i]["id"],
            "the replay finds the same row"
        );
        assert!(first[i]["id"].as_str().unwrap().starts_with("a00"));
    }
    let rows = sim.records("Device_Reading__c");
    assert_eq!(rows.len(), 3, "each row once");
    assert!(
        rows.iter()
            .all(|r| r["Value__c"] == 2.0 && r["Sensor__c"] == "t0")
    );
    assert_eq!(sim.collections_requests(), 2);

    // The unique external id: a plain insert of a key already stored is refused.
    let again = json!({"Reading_Key__c": "DEV1-0", "Value__c": 3.0});
    let refused = call(
        &mut c,
        &t,
        "POST",
        "/sobjects/Device_Reading__c",
        Some(&again),
    );
    assert_eq!(refused.status, 400);
    assert_eq!(refused.json()[0]["errorCode"], "DUPLICATE_VALUE");
    assert_eq!(sim.records("Device_Reading__c").len(), 3);
}

#[test]
fn one_bad_record_fails_alone_with_its_field_error() {
    let (sim, mut c, t) = session(config());
    let mut batch = readings(0..5, 1.0);
    let records = batch["records"].as_array_mut().unwrap();
    records[1]["Humidity__c"] = json!(40);
    records[2]["Sensor__c"] = json!("x".repeat(41));
    records[3]["Taken_At__c"] = json!("yesterday");
    records[4]["Value__c"] = json!("warm");
    let reply = call(&mut c, &t, "PATCH", UPSERT, Some(&batch));
    assert_eq!(
        outcomes(&reply),
        [
            (true, String::new()),
            (false, "INVALID_FIELD".into()),
            (false, "STRING_TOO_LONG".into()),
            (false, "INVALID_TYPE_ON_FIELD_IN_RECORD".into()),
            (false, "JSON_PARSER_ERROR".into()),
        ]
    );
    let results = reply.json();
    let error = &results[1]["errors"][0];
    assert!(error["message"].as_str().unwrap().contains("Humidity__c"));
    assert!(error["fields"].is_array());
    assert_eq!(results[2]["errors"][0]["fields"], json!(["Sensor__c"]));
    assert_eq!(stored_keys(&sim), ["dev1-0"]);
}

#[test]
fn commit_then_drop_commits_the_batch_and_loses_its_reply() {
    let (sim, mut c, t) = session(Config {
        commit_then_drop_every: 2,
        ..config()
    });
    assert_eq!(
        outcomes(&call(
            &mut c,
            &t,
            "PATCH",
            UPSERT,
            Some(&readings(0..2, 1.0))
        ))
        .len(),
        2
    );
    let lost = try_call(&mut c, &t, "PATCH", UPSERT, Some(&readings(2..4, 1.0)));
    assert!(lost.is_err(), "no reply: {lost:?}");
    assert_eq!(stored_keys(&sim), ["dev1-0", "dev1-1", "dev1-2", "dev1-3"]);
    assert_eq!((sim.collections_requests(), sim.dropped_replies()), (2, 1));
    let dropped = sim.log().into_iter().last().unwrap();
    assert_eq!((dropped.path.contains(UPSERT), dropped.status), (true, 0));

    // The client retries the same batch on a new connection: the rows are found again.
    let mut c = Client::connect(&sim).unwrap();
    let retry = call(&mut c, &t, "PATCH", UPSERT, Some(&readings(2..4, 1.0))).json();
    assert_eq!(
        (retry[0]["created"].clone(), retry[1]["created"].clone()),
        (json!(false), json!(false))
    );
    assert_eq!(sim.records("Device_Reading__c").len(), 4);

    // Flipped off at run time: the 4th request (an even one) answers.
    sim.set_commit_then_drop_every(0);
    assert!(try_call(&mut c, &t, "PATCH", UPSERT, Some(&readings(4..5, 1.0))).is_ok());
    assert_eq!((sim.collections_requests(), sim.dropped_replies()), (4, 1));
}

#[test]
fn lock_row_refuses_every_nth_record_once_and_a_retry_succeeds() {
    let (sim, mut c, t) = session(config());
    sim.set_lock_row_every(3);
    let reply = call(&mut c, &t, "PATCH", UPSERT, Some(&readings(0..7, 1.0)));
    let results = reply.json();
    let refused: Vec<usize> = outcomes(&reply)
        .iter()
        .enumerate()
        .filter(|(_, (ok, _))| !ok)
        .map(|(i, (_, code))| {
            assert_eq!(code, "UNABLE_TO_LOCK_ROW");
            i
        })
        .collect();
    assert_eq!(refused, [2, 5], "the 3rd and the 6th record");
    let error = &results[2]["errors"][0];
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("unable to obtain exclusive access to this record")
    );
    assert_eq!(error["fields"], json!([]));
    assert_eq!(
        stored_keys(&sim).len(),
        5,
        "refused records are not written"
    );

    // The retry of the two: the 9th record counted is dev1-5, already refused once.
    let mut retry = readings(0..0, 1.0);
    retry["records"] = json!([
        readings(2..3, 1.0)["records"][0],
        readings(5..6, 1.0)["records"][0]
    ]);
    let again = call(&mut c, &t, "PATCH", UPSERT, Some(&retry));
    assert_eq!(
        outcomes(&again),
        [(true, String::new()), (true, String::new())]
    );
    assert_eq!(stored_keys(&sim).len(), 7);
    assert_eq!(sim.lock_row_refusals(), 2);

    // Inserts count too (the 10th to 12th records: the 12th is refused) ...
    let insert = json!({"records": [
        {"attributes": {"type": "Device_Alarm__e"}, "Code__c": "A"},
        {"attributes": {"type": "Device_Alarm__e"}, "Code__c": "B"},
        {"attributes": {"type": "Device_Alarm__e"}, "Code__c": "C"}
    ]});
    let published = call(&mut c, &t, "POST", "/composite/sobjects", Some(&insert));
    // A published event's success carries OPERATION_ENQUEUED (with its EventUuid).
    assert_eq!(
        outcomes(&published),
        [
            (true, "OPERATION_ENQUEUED".into()),
            (true, "OPERATION_ENQUEUED".into()),
            (false, "UNABLE_TO_LOCK_ROW".into())
        ]
    );
    assert_eq!(sim.records("Device_Alarm__e").len(), 2);
    // ... and an existing record's refusal names its id (the 15th: dev1-3).
    let mut update = readings(0..2, 9.0);
    let third = readings(3..4, 9.0)["records"][0].clone();
    update["records"].as_array_mut().unwrap().push(third);
    let updated = call(&mut c, &t, "PATCH", UPSERT, Some(&update)).json();
    let message = updated[2]["errors"][0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    let id = sim
        .records("Device_Reading__c")
        .iter()
        .find(|r| r["Reading_Key__c"] == "dev1-3")
        .map(|r| r["Id"].as_str().unwrap().to_string())
        .unwrap();
    assert!(
        message.ends_with(&format!("or 1 records: {id}")),
        "{message}"
    );
    sim.set_lock_row_every(0);
    let calm = call(&mut c, &t, "PATCH", UPSERT, Some(&readings(0..7, 1.0)));
    assert!(outcomes(&calm).iter().all(|(ok, _)| *ok));
}

#[test]
fn the_api_limit_refuses_with_403_commits_nothing_and_lifts() {
    let (sim, mut c, t) = session(config());
    sim.set_api_usage(8);
    sim.set_api_limit(10);
    let served = call(&mut c, &t, "PATCH", UPSERT, Some(&readings(0..1, 1.0)));
    assert_eq!(served.header("Sforce-Limit-Info"), Some("api-usage=9/10"));
    let limits = call(&mut c, &t, "GET", "/limits", None).json();
    assert_eq!(
        limits["DailyApiRequests"],
        json!({"Max": 10, "Remaining": 0})
    );

    let refused = call(&mut c, &t, "PATCH", UPSERT, Some(&readings(1..3, 1.0)));
    assert_eq!(refused.status, 403);
    assert_eq!(
        refused.json(),
        json!([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
    );
    assert_eq!(refused.header("Sforce-Limit-Info"), Some("api-usage=10/10"));
    assert_eq!(stored_keys(&sim), ["dev1-0"], "nothing committed");
    assert_eq!(sim.api_usage(), 10, "refusals are not served requests");
    assert_eq!(sim.collections_requests(), 1);

    sim.set_api_limit(20);
    let lifted = call(&mut c, &t, "PATCH", UPSERT, Some(&readings(1..3, 1.0)));
    assert_eq!(outcomes(&lifted).len(), 2);
    assert_eq!(lifted.header("Sforce-Limit-Info"), Some("api-usage=11/20"));
    assert_eq!(stored_keys(&sim).len(), 3);
    sim.clear_api_limit();
    let reported = call(&mut c, &t, "GET", "/limits", None);
    assert_eq!(
        reported.header("Sforce-Limit-Info"),
        Some("api-usage=12/15000")
    );
}

#[test]
fn the_api_limit_from_config_applies_from_the_start() {
    let (sim, mut c, t) = session(Config {
        api_limit: Some(1),
        ..config()
    });
    assert_eq!(call(&mut c, &t, "GET", "/limits", None).status, 200);
    assert_eq!(call(&mut c, &t, "GET", "/limits", None).status, 403);
    assert_eq!(sim.api_usage(), 1);
}

#[test]
fn offline_refuses_every_connection_and_service_comes_back() {
    let (sim, mut c, t) = session(config());
    assert_eq!(call(&mut c, &t, "GET", "/limits", None).status, 200);
    sim.set_offline(true);
    assert!(
        Client::connect(&sim).is_err(),
        "a new connection fails before TLS"
    );
    assert!(
        try_call(&mut c, &t, "PATCH", UPSERT, Some(&readings(0..1, 1.0))).is_err(),
        "a live keep-alive connection dies at its next request"
    );
    assert!(sim.records("Device_Reading__c").is_empty());
    let connections = sim.connections();
    assert!(Client::connect(&sim).is_err());
    assert_eq!(
        sim.connections(),
        connections,
        "refused connections are not served"
    );

    sim.set_offline(false);
    let mut c = Client::connect(&sim).unwrap();
    let back = call(&mut c, &t, "PATCH", UPSERT, Some(&readings(0..1, 1.0)));
    assert_eq!(
        outcomes(&back),
        [(true, String::new())],
        "same token, same org"
    );
}

#[test]
fn events_publish_by_insert_only_and_duplicates_are_kept() {
    let (sim, mut c, t) = session(config());
    let alarm =
        json!({"attributes": {"type": "Device_Alarm__e"}, "Code__c": "OVERHEAT", "Severity__c": 3});
    let batch = json!({"allOrNone": false, "records": [alarm, alarm]});
    let published = call(&mut c, &t, "POST", "/composite/sobjects", Some(&batch)).json();
    let single = call(
        &mut c,
        &t,
        "POST",
        "/sobjects/Device_Alarm__e",
        Some(&json!({"Code__c": "OVERHEAT", "Severity__c": 3})),
    );
    assert_eq!(single.status, 201);
    let mut ids: Vec<String> = published
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["success"], true);
            r["id"].as_str().unwrap().to_string()
        })
        .collect();
    ids.push(single.json()["id"].as_str().unwrap().to_string());
    assert!(ids.iter().all(|id| id.starts_with("e00") && id.len() == 18));
    let stored = sim.records("Device_Alarm__e");
    assert_eq!(stored.len(), 3, "every publish is kept, duplicates too");
    assert!(
        stored
            .iter()
            .all(|e| e["Code__c"] == "OVERHEAT" && e["Severity__c"] == 3.0)
    );

    let bad = json!({"records": [{"attributes": {"type": "Device_Alarm__e"}, "Nope__c": 1}]});
    let refused = call(&mut c, &t, "POST", "/composite/sobjects", Some(&bad));
    assert_eq!(outcomes(&refused), [(false, "INVALID_FIELD".into())]);

    // Anything but an insert is refused.
    let upsert = json!({"records": [alarm]});
    let upserted = call(
        &mut c,
        &t,
        "PATCH",
        "/composite/sobjects/Device_Alarm__e/Code__c",
        Some(&upsert),
    );
    assert_eq!(
        outcomes(&upserted),
        [(false, "INVALID_TYPE_FOR_OPERATION".into())]
    );
    let update = json!({"records": [{"attributes": {"type": "Device_Alarm__e"}, "id": ids[0], "Code__c": "X"}]});
    let updated = call(&mut c, &t, "PATCH", "/composite/sobjects", Some(&update));
    assert_eq!(
        outcomes(&updated),
        [(false, "INVALID_TYPE_FOR_OPERATION".into())]
    );
    let deleted = call(
        &mut c,
        &t,
        "DELETE",
        &format!("/composite/sobjects?ids={}", ids[0]),
        None,
    );
    assert_eq!(
        outcomes(&deleted),
        [(false, "INVALID_TYPE_FOR_OPERATION".into())]
    );
    for (method, path) in [
        ("GET", format!("/sobjects/Device_Alarm__e/{}", ids[0])),
        ("DELETE", format!("/sobjects/Device_Alarm__e/{}", ids[0])),
        ("PATCH", format!("/sobjects/Device_Alarm__e/{}", ids[0])),
        (
            "PATCH",
            "/sobjects/Device_Alarm__e/Code__c/OVERHEAT".to_string(),
        ),
        (
            "GET",
            "/query?q=SELECT+Code__c+FROM+Device_Alarm__e".to_string(),
        ),
    ] {
        let reply = call(&mut c, &t, method, &path, Some(&json!({"Code__c": "X"})));
        assert_eq!(reply.status, 400, "{method} {path}");
        assert_eq!(
            reply.json()[0]["errorCode"],
            "INVALID_TYPE_FOR_OPERATION",
            "{method} {path}"
        );
    }
    assert_eq!(sim.records("Device_Alarm__e").len(), 3);
    assert!(
        sim.records("Device_Alarm__e")
            .iter()
            .all(|e| e["Code__c"] == "OVERHEAT")
    );
}
