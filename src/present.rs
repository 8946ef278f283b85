//! What the person sees: presenters turn pairing events into a console screen, JSON lines for a
//! host UI, or 1-bit frames on small displays (`screen.rs` drives the panels: SSD1306 and SH1106
//! OLEDs over i2c-dev, Linux framebuffers, PBM and PNG frame files).
//!
//! A presenter never fails the pairing: a display that breaks logs a warning and the others go
//! on. Presenters get only [`Event`]s, which hold no token and no device code.
//!
//! Always built (with `std`): the console (QR or plain text), JSON lines, and the `--display`
//! parser. The small displays are the `displays` feature (Cargo.toml says what they cost).

pub mod console;
pub mod json;
pub mod qr;
pub mod select;
pub mod spec;

#[cfg(feature = "displays")]
pub mod canvas;
#[cfg(feature = "displays")]
pub mod fbdev;
#[cfg(feature = "displays")]
pub mod frame_file;
#[cfg(feature = "displays")]
pub mod i2c;
#[cfg(feature = "displays")]
pub mod layout;
#[cfg(feature = "displays")]
pub mod pbm;
#[cfg(feature = "displays")]
pub mod png;
#[cfg(feature = "displays")]
pub mod screen;
#[cfg(feature = "displays")]
pub mod sh1106;
#[cfg(feature = "displays")]
pub mod ssd1306;

/// Test helpers shared with the integration tests: QR read-back off 1-bit frames, and software
/// models of the OLED controllers.
#[cfg(all(test, feature = "displays"))]
#[path = "../tests/support/frame_qr.rs"]
pub(crate) mod frame_qr;
#[cfg(all(test, feature = "displays"))]
#[path = "../tests/support/oled_model.rs"]
pub(crate) mod oled_model;

use crate::event::Event;

/// Shows pairing events somewhere.
pub trait Presenter: Send {
    /// Shows `event` (a presenter ignores the kinds it does not know).
    fn show(&mut self, event: &Event);

    /// Why this presenter can no longer show anything (its output failed: standard output
    /// closed or full), or `None` while it works. When every presenter is broken, nobody can see
    /// the code and the pairing stops instead of polling for a code no one was shown.
    fn broken(&self) -> Option<&str> {
        None
    }
}
