//! The settings' tests: the layers' order, the values' types, the plans' checks.

use std::ffi::OsString;
use std::time::Duration;

use super::*;
use crate::cli::parse;
use crate::commands::{self, Command, Plan};
use crate::error::Error;
use crate::flow::FlowConfig;
#[cfg(feature = "broker")]
use crate::service::Repair;
use crate::store::record::Grant;
#[cfg(feature = "rest")]
use crate::wire::Method;

impl Settings {
    fn flow_config_for_test(&self) -> FlowConfig {
        Settings {
            client_id: Some("K".into()),
            ..self.clone()
        }
        .flow_config()
        .unwrap()
    }
}

/// Settings from a command line and an environment given as pairs (shared with the board
/// tests).
pub(crate) fn resolve(args: &[&str], env: &[(&str, &str)]) -> Result<Settings, Error> {
    let args = parse(["sfpair"].iter().chain(args).map(OsString::from)).unwrap();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Settings::resolve(
        &args,
        &move |k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()),
        false,
        &|_, _| None,
    )
}

#[test]
fn flags_beat_the_environment_which_beats_defaults() {
    let s = resolve(&["pair"], &[("HOME", "/h")]).unwrap();
    assert_eq!(s.login_url, DEFAULT_LOGIN_URL);
    assert_eq!(s.scope, DEFAULT_SCOPE);
    assert_eq!(s.store.to_string(), "file:/h/.local/state/sfpair/token");
    assert_eq!(s.client_id, None);
    let env = [
        ("SFPAIR_LOGIN_URL", "https://test.salesforce.com/"),
        ("SFPAIR_CLIENT_ID", "ENVKEY"),
        ("SFPAIR_STORE", "file:/env/token"),
    ];
    let s = resolve(&["pair"], &env).unwrap();
    assert_eq!(s.login_url, "https://test.salesforce.com");
    assert_eq!(
        s.endpoints.token,
        "https://test.salesforce.com/services/oauth2/token"
    );
    assert_eq!(s.client_id.as_deref(), Some("ENVKEY"));
    let s = resolve(
        &["pair", "--client-id", "FLAG", "--store", "file:/flag"],
        &env,
    )
    .unwrap();
    assert_eq!(s.client_id.as_deref(), Some("FLAG"));
    assert_eq!(s.store.to_string(), "file:/flag");
}

#[test]
fn timing_knobs_come_from_flags_or_the_environment() {
    let s = resolve(&["pair"], &[("HOME", "/h")]).unwrap();
    assert_eq!(s.http.read_timeout, Duration::from_secs(30));
    assert_eq!(s.http.connect_timeout, Duration::from_secs(10));
    assert_eq!(s.retry_for, Duration::from_secs(300));
    assert_eq!(s.start_jitter, Duration::ZERO);
    assert_eq!(s.wait_for_clock, Duration::from_secs(60));
    let s = resolve(
        &["pair", "--timeout", "3", "--start-jitter", "30"],
        &[("HOME", "/h"), ("SFPAIR_RETRY_FOR", "20")],
    )
    .unwrap();
    assert_eq!(s.http.read_timeout, Duration::from_secs(3));
    assert_eq!(s.http.connect_timeout, Duration::from_secs(3));
    assert_eq!(s.retry_for, Duration::from_secs(20));
    assert_eq!(
        s.flow_config_for_test().start_spread,
        Duration::from_secs(30)
    );
    let e = resolve(&["pair"], &[("HOME", "/h"), ("SFPAIR_TIMEOUT", "soon")]).unwrap_err();
    assert!(e.message().contains("SFPAIR_TIMEOUT"), "{e}");
    assert!(resolve(&["pair", "--timeout", "0"], &[("HOME", "/h")]).is_err());
}

#[test]
fn pairing_needs_a_client_id_and_says_where_it_comes_from() {
    let s = resolve(&["pair"], &[("HOME", "/h")]).unwrap();
    let e = s.flow_config().unwrap_err();
    assert!(e.message().contains("Enable Device Flow"));
}

#[test]
fn rfc8628_needs_both_endpoints() {
    assert!(resolve(&["pair", "--dialect", "rfc8628"], &[("HOME", "/h")]).is_err());
    let s = resolve(
        &[
            "pair",
            "--dialect",
            "rfc8628",
            "--device-url",
            "https://idp/device",
            "--token-url",
            "https://idp/token",
        ],
        &[("HOME", "/h")],
    )
    .unwrap();
    assert_eq!(s.endpoints.device, "https://idp/device");
    assert_eq!(s.endpoints.revoke, None);
    assert!(
        resolve(
            &["pair", "--device-url", "https://idp/device"],
            &[("HOME", "/h")]
        )
        .is_err()
    );
}

