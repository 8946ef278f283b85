//! The console presenter: the code, the URL and a scannable QR on a terminal, or plain ASCII
//! lines for a serial console.
//!
//! The QR comes first and the words after it, so the URL and the code are the last lines
//! written: on a classic 80x24 terminal the whole screen fits (a QR of up to 37 modules, a URL
//! of about 100 bytes; its quiet zone narrows from 4 modules to 2 to make room), and whatever
//! scrolls away, it is never the code. On a TTY the last line is a live countdown that repeats
//! the code ("and enter the code ABCD1234; it expires in 9:58", rewritten with `\r` and an
//! erase-line escape), and the console sets the QR's colours itself: dark modules on a light quiet zone, from the
//! 256-colour cube (which terminal themes do not remap, unlike the 16 basic colours), reset at
//! the end of every line. Without that, a terminal with a white background shows the plain
//! rendering inverted, and many phone scanners refuse an inverted code. Off a TTY (a log file, a pipe, systemd's journal) it writes no control
//! characters at all. Server-supplied text is shown exactly, except control characters, which
//! are replaced so a hostile server cannot drive the terminal.

use std::borrow::Cow;
use std::io::{self, IsTerminal, Write};
use std::time::Duration;

use super::Presenter;
use super::qr::{QrMatrix, half_blocks};
use crate::event::{Event, ShownCode};

/// What to draw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Code, URL and a half-block QR (Unicode).
    Qr,
    /// Code and URL only, ASCII only: for serial consoles.
    Text,
}

/// Spec quiet zone (ISO/IEC 18004): four light modules around the symbol.
const QUIET_ZONE: usize = 4;
/// The narrowest quiet zone drawn on a terminal, where the screen is short: phone scanners read
/// codes with two modules of margin (the light cells the console draws itself).
const NARROW_QUIET_ZONE: usize = 2;
/// The classic terminal's height, which the TTY screen fits: the QR and the three lines below.
const SCREEN_ROWS: usize = 24;
const TEXT_ROWS: usize = 3;

/// The quiet zone on a TTY: the spec's four modules when the screen still fits 24 rows, else
/// two.
fn tty_quiet_zone(width: usize) -> usize {
    let rows = |q: usize| (width + 2 * q).div_ceil(2);
    if rows(QUIET_ZONE) + TEXT_ROWS <= SCREEN_ROWS {
        QUIET_ZONE
    } else {
        NARROW_QUIET_ZONE
    }
}

/// QR lines on a TTY: blocks in black (cube colour 16) are the dark modules, on a white
/// background (231), so the light quiet zone is the cell background and fills each cell whole.
const QR_COLOURS: &str = "\x1b[38;5;16;48;5;231m";
/// The last QR line when the symbol has an odd number of rows: its upper half is quiet zone
/// (white blocks), its lower half is below the code and keeps the terminal's own background.
const QR_LAST_HALF_LINE: &str = "\x1b[38;5;231;49m";
/// Back to the terminal's colours, after every coloured line.
const RESET: &str = "\x1b[0m";

/// The console presenter: the code, the URL and (in [`Style::Qr`]) a QR drawn with
/// characters, on a terminal or a serial console.
pub struct Console<W: Write> {
    out: W,
    style: Style,
    tty: bool,
    /// The countdown currently occupies the last line (TTY only).
    countdown_shown: bool,
    last_countdown: Option<u64>,
    /// The code on show, cleaned, which the countdown repeats.
    user_code: String,
}

impl Console<io::Stdout> {
    /// On standard output, detecting whether it is a terminal.
    pub fn stdout(style: Style) -> Self {
        let tty = io::stdout().is_terminal();
        Console::new(io::stdout(), style, tty)
    }
}

impl Console<io::Stderr> {
    /// On standard error (used when standard output carries JSON lines).
    pub fn stderr(style: Style) -> Self {
        let tty = io::stderr().is_terminal();
        Console::new(io::stderr(), style, tty)
    }
}

impl Console<Box<dyn Write + Send>> {
    /// On standard error (`true`) or standard output, as one type: each writer type is a copy
    /// of the whole presenter in the binary, so the agent's own choice (`present/select.rs`)
    /// makes both through this one (-1,136 bytes on armv7; BENCHMARKS.md, "Bytes for the third
    /// wave").
    pub fn standard(stderr: bool, style: Style) -> Self {
        let (out, tty): (Box<dyn Write + Send>, bool) = if stderr {
            (Box::new(io::stderr()), io::stderr().is_terminal())
        } else {
            (Box::new(io::stdout()), io::stdout().is_terminal())
        };
        Console::new(out, style, tty)
    }
}

impl<W: Write> Console<W> {
    /// A console presenter writing to `out`; `tty` says whether `out` is a terminal (the
    /// countdown then updates one line in place).
    pub fn new(out: W, style: Style, tty: bool) -> Self {
        Console {
            out,
            style,
            tty,
            countdown_shown: false,
            last_countdown: None,
            user_code: String::new(),
        }
    }

