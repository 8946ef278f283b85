//! Sealing (docs/sealing.md) with real parts: the real `sfpair` against the simulator,
//! a software TPM per "board" (swtpm, on 127.0.0.1 at ports the test picks) with tpm2-tools,
//! SoftHSM2 with OpenSC's pkcs11-tool, and systemd-creds with a host key of the test's own
//! (`SYSTEMD_CREDENTIAL_SECRET`, so the machine's is never touched). Every wait is bounded.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sfpair::broker::client::Broker;
use sfpair_sim::Config;

use crate::harness::{Env, Output, RUN_LIMIT, Running, fast, stored_record, wait_for, wait_until};

const LIMIT: Duration = Duration::from_secs(30);
/// Debian's path of SoftHSM2's module.
const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &str = "246810";

/// Two consecutive ports nobody listens on now: swtpm's server and control ports, which the
/// swtpm TCTI expects at P and P+1. Below Linux's ephemeral range (32768 and up), so once a
/// test stops its swtpm to start it again on the same ports, no outgoing connection of another
/// test can have taken them as its local port meanwhile (the kernel's pick could be).
fn free_ports() -> Option<(u16, u16)> {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let offset = (std::process::id() % 2000) as u16 * 2;
    let n = NEXT.fetch_add(2, std::sync::atomic::Ordering::Relaxed) % 4000;
    let port = 24000 + (offset + n) % 8000;
    let _first = TcpListener::bind(("127.0.0.1", port)).ok()?;
    let _second = TcpListener::bind(("127.0.0.1", port + 1)).ok()?;
    Some((port, port + 1))
}

