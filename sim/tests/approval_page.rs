//! The approval page as a phone walks it: log-in step (`prompt=login`), code entry,
//! review (app, scopes, the code to compare), decision; the keyboard's Go never approves.

mod client;

use client::{CLIENT_ID, Client};
use sfpair_sim::{Config, Sim};

fn code(client: &mut Client) -> String {
    let form = [
        ("response_type", "device_code"),
        ("client_id", CLIENT_ID),
        ("scope", "api refresh_token"),
    ];
    let reply = client
        .post_form("/services/oauth2/token", &form)
        .unwrap()
        .json();
    reply["user_code"].as_str().unwrap().to_string()
}

#[test]
fn entry_review_then_decision() {
    let sim = Sim::start(Config {
        app_name: "Fleet <Agent>".into(),
        ..Config::default()
    })
    .unwrap();
    let mut c = Client::connect(&sim).unwrap();
    let user_code = code(&mut c);

    let entry = c.get("/setup/connect", None).unwrap();
    assert_eq!(entry.status, 200);
    assert!(entry.text().contains("value=\"review\""));

    // The keyboard's Go on the entry step submits `action=review`: a review, no approval.
    let typed = user_code.to_lowercase();
    let review = c
        .post_form(
            "/setup/connect",
            &[("user_code", &typed), ("action", "review")],
        )
        .unwrap();
    assert_eq!(review.status, 200);
    let html = review.text();
    assert!(html.contains("Fleet &lt;Agent&gt;"), "{html}");
    assert!(html.contains("Manage user data via APIs (api)"));
    assert!(html.contains("Perform requests at any time (refresh_token)"));
    assert!(
        html.contains(&format!(">{user_code}</div>")),
        "the code as issued"
    );
    assert!(html.contains("Check that this code is the one on your device"));
    assert_eq!(
        sim.pending_user_codes(),
        vec![user_code.clone()],
        "still pending"
    );

    // A form posted without an action does not approve either.
    let bare = c
        .post_form("/setup/connect", &[("user_code", &user_code)])
        .unwrap();
    assert_eq!(bare.status, 200);
    assert_eq!(sim.pending_user_codes(), vec![user_code.clone()]);

    let wrong = c
        .post_form(
            "/setup/connect",
            &[("user_code", "ZZZZ0000"), ("action", "review")],
        )
        .unwrap();
    assert_eq!(wrong.status, 400);
    assert!(wrong.text().contains("invalid or expired code"));

    let approved = c
        .post_form(
            "/setup/connect",
            &[("user_code", &user_code), ("action", "approve")],
        )
        .unwrap();
    assert!(approved.text().contains("Device connected"));
    assert!(sim.pending_user_codes().is_empty());
}

#[test]
fn one_tap_login_step_and_deny() {
    let sim = Sim::start(Config::default()).unwrap();
    let mut c = Client::connect(&sim).unwrap();
    let user_code = code(&mut c);

    let one_tap = c
        .get(&format!("/setup/connect?user_code={user_code}"), None)
        .unwrap();
    assert!(
        one_tap.text().contains("value=\"approve\""),
        "one tap opens the review"
    );

    let login = c
        .get(
            &format!("/setup/connect?user_code={user_code}&prompt=login"),
            None,
        )
        .unwrap();
    let html = login.text();
    assert!(
        html.contains("type=\"password\"") && !html.contains("value=\"approve\""),
        "{html}"
    );
    let next = c
        .post_form(
            "/setup/connect",
            &[
                ("user_code", &user_code),
                ("username", "technician@sim.example"),
                ("password", "x"),
                ("action", "login"),
            ],
        )
        .unwrap();
    assert!(
        next.text().contains("value=\"approve\""),
        "after log-in, the review"
    );

    let denied = c
        .post_form(
            "/setup/connect",
            &[("user_code", &user_code), ("action", "deny")],
        )
        .unwrap();
    assert!(denied.text().contains("Access denied"));
    assert!(sim.pending_user_codes().is_empty());
}
