//! Board profiles: every file in `boards/` validates, its service runs `sfpair run` with a
//! restart policy that fits the exit codes, and bad profiles fail with the file and line.

use std::path::{Path, PathBuf};

use super::*;
use crate::error::ErrorKind;
use crate::present::spec::{self, Display};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn profiles() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(repo().join("boards"))
        .expect("boards/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    found.sort();
    found
}

fn value_of<'a>(unit: &'a str, key: &str) -> Option<&'a str> {
    unit.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(str::trim)
}

/// Exit codes after which retrying cannot help: a person must act.
const NEED_A_PERSON: [ErrorKind; 8] = [
    ErrorKind::Config,
    ErrorKind::Denied,
    ErrorKind::Expired,
    ErrorKind::NotPaired,
    ErrorKind::RepairNeeded,
    ErrorKind::Storage,
    ErrorKind::Http,
    ErrorKind::Output,
];
/// Exit codes that may pass by themselves: retry after a pause.
const MAY_PASS: [ErrorKind; 2] = [ErrorKind::Network, ErrorKind::Server];

#[test]
fn every_profile_in_boards_validates_and_its_service_pairs() {
    let profiles = profiles();
    let names: Vec<String> = profiles
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for required in [
        "raspberry-pi-zero-2-w",
        "raspberry-pi-4",
        "beaglebone-black",
        "generic-aarch64-musl",
    ] {
        assert!(
            names.iter().any(|n| n == required),
            "boards/{required}.toml is missing"
        );
    }
    let arm_sh = std::fs::read_to_string(repo().join("scripts/lib/arm.sh")).unwrap();
    let built = arm_sh
        .lines()
        .find_map(|l| l.strip_prefix("ARM_TARGETS=\""))
        .expect("scripts/lib/arm.sh lists ARM_TARGETS")
        .trim_end_matches('"');
    for path in &profiles {
        let board = Board::load(path).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            built.split_whitespace().any(|t| t == board.target),
            "{}: scripts/cross-build does not build {}",
            path.display(),
            board.target
        );
        assert!(!board.displays().is_empty(), "{}", path.display());
        let dir = path.parent().unwrap();
        if let Some(unit) = &board.systemd_unit {
            let text = std::fs::read_to_string(dir.join(unit))
                .unwrap_or_else(|e| panic!("{}: unit {unit}: {e}", path.display()));
            let exec = value_of(&text, "ExecStart").expect("ExecStart");
            assert!(exec.contains("sfpair run --board "), "{unit}: {exec}");
            assert!(exec.contains("--socket "), "{unit}: {exec}");
            assert_eq!(value_of(&text, "Type"), Some("notify"), "{unit}");
            assert!(
                value_of(&text, "WatchdogSec").is_some(),
                "{unit}: a hung agent restarts"
            );
            assert_eq!(value_of(&text, "Restart"), Some("on-failure"), "{unit}");
            assert!(
                value_of(&text, "RestartSec").is_some(),
                "{unit}: restarts need a pause"
            );
            assert!(
                value_of(&text, "StartLimitBurst").is_some(),
                "{unit}: and a bound"
            );
            let prevented: Vec<u8> = value_of(&text, "RestartPreventExitStatus")
                .expect("RestartPreventExitStatus")
                .split_whitespace()
                .map(|c| c.parse().unwrap())
                .collect();
            for kind in NEED_A_PERSON {
                assert!(
                    prevented.contains(&kind.exit_code()),
                    "{unit}: {kind:?} must not restart"
                );
            }
            for kind in MAY_PASS {
                assert!(
                    !prevented.contains(&kind.exit_code()),
                    "{unit}: {kind:?} must restart"
                );
            }
        }
        if let Some(init) = &board.init_script {
            let text = std::fs::read_to_string(dir.join(init))
                .unwrap_or_else(|e| panic!("{}: init script {init}: {e}", path.display()));
            assert!(text.starts_with("#!/bin/sh\n"), "{init}");
            assert!(text.contains("\"$SFPAIR\" run --board"), "{init}");
        }
    }
}

const GOOD: &str = r#"
name = "Test board"
target = "armv7-unknown-linux-gnueabihf"

