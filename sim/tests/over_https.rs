//! The simulator over real TLS on 127.0.0.1: the device flow end to end through the
//! HTML form, keep-alive, queued faults, exact-path routing, refresh and revoke, the
//! RFC 8628 dialect, certificates and the connection bound. Every wait is bounded.

mod client;

use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use client::{CLIENT_ID, Client};
use serde_json::Value;
use sfpair_sim::{AppState, CertMode, Config, DenyMode, Fault, Sim, SlowDown};

const TOKEN: &str = "/services/oauth2/token";

fn start(config: Config) -> (Sim, Client) {
    let sim = Sim::start(config).expect("the simulator starts");
    let client = Client::connect(&sim).expect("a TLS connection to the simulator");
    (sim, client)
}

/// Step 1; returns the whole JSON answer.
fn device_code(client: &mut Client, scope: &str) -> Value {
    let reply = client
        .post_form(
            TOKEN,
            &[
                ("response_type", "device_code"),
                ("client_id", CLIENT_ID),
                ("scope", scope),
            ],
        )
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

fn poll(client: &mut Client, device_code: &str) -> client::Reply {
    client
        .post_form(
            TOKEN,
            &[
                ("grant_type", "device"),
                ("client_id", CLIENT_ID),
                ("code", device_code),
            ],
        )
        .unwrap()
}

fn field<'a>(value: &'a Value, name: &str) -> &'a str {
    value[name]
        .as_str()
        .unwrap_or_else(|| panic!("no string {name:?} in {value}"))
}

