//! Board profiles end to end: `sfpair --board` pairs against the simulator with everything
//! taken from the profile; the BusyBox init script retries exactly what may pass and stops what
//! it started (run by a real `sh` against a stand-in `sfpair`); systemd accepts every unit in
//! `boards/` and the package's, each rates 2.0 or lower in `systemd-analyze security`, and all
//! carry the same hardening block.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use sfpair_sim::Config;

use crate::harness::{CLIENT_ID, Env, Scratch, fast};

fn boards_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("boards")
}

#[test]
fn a_board_profile_alone_configures_pairing_token_status_and_forget() {
    let env = Env::start(Config {
        auto_approve_after: Some(Duration::from_secs(1)),
        ..fast()
    });
    let store = env.scratch.0.join("board-state/token");
    let profile = env.scratch.0.join("board.toml");
    std::fs::write(
        &profile,
        format!(
            "name = \"Test board\"\ntarget = \"armv7-unknown-linux-gnueabihf\"\n\n\
             [display]\nkind = \"none\"\nconsole = \"text\"\n\n\
             [store]\nkind = \"file\"\npath = \"{}\"\n\n\
             [salesforce]\nlogin_url = \"{}\"\nclient_id = \"{CLIENT_ID}\"\nca_file = \"{}\"\n\n\
             [service]\nsystemd = \"x.service\"\n",
            store.display(),
            env.base_url,
            env.ca.display()
        ),
    )
    .unwrap();
    let board = profile.to_str().unwrap();
    // Nothing from the environment: the profile is the only source besides the defaults.
    let run = |args: &[&str]| {
        let mut c = env.command(args);
        for var in [
            "SFPAIR_LOGIN_URL",
            "SFPAIR_CLIENT_ID",
            "SFPAIR_CA_FILE",
            "SFPAIR_STORE",
        ] {
            c.env_remove(var);
        }
        crate::harness::Running::spawn(c).finish(crate::harness::RUN_LIMIT)
    };

    let out = run(&["pair", "--board", board]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stdout.contains("Paired"),
        "the board's text console: {out:?}"
    );
    assert!(store.exists(), "stored where the profile says");
    assert!(!env.token_path().exists());

    let out = run(&["status", "--json", "--board", board]);
    assert_eq!(out.code(), 0, "{out:?}");
    let status: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(status["store"], format!("file:{}", store.display()));
    assert_eq!(status["login_url"], env.base_url);

    let out = run(&["token", "--board", board]);
    assert_eq!(out.code(), 0, "{out:?}");

    // SFPAIR_BOARD works like --board.
    let mut c = env.command(&["forget"]);
    c.env_remove("SFPAIR_STORE").env("SFPAIR_BOARD", board);
    let out = crate::harness::Running::spawn(c).finish(crate::harness::RUN_LIMIT);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(!store.exists());
}

#[test]
fn a_placeholder_profile_says_what_to_fill_in() {
    let env = Env::start(fast());
    let profile = boards_dir().join("raspberry-pi-4.toml");
    let mut c = env.command(&["pair", "--board", profile.to_str().unwrap()]);
    c.env_remove("SFPAIR_LOGIN_URL");
    let out = crate::harness::Running::spawn(c).finish(crate::harness::RUN_LIMIT);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(
        out.stderr.contains("placeholder login_url"),
        "{}",
        out.stderr
    );
    assert!(env.sim().log().is_empty(), "nothing was sent");
}

/// A stand-in `sfpair` that records its arguments and exits with the next code of a list.
fn fake_sfpair(dir: &Path, codes: &[u8]) -> PathBuf {
    let codes_file = dir.join("codes");
    std::fs::write(
        &codes_file,
        codes.iter().map(|c| format!("{c}\n")).collect::<String>(),
    )
    .unwrap();
    let fake = dir.join("sfpair");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{calls}'\ncode=$(head -n 1 '{codes}')\n\
             sed -i 1d '{codes}'\nexit \"${{code:-99}}\"\n",
            calls = dir.join("calls").display(),
            codes = codes_file.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    fake
}

/// Runs the init script's foreground loop; returns its exit code and the calls it made.
fn init_run(codes: &[u8]) -> (i32, Vec<String>) {
    let scratch = Scratch::new();
    let fake = fake_sfpair(&scratch.0, codes);
    let status = Command::new("sh")
        .arg(boards_dir().join("generic-aarch64-musl.init"))
        .arg("run")
        .env("SFPAIR", &fake)
        .env("SFPAIR_SOCKET", scratch.0.join("run/token.sock"))
        .env("SFPAIR_BOARD", "/etc/sfpair/board.toml")
        .env("SFPAIR_RETRY_DELAY", "0")
        .env("SFPAIR_MAX_TRIES", "4")
        .output()
        .unwrap();
    let calls = std::fs::read_to_string(scratch.0.join("calls")).unwrap_or_default();
    (
        status.status.code().unwrap_or(-1),
        calls
            .lines()
            .map(|c| c.replace(&scratch.0.display().to_string(), "SCRATCH"))
            .collect(),
    )
}