    /// Gives the writer back.
    pub fn into_inner(self) -> W {
        self.out
    }

    /// Text for this console: control characters replaced, and non-ASCII too in text style.
    fn clean<'a>(&self, s: &'a str) -> Cow<'a, str> {
        let bad = |c: char| c.is_control() || (self.style == Style::Text && !c.is_ascii());
        if s.chars().any(bad) {
            Cow::Owned(s.chars().map(|c| if bad(c) { '?' } else { c }).collect())
        } else {
            Cow::Borrowed(s)
        }
    }

    /// Writes whole lines, first erasing a countdown that sits on the current line.
    fn lines(&mut self, text: &str) -> io::Result<()> {
        if self.countdown_shown {
            self.out.write_all(b"\r\x1b[2K")?;
            self.countdown_shown = false;
            self.last_countdown = None;
        }
        self.out.write_all(text.as_bytes())?;
        self.out.flush()
    }

    fn code(&mut self, code: &ShownCode) -> io::Result<()> {
        let uri = self.clean(&code.verification_uri).into_owned();
        self.user_code = self.clean(&code.user_code).into_owned();
        let user_code = &self.user_code;
        let valid = minutes(code.expires_in);
        let mut text = String::new();
        match self.style {
            Style::Text => {
                if code.number > 1 {
                    text.push_str(&format!(
                        "\nThe previous code can no longer be used. New code ({} of {}):\n",
                        code.number, code.max_codes
                    ));
                }
                text.push_str(&format!(
                    "\nTo pair this device with Salesforce, open {uri}\nand enter the code \
                     {user_code}\n\nThe code is valid for {valid}.\n"
                ));
            }
            Style::Qr => {
                match QrMatrix::encode(&code.one_tap_uri) {
                    Some(qr) if self.tty => {
                        text.push_str(&tty_qr(&qr, tty_quiet_zone(qr.width())));
                    }
                    Some(qr) => {
                        text.push('\n');
                        for line in half_blocks(&qr, QUIET_ZONE).lines() {
                            text.push_str(&format!("  {line}\n"));
                        }
                    }
                    None => text.push_str("  (the URL is too long for a QR code)\n"),
                }
                // The words last, so they are what stays on a short screen.
                if code.number > 1 {
                    text.push_str(&format!(
                        "New code ({} of {}): scan it with a phone, or open\n",
                        code.number, code.max_codes
                    ));
                } else {
                    text.push_str(
                        "To pair this device with Salesforce, scan the QR code with a phone, or open\n",
                    );
                }
                text.push_str(&format!("{uri}\n"));
                if !self.tty {
                    text.push_str(&format!(
                        "and enter the code {user_code} (valid for {valid}).\n"
                    ));
                }
            }
        }
        self.lines(&text)?;
        // On a TTY the third line is the countdown, which repeats the code.
        self.countdown(code.expires_in)
    }

    fn countdown(&mut self, remaining: Duration) -> io::Result<()> {
        if !self.tty || self.style == Style::Text {
            return Ok(());
        }
        let secs = remaining.as_secs() + u64::from(remaining.subsec_nanos() > 0);
        if self.last_countdown == Some(secs) {
            return Ok(());
        }
        self.last_countdown = Some(secs);
        self.countdown_shown = true;
        write!(
            self.out,
            "\r\x1b[2Kand enter the code {}; it expires in {}:{:02}",
            self.user_code,
            secs / 60,
            secs % 60
        )?;
        self.out.flush()
    }
}

/// The QR for a terminal, with its colours set: the plain rendering draws the *light* modules
/// as blocks in the terminal's foreground colour, so here each cell is flipped (a block becomes
/// a space, an upper half a lower half) and drawn dark on a light background. Every line ends
/// with a reset, so nothing is left coloured if the output stops mid-way.
fn tty_qr(qr: &QrMatrix, quiet_zone: usize) -> String {
    let plain = half_blocks(qr, quiet_zone);
    let rows = plain.lines().count();
    let odd = (qr.width() + 2 * quiet_zone) % 2 == 1;
    let mut out = String::with_capacity(plain.len() + rows * 32);
    for (i, line) in plain.lines().enumerate() {
        out.push_str("  ");
        if odd && i + 1 == rows {
            // Only the upper half belongs to the symbol: light blocks, terminal background below.
            out.push_str(QR_LAST_HALF_LINE);
            out.push_str(line);
        } else {
            out.push_str(QR_COLOURS);
            out.extend(line.chars().map(|c| match c {
                '█' => ' ',
                ' ' => '█',
                '▀' => '▄',
                '▄' => '▀',
                other => other,
            }));
        }
        out.push_str(RESET);
        out.push('\n');
    }
    out
}