[display]
kind = "ssd1306"
device = "/dev/i2c-1"
address = 0x3C
width = 128
height = 32

[store]
kind = "file"
path = "/var/lib/sfpair/token"

[salesforce]
login_url = "https://acme.my.salesforce.com"

[service]
systemd = "x.service"
"#;

fn specs(values: &[&str]) -> Vec<Display> {
    values.iter().map(|v| spec::display(v).unwrap()).collect()
}

fn board(text: &str) -> Result<Board, Error> {
    Board::parse(Path::new("boards/test.toml"), text)
}

#[test]
fn a_profile_becomes_display_and_store_values() {
    let b = board(GOOD).unwrap();
    assert_eq!(
        b.displays(),
        specs(&["ssd1306:/dev/i2c-1@0x3c:128x32", "text"])
    );
    assert_eq!(b.store.to_string(), "file:/var/lib/sfpair/token");
    let full = GOOD
        .replace("height = 32", "height = 64")
        .replace("ssd1306", "sh1106");
    assert_eq!(
        board(&full).unwrap().displays(),
        specs(&["sh1106:/dev/i2c-1@0x3c", "text"])
    );
    let fb = GOOD
        .replace("kind = \"ssd1306\"", "kind = \"fb\"\nconsole = \"none\"")
        .replace("/dev/i2c-1", "/dev/fb1")
        .replace("address = 0x3C\nwidth = 128\nheight = 32\n", "");
    assert_eq!(board(&fb).unwrap().displays(), specs(&["fb:/dev/fb1"]));
    let pbm = GOOD
        .replace("ssd1306", "pbm")
        .replace("/dev/i2c-1", "/run/sfpair/screen.pbm")
        .replace("address = 0x3C\n", "");
    assert_eq!(
        board(&pbm).unwrap().displays(),
        specs(&["pbm:/run/sfpair/screen.pbm:128x32", "text"])
    );
    // Every panel kind the command line knows, a board may name (png and sh1106-no-offset too).
    let png = pbm
        .replace("\"pbm\"", "\"png\"")
        .replace("screen.pbm", "screen.png");
    assert_eq!(
        board(&png).unwrap().displays(),
        specs(&["png:/run/sfpair/screen.png:128x32", "text"])
    );
    let no_offset = full.replace("sh1106", "sh1106-no-offset");
    assert_eq!(
        board(&no_offset).unwrap().displays(),
        specs(&["sh1106-no-offset:/dev/i2c-1@0x3c", "text"])
    );
    let mtd = GOOD
        .replace("kind = \"file\"", "kind = \"mtd\"")
        .replace("/var/lib/sfpair/token", "/dev/mtd3");
    assert_eq!(board(&mtd).unwrap().store.to_string(), "mtd:/dev/mtd3");
}