/// Polls `done` until it holds or a few seconds pass.
fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn device_flow_through_the_approval_page() {
    let (sim, mut client) = start(Config::default());

    let reply = client
        .post_form(
            TOKEN,
            &[
                ("response_type", "device_code"),
                ("client_id", CLIENT_ID),
                ("scope", "api refresh_token"),
            ],
        )
        .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("application/json;charset=UTF-8")
    );
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let step1 = reply.json();
    let mut keys: Vec<&str> = step1
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        ["device_code", "interval", "user_code", "verification_uri"]
    );
    assert_eq!(step1["interval"], 5);
    assert_eq!(
        field(&step1, "verification_uri"),
        format!("{}/setup/connect", sim.base_url())
    );
    let (user_code, code) = (field(&step1, "user_code"), field(&step1, "device_code"));
    assert_eq!(sim.pending_user_codes(), [user_code]);

    let pending = poll(&mut client, code);
    assert_eq!(pending.status, 400);
    assert_eq!(pending.json()["error"], "authorization_pending");

    let page = client
        .get(
            &format!("/setup/connect?user_code={user_code}&prompt=login"),
            None,
        )
        .unwrap();
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.text().contains(&format!("value=\"{user_code}\"")));

    // A person types the code in lower case with a dash; the page still finds it.
    let typed = format!("{}-{}", &user_code[..4], &user_code[4..]).to_lowercase();
    let approved = client
        .post_form(
            "/setup/connect",
            &[("user_code", &typed), ("action", "approve")],
        )
        .unwrap();
    assert_eq!(approved.status, 200);
    assert!(approved.text().contains("Device connected"));

    let token = poll(&mut client, code);
    assert_eq!(token.status, 200, "{}", token.text());
    assert_eq!(token.header("cache-control"), Some("no-store"));
    let token = token.json();
    for name in [
        "access_token",
        "refresh_token",
        "signature",
        "instance_url",
        "id",
        "issued_at",
    ] {
        assert!(token[name].is_string(), "{name} in {token}");
    }
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["scope"], "api refresh_token");
    assert_eq!(token["instance_url"], sim.base_url().as_str());
    assert_eq!(
        field(&token, "id"),
        format!(
            "{}/id/00DSIM0000000012BA/005SIM000000001YBA",
            sim.base_url()
        )
    );
    assert!(field(&token, "access_token").starts_with("00DSIM000000001!AR"));

    let again = poll(&mut client, code).json();
    assert_eq!(
        (&again["error"], &again["error_description"]),
        (
            &"invalid_grant".into(),
            &"invalid authorization code".into()
        )
    );

    let access = field(&token, "access_token");
    let me = client
        .get("/services/oauth2/userinfo", Some(access))
        .unwrap();
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["preferred_username"], "technician@sim.example");
    let id_path = field(&token, "id")
        .trim_start_matches(&sim.base_url())
        .to_string();
    assert_eq!(
        client.get(&id_path, Some(access)).unwrap().json()["username"],
        "technician@sim.example"
    );

    let log = sim.log();
    let summary: Vec<(&str, Option<&str>, u16, Option<&str>)> = log
        .iter()
        .map(|e| {
            (
                e.path.as_str(),
                e.grant.as_deref(),
                e.status,
                e.error.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary[..5],
        [
            (TOKEN, Some("device_code"), 200, None),
            (TOKEN, Some("device"), 400, Some("authorization_pending")),
            ("/setup/connect", None, 200, None),
            ("/setup/connect", None, 200, None),
            (TOKEN, Some("device"), 200, None),
        ]
    );
    // The log holds no secret.
    let printed = format!("{log:?}");
    for secret in [code, access, field(&token, "refresh_token")] {
        assert!(!printed.contains(secret));
    }
}

#[test]
fn multipart_requests_like_the_salesforce_cli() {
    let (_sim, mut client) = start(Config::default());
    let body = format!(
        "--sfcli\r\nContent-Disposition: form-data; name=\"response_type\"\r\n\r\ndevice_code\r\n\
         --sfcli\r\nContent-Disposition: form-data; name=\"client_id\"\r\n\r\n{CLIENT_ID}\r\n\
         --sfcli\r\nContent-Disposition: form-data; name=\"scope\"\r\n\r\nrefresh_token web api\r\n--sfcli--\r\n"
    );
    let reply = client
        .request(
            "POST",
            TOKEN,
            &[("Content-Type", "multipart/form-data; boundary=sfcli")],
            body.as_bytes(),
        )
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(field(&reply.json(), "user_code").len(), 8);
}

#[test]
fn keep_alive_reuses_one_connection_until_close() {
    let (sim, mut client) = start(Config::default());
    for _ in 0..3 {
        assert_eq!(client.get("/services/data/", None).unwrap().status, 200);
    }
    let last = client
        .request("GET", "/services/data/", &[("Connection", "close")], b"")
        .unwrap();
    assert_eq!(last.header("connection"), Some("close"));
    assert_eq!(sim.connections(), 1);
    assert!(sim.log().iter().all(|e| e.conn == 1));
    // The server closed its end: the next request finds no one. The kind tells a close
    // from the client's own 10 s read timeout, which must not pass for one.
    let gone = client.get("/services/data/", None).unwrap_err();
    assert!(
        matches!(
            gone.kind(),
            ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
        ),
        "{gone:?}"
    );

    let mut second = Client::connect(&sim).unwrap();
    second.get("/services/data/", None).unwrap();
    assert_eq!(sim.connections(), 2);
    assert_eq!(sim.log().last().unwrap().conn, 2);
}

#[test]
fn double_slashes_and_unknown_paths_are_404() {
    let (_sim, mut client) = start(Config::default());
    let form = [("response_type", "device_code"), ("client_id", CLIENT_ID)];
    assert_eq!(
        client
            .post_form("//services/oauth2/token", &form)
            .unwrap()
            .status,
        404
    );
    assert_eq!(client.get("/nowhere", None).unwrap().status, 404);
    let rest = client.get("/services/data/v67.0/nowhere", None).unwrap();
    // Unauthenticated first; a valid version with a bad session is a 401.
    assert_eq!(rest.status, 401);
    let unknown_version = client.get("/services/data/v99.0/limits", None).unwrap();
    assert_eq!(unknown_version.status, 404);
    assert_eq!(unknown_version.json()[0]["errorCode"], "NOT_FOUND");
}

#[test]
fn step_one_and_polling_errors() {
    let refusals = [
        (
            AppState::DeviceFlowDisabled,
            "invalid_grant",
            "device flow is not enabled for the app",
        ),
        (
            AppState::NotInstalled,
            "invalid_client",
            "app must be installed into org",
        ),
    ];
    for (app, error, description) in refusals {
        let (_sim, mut client) = start(Config {
            app,
            ..Config::default()
        });
        let body = client
            .post_form(
                TOKEN,
                &[("response_type", "device_code"), ("client_id", CLIENT_ID)],
            )
            .unwrap()
            .json();
        assert_eq!(
            (body["error"].as_str(), body["error_description"].as_str()),
            (Some(error), Some(description))
        );
    }

    let (sim, mut client) = start(Config {
        deny_mode: DenyMode::AccessDenied,
        ..Config::default()
    });
    let error_of = |reply: client::Reply| {
        (
            reply.status,
            reply.json()["error"].as_str().unwrap_or("").to_string(),
        )
    };
    let unknown_client = client
        .post_form(
            TOKEN,
            &[
                ("response_type", "device_code"),
                ("client_id", "someone-else"),
            ],
        )
        .unwrap();
    assert_eq!(
        unknown_client.json()["error_description"],
        "client identifier invalid"
    );
    assert_eq!(error_of(unknown_client), (400, "invalid_client_id".into()));
    let no_code = client
        .post_form(TOKEN, &[("grant_type", "device"), ("client_id", CLIENT_ID)])
        .unwrap();
    assert_eq!(error_of(no_code), (400, "invalid_request".into()));
    let jwt = client
        .post_form(
            TOKEN,
            &[("grant_type", "password"), ("client_id", CLIENT_ID)],
        )
        .unwrap();
    assert_eq!(error_of(jwt), (400, "unsupported_grant_type".into()));

    let denied = device_code(&mut client, "api");
    assert!(sim.deny(field(&denied, "user_code")));
    assert_eq!(
        error_of(poll(&mut client, field(&denied, "device_code"))),
        (400, "access_denied".into())
    );

    let expired = device_code(&mut client, "api");
    assert!(sim.expire(field(&expired, "user_code")));
    let reply = poll(&mut client, field(&expired, "device_code"));
    assert_eq!(
        reply.json()["error_description"],
        "expired authorization code"
    );

    let blocked = device_code(&mut client, "api");
    assert!(sim.ip_block(field(&blocked, "user_code")));
    assert!(sim.approve(field(&blocked, "user_code")));
    let reply = poll(&mut client, field(&blocked, "device_code"));
    assert_eq!(reply.json()["error_description"], "token exchange failed");

    // No refresh_token scope, no refresh token.
    let plain = device_code(&mut client, "api");
    let hook = format!("/__mock/approve?user_code={}", field(&plain, "user_code"));
    assert_eq!(client.post_form(&hook, &[]).unwrap().status, 200);
    assert_eq!(client.post_form(&hook, &[]).unwrap().status, 404);
    let token = poll(&mut client, field(&plain, "device_code")).json();
    assert!(token.get("refresh_token").is_none() && token["access_token"].is_string());
}

#[test]
fn strict_slow_down_then_flaky_maintenance_page() {
    let (_sim, mut client) = start(Config {
        slow_down: SlowDown::Strict,
        flaky: 4,
        ..Config::default()
    });
    let step1 = device_code(&mut client, "api"); // token request 1
    let code = field(&step1, "device_code");
    assert_eq!(
        poll(&mut client, code).json()["error"],
        "authorization_pending"
    ); // 2
    let slow = poll(&mut client, code); // 3: immediately after the previous poll
    assert_eq!(
        slow.json()["error_description"],
        "polling too quickly for the token endpoint"
    );
    let down = poll(&mut client, code); // 4: flaky
    assert_eq!(down.status, 503);
    assert!(
        down.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(
        down.text(),
        "<html><body>Server down for maintenance</body></html>"
    );
}

#[test]
fn queued_faults_hit_the_next_oauth_request() {
    let (sim, _) = start(Config::default());
    let form = [("response_type", "device_code"), ("client_id", CLIENT_ID)];
    sim.push_faults(&[
        Fault::Html503,
        Fault::CaptivePortal,
        Fault::MalformedJson,
        Fault::Status(502),
        Fault::HugeJson(200_000),
        Fault::CloseBeforeReply,
        Fault::ResetMidReply,
        Fault::TruncatedReply,
        Fault::Stall(Duration::from_millis(300)),
    ]);
    let mut client = Client::connect(&sim).unwrap();
    assert_eq!(client.post_form(TOKEN, &form).unwrap().status, 503);
    let portal = client.post_form(TOKEN, &form).unwrap();
    assert_eq!(
        (portal.status, portal.header("content-type")),
        (200, Some("text/html;charset=UTF-8"))
    );
    assert_eq!(
        client.post_form(TOKEN, &form).unwrap().text(),
        r#"{"access_tok"#
    );
    let bad_gateway = client.post_form(TOKEN, &form).unwrap();
    assert_eq!(
        (bad_gateway.status, bad_gateway.json()["error"].as_str()),
        (502, Some("server_error"))
    );
    let huge = client.post_form(TOKEN, &form).unwrap();
    assert_eq!(huge.body.len(), 200_000);
    assert!(huge.json().is_array());

    let closed = client.post_form(TOKEN, &form).unwrap_err();
    assert_eq!(closed.kind(), ErrorKind::UnexpectedEof);

    let mut client = Client::connect(&sim).unwrap();
    let reset = client.post_form(TOKEN, &form).unwrap_err();
    assert_eq!(reset.kind(), ErrorKind::ConnectionReset, "{reset:?}");

    let mut client = Client::connect(&sim).unwrap();
    assert_eq!(
        client.post_form(TOKEN, &form).unwrap_err().kind(),
        ErrorKind::UnexpectedEof
    );

    let mut client = Client::connect(&sim).unwrap();
    let started = Instant::now();
    let stalled = client.post_form(TOKEN, &form).unwrap_err();
    // A close after the stall (at least its length: a loaded machine only adds), not the
    // client's own 10 s read timeout, which would be a TimedOut or WouldBlock error.
    assert_eq!(stalled.kind(), ErrorKind::UnexpectedEof, "{stalled:?}");
    assert!(started.elapsed() >= Duration::from_millis(300));

    // The queue is empty again: normal service.
    let mut client = Client::connect(&sim).unwrap();
    assert_eq!(client.post_form(TOKEN, &form).unwrap().status, 200);

    let statuses: Vec<u16> = sim.log().iter().map(|e| e.status).collect();
    assert_eq!(statuses, [503, 200, 200, 502, 200, 0, 0, 200, 0, 200]);
}

#[test]
fn rest_faults_sessions_refresh_rotation_and_revoke() {
    let (sim, mut client) = start(Config {
        rotate_refresh_tokens: true,
        ..Config::default()
    });
    let step1 = device_code(&mut client, "api refresh_token");
    sim.approve(field(&step1, "user_code"));
    let token = poll(&mut client, field(&step1, "device_code")).json();
    let (access, refresh) = (
        field(&token, "access_token"),
        field(&token, "refresh_token"),
    );

    let limits = client
        .get("/services/data/v67.0/limits", Some(access))
        .unwrap();
    assert_eq!(limits.status, 200);
    assert_eq!(
        limits.header("sforce-limit-info"),
        Some("api-usage=1/15000")
    );
    assert_eq!(limits.json()["DailyApiRequests"]["Remaining"], 14999);

    // A REST fault waits for a REST request; OAuth requests pass it by.
    sim.push_faults(&[Fault::InvalidSession, Fault::RequestLimit]);
    assert_eq!(
        client
            .get("/services/oauth2/userinfo", Some(access))
            .unwrap()
            .status,
        200
    );
    let expired = client
        .get("/services/data/v67.0/limits/", Some(access))
        .unwrap();
    assert_eq!(expired.status, 401);
    assert_eq!(expired.json()[0]["errorCode"], "INVALID_SESSION_ID");
    let limited = client
        .get("/services/data/v67.0/limits/", Some(access))
        .unwrap();
    assert_eq!(
        (limited.status, limited.header("retry-after")),
        (403, Some("30"))
    );
    assert_eq!(limited.json()[0]["errorCode"], "REQUEST_LIMIT_EXCEEDED");

    let created = client
        .request(
            "POST",
            "/services/data/v67.0/sobjects/Account/",
            &[
                ("Authorization", &format!("Bearer {access}")),
                ("Content-Type", "application/json"),
            ],
            br#"{"Name":"Express Logistics and Transport"}"#,
        )
        .unwrap();
    assert_eq!(created.status, 201);
    let id = field(&created.json(), "id").to_string();
    let record = client
        .get(
            &format!("/services/data/v67.0/sobjects/Account/{id}"),
            Some(access),
        )
        .unwrap()
        .json();
    assert_eq!(record["Name"], "Express Logistics and Transport");
    let bytes = client
        .get("/services/data/v67.0/sim/bytes?n=100000", Some(access))
        .unwrap();
    assert_eq!(bytes.body.len(), 100_000);

    sim.expire_sessions();
    assert_eq!(
        client
            .get("/services/data/v67.0/limits", Some(access))
            .unwrap()
            .status,
        401
    );
    assert_eq!(
        client
            .get("/services/oauth2/userinfo", Some(access))
            .unwrap()
            .status,
        401
    );

    let rotated = client
        .post_form(TOKEN, &refresh_form(refresh))
        .unwrap()
        .json();
    let (access2, refresh2) = (
        field(&rotated, "access_token"),
        field(&rotated, "refresh_token"),
    );
    assert_ne!(refresh2, refresh);
    assert_eq!(
        client
            .get("/services/data/v67.0/limits", Some(access2))
            .unwrap()
            .status,
        200
    );

    // Reusing the rotated-out token kills the grant, the new token included.
    let reuse = client
        .post_form(TOKEN, &refresh_form(refresh))
        .unwrap()
        .json();
    assert_eq!(reuse["error_description"], "expired access/refresh token");
    assert_eq!(
        client
            .post_form(TOKEN, &refresh_form(refresh2))
            .unwrap()
            .json()["error"],
        "invalid_grant"
    );
    assert_eq!(
        client
            .get("/services/data/v67.0/limits", Some(access2))
            .unwrap()
            .status,
        401
    );

    // A fresh grant, then revoke its refresh token.
    let step1 = device_code(&mut client, "api refresh_token");
    sim.approve(field(&step1, "user_code"));
    let token = poll(&mut client, field(&step1, "device_code")).json();
    let revoke = client
        .post_form(
            "/services/oauth2/revoke",
            &[("token", field(&token, "refresh_token"))],
        )
        .unwrap();
    assert_eq!((revoke.status, revoke.body.len()), (200, 0));
    assert_eq!(sim.revoked_refresh_tokens(), 1);
    let again = client
        .post_form(
            "/services/oauth2/revoke",
            &[("token", field(&token, "refresh_token"))],
        )
        .unwrap();
    assert_eq!(
        (again.status, again.json()["error"].as_str()),
        (400, Some("invalid_token"))
    );
    let dead = client
        .get(
            "/services/data/v67.0/limits",
            Some(field(&token, "access_token")),
        )
        .unwrap();
    assert_eq!(dead.status, 401);
}

#[test]
fn rfc8628_dialect() {
    let (sim, mut client) = start(Config {
        slow_down: SlowDown::FirstPolls(1),
        ..Config::default()
    });
    let bad = client
        .post_form("/rfc8628/device", &[("client_id", "nobody")])
        .unwrap();
    assert_eq!(
        (bad.status, bad.json()["error"].as_str()),
        (401, Some("invalid_client"))
    );

    let device = client
        .post_form(
            "/rfc8628/device",
            &[("client_id", CLIENT_ID), ("scope", "openid offline_access")],
        )
        .unwrap();
    assert_eq!(device.header("cache-control"), Some("no-store"));
    let device = device.json();
    let (user_code, code) = (field(&device, "user_code"), field(&device, "device_code"));
    assert_eq!((user_code.len(), &user_code[4..5]), (9, "-"));
    assert_eq!(device["expires_in"], 600);
    assert_eq!(device["interval"], 5);
    let verify = format!("{}/rfc8628/verify", sim.base_url());
    assert_eq!(field(&device, "verification_uri"), verify);
    assert_eq!(
        field(&device, "verification_uri_complete"),
        format!("{verify}?user_code={user_code}")
    );

    let grant = "urn:ietf:params:oauth:grant-type:device_code";
    let poll_form = [
        ("grant_type", grant),
        ("device_code", code),
        ("client_id", CLIENT_ID),
    ];
    let slow = client
        .post_form("/rfc8628/token", &poll_form)
        .unwrap()
        .json();
    assert_eq!(
        (slow["error"].as_str(), slow["interval"].as_u64()),
        (Some("slow_down"), Some(10))
    );
    let pending = client
        .post_form("/rfc8628/token", &poll_form)
        .unwrap()
        .json();
    assert_eq!(pending["error"], "authorization_pending");
    // Salesforce's token endpoint does not redeem RFC codes.
    let cross = poll(&mut client, code).json();
    assert_eq!(cross["error"], "invalid_grant");

    let page = client
        .get(&format!("/rfc8628/verify?user_code={user_code}"), None)
        .unwrap();
    assert!(page.text().contains("action=\"/rfc8628/verify\""));
    let approved = client
        .post_form(
            "/rfc8628/verify",
            &[
                ("user_code", &user_code.to_lowercase()),
                ("action", "approve"),
            ],
        )
        .unwrap();
    assert_eq!(approved.status, 200);

    let token = client.post_form("/rfc8628/token", &poll_form).unwrap();
    assert_eq!(token.header("pragma"), Some("no-cache"));
    let token = token.json();
    assert_eq!(
        (token["token_type"].as_str(), token["expires_in"].as_u64()),
        (Some("Bearer"), Some(7200))
    );
    assert_eq!(token["scope"], "openid offline_access");
    let refreshed = client
        .post_form(
            "/rfc8628/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", CLIENT_ID),
                ("refresh_token", field(&token, "refresh_token")),
            ],
        )
        .unwrap();
    assert_eq!(refreshed.status, 200);
    let me = client
        .get(
            "/services/oauth2/userinfo",
            Some(field(&refreshed.json(), "access_token")),
        )
        .unwrap();
    assert_eq!(me.status, 200);

    let denied = client
        .post_form("/rfc8628/device", &[("client_id", CLIENT_ID)])
        .unwrap()
        .json();
    let denied_form = [
        ("grant_type", grant),
        ("device_code", field(&denied, "device_code")),
        ("client_id", CLIENT_ID),
    ];
    client.post_form("/rfc8628/token", &denied_form).unwrap(); // the one slow_down
    assert!(sim.deny(field(&denied, "user_code")));
    assert_eq!(
        client
            .post_form("/rfc8628/token", &denied_form)
            .unwrap()
            .json()["error"],
        "access_denied"
    );

    let expired = client
        .post_form("/rfc8628/device", &[("client_id", CLIENT_ID)])
        .unwrap()
        .json();
    assert!(sim.expire(field(&expired, "user_code")));
    let expired_form = [
        ("grant_type", grant),
        ("device_code", field(&expired, "device_code")),
        ("client_id", CLIENT_ID),
    ];
    assert_eq!(
        client
            .post_form("/rfc8628/token", &expired_form)
            .unwrap()
            .json()["error"],
        "expired_token"
    );
}

