//! Idle and trickling connections from an allowed user must not starve the
//! others. (How long a good client waits is measured by scripts/bench-broker, not here.)

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Env, RUN_LIMIT, fast};

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

/// The socket attacker: as another user (nobody) in a forked child: it waits for
/// the broker's socket to appear in `dir`, then renames a symbolic link to `victim` over it,
/// so that a mode or group set by path afterwards lands on `victim`. Raw system calls only
/// (the child of a threaded process), at C speed; it stops after `secs` or when killed.
struct Renamer(libc::pid_t);

impl Renamer {
    fn start(dir: &std::path::Path, victim: &std::path::Path, secs: i64) -> Renamer {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let c = |p: &std::path::Path| CString::new(p.as_os_str().as_bytes()).unwrap();
        let (dir, victim) = (c(dir), c(victim));
        let (sock, tmp) = (c("token.sock".as_ref()), c(".swap".as_ref()));
        // SAFETY: the child calls only async-signal-safe system calls on buffers made before
        // the fork, and leaves with _exit.
        unsafe {
            let pid = libc::fork();
            assert!(pid >= 0, "fork");
            if pid == 0 {
                if libc::setgid(65534) != 0 || libc::setuid(65534) != 0 {
                    libc::_exit(3);
                }
                // Relative to the directory, with the link made ahead: the swap must land
                // within microseconds of the bind (it did, for 40% of the old broker's starts).
                let at = libc::open(dir.as_ptr(), libc::O_DIRECTORY | libc::O_RDONLY);
                libc::symlinkat(victim.as_ptr(), at, tmp.as_ptr());
                let mut now: libc::timespec = std::mem::zeroed();
                libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now);
                let end = now.tv_sec + secs;
                let mut st: libc::stat = std::mem::zeroed();
                while now.tv_sec < end {
                    if libc::fstatat(at, sock.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) == 0
                        && st.st_mode & libc::S_IFMT == libc::S_IFSOCK
                    {
                        libc::renameat(at, tmp.as_ptr(), at, sock.as_ptr());
                        libc::symlinkat(victim.as_ptr(), at, tmp.as_ptr());
                    }
                    libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now);
                }
                libc::_exit(0);
            }
            Renamer(pid)
        }
    }
}

impl Drop for Renamer {
    fn drop(&mut self) {
        // SAFETY: our own child, reaped once.
        unsafe {
            libc::kill(self.0, libc::SIGKILL);
            libc::waitpid(self.0, std::ptr::null_mut(), 0);
        }
    }
}

/// Starts `sfpair serve --socket-group 65534` in `dir` again and again while a [`Renamer`]
/// runs, then says how each start ended: (exit code or "served", stderr).
fn starts_under_attack(
    env: &Env,
    dir: &std::path::Path,
    victim: &std::path::Path,
    rounds: usize,
) -> Vec<(String, String)> {
    let attacker = Renamer::start(dir, victim, 120);
    let socket = dir.join("token.sock");
    let mut ends = Vec::new();
    for _ in 0..rounds {
        let mut running = env.spawn(&[
            "serve",
            "--socket",
            socket.to_str().unwrap(),
            "--socket-group",
            "65534",
        ]);
        // Until it serves (its socket answers) or exits, however slow a loaded machine makes
        // either: the old broker lost the race within microseconds of its bind.
        let mut served = false;
        crate::harness::wait_for(RUN_LIMIT, "serve listens or exits", || {
            served = !running.exited() && UnixStream::connect(&socket).is_ok();
            served || running.exited()
        });
        running.terminate();
        let out = running.finish(Duration::from_secs(20));
        let end = if served {
            "served".to_string()
        } else {
            out.code().to_string()
        };
        ends.push((end, out.stderr));
        // Leftovers of a lost race (a link where the socket was) would refuse the next start.
        let _ = std::fs::remove_file(&socket);
    }
    drop(attacker);
    ends
}

/// The old broker set the socket's mode and group by path after `bind()`, so
/// in a directory another user could write (not sticky), renaming a link over the new socket
/// handed any root-owned file to the socket's group (52 of 71 starts). Now such a directory
/// is refused before anything is created, and in a directory that is safe the socket appears
/// with its mode and group already set. Needs root to run the attacker as another user.
#[test]
#[ignore = "needs root: runs the attacker as uid 65534"]
fn a_link_renamed_over_the_new_socket_never_hands_a_file_to_the_socket_group() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "run as root");
    let env = Env::start(fast());
    let top = &env.scratch.0;
    std::fs::set_permissions(top, std::fs::Permissions::from_mode(0o755)).unwrap();
    let victim = top.join("shadow");
    std::fs::write(&victim, "root:$6$hash\n").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
    let untouched = |why: &str| {
        let meta = std::fs::metadata(&victim).unwrap();
        assert_eq!(
            (meta.gid(), meta.mode() & 0o7777),
            (0, 0o600),
            "{why}: the victim was changed"
        );
    };

    let shared = top.join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let ends = starts_under_attack(&env, &shared, &victim, 30);
    untouched("a directory others may write");
    for (end, stderr) in &ends {
        assert_eq!(end, "2", "refused with exit 2: {stderr}");
        assert!(stderr.contains("writable by other users"), "{stderr}");
        assert!(stderr.contains("chmod go-w"), "says what to run: {stderr}");
    }

    // A directory only root may write: the attacker cannot reach the name, and the socket is
    // served in the group asked for, 0660.
    let private = top.join("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o755)).unwrap();
    let ends = starts_under_attack(&env, &private, &victim, 5);
    untouched("a private directory");
    assert!(ends.iter().all(|(end, _)| end == "served"), "{ends:?}");
    let serving = env.spawn(&[
        "serve",
        "--socket",
        private.join("token.sock").to_str().unwrap(),
        "--socket-group",
        "65534",
    ]);
    let socket = private.join("token.sock");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "no socket");
        std::thread::sleep(Duration::from_millis(10));
    }
    let meta = std::fs::symlink_metadata(&socket).unwrap();
    assert_eq!((meta.gid(), meta.mode() & 0o777), (65534, 0o660));
    serving.terminate();
    assert_eq!(serving.finish(Duration::from_secs(20)).code(), 0);
}
