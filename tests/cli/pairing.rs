//! Pairing end to end: every outcome of `sfpair pair` against the simulator.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use sfpair_sim::{AppState, Config, DenyMode, SlowDown};

use crate::harness::{Env, RUN_LIMIT, fast, stored_record};
use crate::terminal_qr::decode_half_blocks;

#[test]
fn pairs_over_one_tls_connection_and_stores_the_token_privately() {
    let env = Env::start(fast());
    let out = env.pair_approved();
    let kinds: Vec<String> = out
        .events()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["code", "paired"], "{out:?}");
    let code = &out.events()[0];
    assert_eq!(code["user_code"].as_str().unwrap().len(), 8);
    assert_eq!(
        code["expires_in"], 600,
        "Salesforce sends no expires_in: the 10-minute default"
    );
    assert_eq!(
        code["verification_uri_complete"].as_str().unwrap(),
        format!(
            "{}/setup/connect?user_code={}",
            env.base_url,
            code["user_code"].as_str().unwrap()
        )
    );

    let path = env.token_path();
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    let record = stored_record(&path);
    assert_eq!(record.instance_url, env.base_url);
    assert_eq!(record.login_url, env.base_url);

    // Every request of the pairing went over the first TLS connection (the other connection
    // is the technician's browser on the approval page).
    let log: Vec<_> = env
        .sim()
        .log()
        .into_iter()
        .filter(|e| e.path == "/services/oauth2/token")
        .collect();
    assert!(log.len() >= 2, "{log:?}");
    assert!(log.iter().all(|e| e.conn == log[0].conn), "{log:?}");
    assert_eq!(env.sim().connections(), 2);
}

#[test]
fn slow_down_lengthens_the_interval_and_pairing_goes_on() {
    let env = Env::start(Config {
        slow_down: SlowDown::FirstPolls(1),
        ..fast()
    });
    let mut run = env.spawn(&["pair", "--json"]);
    let code = run.event("code", RUN_LIMIT);
    let slow = run.event("slow_down", RUN_LIMIT);
    assert_eq!(slow["interval"], 6, "1 s + 5 s");
    env.approve(code["verification_uri_complete"].as_str().unwrap());
    let out = run.finish(RUN_LIMIT);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(env.token_path().exists());
}

#[test]
fn an_explicit_denial_stops_with_code_3_and_stores_nothing() {
    let env = Env::start(Config {
        deny_mode: DenyMode::AccessDenied,
        ..fast()
    });
    let mut run = env.spawn(&["pair", "--json"]);
    let code = run.event("code", RUN_LIMIT);
    let (status, _) = env.decide(code["verification_uri_complete"].as_str().unwrap(), "deny");
    assert_eq!(status, 200);
    let out = run.finish(RUN_LIMIT);
    assert_eq!(out.code(), 3, "{out:?}");
    let failed = out.events().last().unwrap().clone();
    assert_eq!(failed["kind"], "denied");
    assert_eq!(failed["oauth_error"], "access_denied", "{failed}");
    assert!(out.stderr.contains("denied access"), "{}", out.stderr);
    assert!(!env.token_path().exists());
}

#[test]
fn a_salesforce_denial_runs_out_the_clock_and_says_so() {
    // Salesforce keeps answering authorization_pending after Deny (DenyMode::Pending).
    let env = Env::start(fast());
    // 5 s: long enough to open the page and deny on a loaded machine before the code ends.
    let mut run = env.spawn(&["pair", "--json", "--code-lifetime", "5", "--max-codes", "1"]);
    let code = run.event("code", RUN_LIMIT);
    env.decide(code["verification_uri_complete"].as_str().unwrap(), "deny");
    let out = run.finish(RUN_LIMIT);
    assert_eq!(out.code(), 4, "{out:?}");
    let events = out.events();
    let expired = events
        .iter()
        .find(|e| e["event"] == "code_expired")
        .unwrap();
    assert_eq!(expired["last"], true);
    assert!(
        out.stderr.contains("Deny"),
        "the message explains a denial ends here too: {}",
        out.stderr
    );
    assert!(!env.token_path().exists());
}

