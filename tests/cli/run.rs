//! `sfpair run`, the long-running agent, with the real binary, a real socket and
//! the simulator: it pairs when nothing is paired, serves tokens and health, keeps the pairing
//! alive, says when the pairing died and why (screen, JSON event, broker answer, health),
//! pairs again as `--repair` says while the old record survives a failed re-pair, and speaks
//! the systemd notify protocol to a real datagram listener.

use std::io::{Read, Write};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use sfpair_sim::Config;

use crate::harness::{Env, Running, fast, stored_record, wait_for};

pub(crate) const LIMIT: Duration = Duration::from_secs(30);

/// One request line to the broker and its answer.
pub(crate) fn ask(socket: &Path, line: &str) -> Value {
    let mut stream = UnixStream::connect(socket).unwrap();
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    stream.write_all(line.as_bytes()).unwrap();
    stream.write_all(b"\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{answer:?}: {e}"))
}

pub(crate) fn wait_for_socket(socket: &Path) {
    let deadline = Instant::now() + LIMIT;
    while UnixStream::connect(socket).is_err() {
        assert!(
            Instant::now() < deadline,
            "run did not listen on {}",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls health until its state is `state` (bounded), and returns it.
pub(crate) fn health_until(socket: &Path, state: &str) -> Value {
    let deadline = Instant::now() + LIMIT;
    loop {
        let health = ask(socket, r#"{"get":"health"}"#);
        if health["state"] == state {
            return health;
        }
        assert!(
            Instant::now() < deadline,
            "health never said {state}: {health}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `sfpair run --socket … --json` with `extra`.
pub(crate) fn start(env: &Env, extra: &[&str]) -> (Running, PathBuf) {
    let socket = env.scratch.0.join("run.sock");
    let mut args = vec!["run", "--socket", socket.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let running = env.spawn(&args);
    (running, socket)
}

/// Revokes the stored refresh token at the server, as an admin would (Setup > Connected Apps
/// OAuth Usage > Revoke), so the next refresh is refused.
fn revoke_at_the_server(env: &Env) {
    let record = stored_record(&env.token_path());
    let reply = env
        .browser()
        .post(format!("{}/services/oauth2/revoke", env.base_url))
        .send_form([("token", record.refresh_token.expose())])
        .unwrap();
    assert_eq!(reply.status().as_u16(), 200);
}

fn approving() -> Config {
    Config {
        auto_approve_after: Some(Duration::from_millis(300)),
        ..fast()
    }
}

#[test]
fn run_pairs_when_nothing_is_paired_then_serves_tokens_and_health_without_a_token() {
    let env = Env::start(approving());
    let (mut running, socket) = start(&env, &[]);
    running.event("code", LIMIT);
    let paired = running.event("paired", LIMIT);
    assert_eq!(paired["org_id"], "00DSIM0000000012BA");
    wait_for_socket(&socket);
    let health = health_until(&socket, "paired");
    assert_eq!(health["flow"], "device");
    assert_eq!(health["org_id"], "00DSIM0000000012BA");
    let token = ask(&socket, r#"{"get":"access_token"}"#);
    let access_token = token["access_token"].as_str().unwrap().to_string();
    let health = ask(&socket, r#"{"get":"health"}"#);
    assert_eq!(health["last_refresh"]["ok"], true, "{health}");
    let text = health.to_string();
    for secret in env.sim().issued_secrets() {
        assert!(!text.contains(&secret), "health carries a token: {text}");
    }
    assert!(!text.contains(&access_token));
    // `sfpair status --socket` shows it to a person, and as is with --json.
    let shown = env.run(&["status", "--socket", socket.to_str().unwrap()]);
    assert_eq!(shown.code(), 0, "{shown:?}");
    assert!(
        shown.stdout.contains("state      paired"),
        "{}",
        shown.stdout
    );
    assert!(
        shown.stdout.contains("00DSIM0000000012BA"),
        "{}",
        shown.stdout
    );
    let as_json = env.run(&["status", "--socket", socket.to_str().unwrap(), "--json"]);
    let value: Value = serde_json::from_str(as_json.stdout.trim()).unwrap();
    assert_eq!(value["state"], "paired");
    running.terminate();
    let out = running.finish(LIMIT);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(!socket.exists(), "the socket is removed at exit");
}

#[test]
fn keepalive_refreshes_while_nobody_asks() {
    let env = Env::start(fast());
    env.pair_approved();
    let skip = env.requests().len();
    let (running, socket) = start(&env, &["--keepalive", "1s"]);
    wait_for_socket(&socket);
    let deadline = Instant::now() + LIMIT;
    let refreshes = || {
        env.requests()[skip..]
            .iter()
            .filter(|l| l.contains(" refresh_token 200"))
            .count()
    };
    while refreshes() < 2 {
        assert!(Instant::now() < deadline, "{:?}", env.requests());
        std::thread::sleep(Duration::from_millis(100));
    }
    let health = ask(&socket, r#"{"get":"health"}"#);
    assert_eq!(health["state"], "paired");
    assert!(health["next_keepalive"].as_u64().is_some(), "{health}");
    running.terminate();
    assert_eq!(running.finish(LIMIT).code(), 0);
}

/// The refresh requests the simulator answered so far.
fn refreshes(env: &Env) -> usize {
    env.requests()
        .iter()
        .filter(|l| l.contains(" refresh_token 200"))
        .count()
}

#[test]
fn keepalive_carries_a_pairing_through_an_idle_limit_and_without_it_the_pairing_dies() {
    // The app's refresh token policy: "expire if not used for 5 seconds". The keepalive
    // refreshes every second, so a loaded machine may be 4 s late before the pairing dies.
    let limit = Duration::from_secs(5);
    let idle = Config {
        refresh_idle: Some(limit),
        ..fast()
    };
    let env = Env::start(idle.clone());
    env.pair_approved();
    let (running, socket) = start(&env, &["--keepalive", "1s"]);
    wait_for_socket(&socket);
    // Kept alive for longer than the limit: counted in keepalives (each at least 1 s apart),
    // not in a sleep.
    let before = refreshes(&env);
    let started = Instant::now();
    wait_for(2 * LIMIT, "eight keepalive refreshes", || {
        refreshes(&env) >= before + 8
    });
    assert!(
        started.elapsed() > limit,
        "the keepalives outlived the limit"
    );
    let token = ask(&socket, r#"{"get":"access_token","refused":1}"#);
    assert!(token["access_token"].is_string(), "kept alive: {token}");
    assert_eq!(ask(&socket, r#"{"get":"health"}"#)["state"], "paired");
    running.terminate();
    assert_eq!(running.finish(LIMIT).code(), 0);

    let env = Env::start(idle);
    env.pair_approved();
    let (running, socket) = start(&env, &["--keepalive", "0"]);
    wait_for_socket(&socket);
    // Idle for longer than the limit: no refresh at all while we wait (counted), however late
    // the last one before it came.
    let before = refreshes(&env);
    std::thread::sleep(limit + Duration::from_secs(1));
    assert_eq!(
        refreshes(&env),
        before,
        "nothing used the refresh token meanwhile"
    );
    let token = ask(&socket, r#"{"get":"access_token"}"#);
    assert_eq!(
        token["error"], "repair_needed",
        "idle past the limit: {token}"
    );
    let health = health_until(&socket, "repair_needed");
    assert_eq!(health["cause"], "revoked_or_expired", "{health}");
    running.terminate();
    assert_eq!(running.finish(LIMIT).code(), 0);
}

#[test]
fn a_dead_pairing_is_said_everywhere_and_a_person_starts_the_new_one() {
    let env = Env::start(approving());
    env.pair_approved();
    let before = std::fs::read(env.token_path()).unwrap();
    let (mut running, socket) = start(&env, &["--keepalive", "1s", "--repair", "prompt"]);
    wait_for_socket(&socket);
    health_until(&socket, "paired");
    revoke_at_the_server(&env);
    // The keepalive finds it: a JSON event, health with the cause, broker answers.
    let died = running.event("error", LIMIT);
    assert_eq!(died["kind"], "repair_needed", "{died}");
    let health = health_until(&socket, "repair_needed");
    assert_eq!(health["cause"], "revoked_or_expired", "{health}");
    assert!(health["admin_action"].is_string(), "{health}");
    let token = ask(&socket, r#"{"get":"access_token"}"#);
    assert_eq!(token["error"], "repair_needed", "{token}");
    assert_eq!(
        std::fs::read(env.token_path()).unwrap(),
        before,
        "the record is kept for diagnosis"
    );
    // `prompt`: nothing happens until a person asks.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        ask(&socket, r#"{"get":"health"}"#)["state"],
        "repair_needed"
    );
    let asked = ask(&socket, r#"{"do":"pair"}"#);
    assert_eq!(asked["pairing"], "started", "{asked}");
    running.event("code", LIMIT);
    running.event("paired", LIMIT);
    health_until(&socket, "paired");
    let token = ask(&socket, r#"{"get":"access_token"}"#);
    assert!(token["access_token"].is_string(), "{token}");
    assert_ne!(std::fs::read(env.token_path()).unwrap(), before);
    running.terminate();
    assert_eq!(running.finish(LIMIT).code(), 0);
}

#[test]
fn every_cause_of_death_reaches_the_event_the_broker_and_health() {
    for (refusal, cause, kind) in [
        (
            sfpair_sim::RefreshRefusal::IpRestricted,
            "ip_restricted",
            "repair_needed",
        ),
        (
            sfpair_sim::RefreshRefusal::SecretRequired,
            "secret_required",
            "config",
        ),
    ] {
        // An org that pairs, then refuses every refresh this way.
        let env = Env::start(Config {
            refresh_refusal: Some(refusal),
            ..fast()
        });
        env.pair_approved();
        let (mut running, socket) = start(&env, &["--keepalive", "1s", "--repair", "never"]);
        wait_for_socket(&socket);
        let died = running.event("error", LIMIT);
        assert_eq!(died["kind"], kind, "{refusal:?}: {died}");
        let health = health_until(&socket, "repair_needed");
        assert_eq!(health["cause"], cause, "{health}");
        let token = ask(&socket, r#"{"get":"access_token"}"#);
        assert_eq!(token["error"], kind, "{token}");
        assert!(
            token["message"].as_str().unwrap().contains(cause),
            "the broker's answer names the cause: {token}"
        );
        running.terminate();
        assert_eq!(running.finish(LIMIT).code(), 0);
    }
}

#[test]
fn sigusr1_asks_for_a_pairing_and_never_refuses_to() {
    let env = Env::start(approving());
    env.pair_approved();
    let (mut running, socket) = start(&env, &["--repair", "prompt"]);
    wait_for_socket(&socket);
    running.signal(libc::SIGUSR1);
    running.event("code", LIMIT);
    running.event("paired", LIMIT);
    running.terminate();
    assert_eq!(running.finish(LIMIT).code(), 0);

    let (running, socket) = start(&env, &["--repair", "never"]);
    wait_for_socket(&socket);
    let refused = ask(&socket, r#"{"do":"pair"}"#);
    assert_eq!(refused["error"], "refused", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("--repair never")
    );
    running.terminate();
    assert_eq!(running.finish(LIMIT).code(), 0);
}

#[test]
fn auto_pairs_again_at_once_and_the_old_record_survives_a_failed_re_pair() {
    // Nobody approves here: the automatic re-pair runs out of codes.
    let env = Env::start(fast());
    env.pair_approved();
    let before = std::fs::read(env.token_path()).unwrap();
    let (mut running, socket) = start(
        &env,
        &[
            "--keepalive",
            "1s",
            "--repair",
            "auto",
            "--max-codes",
            "1",
            "--code-lifetime",
            "2",
        ],
    );
    wait_for_socket(&socket);
    health_until(&socket, "paired");
    revoke_at_the_server(&env);
    running.event("code", LIMIT);
    let gave_up = running.event("error", LIMIT);
    let gave_up = if gave_up["kind"] == "repair_needed" {
        running.event("error", LIMIT)
    } else {
        gave_up
    };
    assert_eq!(gave_up["kind"], "expired", "{gave_up}");
    health_until(&socket, "repair_needed");
    assert_eq!(
        std::fs::read(env.token_path()).unwrap(),
        before,
        "a failed re-pair leaves the old record"
    );
    running.terminate();
    assert_eq!(running.finish(LIMIT).code(), 0);
}

#[test]
fn systemd_hears_ready_status_and_the_watchdog() {
    let env = Env::start(fast());
    env.pair_approved();
    let listen = env.scratch.0.join("notify.sock");
    let listener = UnixDatagram::bind(&listen).unwrap();
    listener.set_read_timeout(Some(LIMIT)).unwrap();
    let socket = env.scratch.0.join("run.sock");
    let mut command = env.command(&["run", "--socket", socket.to_str().unwrap()]);
    command
        .env("NOTIFY_SOCKET", &listen)
        .env("WATCHDOG_USEC", "400000");
    let running = Running::spawn(command);
    let mut heard = Vec::new();
    let deadline = Instant::now() + LIMIT;
    let mut buf = [0u8; 512];
    while !(heard.iter().any(|m: &String| m == "READY=1")
        && heard
            .iter()
            .any(|m| m.starts_with("STATUS=paired with org 00DSIM0000000012BA"))
        && heard.iter().filter(|m| *m == "WATCHDOG=1").count() >= 3)
    {
        assert!(Instant::now() < deadline, "heard only {heard:?}");
        let n = listener.recv(&mut buf).unwrap();
        heard.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    running.terminate();
    assert_eq!(running.finish(LIMIT).code(), 0);
    let mut tail = Vec::new();
    listener
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    while let Ok(n) = listener.recv(&mut buf) {
        tail.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(tail.iter().any(|m| m == "STOPPING=1"), "{tail:?}");
    for secret in env.sim().issued_secrets() {
        assert!(
            heard.iter().chain(&tail).all(|m| !m.contains(&secret)),
            "a token in a notify message"
        );
    }
}

/// `run` that starts with a pairing stored says so in one line (it printed nothing): where it
/// serves, for which org and user, and when the next keepalive comes; a JSON event with --json.
#[test]
fn run_says_one_line_when_it_starts_already_paired() {
    let env = Env::start(fast());
    env.pair_approved();
    let (mut running, socket) = start(&env, &[]);
    let serving = running.event("serving", LIMIT);
    assert_eq!(serving["socket"], socket.to_str().unwrap(), "{serving}");
    assert_eq!(serving["org_id"], "00DSIM0000000012BA", "{serving}");
    assert!(serving["next_keepalive"].as_u64().is_some(), "{serving}");
    running.terminate();
    assert_eq!(running.finish(LIMIT).code(), 0);

    let mut command = env.command(&["run", "--socket", socket.to_str().unwrap()]);
    command.env("RUST_LOG", "off");
    let running = Running::spawn(command);
    wait_for_socket(&socket);
    // The broker says it serves before it reads a signal, and the line comes before the stop.
    running.terminate();
    let out = running.finish(LIMIT);
    let expected = format!(
        "serving on {}, paired with org 00DSIM0000000012BA as 005SIM000000001YBA, next \
         keepalive in ",
        socket.display()
    );
    assert!(out.stdout.starts_with(&expected), "{:?}", out.stdout);
    assert_eq!(out.stdout.lines().count(), 1, "{:?}", out.stdout);
}
