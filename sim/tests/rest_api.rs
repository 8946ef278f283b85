//! The REST API over real TLS, as jsforce and the Salesforce CLI use it: SOQL with
//! paging, records by id and by external id, sObject Collections, `composite`,
//! `describe`, the resource lists, schema validation and the error envelopes.

mod client;

use client::{CLIENT_ID, Client, Reply};
use serde_json::{Value, json};
use sfpair_sim::{Config, Schema, Sim};

const V: &str = "/services/data/v67.0";

const SCHEMA: &str = r#"{"objects": [
    {"name": "Device__c", "label": "Device", "fields": [
        {"name": "Serial__c", "type": "string", "length": 12, "required": true, "externalId": true},
        {"name": "Online__c", "type": "boolean"},
        {"name": "Firmware__c", "type": "int"},
        {"name": "Account__c", "type": "reference", "referenceTo": "Account"}
    ]},
    {"name": "Account", "fields": [{"name": "Fleet_No__c", "type": "int", "externalId": true}]}
]}"#;

/// A simulator with the test schema, a client, and a valid access token.
fn session(page_size: usize) -> (Sim, Client, String) {
    let sim = Sim::start(Config {
        schema: Schema::from_json(SCHEMA).unwrap(),
        query_page_size: page_size,
        ..Config::default()
    })
    .unwrap();
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

fn call(client: &mut Client, token: &str, method: &str, path: &str, body: Option<Value>) -> Reply {
    let auth = format!("Bearer {token}");
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    let reply = client
        .request(method, &format!("{V}{path}"), &headers, body.as_bytes())
        .unwrap();
    assert!(
        reply.header("Sforce-Limit-Info").is_some(),
        "{method} {path}"
    );
    reply
}

fn error_code(reply: &Reply) -> String {
    reply.json()[0]["errorCode"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[test]
fn records_by_id_with_validation() {
    let (sim, mut c, t) = session(2000);
    let created = call(
        &mut c,
        &t,
        "POST",
        "/sobjects/Account",
        Some(json!({"Name": "Acme", "NumberOfEmployees": 12})),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let id = created.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        created.json(),
        json!({"id": id, "success": true, "errors": []})
    );
    assert_eq!(id.len(), 18);
    assert!(id.starts_with("001"));

    let read = call(&mut c, &t, "GET", &format!("/sobjects/Account/{id}"), None).json();
    assert_eq!(read["Name"], "Acme");
    assert_eq!(read["attributes"]["type"], "Account");
    assert_eq!(read["Website"], Value::Null);
    let short = call(
        &mut c,
        &t,
        "GET",
        &format!("/sobjects/Account/{}?fields=Name", &id[..15]),
        None,
    )
    .json();
    assert_eq!(
        short,
        json!({"attributes": {"type": "Account", "url": format!("{V}/sobjects/Account/{id}")}, "Name": "Acme"})
    );

    let patched = call(
        &mut c,
        &t,
        "PATCH",
        &format!("/sobjects/Account/{id}"),
        Some(json!({"Phone": "555"})),
    );
    assert_eq!((patched.status, patched.body.len()), (204, 0));
    assert_eq!(sim.records("Account")[0]["Phone"], "555");

    // Refusals, with Salesforce's codes.
    let cases = [
        (
            "POST",
            "/sobjects/NoSuchObject__c".to_string(),
            json!({"Name": "x"}),
            404,
            "NOT_FOUND",
        ),
        (
            "POST",
            "/sobjects/Account".to_string(),
            json!({"Nope__c": 1, "Name": "x"}),
            400,
            "INVALID_FIELD",
        ),
        (
            "POST",
            "/sobjects/Account".to_string(),
            json!({"Phone": "1"}),
            400,
            "REQUIRED_FIELD_MISSING",
        ),
        (
            "POST",
            "/sobjects/Account".to_string(),
            json!({"Name": "x".repeat(256)}),
            400,
            "STRING_TOO_LONG",
        ),
        (
            "POST",
            "/sobjects/Account".to_string(),
            json!({"Name": "x", "NumberOfEmployees": "many"}),
            400,
            "JSON_PARSER_ERROR",
        ),
        (
            "PATCH",
            "/sobjects/Account/001SIM00000009ZYBQ".to_string(),
            json!({"Phone": "1"}),
            404,
            "NOT_FOUND",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let reply = call(&mut c, &t, method, &path, Some(body));
        assert_eq!(
            (reply.status, error_code(&reply)),
            (status, code.to_string()),
            "{method} {path}: {}",
            reply.text()
        );
    }
    let missing = call(&mut c, &t, "POST", "/sobjects/Account", Some(json!({})));
    assert_eq!(missing.json()[0]["fields"], json!(["Name"]));

    let deleted = call(
        &mut c,
        &t,
        "DELETE",
        &format!("/sobjects/Account/{id}"),
        None,
    );
    assert_eq!(deleted.status, 204);
    assert_eq!(
        call(&mut c, &t, "GET", &format!("/sobjects/Account/{id}"), None).status,
        404
    );
    assert!(sim.records("Account").is_empty());
}

#[test]
fn ids_are_distinct_in_fifteen_characters() {
    let (_sim, mut c, t) = session(2000);
    let ids: Vec<String> = (0..70)
        .map(|i| {
            let reply = call(
                &mut c,
                &t,
                "POST",
                "/sobjects/Contact",
                Some(json!({"LastName": format!("n{i}")})),
            );
            reply.json()["id"].as_str().unwrap()[..15].to_string()
        })
        .collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len());
}

#[test]
fn soql_paging_and_query_all() {
    let (_sim, mut c, t) = session(2);
    for (name, employees) in [
        ("Beta", 5),
        ("Alpha", 9),
        ("Gamma", 5),
        ("Delta", 5),
        ("Omega", 5),
    ] {
        let body = json!({"Name": name, "NumberOfEmployees": employees});
        assert_eq!(
            call(&mut c, &t, "POST", "/sobjects/Account", Some(body)).status,
            201
        );
    }
    let q = "SELECT+Id,+Name+FROM+Account+WHERE+NumberOfEmployees+=+5+ORDER+BY+Name+DESC";
    let first = call(&mut c, &t, "GET", &format!("/query?q={q}"), None).json();
    assert_eq!(
        (first["totalSize"].as_u64(), first["done"].as_bool()),
        (Some(4), Some(false))
    );
    let mut names: Vec<String> = Vec::new();
    let mut page = first;
    for _ in 0..5 {
        names.extend(
            page["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["Name"].as_str().unwrap().to_string()),
        );
        assert_eq!(page["records"][0]["attributes"]["type"], "Account");
        let Some(next) = page["nextRecordsUrl"].as_str() else {
            break;
        };
        assert!(next.starts_with(&format!("{V}/query/01g")), "{next}");
        let path = next.strip_prefix(V).unwrap().to_string();
        page = call(&mut c, &t, "GET", &path, None).json();
    }
    assert_eq!(page["done"], true);
    assert_eq!(names, ["Omega", "Gamma", "Delta", "Beta"]);

    let alpha = call(
        &mut c,
        &t,
        "GET",
        "/query?q=SELECT+Id+FROM+Account+WHERE+Name+=+'Alpha'",
        None,
    )
    .json();
    let id = alpha["records"][0]["Id"].as_str().unwrap().to_string();
    assert_eq!(
        call(
            &mut c,
            &t,
            "DELETE",
            &format!("/sobjects/Account/{id}"),
            None
        )
        .status,
        204
    );
    let live = call(
        &mut c,
        &t,
        "GET",
        "/query?q=SELECT+Id+FROM+Account+WHERE+Name+=+'Alpha'",
        None,
    )
    .json();
    assert_eq!(live["totalSize"], 0);
    let all = call(
        &mut c,
        &t,
        "GET",
        "/queryAll?q=SELECT+Id,IsDeleted+FROM+Account+WHERE+Name+=+'Alpha'",
        None,
    )
    .json();
    assert_eq!(all["records"][0]["IsDeleted"], true);

    let bad = call(&mut c, &t, "GET", "/query?q=SELECT+FROM+Account", None);
    assert_eq!(
        (bad.status, error_code(&bad)),
        (400, "MALFORMED_QUERY".into())
    );
    let bad = call(&mut c, &t, "GET", "/query?q=SELECT+Id+FROM+Nope__c", None);
    assert_eq!((bad.status, error_code(&bad)), (400, "INVALID_TYPE".into()));
}

#[test]
fn upsert_by_external_id() {
    let (sim, mut c, t) = session(2000);
    let body = json!({"Name": "Board 7", "Online__c": true});
    let created = call(
        &mut c,
        &t,
        "PATCH",
        "/sobjects/Device__c/Serial__c/SN-7",
        Some(body.clone()),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let id = created.json()["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("a00"));
    assert_eq!(
        created.json(),
        json!({"id": id, "success": true, "errors": [], "created": true})
    );
    let updated = call(
        &mut c,
        &t,
        "PATCH",
        "/sobjects/Device__c/Serial__c/SN-7",
        Some(json!({"Firmware__c": 3})),
    );
    assert_eq!(updated.status, 200);
    assert_eq!(
        updated.json(),
        json!({"id": id, "success": true, "errors": [], "created": false})
    );
    let old = c
        .request(
            "PATCH",
            "/services/data/v45.0/sobjects/Device__c/Serial__c/SN-7",
            &[("Authorization", &format!("Bearer {t}"))],
            br#"{"Firmware__c": 4}"#,
        )
        .unwrap();
    assert_eq!(old.status, 204);
    let devices = sim.records("Device__c");
    assert_eq!(devices.len(), 1);
    assert_eq!(
        (
            devices[0]["Serial__c"].clone(),
            devices[0]["Firmware__c"].clone()
        ),
        (json!("SN-7"), json!(4))
    );
    let by_key = call(
        &mut c,
        &t,
        "GET",
        "/sobjects/Device__c/Serial__c/sn-7",
        None,
    )
    .json();
    assert_eq!(by_key["Id"], id.as_str());
    // A numeric external id: the URL's text is stored as a number.
    let asset = call(
        &mut c,
        &t,
        "PATCH",
        "/sobjects/Account/Fleet_No__c/42",
        Some(json!({"Name": "Fleet 42"})),
    );
    assert_eq!(asset.status, 201, "{}", asset.text());
    assert_eq!(sim.records("Account")[0]["Fleet_No__c"], json!(42));
    let again = call(
        &mut c,
        &t,
        "PATCH",
        "/sobjects/Account/Fleet_No__c/42",
        Some(json!({"Phone": "1"})),
    );
    assert_eq!(again.status, 200, "{}", again.text());

    let not_external = call(
        &mut c,
        &t,
        "PATCH",
        "/sobjects/Device__c/Name/x",
        Some(json!({})),
    );
    assert_eq!(
        (not_external.status, error_code(&not_external)),
        (404, "NOT_FOUND".into())
    );
}

#[test]
fn collections_in_order_with_all_or_none() {
    let (sim, mut c, t) = session(2000);
    let records = json!([
        {"attributes": {"type": "Account"}, "Name": "A"},
        {"attributes": {"type": "Contact"}, "LastName": "B"},
        {"attributes": {"type": "Account"}, "Phone": "no name"}
    ]);
    let partial = call(
        &mut c,
        &t,
        "POST",
        "/composite/sobjects",
        Some(json!({"allOrNone": false, "records": records})),
    );
    assert_eq!(partial.status, 200);
    let results = partial.json();
    assert_eq!(results[0]["success"], true);
    assert_eq!(results[1]["success"], true);
    assert_eq!(
        results[2]["errors"][0]["statusCode"],
        "REQUIRED_FIELD_MISSING"
    );
    assert_eq!(sim.records("Account").len(), 1);

    let all = call(
        &mut c,
        &t,
        "POST",
        "/composite/sobjects",
        Some(json!({"allOrNone": true, "records": records})),
    );
    let results = all.json();
    assert_eq!(
        results[0]["errors"][0]["statusCode"],
        "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    );
    assert_eq!(
        results[2]["errors"][0]["statusCode"],
        "REQUIRED_FIELD_MISSING"
    );
    assert_eq!(sim.records("Account").len(), 1, "rolled back");

    let account = sim.records("Account")[0]["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let update =
        json!({"records": [{"attributes": {"type": "Account"}, "id": account, "Phone": "1"}]});
    assert_eq!(
        call(&mut c, &t, "PATCH", "/composite/sobjects", Some(update)).json()[0]["success"],
        true
    );
    let upsert = json!({"records": [
        {"attributes": {"type": "Device__c"}, "Serial__c": "S1", "Name": "d1"},
        {"attributes": {"type": "Device__c"}, "Serial__c": "S1", "Firmware__c": 2}
    ]});
    let upserted = call(
        &mut c,
        &t,
        "PATCH",
        "/composite/sobjects/Device__c/Serial__c",
        Some(upsert),
    )
    .json();
    assert_eq!(
        (
            upserted[0]["created"].clone(),
            upserted[1]["created"].clone()
        ),
        (json!(true), json!(false))
    );
    let deleted = call(
        &mut c,
        &t,
        "DELETE",
        &format!("/composite/sobjects?ids={account},001SIM00000009ZYBQ"),
        None,
    )
    .json();
    assert_eq!(deleted[0]["success"], true);
    assert_eq!(deleted[1]["success"], false);

    let many: Vec<Value> = (0..201)
        .map(|i| json!({"attributes": {"type": "Account"}, "Name": format!("n{i}")}))
        .collect();
    let refused = call(
        &mut c,
        &t,
        "POST",
        "/composite/sobjects",
        Some(json!({"records": many})),
    );
    assert_eq!(
        (refused.status, error_code(&refused)),
        (400, "EXCEEDED_ID_LIMIT".into())
    );
}

#[test]
fn composite_with_references() {
    let (sim, mut c, t) = session(2000);
    let body = json!({"allOrNone": true, "compositeRequest": [
        {"method": "POST", "url": format!("{V}/sobjects/Account"), "referenceId": "acct", "body": {"Name": "Fleet"}},
        {"method": "POST", "url": format!("{V}/sobjects/Contact"), "referenceId": "tech", "body": {"LastName": "T", "AccountId": "@{acct.id}"}},
        {"method": "GET", "url": format!("{V}/sobjects/Contact/@{{tech.id}}?fields=AccountId"), "referenceId": "check"}
    ]});
    let reply = call(&mut c, &t, "POST", "/composite", Some(body)).json();
    let answers = reply["compositeResponse"].as_array().unwrap();
    assert_eq!(
        answers
            .iter()
            .map(|a| a["httpStatusCode"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [201, 201, 200]
    );
    assert_eq!(answers[2]["body"]["AccountId"], answers[0]["body"]["id"]);
    assert_eq!(answers[0]["referenceId"], "acct");

    let failing = json!({"allOrNone": true, "compositeRequest": [
        {"method": "POST", "url": format!("{V}/sobjects/Account"), "referenceId": "ok", "body": {"Name": "Kept?"}},
        {"method": "POST", "url": format!("{V}/sobjects/Account"), "referenceId": "bad", "body": {"Bogus": 1}}
    ]});
    let reply = call(&mut c, &t, "POST", "/composite", Some(failing)).json();
    let answers = reply["compositeResponse"].as_array().unwrap();
    assert_eq!(answers[0]["body"][0]["errorCode"], "PROCESSING_HALTED");
    assert_eq!(answers[1]["body"][0]["errorCode"], "INVALID_FIELD");
    assert_eq!(
        sim.records("Account").len(),
        1,
        "the second request's account was rolled back"
    );
}

#[test]
fn describe_resources_user_and_errors() {
    let (_sim, mut c, t) = session(2000);
    let describe = call(&mut c, &t, "GET", "/sobjects/Device__c/describe", None).json();
    assert_eq!(describe["name"], "Device__c");
    let serial = describe["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "Serial__c")
        .unwrap()
        .clone();
    assert_eq!(
        (
            serial["type"].clone(),
            serial["length"].clone(),
            serial["externalId"].clone(),
            serial["nillable"].clone()
        ),
        (json!("string"), json!(12), json!(true), json!(false))
    );
    let global = call(&mut c, &t, "GET", "/sobjects", None).json();
    let names: Vec<&str> = global["sobjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["Account", "Contact", "Case", "Asset", "User", "Device__c"]
    );
    let resources = call(&mut c, &t, "GET", "/", None).json();
    assert_eq!(resources["query"], format!("{V}/query"));
    let user = call(&mut c, &t, "GET", "/sobjects/User/005SIM000000001YBA", None).json();
    assert_eq!(user["Username"], "technician@sim.example");
    assert_eq!(user["Name"], "Sim Technician");

    let unknown = call(&mut c, &t, "GET", "/nowhere", None);
    assert_eq!(
        (unknown.status, error_code(&unknown)),
        (404, "NOT_FOUND".into())
    );
    assert!(
        unknown
            .header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let wrong = call(&mut c, &t, "PUT", "/sobjects/Account", None);
    assert_eq!(
        (wrong.status, error_code(&wrong)),
        (405, "METHOD_NOT_ALLOWED".into())
    );
    let outside = c.get("/nowhere", None).unwrap();
    assert_eq!(
        (outside.status, error_code(&outside)),
        (404, "NOT_FOUND".into())
    );
    let token_get = c.get("/services/oauth2/token", None).unwrap();
    assert_eq!(token_get.status, 405);
}
