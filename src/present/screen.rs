//! The presenter for small displays: turns pairing events into 1-bit frames and hands them to a
//! [`Panel`] (an OLED, a framebuffer, a frame file).
//!
//! It sends only what changed: the countdown rewrites a few characters, so an OLED gets one page
//! strip instead of a kilobyte. It never leaves a code behind: when pairing ends the code screen
//! is replaced by the outcome (paired, denied, error), which holds no code; and if the presenter
//! is dropped while a code is still up (a library user who abandons the pairing, an early return)
//! it blanks the panel. A panel that fails is retried on the next event and given up after a few
//! failures in a row, with a warning; it never stops the pairing.

use std::io;
use std::time::Duration;

use log::{debug, error, warn};

use super::Presenter;
use super::canvas::{Area, Canvas};
use super::layout::{CodeScreen, message_screen};
use crate::error::ErrorKind;
use crate::event::Event;

/// A display that shows 1-bit frames.
pub trait Panel: Send {
    /// The canvas size the panel wants, in pixels (width, height).
    fn size(&self) -> (u32, u32);
    /// For messages: which device this is, e.g. `ssd1306 on /dev/i2c-1 at 0x3c`.
    fn describe(&self) -> String;
    /// Shows `frame`. Only the pixels in `changed` differ from what the panel shows now (the
    /// whole frame the first time and after an error), so a panel may send just those.
    fn show(&mut self, frame: &Canvas, changed: Area) -> io::Result<()>;
}

/// A boxed panel is a panel: the binary drives every kind through one `Screen<Box<dyn Panel>>`,
/// so the presenter's code is in the binary once, not once per kind of panel (~8 KB on armv7).
impl Panel for Box<dyn Panel> {
    fn size(&self) -> (u32, u32) {
        (**self).size()
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn show(&mut self, frame: &Canvas, changed: Area) -> io::Result<()> {
        (**self).show(frame, changed)
    }
}

/// Failures in a row after which a panel is left alone.
const GIVE_UP_AFTER: u32 = 3;

/// A small display as a presenter: the layouts of `layout.rs` drawn on a 1-bit canvas and
/// sent to a panel.
pub struct Screen<P: Panel> {
    panel: P,
    /// What the panel shows now, when known.
    shown: Option<Canvas>,
    /// The code screen being shown, if any.
    code: Option<CodeScreen>,
    /// The whole seconds left last drawn.
    seconds_left: Option<u64>,
    failures: u32,
    warned_text_only: bool,
}

impl<P: Panel> Screen<P> {
    /// A presenter drawing on `panel`.
    pub fn new(panel: P) -> Self {
        Screen {
            panel,
            shown: None,
            code: None,
            seconds_left: None,
            failures: 0,
            warned_text_only: false,
        }
    }

    /// The panel (tests read what was drawn).
    pub fn panel(&self) -> &P {
        &self.panel
    }

    /// Is a code on the panel now?
    pub fn shows_code(&self) -> bool {
        self.code.is_some()
    }

    fn size(&self) -> (u32, u32) {
        self.panel.size()
    }

    /// Sends the part of `frame` that differs from what is shown.
    fn put(&mut self, frame: Canvas) {
        if self.failures >= GIVE_UP_AFTER {
            return;
        }
        let changed = match &self.shown {
            Some(shown) => match frame.changes_from(shown) {
                Some(area) => area,
                None => return,
            },
            None => frame.area(),
        };
        match self.panel.show(&frame, changed) {
            Ok(()) => {
                self.failures = 0;
                self.shown = Some(frame);
            }
            Err(e) => {
                self.failures += 1;
                self.shown = None; // unknown now: the next frame goes whole
                if self.failures >= GIVE_UP_AFTER {
                    error!(
                        "display {}: {e}; giving up on it after {GIVE_UP_AFTER} failures (pairing goes on)",
                        self.panel.describe()
                    );
                } else {
                    warn!("display {}: {e}", self.panel.describe());
                }
            }
        }
    }

