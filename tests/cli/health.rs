//! Health tells the truth, with the real binary against the simulator: the flow is the stored
//! grant's (device, JWT bearer, client credentials), a deleted store is `not_paired` whatever
//! the agent believed, and `sfpair status --socket`'s exit code follows the state.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use sfpair_sim::Config;

use crate::harness::{Env, RUN_LIMIT, Running, fast};
use crate::headless::{cc, cc_env, jwt_env, jwt_pair};
use crate::run::{LIMIT, ask, health_until, start, wait_for_socket};

/// `sfpair status --socket S --json`: the health and the exit code.
fn status(env: &Env, socket: &Path) -> (Value, i32) {
    let out = env.run(&["status", "--socket", socket.to_str().unwrap(), "--json"]);
    let health = serde_json::from_str(out.stdout.trim()).unwrap_or(Value::Null);
    (health, out.code())
}

/// `sfpair serve` on the env's store (with `extra_env`), its socket, and its health's flow.
fn served_flow(env: &Env, extra_env: &[(&str, &Path)]) -> String {
    let socket = env.scratch.0.join("serve.sock");
    let mut command = env.command(&["serve", "--socket", socket.to_str().unwrap()]);
    for (k, v) in extra_env {
        command.env(k, v);
    }
    let running = Running::spawn(command);
    wait_for_socket(&socket);
    let health = health_until(&socket, "paired");
    running.terminate();
    assert_eq!(running.finish(RUN_LIMIT).code(), 0);
    health["flow"].as_str().unwrap_or("null").to_string()
}

#[test]
fn health_names_the_flow_of_the_stored_grant() {
    let env = Env::start(fast());
    env.pair_approved();
    assert_eq!(served_flow(&env, &[]), "device");

    let (env, key) = jwt_env("", fast());
    assert_eq!(jwt_pair(&env, &key, &[]).code(), 0);
    assert_eq!(served_flow(&env, &[]), "jwt-bearer");

    let (env, secret) = cc_env("");
    let out = cc(&env, &secret, &["pair", "--flow", "client-credentials"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(
        served_flow(&env, &[("SFPAIR_CLIENT_SECRET_FILE", &secret)]),
        "client-credentials"
    );
}

#[test]
fn a_deleted_store_is_not_paired_and_status_socket_exits_by_the_state() {
    let env = Env::start(fast());
    env.pair_approved();
    let (running, socket) = start(&env, &["--keepalive", "1s"]);
    wait_for_socket(&socket);
    health_until(&socket, "paired");
    assert_eq!(status(&env, &socket).1, 0, "paired: 0");
    // The pairing refused at the server: 6.
    env.sim().revoke_user();
    health_until(&socket, "repair_needed");
    let (health, code) = status(&env, &socket);
    assert_eq!(code, 6, "{health}");
    // The store deleted under it: not paired, 5, and no flow.
    std::fs::remove_file(env.token_path()).unwrap();
    let (health, code) = status(&env, &socket);
    assert_eq!(health["state"], "not_paired", "{health}");
    assert_eq!(health["flow"], Value::Null, "{health}");
    assert_eq!(code, 5, "{health}");
    running.terminate();
    assert_eq!(running.finish(LIMIT).code(), 0);

    // A code up and nothing serving yet: 5; the text form says so too.
    let env = Env::start(Config {
        auto_approve_after: Some(Duration::from_secs(600)),
        ..fast()
    });
    let (mut running, socket) = start(&env, &[]);
    running.event("code", LIMIT);
    wait_for_socket(&socket);
    assert_eq!(ask(&socket, r#"{"get":"health"}"#)["state"], "pairing");
    let out = env.run(&["status", "--socket", socket.to_str().unwrap()]);
    assert_eq!(out.code(), 5, "{out:?}");
    assert!(out.stdout.contains("state      pairing"), "{}", out.stdout);
    assert!(out.stderr.contains("not paired yet"), "{}", out.stderr);
    running.terminate();
    assert_eq!(running.finish(LIMIT).code(), 0);
}