#[test]
fn mistakes_name_the_file_the_line_and_the_fix() {
    for (from, to, line, says) in [
        (
            "target = \"armv7-unknown-linux-gnueabihf\"",
            "target = \"x86_64-unknown-linux-gnu\"",
            3,
            "unknown target",
        ),
        (
            "address = 0x3C",
            "adress = 0x3C",
            8,
            "unknown key 'adress' in [display]",
        ),
        (
            "address = 0x3C",
            "address = 0x80",
            8,
            "not a 7-bit I2C address",
        ),
        // The same floor as --display: 0x03 is an address the command line accepts.
        ("address = 0x3C", "address = 0x02", 8, "0x03 to 0x77"),
        (
            "address = 0x3C",
            "address = \"0x3C\"",
            8,
            "needs a whole number",
        ),
        (
            "kind = \"ssd1306\"",
            "kind = \"st7735\"",
            6,
            "unknown display kind 'st7735'",
        ),
        (
            "device = \"/dev/i2c-1\"",
            "device = \"/dev/spidev0.0\"",
            7,
            "device is /dev/i2c-N",
        ),
        (
            "width = 128",
            "width = 5000",
            6,
            "SSD1306 panel is 128x64 or 128x32",
        ),
        (
            "kind = \"file\"",
            "kind = \"nvram\"",
            13,
            "unknown store kind",
        ),
        (
            "path = \"/var/lib/sfpair/token\"",
            "path = \"token\"",
            14,
            "absolute path",
        ),
        (
            "https://acme.my.salesforce.com",
            "https://acme.lightning.force.com",
            17,
            "Lightning",
        ),
        (
            "[service]",
            "[services]",
            20,
            "unknown key 'systemd' in [services]",
        ),
    ] {
        assert!(GOOD.contains(from), "{from}");
        let e = board(&GOOD.replace(from, to)).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let want = format!("board profile boards/test.toml:{line}: ");
        assert!(e.message().starts_with(&want), "{to}: {e}");
        assert!(e.message().contains(says), "{to}: {e}");
    }
    let mtd = GOOD
        .replace("kind = \"file\"", "kind = \"mtd\"")
        .replace("/var/lib/sfpair/token", "/dev/mtdblock3");
    assert!(board(&mtd).unwrap_err().message().contains("block cache"));
    for (key, says) in [
        ("name = \"Test board\"\n", "'name' is missing"),
        (
            "[service]\nsystemd = \"x.service\"\n",
            "'systemd' is missing in [service]",
        ),
    ] {
        let e = board(&GOOD.replace(key, "")).unwrap_err();
        assert!(e.message().contains(says), "{e}");
    }
    let e = board("name = 1\n").unwrap_err();
    assert!(
        e.message()
            .contains("test.toml:1: 'name' needs non-empty quoted text"),
        "{e}"
    );
    let e = Board::load(Path::new("/nonexistent/board.toml")).unwrap_err();
    assert!(
        e.message()
            .contains("cannot read the board profile /nonexistent/board.toml")
    );
}

/// A profile written to a scratch file, removed on drop.
struct ProfileFile(PathBuf);

