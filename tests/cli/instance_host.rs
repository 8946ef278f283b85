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
    let lines = env.requests();
    assert!(
        lines.iter().any(|l| l.contains(" refresh_token 200")),
        "{lines:#?}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with("GET /services/data/v62.0/limits - 404")),
        "no REST call went to the login host: {lines:#?}"
    );
}
