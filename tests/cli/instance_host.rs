//! The agent against an org whose instance is not its login host (the simulator's
//! `instance_host`): it stores the login URL, refreshes there, and sends REST calls to the
//! `instance_url` of the token reply, as a real org expects (REST on the login host fails).

use sfpair_sim::Config;

use crate::harness::{Env, fast};

#[test]
fn rest_goes_to_the_instance_and_refresh_to_the_login_host() {
    let env = Env::start(Config {
        instance_host: Some("localhost".into()),
        ..fast()
    });
    env.pair_approved();
    let instance = env.sim().instance_url();
    assert!(instance.starts_with("https://localhost:"), "{instance}");

    let out = env.run(&["call", "GET", "/services/data/v62.0/limits"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let limits: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(limits["DailyApiRequests"]["Max"], 15000);

    // An expired session: the agent refreshes (at the login URL) and retries on the instance.
    env.sim().expire_sessions();
    let out = env.run(&["call", "GET", "/services/data/v62.0/limits"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let log = env.sim().log();
    let hosts = |path: &str| -> Vec<&str> {
        log.iter()
            .filter(|e| e.path == path)
            .map(|e| e.host.as_str())
            .collect()
    };
    assert!(
        log.iter()
            .any(|e| e.grant.as_deref() == Some("refresh_token") && e.status == 200),
        "{log:#?}"
    );
    let token = hosts("/services/oauth2/token");
    assert!(
        !token.is_empty() && token.iter().all(|h| *h == "127.0.0.1"),
        "pairing and refresh go to the login host: {token:?}"
    );
    let rest = hosts("/services/data/v62.0/limits");
    assert!(
        rest.len() >= 2 && rest.iter().all(|h| *h == "localhost"),
        "REST goes to the instance: {rest:?}"
    );
}
