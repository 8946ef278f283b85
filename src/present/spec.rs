//! What a `--display` value names: the console, plain text, an OLED on an I2C bus, a
//! framebuffer, or frame files. Parsing only, with messages that say what is wrong; opening the
//! device is the presenters' job (`main.rs` wires them). Board profiles check their panels with
//! this same parser, so a profile and the command line can never disagree.
//!
//! Without the `displays` feature only `console` and `text` exist; a panel kind is refused with
//! a message saying this build lacks it, not as an unknown word.

#[cfg(feature = "displays")]
use std::path::PathBuf;

use crate::error::Error;

/// Where the pairing screen goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Display {
    /// Code, URL and QR on the terminal.
    Console,
    /// Plain ASCII lines, no QR.
    Text,
    #[cfg(feature = "displays")]
    /// An OLED on an I2C bus: `ssd1306:BUS[@ADDR][:128x32]`, `sh1106:BUS[@ADDR]`,
    /// `sh1106-no-offset:BUS[@ADDR]`.
    Oled(Oled),
    #[cfg(feature = "displays")]
    /// A Linux framebuffer: `fb:/dev/fbN`.
    Framebuffer(PathBuf),
    #[cfg(feature = "displays")]
    /// Frame files: `pbm:PATH[:WxH]`, 128x64 by default.
    Pbm {
        /// The file.
        path: PathBuf,
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    #[cfg(feature = "displays")]
    /// PNG frame files: `png:PATH[:WxH]`, 128x64 by default.
    Png {
        /// The file.
        path: PathBuf,
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
}

/// Which OLED controller, and where it is.
#[cfg(feature = "displays")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Oled {
    /// Which chip drives it.
    pub controller: Controller,
    /// The i2c-dev bus, e.g. `/dev/i2c-1`.
    pub bus: PathBuf,
    /// 7-bit address (0x3c unless the module's SA0 pad says 0x3d).
    pub address: u16,
    /// Rows: 64, or 32 for 128x32 SSD1306 modules.
    pub height: u32,
}

#[cfg(feature = "displays")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
/// The OLED controllers sfpair drives.
pub enum Controller {
    /// SSD1306.
    Ssd1306,
    /// Where the 128-pixel panel starts in the 132-column RAM: 2 on most modules, 0 on some.
    Sh1106 {
        /// The columns the panel is shifted by (2 on most 1.3" modules).
        column_offset: u8,
    },
}

#[cfg(feature = "displays")]
const DISPLAY_FORMS: &str = "use console, text, ssd1306:/dev/i2c-N[@0x3c][:128x32], \
     sh1106:/dev/i2c-N[@0x3c], sh1106-no-offset:/dev/i2c-N[@0x3c], fb:/dev/fbN, pbm:PATH[:WxH] or png:PATH[:WxH]";

/// `WxH`, e.g. `128x64`.
#[cfg(feature = "displays")]
fn size(text: &str) -> Option<(u32, u32)> {
    let (w, h) = text.split_once('x')?;
    Some((w.parse().ok()?, h.parse().ok()?))
}

/// Splits a trailing `:WxH` off `rest`, when there is one.
#[cfg(feature = "displays")]
fn with_size(rest: &str) -> (&str, Option<(u32, u32)>) {
    match rest.rsplit_once(':') {
        Some((head, tail)) if size(tail).is_some() => (head, size(tail)),
        _ => (rest, None),
    }
}

/// The panel kinds a `--display` value or a board profile may name, before the `:`.
pub const PANEL_KINDS: [&str; 6] = ["ssd1306", "sh1106", "sh1106-no-offset", "fb", "pbm", "png"];

/// One `--display` value.
pub fn display(spec: &str) -> Result<Display, Error> {
    match spec {
        "console" => Ok(Display::Console),
        "text" => Ok(Display::Text),
        #[cfg(feature = "displays")]
        _ => panel_value(spec),
        #[cfg(not(feature = "displays"))]
        _ => Err(Error::config(match spec.split_once(':') {
            Some((kind, _)) if PANEL_KINDS.contains(&kind) => format!(
                "--display '{spec}': {WITHOUT_DISPLAYS}; use --display console or text, or a \
                 full build"
            ),
            _ => format!("unknown --display '{spec}': use console or text"),
        })),
    }
}

/// What a build without the `displays` feature says of a panel.
#[cfg(not(feature = "displays"))]
const WITHOUT_DISPLAYS: &str =
    "this sfpair is built without small displays (the `displays` feature)";

