//! Which presenters a pairing gets: the product's policy for `--display` values, in the library
//! so that `sfpair pair`, `examples/firmware.rs` and other embedders behave the same.
//!
//! - No display given: the console (standard output), unless `--json`, where standard output
//!   carries only JSON lines and nothing else is shown.
//! - With `--json`, consoles go to standard error.
//! - A panel that cannot be opened is logged with what to check, and pairing goes on without it:
//!   a missing panel must not keep the device from pairing.
//! - When every panel failed and no console was asked for, nobody would see the code: that is
//!   said loudly, and the code goes to standard error as plain text (without `--json`).
//!
//! Opening a device is each panel's own job; this file only chooses.

use super::Presenter;
use super::console::{Console, Style};
#[cfg(feature = "displays")]
use super::fbdev::FrameBuffer;
#[cfg(feature = "displays")]
use super::frame_file::{Format, FrameFile};
use super::json::JsonLines;
#[cfg(feature = "displays")]
use super::screen::{Panel, Screen};
#[cfg(feature = "displays")]
use super::sh1106::Sh1106;
#[cfg(feature = "displays")]
use super::spec::Controller;
use super::spec::Display;
#[cfg(feature = "displays")]
use super::ssd1306::Ssd1306;

/// The presenters for `displays` (console when empty), plus JSON lines on standard output
/// with `json`.
pub fn presenters(displays: &[Display], json: bool) -> Vec<Box<dyn Presenter>> {
    let default = [Display::Console];
    let displays = if displays.is_empty() && !json {
        &default[..]
    } else {
        displays
    };
    let mut chosen: Vec<Box<dyn Presenter>> = Vec::new();
    let mut consoles = false;
    #[cfg_attr(not(feature = "displays"), allow(unused_mut))]
    let mut panels_opened = 0;
    #[cfg_attr(not(feature = "displays"), allow(unused_mut))]
    let mut panels_failed = 0;
    for display in displays {
        let style = match display {
            Display::Console => Style::Qr,
            Display::Text => Style::Text,
            #[cfg(feature = "displays")]
            panel => {
                match open(panel) {
                    Some(presenter) => {
                        chosen.push(presenter);
                        panels_opened += 1;
                    }
                    None => panels_failed += 1,
                }
                continue;
            }
        };
        consoles = true;
        // With --json, standard output carries only JSON lines; a console goes to stderr.
        chosen.push(Box::new(Console::standard(json, style)));
    }
    if json {
        chosen.push(Box::new(JsonLines::stdout()));
    }
    if panels_failed > 0 && panels_opened == 0 && !consoles {
        if json {
            log::error!(
                "none of the displays could be opened: the code is shown only in the JSON events"
            );
        } else {
            log::error!(
                "none of the displays could be opened: showing the code as text on standard error"
            );
            chosen.push(Box::new(Console::standard(true, Style::Text)));
        }
    }
    chosen
}

/// Opens a small display (OLED, framebuffer, PBM or PNG frame file) for the pairing screen, or
/// logs why it cannot, naming the device and what to check. `None` for the consoles (and for
/// everything in a build without the `displays` feature, which has no other kind).
#[cfg(not(feature = "displays"))]
pub fn open(_display: &Display) -> Option<Box<dyn Presenter>> {
    None
}

/// See the other `open`: this is it with the `displays` feature.
#[cfg(feature = "displays")]
pub fn open(display: &Display) -> Option<Box<dyn Presenter>> {
    let panel = open_panel(display)?;
    panel
        .map(|panel| Box::new(Screen::new(panel)) as Box<dyn Presenter>)
        .map_err(|e| log::error!("cannot open the display {e}; pairing goes on without it"))
        .ok()
}

/// Opens the panel of a small display; `None` for the consoles, which have none. `sfpair
/// doctor` asks the panel its size; [`open`] wraps it in the pairing screen.
#[cfg(feature = "displays")]
pub fn open_panel(display: &Display) -> Option<std::io::Result<Box<dyn Panel>>> {
    fn boxed<P: Panel + 'static>(panel: P) -> Box<dyn Panel> {
        Box::new(panel)
    }
    Some(match display {
        Display::Oled(oled) => match oled.controller {
            Controller::Ssd1306 => Ssd1306::open(&oled.bus, oled.address, oled.height).map(boxed),
            Controller::Sh1106 { column_offset } => {
                Sh1106::open(&oled.bus, oled.address, column_offset).map(boxed)
            }
        },
        Display::Framebuffer(path) => FrameBuffer::open(path).map(boxed),
        Display::Pbm {
            path,
            width,
            height,
        } => FrameFile::new(path, *width, *height, Format::Pbm).map(boxed),
        Display::Png {
            path,
            width,
            height,
        } => FrameFile::new(path, *width, *height, Format::Png).map(boxed),
        Display::Console | Display::Text => return None,
    })
}
