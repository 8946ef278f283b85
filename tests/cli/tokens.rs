//! After pairing: `token`, `status`, `forget`, rotation, and secrets kept out of the output.

use sfpair_sim::Config;

use crate::harness::{Env, fast, stored_record};

#[test]
fn token_prints_a_fresh_access_token_and_json_adds_the_instance() {
    let env = Env::start(fast());
    env.pair_approved();
    let out = env.run(&["token"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let token = out.stdout.trim();
    assert!(token.starts_with("00D"), "{token}");
    assert_ne!(
        token,
        stored_record(&env.token_path()).refresh_token.expose()
    );
    let out = env.run(&["token", "--json"]);
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(v["instance_url"], env.base_url);
    assert!(v["access_token"].as_str().unwrap().starts_with("00D"));
    let refreshes = env
        .requests()
        .iter()
        .filter(|r| r.contains(" refresh_token 200"))
        .count();
    assert_eq!(refreshes, 2);
}

#[test]
fn status_shows_the_pairing_without_tokens_and_check_proves_it() {
    let env = Env::start(fast());
    let out = env.run(&["status"]);
    assert_eq!(out.code(), 5, "not paired yet: {out:?}");
    env.pair_approved();
    let rt = stored_record(&env.token_path())
        .refresh_token
        .expose()
        .to_string();
    let out = env.run(&["status", "--check"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains(&env.base_url));
    assert!(
        out.stdout.contains("technician@sim.example"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains(&rt) && !out.stderr.contains(&rt));
    let out = env.run(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(v["org_id"], "00DSIM0000000012BA");
}

#[test]
fn forget_revokes_and_wipes() {
    let env = Env::start(fast());
    env.pair_approved();
    let out = env.run(&["forget"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(env.sim().revoked_refresh_tokens(), 1);
    assert!(!env.token_path().exists());
    assert_eq!(env.run(&["token"]).code(), 5);
    let out = env.run(&["forget"]);
    assert_eq!(out.code(), 0);
    assert!(out.stdout.contains("Nothing to forget"));
}

#[test]
fn forget_wipes_even_when_the_server_is_gone() {
    let mut env = Env::start(fast());
    env.pair_approved();
    env.stop_sim();
    let out = env.run(&["forget"]);
    assert_eq!(out.code(), 7, "{out:?}");
    assert!(out.stderr.contains("may stay valid"), "{}", out.stderr);
    assert!(!env.token_path().exists());
}

#[test]
fn a_rotated_out_refresh_token_means_pair_again_and_the_record_is_kept() {
    let env = Env::start(Config {
        rotate_refresh_tokens: true,
        ..fast()
    });
    env.pair_approved();
    let old = std::fs::read(env.token_path()).unwrap();
    let out = env.run(&["token"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_ne!(
        std::fs::read(env.token_path()).unwrap(),
        old,
        "the rotated token was stored"
    );
    // Put the rotated-out token back, as a restored backup would: reuse kills the grant.
    std::fs::write(env.token_path(), &old).unwrap();
    let out = env.run(&["token"]);
    assert_eq!(out.code(), 6, "{out:?}");
    assert!(out.stderr.contains("sfpair pair --force"), "{}", out.stderr);
    assert_eq!(
        std::fs::read(env.token_path()).unwrap(),
        old,
        "kept until a new pairing"
    );
}

#[test]
fn no_token_appears_in_logs_even_at_trace_level() {
    let env = Env::start(fast());
    let mut run = crate::harness::Running::spawn({
        let mut c = env.command(&["pair", "--json"]);
        c.env("RUST_LOG", "trace");
        c
    });
    let code = run.event("code", crate::harness::RUN_LIMIT);
    env.approve(code["verification_uri_complete"].as_str().unwrap());
    let pair = run.finish(crate::harness::RUN_LIMIT);
    assert_eq!(pair.code(), 0, "{pair:?}");
    assert!(
        pair.stderr.contains("debug: [ureq"),
        "verbose logging was on: {}",
        pair.stderr
    );
    assert!(
        !pair.stderr.contains("trace: [ureq"),
        "ureq's byte dumps are clamped"
    );
    let rt = stored_record(&env.token_path())
        .refresh_token
        .expose()
        .to_string();
    let token = crate::harness::Running::spawn({
        let mut c = env.command(&["token"]);
        c.env("RUST_LOG", "trace");
        c
    })
    .finish(crate::harness::RUN_LIMIT);
    let at = token.stdout.trim().to_string();
    assert!(at.len() > 20);
    for (name, text) in [
        ("pair stdout", &pair.stdout),
        ("pair stderr", &pair.stderr),
        ("token stderr", &token.stderr),
    ] {
        assert!(!text.contains(&rt), "refresh token in {name}");
        assert!(!text.contains(&at), "access token in {name}");
        // The bearer secret is not split across ureq's 16-byte hex-dump rows either.
        assert!(
            !text.contains(&rt[..12]) && !text.contains(&at[4..16]),
            "token fragment in {name}"
        );
    }
}
