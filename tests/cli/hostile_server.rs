//! A hostile server: replies that must not be stored, printed or shown, replayed
//! against the real binary through the simulator's verbatim-JSON fault.

use sfpair_sim::Fault;

use crate::harness::{Env, RUN_LIMIT, fast, stored_record};

fn json(body: &str) -> Fault {
    Fault::Json(body.to_string())
}

#[test]
fn a_rotation_to_a_blank_or_control_character_token_is_refused_and_the_good_one_kept() {
    let env = Env::start(fast());
    env.pair_approved();
    let good = stored_record(&env.token_path()).refresh_token;
    let instance = env.base_url.clone();
    for rt in ["   ", "RT\\u001b[2J\\u001b]0;owned\\u0007"] {
        env.sim().push_faults(&[json(&format!(
            r#"{{"access_token":"00DSIM!fine","refresh_token":"{rt}","instance_url":"{instance}"}}"#
        ))]);
        let out = env.run(&["token"]);
        assert_eq!(out.code(), 1, "{out:?}");
        assert!(out.stderr.contains("refresh_token holds"), "{}", out.stderr);
        assert!(!out.stdout.contains("00DSIM!fine") && !out.stderr.contains('\x1b'));
        assert_eq!(stored_record(&env.token_path()).refresh_token, good);
    }
    assert_eq!(env.run(&["token"]).code(), 0, "the good token still works");
}

#[test]
fn an_access_token_with_crlf_is_never_printed() {
    let env = Env::start(fast());
    env.pair_approved();
    env.sim().push_faults(&[json(
        r#"{"access_token":"00DSIM!a\r\nerror: forged line","instance_url":"https://127.0.0.1"}"#,
    )]);
    let out = env.run(&["token"]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(!out.stdout.contains("forged") && !out.stderr.contains("forged"));
}

/// A pairing whose device code reply is `body`: returns the run's output.
fn pair_with_code_reply(env: &Env, body: &str) -> crate::harness::Output {
    env.sim().push_faults(&[json(body)]);
    env.spawn(&["pair", "--json"]).finish(RUN_LIMIT)
}

#[test]
fn verification_urls_off_the_login_host_or_not_https_are_not_shown() {
    let env = Env::start(fast());
    let base = env.base_url.clone();
    for (uri, complete) in [
        (
            format!("{base}/setup/connect"),
            "https://evil.example/setup/connect?user_code=AB".to_string(),
        ),
        (
            "javascript:alert(1)".to_string(),
            format!("{base}/setup/connect?user_code=AB"),
        ),
        (
            format!("{}/setup/connect", base.replace("https://", "http://")),
            format!("{base}/x"),
        ),
    ] {
        let out = pair_with_code_reply(
            &env,
            &format!(
                r#"{{"device_code":"DC","user_code":"AB","interval":1,"verification_uri":"{uri}","verification_uri_complete":"{complete}"}}"#
            ),
        );
        assert_eq!(out.code(), 1, "{uri} {complete}: {out:?}");
        assert!(
            out.events().iter().all(|e| e["event"] != "code"),
            "no code shown: {}",
            out.stdout
        );
        // One error event that says why, and the hostile URL neither shown nor echoed.
        let events = out.events();
        assert_eq!(events.len(), 1, "{}", out.stdout);
        assert_eq!(events[0]["event"], "error", "{}", out.stdout);
        let message = events[0]["message"].as_str().unwrap();
        assert!(message.ends_with("no code is shown"), "{message}");
        for hostile in ["evil.example", "javascript:", "http://"] {
            assert!(
                !out.stdout.contains(hostile) && !out.stderr.contains(hostile),
                "{hostile} in the output: {out:?}"
            );
        }
    }
}

#[test]
fn an_absurd_code_lifetime_is_capped_at_thirty_minutes() {
    let env = Env::start(fast());
    let base = env.base_url.clone();
    env.sim().push_faults(&[json(&format!(
        r#"{{"device_code":"DC","user_code":"AB","interval":1,"expires_in":1e12,"verification_uri":"{base}/setup/connect"}}"#
    ))]);
    let mut run = env.spawn(&["pair", "--json", "--max-codes", "1"]);
    let code = run.event("code", RUN_LIMIT);
    assert_eq!(code["expires_in"], 1800, "{code}");
    run.terminate();
    let _ = run.finish(RUN_LIMIT);
}

#[test]
fn server_error_text_reaches_the_terminal_without_escapes_or_forged_lines() {
    let env = Env::start(fast());
    let body = r#"{"error":"weird\u001b]0;owned\u0007","error_description":"\u001b[2Jbad\r\nerror: forged \u009b2J \u202eexe.txt"}"#;
    for json_mode in [false, true] {
        env.sim().push_faults(&[json(body)]);
        let args: &[&str] = if json_mode {
            &["pair", "--json"]
        } else {
            &["pair"]
        };
        let out = env.spawn(args).finish(RUN_LIMIT);
        assert_ne!(out.code(), 0, "{out:?}");
        for text in [&out.stdout, &out.stderr] {
            assert!(
                !text.contains(['\x1b', '\x07', '\u{9b}', '\u{202e}', '\r']),
                "raw control in {text:?}"
            );
            assert!(
                text.lines().all(|l| !l.starts_with("error: forged")),
                "forged line in {text:?}"
            );
        }
    }
}
