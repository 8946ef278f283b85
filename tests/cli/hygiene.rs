//! Secret hygiene: every command and subcommand, on its success and failure paths, at
//! RUST_LOG=trace and with a client secret configured, plus the broker's health answers and
//! `doctor`'s report. No device code, token or client secret may appear in stdout or stderr
//! (where the log goes), except the access token on `sfpair token`'s own stdout.
//!
//! The invocations are one table, [`SWEEP`], run in order. Every command of the CLI's table
//! (`sfpair::cli::table::COMMANDS`), and every action its usage lines name (`outbox
//! flush|status|retry-dead`), must appear in it: a new command fails this test until it is
//! swept.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use sfpair_sim::{Config, Fault};

use crate::harness::{Env, Output, RUN_LIMIT, Running, fast, wait_for};

const CLIENT_SECRET: &str = "hygiene-consumer-secret-4b7e91";

/// One step of the sweep. Arguments may hold `{socket}`: the broker socket of this test, and
/// `{dir}`: its scratch directory.
enum Step {
    /// `sfpair ARGS`, which must exit with this code.
    Run(&'static [&'static str], i32),
    /// `sfpair ARGS` that shows a code (`pair --json`): the technician approves it (`true`) or
    /// denies it; then it must exit with this code.
    Pair(&'static [&'static str], bool, i32),
    /// Starts `sfpair ARGS` in the background (`serve`, `run`) until its socket listens, or
    /// (without `{socket}`: `listen`) until it prints its first line.
    Start(&'static [&'static str]),
    /// SIGTERM to what [`Step::Start`] started; it must exit 0.
    Stop,
    /// `{"get":"health"}` to the broker: the answer is checked like an output.
    Health,
    /// Waits (bounded) until the org holds this many rows of readings: `run` delivered.
    Rows(usize),
    /// Something done to the simulator or the files before the next step.
    Setup(fn(&mut Env)),
    /// An environment variable for the next `Run` only (`{dir}` as in arguments).
    Env(&'static str, &'static str),
}

use Step::*;

const OBJECT: &str = "Device_Reading__c";