/// A small display's `--display` value.
#[cfg(feature = "displays")]
fn panel_value(spec: &str) -> Result<Display, Error> {
    let bad = |why: String| Error::config(format!("--display '{spec}': {why}"));
    let (kind, rest) = spec
        .split_once(':')
        .ok_or_else(|| Error::config(format!("unknown --display '{spec}': {DISPLAY_FORMS}")))?;
    let (target, size) = with_size(rest);
    let (target, address) = match target.rsplit_once('@') {
        Some((bus, addr)) if i2c(kind) => {
            let parsed = match addr.strip_prefix("0x").or_else(|| addr.strip_prefix("0X")) {
                Some(hex) => u16::from_str_radix(hex, 16).ok(),
                None => addr.parse().ok(),
            };
            let address = parsed.ok_or_else(|| {
                bad(format!(
                    "'{addr}' is not a 7-bit I2C address ({ADDRESS_RANGE})"
                ))
            })?;
            (bus, Some(address))
        }
        _ => (target, None),
    };
    panel(kind, target, address, size).map_err(|why| match why {
        Why::UnknownKind => Error::config(format!("unknown --display '{spec}': {DISPLAY_FORMS}")),
        Why::Address(why) | Why::Bad(why) => bad(why),
    })
}

/// Why [`panel`] refused: an unknown kind, a bad I2C address, or what is wrong with the rest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Why {
    /// Not a kind sfpair knows.
    UnknownKind,
    /// A bad I2C address (the text given).
    Address(String),
    /// Anything else wrong, said in words.
    Bad(String),
}

impl Why {
    /// For messages that do not start from a `--display` value (board profiles).
    pub fn text(&self) -> String {
        match self {
            #[cfg(feature = "displays")]
            Why::UnknownKind => format!("unknown display kind: {DISPLAY_FORMS}"),
            #[cfg(not(feature = "displays"))]
            Why::UnknownKind => "unknown display kind".into(),
            Why::Address(why) | Why::Bad(why) => why.clone(),
        }
    }
}

#[cfg(feature = "displays")]
const ADDRESS_RANGE: &str = "0x03 to 0x77; OLEDs use 0x3c or 0x3d";

#[cfg(feature = "displays")]
fn i2c(kind: &str) -> bool {
    matches!(kind, "ssd1306" | "sh1106" | "sh1106-no-offset")
}

/// A panel from its parts: `kind` one of [`PANEL_KINDS`], the device or file, the I2C address
/// (I2C panels; 0x3c when `None`) and the size (`None`: the kind's default). Every rule about
/// what sfpair can drive lives here: the `--display` parser and board profiles both call it.
#[cfg(not(feature = "displays"))]
pub fn panel(
    kind: &str,
    _target: &str,
    _address: Option<u16>,
    _size: Option<(u32, u32)>,
) -> Result<Display, Why> {
    if !PANEL_KINDS.contains(&kind) {
        return Err(Why::UnknownKind);
    }
    Err(Why::Bad(format!(
        "{WITHOUT_DISPLAYS}: a '{kind}' panel needs a full build"
    )))
}