/// "10 minutes", "90 seconds".
fn minutes(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 120 && s.is_multiple_of(60) {
        format!("{} minutes", s / 60)
    } else {
        format!("{s} seconds")
    }
}

impl<W: Write + Send> Presenter for Console<W> {
    fn show(&mut self, event: &Event) {
        let written = match event {
            Event::CodeIssued(code) => self.code(code),
            Event::Countdown { remaining } => self.countdown(*remaining),
            Event::CodeExpired {
                last: false,
                reason,
                ..
            } => {
                let line = format!("{}.\n", self.clean(reason));
                self.lines(&line)
            }
            Event::CodeExpired { last: true, .. } => Ok(()),
            Event::SlowDown { interval } => self.lines(&format!(
                "The server asked to poll less often: every {} s now.\n",
                interval.as_secs()
            )),
            Event::Retrying { reason, delay } => {
                let line = format!(
                    "Trouble reaching the server ({}); trying again in {} s.\n",
                    self.clean(reason),
                    delay.as_secs().max(1)
                );
                self.lines(&line)
            }
            Event::Paired(p) => {
                let org = p
                    .org_id
                    .as_deref()
                    .map(|o| format!(" (org {o})"))
                    .unwrap_or_default();
                let line = format!(
                    "\nPaired. This device now works with {}{}.\n",
                    self.clean(&p.instance_url),
                    self.clean(&org)
                );
                self.lines(&line)
            }
            // main prints the error itself, once; here only the countdown line goes.
            Event::Failed(_) => self.lines(""),
        };
        if let Err(e) = written {
            log::debug!("console output failed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Paired;

    fn code(number: u32) -> ShownCode {
        ShownCode {
            number,
            ..crate::testing::shown_code(
                "https://login.salesforce.com/setup/connect?user_code=X1D9SEET",
            )
        }
    }

    fn render(style: Style, tty: bool, events: &[Event]) -> String {
        let mut c = Console::new(Vec::new(), style, tty);
        for e in events {
            c.show(e);
        }
        String::from_utf8(c.into_inner()).unwrap()
    }

    #[test]
    fn off_a_tty_the_screen_has_no_control_characters_and_the_qr_scans() {
        let out = render(
            Style::Qr,
            false,
            &[
                Event::CodeIssued(code(1)),
                Event::Countdown {
                    remaining: Duration::from_secs(599),
                },
                Event::Retrying {
                    reason: "login.salesforce.com: timed out".into(),
                    delay: Duration::from_secs(8),
                },
            ],
        );
        assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "{out:?}");
        assert!(out.contains("X1D9SEET"));
        assert!(out.contains("https://login.salesforce.com/setup/connect\n"));
        assert!(out.contains("valid for 10 minutes"));
        assert!(!out.contains("expires in 9:59"), "no countdown off a TTY");
        let qr = qr_lines(&out);
        assert_eq!(
            crate::present::qr::terminal_qr::decode_half_blocks(&qr),
            "https://login.salesforce.com/setup/connect?user_code=X1D9SEET"
        );
    }

    /// The QR lines of a rendering: indented, and either drawn in half blocks (plain) or
    /// starting with a colour code (TTY); the indentation is cut.
    fn qr_lines(out: &str) -> String {
        out.lines()
            .filter(|l| l.starts_with("  ") && (l.contains('█') || l.contains('\x1b')))
            .map(|l| format!("{}\n", &l[2..]))
            .collect()
    }

    #[test]
    fn on_a_tty_the_qr_sets_its_colours_and_scans_on_dark_and_light_themes() {
        use crate::present::qr::terminal_qr::{Theme, decode_terminal};
        let url = "https://login.salesforce.com/setup/connect?user_code=X1D9SEET";
        let out = render(Style::Qr, true, &[Event::CodeIssued(code(1))]);
        let qr = qr_lines(&out);
        assert_eq!(qr.lines().count(), 21, "{out:?}");
        for line in qr.lines() {
            assert!(
                line.starts_with(QR_COLOURS) || line.starts_with(QR_LAST_HALF_LINE),
                "{line:?}"
            );
            assert!(line.ends_with(RESET), "each line resets: {line:?}");
            assert_eq!(line.matches('\x1b').count(), 2, "{line:?}");
        }
        // The decoder reads the escape codes as a terminal does and panics on a line that
        // leaves colours set.
        assert_eq!(decode_terminal(&qr, Theme::Dark), url);
        assert_eq!(decode_terminal(&qr, Theme::Light), url);
        // Nothing after the code is coloured: the text after the QR starts at a reset.
        let after = &out[out.rfind(RESET).unwrap() + RESET.len()..];
        assert!(
            !after.contains("\x1b[38") && !after.contains("\x1b[48"),
            "{after:?}"
        );
        assert!(after.contains("https://login.salesforce.com/setup/connect\n"));
        assert!(after.ends_with("and enter the code X1D9SEET; it expires in 10:00"));
    }

    /// The screen on a TTY, as its rows: the QR, the two lines, the countdown.
    fn tty_rows(url: &str) -> Vec<String> {
        let mut c = code(1);
        c.one_tap_uri = url.into();
        let out = render(Style::Qr, true, &[Event::CodeIssued(c)]);
        out.split('\n').map(str::to_string).collect()
    }

    #[test]
    fn on_a_tty_the_screen_fits_24_rows_with_the_code_and_the_url_last() {
        use crate::present::qr::terminal_qr::{Theme, decode_terminal};
        let login = "https://login.salesforce.com/setup/connect?user_code=X1D9SEET";
        // A long My Domain with prompt=login: a bigger QR, drawn with a narrower quiet zone.
        let sandbox = "https://acme-industrial--uat.sandbox.my.salesforce.com/setup/connect\
                       ?user_code=X1D9SEET&prompt=login";
        for url in [login, sandbox] {
            let rows = tty_rows(url);
            assert!(rows.len() <= 24, "{} rows for {url}", rows.len());
            let n = rows.len();
            assert!(rows[n - 3].ends_with("or open"), "{:?}", &rows[n - 3..]);
            assert_eq!(rows[n - 2], "https://login.salesforce.com/setup/connect");
            assert!(rows[n - 1].contains("enter the code X1D9SEET; it expires in 10:00"));
            let qr: String = rows
                .iter()
                .filter(|l| l.starts_with("  \x1b"))
                .map(|l| format!("{}\n", &l[2..]))
                .collect();
            for theme in [Theme::Dark, Theme::Light] {
                assert_eq!(decode_terminal(&qr, theme), url);
            }
        }
        assert_eq!(
            tty_quiet_zone(33),
            4,
            "a login.salesforce.com code keeps 4 modules"
        );
        assert_eq!(tty_quiet_zone(37), 2);
    }

    #[test]
    fn the_plain_qr_needs_a_dark_theme_which_is_why_the_tty_form_sets_colours() {
        use crate::present::qr::terminal_qr::{Theme, decode_terminal};
        let out = render(Style::Qr, false, &[Event::CodeIssued(code(1))]);
        let qr = qr_lines(&out);
        assert!(!qr.contains('\x1b'));
        assert_eq!(
            decode_terminal(&qr, Theme::Dark),
            "https://login.salesforce.com/setup/connect?user_code=X1D9SEET"
        );
        // On a white background the same text is an inverted code, which rqrr (like many
        // phone scanners) does not find.
        let light = std::panic::catch_unwind(|| decode_terminal(&qr, Theme::Light))
            .expect_err("the plain form decoded on a light theme");
        let why = light.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(
            why.contains("expected exactly one QR code") || why.contains("the QR code decodes"),
            "it failed for another reason: {why}"
        );
    }

    #[test]
    fn text_style_is_plain_ascii_without_a_qr() {
        let out = render(
            Style::Text,
            true,
            &[
                Event::CodeIssued(code(2)),
                Event::Countdown {
                    remaining: Duration::from_secs(5),
                },
            ],
        );
        assert!(out.is_ascii());
        assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "{out:?}");
        assert!(out.contains("New code (2 of 3)"));
        assert!(out.contains("enter the code X1D9SEET"));
        assert!(!out.contains('█'));
    }

    #[test]
    fn on_a_tty_the_countdown_ticks_on_one_line() {
        let out = render(
            Style::Qr,
            true,
            &[
                Event::CodeIssued(code(1)),
                Event::Countdown {
                    remaining: Duration::from_millis(599_500),
                },
                Event::Countdown {
                    remaining: Duration::from_millis(599_100),
                },
                Event::Countdown {
                    remaining: Duration::from_secs(598),
                },
                Event::Paired(Paired {
                    instance_url: "https://acme.my.salesforce.com".into(),
                    org_id: Some("00D".into()),
                    user_id: None,
                }),
            ],
        );
        assert_eq!(
            out.matches("expires in 10:00").count(),
            1,
            "same second drawn once"
        );
        assert!(out.contains("\r\x1b[2Kand enter the code X1D9SEET; it expires in 9:58"));
        assert!(
            out.contains("\r\x1b[2K\nPaired."),
            "countdown erased before the result"
        );
    }

    #[test]
    fn hostile_server_text_cannot_drive_the_terminal() {
        let mut c = code(1);
        c.user_code = "AB\x1b[2JCD".into();
        c.verification_uri = "https://x/\x07connect".into();
        let out = render(Style::Qr, false, &[Event::CodeIssued(c)]);
        assert!(!out.contains('\x1b') && !out.contains('\x07'));
        assert!(out.contains("AB?[2JCD"));
    }
}