/// The plan for a command line, with the given environment.
pub(crate) fn plan_for(args: &[&str], env: &[(&str, &str)]) -> Result<Plan, Error> {
    let args = parse(["sfpair"].iter().chain(args).map(OsString::from)).unwrap();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    plan(
        &args,
        &move |k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()),
        false,
        &|_, _| None,
    )
}

#[cfg(all(feature = "jwt-bearer", feature = "client-credentials"))]
#[test]
fn headless_flows_are_checked_before_any_request() {
    let env = [
        ("HOME", "/h"),
        ("SFPAIR_CLIENT_ID", "K"),
        ("SFPAIR_FLOW", "jwt-bearer"),
        ("SFPAIR_KEY_FILE", "/etc/sfpair/device.key"),
        ("SFPAIR_USERNAME", "gw@acme.com"),
        (
            "SFPAIR_LOGIN_URL",
            "https://acme--uat.sandbox.my.salesforce.com",
        ),
    ];
    let plan = plan_for(&["pair"], &env).unwrap();
    let Command::Pair(pair) = plan.command else {
        panic!("{:?}", plan.command)
    };
    let crate::agent::Pairing::Headless {
        enrolment: enrol, ..
    } = pair.how
    else {
        panic!("a headless enrolment: {:?}", pair.how)
    };
    assert_eq!(
        enrol.grant,
        Grant::jwt_bearer(
            "gw@acme.com".into(),
            "/etc/sfpair/device.key".into(),
            "https://test.salesforce.com".into()
        )
    );
    let err = plan_for(&["pair"], &env[..4]).unwrap_err();
    assert!(err.message().contains("--username"), "{}", err.message());
    let err = plan_for(&["pair", "--flow", "bogus"], &env).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    // Client credentials: never on the generic login hosts, never without the secret.
    let cc = [
        ("HOME", "/h"),
        ("SFPAIR_CLIENT_ID", "K"),
        ("SFPAIR_CLIENT_SECRET", "s"),
        ("SFPAIR_LOGIN_URL", "https://test.salesforce.com"),
    ];
    let err = plan_for(&["pair", "--flow", "client-credentials"], &cc).unwrap_err();
    assert!(err.message().contains("My Domain"), "{}", err.message());
    let mydomain = [
        cc[0],
        cc[1],
        ("SFPAIR_LOGIN_URL", "https://acme.my.salesforce.com"),
    ];
    let err = plan_for(&["pair", "--flow", "client-credentials"], &mydomain).unwrap_err();
    assert!(
        err.message().contains("consumer secret"),
        "{}",
        err.message()
    );
    // After pairing the record decides: a stray SFPAIR_FLOW does not bother `token`.
    assert!(plan_for(&["token"], &[("HOME", "/h"), ("SFPAIR_FLOW", "jwt-bearer")]).is_ok());
}

#[cfg(feature = "rest")]
#[test]
fn call_requests_follow_the_path_rule_and_read_bodies_only_when_run() {
    let args = [
        "call",
        "post",
        "sobjects/Account/",
        "--data",
        "@/nonexistent/body.json",
        "--header",
        "X-A: 1",
    ];
    let plan = plan_for(&args, &[("HOME", "/h"), ("SFPAIR_API_VERSION", "v66.0")]).unwrap();
    let Command::Call(call) = plan.command else {
        panic!("{:?}", plan.command)
    };
    assert_eq!(call.request.method, Method::Post);
    assert_eq!(call.request.path, "/services/data/v66.0/sobjects/Account/");
    assert_eq!(call.request.headers, [("X-A".to_string(), "1".to_string())]);
    // Reading the body is the command's job, when it runs: settings do no such I/O.
    assert_eq!(
        call.body,
        commands::call::Body::File("/nonexistent/body.json".into())
    );
    assert!(plan_for(&["call", "--api-version", "x"], &[("HOME", "/h")]).is_err());
    let e = plan_for(&["call", "GET"], &[("HOME", "/h")]).unwrap_err();
    assert!(e.message().contains("METHOD and PATH"), "{e}");
}