#[test]
fn an_expired_code_is_replaced_by_a_new_one_that_can_be_approved() {
    // 5 s: long enough to approve the second code on a loaded machine, before it runs out too.
    let env = Env::start(Config {
        code_ttl: Duration::from_secs(5),
        ..fast()
    });
    let mut run = env.spawn(&["pair", "--json"]);
    let first = run.event("code", RUN_LIMIT);
    let second = run.event("new_code", RUN_LIMIT);
    assert_ne!(first["user_code"], second["user_code"]);
    assert_eq!(second["code_number"], 2);
    env.approve(second["verification_uri_complete"].as_str().unwrap());
    let out = run.finish(RUN_LIMIT);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(env.token_path().exists());
}

#[test]
fn a_flaky_server_is_retried_with_the_same_code() {
    let env = Env::start(Config { flaky: 2, ..fast() });
    let mut run = env.spawn(&["pair", "--json"]);
    let code = run.event("code", RUN_LIMIT);
    let retry = run.event("retrying", RUN_LIMIT);
    assert!(retry["reason"].as_str().unwrap().contains("503"), "{retry}");
    env.approve(code["verification_uri_complete"].as_str().unwrap());
    let out = run.finish(RUN_LIMIT);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.events().iter().all(|e| e["event"] != "new_code"),
        "the same code survived"
    );
}

#[test]
fn a_wrong_client_id_stops_at_once_with_advice() {
    let env = Env::start(fast());
    let out = crate::harness::Running::spawn({
        let mut c = env.command(&["pair", "--json"]);
        c.env("SFPAIR_CLIENT_ID", "3MVG9WRONG");
        c
    })
    .finish(RUN_LIMIT);
    assert_eq!(out.code(), 2, "{out:?}");
    // The advice is the promise; the server's code travels as a field.
    assert!(out.stderr.contains("consumer key"), "{}", out.stderr);
    let failed = out.events().last().unwrap().clone();
    assert_eq!(failed["kind"], "config", "{failed}");
    assert_eq!(failed["oauth_error"], "invalid_client_id", "{failed}");
    assert_eq!(
        env.sim().log().len(),
        1,
        "no retry of a configuration error"
    );
    assert!(!env.token_path().exists());
}

#[test]
fn a_disabled_device_flow_tells_the_admin_what_to_enable() {
    let env = Env::start(Config {
        app: AppState::DeviceFlowDisabled,
        ..fast()
    });
    let out = env.run(&["pair"]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr.contains("Enable Device Flow"), "{}", out.stderr);
}

