//! The library API against the simulator over real TLS with a real file store: a long-running
//! `Agent` whose session expires mid-run, a configured session lifetime, and the example
//! firmware (`examples/firmware.rs`) pairing and creating records.

use std::path::PathBuf;
use std::time::Duration;

use sfpair::agent::Agent;
use sfpair::http::{HttpConfig, UreqTransport};
use sfpair::rest::RestRequest;
use sfpair::store::file::FileStore;
use sfpair::testing::FakeClock;
use sfpair::time::SystemClock;
use sfpair_sim::Config;

use crate::harness::{Env, RUN_LIMIT, Running, fast};

fn agent(env: &Env, clock: Box<dyn sfpair::time::Clock>) -> Agent {
    let http = HttpConfig::default().with_ca_file(&env.ca);
    Agent::new(
        clock,
        Box::new(UreqTransport::new(&http).unwrap()),
        Box::new(FileStore::new(env.token_path())),
    )
}

#[test]
fn a_session_that_expires_mid_run_costs_one_refresh_and_one_retry() {
    let env = Env::start(fast());
    env.pair_approved();
    let mut agent = agent(&env, Box::new(SystemClock::new()));
    let limits = RestRequest::get("/services/data/v62.0/limits").unwrap();
    let skip = env.requests().len();
    let connections = env.sim().connections();
    for _ in 0..3 {
        let mut body = Vec::new();
        let reply = agent.call(&limits, &mut body).unwrap();
        assert_eq!(reply.status, 200);
        assert!(
            reply
                .limit_info
                .as_deref()
                .unwrap()
                .starts_with("api-usage=")
        );
    }
    assert_eq!(
        env.requests()[skip..],
        [
            "POST /services/oauth2/token refresh_token 200",
            "GET /services/data/v62.0/limits - 200",
            "GET /services/data/v62.0/limits - 200",
            "GET /services/data/v62.0/limits - 200",
        ],
        "one refresh, then the cached session"
    );

    env.sim().expire_sessions();
    let skip = env.requests().len();
    let mut body = Vec::new();
    let reply = agent.call(&limits, &mut body).unwrap();
    assert_eq!((reply.status, reply.refreshed), (200, true));
    assert!(
        String::from_utf8(body)
            .unwrap()
            .contains("DailyApiRequests")
    );
    assert_eq!(
        env.requests()[skip..],
        [
            "GET /services/data/v62.0/limits - 401",
            "POST /services/oauth2/token refresh_token 200",
            "GET /services/data/v62.0/limits - 200",
        ]
    );
    assert_eq!(
        env.sim().connections() - connections,
        1,
        "all of it on one kept-alive TLS connection"
    );
}

#[test]
fn a_configured_session_lifetime_refreshes_before_the_server_refuses() {
    let env = Env::start(fast());
    env.pair_approved();
    let clock = FakeClock::new(Duration::from_secs(1_800_000_000));
    let mut agent = agent(&env, Box::new(clock.clone()));
    agent.set_session_lifetime(Some(Duration::from_secs(3600)));
    let limits = RestRequest::get("/services/data/v62.0/limits").unwrap();
    let skip = env.requests().len();
    agent.call(&limits, &mut Vec::new()).unwrap();
    clock.advance(Duration::from_secs(3600));
    agent.call(&limits, &mut Vec::new()).unwrap();
    assert_eq!(
        env.requests()[skip..],
        [
            "POST /services/oauth2/token refresh_token 200",
            "GET /services/data/v62.0/limits - 200",
            "POST /services/oauth2/token refresh_token 200",
            "GET /services/data/v62.0/limits - 200",
        ]
    );
}

/// The example binary next to the test's `sfpair` (cargo builds examples with the tests).
fn example(name: &str) -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_sfpair"));
    let path = bin.parent().unwrap().join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: build the examples first (`cargo build --examples`; scripts/test and \
         `cargo test` do)",
        path.display()
    );
    path
}

/// The example with this test's environment (simulator, CA, store) and a bounded loop.
fn example_command(env: &Env, iterations: u32) -> std::process::Command {
    let mut c = std::process::Command::new(example("firmware"));
    c.env_clear();
    for (key, value) in env.command(&[]).get_envs() {
        if let Some(value) = value {
            c.env(key, value);
        }
    }
    c.env("SFPAIR_EXAMPLE_ITERATIONS", iterations.to_string())
        .env("SFPAIR_EXAMPLE_INTERVAL", "0")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    c
}

#[test]
fn the_example_firmware_pairs_then_creates_a_record_each_round() {
    let env = Env::start(Config {
        auto_approve_after: Some(Duration::from_secs(1)),
        ..fast()
    });
    let out = Running::spawn(example_command(&env, 3)).finish(RUN_LIMIT);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("and enter the code"), "{}", out.stdout);
    assert!(out.stdout.contains("Paired."), "{}", out.stdout);
    let created = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("created a00SIM"))
        .count();
    assert_eq!(created, 3, "{}", out.stdout);
    assert!(env.token_path().exists(), "the pairing was stored");
    let count = |what: &str| env.requests().iter().filter(|l| l.contains(what)).count();
    assert_eq!(
        count("POST /services/data/v62.0/sobjects/Device_Reading__c/ - 201"),
        3
    );
    assert_eq!(
        count(" refresh_token "),
        0,
        "the pairing's own session served all three"
    );

    // Run again: already paired, so no new code; the new process refreshes once.
    let again = Running::spawn(example_command(&env, 1)).finish(RUN_LIMIT);
    assert_eq!(again.code(), 0, "{again:?}");
    assert!(
        again.stdout.starts_with("created a00SIM"),
        "{}",
        again.stdout
    );
    assert!(!again.stdout.contains("enter the code"));
    assert_eq!(count(" refresh_token "), 1);
}

/// The consumer secret has one route, the agent, and it serves the whole life of a
/// pairing: the polls, the signature check, and every refresh after it. (It used to have a
/// second route in `FlowConfig`, which signed-checked the pairing and then refreshed without it.)
#[test]
fn the_client_secret_set_on_the_agent_covers_pairing_and_every_refresh() {
    let secret_config = || Config {
        auto_approve_after: Some(Duration::from_millis(300)),
        consumer_secret: Some("sim-secret".into()),
        require_secret_for_refresh: true,
        ..fast()
    };
    let env = Env::start(secret_config());
    let mut paired = agent(&env, Box::new(SystemClock::new()));
    paired.set_client_secret(Some(sfpair::secret::Secret::new("sim-secret")));
    paired
        .pair(sfpair::flow::FlowConfig::salesforce(
            &env.base_url,
            crate::harness::CLIENT_ID,
        ))
        .unwrap();
    let session = paired.refresh().unwrap();
    assert!(!session.access_token.is_empty());
    assert!(
        env.requests()
            .iter()
            .any(|l| l == "POST /services/oauth2/token refresh_token 200"),
        "{:?}",
        env.requests()
    );

    // The same stored pairing in a new agent without the secret: the server refuses the
    // refresh, which shows the secret above really went with it.
    let mut bare = agent(&env, Box::new(SystemClock::new()));
    let e = bare.refresh().unwrap_err();
    assert_eq!(e.kind(), sfpair::error::ErrorKind::Config, "{e}");
    assert!(
        e.message()
            .contains("Require Secret for Refresh Token Flow"),
        "{e}"
    );
}