#[test]
fn the_busybox_script_retries_what_may_pass_and_stops_on_what_needs_a_person() {
    let pair = "run --board /etc/sfpair/board.toml --socket SCRATCH/run/token.sock".to_string();
    assert_eq!(init_run(&[0]), (0, vec![pair.clone()]));
    assert_eq!(init_run(&[7, 1, 0]), (0, vec![pair.clone(); 3]));
    for needs_a_person in [2, 3, 4, 8] {
        assert_eq!(
            init_run(&[needs_a_person, 0]),
            (needs_a_person as i32, vec![pair.clone()]),
            "exit code {needs_a_person}"
        );
    }
    // Bounded: four tries (SFPAIR_MAX_TRIES), then it gives up with the last code.
    assert_eq!(init_run(&[7, 7, 7, 7, 7, 0]), (7, vec![pair; 4]));
}

/// Every systemd unit we ship: the board units and the package's.
fn units() -> Vec<PathBuf> {
    let mut units: Vec<PathBuf> = std::fs::read_dir(boards_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "service"))
        .collect();
    units.sort();
    assert!(units.len() >= 4, "only {} units in boards/", units.len());
    units.push(package_unit());
    units
}

fn package_unit() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/debian/sfpair.service")
}

fn need_systemd_analyze() {
    let analyze = Command::new("systemd-analyze").arg("--version").output();
    assert!(
        analyze.is_ok_and(|o| o.status.success()),
        "systemd-analyze is missing: install Debian's systemd package (scripts/test does)"
    );
}

#[test]
fn systemd_accepts_every_unit_in_boards() {
    need_systemd_analyze();
    let scratch = Scratch::new();
    for path in units() {
        // verify checks that ExecStart's program exists: point it at the real binary.
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("/usr/bin/sfpair", env!("CARGO_BIN_EXE_sfpair"));
        let copy = scratch.0.join("sfpair.service");
        std::fs::write(&copy, text).unwrap();
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&copy)
            .output()
            .unwrap();
        // verify exits 0 on unknown keys and says so on stderr only: both must be clean.
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && said.trim().is_empty(),
            "{}: {said}",
            path.display()
        );
    }
}

/// The exposure `systemd-analyze security --offline=yes` gives a unit (0 locked down, 10 open).
fn exposure(unit: &Path) -> f64 {
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(unit)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("{}: no overall exposure in {text}", unit.display()));
    // "→ Overall exposure level for NAME.service: 1.5 OK 🙂"
    let after = &line[line.rfind(": ").unwrap() + 2..];
    after.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn every_unit_is_locked_down_to_an_exposure_of_2_or_less() {
    need_systemd_analyze();
    for unit in units() {
        let level = exposure(&unit);
        assert!(level <= 2.0, "{}: exposure {level} > 2.0", unit.display());
    }
}

/// The lines between the hardening markers: the one hardening every unit carries.
fn hardening_block(unit: &Path) -> String {
    let text = std::fs::read_to_string(unit).unwrap();
    let start = text.find("# --- hardening");
    let end = text.find("# --- end of the hardening block ---");
    match (start, end) {
        (Some(s), Some(e)) if s < e => text[s..e].to_string(),
        _ => panic!("{}: no hardening block", unit.display()),
    }
}

#[test]
fn every_unit_carries_the_package_units_hardening_block_and_runs_as_sfpair() {
    let block = hardening_block(&package_unit());
    for key in [
        "\nUser=sfpair\n",
        "\nNoNewPrivileges=yes\n",
        "\nProtectSystem=strict\n",
        "\nCapabilityBoundingSet=\n",
        "\nSystemCallFilter=@system-service\n",
        "\nTimeoutStopSec=40\n",
    ] {
        assert!(
            block.contains(key),
            "the package unit's block lacks {key:?}"
        );
    }
    for unit in units() {
        assert_eq!(
            hardening_block(&unit),
            block,
            "{}: its hardening block differs from packaging/debian/sfpair.service's",
            unit.display()
        );
        let text = std::fs::read_to_string(&unit).unwrap();
        // Device access is narrowed in every unit: closed, with the devices it names.
        assert!(
            text.contains("\nDevicePolicy=closed\n"),
            "{}",
            unit.display()
        );
        assert!(text.contains("\nDeviceAllow="), "{}", unit.display());
    }
    // The BusyBox script waits as long as systemd does before its SIGKILL (docs/run.md,
    // "Stopping": a refresh already sent may take the whole --timeout).
    let init = std::fs::read_to_string(boards_dir().join("generic-aarch64-musl.init")).unwrap();
    assert!(
        init.contains("\nSTOP_TIMEOUT=${SFPAIR_STOP_TIMEOUT:-40}\n"),
        "the BusyBox script's stop waits 40 s by default, as TimeoutStopSec=40"
    );
}

