//! Secret hygiene: every command, on its success and failure paths, at RUST_LOG=trace and with a
//! client secret configured. No device code, token or client secret may appear in stdout or
//! stderr (where the log goes), except the access token on `sfpair token`'s own stdout.

use sfpair_sim::{Config, Fault};

use crate::harness::{Env, Output, RUN_LIMIT, Running, fast};

const CLIENT_SECRET: &str = "hygiene-consumer-secret-4b7e91";

struct Sweep<'a> {
    env: &'a Env,
    secret_file: std::path::PathBuf,
    outputs: Vec<(String, Output)>,
}

impl Sweep<'_> {
    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut c = self.env.command(args);
        c.env("RUST_LOG", "trace")
            .env("SFPAIR_CLIENT_SECRET_FILE", &self.secret_file);
        c
    }

    /// Runs a command and keeps its output for the final check; returns its exit code.
    fn run(&mut self, args: &[&str]) -> i32 {
        let out = Running::spawn(self.command(args)).finish(RUN_LIMIT);
        let code = out.code();
        self.outputs.push((args.join(" "), out));
        code
    }

    fn pair_approved(&mut self, args: &[&str]) {
        let mut run = Running::spawn(self.command(args));
        let code = run.event("code", RUN_LIMIT);
        self.env
            .approve(code["verification_uri_complete"].as_str().unwrap());
        let out = run.finish(RUN_LIMIT);
        assert_eq!(out.code(), 0, "{out:?}");
        self.outputs.push((args.join(" "), out));
    }
}