#[test]
fn empty_values_given_explicitly_are_usage_errors() {
    for (args, env, says) in [
        (
            &["pair", "--login-url", ""][..],
            &[][..],
            "--login-url is empty",
        ),
        (&["token", "--store", ""], &[], "--store is empty"),
        (&["token"], &[("SFPAIR_STORE", "")], "SFPAIR_STORE is empty"),
        (
            &["token"],
            &[("SFPAIR_LOGIN_URL", " ")],
            "SFPAIR_LOGIN_URL is empty",
        ),
        (&["token", "--store", "file:"], &[], "needs a path"),
    ] {
        let env: Vec<(&str, &str)> = [("HOME", "/h")].iter().chain(env).copied().collect();
        let e = resolve(args, &env).unwrap_err();
        assert_eq!(e.exit_code(), 2, "{args:?}");
        assert!(e.message().contains(says), "{args:?}: {e}");
    }
}

#[test]
fn session_lifetime_from_the_flag_or_the_environment() {
    let s = resolve(&["token"], &[("HOME", "/h")]).unwrap();
    assert_eq!(s.session_lifetime, None);
    let s = resolve(
        &["token"],
        &[("HOME", "/h"), ("SFPAIR_SESSION_LIFETIME", "900")],
    )
    .unwrap();
    assert_eq!(s.session_lifetime, Some(Duration::from_secs(900)));
    let s = resolve(
        &["token", "--session-lifetime", "60"],
        &[("HOME", "/h"), ("SFPAIR_SESSION_LIFETIME", "900")],
    )
    .unwrap();
    assert_eq!(s.session_lifetime, Some(Duration::from_secs(60)));
    assert!(resolve(&["token", "--session-lifetime", "0"], &[("HOME", "/h")]).is_err());
    assert!(
        resolve(
            &["token"],
            &[("HOME", "/h"), ("SFPAIR_SESSION_LIFETIME", "2h")]
        )
        .is_err()
    );
}

#[cfg(feature = "broker")]
#[test]
fn run_takes_a_keepalive_and_a_repair_mode() {
    let env = [("HOME", "/h"), ("SFPAIR_CLIENT_ID", "K")];
    let plan = plan_for(
        &[
            "run",
            "--socket",
            "/run/s",
            "--keepalive",
            "12h",
            "--repair",
            "auto",
        ],
        &env,
    )
    .unwrap();
    let Command::Run(o) = plan.command else {
        panic!("{:?}", plan.command)
    };
    assert!(o.pair.is_some());
    assert_eq!(o.keepalive, Some(Duration::from_secs(12 * 3600)));
    assert_eq!(o.repair, Repair::Auto);
    let env_off = [
        ("HOME", "/h"),
        ("SFPAIR_CLIENT_ID", "K"),
        ("SFPAIR_KEEPALIVE", "0"),
    ];
    let Command::Run(o) = plan_for(&["run", "--socket", "/s"], &env_off)
        .unwrap()
        .command
    else {
        panic!()
    };
    assert_eq!((o.keepalive, o.repair), (None, Repair::Prompt));
    for (args, says) in [
        (
            &["run", "--socket", "/s", "--keepalive", "weekly"][..],
            "not a duration",
        ),
        (
            &["run", "--socket", "/s", "--repair", "sometimes"],
            "never, prompt or auto",
        ),
        (&["run"], "--socket"),
    ] {
        let e = plan_for(args, &env).unwrap_err();
        assert_eq!(e.exit_code(), 2, "{args:?}");
        assert!(e.message().contains(says), "{args:?}: {e}");
    }
    let e = plan_for(&["run", "--socket", "/s"], &[("HOME", "/h")]).unwrap_err();
    assert!(
        e.message().contains("no client id"),
        "run pairs, so it needs one: {e}"
    );
}

#[test]
fn keepalive_defaults_to_a_week_and_zero_turns_it_off() {
    let s = resolve(&["serve"], &[("HOME", "/h")]).unwrap();
    assert_eq!(s.keepalive, Some(DEFAULT_KEEPALIVE));
    // A command that keeps nothing alive does not read it: no error for a bad one.
    assert!(resolve(&["token"], &[("HOME", "/h"), ("SFPAIR_KEEPALIVE", "1w")]).is_ok());
    let s = resolve(&["serve"], &[("HOME", "/h"), ("SFPAIR_KEEPALIVE", "36h")]).unwrap();
    assert_eq!(s.keepalive, Some(Duration::from_secs(36 * 3600)));
    let s = resolve(
        &["serve", "--keepalive", "0"],
        &[("HOME", "/h"), ("SFPAIR_KEEPALIVE", "36h")],
    )
    .unwrap();
    assert_eq!(s.keepalive, None);
    let e = resolve(&["serve", "--keepalive", "1w"], &[("HOME", "/h")]).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(
        e.message().contains("--keepalive '1w' is not a duration"),
        "{e}"
    );
    let e = resolve(&["serve"], &[("HOME", "/h"), ("SFPAIR_KEEPALIVE", "")]).unwrap_err();
    assert!(e.message().contains("SFPAIR_KEEPALIVE is empty"), "{e}");
}

