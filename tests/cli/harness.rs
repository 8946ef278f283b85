//! Test harness: a simulator per test, a scratch directory, the `sfpair` binary with a bounded
//! wait, and an HTTPS client for the approval page. Every wait has a deadline; a child that
//! outlives it is killed and the test fails with its output.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use sfpair_sim::{Config, Sim};

/// The consumer key the simulator accepts by default.
pub const CLIENT_ID: &str = "3MVG9sfpair.sim.consumer.key";
/// Upper bound for any single sfpair run in these tests.
pub const RUN_LIMIT: Duration = Duration::from_secs(60);

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A simulator configuration that keeps tests fast: polls every second. Its org also has
/// the custom object that examples/firmware.rs writes (sim/schemas/example-firmware.json):
/// the simulator refuses undeclared objects and fields, as Salesforce does.
pub fn fast() -> Config {
    let schema = include_str!("../../sim/schemas/example-firmware.json");
    Config {
        interval: 1,
        schema: sfpair_sim::Schema::from_json(schema).expect("the example's schema parses"),
        ..Config::default()
    }
}

/// A scratch directory removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new() -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "sfpair-it-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One simulator, one scratch directory, one store.
pub struct Env {
    pub sim: Option<Sim>,
    pub base_url: String,
    pub scratch: Scratch,
    pub ca: PathBuf,
}

/// What a finished run printed.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }

    /// The JSON lines on stdout.
    pub fn events(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
            .collect()
    }
}

impl Env {
    pub fn start(config: Config) -> Env {
        let sim = Sim::start(config).expect("the simulator starts");
        let scratch = Scratch::new();
        let ca = scratch.0.join("sim-ca.pem");
        sim.write_ca(&ca).unwrap();
        Env {
            base_url: sim.base_url(),
            sim: Some(sim),
            scratch,
            ca,
        }
    }

    pub fn sim(&self) -> &Sim {
        self.sim.as_ref().expect("simulator running")
    }

    /// Stops the simulator, as if the network went away.
    pub fn stop_sim(&mut self) {
        if let Some(sim) = self.sim.take() {
            sim.shutdown();
        }
    }

    pub fn token_path(&self) -> PathBuf {
        self.scratch.0.join("state/token")
    }

    /// `sfpair` with a clean environment pointing at this simulator and store.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sfpair"));
        c.env_clear()
            .env("SFPAIR_LOGIN_URL", &self.base_url)
            .env("SFPAIR_CLIENT_ID", CLIENT_ID)
            .env("SFPAIR_CA_FILE", &self.ca)
            .env(
                "SFPAIR_STORE",
                format!("file:{}", self.token_path().display()),
            )
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// Runs `sfpair args` to completion (bounded by RUN_LIMIT).
    pub fn run(&self, args: &[&str]) -> Output {
        Running::spawn(self.command(args)).finish(RUN_LIMIT)
    }