impl ProfileFile {
    fn new(tag: &str, text: &str) -> ProfileFile {
        let path =
            std::env::temp_dir().join(format!("sfpair-board-{tag}-{}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        ProfileFile(path)
    }
}

impl Drop for ProfileFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

use crate::config::tests::resolve;

#[test]
fn flags_beat_the_environment_which_beats_the_board_which_beats_defaults() {
    let text = GOOD
        .replace(
            "kind = \"ssd1306\"",
            "kind = \"none\"\nconsole = \"console\"",
        )
        .replace(
            "device = \"/dev/i2c-1\"\naddress = 0x3C\nwidth = 128\nheight = 32\n",
            "",
        )
        .replace(
            "[service]",
            "client_id = \"BOARDKEY\"\nscope = \"api refresh_token id\"\n[service]",
        );
    let file = ProfileFile::new("precedence", &text);
    let path = file.0.to_str().unwrap();

    let s = resolve(&["pair", "--board", path], &[("HOME", "/h")]).unwrap();
    assert_eq!(s.login_url, "https://acme.my.salesforce.com");
    assert_eq!(s.store.to_string(), "file:/var/lib/sfpair/token");
    assert_eq!(s.client_id.as_deref(), Some("BOARDKEY"));
    assert_eq!(s.scope, "api refresh_token id");
    assert_eq!(s.displays, [crate::present::spec::Display::Console]);

    // SFPAIR_BOARD names the profile too; the environment beats it, flags beat both.
    let env = [
        ("HOME", "/h"),
        ("SFPAIR_BOARD", path),
        ("SFPAIR_LOGIN_URL", "https://test.salesforce.com"),
        ("SFPAIR_STORE", "file:/env/token"),
    ];
    let s = resolve(&["pair"], &env).unwrap();
    assert_eq!(s.login_url, "https://test.salesforce.com");
    assert_eq!(s.store.to_string(), "file:/env/token");
    assert_eq!(s.client_id.as_deref(), Some("BOARDKEY"));
    let s = resolve(
        &[
            "pair",
            "--store",
            "file:/flag",
            "--client-id",
            "FLAGKEY",
            "--display",
            "text",
        ],
        &env,
    )
    .unwrap();
    assert_eq!(s.store.to_string(), "file:/flag");
    assert_eq!(s.client_id.as_deref(), Some("FLAGKEY"));
    assert_eq!(s.displays, [crate::present::spec::Display::Text]);

    // Without a profile, the defaults as before.
    let s = resolve(&["pair"], &[("HOME", "/h")]).unwrap();
    assert_eq!(s.login_url, crate::config::DEFAULT_LOGIN_URL);
    assert_eq!(s.store.to_string(), "file:/h/.local/state/sfpair/token");
}

#[test]
fn the_placeholder_login_url_is_refused_unless_something_overrides_it() {
    let text = GOOD.replace(
        "https://acme.my.salesforce.com",
        "https://MYDOMAIN.my.salesforce.com",
    );
    let file = ProfileFile::new("placeholder", &text);
    let path = file.0.to_str().unwrap();
    let e = resolve(
        &["pair", "--board", path, "--display", "text"],
        &[("HOME", "/h")],
    )
    .unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.message().contains("placeholder login_url"), "{e}");
    assert!(e.message().contains("SFPAIR_LOGIN_URL"), "{e}");
    let s = resolve(
        &["pair", "--board", path, "--display", "text"],
        &[
            ("HOME", "/h"),
            ("SFPAIR_LOGIN_URL", "https://login.salesforce.com"),
        ],
    )
    .unwrap();
    assert_eq!(s.login_url, "https://login.salesforce.com");
    let s = resolve(
        &[
            "pair",
            "--board",
            path,
            "--display",
            "text",
            "--login-url",
            "https://test.salesforce.com",
        ],
        &[("HOME", "/h")],
    )
    .unwrap();
    assert_eq!(s.login_url, "https://test.salesforce.com");
}

#[test]
fn a_boards_panel_reaches_the_settings_as_the_same_display_the_flag_gives() {
    let file = ProfileFile::new("panel", GOOD);
    let s = resolve(
        &["pair", "--board", file.0.to_str().unwrap()],
        &[("HOME", "/h")],
    )
    .unwrap();
    assert_eq!(
        s.displays,
        specs(&["ssd1306:/dev/i2c-1@0x3c:128x32", "text"])
    );
}

#[test]
fn a_profile_path_that_never_ends_is_refused_not_read_forever() {
    let err = Board::load(Path::new("/dev/zero")).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    // Refused before a byte is read: only a regular file is a profile (files.rs).
    assert!(
        err.message().contains("device, not a regular file"),
        "{err}"
    );
}

#[test]
fn a_panel_the_display_code_cannot_drive_is_refused_with_the_line() {
    // Found by the board_profile fuzz target: each field was valid, the panel was not.
    let err = board(&GOOD.replace("height = 32", "height = 63")).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(err.message().contains("boards/test.toml"), "{err}");
    assert!(err.message().contains("128x64 or 128x32"), "{err}");
    let ok = board(GOOD).unwrap();
    assert_eq!(
        ok.displays()[0],
        specs(&["ssd1306:/dev/i2c-1@0x3c:128x32"])[0]
    );
}

#[test]
fn a_profile_can_name_a_headless_grant_and_a_relative_key_path_is_refused() {
    let text = GOOD.replace(
        "[service]",
        "flow = \"jwt-bearer\"\nkey_file = \"/etc/sfpair/device.key\"\nusername = \
         \"gw@acme.example\"\naudience = \"https://acme.my.site.com\"\n[service]",
    );
    let b = board(&text).unwrap();
    assert_eq!(b.env_value("SFPAIR_FLOW").as_deref(), Some("jwt-bearer"));
    assert_eq!(
        b.env_value("SFPAIR_KEY_FILE").as_deref(),
        Some("/etc/sfpair/device.key")
    );
    assert_eq!(
        b.env_value("SFPAIR_USERNAME").as_deref(),
        Some("gw@acme.example")
    );
    assert_eq!(
        b.env_value("SFPAIR_AUDIENCE").as_deref(),
        Some("https://acme.my.site.com")
    );
    let relative = text.replace("/etc/sfpair/device.key", "device.key");
    let err = board(&relative).unwrap_err();
    assert!(err.message().contains("absolute"), "{}", err.message());
}
