//! `sfpair call` against the simulator: the path rule, bodies, exit codes, an expired session
//! (one refresh, one retry), a refresh token the server rejects, rotation, limits, maintenance,
//! streaming a large body, and the network gone.

use std::fs::File;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Instant;

use sfpair_sim::{Config, Fault};

use crate::harness::{Env, RUN_LIMIT, fast, stored_record};

const LIMITS: &str = "/services/data/v62.0/limits";

/// The simulator's log after the first `skip` entries, as `METHOD path grant status`.
fn requests_after(env: &Env, skip: usize) -> Vec<String> {
    env.requests().into_iter().skip(skip).collect()
}

fn refresh_count(lines: &[String]) -> usize {
    lines
        .iter()
        .filter(|l| l.contains(" refresh_token "))
        .count()
}

/// Runs a command whose stdout goes elsewhere (a file), within RUN_LIMIT; returns its exit
/// code and stderr.
fn run_to_completion(mut command: Command) -> (i32, String) {
    let mut child = command.stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("sfpair did not exit within {RUN_LIMIT:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    crate::harness::assert_clean_stderr(&stderr);
    (status.code().unwrap_or(-1), stderr)
}

#[test]
fn the_body_goes_to_stdout_and_the_status_decides_the_exit_code() {
    let env = Env::start(fast());
    env.pair_approved();
    let out = env.run(&["call", "GET", LIMITS]);
    assert_eq!(out.code(), 0, "{out:?}");
    let limits: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(limits["DailyApiRequests"]["Max"], 15000);

    // --api-version fills in the prefix; the same resource comes back.
    let out = env.run(&["call", "get", "limits", "--api-version", "62.0"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("DailyApiRequests"));

    // A record made from a file body, then read back.
    let file = env.scratch.0.join("account.json");
    std::fs::write(&file, r#"{"Name":"Express Logistics"}"#).unwrap();
    let data = format!("@{}", file.display());
    let out = env.run(&[
        "call",
        "POST",
        "sobjects/Account/",
        "--api-version",
        "62.0",
        "--data",
        &data,
    ]);
    assert_eq!(out.code(), 0, "{out:?}");
    let created: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let id = created["id"].as_str().unwrap();
    let out = env.run(&[
        "call",
        "GET",
        &format!("/services/data/vXX.X/sobjects/Account/{id}"),
        "--api-version",
        "v62.0",
    ]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("Express Logistics"), "{}", out.stdout);

    // An error status: exit 9, the error on stderr, the body still on stdout.
    let out = env.run(&[
        "call",
        "GET",
        "/services/data/v62.0/sobjects/Account/001NOPE",
    ]);
    assert_eq!(out.code(), 9, "{out:?}");
    assert!(out.stdout.contains("NOT_FOUND"), "{}", out.stdout);
    assert!(out.stderr.contains("HTTP 404 NOT_FOUND"), "{}", out.stderr);

    // A JSON syntax error is the server's to report: 400, exit 9.
    let out = env.run(&[
        "call",
        "POST",
        "/services/data/v62.0/sobjects/Account/",
        "--data",
        "{",
    ]);
    assert_eq!(out.code(), 9, "{out:?}");
    assert!(out.stderr.contains("JSON_PARSER_ERROR"), "{}", out.stderr);
}

#[test]
fn bad_paths_and_options_are_usage_errors_before_any_request() {
    let env = Env::start(fast());
    env.pair_approved();
    let before = env.requests().len();
    for args in [
        &["call", "GET", "https://evil.example/services/data/"][..],
        &["call", "FETCH", LIMITS],
        &["call", "GET"],
        &["call", "GET", LIMITS, "--header", "Authorization: Bearer x"],
        &["call", "GET", LIMITS, "--api-version", "latest"],
        &["call", "POST", LIMITS, "--data", "@/nonexistent/body.json"],
    ] {
        let out = env.run(args);
        assert_eq!(out.code(), 2, "{args:?}: {out:?}");
        assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
    }
    assert_eq!(env.requests().len(), before, "nothing was sent");
}

#[test]
fn an_expired_session_is_refreshed_once_and_the_call_retried_once() {
    let env = Env::start(fast());
    env.pair_approved();
    let skip = env.requests().len();
    env.sim().push_faults(&[Fault::InvalidSession]);
    let out = env.run(&[
        "call",
        "POST",
        "/services/data/v62.0/sobjects/Account/",
        "--data",
        r#"{"Name":"After a refresh"}"#,
    ]);
    assert_eq!(out.code(), 0, "{out:?}");
    let lines = requests_after(&env, skip);
    assert_eq!(
        lines,
        [
            "POST /services/oauth2/token refresh_token 200",
            "POST /services/data/v62.0/sobjects/Account/ - 401",
            "POST /services/oauth2/token refresh_token 200",
            "POST /services/data/v62.0/sobjects/Account/ - 201",
        ]
    );
    // The body sent again was the same: the record has the name.
    let id = serde_json::from_str::<serde_json::Value>(&out.stdout).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = env.run(&[
        "call",
        "GET",
        &format!("sobjects/Account/{id}"),
        "--api-version",
        "62.0",
    ]);
    assert!(out.stdout.contains("After a refresh"), "{out:?}");
}

#[test]
fn a_session_refused_even_after_a_refresh_means_pair_again_without_a_loop() {
    let env = Env::start(fast());
    env.pair_approved();
    let skip = env.requests().len();
    env.sim()
        .push_faults(&[Fault::InvalidSession, Fault::InvalidSession]);
    let out = env.run(&["call", "GET", LIMITS]);
    assert_eq!(out.code(), 6, "{out:?}");
    assert!(out.stderr.contains("sfpair pair --force"), "{}", out.stderr);
    let lines = requests_after(&env, skip);
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(refresh_count(&lines), 2);
}

#[test]
fn a_rejected_refresh_token_means_pair_again_and_the_record_is_kept() {
    let env = Env::start(Config {
        rotate_refresh_tokens: true,
        ..fast()
    });
    env.pair_approved();
    let old = std::fs::read(env.token_path()).unwrap();
    assert_eq!(env.run(&["call", "GET", LIMITS]).code(), 0);
    // Restore the rotated-out token, as a restored backup would: the server kills the grant.
    std::fs::write(env.token_path(), &old).unwrap();
    let skip = env.requests().len();
    let out = env.run(&["call", "GET", LIMITS]);
    assert_eq!(out.code(), 6, "{out:?}");
    assert!(
        out.stderr.contains("refresh refused (revoked_or_expired"),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read(env.token_path()).unwrap(),
        old,
        "kept until a new pairing"
    );
    assert_eq!(
        requests_after(&env, skip),
        ["POST /services/oauth2/token refresh_token 400"],
        "no REST request without a session"
    );
}

#[test]
fn rotation_stores_the_new_refresh_token_and_the_old_one_is_dead() {
    let env = Env::start(Config {
        rotate_refresh_tokens: true,
        ..fast()
    });
    env.pair_approved();
    let first = stored_record(&env.token_path()).refresh_token;
    assert_eq!(env.run(&["call", "GET", LIMITS]).code(), 0);
    let second = stored_record(&env.token_path()).refresh_token;
    assert_ne!(first, second, "the rotated token was stored");
    assert_eq!(env.run(&["call", "GET", LIMITS]).code(), 0, "and it works");
    let third = stored_record(&env.token_path()).refresh_token;
    assert_ne!(second, third);
    // The first token is dead: presenting it fails (and, as on Salesforce, kills the grant).
    let reply = env
        .browser()
        .post(format!("{}/services/oauth2/token", env.base_url))
        .send_form([
            ("grant_type", "refresh_token"),
            ("client_id", crate::harness::CLIENT_ID),
            ("refresh_token", first.expose()),
        ])
        .unwrap();
    assert_eq!(reply.status().as_u16(), 400);
    assert_eq!(env.run(&["call", "GET", LIMITS]).code(), 6);
}

#[test]
fn request_limits_are_reported_with_retry_after_and_never_refreshed() {
    let env = Env::start(fast());
    env.pair_approved();
    let skip = env.requests().len();
    env.sim().push_faults(&[Fault::RequestLimit]);
    let out = env.run(&["call", "GET", LIMITS]);
    assert_eq!(out.code(), 9, "{out:?}");
    assert!(
        out.stderr
            .contains("HTTP 403 REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded."),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("retry after 30 s"), "{}", out.stderr);
    assert_eq!(
        requests_after(&env, skip),
        [
            "POST /services/oauth2/token refresh_token 200",
            "GET /services/data/v62.0/limits - 403",
        ]
    );
}

#[test]
fn a_maintenance_page_and_an_unfixable_401_are_clear_errors_without_a_refresh() {
    let env = Env::start(fast());
    env.pair_approved();
    let skip = env.requests().len();
    env.sim().push_faults(&[Fault::RestMaintenance]);
    let out = env.run(&["call", "GET", LIMITS]);
    assert_eq!(out.code(), 9, "{out:?}");
    assert!(
        out.stderr.contains("HTTP 503 with an HTML page") && out.stderr.contains("retry later"),
        "{}",
        out.stderr
    );
    env.sim().push_faults(&[Fault::SessionNotValidForRest]);
    let out = env.run(&["call", "GET", LIMITS]);
    assert_eq!(out.code(), 9, "{out:?}");
    assert!(out.stderr.contains("cannot fix"), "{}", out.stderr);
    let lines = requests_after(&env, skip);
    assert_eq!(
        refresh_count(&lines),
        2,
        "one per run, none extra: {lines:?}"
    );
    assert_eq!(lines.len(), 4, "{lines:?}");
}

#[test]
fn a_large_body_streams_to_stdout_whole() {
    let env = Env::start(fast());
    env.pair_approved();
    let n: u64 = 20_000_000;
    let path = env.scratch.0.join("body.json");
    let mut command = env.command(&[
        "call",
        "GET",
        &format!("/services/data/v62.0/sim/bytes?n={n}"),
    ]);
    command.stdout(Stdio::from(File::create(&path).unwrap()));
    let (code, stderr) = run_to_completion(command);
    assert_eq!(code, 0, "{stderr}");
    let body = std::fs::read(&path).unwrap();
    assert_eq!(body.len() as u64, n);
    assert_eq!((body[0], body[1], body[body.len() - 1]), (b'[', b'0', b']'));
}

#[test]
fn the_network_gone_is_exit_7() {
    let mut env = Env::start(fast());
    env.pair_approved();
    env.stop_sim();
    let out = env.run(&["call", "GET", LIMITS]);
    assert_eq!(out.code(), 7, "{out:?}");
}

#[test]
fn an_untrusted_certificate_on_a_call_is_a_tls_error_with_one_ca_file_hint() {
    let env = Env::start(fast());
    assert_eq!(env.pair_approved().code(), 0);
    let out = crate::harness::Running::spawn({
        let mut c = env.command(&["call", "GET", LIMITS]);
        c.env_remove("SFPAIR_CA_FILE");
        c
    })
    .finish(RUN_LIMIT);
    assert_eq!(out.code(), 7, "{out:?}");
    assert_eq!(out.stderr.matches("--ca-file").count(), 1, "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
}

/// A PATH outside /services/ goes to the data API of the default version (named in --help),
/// not to a 404 at the instance's root; vXX.X takes that version too.
#[test]
fn a_relative_path_goes_to_the_data_api_of_the_default_version() {
    let env = Env::start(fast());
    env.pair_approved();
    for path in ["limits", "/services/data/vXX.X/limits"] {
        let before = env.requests().len();
        let out = env.run(&["call", "GET", path]);
        assert_eq!(out.code(), 0, "{path}: {out:?}");
        let sent: Vec<String> = env.requests().into_iter().skip(before).collect();
        assert!(
            sent.iter()
                .any(|l| l.starts_with("GET /services/data/v62.0/limits - 200")),
            "{path}: {sent:?}"
        );
    }
    let help = env.run(&["call", "--help"]);
    assert!(help.stdout.contains("default 62.0"), "{}", help.stdout);
}