    /// `program args…` with the environment and pipes of `sfpair` (from [`Env::command`]):
    /// for running sfpair under a wrapper (`unshare`, `script`) that is given its command line.
    pub fn wrapped(sfpair: &Command, program: &str, args: &[&std::ffi::OsStr]) -> Command {
        let mut c = Command::new(program);
        c.args(args).env_clear();
        for (k, v) in sfpair.get_envs() {
            if let Some(v) = v {
                c.env(k, v);
            }
        }
        c.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    pub fn spawn(&self, args: &[&str]) -> Running {
        Running::spawn(self.command(args))
    }

    /// An HTTPS client that trusts the simulator's CA, like a technician's phone would.
    pub fn browser(&self) -> ureq::Agent {
        let pem = std::fs::read(&self.ca).unwrap();
        let certs: Vec<_> = ureq::tls::parse_pem(&pem)
            .filter_map(|i| match i {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
                    .build(),
            )
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .new_agent()
    }

    /// Opens the one-tap URL (as scanned from the QR) and presses a button on the page.
    pub fn decide(&self, one_tap_url: &str, action: &str) -> (u16, String) {
        let browser = self.browser();
        let mut page = browser
            .get(one_tap_url)
            .call()
            .expect("approval page loads");
        assert_eq!(page.status().as_u16(), 200);
        let html = page.body_mut().read_to_string().unwrap();
        let user_code = one_tap_url
            .split("user_code=")
            .nth(1)
            .map(|c| c.split('&').next().unwrap().to_string())
            .expect("the one-tap URL carries the user code");
        assert!(html.contains(&user_code), "the page shows the code: {html}");
        let path = one_tap_url.split('?').next().unwrap();
        let mut reply = browser
            .post(path)
            .send_form([("user_code", user_code.as_str()), ("action", action)])
            .expect("the form posts");
        let status = reply.status().as_u16();
        (status, reply.body_mut().read_to_string().unwrap())
    }

    /// Approves as a technician: open the QR's URL and press Approve.
    pub fn approve(&self, one_tap_url: &str) {
        let (status, html) = self.decide(one_tap_url, "approve");
        assert_eq!(status, 200, "{html}");
    }

    /// Pairs (JSON mode), approving the first code; returns the run's output.
    pub fn pair_approved(&self) -> Output {
        let mut run = self.spawn(&["pair", "--json"]);
        let code = run.event("code", RUN_LIMIT);
        self.approve(code["verification_uri_complete"].as_str().unwrap());
        let out = run.finish(RUN_LIMIT);
        assert_eq!(out.code(), 0, "{out:?}");
        out
    }

    /// Every request the simulator saw, as `METHOD path grant status` lines.
    pub fn requests(&self) -> Vec<String> {
        self.sim()
            .log()
            .iter()
            .map(|e| {
                format!(
                    "{} {} {} {}",
                    e.method,
                    e.path,
                    e.grant.as_deref().unwrap_or("-"),
                    e.status
                )
            })
            .collect()
    }
}

/// A running sfpair whose stdout lines arrive on a channel.
pub struct Running {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
    /// Says when the stderr reader reached the end of the pipe.
    stderr_done: Receiver<()>,
}

impl Running {
    pub fn spawn(mut command: Command) -> Running {
        let mut child = command.spawn().expect("sfpair starts");
        let (tx, lines) = channel();
        let stdout = child.stdout.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let mut err = child.stderr.take().unwrap();
        let (done, stderr_done) = channel();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
            let _ = done.send(());
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
            stderr,
            stderr_done,
        }
    }

    /// Waits for the next JSON event named `name` (skipping others), within `limit`.
    pub fn event(&mut self, name: &str, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if let Ok(v) = serde_json::from_str::<Value>(&line)
                        && v["event"] == name
                    {
                        return v;
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    panic!(
                        "no '{name}' event within {limit:?}; stdout so far: {:?}; stderr: {}",
                        self.seen,
                        self.stderr.lock().unwrap()
                    );
                }
            }
        }
    }

    /// The next line on standard output, within `limit`.
    pub fn line(&mut self, limit: Duration) -> String {
        match self.lines.recv_timeout(limit) {
            Ok(line) => {
                self.seen.push(line.clone());
                line
            }
            Err(_) => {
                let _ = self.child.kill();
                panic!(
                    "no line within {limit:?}; stdout so far: {:?}; stderr: {}",
                    self.seen,
                    self.stderr.lock().unwrap()
                );
            }
        }
    }

    /// What the process wrote to standard error so far.
    pub fn stderr_so_far(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Whether the process has exited (its status is kept for `finish`).
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Asks the process to stop, as systemd does (SIGTERM).
    pub fn terminate(&self) {
        self.signal(libc::SIGTERM);
    }

    /// Sends `signal` (SIGUSR1: a person asks `sfpair run` for a new pairing).
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) on our own child's pid, which is not reaped until `finish`.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, signal);
        }
    }

    /// Waits for the process to exit (killing it after `limit`) and collects its output.
    pub fn finish(mut self, limit: Duration) -> Output {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "sfpair did not exit within {limit:?}; stderr: {}",
                    self.stderr.lock().unwrap()
                );
            }
            thread::sleep(Duration::from_millis(20));
        };
        // The reader threads end at EOF, right after exit: wait for that end, not for a time
        // (a loaded machine may take seconds to run them). The channel closes when the stdout
        // reader ends, so a long limit costs nothing.
        let mut stdout = self.seen.join("\n");
        while let Ok(line) = self.lines.recv_timeout(limit) {
            if !stdout.is_empty() {
                stdout.push('\n');
            }
            stdout.push_str(&line);
        }
        let ended = self.stderr_done.recv_timeout(limit).is_ok();
        let stderr = self.stderr.lock().unwrap().clone();
        assert!(ended, "sfpair's stderr did not end; so far: {stderr}");
        assert_clean_stderr(&stderr);
        Output {
            status,
            stdout,
            stderr,
        }
    }
}

/// Waits for a condition, not for a time: polls `ready` every 20 ms until it gives a value,
/// and fails with `what` once `limit` has passed (a loaded machine makes things late, never
/// out of order, so a deadline only has to be generous).
#[track_caller]
pub fn wait_until<T>(limit: Duration, what: &str, mut ready: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = ready() {
            return value;
        }
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `ready` became true within `limit` (polled every 20 ms): for a caller whose failure
/// message needs what it sees at the deadline.
pub fn within(limit: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if ready() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// [`wait_until`] for a condition that carries no value.
#[track_caller]
pub fn wait_for(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    wait_until(limit, what, || ready().then_some(()))
}

/// Every line the binary writes to stderr is a message for people (a log line, the final
/// error, the fallback console's prose) and must pass `sfpair::text::is_clean`: no double
/// spaces, no control characters. The QR drawing is not a message: its lines (half blocks) are
/// left out.
pub fn assert_clean_stderr(stderr: &str) {
    for line in stderr.lines() {
        if is_qr_drawing(line) {
            continue;
        }
        assert!(
            sfpair::text::is_clean(line),
            "a message with a hole or a control character on stderr: {line:?}\nstderr: {stderr}"
        );
    }
}

/// A line of the console QR: half blocks and spaces, after its indentation.
fn is_qr_drawing(line: &str) -> bool {
    let body = line.trim();
    !body.is_empty() && body.chars().all(|c| matches!(c, '█' | '▀' | '▄' | ' '))
}

/// Decodes a stored token file with the library's codec.
pub fn stored_record(path: &Path) -> sfpair::store::Record {
    let bytes = std::fs::read(path).expect("a token file");
    sfpair::store::record::decode(&bytes)
        .expect("a valid record")
        .record
}