/// See the other `panel`: this is it with the `displays` feature.
#[cfg(feature = "displays")]
pub fn panel(
    kind: &str,
    target: &str,
    address: Option<u16>,
    size: Option<(u32, u32)>,
) -> Result<Display, Why> {
    let bad = |why: String| Err(Why::Bad(why));
    if !PANEL_KINDS.contains(&kind) {
        return Err(Why::UnknownKind);
    }
    if target.is_empty() {
        return bad("the device or file is missing".into());
    }
    let controller = match kind {
        "ssd1306" => Some(Controller::Ssd1306),
        "sh1106" => Some(Controller::Sh1106 { column_offset: 2 }),
        "sh1106-no-offset" => Some(Controller::Sh1106 { column_offset: 0 }),
        _ => None,
    };
    if let Some(controller) = controller {
        let address = address.unwrap_or(0x3c);
        if !(0x03..=0x77).contains(&address) {
            return Err(Why::Address(format!(
                "{address:#04x} is not a 7-bit I2C address ({ADDRESS_RANGE})"
            )));
        }
        let height = match (controller, size) {
            (_, None | Some((128, 64))) => 64,
            (Controller::Ssd1306, Some((128, 32))) => 32,
            (Controller::Ssd1306, Some((w, h))) => {
                return bad(format!("an SSD1306 panel is 128x64 or 128x32, not {w}x{h}"));
            }
            (Controller::Sh1106 { .. }, Some((w, h))) => {
                return bad(format!("an SH1106 panel is 128x64, not {w}x{h}"));
            }
        };
        return Ok(Display::Oled(Oled {
            controller,
            bus: PathBuf::from(target),
            address,
            height,
        }));
    }
    if address.is_some() {
        return bad(format!("a {kind} display has no I2C address"));
    }
    match kind {
        "fb" if size.is_none() => Ok(Display::Framebuffer(PathBuf::from(target))),
        "fb" => bad("a framebuffer's size comes from the device; drop the :WxH".into()),
        _ => {
            let (width, height) = size.unwrap_or((128, 64));
            if !(16..=4096).contains(&width) || !(16..=4096).contains(&height) {
                return bad(format!(
                    "{width}x{height} is out of range: width and height must be 16 to 4096"
                ));
            }
            let path = PathBuf::from(target);
            Ok(if kind == "pbm" {
                Display::Pbm {
                    path,
                    width,
                    height,
                }
            } else {
                Display::Png {
                    path,
                    width,
                    height,
                }
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(not(feature = "displays"))]
    #[test]
    fn without_displays_only_the_console_and_text_exist() {
        assert_eq!(display("console").unwrap(), Display::Console);
        assert_eq!(display("text").unwrap(), Display::Text);
        for kind in PANEL_KINDS {
            let e = display(&format!("{kind}:/dev/x")).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{kind}");
            assert!(e.message().contains("built without small displays"), "{e}");
        }
        let e = display("oled").unwrap_err();
        assert!(e.message().contains("use console or text"), "{e}");
    }

    #[cfg(feature = "displays")]
    #[test]
    fn display_specs_name_the_panel_and_its_address() {
        let oled = |controller, bus: &str, address, height| {
            Display::Oled(Oled {
                controller,
                bus: PathBuf::from(bus),
                address,
                height,
            })
        };
        let cases = [
            ("console", Display::Console),
            ("text", Display::Text),
            (
                "ssd1306:/dev/i2c-1",
                oled(Controller::Ssd1306, "/dev/i2c-1", 0x3c, 64),
            ),
            (
                "ssd1306:/dev/i2c-0@0x3D",
                oled(Controller::Ssd1306, "/dev/i2c-0", 0x3d, 64),
            ),
            (
                "ssd1306:/dev/i2c-1@0x3c:128x32",
                oled(Controller::Ssd1306, "/dev/i2c-1", 0x3c, 32),
            ),
            (
                "ssd1306:/dev/i2c-1:128x32",
                oled(Controller::Ssd1306, "/dev/i2c-1", 0x3c, 32),
            ),
            (
                "sh1106:/dev/i2c-3@60",
                oled(
                    Controller::Sh1106 { column_offset: 2 },
                    "/dev/i2c-3",
                    60,
                    64,
                ),
            ),
            (
                "sh1106-no-offset:/dev/i2c-1",
                oled(
                    Controller::Sh1106 { column_offset: 0 },
                    "/dev/i2c-1",
                    0x3c,
                    64,
                ),
            ),
            (
                "fb:/dev/fb1",
                Display::Framebuffer(PathBuf::from("/dev/fb1")),
            ),
            (
                "pbm:/run/sfpair/frame.pbm",
                Display::Pbm {
                    path: PathBuf::from("/run/sfpair/frame.pbm"),
                    width: 128,
                    height: 64,
                },
            ),
            (
                "pbm:C:frames/x.pbm:256x128",
                Display::Pbm {
                    path: PathBuf::from("C:frames/x.pbm"),
                    width: 256,
                    height: 128,
                },
            ),
            (
                "png:frame.png:320x240",
                Display::Png {
                    path: PathBuf::from("frame.png"),
                    width: 320,
                    height: 240,
                },
            ),
        ];
        for (spec, expected) in cases {
            assert_eq!(display(spec).unwrap(), expected, "{spec}");
        }
        for (spec, says) in [
            ("oled", "unknown --display"),
            ("gif:/tmp/x.gif", "png:PATH"),
            ("ssd1306:", "missing"),
            ("ssd1306:/dev/i2c-1@0x80", "7-bit"),
            ("ssd1306:/dev/i2c-1@0x02", "7-bit"),
            ("ssd1306:/dev/i2c-1@banana", "7-bit"),
            ("ssd1306:/dev/i2c-1:96x16", "128x64 or 128x32"),
            ("sh1106:/dev/i2c-1:128x32", "SH1106"),
            ("fb:/dev/fb0:320x240", "comes from the device"),
            ("pbm:/tmp/x.pbm:8x8", "out of range"),
        ] {
            let e = display(spec).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{spec}");
            assert!(e.message().contains(says), "{spec}: {e}");
        }
    }
}