#[test]
fn no_secret_leaks_from_any_command_or_failure_at_trace_level() {
    let mut env = Env::start(Config {
        consumer_secret: Some(CLIENT_SECRET.into()),
        rotate_refresh_tokens: true,
        ..fast()
    });
    let secret_file = env.scratch.0.join("client-secret");
    std::fs::write(&secret_file, format!("{CLIENT_SECRET}\n")).unwrap();
    std::fs::set_permissions(
        &secret_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let mut s = Sweep {
        env: &env,
        secret_file,
        outputs: Vec::new(),
    };

    // Before pairing.
    assert_eq!(s.run(&["token"]), 5);
    assert_eq!(s.run(&["status"]), 5);
    assert_eq!(s.run(&["forget"]), 0);
    assert_eq!(s.run(&["pair", "--help"]), 0);
    // Pairing, and everything after it.
    s.pair_approved(&["pair", "--json"]);
    assert_eq!(s.run(&["pair"]), 0, "already paired");
    assert_eq!(s.run(&["status", "--check"]), 0);
    assert_eq!(s.run(&["status", "--json"]), 0);
    // REST calls: plain, with a session that expires at the server, over the API limit.
    assert_eq!(s.run(&["call", "GET", "/services/data/v62.0/limits"]), 0);
    env.sim().push_faults(&[Fault::InvalidSession]);
    let create = [
        "call",
        "POST",
        "sobjects/Account/",
        "--api-version",
        "62.0",
        "--data",
        r#"{"Name":"Hygiene"}"#,
    ];
    assert_eq!(s.run(&create), 0);
    env.sim().push_faults(&[Fault::RequestLimit]);
    assert_eq!(
        s.run(&["call", "GET", "limits", "--api-version", "62.0"]),
        9
    );
    // The broker, and a call that takes its session from the broker.
    let socket = env.scratch.0.join("broker.sock");
    let socket = socket.to_str().unwrap();
    let serve = Running::spawn(s.command(&["serve", "--socket", socket]));
    for _ in 0..500 {
        if std::path::Path::new(socket).exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(
        s.run(&[
            "call",
            "GET",
            "limits",
            "--api-version",
            "62.0",
            "--socket",
            socket
        ]),
        0
    );
    serve.terminate();
    let served = serve.finish(RUN_LIMIT);
    assert_eq!(served.code(), 0, "{served:?}");
    s.outputs.push(("serve".into(), served));
    let token_runs = s.outputs.len();
    assert_eq!(s.run(&["token"]), 0);
    assert_eq!(s.run(&["token", "--json"]), 0);
    // A rotated-out refresh token (a restored backup): re-pair needed.
    let before = std::fs::read(env.token_path()).unwrap();
    assert_eq!(s.run(&["token"]), 0);
    std::fs::write(env.token_path(), &before).unwrap();
    assert_eq!(s.run(&["token"]), 6);
    // A pairing nobody approves (Salesforce-style denial), a wrong client id.
    let mut run = Running::spawn(s.command(&[
        "pair",
        "--force",
        "--json",
        "--code-lifetime",
        "2",
        "--max-codes",
        "1",
    ]));
    let code = run.event("code", RUN_LIMIT);
    env.decide(code["verification_uri_complete"].as_str().unwrap(), "deny");
    let out = run.finish(RUN_LIMIT);
    assert_eq!(out.code(), 4, "{out:?}");
    s.outputs.push(("pair denied".into(), out));
    let mut wrong = s.command(&["pair", "--force"]);
    wrong.env("SFPAIR_CLIENT_ID", "3MVG9WRONG");
    let out = Running::spawn(wrong).finish(RUN_LIMIT);
    assert_eq!(out.code(), 2);
    s.outputs.push(("pair wrong client".into(), out));
    // A fresh pairing, then the network goes away.
    s.pair_approved(&["pair", "--force", "--json"]);
    let secrets = env.sim().issued_secrets();
    assert!(
        secrets.len() >= 8,
        "device codes and tokens were issued: {}",
        secrets.len()
    );
    let outputs = std::mem::take(&mut s.outputs);
    env.stop_sim();
    let mut s = Sweep {
        env: &env,
        secret_file: env.scratch.0.join("client-secret"),
        outputs,
    };
    assert_eq!(s.run(&["token", "--timeout", "1"]), 7);
    assert_eq!(s.run(&["status", "--check", "--timeout", "1"]), 7);
    assert_eq!(s.run(&["forget", "--timeout", "1"]), 7);

    let mut checked = 0;
    for (i, (what, out)) in s.outputs.iter().enumerate() {
        let is_token = (token_runs..token_runs + 4).contains(&i) && what.starts_with("token");
        for secret in secrets.iter().map(String::as_str).chain([CLIENT_SECRET]) {
            assert!(
                !out.stderr.contains(secret),
                "a secret in the stderr of `{what}`"
            );
            if is_token && out.stdout.contains(secret) {
                // `sfpair token` prints the access token: that one only, never the refresh token.
                assert!(
                    secret.starts_with("00D"),
                    "a non-access-token secret in the stdout of `{what}`"
                );
                assert_eq!(out.stdout.matches(secret).count(), 1);
            } else {
                assert!(
                    !out.stdout.contains(secret),
                    "a secret in the stdout of `{what}`"
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 18, "{checked} runs checked");
    // The sweep means something only if the verbose logs were really on where HTTP happened.
    let verbose = s
        .outputs
        .iter()
        .filter(|(_, o)| o.stderr.contains("debug: [ureq"))
        .count();
    assert!(
        verbose >= 10,
        "only {verbose} runs logged HTTP at debug level"
    );
}

/// The headless grants at trace level: no private key, consumer secret, assertion, actor token
/// or session token in any output (only `token`'s access token and `asset-token`'s asset
/// token on their own stdout).
#[test]
fn no_key_secret_assertion_or_token_leaks_from_the_headless_grants() {
    let mut config = Config {
        consumer_secret: Some(CLIENT_SECRET.into()),
        ..fast()
    };
    config.headless.apply("").unwrap();
    let (env, key) = crate::headless::jwt_env("", config);
    let secret_file = env.scratch.0.join("client-secret");
    std::fs::write(&secret_file, format!("{CLIENT_SECRET}\n")).unwrap();
    std::fs::set_permissions(
        &secret_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let (device_key, _) = crate::headless::keypair(&env.scratch.0, "hygiene-device");
    let key = key.to_str().unwrap().to_string();
    let device = device_key.to_str().unwrap().to_string();
    let mut s = Sweep {
        env: &env,
        secret_file,
        outputs: Vec::new(),
    };
    let jwt = [
        "pair",
        "--flow",
        "jwt-bearer",
        "--key-file",
        &key,
        "--username",
        "gw@acme.example",
    ];
    assert_eq!(s.run(&jwt), 0);
    assert_eq!(s.run(&["status", "--check"]), 0);
    env.sim().expire_sessions();
    assert_eq!(s.run(&["call", "GET", "/services/data/v62.0/limits"]), 0);
    let asset = [
        "asset-token",
        "--device-id",
        "GW-7",
        "--serial",
        "SN7",
        "--device-key",
        &device,
    ];
    let asset_run = s.outputs.len();
    assert_eq!(s.run(&asset), 0);
    // No --username, and another app than the stored pairing's, whose user it cannot take.
    assert_eq!(
        s.run(&[
            "pair",
            "--force",
            "--flow",
            "jwt-bearer",
            "--key-file",
            &key,
            "--client-id",
            "3MVG9another.app"
        ]),
        2
    );
    assert_eq!(
        s.run(&[
            "pair",
            "--force",
            "--flow",
            "jwt-bearer",
            "--key-file",
            &device,
            "--username",
            "u"
        ]),
        2,
        "a key the app does not trust"
    );
    assert_eq!(
        s.run(&["pair", "--force", "--flow", "client-credentials"]),
        0
    );
    let token_run = s.outputs.len();
    assert_eq!(s.run(&["token"]), 0);
    assert_eq!(s.run(&["forget"]), 0);

    let asset_token = s.outputs[asset_run].1.stdout.trim().to_string();
    assert!(asset_token.starts_with("eyJ"), "{asset_token}");
    let mut secrets = env.sim().issued_secrets();
    assert!(
        secrets.len() >= 4,
        "sessions were issued: {}",
        secrets.len()
    );
    secrets.push(CLIENT_SECRET.into());
    for pem in [&key, &device] {
        let text = std::fs::read_to_string(pem).unwrap();
        secrets.extend(
            text.lines()
                .filter(|l| !l.starts_with("-----"))
                .map(String::from),
        );
    }
    // Our assertions and actor tokens start with the base64url of {"alg":"RS256"}.
    secrets.push("eyJhbGciOiJSUzI1NiJ9".into());
    for (i, (what, out)) in s.outputs.iter().enumerate() {
        for secret in &secrets {
            assert!(
                !out.stderr.contains(secret.as_str()),
                "a secret in the stderr of `{what}`"
            );
            let allowed = i == token_run && secret.starts_with("00D");
            assert!(
                allowed || !out.stdout.contains(secret.as_str()),
                "a secret in the stdout of `{what}`"
            );
        }
        assert!(
            !out.stderr.contains(&asset_token),
            "the asset token in `{what}`"
        );
        if i != asset_run {
            assert!(
                !out.stdout.contains(&asset_token),
                "the asset token in `{what}`"
            );
        }
    }
    let verbose = s
        .outputs
        .iter()
        .filter(|(_, o)| o.stderr.contains("debug: [ureq"))
        .count();
    assert!(
        verbose >= 5,
        "only {verbose} runs logged HTTP at debug level"
    );
}