/// Every invocation, in order. The secrets are collected from the simulator at the end (and
/// before it stops), so a token issued by a later step is looked for in every earlier output.
const SWEEP: &[Step] = &[
    // Before pairing.
    Run(&["help"], 0),
    Run(&["pair", "--help"], 0),
    Run(&["token"], 5),
    Run(&["status"], 5),
    Run(&["forget"], 0),
    Run(&["doctor"], 0),
    Run(&["asset-token", "--device-id", "GW-7"], 5),
    // The outbox before pairing: queueing works, delivery needs the pairing.
    Run(
        &[
            "send",
            OBJECT,
            "--external-id",
            "Reading_Key__c",
            "--data",
            r#"{"Reading_Key__c":"h1","Value__c":1}"#,
        ],
        0,
    ),
    Run(&["outbox", "status", "--json"], 0),
    Run(&["outbox", "flush"], 5),
    // Pairing, and everything after it.
    Pair(&["pair", "--json"], true, 0),
    Run(&["pair"], 0),
    Run(&["status", "--check"], 0),
    Run(&["status", "--json"], 0),
    Run(&["doctor", "--json"], 0),
    Run(&["doctor"], 0),
    // Delivery: a record the org takes, one it refuses for good, a session it expired.
    Run(
        &[
            "send",
            OBJECT,
            "--external-id",
            "Reading_Key__c",
            "--data",
            r#"[{"Reading_Key__c":"h2","Value__c":2},{"Reading_Key__c":"h3","Colour__c":"red"}]"#,
        ],
        0,
    ),
    Setup(|env| env.sim().push_faults(&[Fault::InvalidSession])),
    Run(&["outbox", "flush"], 0),
    Run(&["outbox", "status"], 0),
    Run(&["outbox", "retry-dead"], 0),
    Run(&["outbox", "flush"], 0),
    Run(
        &[
            "send",
            "--event",
            "Device_Alarm__e",
            "--data",
            r#"{"Code__c":"H1","Severity__c":1}"#,
        ],
        0,
    ),
    Run(&["outbox", "flush"], 0),
    // REST calls: plain, with a session that expires at the server, over the API limit.
    Run(&["call", "GET", "/services/data/v62.0/limits"], 0),
    Setup(|env| env.sim().push_faults(&[Fault::InvalidSession])),
    Run(
        &[
            "call",
            "POST",
            "sobjects/Account/",
            "--api-version",
            "62.0",
            "--data",
            r#"{"Name":"Hygiene"}"#,
        ],
        0,
    ),
    Setup(|env| env.sim().push_faults(&[Fault::RequestLimit])),
    Run(&["call", "GET", "limits", "--api-version", "62.0"], 9),
    // The broker, and a call that takes its session from the broker.
    Start(&["serve", "--socket", "{socket}"]),
    Run(
        &[
            "call",
            "GET",
            "limits",
            "--api-version",
            "62.0",
            "--socket",
            "{socket}",
        ],
        0,
    ),
    Health,
    Stop,
    // The agent: health, a send through its broker, delivery in its own thread.
    Start(&["run", "--socket", "{socket}", "--json", "--keepalive", "1s"]),
    Health,
    Run(&["status", "--socket", "{socket}", "--json"], 0),
    Run(
        &[
            "send",
            OBJECT,
            "--external-id",
            "Reading_Key__c",
            "--socket",
            "{socket}",
            "--data",
            r#"{"Reading_Key__c":"h4","Value__c":4}"#,
        ],
        0,
    ),
    Rows(3),
    Setup(|env| env.sim().expire_sessions()),
    Run(
        &[
            "send",
            OBJECT,
            "--external-id",
            "Reading_Key__c",
            "--data",
            r#"{"Reading_Key__c":"h5","Value__c":5}"#,
        ],
        0,
    ),
    Rows(4),
    Health,
    Stop,
    // The org talking to the device: a command for it, and its record.
    Setup(org_talks),
    Run(
        &[
            "desired",
            "--desired",
            "Device__c/Device_Id__c/GW-7",
            "--desired-file",
            "{dir}/desired.json",
        ],
        0,
    ),
    Run(
        &[
            "desired",
            "--desired",
            "Device__c/Device_Id__c/GW-404",
            "--desired-file",
            "{dir}/desired.json",
        ],
        9,
    ),
    Run(&["listen", "no such channel"], 2),
    Start(&[
        "listen",
        "Device_Command__e",
        "--replay",
        "all",
        "--match",
        "Device_Id__c=GW-7",
        "--inbox",
        "{dir}/inbox",
    ]),
    Stop,
    Start(&[
        "run",
        "--socket",
        "{socket}",
        "--listen",
        "Device_Command__e",
        "--replay",
        "all",
        "--inbox",
        "{dir}/run-inbox",
        "--desired",
        "Device__c/Device_Id__c/GW-7",
        "--desired-file",
        "{dir}/run-desired.json",
    ]),
    Health,
    Stop,
    // Tokens; then a rotated-out refresh token (a restored backup): re-pair needed.
    Run(&["token"], 0),
    Run(&["token", "--json"], 0),
    // Sealed (systemd-creds with a host key of the test's own), a token through the seal, and
    // back to plain; a sealer that cannot be reached.
    Env("SYSTEMD_CREDENTIAL_SECRET", "{dir}/host-key"),
    Run(&["seal", "--seal", "systemd-creds"], 0),
    Env("SYSTEMD_CREDENTIAL_SECRET", "{dir}/host-key"),
    Run(&["token"], 0),
    Env("SYSTEMD_CREDENTIAL_SECRET", "{dir}/host-key"),
    Run(&["unseal"], 0),
    Run(
        &[
            "seal",
            "--seal",
            "tpm2",
            "--tpm",
            "swtpm:host=127.0.0.1,port=9",
        ],
        2,
    ),
    Setup(backup_token),
    Run(&["token"], 0),
    Setup(restore_token),
    Run(&["token"], 6),
    Run(
        &[
            "send",
            OBJECT,
            "--external-id",
            "Reading_Key__c",
            "--data",
            r#"{"Reading_Key__c":"h6","Value__c":6}"#,
        ],
        0,
    ),
    Run(&["outbox", "flush"], 6),
    Run(&["doctor"], 1),
    // A pairing nobody approves (Salesforce-style denial), a wrong client id.
    Pair(
        &[
            "pair",
            "--force",
            "--json",
            "--code-lifetime",
            "5",
            "--max-codes",
            "1",
        ],
        false,
        4,
    ),
    Env("SFPAIR_CLIENT_ID", "3MVG9WRONG"),
    Run(&["pair", "--force"], 2),
    // A fresh pairing, then the network goes away.
    Pair(&["pair", "--force", "--json"], true, 0),
    Run(&["asset-token", "--device-id", "GW-7"], 0),
    Setup(stop_sim),
    Run(&["token", "--timeout", "1"], 7),
    Run(&["status", "--check", "--timeout", "1"], 7),
    Run(&["outbox", "flush", "--timeout", "1"], 7),
    Run(&["doctor", "--timeout", "1"], 1),
    Run(&["forget", "--timeout", "1"], 7),
];

