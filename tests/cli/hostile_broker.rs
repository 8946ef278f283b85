//! Issue 16, item 7: idle and trickling connections from an allowed user must not starve the
//! others. (How long a good client waits is measured by scripts/bench-broker, not here.)

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Env, fast};

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ask(socket: &std::path::Path) -> String {
    let mut s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"{\"get\":\"access_token\"}\n").unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text
}

#[test]
fn a_good_client_gets_its_token_while_68_idle_connections_are_open() {
    let env = Env::start(fast());
    env.pair_approved();
    let socket = env.scratch.0.join("token.sock");
    let child = env
        .command(&["serve", "--socket", socket.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _serve = Serve(child);
    let start = Instant::now();
    while !socket.exists() {
        assert!(start.elapsed() < Duration::from_secs(20), "no socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(ask(&socket).contains("access_token"));
    let idle: Vec<UnixStream> = (0..68)
        .map(|_| UnixStream::connect(&socket).unwrap())
        .collect();
    // Every good request is answered with a token; the old broker told them `busy` (its
    // four workers and 64 queue places were all held by the idle connections).
    for _ in 0..5 {
        let text = ask(&socket);
        assert!(text.contains("\"access_token\""), "{text}");
    }
    drop(idle);
}

#[test]
fn serve_on_a_fifo_store_answers_with_the_error_and_stops_on_sigterm() {
    let env = Env::start(fast());
    let fifo = env.scratch.0.join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let socket = env.scratch.0.join("token.sock");
    let store = format!("file:{}", fifo.display());
    let child = env
        .command(&[
            "serve",
            "--socket",
            socket.to_str().unwrap(),
            "--store",
            &store,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut serve = Serve(child);
    let start = Instant::now();
    while !socket.exists() {
        assert!(start.elapsed() < Duration::from_secs(20), "no socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The old broker blocked opening the FIFO, holding the agent's lock for ever.
    let text = ask(&socket);
    assert!(
        text.contains("a FIFO") && text.contains("\"exit_code\":2"),
        "{text}"
    );
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(serve.0.id() as i32, libc::SIGTERM) };
    let start = Instant::now();
    loop {
        if let Some(status) = serve.0.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "serve ignored SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
