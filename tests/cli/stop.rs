//! `sfpair run` obeys SIGTERM: at ten moments of a pairing and ten of a delivery, the real
//! binary against the simulator exits 0 within [`STOP_LIMIT`] of the signal, loses no queued
//! record and sends none twice; a refresh already sent when the signal comes is waited for,
//! and the rotated refresh token it brings is stored (docs/run.md, "Stopping").
//!
//! A request "in flight" is one the simulator has answered in its state but whose reply it
//! holds back (`Fault::Slow`, `Fault::RestSlow`): it shows in the simulator's request log
//! before the reply leaves.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use sfpair_sim::{Config, Fault};

use crate::harness::{Env, Output, Running, fast, stored_record};
use crate::outbox::{assert_delivered, readings, rows, send};
use crate::run::{LIMIT, ask, health_until, wait_for_socket};

/// What a stop may take, from SIGTERM to the exit (the promise, docs/run.md).
const STOP_LIMIT: Duration = Duration::from_secs(2);
/// Longer than any test here: a request held back this long is in flight when the stop comes.
const FOREVER: Duration = Duration::from_secs(60);

/// What the run is doing when the signal comes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum At {
    /// Waiting (a countdown, a backoff, a lock): the wait itself must end on the stop, so the
    /// run never has to leave a thread behind.
    Wait,
    /// A pairing poll or a delivery request in flight: it may be left behind.
    Request,
}

/// The run's log line when it leaves a thread behind (`service::finish`).
const LEFT_BEHIND: &str = "stopping without waiting for the request in flight";