fn backup_token(env: &mut Env) {
    let bytes = std::fs::read(env.token_path()).unwrap();
    std::fs::write(env.scratch.0.join("token.backup"), bytes).unwrap();
}

fn restore_token(env: &mut Env) {
    let bytes = std::fs::read(env.scratch.0.join("token.backup")).unwrap();
    std::fs::write(env.token_path(), bytes).unwrap();
}

fn org_talks(env: &mut Env) {
    let sim = env.sim();
    sim.upsert_record(
        "Device__c",
        "Device_Id__c",
        "GW-7",
        serde_json::json!({"Name": "GW-7", "Desired_Brightness__c": 7}),
    )
    .unwrap();
    sim.publish_event(
        "Device_Command__e",
        serde_json::json!({"Device_Id__c": "GW-7", "Command__c": "reboot"}),
    )
    .unwrap();
}

fn stop_sim(env: &mut Env) {
    env.stop_sim();
}

/// What ran and what it printed.
struct Seen {
    what: String,
    /// `sfpair token` that succeeded: its stdout is the access token.
    prints_token: bool,
    out: Output,
}

struct Sweep {
    env: Env,
    secret_file: std::path::PathBuf,
    socket: std::path::PathBuf,
    seen: Vec<Seen>,
    /// Every secret the simulator issued, gathered before it stops.
    secrets: BTreeSet<String>,
}

impl Sweep {
    fn command(&self, args: &[&str]) -> std::process::Command {
        let socket = self.socket.to_str().unwrap();
        let dir = self.env.scratch.0.to_str().unwrap();
        let args: Vec<String> = args
            .iter()
            .map(|a| a.replace("{socket}", socket).replace("{dir}", dir))
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut c = self.env.command(&args);
        c.env("RUST_LOG", "trace")
            .env("SFPAIR_CLIENT_SECRET_FILE", &self.secret_file);
        c
    }

    fn keep(&mut self, args: &[&str], code: i32, out: Output) {
        let what = args.join(" ");
        let tail = &out.stderr[out.stderr.len().saturating_sub(1500)..];
        let stdout = &out.stdout;
        assert_eq!(out.code(), code, "`{what}`: {stdout}\nstderr ends: {tail}");
        self.seen.push(Seen {
            prints_token: args[0] == "token" && code == 0,
            what,
            out,
        });
    }

    fn gather_secrets(&mut self) {
        if let Some(sim) = &self.env.sim {
            self.secrets.extend(sim.issued_secrets());
        }
    }

