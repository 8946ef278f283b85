//! The `signature` of token responses, checked when a consumer secret is configured: the
//! simulator signs with its consumer secret; an agent configured with another secret rejects
//! the pairing (nothing stored, the grant revoked) and the refresh (nothing changed), and one
//! with the right secret accepts both.

use sfpair_sim::Config;

use crate::harness::{Env, RUN_LIMIT, Running, fast};

fn signing() -> Config {
    Config {
        consumer_secret: Some("sim-secret".into()),
        ..fast()
    }
}

/// `sfpair pair --json` with a client secret in the environment, approved at once.
fn pair_with_secret(env: &Env, secret: &str) -> crate::harness::Output {
    let mut command = env.command(&["pair", "--json"]);
    command.env("SFPAIR_CLIENT_SECRET", secret);
    let mut run = Running::spawn(command);
    let code = run.event("code", RUN_LIMIT);
    env.approve(code["verification_uri_complete"].as_str().unwrap());
    run.finish(RUN_LIMIT)
}

fn with_secret(env: &Env, secret: &str, args: &[&str]) -> crate::harness::Output {
    let mut command = env.command(args);
    command.env("SFPAIR_CLIENT_SECRET", secret);
    Running::spawn(command).finish(RUN_LIMIT)
}

#[test]
fn a_pairing_signed_with_another_secret_is_rejected_and_nothing_is_stored() {
    let env = Env::start(signing());
    let out = pair_with_secret(&env, "not-the-secret");
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stderr.contains("does not match the consumer secret"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("sim-secret") && !out.stderr.contains("not-the-secret"));
    assert!(!env.token_path().exists(), "nothing stored");
    assert_eq!(
        env.sim().revoked_refresh_tokens(),
        1,
        "the grant we would not keep was revoked"
    );

    // The right secret: the same flow pairs.
    let out = pair_with_secret(&env, "sim-secret");
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(env.token_path().exists());
}

#[test]
fn a_refresh_signed_with_another_secret_is_rejected_and_the_record_is_unchanged() {
    let env = Env::start(Config {
        rotate_refresh_tokens: true,
        ..signing()
    });
    env.pair_approved(); // no secret configured: nothing to check
    let before = std::fs::read(env.token_path()).unwrap();
    let out = with_secret(&env, "not-the-secret", &["token"]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(out.stdout.is_empty(), "no token printed");
    assert!(out.stderr.contains("signature"), "{}", out.stderr);
    assert_eq!(std::fs::read(env.token_path()).unwrap(), before);
    // That refresh rotated the token at the server, and the rotated one was dropped with the
    // rejected reply: the stored one is retired, so the grant is gone (documented).
    let out = with_secret(&env, "sim-secret", &["token"]);
    assert_eq!(out.code(), 6, "{out:?}");
}

#[test]
fn a_refresh_signed_with_the_right_secret_is_accepted() {
    let env = Env::start(signing());
    env.pair_approved();
    let out = with_secret(
        &env,
        "sim-secret",
        &["call", "GET", "/services/data/v62.0/limits"],
    );
    assert_eq!(out.code(), 0, "{out:?}");
}
