//! Commands stand on the pairing they find stored: with no `--login-url`, `--client-id` or
//! `--flow` (and none in the environment), `run` serves and pairs again with the org and app it
//! is paired with, `pair --force` pairs that org again, `doctor` checks that org; a value given
//! that contradicts the stored pairing is said once, with what it means for the command.

use std::time::Duration;

use sfpair_sim::Config;

use crate::harness::{Env, Output, RUN_LIMIT, Running, fast};
use crate::run::{LIMIT, ask, health_until, wait_for_socket};

/// `sfpair args…` with nothing in the environment about the org or the app: only the store
/// and the CA.
fn bare(env: &Env, args: &[&str]) -> std::process::Command {
    let mut command = env.command(args);
    command
        .env_remove("SFPAIR_LOGIN_URL")
        .env_remove("SFPAIR_CLIENT_ID");
    command
}

fn run_bare(env: &Env, args: &[&str]) -> Output {
    Running::spawn(bare(env, args)).finish(RUN_LIMIT)
}

fn approving() -> Config {
    Config {
        auto_approve_after: Some(Duration::from_millis(300)),
        ..fast()
    }
}

#[test]
fn run_on_a_stored_pairing_needs_no_flags_and_pairs_again_with_its_own_org() {
    let env = Env::start(approving());
    env.pair_approved();
    let socket = env.scratch.0.join("run.sock");
    let mut running = Running::spawn(bare(
        &env,
        &["run", "--socket", socket.to_str().unwrap(), "--json"],
    ));
    wait_for_socket(&socket);
    health_until(&socket, "paired");
    let token = ask(&socket, r#"{"get":"access_token"}"#);
    assert!(token["access_token"].is_string(), "{token}");
    // A new pairing on request goes to the stored org with the stored app.
    assert_eq!(ask(&socket, r#"{"do":"pair"}"#)["pairing"], "started");
    let code = running.event("code", LIMIT);
    let uri = code["verification_uri"].as_str().unwrap();
    assert!(uri.starts_with(&env.base_url), "{uri}");
    running.event("paired", LIMIT);
    health_until(&socket, "paired");
    running.terminate();
    let out = running.finish(LIMIT);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(!out.stderr.contains("no client id"), "{}", out.stderr);
}

#[test]
fn pair_force_and_doctor_take_the_org_and_the_app_from_the_store() {
    let env = Env::start(approving());
    env.pair_approved();
    let out = run_bare(&env, &["pair", "--force", "--json"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let code = &out.events()[0];
    assert!(
        code["verification_uri"]
            .as_str()
            .unwrap()
            .starts_with(&env.base_url),
        "{code}"
    );
    let out = run_bare(&env, &["doctor"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("127.0.0.1 resolves"), "{}", out.stdout);
    assert!(
        !out.stdout.contains("login.salesforce.com"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_setting_that_contradicts_the_stored_pairing_is_said_once_with_what_it_means() {
    let env = Env::start(fast());
    env.pair_approved();
    let other = "https://test.salesforce.com";
    let out = run_bare(&env, &["token", "--login-url", other]);
    assert_eq!(out.code(), 0, "the stored pairing is used: {out:?}");
    let said = format!("--login-url {other} is not the one this device paired with");
    assert_eq!(out.stderr.matches(&said).count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("sfpair pair --force"), "{}", out.stderr);
    // In the environment, it is named as such; for `pair`, the new pairing uses it.
    let mut command = bare(&env, &["pair", "--force", "--json", "--max-codes", "1"]);
    command
        .env("SFPAIR_CLIENT_ID", "3MVG9another.app")
        .env("SFPAIR_LOGIN_URL", &env.base_url);
    let out = Running::spawn(command).finish(RUN_LIMIT);
    assert_eq!(out.code(), 2, "the simulator knows no such app: {out:?}");
    assert!(
        out.stderr
            .contains("SFPAIR_CLIENT_ID 3MVG9another.app is not the one this device paired with"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("the new pairing uses"),
        "{}",
        out.stderr
    );
    // The same value, written otherwise, is no contradiction.
    let same = format!("{}/", env.base_url);
    let out = run_bare(&env, &["token", "--login-url", &same]);
    assert!(!out.stderr.contains("is not the one"), "{}", out.stderr);
}