    fn health(&self) -> Output {
        let mut stream = UnixStream::connect(&self.socket).unwrap();
        stream.set_read_timeout(Some(RUN_LIMIT)).unwrap();
        stream.write_all(b"{\"get\":\"health\"}\n").unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let health: serde_json::Value = serde_json::from_str(&answer).unwrap();
        assert!(health["state"].is_string(), "{answer}");
        Output {
            status: std::os::unix::process::ExitStatusExt::from_raw(0),
            stdout: answer,
            stderr: String::new(),
        }
    }

    fn step(
        &mut self,
        step: &Step,
        background: &mut Option<(String, Running)>,
        env_once: &mut Vec<(&str, &str)>,
    ) {
        match step {
            Run(args, code) => {
                let mut c = self.command(args);
                let dir = self.env.scratch.0.to_str().unwrap().to_string();
                for (k, v) in env_once.drain(..) {
                    c.env(k, v.replace("{dir}", &dir));
                }
                let out = Running::spawn(c).finish(RUN_LIMIT);
                self.keep(args, *code, out);
            }
            Pair(args, approve, code) => {
                let mut run = Running::spawn(self.command(args));
                let shown = run.event("code", RUN_LIMIT);
                let url = shown["verification_uri_complete"].as_str().unwrap();
                let decision = if *approve { "approve" } else { "deny" };
                let (status, html) = self.env.decide(url, decision);
                assert_eq!(status, 200, "{html}");
                let out = run.finish(RUN_LIMIT);
                self.keep(args, *code, out);
            }
            Start(args) => {
                assert!(background.is_none(), "one background process at a time");
                let _ = std::fs::remove_file(&self.socket);
                let mut running = Running::spawn(self.command(args));
                if args.contains(&"{socket}") {
                    let socket = self.socket.clone();
                    wait_for(RUN_LIMIT, "the broker listens", || {
                        UnixStream::connect(&socket).is_ok()
                    });
                } else {
                    running.line(RUN_LIMIT);
                }
                *background = Some((args.join(" "), running));
            }
            Stop => {
                let (what, running) = background.take().expect("something was started");
                running.terminate();
                let out = running.finish(RUN_LIMIT);
                let args: Vec<&str> = what.split(' ').collect();
                self.keep(&args, 0, out);
            }
            Health => {
                let out = self.health();
                self.seen.push(Seen {
                    what: "health".into(),
                    prints_token: false,
                    out,
                });
            }
            Rows(n) => {
                let sim = self.env.sim();
                wait_for(RUN_LIMIT, &format!("{n} rows delivered"), || {
                    sim.records(OBJECT).len() >= *n
                });
            }
            Setup(setup) => {
                self.gather_secrets();
                setup(&mut self.env);
            }
            Env(key, value) => env_once.push((key, value)),
        }
    }
}

/// The commands `sfpair --help` lists, with the actions their usage lines name
/// (`outbox flush`): what the sweep must cover.
fn commands_and_actions() -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    for spec in sfpair::cli::table::COMMANDS {
        all.insert(spec.word.to_string());
        for line in spec.usage {
            let Some(rest) = line
                .strip_prefix(spec.word)
                .and_then(|r| r.strip_prefix(' '))
            else {
                continue;
            };
            let first = rest.split_whitespace().next().unwrap_or("");
            for action in first.split('|') {
                let word = action.chars().all(|c| c.is_ascii_lowercase() || c == '-');
                if word && action.starts_with(|c: char| c.is_ascii_lowercase()) {
                    all.insert(format!("{} {action}", spec.word));
                }
            }
        }
    }
    all
}