#[test]
fn auto_approval() {
    let (_sim, mut client) = start(Config {
        auto_approve_after: Some(Duration::from_millis(100)),
        ..Config::default()
    });
    let step1 = device_code(&mut client, "api");
    assert_eq!(poll(&mut client, field(&step1, "device_code")).status, 400);
    thread::sleep(Duration::from_millis(150));
    assert_eq!(poll(&mut client, field(&step1, "device_code")).status, 200);
}

#[test]
fn the_real_salesforce_form_target_and_bad_codes() {
    let (_sim, mut client) = start(Config::default());
    let step1 = device_code(&mut client, "api");
    let verify = client
        .post_form(
            "/_nc_external/identity/oauth/device/VerifyDevice",
            &[
                ("user_code", field(&step1, "user_code")),
                ("save", "Connect"),
                ("display", "page"),
            ],
        )
        .unwrap();
    assert_eq!(verify.status, 200);
    assert_eq!(poll(&mut client, field(&step1, "device_code")).status, 200);
    let unknown = client
        .post_form("/setup/connect", &[("user_code", "NOPE0000")])
        .unwrap();
    assert_eq!(unknown.status, 400);
    assert!(unknown.text().contains("invalid or expired code"));
}

#[test]
fn refresh_with_a_required_secret() {
    let (sim, mut client) = start(Config {
        consumer_secret: Some("sim-secret".into()),
        require_secret_for_refresh: true,
        ..Config::default()
    });
    let step1 = device_code(&mut client, "api refresh_token");
    sim.approve(field(&step1, "user_code"));
    let token = poll(&mut client, field(&step1, "device_code")).json();
    let refresh = field(&token, "refresh_token");

    let without = client
        .post_form(TOKEN, &refresh_form(refresh))
        .unwrap()
        .json();
    assert_eq!(without["error_description"], "invalid client credentials");
    let mut with_secret = refresh_form(refresh).to_vec();
    with_secret.push(("client_secret", "sim-secret"));
    let refreshed = client.post_form(TOKEN, &with_secret).unwrap().json();
    assert!(refreshed["access_token"].is_string() && refreshed.get("refresh_token").is_none());
    // No rotation: the old refresh token still works, here with HTTP Basic credentials.
    let basic = format!("Basic {}", base64(&format!("{CLIENT_ID}:sim-secret")));
    let body = client::urlencode(&[("grant_type", "refresh_token"), ("refresh_token", refresh)]);
    let headers = [
        ("Authorization", basic.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    assert_eq!(
        client
            .request("POST", TOKEN, &headers, body.as_bytes())
            .unwrap()
            .status,
        200
    );
}

#[test]
fn certificates_other_than_valid_are_refused_by_clients() {
    let cases = [
        (CertMode::WrongHost, "not valid for name"),
        (CertMode::Expired, "certificate expired"),
    ];
    for (cert, why) in cases {
        let sim = Sim::start(Config {
            cert,
            ..Config::default()
        })
        .unwrap();
        let error = Client::connect(&sim)
            .err()
            .expect("the handshake must fail");
        assert!(error.to_string().contains(why), "{cert:?}: {error}");
    }
}

#[test]
fn at_most_64_live_connections() {
    let sim = Sim::start(Config::default()).unwrap();
    // Plain TCP that never starts TLS keeps each connection thread waiting.
    let idle: Vec<TcpStream> = (0..64)
        .map(|_| TcpStream::connect(("127.0.0.1", sim.port())).unwrap())
        .collect();
    assert!(eventually(|| sim.connections() == 64));
    let mut refused = TcpStream::connect(("127.0.0.1", sim.port())).unwrap();
    refused
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut byte = [0u8; 1];
    // Closed: end of stream (or a reset), not the 5 s read timeout, which surfaces as
    // WouldBlock or TimedOut and fails this test.
    let read = refused.read(&mut byte);
    assert!(
        matches!(&read, Ok(0)) || matches!(&read, Err(e) if e.kind() == ErrorKind::ConnectionReset),
        "closed at once, not {read:?}"
    );
    assert_eq!(sim.connections(), 64);

    drop(idle);
    // Once the idle connections are gone, service resumes.
    assert!(eventually(
        || Client::connect(&sim).is_ok_and(|mut c| c.get("/services/data/", None).is_ok())
    ));
}

#[test]
fn shutdown_stops_accepting() {
    let sim = Sim::start(Config::default()).unwrap();
    let port = sim.port();
    let ca = sim.ca_pem();
    sim.shutdown();
    let refused = Client::connect_to(port, &ca)
        .err()
        .expect("nobody listens any more");
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused, "{refused:?}");
}

fn refresh_form(refresh_token: &str) -> [(&'static str, &str); 3] {
    [
        ("grant_type", "refresh_token"),
        ("client_id", CLIENT_ID),
        ("refresh_token", refresh_token),
    ]
}

/// Standard base64, for an HTTP Basic header.
fn base64(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char
            } else {
                '='
            });
        }
    }
    out
}
