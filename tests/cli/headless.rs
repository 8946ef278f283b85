//! Enrolment without a person: `pair --flow jwt-bearer|client-credentials` and `asset-token`,
//! with the real binary against the simulator over TLS, keys made by openssl. After enrolment
//! `token`, `call` and the broker work as after a device pairing, each new session costing
//! exactly one new grant (counted in the simulator's request log); every refusal has its exit
//! code and message and stores nothing.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;

use serde_json::Value;
use sfpair::broker::client::Broker;
use sfpair::store::record::Grant;
use sfpair_sim::Config;

use crate::broker::Serving;
use crate::harness::{Env, Output, fast, stored_record};

const USER: &str = "gateway-0042@acme.example";
const SECRET: &str = "cc-consumer-secret-5e1f";

/// An RSA key pair from openssl: (private PEM, mode 0600; public PEM).
pub(crate) fn keypair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let private = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    let ok = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&private)
        .output()
        .expect("openssl runs")
        .status
        .success();
    assert!(ok, "openssl genpkey");
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
    let ok = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public)
        .output()
        .unwrap()
        .status
        .success();
    assert!(ok, "openssl pkey -pubout");
    (private, public)
}

/// A simulator that trusts a fresh key for JWT bearer (plus `knobs`), and that key's path.
pub(crate) fn jwt_env(knobs: &str, config: Config) -> (Env, PathBuf) {
    let scratch = crate::harness::Scratch::new();
    let (key, public) = keypair(&scratch.0, "app");
    let mut config = config;
    config
        .headless
        .apply(&format!("jwt-key={},{knobs}", public.display()))
        .unwrap();
    let env = Env::start(config);
    // Keep the key next to the store, in the env's own scratch directory.
    let kept = env.scratch.0.join("device.key");
    std::fs::copy(&key, &kept).unwrap();
    std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o600)).unwrap();
    (env, kept)
}

pub(crate) fn jwt_pair(env: &Env, key: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "pair",
        "--flow",
        "jwt-bearer",
        "--key-file",
        key.to_str().unwrap(),
    ];
    args.extend_from_slice(&["--username", USER]);
    args.extend_from_slice(extra);
    env.run(&args)
}

fn grants(env: &Env, grant: &str) -> usize {
    env.requests()
        .iter()
        .filter(|l| l.starts_with(&format!("POST /services/oauth2/token {grant} 200")))
        .count()
}

