//! The network fault matrix (docs/reliability.md, "Fault matrix"): for each fault, what sfpair does, which exit
//! code, that no secret is printed, and that the stored pairing is untouched. HTTP-level faults
//! come from the simulator; TCP-level ones from the proxy in `netfault.rs`; a DNS failure from a
//! network namespace with no network at all.

use std::process::Command;
use std::time::Duration;

use sfpair_sim::{CertMode, Config, Fault};

use crate::harness::{Env, Output, RUN_LIMIT, Running, fast};
use crate::netfault::{Mode, Proxy, Unanswered, closed_port};

/// Fails if any secret the simulator ever issued shows up in the given output.
fn assert_no_secrets(env: &Env, outputs: &[(&str, &str)]) {
    for secret in env.sim().issued_secrets() {
        for (name, text) in outputs {
            assert!(
                !text.contains(&secret),
                "a secret issued by the simulator appears in {name}"
            );
        }
    }
}

enum Inject {
    Sim(Fault),
    Proxy(Mode),
}

/// Pairs through a proxy with `inject` hitting one poll (the pairing must survive with the same
/// code), then makes `inject` persistent for a refresh (exit 7, the pairing untouched).
fn fault_case(inject: Inject) {
    let env = Env::start(fast());
    let proxy = Proxy::start(env.sim().port());
    let via_proxy = |args: &[&str]| {
        let mut c = env.command(args);
        c.env("SFPAIR_LOGIN_URL", proxy.url());
        c
    };
    let mut run = Running::spawn(via_proxy(&["pair", "--json", "--timeout", "2"]));
    let code = run.event("code", RUN_LIMIT);
    match &inject {
        Inject::Sim(f) => env.sim().push_faults(std::slice::from_ref(f)),
        Inject::Proxy(mode) => proxy.set(*mode, true),
    }
    let retry = run.event("retrying", RUN_LIMIT);
    env.approve(code["verification_uri_complete"].as_str().unwrap());
    let pair = run.finish(RUN_LIMIT);
    assert_eq!(pair.code(), 0, "{pair:?}");
    assert!(
        pair.events().iter().all(|e| e["event"] != "new_code"),
        "the same code survived"
    );
    let stored = std::fs::read(env.token_path()).unwrap();

    match &inject {
        Inject::Sim(f) => env.sim().push_faults(&vec![f.clone(); 10]),
        Inject::Proxy(mode) => proxy.set(*mode, false),
    }
    let token = Running::spawn(via_proxy(&["token", "--timeout", "2"])).finish(RUN_LIMIT);
    assert_eq!(token.code(), 7, "{token:?}");
    assert!(
        token.stderr.contains("gave up after 3 attempts"),
        "{}",
        token.stderr
    );
    assert!(
        token.stdout.is_empty(),
        "no token printed: {}",
        token.stdout
    );
    assert_eq!(
        std::fs::read(env.token_path()).unwrap(),
        stored,
        "the pairing is untouched"
    );
    assert_no_secrets(
        &env,
        &[
            ("pair stdout", &pair.stdout),
            ("pair stderr", &pair.stderr),
            ("token stderr", &token.stderr),
        ],
    );
    eprintln!(
        "retry reason: {}\nrefresh error: {}",
        retry["reason"],
        token.stderr.trim()
    );
}

macro_rules! fault_cases {
    ($($name:ident: $inject:expr;)*) => {
        $(
            #[test]
            fn $name() {
                fault_case($inject);
            }
        )*
    };
}

fault_cases! {
    html_503_maintenance_page: Inject::Sim(Fault::Html503);
    captive_portal_200_html: Inject::Sim(Fault::CaptivePortal);
    malformed_json: Inject::Sim(Fault::MalformedJson);
    json_body_of_10_mb: Inject::Sim(Fault::HugeJson(10_000_000));
    server_closes_before_replying: Inject::Sim(Fault::CloseBeforeReply);
    reset_in_the_middle_of_a_reply: Inject::Sim(Fault::ResetMidReply);
    reply_cut_short: Inject::Sim(Fault::TruncatedReply);
    server_accepts_and_never_answers: Inject::Sim(Fault::Stall(Duration::from_secs(10)));
    tcp_reset_by_the_network: Inject::Proxy(Mode::Reset);
    tcp_stream_cut_short: Inject::Proxy(Mode::Cut);
    tcp_replies_swallowed: Inject::Proxy(Mode::Swallow);
}

/// A paired environment whose record must survive a failing `pair --force` elsewhere.
fn paired() -> (Env, Vec<u8>) {
    let env = Env::start(fast());
    env.pair_approved();
    let bytes = std::fs::read(env.token_path()).unwrap();
    (env, bytes)
}

/// `pair --force` against `login_url`, with short timeouts so a failing case ends quickly.
fn pair_force(env: &Env, login_url: &str) -> Command {
    let mut c = env.command(&[
        "pair",
        "--force",
        "--json",
        "--timeout",
        "1",
        "--retry-for",
        "3",
    ]);
    c.env("SFPAIR_LOGIN_URL", login_url);
    c
}

