//! `sfpair status` after pairing: the age of the pairing, the user and org from userinfo with
//! `--check` (text and JSON), a rejected refresh token, and never a token in the output.

use sfpair_sim::Config;

use crate::harness::{Env, fast, stored_record};

#[test]
fn status_shows_the_age_and_check_shows_the_user_and_org() {
    let env = Env::start(fast());
    env.pair_approved();
    let out = env.run(&["status"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stdout.contains("(less than a minute ago)"),
        "{}",
        out.stdout
    );
    assert_eq!(
        env.requests()
            .iter()
            .filter(|l| l.contains("refresh_token"))
            .count(),
        0,
        "plain status sends nothing"
    );

    let out = env.run(&["status", "--check"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stdout
            .contains("technician@sim.example (Sim Technician)"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("00DSIM0000000012BA"), "{}", out.stdout);
    assert!(
        out.stdout.contains("the refresh token works"),
        "{}",
        out.stdout
    );

    let out = env.run(&["status", "--check", "--json"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(v["check"]["refresh"], "ok");
    assert_eq!(v["check"]["username"], "technician@sim.example");
    assert_eq!(v["check"]["org_id"], "00DSIM0000000012BA");
    assert_eq!(v["check"]["user_id"], "005SIM000000001YBA");
    assert!(v["age_seconds"].as_u64().unwrap() < 120, "{v}");
    assert_eq!(v["age"], "less than a minute");
    let rt = stored_record(&env.token_path()).refresh_token;
    assert!(!out.stdout.contains(rt.expose()) && !out.stderr.contains(rt.expose()));
    assert!(!out.stdout.contains("!AR"), "no access token");
}

#[test]
fn check_reports_a_rejected_refresh_token_in_json_too() {
    let env = Env::start(Config {
        rotate_refresh_tokens: true,
        ..fast()
    });
    env.pair_approved();
    let old = std::fs::read(env.token_path()).unwrap();
    assert_eq!(env.run(&["token"]).code(), 0);
    std::fs::write(env.token_path(), &old).unwrap(); // a rotated-out token: the grant dies
    let out = env.run(&["status", "--check", "--json"]);
    assert_eq!(out.code(), 6, "{out:?}");
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(v["paired"], true);
    assert_eq!(v["check"]["refresh"], "rejected");
    assert_eq!(v["check"]["error"], "repair_needed");
    assert!(out.stderr.contains("pair --force"), "{}", out.stderr);
}