#[test]
fn jwt_bearer_enrols_and_each_new_session_is_one_new_grant() {
    let (env, key) = jwt_env("", fast());
    let out = jwt_pair(&env, &key, &[]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("Paired"), "{}", out.stdout);
    assert_eq!(grants(&env, "jwt-bearer"), 1);
    assert!(
        env.requests().iter().all(|l| !l.contains("refresh_token")),
        "{:?}",
        env.requests()
    );
    // The record: version 2, the grant and the key's path, no refresh token, no key.
    let bytes = std::fs::read(env.token_path()).unwrap();
    assert_eq!(bytes[4], 2);
    let record = stored_record(&env.token_path());
    assert_eq!(
        record.grant,
        Grant::jwt_bearer(
            USER.into(),
            key.to_str().unwrap().into(),
            env.base_url.clone()
        )
    );
    assert!(record.refresh_token.is_empty());
    let pem = std::fs::read_to_string(&key).unwrap();
    let key_line = pem.lines().nth(2).unwrap();
    assert!(!String::from_utf8_lossy(&bytes).contains(key_line));

    // `token` in a new process: one new grant.
    let out = env.run(&["token"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.trim().starts_with("00D"));
    assert_eq!(grants(&env, "jwt-bearer"), 2);
    let out = env.run(&["status", "--check"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(grants(&env, "jwt-bearer"), 3);

    // The broker: 50 clients share one grant; after the server expires the session, 50
    // reports of the refused session cause one new grant; `call --socket` renews through it.
    let serving = Serving::start(&env, &[]);
    let clients: Vec<_> = (0..50)
        .map(|_| {
            let broker = Broker::new(&serving.socket);
            thread::spawn(move || broker.access_token(None))
        })
        .collect();
    let sessions: Vec<_> = clients
        .into_iter()
        .map(|c| c.join().unwrap().expect("a session"))
        .collect();
    assert!(
        sessions
            .iter()
            .all(|s| s.access_token == sessions[0].access_token)
    );
    assert_eq!(grants(&env, "jwt-bearer"), 4, "one grant for 50 clients");
    env.sim().expire_sessions();
    let generation = sessions[0].generation;
    let reports: Vec<_> = (0..50)
        .map(|_| {
            let broker = Broker::new(&serving.socket);
            thread::spawn(move || broker.access_token(Some(generation)))
        })
        .collect();
    let renewed: Vec<_> = reports
        .into_iter()
        .map(|c| c.join().unwrap().unwrap())
        .collect();
    assert!(renewed.iter().all(|s| s.generation == generation + 1));
    assert_eq!(grants(&env, "jwt-bearer"), 5, "one grant for 50 reports");
    env.sim().expire_sessions();
    let socket = serving.socket.to_str().unwrap().to_string();
    let out = env.run(&[
        "call",
        "GET",
        "/services/data/v62.0/limits",
        "--socket",
        &socket,
    ]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(
        grants(&env, "jwt-bearer"),
        6,
        "the refused session: one new grant"
    );
    let (code, stderr) = serving.stop();
    assert_eq!(code, 0, "{stderr}");

    // `call` on its own after the server expired the session: one grant, one call.
    env.sim().expire_sessions();
    let out = env.run(&["call", "GET", "/services/data/v62.0/limits"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(grants(&env, "jwt-bearer"), 7);
    // forget: nothing to revoke, the store is wiped, exit 0.
    let out = env.run(&["forget"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("nothing"), "{}", out.stdout);
    assert!(!env.token_path().exists());
}

#[test]
fn jwt_bearer_refusals_say_what_to_change_and_store_nothing() {
    let cases: [(&str, &[&str], &str); 3] = [
        ("no-pre-approval", &[], "pre-approved"),
        (
            "",
            &["--audience", "https://login.salesforce.com"],
            "--audience",
        ),
        ("max-exp-ahead=60", &[], "clock reads"),
    ];
    for (knobs, extra, advice) in cases {
        let (env, key) = jwt_env(knobs, fast());
        let out = jwt_pair(&env, &key, extra);
        assert_eq!(out.code(), 2, "{knobs}: {out:?}");
        assert!(out.stderr.contains(advice), "{knobs}: {}", out.stderr);
        assert!(!env.token_path().exists(), "{knobs}: nothing stored");
    }
    // The app has no certificate: the simulator trusts no key.
    let env = Env::start(fast());
    let scratch = crate::harness::Scratch::new();
    let (key, _) = keypair(&scratch.0, "k");
    let out = jwt_pair(&env, &key, &[]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(
        out.stderr.contains("upload the certificate"),
        "{}",
        out.stderr
    );
    // A key that is not the app's: the signature does not verify.
    let (env, _) = jwt_env("", fast());
    let out = jwt_pair(&env, &key, &[]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(
        out.stderr.contains("not the key of the certificate"),
        "{}",
        out.stderr
    );
    // An unknown consumer key.
    let (env, key) = jwt_env("", fast());
    let mut args = vec![
        "pair",
        "--flow",
        "jwt-bearer",
        "--key-file",
        key.to_str().unwrap(),
    ];
    args.extend_from_slice(&["--username", USER, "--client-id", "3MVG9UNKNOWN"]);
    let out = env.run(&args);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr.contains("Consumer Key"), "{}", out.stderr);
    assert!(!env.token_path().exists());
}

#[test]
fn a_readable_or_wrong_key_file_is_refused_before_any_request() {
    let (env, key) = jwt_env("", fast());
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = jwt_pair(&env, &key, &[]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(
        out.stderr.contains(&format!("chmod 600 {}", key.display())),
        "{}",
        out.stderr
    );
    let not_a_key = env.scratch.0.join("not-a-key.pem");
    std::fs::write(&not_a_key, "hello\n").unwrap();
    std::fs::set_permissions(&not_a_key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = jwt_pair(&env, &not_a_key, &[]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr.contains("is not PEM"), "{}", out.stderr);
    let out = env.run(&["pair", "--flow", "jwt-bearer", "--username", USER]);
    assert_eq!(out.code(), 2);
    assert!(out.stderr.contains("--key-file"), "{}", out.stderr);
    assert!(env.requests().is_empty(), "{:?}", env.requests());
    assert!(!env.token_path().exists());
}

pub(crate) fn cc_env(knobs: &str) -> (Env, PathBuf) {
    let mut config = Config {
        consumer_secret: Some(SECRET.into()),
        ..fast()
    };
    config.headless.apply(knobs).unwrap();
    let env = Env::start(config);
    let file = env.scratch.0.join("secret");
    std::fs::write(&file, format!("{SECRET}\n")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    (env, file)
}

pub(crate) fn cc(env: &Env, secret: &Path, args: &[&str]) -> Output {
    let mut command = env.command(args);
    command.env("SFPAIR_CLIENT_SECRET_FILE", secret);
    crate::harness::Running::spawn(command).finish(crate::harness::RUN_LIMIT)
}

#[test]
fn client_credentials_enrol_on_my_domain_and_renew_by_granting_again() {
    let (env, secret) = cc_env("");
    let out = cc(&env, &secret, &["pair", "--flow", "client-credentials"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(grants(&env, "client_credentials"), 1);
    let bytes = std::fs::read(env.token_path()).unwrap();
    assert!(!String::from_utf8_lossy(&bytes).contains(SECRET));
    // The record names the secret's file, as a JWT record names its key file; never the secret.
    assert_eq!(
        stored_record(&env.token_path()).grant,
        Grant::client_credentials_from(Some(secret.to_str().unwrap().into()))
    );
    env.sim().expire_sessions();
    let out = cc(
        &env,
        &secret,
        &["call", "GET", "/services/data/v62.0/limits"],
    );
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(grants(&env, "client_credentials"), 2);
    // Later commands read the secret from the file the pairing remembers.
    env.sim().expire_sessions();
    let out = env.run(&["token"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(grants(&env, "client_credentials"), 3);
    // Once that file is gone, they say which file and how to give another.
    std::fs::remove_file(&secret).unwrap();
    let out = env.run(&["token"]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr.contains("the stored pairing"), "{}", out.stderr);
    assert!(
        out.stderr.contains(secret.to_str().unwrap()),
        "{}",
        out.stderr
    );
}

#[test]
fn client_credentials_refusals_say_what_to_change_and_store_nothing() {
    // The generic login hosts: refused here, before any request.
    let (env, secret) = cc_env("");
    let mut command = env.command(&["pair", "--flow", "client-credentials"]);
    command
        .env("SFPAIR_CLIENT_SECRET_FILE", &secret)
        .env("SFPAIR_LOGIN_URL", "https://login.salesforce.com");
    let out = crate::harness::Running::spawn(command).finish(crate::harness::RUN_LIMIT);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr.contains("My Domain"), "{}", out.stderr);
    assert!(env.requests().is_empty());
    let out = env.run(&["pair", "--flow", "client-credentials"]);
    assert_eq!(out.code(), 2, "no secret: {out:?}");
    assert!(env.requests().is_empty());

    for (knobs, advice) in [
        ("not-my-domain", "My Domain"),
        ("no-run-as-user", "API Only"),
    ] {
        let (env, secret) = cc_env(knobs);
        let out = cc(&env, &secret, &["pair", "--flow", "client-credentials"]);
        assert_eq!(out.code(), 2, "{knobs}: {out:?}");
        assert!(out.stderr.contains(advice), "{knobs}: {}", out.stderr);
        assert!(!env.token_path().exists());
    }
    let (env, _) = cc_env("");
    let wrong = env.scratch.0.join("wrong");
    std::fs::write(&wrong, "not-the-secret").unwrap();
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = cc(&env, &wrong, &["pair", "--flow", "client-credentials"]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr.contains("Consumer Secret"), "{}", out.stderr);
    assert!(!env.token_path().exists());
}

fn claims(jwt: &str) -> Value {
    use base64::Engine;
    let part = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// The modulus of a PEM key, as openssl prints it (upper-case hex).
fn modulus_hex(key: &Path) -> String {
    let out = Command::new("openssl")
        .args(["rsa", "-noout", "-modulus", "-in"])
        .arg(key)
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .trim_start_matches("Modulus=")
        .to_string()
}

#[test]
fn asset_token_binds_the_device_key_and_is_not_stored() {
    let (env, key) = jwt_env("asset-ttl=300", fast());
    assert_eq!(jwt_pair(&env, &key, &[]).code(), 0);
    let stored = std::fs::read(env.token_path()).unwrap();
    let (device_key, _) = keypair(&env.scratch.0, "asset-device");
    let args = [
        "asset-token",
        "--device-id",
        "GW-0042",
        "--asset-name",
        "Gateway 42",
        "--serial",
        "SN-42",
        "--device-key",
        device_key.to_str().unwrap(),
        "--json",
    ];
    let out = env.run(&args);
    assert_eq!(out.code(), 0, "{out:?}");
    let reply: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(
        reply["issued_token_type"],
        "urn:ietf:params:oauth:token-type:jwt"
    );
    assert_eq!(reply["expires_in"], 300);
    // The simulator verified the actor token's RS256 signature against its cnf.jwk before
    // issuing, and copies the claims into the asset token: the key is the device key.
    let asset = claims(reply["access_token"].as_str().unwrap());
    assert_eq!(asset["did"], "GW-0042");
    assert_eq!(asset["Asset"]["SerialNumber"], "SN-42");
    use base64::Engine;
    let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(asset["cnf"]["jwk"]["n"].as_str().unwrap())
        .unwrap();
    let hex: String = n.iter().map(|b| format!("{b:02X}")).collect();
    assert_eq!(hex, modulus_hex(&device_key));
    assert_eq!(asset["cnf"]["jwk"]["e"], "AQAB");
    assert_eq!(
        std::fs::read(env.token_path()).unwrap(),
        stored,
        "nothing stored"
    );
    assert_eq!(grants(&env, "token-exchange"), 1);
    // Without a key: an unsigned actor token, plain output is the token alone.
    let out = env.run(&["asset-token", "--device-id", "GW-0043"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(claims(out.stdout.trim())["did"], "GW-0043");
    assert!(claims(out.stdout.trim()).get("cnf").is_none());
    assert_eq!(
        env.run(&["asset-token"]).code(),
        2,
        "--device-id is required"
    );
}

#[test]
fn asset_token_refusals_are_exit_2() {
    let (env, key) = jwt_env("no-token-exchange", fast());
    assert_eq!(jwt_pair(&env, &key, &[]).code(), 0);
    let out = env.run(&["asset-token", "--device-id", "GW-1"]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr.contains("asset tokens"), "{}", out.stderr);
    let (env, _) = jwt_env("", fast());
    assert_eq!(
        env.run(&["asset-token", "--device-id", "GW-1"]).code(),
        5,
        "not paired"
    );
}

#[test]
fn an_actor_token_not_signed_by_its_cnf_key_is_refused_with_advice() {
    let (env, key) = jwt_env("", fast());
    assert_eq!(jwt_pair(&env, &key, &[]).code(), 0);
    let session = env.run(&["token"]).stdout.trim().to_string();
    // The cnf names the device key, but another key signs: what a cloned board would send.
    let (device, _) = keypair(&env.scratch.0, "cnf-device");
    let (other, _) = keypair(&env.scratch.0, "cnf-other");
    use sfpair::headless::key::SigningKey;
    let device = SigningKey::load(&device, "device key").unwrap();
    let other = SigningKey::load(&other, "other key").unwrap();
    let claims = sfpair::jwt::actor_claims(
        &sfpair::jwt::DeviceClaims {
            device_id: "GW-9".into(),
            ..Default::default()
        },
        Some(&device.public()),
    );
    let input = sfpair::jwt::signing_input(sfpair::jwt::HEADER_RS256, &claims);
    let forged = sfpair::jwt::assemble(&input, &other.sign_rs256(input.as_bytes()).unwrap());
    let mut reply = env
        .browser()
        .post(format!("{}/services/oauth2/token", env.base_url))
        .send_form([
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
            ("subject_token", session.as_str()),
            ("actor_token_type", "urn:ietf:params:oauth:token-type:jwt"),
            ("actor_token", forged.as_str()),
        ])
        .unwrap();
    assert_eq!(reply.status().as_u16(), 400);
    let body: Value = serde_json::from_str(&reply.body_mut().read_to_string().unwrap()).unwrap();
    let e = sfpair::flow::reply::OAuthError {
        error: body["error"].as_str().unwrap().into(),
        description: body["error_description"].as_str().map(String::from),
        interval: None,
        status: 400,
    };
    let err = sfpair::headless::refusals::error_for("the asset token exchange", &e, "now");
    assert_eq!(err.exit_code(), 2);
    assert!(err.message().contains("--device-key"), "{}", err.message());
}