#[test]
fn no_secret_leaks_from_any_command_or_failure_at_trace_level() {
    let env = Env::start(Config {
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
    let socket = env.scratch.0.join("broker.sock");

    // The table covers every command and action the CLI has.
    let swept: BTreeSet<String> = SWEEP
        .iter()
        .filter_map(|step| match step {
            Run(args, _) | Pair(args, _, _) | Start(args) => Some(args),
            _ => None,
        })
        .flat_map(|args| [args[0].to_string(), args[..2.min(args.len())].join(" ")])
        .collect();
    let wanted = commands_and_actions();
    assert!(wanted.len() >= 14, "{wanted:?}");
    let missing: Vec<_> = wanted.difference(&swept).collect();
    assert!(missing.is_empty(), "not in the sweep: {missing:?}");

    let mut s = Sweep {
        env,
        secret_file,
        socket,
        seen: Vec::new(),
        secrets: BTreeSet::new(),
    };
    let mut background = None;
    let mut env_once = Vec::new();
    for step in SWEEP {
        s.step(step, &mut background, &mut env_once);
    }
    assert!(background.is_none(), "everything started was stopped");
    s.gather_secrets();
    assert!(
        s.secrets.len() >= 10,
        "device codes and tokens were issued: {}",
        s.secrets.len()
    );

    for seen in &s.seen {
        let what = &seen.what;
        for secret in s.secrets.iter().map(String::as_str).chain([CLIENT_SECRET]) {
            assert!(
                !seen.out.stderr.contains(secret),
                "a secret in the stderr of `{what}`"
            );
            if seen.prints_token && seen.out.stdout.contains(secret) {
                // `sfpair token` prints the access token: that one only, never the refresh token.
                assert!(
                    secret.starts_with("00D"),
                    "a non-access-token secret in the stdout of `{what}`"
                );
                assert_eq!(seen.out.stdout.matches(secret).count(), 1);
            } else {
                assert!(
                    !seen.out.stdout.contains(secret),
                    "a secret in the stdout of `{what}`"
                );
            }
        }
    }
    // An asset token is the product of its own run only.
    let asset_tokens: Vec<(usize, String)> = s
        .seen
        .iter()
        .enumerate()
        .filter(|(_, seen)| seen.what.starts_with("asset-token") && seen.out.code() == 0)
        .map(|(i, seen)| (i, seen.out.stdout.trim().to_string()))
        .collect();
    assert!(!asset_tokens.is_empty(), "an asset token was issued");
    for (own, token) in &asset_tokens {
        assert!(token.starts_with("eyJ"), "{token}");
        for (i, seen) in s.seen.iter().enumerate() {
            let elsewhere = seen.out.stderr.contains(token.as_str())
                || (i != *own && seen.out.stdout.contains(token.as_str()));
            assert!(!elsewhere, "the asset token in `{}`", seen.what);
        }
    }
    // The sweep means something only if the verbose logs were really on where HTTP happened:
    // in every delivery, and in most runs that talked to the org.
    let verbose = |seen: &Seen| seen.out.stderr.contains("debug: [ureq");
    for seen in s
        .seen
        .iter()
        .filter(|s| s.what.starts_with("outbox flush") && s.out.code() == 0)
    {
        assert!(
            verbose(seen),
            "`{}` logged no HTTP at debug level",
            seen.what
        );
    }
    let verbose = s.seen.iter().filter(|s| verbose(s)).count();
    assert!(
        verbose >= 20,
        "only {verbose} runs logged HTTP at debug level"
    );
    assert!(s.seen.len() >= 50, "{} outputs checked", s.seen.len());
}

/// Runs at trace level with the client secret configured, keeping each output.
struct Runs<'a> {
    env: &'a Env,
    secret_file: std::path::PathBuf,
    outputs: Vec<(String, Output)>,
}

impl Runs<'_> {
    fn run(&mut self, args: &[&str]) -> i32 {
        let mut c = self.env.command(args);
        c.env("RUST_LOG", "trace")
            .env("SFPAIR_CLIENT_SECRET_FILE", &self.secret_file);
        let out = Running::spawn(c).finish(RUN_LIMIT);
        let code = out.code();
        self.outputs.push((args.join(" "), out));
        code
    }
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
    let mut s = Runs {
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
