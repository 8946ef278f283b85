//! The runner's promises, each against a real `/bin/sh`.

use std::time::{Duration, Instant};

use super::*;

fn nothing_passed(_: &[u8]) -> bool {
    false
}

fn path_only(name: &[u8]) -> bool {
    name == b"PATH"
}

fn sh(script: &str) -> [&OsStr; 2] {
    [OsStr::new("-c"), OsStr::new(script)]
}

/// `/bin/sh ARGS`, keeping 4096 bytes, 30 s at most.
fn shell<'a>(args: &'a [&'a OsStr]) -> Spec<'a> {
    Spec {
        program: OsStr::new("/bin/sh"),
        args,
        passes: path_only,
        vars: &[],
        input: b"",
        keep: 4096,
        keep_stderr: false,
        limit: Duration::from_secs(30),
        stop: None,
    }
}

fn stdout(ran: &Ran) -> String {
    String::from_utf8(ran.stdout.to_vec()).unwrap()
}

#[test]
fn the_input_goes_in_and_only_the_passed_and_given_variables_reach_the_program() {
    let args = sh("cat; echo; env");
    let mut spec = shell(&args);
    spec.input = b"{\"Value__c\":1.10}";
    spec.vars = &[("SFPAIR_ATTEMPT", "2")];
    let ran = run(&spec).unwrap();
    assert_eq!(ran.ended, Ended::Exited(0));
    let out = stdout(&ran);
    let (input, env) = out.split_once('\n').unwrap();
    assert_eq!(input, "{\"Value__c\":1.10}");
    let names: Vec<&str> = env.lines().map(|l| l.split('=').next().unwrap()).collect();
    assert!(
        names.contains(&"PATH") && names.contains(&"SFPAIR_ATTEMPT"),
        "{env}"
    );
    // Nothing else of ours (HOME, the test runner's variables), only what the shell sets itself.
    for name in names {
        assert!(
            ["PATH", "SFPAIR_ATTEMPT", "PWD", "SHLVL", "_", "OLDPWD"].contains(&name),
            "{name} was passed on"
        );
    }
    let args = sh("env");
    let mut spec = shell(&args);
    spec.passes = nothing_passed;
    assert!(!stdout(&run(&spec).unwrap()).contains("PATH="));
}

#[test]
fn output_past_the_limit_is_read_and_dropped_and_the_exit_code_kept() {
    let args = sh("head -c 100000 /dev/zero | tr '\\0' x; exit 3");
    let spec = shell(&args);
    let ran = run(&spec).unwrap();
    assert_eq!((ran.ended, ran.ended.code()), (Ended::Exited(3), Some(3)));
    assert!(!ran.ended.success());
    assert_eq!(ran.stdout.len(), 4096);
    assert!(ran.stderr.is_empty());
}

#[test]
fn a_large_input_is_fed_while_the_output_is_read_and_a_program_may_ignore_it() {
    let input = vec![b'a'; 1024 * 1024];
    // The program writes as much as it reads: neither side may wait for the other.
    let args = sh("cat; echo");
    let mut spec = shell(&args);
    spec.input = &input;
    spec.keep = 2 * 1024 * 1024;
    let ran = run(&spec).unwrap();
    assert_eq!(ran.ended, Ended::Exited(0));
    assert_eq!(ran.stdout.len(), input.len() + 1);
    let args = sh("exit 0");
    let mut spec = shell(&args);
    spec.input = &input;
    assert_eq!(run(&spec).unwrap().ended, Ended::Exited(0));
}

#[test]
fn standard_error_is_kept_when_asked() {
    let args = sh("echo out; echo oops >&2");
    let mut spec = shell(&args);
    spec.keep_stderr = true;
    let ran = run(&spec).unwrap();
    assert_eq!(
        (stdout(&ran).as_str(), &ran.stderr[..]),
        ("out\n", &b"oops\n"[..])
    );
}

#[test]
fn a_program_that_cannot_start_is_an_error_of_its_own() {
    let spec = Spec {
        program: OsStr::new("/nonexistent/handler"),
        args: &[],
        passes: path_only,
        vars: &[],
        input: b"x",
        keep: 10,
        keep_stderr: false,
        limit: Duration::from_secs(5),
        stop: None,
    };
    let e = run(&spec).err().unwrap();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    // A name is looked up in PATH.
    let spec = Spec {
        program: OsStr::new("sh"),
        args: &[OsStr::new("-c"), OsStr::new("exit 4")],
        ..spec
    };
    assert_eq!(run(&spec).unwrap().ended, Ended::Exited(4));
}

#[test]
fn a_program_past_its_limit_is_ended_with_its_whole_group() {
    let args = sh("sleep 600 & echo $!; sleep 600");
    let mut spec = shell(&args);
    spec.limit = Duration::from_millis(300);
    let started = Instant::now();
    let ran = run(&spec).unwrap();
    assert_eq!((ran.ended, ran.ended.code()), (Ended::TimedOut, None));
    assert!(started.elapsed() < Duration::from_secs(10));
    // The background sleep (same group) is gone too.
    let pid: i32 = stdout(&ran).trim().parse().unwrap();
    // SAFETY: signal 0 only asks whether the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.split(' ').nth(2) == Some("Z"));
    assert!(!alive || zombie, "the background child {pid} survived");
}

#[test]
fn a_program_that_ignores_sigterm_gets_sigkill_after_the_grace() {
    let args = sh("trap '' TERM; sleep 600");
    let mut spec = shell(&args);
    spec.limit = Duration::from_millis(200);
    let started = Instant::now();
    assert_eq!(run(&spec).unwrap().ended, Ended::TimedOut);
    let took = started.elapsed();
    assert!(took >= GRACE && took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn a_stop_ends_the_program() {
    let stop = Stop::new();
    let stopper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            stop.stop();
        })
    };
    let args = sh("sleep 600");
    let mut spec = shell(&args);
    spec.stop = Some(&stop);
    assert_eq!(run(&spec).unwrap().ended, Ended::Stopped);
    stopper.join().unwrap();
}

#[test]
fn a_signal_that_ends_the_program_is_its_code_plus_128() {
    let ran = run(&shell(&sh("kill -9 $$"))).unwrap();
    assert_eq!(
        (ran.ended, ran.ended.code()),
        (Ended::Signalled(9), Some(137))
    );
}

#[test]
fn the_program_starts_with_no_blocked_signals_and_sigpipe_at_its_default() {
    // This test process ignores SIGPIPE (Rust does); block one signal on this thread too.
    // SAFETY: a sigset on the stack; the mask is this thread's and restored below.
    let mut usr2: libc::sigset_t = unsafe { core::mem::zeroed() };
    let mut old: libc::sigset_t = unsafe { core::mem::zeroed() };
    unsafe {
        libc::sigemptyset(&mut usr2);
        libc::sigaddset(&mut usr2, libc::SIGUSR2);
        libc::pthread_sigmask(libc::SIG_BLOCK, &usr2, &mut old);
    }
    let ran = run(&shell(&sh("grep -E '^Sig(Blk|Ign)' /proc/self/status"))).unwrap();
    // SAFETY: restores the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, core::ptr::null_mut()) };
    let out = stdout(&ran);
    let field = |name: &str| {
        let line = out.lines().find(|l| l.starts_with(name)).unwrap();
        u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
    };
    assert_eq!(field("SigBlk:"), 0, "{out}");
    assert_eq!(field("SigIgn:") & (1 << (libc::SIGPIPE - 1)), 0, "{out}");
}