#[cfg(feature = "broker")]
#[test]
fn serve_needs_a_socket() {
    let e = plan_for(&["serve"], &[("HOME", "/h")]).unwrap_err();
    assert!(e.message().contains("--socket"), "{e}");
    let plan = plan_for(
        &[
            "serve",
            "--socket",
            "/run/s",
            "--socket-group",
            "0",
            "--allow-gid",
            "5",
        ],
        &[("HOME", "/h")],
    )
    .unwrap();
    let Command::Run(o) = plan.command else {
        panic!("{:?}", plan.command)
    };
    assert!(o.pair.is_none(), "serve is run without pairing");
    assert_eq!((o.serve.group, o.serve.allow_gids), (Some(0), vec![5]));
    assert_eq!(o.keepalive, Some(DEFAULT_KEEPALIVE));
}

#[test]
fn the_secret_comes_from_a_file_or_the_environment() {
    let path = std::env::temp_dir().join(format!("sfpair-secret-{}", std::process::id()));
    std::fs::write(&path, "s3cret\n").unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let s = resolve(
        &["pair", "--client-secret-file", path.to_str().unwrap()],
        &[("HOME", "/h")],
    )
    .unwrap();
    assert_eq!(s.client_secret.unwrap().expose(), "s3cret");
    std::fs::remove_file(&path).unwrap();
    let s = resolve(
        &["pair"],
        &[("HOME", "/h"), ("SFPAIR_CLIENT_SECRET", "envsecret")],
    )
    .unwrap();
    assert_eq!(s.client_secret.unwrap().expose(), "envsecret");
    assert!(
        format!(
            "{:?}",
            resolve(
                &["pair"],
                &[("HOME", "/h"), ("SFPAIR_CLIENT_SECRET", "envsecret")]
            )
        )
        .find("envsecret")
        .is_none()
    );
    let e = resolve(
        &["pair", "--client-secret-file", "/dev/zero"],
        &[("HOME", "/h")],
    )
    .unwrap_err();
    assert!(e.message().contains("device, not a regular file"), "{e}");
}

#[test]
fn the_stored_pairing_is_below_the_environment_and_above_the_defaults() {
    let record = crate::store::Record {
        refresh_token: crate::secret::Secret::new("5Aep861"),
        client_id: "3MVG9STORED".into(),
        dialect: crate::flow::dialect::Dialect::Salesforce,
        login_url: "https://acme.my.salesforce.com".into(),
        token_url: "https://acme.my.salesforce.com/services/oauth2/token".into(),
        revoke_url: None,
        instance_url: "https://acme.my.salesforce.com".into(),
        identity_url: String::new(),
        scope: "api refresh_token".into(),
        issued_at_ms: 0,
        paired_at: 0,
        grant: Grant::Device,
    };
    let with = |args: &[&str], env: &[(&str, &str)]| {
        let args = parse(["sfpair"].iter().chain(args).map(OsString::from)).unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::resolve(
            &args,
            &move |k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()),
            false,
            &|_, _| Some(record.clone()),
        )
        .unwrap()
    };
    let s = with(&["run", "--socket", "/s"], &[("HOME", "/h")]);
    assert_eq!(s.login_url, "https://acme.my.salesforce.com");
    assert_eq!(s.client_id.as_deref(), Some("3MVG9STORED"));
    let s = with(
        &["run", "--socket", "/s"],
        &[("HOME", "/h"), ("SFPAIR_CLIENT_ID", "ENV")],
    );
    assert_eq!(s.client_id.as_deref(), Some("ENV"));
    let s = with(
        &["pair", "--login-url", "https://test.salesforce.com"],
        &[("HOME", "/h")],
    );
    assert_eq!(s.login_url, "https://test.salesforce.com");
}
