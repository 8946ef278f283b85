//! Years in the field: pairings that die for each reason the server can give, named
//! by the real binary (`sfpair token`: the cause in the message, the record kept), and JWT access
//! tokens that the agent refreshes shortly before their `exp`.

use std::time::{Duration, Instant};

use sfpair::agent::Agent;
use sfpair::http::{HttpConfig, UreqTransport};
use sfpair::refusal::Cause;
use sfpair::rest::RestRequest;
use sfpair::store::file::FileStore;
use sfpair::time::SystemClock;
use sfpair_sim::{Config, RefreshRefusal};

use crate::harness::{Env, Output, fast};

/// `sfpair token` failed with `code`, naming `cause`, and left the stored record as it was.
fn refused(env: &Env, code: i32, cause: Cause) -> Output {
    let before = std::fs::read(env.token_path()).unwrap();
    let out = env.run(&["token"]);
    assert_eq!(out.code(), code, "{out:?}");
    let named = format!("refresh refused ({},", cause.name());
    assert!(out.stderr.contains(&named), "{named}: {}", out.stderr);
    assert!(out.stderr.contains(cause.admin_action()), "{}", out.stderr);
    assert_eq!(std::fs::read(env.token_path()).unwrap(), before, "kept");
    out
}

/// Real time is the scenario here: the windows are wide enough for a loaded machine, where a
/// run may take a second or two (each use comes 2 s after the previous one started, inside a
/// 6 s window), and the waits that must exceed a window only ever get longer.
const IDLE: Duration = Duration::from_secs(6);

#[test]
fn an_idle_refresh_token_expires_and_each_use_resets_the_window() {
    let env = Env::start(Config {
        refresh_idle: Some(IDLE),
        ..fast()
    });
    env.pair_approved();
    let paired = Instant::now();
    let mut started = paired;
    for _ in 0..4 {
        std::thread::sleep(Duration::from_secs(2).saturating_sub(started.elapsed()));
        started = Instant::now();
        let out = env.run(&["token"]);
        assert_eq!(out.code(), 0, "used inside the idle window: {out:?}");
    }
    assert!(paired.elapsed() > IDLE, "the uses outlived one window");
    let last_use = Instant::now();
    std::thread::sleep(IDLE + Duration::from_secs(1));
    assert!(last_use.elapsed() > IDLE);
    let out = refused(&env, 6, Cause::RevokedOrExpired);
    assert!(out.stderr.contains("sfpair pair --force"), "{}", out.stderr);
}

#[test]
fn a_refresh_token_past_its_absolute_lifetime_expires_even_when_used() {
    let lifetime = Duration::from_secs(8);
    let env = Env::start(Config {
        refresh_lifetime: Some(lifetime),
        ..fast()
    });
    env.pair_approved();
    // The grant was made before pair_approved returned: a lifetime from here is past it.
    let paired = Instant::now();
    assert_eq!(env.run(&["token"]).code(), 0, "used inside its lifetime");
    std::thread::sleep((lifetime + Duration::from_millis(300)).saturating_sub(paired.elapsed()));
    refused(&env, 6, Cause::RevokedOrExpired);
}

#[test]
fn an_admin_revoking_the_user_ends_the_pairing() {
    let env = Env::start(fast());
    env.pair_approved();
    assert_eq!(env.run(&["token"]).code(), 0);
    // Over the admin hook, as a script would; the library method is `Sim::revoke_user`.
    let mut reply = env
        .browser()
        .post(format!("{}/__mock/revoke_user", env.base_url))
        .send_empty()
        .unwrap();
    assert_eq!(reply.status().as_u16(), 200);
    assert_eq!(
        reply.body_mut().read_to_string().unwrap(),
        "revoke_user: 1 grants\n"
    );
    assert_eq!(env.sim().revoke_user(), 0, "nothing left alive");
    refused(&env, 6, Cause::RevokedOrExpired);
}

#[test]
fn a_refresh_from_a_network_outside_the_allowlist_says_so() {
    let env = Env::start(Config {
        refresh_refusal: Some(RefreshRefusal::IpRestricted),
        ..fast()
    });
    env.pair_approved();
    let out = refused(&env, 6, Cause::IpRestricted);
    assert!(
        out.stderr.contains("invalid_grant: ip restricted"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_app_that_starts_to_require_the_secret_is_a_setting_not_a_repair() {
    let env = Env::start(Config {
        refresh_refusal: Some(RefreshRefusal::SecretRequired),
        ..fast()
    });
    env.pair_approved();
    let out = refused(&env, 2, Cause::SecretRequired);
    assert!(
        out.stderr.contains("--client-secret-file"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_unknown_consumer_key_is_named() {
    let env = Env::start(fast());
    env.pair_approved();
    // The stored pairing's client id is what the refresh sends: rewrite it, as a record copied
    // from a device of another org would be.
    let mut record = crate::harness::stored_record(&env.token_path());
    record.client_id = "3MVG9another.org.key".into();
    let mut store = FileStore::new(env.token_path());
    sfpair::store::TokenStore::save(&mut store, &record).unwrap();
    refused(&env, 2, Cause::UnknownClient);
}

#[test]
fn jwt_access_tokens_are_refreshed_shortly_before_exp_and_work_for_rest() {
    let ttl = Duration::from_secs(6);
    let env = Env::start(Config {
        jwt_access_tokens: true,
        session_ttl: Some(ttl),
        ..fast()
    });
    env.pair_approved();
    let http = HttpConfig::default().with_ca_file(&env.ca);
    let mut agent = Agent::new(
        Box::new(SystemClock::new()),
        Box::new(UreqTransport::new(&http).unwrap()),
        Box::new(FileStore::new(env.token_path())),
    );
    let first = agent.access_token().unwrap();
    assert_eq!(first.access_token.expose().split('.').count(), 3, "a JWT");
    // Read from the token's exp (an opaque token has no expiry): within its lifetime, not over.
    let left = agent.expires_in(&first).expect("the agent read exp");
    assert!(left <= ttl && !left.is_zero(), "{left:?}");
    let limits = RestRequest::get("/services/data/v62.0/limits").unwrap();
    let mut body = Vec::new();
    let reply = agent.call(&limits, &mut body).unwrap();
    assert_eq!((reply.status, reply.refreshed), (200, false));
    assert_eq!(agent.access_token().unwrap().generation, first.generation);
    std::thread::sleep(left + Duration::from_millis(100));
    let second = agent.access_token().unwrap();
    assert_eq!(
        second.generation,
        first.generation + 1,
        "refreshed before exp"
    );
    let refused_sessions = env.requests().iter().filter(|r| r.contains(" 401")).count();
    assert_eq!(
        refused_sessions,
        0,
        "no 401 was needed: {:?}",
        env.requests()
    );
}
