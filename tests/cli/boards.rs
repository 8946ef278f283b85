//! Board profiles end to end: `sfpair --board` pairs against the simulator with everything
//! taken from the profile; the BusyBox init script retries exactly what may pass (run by a real
//! `sh` against a stand-in `sfpair`); systemd accepts every unit in `boards/`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

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

#[test]
fn systemd_accepts_every_unit_in_boards() {
    let analyze = Command::new("systemd-analyze").arg("--version").output();
    assert!(
        analyze.is_ok_and(|o| o.status.success()),
        "systemd-analyze is missing: install Debian's systemd package (scripts/test does)"
    );
    let scratch = Scratch::new();
    let mut units = 0;
    for entry in std::fs::read_dir(boards_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "service") {
            continue;
        }
        units += 1;
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
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && said.trim().is_empty(),
            "{}: {said}",
            path.display()
        );
    }
    assert!(units >= 4, "only {units} units in boards/");
}
