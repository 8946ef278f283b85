//! The pairing screen as a person sees it in a classic 80x24 terminal: `sfpair pair` runs inside
//! tmux (a real terminal emulator, Debian's tmux package), and what tmux's screen holds is read
//! back: the whole QR (it scans on a dark and a light theme), the URL and the code, with the
//! countdown repeating the code. tmux is required: a missing one fails this test (scripts/test
//! installs it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::{Env, fast};
use crate::terminal_qr::{Theme, decode_terminal};

/// A tmux server of this test's own (its socket in the scratch directory), killed when dropped.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    fn command(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(["-f", "/dev/null"])
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!("tmux cannot run ({e}): install tmux (scripts/test does with `need tmux`)")
            })
    }

    /// Starts `line` (a shell command) in an 80x24 window.
    fn start(dir: &Path, line: &str) -> Tmux {
        let tmux = Tmux {
            socket: dir.join("tmux.sock"),
        };
        let out = tmux.command(&[
            "new-session",
            "-d",
            "-s",
            "pair",
            "-x",
            "80",
            "-y",
            "24",
            line,
        ]);
        assert!(out.status.success(), "{out:?}");
        tmux
    }

    /// The screen's 24 rows, with their colours (`-e`) and trailing spaces (`-N`), each row
    /// ending with the terminal's colours reset as the QR reader wants.
    fn screen(&self) -> Vec<String> {
        let out = self.command(&["capture-pane", "-p", "-e", "-N", "-t", "pair"]);
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| format!("{l}\x1b[0m"))
            .collect()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.command(&["kill-server"]);
    }
}

/// `row` without its colour codes.
fn plain(row: &str) -> String {
    let mut out = String::new();
    let mut chars = row.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn the_pairing_screen_fits_an_80x24_terminal_with_the_qr_the_url_and_the_code() {
    let env = Env::start(fast());
    let sfpair = env.command(&["pair"]);
    let mut line = String::from("exec env -i TERM=screen");
    for (k, v) in sfpair.get_envs() {
        if let Some(v) = v {
            line.push_str(&format!(
                " '{}={}'",
                k.to_str().unwrap(),
                v.to_str().unwrap()
            ));
        }
    }
    line.push_str(&format!(
        " '{}' pair",
        sfpair.get_program().to_str().unwrap()
    ));
    let tmux = Tmux::start(&env.scratch.0, &line);
    let deadline = Instant::now() + Duration::from_secs(30);
    let screen = loop {
        let screen = tmux.screen();
        if screen.iter().any(|r| plain(r).contains("it expires in")) {
            break screen;
        }
        assert!(
            Instant::now() < deadline,
            "no code on screen: {:#?}",
            screen.iter().map(|r| plain(r)).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let rows: Vec<String> = screen.iter().map(|r| plain(r)).collect();
    assert_eq!(rows.len(), 24);
    // The code, as the simulator issued it, on the last line, after the URL.
    let code = env
        .sim()
        .pending_user_codes()
        .pop()
        .expect("a code was issued");
    let last = rows.iter().rposition(|r| !r.trim().is_empty()).unwrap();
    assert!(
        rows[last].starts_with(&format!("and enter the code {code}; it expires in")),
        "{rows:#?}"
    );
    assert_eq!(
        rows[last - 1],
        format!("{}/setup/connect", env.base_url),
        "{rows:#?}"
    );
    // The QR above them, whole: every row above the words is drawn in its colours, the first
    // is its top quiet zone (light cells, no module), and it scans.
    let qr = &screen[..last - 2];
    assert!(
        qr.iter()
            .all(|r| r.contains("\x1b[38;5;231m") || r.contains("48;5;231m")),
        "only QR rows above the words: {rows:#?}"
    );
    assert!(rows[0].trim().is_empty(), "the top quiet zone is on screen");
    let qr: String = qr.iter().map(|r| format!("{r}\n")).collect();
    for theme in [Theme::Dark, Theme::Light] {
        let url = decode_terminal(&qr, theme);
        assert_eq!(
            url,
            format!("{}/setup/connect?user_code={code}", env.base_url),
            "{theme:?}"
        );
    }
}
