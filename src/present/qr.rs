//! QR codes as a module matrix, and their rendering in Unicode half blocks for terminals.
//!
//! Pure. Error correction L (the smallest code for a URL: fewer, larger modules; a screen does
//! not get dirty). Polarity: terminals and OLEDs draw light on dark, so we *draw the light
//! modules* and the quiet zone, and leave dark modules as background; an inverted code does not
//! scan on most phones (docs/embedded.md, "QR sizing").

use alloc::string::String;
use alloc::vec::Vec;

use qrcode::{Color, EcLevel, QrCode};

/// A QR code: `width × width` modules, `true` = dark.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QrMatrix {
    width: usize,
    dark: Vec<bool>,
}

impl QrMatrix {
    /// Encodes `text` at error correction L, in the smallest version that holds it.
    pub fn encode(text: &str) -> Option<QrMatrix> {
        let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::L).ok()?;
        let width = code.width();
        let dark = code
            .to_colors()
            .into_iter()
            .map(|c| c == Color::Dark)
            .collect();
        Some(QrMatrix { width, dark })
    }

    /// Modules per side (21 for version 1, +4 per version).
    pub fn width(&self) -> usize {
        self.width
    }

    /// Is the module at (x, y) dark? Outside the matrix counts as light (the quiet zone).
    pub fn is_dark(&self, x: usize, y: usize) -> bool {
        x < self.width && y < self.width && self.dark[y * self.width + x]
    }
}

/// Renders the code with a light quiet zone of `quiet` modules, two module rows per text line:
/// `█` both light, `▀` top light, `▄` bottom light, space both dark. Lines end with `\n`.
pub fn half_blocks(qr: &QrMatrix, quiet: usize) -> String {
    let side = qr.width() + 2 * quiet;
    let light = |x: usize, y: usize| -> bool {
        if y >= side {
            return false; // below the code: terminal background, not part of the symbol
        }
        !(x >= quiet && y >= quiet && qr.is_dark(x - quiet, y - quiet))
    };
    let mut out = String::with_capacity((side + 1) * side.div_ceil(2) * 3);
    for row in (0..side).step_by(2) {
        for x in 0..side {
            out.push(match (light(x, row), light(x, row + 1)) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
        out.push('\n');
    }
    out
}

/// The test decoder, shared with the integration tests.
#[cfg(test)]
#[path = "../../tests/support/terminal_qr.rs"]
pub(crate) mod terminal_qr;

#[cfg(test)]
mod tests {
    use super::*;

    use super::terminal_qr::decode_half_blocks;

    #[test]
    fn salesforce_urls_round_trip_through_the_terminal_rendering() {
        for url in [
            "https://login.salesforce.com/setup/connect?user_code=X1D9SEET",
            "https://test.salesforce.com/setup/connect?user_code=08T3AY9D&prompt=login",
            "https://acme-industrial-devices--fieldtest.sandbox.my.salesforce.com/setup/connect?user_code=25XPRH6C&prompt=login",
        ] {
            let qr = QrMatrix::encode(url).unwrap();
            let text = half_blocks(&qr, 4);
            assert_eq!(decode_half_blocks(&text), url);
        }
    }

    #[test]
    fn a_login_url_is_a_small_code() {
        let qr = QrMatrix::encode("https://login.salesforce.com/setup/connect?user_code=X1D9SEET")
            .unwrap();
        assert_eq!(qr.width(), 33, "version 4 at EC level L");
        let text = half_blocks(&qr, 4);
        assert_eq!(text.lines().count(), 21);
        assert!(text.lines().all(|l| l.chars().count() == 41));
    }
}