    fn message(&mut self, title: &str, detail: &str) {
        self.code = None;
        self.seconds_left = None;
        let (w, h) = self.size();
        self.put(message_screen(w, h, title, detail));
    }

    fn code_frame(&mut self, remaining: Duration) {
        let secs = remaining.as_secs() + u64::from(remaining.subsec_nanos() > 0);
        if self.seconds_left == Some(secs) && self.shown.is_some() {
            return;
        }
        let Some(screen) = &self.code else { return };
        let frame = screen.draw(remaining);
        self.seconds_left = Some(secs);
        self.put(frame);
    }
}

/// What the outcome screen says for a failure of this kind: a title and a few words.
fn failure_words(kind: ErrorKind) -> (&'static str, &'static str) {
    match kind {
        ErrorKind::Denied => ("Denied", "access was denied"),
        ErrorKind::Expired => ("Expired", "nobody approved in time"),
        ErrorKind::Config => ("Setup error", "see the log"),
        ErrorKind::Network => ("No network", "see the log"),
        ErrorKind::Storage => ("Storage error", "see the log"),
        _ => ("Error", "see the log"),
    }
}

impl<P: Panel> Presenter for Screen<P> {
    fn show(&mut self, event: &Event) {
        match event {
            Event::CodeIssued(code) => {
                let (w, h) = self.size();
                let screen = CodeScreen::plan(w, h, code);
                if let Some(reason) = screen.text_only_reason() {
                    if !self.warned_text_only {
                        warn!("display {}: {reason}", self.panel.describe());
                        self.warned_text_only = true;
                    }
                } else if let Some(qr) = screen.qr() {
                    debug!(
                        "display {}: QR of {} modules at {} px per module",
                        self.panel.describe(),
                        qr.modules,
                        qr.scale
                    );
                }
                self.code = Some(screen);
                self.seconds_left = None;
                self.code_frame(code.expires_in);
            }
            Event::Countdown { remaining } => self.code_frame(*remaining),
            Event::CodeExpired { last: false, .. } => self.message("Expired", "getting a new code"),
            Event::CodeExpired { last: true, .. } => self.message("Expired", "no more codes"),
            Event::SlowDown { .. } | Event::Retrying { .. } => {}
            Event::Paired(p) => {
                let host = crate::url::host(&p.instance_url).unwrap_or("");
                self.message("Paired", host);
            }
            Event::Failed(e) => {
                let (title, detail) = failure_words(e.kind());
                self.message(title, detail);
            }
        }
    }
}

impl<P: Panel> Drop for Screen<P> {
    /// A code must not outlive the pairing on the panel (on e-paper it would survive power-off).
    fn drop(&mut self) {
        if self.code.is_some() {
            let (w, h) = self.size();
            self.failures = 0; // one last try, whatever happened before
            self.shown = None;
            self.code = None;
            self.put(Canvas::new(w, h));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::event::{Paired, ShownCode};
    use std::sync::{Arc, Mutex};

    /// A panel that records what it is asked to show, and can fail on demand.
    #[derive(Clone, Default)]
    struct Recorder {
        calls: Arc<Mutex<Vec<(Canvas, Area)>>>,
        fail: Arc<Mutex<bool>>,
    }

    impl Panel for Recorder {
        fn size(&self) -> (u32, u32) {
            (128, 64)
        }
        fn describe(&self) -> String {
            "recorder".into()
        }
        fn show(&mut self, frame: &Canvas, changed: Area) -> io::Result<()> {
            if *self.fail.lock().unwrap() {
                return Err(io::Error::other("unplugged"));
            }
            self.calls.lock().unwrap().push((frame.clone(), changed));
            Ok(())
        }
    }

    fn code() -> ShownCode {
        crate::testing::shown_code("https://login.salesforce.com/setup/connect?user_code=X1D9SEET")
    }

    fn tick(s: &mut Screen<Recorder>, millis: u64) {
        s.show(&Event::Countdown {
            remaining: Duration::from_millis(millis),
        });
    }

    #[test]
    fn the_countdown_sends_only_the_changed_strip_once_per_second() {
        let rec = Recorder::default();
        let mut s = Screen::new(rec.clone());
        s.show(&Event::CodeIssued(code()));
        tick(&mut s, 600_000); // same second as the code screen: nothing
        tick(&mut s, 599_000);
        tick(&mut s, 598_600); // rounds up to the same second: nothing
        tick(&mut s, 598_000);
        let calls = rec.calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 3, "code screen, 9:59, 9:58");
        assert_eq!(calls[0].1, calls[0].0.area(), "the first frame goes whole");
        for (frame, area) in &calls[1..] {
            assert!(area.height <= 10 && area.width < 64, "{area:?}");
            assert!(area.x >= 37, "the strip is beside the 37 px QR: {area:?}");
            assert_eq!(frame.width(), 128);
        }
    }

    #[test]
    fn the_code_is_gone_when_pairing_ends() {
        let rec = Recorder::default();
        let mut s = Screen::new(rec.clone());
        s.show(&Event::CodeIssued(code()));
        assert!(s.shows_code());
        s.show(&Event::Paired(Paired {
            instance_url: "https://acme.my.salesforce.com".into(),
            org_id: None,
            user_id: None,
        }));
        assert!(!s.shows_code());
        let code_frame = rec.calls.lock().unwrap()[0].0.clone();
        let last = rec.calls.lock().unwrap().last().unwrap().0.clone();
        assert_ne!(last, code_frame);
        drop(s);
        assert_eq!(
            rec.calls.lock().unwrap().len(),
            2,
            "the outcome stays; nothing to blank"
        );
    }

    #[test]
    fn dropping_the_presenter_mid_pairing_blanks_the_panel() {
        let rec = Recorder::default();
        let mut s = Screen::new(rec.clone());
        s.show(&Event::CodeIssued(code()));
        drop(s);
        let last = rec.calls.lock().unwrap().last().unwrap().clone();
        assert_eq!(last.0, Canvas::new(128, 64));
        assert_eq!(last.1, last.0.area());
    }

    #[test]
    fn a_failing_panel_is_retried_whole_then_given_up() {
        let rec = Recorder::default();
        let mut s = Screen::new(rec.clone());
        *rec.fail.lock().unwrap() = true;
        s.show(&Event::CodeIssued(code()));
        *rec.fail.lock().unwrap() = false;
        tick(&mut s, 599_500);
        let calls = rec.calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 1);
        assert_eq!(
            calls[0].1,
            calls[0].0.area(),
            "after a failure, the whole frame"
        );
        *rec.fail.lock().unwrap() = true;
        for ms in [598_500, 597_500, 596_500] {
            tick(&mut s, ms);
        }
        *rec.fail.lock().unwrap() = false;
        tick(&mut s, 595_500);
        s.show(&Event::Failed(Error::new(ErrorKind::Denied, "denied")));
        assert_eq!(
            rec.calls.lock().unwrap().len(),
            1,
            "given up after 3 failures"
        );
    }

    #[test]
    fn failures_show_their_kind_without_the_code() {
        for kind in [ErrorKind::Denied, ErrorKind::Expired, ErrorKind::Network] {
            let rec = Recorder::default();
            let mut s = Screen::new(rec.clone());
            s.show(&Event::CodeIssued(code()));
            s.show(&Event::Failed(Error::new(kind, "x")));
            let (title, detail) = failure_words(kind);
            let last = rec.calls.lock().unwrap().last().unwrap().0.clone();
            assert_eq!(last, message_screen(128, 64, title, detail));
            assert!(!s.shows_code());
        }
    }
}