/// A stand-in `sfpair run` that notes when it starts and ends in EVENTS and takes `linger`
/// after SIGTERM to end (as a real agent finishing a store write); `ignore_term`: it never
/// ends by SIGTERM.
fn lingering_sfpair(dir: &Path, linger: &str, ignore_term: bool) -> PathBuf {
    let events = dir.join("events");
    let on_term = if ignore_term {
        "trap '' TERM".to_string()
    } else {
        format!(
            "trap 'trap \"\" TERM; sleep {linger}; echo \"end $$\" >> \"{events}\"; exit 0' TERM",
            events = events.display()
        )
    };
    let fake = dir.join("sfpair");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\necho \"start $$\" >> \"{events}\"\n{on_term}\n\
             n=0\nwhile [ $n -lt 600 ]; do sleep 0.1; n=$((n + 1)); done\n",
            events = events.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    fake
}

/// The init script, as BusyBox's rcS or a person runs it, with every path in `dir`.
fn init_script(dir: &Path, fake: &Path, action: &str) -> std::process::ExitStatus {
    Command::new(boards_dir().join("generic-aarch64-musl.init"))
        .arg(action)
        .env("SFPAIR", fake)
        .env("SFPAIR_SOCKET", dir.join("run/token.sock"))
        .env("SFPAIR_PIDFILE", dir.join("sfpair.pid"))
        .env("SFPAIR_LOGFILE", dir.join("sfpair.log"))
        .env("SFPAIR_STOP_TIMEOUT", "2")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
}

fn events(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("events"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Waits (at most 10 s) until EVENTS has `n` lines.
fn wait_events(dir: &Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let e = events(dir);
        if e.len() >= n || Instant::now() > deadline {
            return e;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether the process runs (a zombie that init has not reaped yet does not).
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
        !s.lines()
            .any(|l| l.starts_with("State:") && l.contains('Z'))
    })
}

#[test]
fn the_busybox_script_stops_the_agent_before_a_restart_starts_another() {
    let scratch = Scratch::new();
    let dir = &scratch.0;
    let fake = lingering_sfpair(dir, "0.5", false);
    assert!(init_script(dir, &fake, "start").success());
    let first = wait_events(dir, 1);
    assert_eq!(first.len(), 1, "the agent started: {first:?}");
    let a = first[0].strip_prefix("start ").unwrap().to_string();

    let t = Instant::now();
    assert!(init_script(dir, &fake, "restart").success());
    let e = wait_events(dir, 3);
    // The old agent ended (its 0.5 s after SIGTERM included) before the new one started.
    assert_eq!(e.len(), 3, "{e:?}");
    assert_eq!(e[1], format!("end {a}"), "{e:?}");
    assert!(e[2].starts_with("start "), "{e:?}");
    assert!(
        t.elapsed() >= Duration::from_millis(500),
        "restart waited for the agent"
    );
    let b = e[2].strip_prefix("start ").unwrap().to_string();
    assert!(!alive(&a));

    assert!(init_script(dir, &fake, "stop").success());
    // `stop` returns once the agent is gone, and only then removes the pid files.
    assert!(!alive(&b), "stop returned with the agent still running");
    assert_eq!(events(dir).last().unwrap(), &format!("end {b}"));
    assert!(!dir.join("sfpair.pid").exists());
    assert!(!dir.join("sfpair.agent.pid").exists());
    // Nothing restarted it afterwards: the loop was stopped first.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(events(dir).len(), 4, "{:?}", events(dir));
}

#[test]
fn the_busybox_script_kills_an_agent_that_outlives_its_stop_timeout() {
    let scratch = Scratch::new();
    let dir = &scratch.0;
    let fake = lingering_sfpair(dir, "0", true);
    assert!(init_script(dir, &fake, "start").success());
    let e = wait_events(dir, 1);
    assert_eq!(e.len(), 1, "{e:?}");
    let a = e[0].strip_prefix("start ").unwrap().to_string();
    let t = Instant::now();
    assert!(init_script(dir, &fake, "stop").success());
    let took = t.elapsed();
    // SFPAIR_STOP_TIMEOUT=2: SIGTERM, 2 s, then SIGKILL.
    assert!(
        took >= Duration::from_secs(2),
        "stop gave up early: {took:?}"
    );
    assert!(took < Duration::from_secs(6), "stop waited {took:?}");
    std::thread::sleep(Duration::from_millis(100));
    assert!(!alive(&a), "the agent survived stop");
    assert!(!dir.join("sfpair.pid").exists());
}