#[test]
fn an_untrusted_certificate_is_a_tls_error_and_nothing_is_stored() {
    let env = Env::start(fast());
    let out = crate::harness::Running::spawn({
        let mut c = env.command(&["pair"]);
        c.env_remove("SFPAIR_CA_FILE");
        c
    })
    .finish(RUN_LIMIT);
    assert_eq!(out.code(), 7, "{out:?}");
    assert!(
        out.stderr.contains("TLS verification of 127.0.0.1 failed"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.matches("--ca-file").count(), 1, "{}", out.stderr);
    assert!(!env.token_path().exists());
}

#[test]
fn the_console_screen_off_a_tty_is_plain_and_its_qr_scans() {
    let env = Env::start(Config {
        auto_approve_after: Some(Duration::from_secs(1)),
        ..fast()
    });
    let out = env.run(&["pair"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        !out.stdout.chars().any(|c| c.is_control() && c != '\n'),
        "{:?}",
        out.stdout
    );
    let qr: String = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("  ") && l.contains('█'))
        .map(|l| format!("{}\n", &l[2..]))
        .collect();
    let url = decode_half_blocks(&qr);
    assert!(
        url.starts_with(&format!("{}/setup/connect?user_code=", env.base_url)),
        "{url}"
    );
    let code = url.rsplit('=').next().unwrap();
    assert!(
        out.stdout
            .contains(&format!("and enter the code {code} (valid for")),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("Paired."));
}

#[test]
fn the_text_display_is_ascii_without_a_qr() {
    let env = Env::start(Config {
        auto_approve_after: Some(Duration::from_secs(1)),
        ..fast()
    });
    let out = env.run(&["pair", "--display", "text"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.is_ascii(), "{}", out.stdout);
    assert!(out.stdout.contains("and enter the code "));
    assert!(!out.stdout.contains('█'));
}

#[test]
fn the_standard_rfc8628_dialect_pairs_too() {
    let env = Env::start(fast());
    let device = format!("{}/rfc8628/device", env.base_url);
    let token = format!("{}/rfc8628/token", env.base_url);
    let mut run = env.spawn(&[
        "pair",
        "--json",
        "--dialect",
        "rfc8628",
        "--device-url",
        &device,
        "--token-url",
        &token,
    ]);
    let code = run.event("code", RUN_LIMIT);
    let complete = code["verification_uri_complete"].as_str().unwrap();
    assert!(
        complete.starts_with(&format!("{}/rfc8628/verify?user_code=", env.base_url)),
        "{code}"
    );
    assert!(
        code["user_code"].as_str().unwrap().contains('-'),
        "shown exactly as sent: {code}"
    );
    env.approve(complete);
    let out = run.finish(RUN_LIMIT);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(stored_record(&env.token_path()).token_url, token);
    let out = env.run(&["token"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        env.requests()
            .iter()
            .any(|r| r.starts_with("POST /rfc8628/token refresh_token 200")),
        "{:?}",
        env.requests()
    );
}

#[test]
fn an_rfc8628_issuer_names_the_endpoints_and_forget_can_revoke_with_them() {
    let env = Env::start(fast());
    let issuer = format!("{}/rfc8628", env.base_url);
    let mut run = env.spawn(&[
        "pair",
        "--json",
        "--dialect",
        "rfc8628",
        "--issuer",
        &issuer,
    ]);
    let code = run.event("code", RUN_LIMIT);
    env.approve(code["verification_uri_complete"].as_str().unwrap());
    let out = run.finish(RUN_LIMIT);
    assert_eq!(out.code(), 0, "{out:?}");
    let record = stored_record(&env.token_path());
    assert_eq!(record.token_url, format!("{issuer}/token"));
    assert_eq!(
        record.revoke_url.as_deref(),
        Some(format!("{}/services/oauth2/revoke", env.base_url).as_str()),
        "the revocation endpoint came from the metadata and is kept in the record"
    );
    assert!(
        env.requests()[0].starts_with("GET /.well-known/oauth-authorization-server/rfc8628 "),
        "RFC 8414's document first: {:?}",
        env.requests()
    );
    let forgot = env.run(&["forget"]);
    assert_eq!(
        forgot.code(),
        0,
        "revoked without a --revoke-url: {forgot:?}"
    );
    assert!(forgot.stdout.contains("Revoked"), "{}", forgot.stdout);
    assert_eq!(env.sim().revoked_refresh_tokens(), 1);

    // An issuer with no metadata says where it looked.
    let wrong = env.run(&[
        "pair",
        "--dialect",
        "rfc8628",
        "--issuer",
        &format!("{}/nothing", env.base_url),
    ]);
    assert_eq!(wrong.code(), 2, "{wrong:?}");
    assert!(wrong.stderr.contains("no metadata at"), "{}", wrong.stderr);
}

#[test]
fn a_corrupt_store_reads_as_not_paired_and_only_a_new_pairing_replaces_it() {
    let env = Env::start(fast());
    std::fs::create_dir_all(env.token_path().parent().unwrap()).unwrap();
    std::fs::write(env.token_path(), b"SFPR\x01 this is not a record").unwrap();
    let out = env.run(&["token"]);
    assert_eq!(out.code(), 5, "{out:?}");
    assert!(out.stderr.contains("unreadable"), "{}", out.stderr);
    assert_eq!(
        std::fs::read(env.token_path()).unwrap(),
        b"SFPR\x01 this is not a record"
    );
    let out = env.pair_approved();
    assert!(
        out.stderr.contains("unreadable"),
        "pair warns first: {}",
        out.stderr
    );
    assert_eq!(stored_record(&env.token_path()).instance_url, env.base_url);
}

#[test]
fn pairing_again_needs_force_and_revokes_the_old_grant() {
    let env = Env::start(fast());
    env.pair_approved();
    let before = stored_record(&env.token_path());
    let requests = env.sim().log().len();
    let out = env.run(&["pair"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("Already paired"), "{}", out.stdout);
    assert_eq!(
        env.sim().log().len(),
        requests,
        "no request when already paired"
    );

    let mut run = env.spawn(&["pair", "--json", "--force"]);
    let code = run.event("code", RUN_LIMIT);
    env.approve(code["verification_uri_complete"].as_str().unwrap());
    assert_eq!(run.finish(RUN_LIMIT).code(), 0);
    let after = stored_record(&env.token_path());
    assert_ne!(before.refresh_token, after.refresh_token);
    assert_eq!(env.sim().revoked_refresh_tokens(), 1);
}

#[test]
fn the_console_screen_on_a_tty_sets_the_qr_colours_and_scans_on_any_theme() {
    use crate::terminal_qr::{Theme, decode_terminal};
    let env = Env::start(Config {
        auto_approve_after: Some(Duration::from_secs(1)),
        ..fast()
    });
    // script(1) gives sfpair a pseudo-terminal as stdout, as a person's terminal would.
    let sfpair = env.command(&["pair"]);
    let line = format!("'{}' pair", sfpair.get_program().to_str().unwrap());
    let args: Vec<&std::ffi::OsStr> = ["-q", "-e", "-c", &line, "/dev/null"]
        .into_iter()
        .map(std::ffi::OsStr::new)
        .collect();
    let out =
        crate::harness::Running::spawn(Env::wrapped(&sfpair, "script", &args)).finish(RUN_LIMIT);
    assert_eq!(out.code(), 0, "{out:?}");
    // The terminal turns each \n into \r\n; the countdown line uses \r and erase-line.
    let qr: String = out
        .stdout
        .split('\n')
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| l.starts_with("  \x1b["))
        .map(|l| format!("{}\n", &l[2..]))
        .collect();
    assert!(qr.lines().count() > 10, "{:?}", out.stdout);
    for theme in [Theme::Dark, Theme::Light] {
        let url = decode_terminal(&qr, theme);
        assert!(
            url.starts_with(&format!("{}/setup/connect?user_code=", env.base_url)),
            "{url}"
        );
    }
    assert!(out.stdout.contains("Paired."), "{:?}", out.stdout);
}

/// A login URL nobody answers: on a device never paired, the first refused connection ends the
/// pairing at once with the doctor's advice (it cost five minutes of retries); on a device
/// paired before, the network may just be down, so it is retried, and the end says the same.
#[test]
fn an_unreachable_login_url_fails_at_once_when_nothing_was_ever_paired() {
    let env = Env::start(fast());
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let dead_url = format!("https://127.0.0.1:{dead}");
    let started = std::time::Instant::now();
    let out = crate::harness::Running::spawn({
        let mut c = env.command(&["pair"]);
        c.env("SFPAIR_LOGIN_URL", &dead_url);
        c
    })
    .finish(RUN_LIMIT);
    assert_eq!(out.code(), 7, "{out:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(out.stderr.contains("--login-url"), "{}", out.stderr);
    assert!(out.stderr.contains("sfpair doctor"), "{}", out.stderr);
    assert!(!env.token_path().exists());

    env.pair_approved();
    let out = crate::harness::Running::spawn({
        let mut c = env.command(&["pair", "--force", "--json", "--retry-for", "2"]);
        c.env("SFPAIR_LOGIN_URL", &dead_url);
        c
    })
    .finish(RUN_LIMIT);
    assert_eq!(out.code(), 7, "{out:?}");
    assert!(
        out.events().iter().any(|e| e["event"] == "retrying"),
        "retried: {out:?}"
    );
    assert!(out.stderr.contains("sfpair doctor"), "{}", out.stderr);
}

/// Two `sfpair pair` at once: the second is refused at once, saying why, and the first goes on
/// to store its own pairing (the second used to replace it silently).
#[test]
fn a_second_pairing_at_once_is_refused_and_the_first_goes_on() {
    let env = Env::start(fast());
    let mut first = env.spawn(&["pair", "--json"]);
    let code = first.event("code", RUN_LIMIT);
    let second = env.run(&["pair", "--json"]);
    assert_eq!(second.code(), 2, "{second:?}");
    assert!(
        second.stderr.contains("another sfpair is pairing"),
        "{}",
        second.stderr
    );
    assert_eq!(
        env.requests()
            .iter()
            .filter(|l| l.contains(" device_code "))
            .count(),
        1,
        "the second asked for no code: {:?}",
        env.requests()
    );
    env.approve(code["verification_uri_complete"].as_str().unwrap());
    let out = first.finish(RUN_LIMIT);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(env.token_path().exists());
    // Once it is done, the next pairing may run.
    let again = env.run(&[
        "pair",
        "--force",
        "--max-codes",
        "1",
        "--code-lifetime",
        "1",
    ]);
    assert_eq!(again.code(), 4, "nobody approved, but it ran: {again:?}");
}