/// How many times a `pair --json` run said it would try again.
fn retrying_events(out: &Output) -> usize {
    out.events()
        .iter()
        .filter(|e| e["event"] == "retrying")
        .count()
}

fn pair_against(env: &Env, login_url: &str) -> Output {
    Running::spawn(pair_force(env, login_url)).finish(RUN_LIMIT)
}

#[test]
fn connection_refused_is_retried_then_exit_7() {
    let (env, stored) = paired();
    let out = pair_against(&env, &format!("https://127.0.0.1:{}", closed_port()));
    assert_eq!(out.code(), 7, "{out:?}");
    assert!(out.stderr.contains("Connection refused"), "{}", out.stderr);
    assert!(
        out.events()
            .iter()
            .filter(|e| e["event"] == "retrying")
            .count()
            >= 2,
        "{out:?}"
    );
    assert_eq!(std::fs::read(env.token_path()).unwrap(), stored);
    assert_no_secrets(&env, &[("stdout", &out.stdout), ("stderr", &out.stderr)]);
}

#[test]
fn connect_timeout_is_retried_then_exit_7() {
    let (env, stored) = paired();
    let unanswered = Unanswered::new();
    let out = pair_against(&env, &format!("https://127.0.0.1:{}", unanswered.port));
    assert_eq!(out.code(), 7, "{out:?}");
    assert!(out.stderr.contains("timed out"), "{}", out.stderr);
    // Bounded by --retry-for 3 and --timeout 1: a few attempts, then it gives up (a loaded
    // machine makes fewer, never more; how long it takes is not asserted here).
    let retries = retrying_events(&out);
    assert!((1..=6).contains(&retries), "{retries} retries: {out:?}");
    assert_eq!(std::fs::read(env.token_path()).unwrap(), stored);
}

#[test]
fn dns_failure_is_retried_then_exit_7() {
    // A network namespace with no network: the name cannot resolve, and nothing leaves the host.
    let probe = Command::new("unshare").args(["-rn", "true"]).status();
    assert!(
        probe.is_ok_and(|s| s.success()),
        "this test needs `unshare -rn` (util-linux, unprivileged user namespaces) to cut the \
         network off for the DNS case"
    );
    let (env, stored) = paired();
    let sfpair = pair_force(&env, "https://login.salesforce.com");
    let mut args = vec![std::ffi::OsStr::new("-rn"), sfpair.get_program()];
    args.extend(sfpair.get_args());
    let out = Running::spawn(Env::wrapped(&sfpair, "unshare", &args)).finish(RUN_LIMIT);
    assert_eq!(out.code(), 7, "{out:?}");
    assert!(out.stderr.contains("does not resolve"), "{}", out.stderr);
    assert_eq!(std::fs::read(env.token_path()).unwrap(), stored);
}

fn bad_certificate(cert: CertMode, needle: &str) {
    let (env, stored) = paired();
    let bad = Env::start(Config { cert, ..fast() });
    let mut c = env.command(&["pair", "--force", "--json", "--retry-for", "60"]);
    c.env("SFPAIR_LOGIN_URL", &bad.base_url)
        .env("SFPAIR_CA_FILE", &bad.ca);
    let out = Running::spawn(c).finish(RUN_LIMIT);
    assert_eq!(out.code(), 7, "{out:?}");
    assert!(
        out.stderr.contains("TLS verification of 127.0.0.1 failed"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains(needle), "{}", out.stderr);
    // No retry for a bad certificate: one connection, one handshake, no `retrying` event.
    assert_eq!(retrying_events(&out), 0, "{out:?}");
    assert_eq!(bad.sim().connections(), 1, "one connection, not retried");
    assert!(
        bad.sim().log().is_empty(),
        "no HTTP request crossed the failed handshake"
    );
    assert_eq!(std::fs::read(env.token_path()).unwrap(), stored);
}

#[test]
fn certificate_for_the_wrong_host_stops_at_once() {
    bad_certificate(CertMode::WrongHost, "belongs to another host");
}

#[test]
fn expired_certificate_stops_at_once() {
    bad_certificate(CertMode::Expired, "clock is wrong");
}

#[test]
fn a_network_that_stays_down_while_the_code_is_valid_is_exit_7_not_expired() {
    let env = Env::start(fast());
    let proxy = Proxy::start(env.sim().port());
    let mut c = env.command(&[
        "pair",
        "--json",
        "--timeout",
        "1",
        "--code-lifetime",
        "5",
        "--max-codes",
        "1",
    ]);
    c.env("SFPAIR_LOGIN_URL", proxy.url());
    let mut run = Running::spawn(c);
    run.event("code", RUN_LIMIT);
    proxy.set(Mode::Reset, false);
    let out = run.finish(RUN_LIMIT);
    assert_eq!(out.code(), 7, "{out:?}");
    assert!(
        out.stderr.contains("could not be reached"),
        "{}",
        out.stderr
    );
    assert!(!env.token_path().exists());
}
