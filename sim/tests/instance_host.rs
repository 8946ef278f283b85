//! A login host that is not the instance (`Config::instance_host`): token replies name
//! the instance, REST answers only there, one certificate covers both names, and the
//! `verification_uri` echoes only the hosts the simulator answers as.

mod client;

use client::{CLIENT_ID, Client};
use serde_json::Value;
use sfpair_sim::{Config, Sim};

const TOKEN: &str = "/services/oauth2/token";

fn start(host: &str) -> Sim {
    Sim::start(Config {
        instance_host: Some(host.to_string()),
        ..Config::default()
    })
    .unwrap()
}

fn step1(client: &mut Client) -> Value {
    let form = [("response_type", "device_code"), ("client_id", CLIENT_ID)];
    let reply = client.post_form(TOKEN, &form).unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

#[test]
fn tokens_send_rest_to_the_instance() {
    let sim = start("localhost");
    let port = sim.port();
    assert_eq!(sim.instance_url(), format!("https://localhost:{port}"));
    let mut login = Client::connect(&sim).unwrap();
    let device = step1(&mut login);
    assert!(sim.approve(device["user_code"].as_str().unwrap()));
    let form = [
        ("grant_type", "device"),
        ("client_id", CLIENT_ID),
        ("code", device["device_code"].as_str().unwrap()),
    ];
    let token = login.post_form(TOKEN, &form).unwrap().json();
    assert_eq!(token["instance_url"], format!("https://localhost:{port}"));
    assert_eq!(
        token["id"].as_str().unwrap(),
        format!("https://127.0.0.1:{port}/id/00DSIM0000000012BA/005SIM000000001YBA"),
        "the identity URL stays on the login host, as login.salesforce.com/id/… does"
    );
    let access = token["access_token"].as_str().unwrap();

    let wrong_host = login
        .get("/services/data/v67.0/limits", Some(access))
        .unwrap();
    assert_eq!(wrong_host.status, 404);
    assert!(
        wrong_host.text().contains("instance_url"),
        "{}",
        wrong_host.text()
    );

    let mut instance = Client::connect_as(port, &sim.ca_pem(), "localhost").unwrap();
    let limits = instance
        .get("/services/data/v67.0/limits", Some(access))
        .unwrap();
    assert_eq!(limits.status, 200, "{}", limits.text());
    let called: Vec<String> = sim
        .log()
        .iter()
        .filter(|e| e.path.ends_with("/limits"))
        .map(|e| e.host.clone())
        .collect();
    assert_eq!(
        called,
        ["127.0.0.1", "localhost"],
        "the log names the host called"
    );

    // Refresh at the login URL the agent stored, revoke there too.
    let refresh = token["refresh_token"].as_str().unwrap();
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", CLIENT_ID),
        ("refresh_token", refresh),
    ];
    let refreshed = login.post_form(TOKEN, &form).unwrap().json();
    assert_eq!(
        refreshed["instance_url"],
        format!("https://localhost:{port}")
    );
    let revoked = login
        .post_form("/services/oauth2/revoke", &[("token", refresh)])
        .unwrap();
    assert_eq!(revoked.status, 200);
}

#[test]
fn verification_uri_echoes_only_known_hosts() {
    let sim = start("localhost");
    let port = sim.port();
    let mut by_ip = Client::connect(&sim).unwrap();
    assert_eq!(
        step1(&mut by_ip)["verification_uri"],
        format!("https://127.0.0.1:{port}/setup/connect")
    );
    let mut by_name = Client::connect_as(port, &sim.ca_pem(), "localhost").unwrap();
    assert_eq!(
        step1(&mut by_name)["verification_uri"],
        format!("https://localhost:{port}/setup/connect")
    );
    for forged in [
        format!("evil.example:{port}"),
        "localhost:1".to_string(),
        "localhost".to_string(),
    ] {
        by_name.set_host(&forged);
        assert_eq!(
            step1(&mut by_name)["verification_uri"],
            format!("https://127.0.0.1:{port}/setup/connect"),
            "Host: {forged}"
        );
    }
}

#[test]
fn one_certificate_names_both_hosts() {
    let sim = start("sim.test");
    let mut instance = Client::connect_as(sim.port(), &sim.ca_pem(), "sim.test").unwrap();
    assert_eq!(
        step1(&mut instance)["verification_uri"],
        format!("https://sim.test:{}/setup/connect", sim.port())
    );
    assert!(Client::connect(&sim).is_ok());
    // Without the option the name is not on the certificate.
    let plain = Sim::start(Config::default()).unwrap();
    let refused = Client::connect_as(plain.port(), &plain.ca_pem(), "sim.test")
        .err()
        .expect("wrong name");
    assert!(
        refused.to_string().contains("not valid for name"),
        "{refused}"
    );
}