/// A program the test runs itself (a tool, not sfpair); it must succeed.
fn tool(program: &str, args: &[&str], envs: &[(&str, &Path)]) -> String {
    let mut command = Command::new(program);
    command.args(args);
    for (k, v) in envs {
        command.env(k, v);
    }
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{program} runs (scripts/test installs it): {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One software TPM: a state directory is a board's TPM.
struct Swtpm {
    child: Child,
    port: u16,
}

impl Swtpm {
    fn start(state: &Path) -> Swtpm {
        for _ in 0..20 {
            if let Some(tpm) = free_ports().and_then(|(port, ctrl)| Swtpm::on(state, port, ctrl)) {
                return tpm;
            }
        }
        panic!("swtpm did not start on 127.0.0.1");
    }

    /// A software TPM with `state` on these ports, once it answers; `None` if it did not
    /// start (a port taken meanwhile).
    fn on(state: &Path, port: u16, ctrl: u16) -> Option<Swtpm> {
        std::fs::create_dir_all(state).unwrap();
        {
            let child = Command::new("swtpm")
                .arg("socket")
                .arg("--tpmstate")
                .arg(format!("dir={}", state.display()))
                .args(["--tpm2", "--server"])
                .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
                .arg("--ctrl")
                .arg(format!("type=tcp,port={ctrl},bindaddr=127.0.0.1"))
                .args(["--flags", "not-need-init,startup-clear"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("swtpm runs (scripts/test installs it)");
            let mut tpm = Swtpm { child, port };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Some(tpm);
                }
                if tpm.child.try_wait().unwrap().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            tpm.stop();
            None
        }
    }

    fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A SoftHSM2 token directory with one token (`dev`, user PIN in `pin`) holding an RSA key
/// pair labelled `label`, made inside the token.
struct Hsm {
    conf: PathBuf,
    pin: PathBuf,
    tokens: PathBuf,
}

impl Hsm {
    fn new(dir: &Path, label: &str) -> Hsm {
        let tokens = dir.join("tokens");
        std::fs::create_dir_all(&tokens).unwrap();
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        let env = [("SOFTHSM2_CONF", conf.as_path())];
        let init = ["--init-token", "--free", "--label", "dev", "--pin", PIN];
        tool(
            "softhsm2-util",
            &[&init[..], &["--so-pin", "13579"]].concat(),
            &env,
        );
        let hsm = Hsm {
            pin: dir.join("pin"),
            conf,
            tokens,
        };
        hsm.keypair(label);
        std::fs::write(&hsm.pin, format!("{PIN}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hsm.pin, std::fs::Permissions::from_mode(0o600)).unwrap();
        hsm
    }

    fn pkcs11_tool(&self, args: &[&str]) -> String {
        let base = ["--module", SOFTHSM, "--token-label", "dev"];
        tool(
            "pkcs11-tool",
            &[&base[..], args].concat(),
            &[("SOFTHSM2_CONF", self.conf.as_path())],
        )
    }

    fn keypair(&self, label: &str) {
        self.pkcs11_tool(&[
            "--login",
            "--pin",
            PIN,
            "--keypairgen",
            "--key-type",
            "rsa:2048",
            "--label",
            label,
            "--id",
            "01",
        ]);
    }

    /// The public half as PEM, for the simulator to check assertions with.
    fn public_pem(&self, label: &str, out: &Path) {
        let der = out.with_extension("der");
        self.pkcs11_tool(&[
            "--read-object",
            "--type",
            "pubkey",
            "--label",
            label,
            "-o",
            der.to_str().unwrap(),
        ]);
        tool(
            "openssl",
            &[
                "pkey",
                "-pubin",
                "-inform",
                "DER",
                "-in",
                der.to_str().unwrap(),
                "-out",
                out.to_str().unwrap(),
            ],
            &[],
        );
    }
}

/// How a test board seals: its sealer and what reaches it.
enum Board<'a> {
    /// systemd-creds with this host key file (made at the first seal).
    Creds(PathBuf),
    Tpm(&'a Swtpm),
    Pkcs11(&'a Hsm),
}

impl Board<'_> {
    fn seal(&self) -> String {
        match self {
            Board::Creds(_) => "systemd-creds".into(),
            Board::Tpm(_) => "tpm2".into(),
            Board::Pkcs11(_) => "pkcs11:token=dev;object=sfpair".into(),
        }
    }

    /// `sfpair args` on this board (the settings through the environment; no --seal).
    fn command(&self, env: &Env, args: &[&str]) -> Command {
        let mut c = env.command(args);
        // The tools' scratch files go to the test's directory, not the machine's /tmp.
        c.env("TMPDIR", &env.scratch.0);
        match self {
            Board::Creds(secret) => {
                c.env("SYSTEMD_CREDENTIAL_SECRET", secret);
            }
            Board::Tpm(tpm) => {
                c.env("SFPAIR_TPM", tpm.tcti());
            }
            Board::Pkcs11(hsm) => {
                c.env("SOFTHSM2_CONF", &hsm.conf)
                    .env("SFPAIR_PKCS11_MODULE", SOFTHSM)
                    .env("SFPAIR_PKCS11_PIN_FILE", &hsm.pin);
            }
        }
        c
    }

    fn run(&self, env: &Env, args: &[&str]) -> Output {
        Running::spawn(self.command(env, args)).finish(RUN_LIMIT)
    }

    /// Pairs through the device flow, sealed with this board's sealer.
    fn pair(&self, env: &Env, extra: &[&str]) -> Output {
        let seal = self.seal();
        let mut args = vec!["pair", "--json", "--seal", seal.as_str()];
        args.extend_from_slice(extra);
        let mut run = Running::spawn(self.command(env, &args));
        let code = run.event("code", RUN_LIMIT);
        env.approve(code["verification_uri_complete"].as_str().unwrap());
        let out = run.finish(RUN_LIMIT);
        assert_eq!(out.code(), 0, "{out:?}");
        out
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// No token, device code or other secret the simulator issued is in `bytes`.
fn holds_no_secret(env: &Env, bytes: &[u8]) {
    let secrets = env.sim().issued_secrets();
    assert!(secrets.len() >= 3, "tokens were issued: {}", secrets.len());
    for secret in secrets {
        assert!(!contains(bytes, &secret), "a secret in the sealed store");
    }
}

fn sealer_of(path: &Path) -> Option<String> {
    sfpair::store::record::sealer_of(&std::fs::read(path).unwrap())
}

fn rotating() -> Config {
    Config {
        rotate_refresh_tokens: true,
        ..fast()
    }
}

/// `sfpair run --socket` on `board`, serving; the socket's path.
fn serve(board: &Board, env: &Env, extra: &[&str]) -> (Running, PathBuf) {
    let socket = env.scratch.0.join("run.sock");
    let mut args = vec!["run", "--socket", socket.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let running = Running::spawn(board.command(env, &args));
    wait_for(LIMIT, "run serves", || {
        std::os::unix::net::UnixStream::connect(&socket).is_ok()
    });
    (running, socket)
}

/// Pair sealed, `token` (a rotation: stored sealed, with the data key in memory), `run` hands
/// out a token, and the store's bytes hold no token the simulator ever issued.
fn pairs_and_works_sealed(board: &Board, env: &Env) {
    board.pair(env, &[]);
    let path = env.token_path();
    let paired = std::fs::read(&path).unwrap();
    assert_eq!(paired[4], 3, "a sealed record");
    assert_eq!(sealer_of(&path), Some(board.seal()));
    let token = board.run(env, &["token"]);
    assert_eq!(token.code(), 0, "{token:?}");
    let rotated = std::fs::read(&path).unwrap();
    assert_ne!(rotated, paired, "the rotated token was stored");
    assert_eq!(sealer_of(&path), Some(board.seal()), "still sealed");
    let (running, socket) = serve(board, env, &[]);
    let session = Broker::new(&socket).access_token(None).unwrap();
    assert!(!session.access_token.expose().is_empty());
    running.terminate();
    assert_eq!(running.finish(LIMIT).code(), 0);
    holds_no_secret(env, &std::fs::read(&path).unwrap());
    holds_no_secret(env, &paired);
    holds_no_secret(env, &rotated);
    assert!(
        !contains(&rotated, token.stdout.trim()),
        "nor the access token"
    );
    // No scratch file of the tools is left behind.
    let left: Vec<_> = std::fs::read_dir(&env.scratch.0)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("sfpair-tpm2-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn systemd_creds_pairs_refreshes_and_serves_with_nothing_secret_in_the_store() {
    let env = Env::start(rotating());
    let board = Board::Creds(env.scratch.0.join("host-1.secret"));
    pairs_and_works_sealed(&board, &env);
}

#[test]
fn tpm2_pairs_refreshes_and_serves_with_nothing_secret_in_the_store() {
    let env = Env::start(rotating());
    let tpm = Swtpm::start(&env.scratch.0.join("tpm-a"));
    pairs_and_works_sealed(&Board::Tpm(&tpm), &env);
}

#[test]
fn pkcs11_pairs_refreshes_and_serves_with_nothing_secret_in_the_store() {
    let env = Env::start(rotating());
    let hsm = Hsm::new(&env.scratch.0.join("hsm"), "sfpair");
    pairs_and_works_sealed(&Board::Pkcs11(&hsm), &env);
}

/// The stored pairing is a layer of the settings (docs/options.md) when it is sealed too: with
/// no org or app given anywhere, `token` and `run` take them from the sealed record, opened
/// with the sealer's settings alone, and a value that contradicts it is said once.
#[test]
fn a_sealed_pairing_gives_the_org_and_the_app_to_the_commands_that_stand_on_it() {
    let env = Env::start(fast());
    let tpm = Swtpm::start(&env.scratch.0.join("tpm"));
    let board = Board::Tpm(&tpm);
    board.pair(&env, &[]);
    let bare = |args: &[&str]| {
        let mut command = board.command(&env, args);
        command
            .env_remove("SFPAIR_LOGIN_URL")
            .env_remove("SFPAIR_CLIENT_ID");
        command
    };
    let other = "https://test.salesforce.com";
    let out = Running::spawn(bare(&["token", "--login-url", other])).finish(RUN_LIMIT);
    assert_eq!(out.code(), 0, "the sealed pairing is used: {out:?}");
    let said = format!("--login-url {other} is not the one this device paired with");
    assert_eq!(out.stderr.matches(&said).count(), 1, "{}", out.stderr);
    let socket = env.scratch.0.join("run.sock");
    let running = Running::spawn(bare(&["run", "--socket", socket.to_str().unwrap()]));
    let broker = Broker::new(&socket);
    wait_for(RECHECK, "run serves the sealed pairing", || {
        broker.health().is_ok_and(|h| h["state"] == "paired")
    });
    running.terminate();
    let out = running.finish(LIMIT);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(!out.stderr.contains("no client id"), "{}", out.stderr);
}

fn refused_with_exit_6(out: &Output, needle: &str) {
    assert_eq!(out.code(), 6, "{out:?}");
    assert!(
        out.stderr.contains("cannot be opened here"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains(needle), "{needle}: {}", out.stderr);
    assert!(
        out.stderr.contains("putting the seal back"),
        "{}",
        out.stderr
    );
}

/// The doctor's store check, which must say what the commands say.
fn doctor_store(board: &Board, env: &Env) -> (String, String) {
    let out = board.run(env, &["doctor", "--json"]);
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let check = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "store")
        .unwrap()
        .clone();
    (
        check["status"].as_str().unwrap().into(),
        check["detail"].as_str().unwrap().into(),
    )
}

#[test]
fn a_store_on_another_tpm_is_refused_and_kept_and_its_own_tpm_state_opens_it() {
    let env = Env::start(fast());
    let scratch = &env.scratch.0;
    let mut first = Swtpm::start(&scratch.join("tpm-a"));
    let board_a = Board::Tpm(&first);
    board_a.pair(&env, &[]);
    let sealed = std::fs::read(env.token_path()).unwrap();
    // The same store on another board (another TPM): exit 6, the reason, nothing changed;
    // status, doctor and a pairing without --force say the same.
    let second = Swtpm::start(&scratch.join("tpm-b"));
    let board_b = Board::Tpm(&second);
    let out = board_b.run(&env, &["token"]);
    refused_with_exit_6(&out, "this TPM did not seal it");
    assert!(
        !out.stdout.contains("00D"),
        "no token printed: {}",
        out.stdout
    );
    refused_with_exit_6(&board_b.run(&env, &["status"]), "another board");
    let (status, detail) = doctor_store(&board_b, &env);
    assert_eq!(status, "failed");
    assert!(detail.contains("this TPM did not seal it"), "{detail}");
    refused_with_exit_6(&board_b.run(&env, &["pair"]), "another board");
    refused_with_exit_6(&board_b.run(&env, &["forget"]), "another board");
    assert_eq!(std::fs::read(env.token_path()).unwrap(), sealed, "kept");
    // The first board still works.
    assert_eq!(board_a.run(&env, &["token"]).code(), 0);
    let (status, detail) = doctor_store(&board_a, &env);
    assert_eq!(status, "ok", "{detail}");
    assert!(detail.contains("sealed with tpm2"), "{detail}");
    // The first TPM's state put back (on a TPM of its own): it opens again.
    first.stop();
    let restored = scratch.join("tpm-a-restored");
    std::fs::create_dir_all(&restored).unwrap();
    for entry in std::fs::read_dir(scratch.join("tpm-a")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), restored.join(entry.file_name())).unwrap();
    }
    let back = Swtpm::start(&restored);
    let board_back = Board::Tpm(&back);
    assert_eq!(board_back.run(&env, &["token"]).code(), 0);
    // That TPM cleared: its seed is new, and the record says so.
    tool("tpm2_clear", &["-T", &back.tcti()], &[]);
    let out = board_back.run(&env, &["status"]);
    refused_with_exit_6(&out, "cleared");
    // A new pairing, asked for, replaces it: sealed under the TPM's new seed.
    board_back.pair(&env, &["--force"]);
    assert_eq!(board_back.run(&env, &["token"]).code(), 0);
}

#[test]
fn a_missing_or_foreign_pkcs11_token_is_refused_and_kept() {
    let env = Env::start(fast());
    let hsm = Hsm::new(&env.scratch.0.join("hsm"), "sfpair");
    let board = Board::Pkcs11(&hsm);
    board.pair(&env, &[]);
    let sealed = std::fs::read(env.token_path()).unwrap();
    // The token unplugged (its directory gone).
    let away = env.scratch.0.join("hsm/tokens-away");
    std::fs::rename(&hsm.tokens, &away).unwrap();
    std::fs::create_dir_all(&hsm.tokens).unwrap();
    refused_with_exit_6(&board.run(&env, &["token"]), "is not present");
    std::fs::remove_dir(&hsm.tokens).unwrap();
    std::fs::rename(&away, &hsm.tokens).unwrap();
    assert_eq!(board.run(&env, &["token"]).code(), 0, "plugged back in");
    // Another board's token, with a key of the same label.
    let other = Hsm::new(&env.scratch.0.join("hsm-2"), "sfpair");
    refused_with_exit_6(
        &Board::Pkcs11(&other).run(&env, &["token"]),
        "another token",
    );
    // A wrong PIN says so (and is not shown).
    std::fs::write(&hsm.pin, "999999\n").unwrap();
    let out = board.run(&env, &["token"]);
    assert_eq!(out.code(), 6, "{out:?}");
    assert!(out.stderr.contains("refused the PIN"), "{}", out.stderr);
    assert!(!out.stderr.contains("999999"));
    std::fs::write(&hsm.pin, format!("{PIN}\n")).unwrap();
    let _ = sealed;
}

#[test]
fn systemd_creds_opens_from_the_units_credential_and_not_with_another_host_key() {
    let env = Env::start(fast());
    let host = env.scratch.0.join("host-1.secret");
    let board = Board::Creds(host.clone());
    board.pair(&env, &[]);
    let sealed = std::fs::read(env.token_path()).unwrap();
    // Another machine's host key: refused, kept.
    let other = Board::Creds(env.scratch.0.join("host-2.secret"));
    let input = env.scratch.0.join("anything");
    std::fs::write(&input, "made only to create the second host key").unwrap();
    tool(
        "systemd-creds",
        &[
            "encrypt",
            "--with-key=host",
            input.to_str().unwrap(),
            env.scratch.0.join("anything.cred").to_str().unwrap(),
        ],
        &[(
            "SYSTEMD_CREDENTIAL_SECRET",
            &env.scratch.0.join("host-2.secret"),
        )],
    );
    refused_with_exit_6(&other.run(&env, &["token"]), "sealed on another machine");
    assert_eq!(std::fs::read(env.token_path()).unwrap(), sealed);
    // A service whose unit passes the credential sfpair wrote beside the store
    // (LoadCredentialEncrypted=sfpair-data-key:PATH): the service manager decrypts it into
    // $CREDENTIALS_DIRECTORY, as systemd-creds does here; sfpair needs no host key then.
    let h = sfpair::store::frame::decode(&sealed, b"SFPR", 8192, 3).unwrap();
    let payload = &sealed[16..16 + h.len];
    let blob = sfpair::store::sealed::Sealed::parse(payload)
        .unwrap()
        .key
        .to_vec();
    let cred_file = env.token_path().with_file_name("sfpair-data-key.cred");
    assert_eq!(
        std::fs::read(&cred_file).unwrap(),
        blob,
        "the unit's credential"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&cred_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let creds = env.scratch.0.join("credentials");
    std::fs::create_dir_all(&creds).unwrap();
    tool(
        "systemd-creds",
        &[
            "decrypt",
            "--name=sfpair-data-key",
            cred_file.to_str().unwrap(),
            creds.join("sfpair-data-key").to_str().unwrap(),
        ],
        &[("SYSTEMD_CREDENTIAL_SECRET", &host)],
    );
    // As the service manager passes it: 0400, to the service's user (files.rs refuses more).
    let passed = creds.join("sfpair-data-key");
    std::fs::set_permissions(&passed, std::os::unix::fs::PermissionsExt::from_mode(0o400)).unwrap();
    let mut c = other.command(&env, &["token"]);
    c.env("CREDENTIALS_DIRECTORY", &creds);
    let out = Running::spawn(c).finish(RUN_LIMIT);
    assert_eq!(out.code(), 0, "{out:?}");
}

#[test]
fn seal_and_unseal_move_an_existing_pairing_and_keep_it() {
    let env = Env::start(fast());
    env.pair_approved();
    let plain = stored_record(&env.token_path());
    let tpm = Swtpm::start(&env.scratch.0.join("tpm"));
    let board = Board::Tpm(&tpm);
    let out = board.run(&env, &["seal"]);
    assert_eq!(out.code(), 2, "seal needs --seal: {out:?}");
    let out = board.run(&env, &["seal", "--seal", "tpm2"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stdout.contains("sealed with tpm2 now"),
        "{}",
        out.stdout
    );
    assert_eq!(sealer_of(&env.token_path()).as_deref(), Some("tpm2"));
    holds_no_secret(&env, &std::fs::read(env.token_path()).unwrap());
    let out = board.run(&env, &["seal", "--seal", "tpm2"]);
    assert!(out.stdout.contains("already sealed"), "{out:?}");
    // Opened without --seal (the record names its sealer): the same pairing.
    assert_eq!(board.run(&env, &["status"]).code(), 0);
    let out = board.run(&env, &["unseal"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(sealer_of(&env.token_path()), None);
    assert_eq!(
        stored_record(&env.token_path()),
        plain,
        "the same pairing, plain again"
    );
    assert_eq!(env.run(&["token"]).code(), 0);
    // Nothing to seal: exit 5.
    let empty = Env::start(fast());
    assert_eq!(board.run(&empty, &["seal", "--seal", "tpm2"]).code(), 5);
}

#[test]
fn run_with_a_seal_it_cannot_open_reports_and_waits_and_picks_it_up_once_it_is_back() {
    let env = Env::start(fast());
    let state = env.scratch.0.join("tpm");
    let mut tpm = Swtpm::start(&state);
    let port = tpm.port;
    let mut command = Board::Tpm(&tpm).command(&env, &[]);
    Board::Tpm(&tpm).pair(&env, &[]);
    // The TPM goes away (its daemon stopped): the same board, no TPM to open the seal.
    tpm.stop();
    let socket = env.scratch.0.join("run.sock");
    command.args(["run", "--socket", socket.to_str().unwrap(), "--json"]);
    let mut running = Running::spawn(command);
    let broker = Broker::new(&socket);
    let health = wait_until(RECHECK, "health says repair_needed", || {
        broker
            .health()
            .ok()
            .filter(|h| h["state"] == "repair_needed")
    });
    assert_eq!(health["cause"], "seal_unopened", "{health}");
    assert!(
        health["store"]
            .as_str()
            .unwrap()
            .contains("there is no TPM at"),
        "health says what the commands say: {health}"
    );
    let refused = broker.access_token(None).unwrap_err();
    assert_eq!(refused.exit_code(), 6, "{refused}");
    // Still up, not pairing over it (--repair prompt is the default), and nothing changed.
    std::thread::sleep(Duration::from_secs(2));
    assert!(!running.exited());
    let requests = env.requests();
    assert!(
        requests.iter().all(|r| !r.contains("/devicecode")),
        "{requests:?}"
    );
    // The TPM comes back: run finds it on its own (rechecks back off from 10 s).
    let _back = Swtpm::on(&state, port, port + 1).expect("swtpm starts again on its ports");
    wait_for(RECHECK, "run opens the seal again", || {
        broker.health().is_ok_and(|h| h["state"] == "paired")
    });
    // The broker answers the refusal above again for FAILURE_HOLD (5 s) without a new try: on
    // a loaded machine the TPM can be back within that.
    let hold = sfpair::broker::FAILURE_HOLD + Duration::from_secs(1);
    wait_for(
        hold,
        "a token once the refusal is no longer held",
        || match broker.access_token(None) {
            Ok(_) => true,
            Err(e) => {
                assert_eq!(e.exit_code(), 6, "only the held refusal: {e}");
                false
            }
        },
    );
    running.terminate();
    assert_eq!(running.finish(LIMIT).code(), 0);
}

/// How long `run` may take to notice a seal it cannot open, or one back again: its rechecks
/// back off from 10 s, so a minute holds its first rounds.
const RECHECK: Duration = Duration::from_secs(60);

#[test]
fn jwt_bearer_with_the_key_in_softhsm_pairs_and_asserts_again_after_expiry() {
    let scratch = crate::harness::Scratch::new();
    let hsm = Hsm::new(&scratch.0.join("hsm"), "device");
    let public = scratch.0.join("device.pub");
    hsm.public_pem("device", &public);
    let mut config = fast();
    config
        .headless
        .apply(&format!("jwt-key={}", public.display()))
        .unwrap();
    let env = Env::start(config);
    let board = Board::Pkcs11(&hsm);
    let uri = "pkcs11:token=dev;object=device";
    let out = board.run(
        &env,
        &[
            "pair",
            "--flow",
            "jwt-bearer",
            "--key-file",
            uri,
            "--username",
            "gw@acme.example",
        ],
    );
    assert_eq!(out.code(), 0, "{out:?}");
    let record = stored_record(&env.token_path());
    assert_eq!(
        record.grant.headless().map(|_| record.grant.name()),
        Some("jwt-bearer")
    );
    let grants = |env: &Env| {
        env.requests()
            .iter()
            .filter(|l| l.starts_with("POST /services/oauth2/token jwt-bearer 200"))
            .count()
    };
    assert_eq!(grants(&env), 1);
    // A long-running agent: a session, the server expires it, the next one is asserted again
    // (signed inside the token once more).
    let (running, socket) = serve(&board, &env, &[]);
    let broker = Broker::new(&socket);
    let first = broker.access_token(None).unwrap();
    env.sim().expire_sessions();
    let again = broker.access_token(Some(first.generation)).unwrap();
    assert_ne!(again.access_token.expose(), first.access_token.expose());
    assert_eq!(
        grants(&env),
        3,
        "enrolment, run's first session, the one after expiry"
    );
    // The key is the token's: never extractable, and no file the process maps holds it.
    let objects = hsm.pkcs11_tool(&["--login", "--pin", PIN, "--list-objects"]);
    assert!(objects.contains("never extractable"), "{objects}");
    let pid = running_pid(&socket);
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    for path in maps.split_whitespace().filter(|w| w.starts_with('/')) {
        assert!(
            !Path::new(path).starts_with(&hsm.tokens),
            "a token file is mapped: {path}"
        );
        assert!(!path.ends_with(".pem") && !path.ends_with(".key"), "{path}");
    }
    running.terminate();
    assert_eq!(running.finish(LIMIT).code(), 0);
}

/// The pid of the `sfpair run` serving `socket` (its peer credentials, as the broker reads
/// its clients').
fn running_pid(socket: &Path) -> i32 {
    let stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
    sfpair::broker::peer::peer_of(&stream).unwrap().pid
}

/// `kill -9` of `token` (which stores a rotated token) and of `seal`/`unseal` at spread-out
/// moments: after each, the store opens and holds a pairing; and a sealed write (`token` on a
/// sealed store, `seal`) cut short leaves no token in the clear in its temporary file. (An
/// `unseal` cut short may: it was writing the plain record it was asked for.)
#[test]
fn kill_9_at_any_moment_of_a_sealed_write_leaves_a_store_that_opens() {
    let env = Env::start(rotating());
    let tpm = Swtpm::start(&env.scratch.0.join("tpm"));
    let board = Board::Tpm(&tpm);
    board.pair(&env, &[]);
    let temp = env.token_path().with_file_name(".token.tmp");
    let mut opened = 0;
    for round in 0..24u64 {
        let args: &[&str] = match round % 3 {
            0 => &["seal", "--seal", "tpm2"],
            1 => &["token"],
            _ => &["unseal"],
        };
        let sealed_write = args[0] == "seal" || sealer_of(&env.token_path()).is_some();
        let sealed_write = sealed_write && args[0] != "unseal";
        // What an earlier round left there is that round's business.
        let stale = std::fs::read(&temp).ok();
        let mut child = board.command(&env, args).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(15 * round));
        let _ = child.kill();
        let _ = child.wait();
        let status = board.run(&env, &["status"]);
        assert_eq!(status.code(), 0, "round {round}: {status:?}");
        let left = std::fs::read(&temp).ok();
        if let Some(bytes) = left.filter(|b| sealed_write && Some(b) != stale.as_ref()) {
            holds_no_secret(&env, &bytes);
        }
        opened += 1;
    }
    assert_eq!(opened, 24);
}