/// `sfpair run --socket … --json extra…` logging at info, so [`LEFT_BEHIND`] shows.
fn start(env: &Env, extra: &[&str]) -> (Running, PathBuf) {
    let socket = env.scratch.0.join("run.sock");
    let mut args = vec!["run", "--socket", socket.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let mut command = env.command(&args);
    command.env("RUST_LOG", "info");
    (Running::spawn(command), socket)
}

/// SIGTERM now; the run must exit 0 within `limit`, and at a wait, leave no thread behind.
#[track_caller]
fn stop_within(running: Running, limit: Duration, at: At, moment: &str) -> Output {
    let sent = Instant::now();
    running.terminate();
    let out = running.finish(LIMIT);
    let took = sent.elapsed();
    assert_eq!(out.code(), 0, "{moment}: {out:?}");
    assert!(
        took < limit,
        "{moment}: SIGTERM took {took:?} (at most {limit:?}); stderr: {}",
        out.stderr
    );
    if at == At::Wait {
        assert!(
            !out.stderr.contains(LEFT_BEHIND),
            "{moment}: a wait did not end on the stop: {}",
            out.stderr
        );
    }
    out
}

/// Waits (bounded) until `ready` says so.
#[track_caller]
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !ready() {
        assert!(Instant::now() < deadline, "never saw {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How many requests the simulator has logged whose line contains `what`.
fn logged(env: &Env, what: &str) -> usize {
    env.requests().iter().filter(|l| l.contains(what)).count()
}

fn health(socket: &Path) -> Value {
    ask(socket, r#"{"get":"health"}"#)
}

#[test]
fn sigterm_ends_a_pairing_within_two_seconds_at_ten_moments() {
    // 1. Before the first request: the start jitter's wait (a random point in 10 minutes).
    let env = Env::start(fast());
    let (running, socket) = start(&env, &["--start-jitter", "600"]);
    wait_for_socket(&socket);
    health_until(&socket, "pairing");
    stop_within(
        running,
        STOP_LIMIT,
        At::Wait,
        "waiting out the start jitter",
    );
    assert_eq!(logged(&env, "device_code"), 0, "{:?}", env.requests());

    // 2. The device code request in flight: the server is slow to answer.
    let env = Env::start(fast());
    env.sim().push_faults(&[Fault::Slow(FOREVER)]);
    let (running, _) = start(&env, &[]);
    wait_until("the code request", || logged(&env, "device_code") == 1);
    stop_within(
        running,
        STOP_LIMIT,
        At::Request,
        "the code request in flight",
    );

    // 3. Waiting to retry the code request after a 503.
    let env = Env::start(fast());
    env.sim().push_faults(&[Fault::Html503]);
    let (mut running, _) = start(&env, &[]);
    running.event("retrying", LIMIT);
    stop_within(
        running,
        STOP_LIMIT,
        At::Wait,
        "waiting to retry the code request",
    );

    // 4. A code on show, nobody approving.
    let env = Env::start(fast());
    let (mut running, _) = start(&env, &[]);
    running.event("code", LIMIT);
    stop_within(running, STOP_LIMIT, At::Wait, "a code on show");

    // 5. A poll in flight.
    let env = Env::start(fast());
    let (mut running, _) = start(&env, &[]);
    running.event("code", LIMIT);
    let polls = logged(&env, " device ");
    env.sim().push_faults(&[Fault::Slow(FOREVER)]);
    wait_until("a poll", || logged(&env, " device ") > polls);
    stop_within(running, STOP_LIMIT, At::Request, "a poll in flight");

    // 6. Waiting to retry a poll the server answered 503.
    let env = Env::start(fast());
    let (mut running, _) = start(&env, &[]);
    running.event("code", LIMIT);
    env.sim().push_faults(&[Fault::Html503]);
    running.event("retrying", LIMIT);
    stop_within(running, STOP_LIMIT, At::Wait, "waiting to retry a poll");

    // 7. The login host unreachable while a code is on show: polls back off.
    let env = Env::start(fast());
    let (mut running, _) = start(&env, &[]);
    running.event("code", LIMIT);
    env.sim().set_offline(true);
    running.event("retrying", LIMIT);
    stop_within(
        running,
        STOP_LIMIT,
        At::Wait,
        "the server gone while polling",
    );

    // 8. The second code, after the first ran out.
    let env = Env::start(fast());
    let (mut running, _) = start(&env, &["--code-lifetime", "2", "--max-codes", "3"]);
    running.event("new_code", LIMIT);
    stop_within(running, STOP_LIMIT, At::Wait, "a second code on show");

    // 9. A new pairing a person asked for, while the old one serves: the old record stays.
    let env = Env::start(fast());
    env.pair_approved();
    let before = std::fs::read(env.token_path()).unwrap();
    let (mut running, socket) = start(&env, &[]);
    wait_for_socket(&socket);
    health_until(&socket, "paired");
    assert_eq!(ask(&socket, r#"{"do":"pair"}"#)["pairing"], "started");
    running.event("code", LIMIT);
    stop_within(running, STOP_LIMIT, At::Wait, "a re-pair on show");
    assert_eq!(std::fs::read(env.token_path()).unwrap(), before);

    // 10. A slow_down: the interval grows, the wait with it.
    let env = Env::start(Config {
        slow_down: sfpair_sim::SlowDown::FirstPolls(1),
        ..fast()
    });
    let (mut running, _) = start(&env, &[]);
    running.event("slow_down", LIMIT);
    stop_within(running, STOP_LIMIT, At::Wait, "waiting after a slow_down");
}

#[test]
fn sigterm_ends_the_keepalive_s_waits_within_two_seconds() {
    // Paired and idle: the next keepalive is an hour away.
    let env = Env::start(fast());
    env.pair_approved();
    let (running, socket) = start(&env, &[]);
    wait_for_socket(&socket);
    health_until(&socket, "paired");
    stop_within(running, STOP_LIMIT, At::Wait, "paired and idle");

    // A keepalive that failed (the org unreachable) waits a minute to try again.
    let env = Env::start(fast());
    env.pair_approved();
    let (running, socket) = start(&env, &["--keepalive", "1s"]);
    wait_for_socket(&socket);
    env.sim().set_offline(true);
    wait_until("a failed keepalive", || {
        health(&socket)["last_refresh"]["ok"] == false
    });
    stop_within(
        running,
        STOP_LIMIT,
        At::Wait,
        "waiting to retry a keepalive",
    );

    // Re-pair needed, waiting for a person to ask (`--repair prompt`).
    let env = Env::start(fast());
    env.pair_approved();
    env.sim().revoke_user();
    let (running, socket) = start(&env, &["--keepalive", "1s"]);
    wait_for_socket(&socket);
    health_until(&socket, "repair_needed");
    stop_within(
        running,
        STOP_LIMIT,
        At::Wait,
        "waiting for a person to ask for a pairing",
    );
}

/// A refresh whose reply is on its way when SIGTERM comes is waited for: with a server that
/// rotates refresh tokens, the old token is dead at the server already, and only the reply
/// holds the new one. The run stores it before it exits, and the next process uses it.
#[test]
fn a_refresh_in_flight_is_waited_for_and_its_rotated_token_stored() {
    let slow = Duration::from_millis(1500);
    let env = Env::start(Config {
        rotate_refresh_tokens: true,
        ..fast()
    });
    env.pair_approved();
    let before = stored_record(&env.token_path()).refresh_token;
    env.sim().push_faults(&[Fault::Slow(slow)]);
    let (running, _) = start(&env, &["--keepalive", "1s"]);
    wait_until("the keepalive refresh", || {
        logged(&env, " refresh_token 200") == 1
    });
    stop_within(
        running,
        slow + STOP_LIMIT,
        At::Request,
        "a keepalive refresh in flight",
    );
    let after = stored_record(&env.token_path()).refresh_token;
    assert_ne!(
        after.expose(),
        before.expose(),
        "the rotated token was stored"
    );
    let token = env.run(&["token"]);
    assert_eq!(token.code(), 0, "the stored token works: {token:?}");
}

/// `run` with a stored pairing and `records` queued before it starts.
fn delivering(env: &Env, name: &str, count: usize) -> (Running, std::path::PathBuf) {
    let (lines, _) = readings(name, count);
    assert_eq!(send(env, name, &lines, &[]).code(), 0);
    let (running, socket) = start(env, &[]);
    wait_for_socket(&socket);
    (running, socket)
}

/// Waits until health says delivery is paused, and returns why.
fn paused(socket: &Path) -> String {
    let mut why = String::new();
    wait_until(
        "delivery paused",
        || match health(socket)["outbox"]["paused"].as_str() {
            Some(p) => {
                why = p.to_string();
                true
            }
            None => false,
        },
    );
    why
}

/// What stayed queued is delivered exactly once by a later flush.
#[track_caller]
fn nothing_lost(env: &Env, name: &str, count: usize) {
    let out = env.run(&["outbox", "flush"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_delivered(&rows(env), &readings(name, count).1);
}

#[test]
fn sigterm_ends_delivery_within_two_seconds_at_ten_moments() {
    // 1. Idle: nothing queued.
    let env = Env::start(fast());
    env.pair_approved();
    let (running, socket) = start(&env, &[]);
    wait_for_socket(&socket);
    wait_until("the outbox figures", || {
        health(&socket)["outbox"]["queued"] == 0
    });
    stop_within(running, STOP_LIMIT, At::Wait, "delivery idle");

    // 2. Right after a send: the linger that gathers a burst.
    let env = Env::start(fast());
    env.pair_approved();
    let (running, socket) = start(&env, &[]);
    wait_for_socket(&socket);
    let (lines, _) = readings("linger", 3);
    assert_eq!(send(&env, "linger", &lines, &[]).code(), 0);
    stop_within(running, STOP_LIMIT, At::Wait, "lingering after a send");
    nothing_lost(&env, "linger", 3);

    // 3. A collections request in flight: the org committed it, its reply is late. The
    // record is sent again later and upserted by its external id: stored once.
    let env = Env::start(fast());
    env.pair_approved();
    env.sim().push_faults(&[Fault::RestSlow(FOREVER)]);
    let (running, _) = delivering(&env, "flight", 5);
    wait_until("the collections request", || {
        logged(&env, "composite/sobjects") == 1
    });
    stop_within(running, STOP_LIMIT, At::Request, "a delivery in flight");
    nothing_lost(&env, "flight", 5);

    // 4. Waiting to try again after the org answered 503.
    let env = Env::start(fast());
    env.pair_approved();
    env.sim().push_faults(&[Fault::RestMaintenance]);
    let (running, socket) = delivering(&env, "maint", 2);
    paused(&socket);
    stop_within(running, STOP_LIMIT, At::Wait, "waiting after a 503");
    nothing_lost(&env, "maint", 2);

    // 5. The org's API limit reached: the pause lasts its Retry-After.
    let env = Env::start(fast());
    env.pair_approved();
    env.sim().set_api_limit(10);
    env.sim().set_api_usage(10);
    let (running, socket) = delivering(&env, "limit", 2);
    paused(&socket);
    stop_within(running, STOP_LIMIT, At::Wait, "waiting out the API limit");

    // 6. The org offline: every connection cut.
    let env = Env::start(fast());
    env.pair_approved();
    env.sim().set_offline(true);
    let (running, socket) = delivering(&env, "offline", 2);
    paused(&socket);
    stop_within(running, STOP_LIMIT, At::Wait, "the org offline");
    env.sim().set_offline(false);
    nothing_lost(&env, "offline", 2);

    // 7. Another process holds the deliver lock.
    let env = Env::start(fast());
    env.pair_approved();
    let (lines, _) = readings("locked", 2);
    assert_eq!(send(&env, "locked", &lines, &[]).code(), 0);
    let held = hold_deliver_lock(&env);
    let (running, socket) = start(&env, &[]);
    wait_for_socket(&socket);
    paused(&socket);
    stop_within(
        running,
        STOP_LIMIT,
        At::Wait,
        "waiting for the deliver lock",
    );
    drop(held);

    // 8. Records queued while nothing is paired: a code on show, delivery waiting.
    let env = Env::start(fast());
    let (mut running, socket) = delivering(&env, "unpaired", 2);
    running.event("code", LIMIT);
    wait_until("the queue in health", || {
        health(&socket)["outbox"]["queued"] == 2
    });
    stop_within(
        running,
        STOP_LIMIT,
        At::Wait,
        "records queued while pairing",
    );

    // 9. A backlog going out batch after batch.
    let env = Env::start(fast());
    env.pair_approved();
    let (running, _) = delivering(&env, "backlog", 2000);
    wait_until("the first batch", || !rows(&env).is_empty());
    stop_within(running, STOP_LIMIT, At::Request, "draining a backlog");
    nothing_lost(&env, "backlog", 2000);

    // 10. The session for a delivery being refreshed: a refresh in flight is waited for.
    let slow = Duration::from_millis(1000);
    let env = Env::start(Config {
        rotate_refresh_tokens: true,
        ..fast()
    });
    env.pair_approved();
    let (running, socket) = start(&env, &[]);
    wait_for_socket(&socket);
    env.sim().push_faults(&[Fault::Slow(slow)]);
    let refreshes = logged(&env, " refresh_token 200");
    let (lines, _) = readings("session", 2);
    assert_eq!(send(&env, "session", &lines, &[]).code(), 0);
    wait_until("the delivery's refresh", || {
        logged(&env, " refresh_token 200") > refreshes
    });
    stop_within(
        running,
        slow + STOP_LIMIT,
        At::Request,
        "a delivery's refresh in flight",
    );
    assert_eq!(
        env.run(&["token"]).code(),
        0,
        "the rotated token was stored"
    );
}

/// Holds `deliver.lock` of the env's outbox, as an `outbox flush` would, until dropped.
fn hold_deliver_lock(env: &Env) -> std::fs::File {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(crate::outbox::outbox_dir(env).join("deliver.lock"))
        .expect("the outbox's deliver lock file opens");
    file.lock().unwrap();
    file
}

/// The deliver lock held at start (an `outbox flush` running, or the previous run still
/// stopping): delivery waits, says so in health, and takes the lock over as soon as it is free.
#[test]
fn delivery_takes_the_deliver_lock_over_as_soon_as_it_is_free() {
    let env = Env::start(fast());
    env.pair_approved();
    let (lines, sent) = readings("takeover", 4);
    assert_eq!(send(&env, "takeover", &lines, &[]).code(), 0);
    let held = hold_deliver_lock(&env);
    let (running, socket) = start(&env, &[]);
    wait_for_socket(&socket);
    let why = paused(&socket);
    assert!(why.contains("another process"), "{why}");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        rows(&env).is_empty(),
        "nothing delivered while the lock is held"
    );
    let released = Instant::now();
    drop(held);
    wait_until("the records delivered", || rows(&env).len() == sent.len());
    assert!(
        released.elapsed() < Duration::from_secs(3),
        "delivered {:?} after the lock was free",
        released.elapsed()
    );
    assert_delivered(&rows(&env), &sent);
    wait_until("health with the queue delivered and no pause", || {
        let outbox = &health(&socket)["outbox"];
        outbox["queued"] == 0 && outbox["paused"].is_null()
    });
    stop_within(running, STOP_LIMIT, At::Wait, "after the takeover");
}
