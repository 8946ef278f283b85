//! Every setting `run` and `serve` take is used or refused, never dropped without a word: a
//! value given on purpose that is wrong, or that the chosen flow would not use, is exit 2 (or
//! the outbox's own error) before anything is served; the ones `run` used to drop (`--flow`,
//! `--issuer`, an outbox that cannot be opened, the start jitter of a headless grant) now act.

use std::time::{Duration, Instant};

use crate::harness::{Env, Running, fast};
use crate::headless::jwt_env;
use crate::run::{LIMIT, health_until, start, wait_for_socket};

/// Runs `sfpair command --socket S args…` and expects it to refuse at once with `code` and a
/// message holding `says`.
#[track_caller]
fn refused(env: &Env, command: &str, args: &[&str], code: i32, says: &str) {
    let socket = env.scratch.0.join("refused.sock");
    let mut all = vec![command, "--socket", socket.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = env.run(&all);
    assert_eq!(out.code(), code, "{command} {args:?}: {out:?}");
    assert!(
        out.stderr.contains(says),
        "{command} {args:?}: {}",
        out.stderr
    );
    assert!(!socket.exists(), "{command} {args:?} served");
}

#[test]
fn a_wrong_value_for_any_setting_of_run_or_serve_is_refused_before_serving() {
    let env = Env::start(fast());
    let file = env.scratch.0.join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let not_a_dir = file.join("outbox");
    let not_a_dir = not_a_dir.to_str().unwrap();
    for command in ["run", "serve"] {
        for (args, says) in [
            (&["--keepalive", "weekly"][..], "--keepalive 'weekly'"),
            (&["--timeout", "0"], "--timeout must be at least 1 second"),
            (&["--wait-for-clock", "soon"], "--wait-for-clock 'soon'"),
            (&["--session-lifetime", "0"], "--session-lifetime must be"),
            (&["--api-version", "sixty"], "sixty"),
            (&["--api-reserve", "0"], "--api-reserve '0'"),
            (&["--outbox-max-bytes", "1K"], "below the smallest allowed"),
            (&["--allow-uid", "root"], "--allow-uid 'root'"),
            (
                &["--socket-group", "no-such-group-here"],
                "no-such-group-here",
            ),
            (&["--store", "tape:/dev/st0"], "tape"),
            (
                &["--login-url", "https://acme.lightning.force.com"],
                "Lightning",
            ),
        ] {
            refused(&env, command, args, 2, says);
        }
    }
    for (args, says) in [
        (&["--repair", "sometimes"][..], "--repair 'sometimes'"),
        (&["--display", "hologram"], "hologram"),
        (&["--max-codes", "0"], "--max-codes must be at least 1"),
        (&["--flow", "magic"], "--flow 'magic'"),
    ] {
        refused(&env, "run", args, 2, says);
    }
    // An outbox named on purpose that cannot be opened stops the start (the outbox's error).
    for command in ["run", "serve"] {
        let socket = env.scratch.0.join("outbox.sock");
        let out = env.run(&[
            command,
            "--socket",
            socket.to_str().unwrap(),
            "--outbox",
            not_a_dir,
        ]);
        assert_ne!(out.code(), 0, "{command}: {out:?}");
        assert!(out.stderr.contains(not_a_dir), "{command}: {}", out.stderr);
        assert!(!socket.exists());
    }
}

#[test]
fn a_flag_the_chosen_flow_would_not_use_is_refused() {
    let env = Env::start(fast());
    for (args, says) in [
        (
            &["--flow", "jwt-bearer", "--max-codes", "5"][..],
            "--max-codes does not apply to the jwt-bearer flow",
        ),
        (
            &["--flow", "client-credentials", "--key-file", "/k"],
            "--key-file does not apply to the client-credentials flow",
        ),
        (
            &["--username", "someone@acme.example"],
            "--username does not apply to the device flow",
        ),
    ] {
        refused(&env, "run", args, 2, says);
        let out = env.run(&[&["pair"][..], args].concat());
        assert_eq!(out.code(), 2, "pair {args:?}: {out:?}");
        assert!(out.stderr.contains(says), "{}", out.stderr);
    }
}

/// `run --flow jwt-bearer` enrols with the JWT bearer grant (it used to show a device code),
/// after its start jitter, which a SIGTERM ends.
#[test]
fn run_enrols_with_the_flow_it_is_given_after_the_start_jitter() {
    let (env, key) = jwt_env("", fast());
    let user = "gateway-0042@acme.example";
    let key = key.to_str().unwrap();
    let jwt = [
        "--flow",
        "jwt-bearer",
        "--key-file",
        key,
        "--username",
        user,
    ];
    let (running, socket) = start(&env, &jwt);
    wait_for_socket(&socket);
    let health = health_until(&socket, "paired");
    assert_eq!(health["flow"], "jwt-bearer", "{health}");
    running.terminate();
    assert_eq!(running.finish(LIMIT).code(), 0);
    assert!(
        !env.requests().iter().any(|l| l.contains(" device_code ")),
        "no device code: {:?}",
        env.requests()
    );

    std::fs::remove_file(env.token_path()).unwrap();
    let before = env.requests().len();
    let (running, socket) = start(&env, &[&jwt[..], &["--start-jitter", "600"]].concat());
    wait_for_socket(&socket);
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(env.requests().len(), before, "waiting out the start jitter");
    let sent = Instant::now();
    running.terminate();
    assert_eq!(running.finish(LIMIT).code(), 0);
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "{:?}",
        sent.elapsed()
    );
}

/// `run --dialect rfc8628 --issuer URL` reads the provider's metadata before it pairs (the
/// issuer used to be dropped, and the pairing sent to no endpoint at all).
#[test]
fn run_pairs_with_an_rfc8628_issuer() {
    let env = Env::start(sfpair_sim::Config {
        auto_approve_after: Some(Duration::from_millis(300)),
        ..fast()
    });
    let issuer = format!("{}/rfc8628", env.base_url);
    let (mut running, socket) = start(&env, &["--dialect", "rfc8628", "--issuer", &issuer]);
    running.event("paired", LIMIT);
    wait_for_socket(&socket);
    health_until(&socket, "paired");
    running.terminate();
    assert_eq!(running.finish(LIMIT).code(), 0);
    assert!(
        env.requests()[0].starts_with("GET /.well-known/oauth-authorization-server/rfc8628 "),
        "{:?}",
        env.requests()
    );
}

/// The default outbox beside the store that cannot be made costs the outbox, not the tokens.
#[test]
fn a_default_outbox_that_cannot_be_made_is_said_and_tokens_are_still_served() {
    let env = Env::start(fast());
    env.pair_approved();
    // Where the outbox would go, a file.
    std::fs::write(env.scratch.0.join("state/outbox"), "in the way").unwrap();
    let socket = env.scratch.0.join("serve.sock");
    let running = Running::spawn(env.command(&["serve", "--socket", socket.to_str().unwrap()]));
    wait_for_socket(&socket);
    let health = health_until(&socket, "paired");
    assert!(health["outbox"].is_null(), "{health}");
    running.terminate();
    let out = running.finish(LIMIT);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stderr.contains("no outbox"), "{}", out.stderr);
}
