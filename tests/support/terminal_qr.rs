//! Reads a QR code drawn in Unicode half blocks back into pixels and decodes it with rqrr, as a
//! phone camera would read the terminal. Shared by the unit tests (`present/qr.rs`,
//! `present/console.rs`) and the integration tests (`tests/cli`) through `#[path]`.
//!
//! Text with SGR colour codes (`ESC [ … m`, the console's TTY form) is read as a terminal
//! shows it under a dark or a light theme: the codes set the colours of the cells that follow,
//! and what they leave at their defaults takes the theme's colours. Every line must end with
//! the terminal's own colours back (a reset), or the decoder panics.

/// The terminal's own colours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Theme {
    /// Light text on a dark background.
    Dark,
    /// Dark text on a white background.
    Light,
}

/// A colour as set by SGR: the theme's default, or a palette index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Colour {
    Default,
    Index(u8),
}

/// Whether `c` shows light, as foreground (`fg`) or background, under `theme`.
fn is_light(c: Colour, fg: bool, theme: Theme) -> bool {
    match c {
        Colour::Default => (theme == Theme::Dark) == fg,
        // The 256-colour cube's black and white, and the basic black, grey and white: the
        // basic 16 may be remapped by a theme, so only these unambiguous ones are accepted.
        Colour::Index(0 | 8 | 16) => false,
        Colour::Index(7 | 15 | 231) => true,
        Colour::Index(n) => panic!("colour {n} is neither clearly dark nor clearly light"),
    }
}

/// Applies the parameters of one SGR sequence to (fg, bg).
fn apply_sgr(params: &str, fg: &mut Colour, bg: &mut Colour) {
    let nums: Vec<u16> = if params.is_empty() {
        vec![0]
    } else {
        params
            .split(';')
            .map(|p| p.parse().unwrap_or_else(|_| panic!("bad SGR {params:?}")))
            .collect()
    };
    let mut i = 0;
    while i < nums.len() {
        match nums[i] {
            0 => (*fg, *bg) = (Colour::Default, Colour::Default),
            1 => {} // bold: no colour change for these tests
            n @ 30..=37 => *fg = Colour::Index((n - 30) as u8),
            n @ 90..=97 => *fg = Colour::Index((n - 90 + 8) as u8),
            n @ 40..=47 => *bg = Colour::Index((n - 40) as u8),
            n @ 100..=107 => *bg = Colour::Index((n - 100 + 8) as u8),
            39 => *fg = Colour::Default,
            49 => *bg = Colour::Default,
            n @ (38 | 48) => {
                assert_eq!(nums.get(i + 1), Some(&5), "only 256-colour SGR: {params:?}");
                let index = *nums.get(i + 2).expect("a colour index") as u8;
                if n == 38 {
                    *fg = Colour::Index(index);
                } else {
                    *bg = Colour::Index(index);
                }
                i += 2;
            }
            other => panic!("unexpected SGR parameter {other} in {params:?}"),
        }
        i += 1;
    }
}

/// One text line as cells of (character, fg, bg), checking that it ends reset.
fn cells(line: &str) -> Vec<(char, Colour, Colour)> {
    let (mut fg, mut bg) = (Colour::Default, Colour::Default);
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            assert_eq!(chars.next(), Some('['), "only CSI sequences: {line:?}");
            let mut params = String::new();
            loop {
                match chars.next() {
                    Some('m') => break,
                    Some(p @ ('0'..='9' | ';')) => params.push(p),
                    other => panic!("not an SGR sequence ({other:?}) in {line:?}"),
                }
            }
            apply_sgr(&params, &mut fg, &mut bg);
        } else {
            assert!(!c.is_control(), "control character {c:?} in {line:?}");
            out.push((c, fg, bg));
        }
    }
    assert_eq!(
        (fg, bg),
        (Colour::Default, Colour::Default),
        "the line leaves the terminal coloured: {line:?}"
    );
    out
}

/// Decodes the single QR code in `text` as a terminal with `theme` shows it (lines of
/// `█ ▀ ▄` and spaces, with or without SGR colour codes; any other character shows the cell's
/// background).
pub fn decode_terminal(text: &str, theme: Theme) -> String {
    let lines: Vec<Vec<(char, Colour, Colour)>> = text.lines().map(cells).collect();
    let width = lines.iter().map(Vec::len).max().expect("some lines");
    let height = lines.len() * 2;
    let (scale, border) = (4, 8);
    let (w, h) = (width * scale + 2 * border, height * scale + 2 * border);
    let screen = if is_light(Colour::Default, false, theme) {
        255
    } else {
        0
    };
    let pixel = |x: usize, y: usize| -> u8 {
        if x < border || y < border || x >= w - border || y >= h - border {
            return screen; // the terminal background around the code
        }
        let (cx, cy) = ((x - border) / scale, (y - border) / scale);
        let (ch, fg, bg) =
            lines[cy / 2]
                .get(cx)
                .copied()
                .unwrap_or((' ', Colour::Default, Colour::Default));
        let foreground = matches!((ch, cy % 2), ('█', _) | ('▀', 0) | ('▄', 1));
        let light = if foreground {
            is_light(fg, true, theme)
        } else {
            is_light(bg, false, theme)
        };
        if light { 255 } else { 0 }
    };
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, pixel);
    let grids = img.detect_grids();
    assert_eq!(
        grids.len(),
        1,
        "expected exactly one QR code ({theme:?} theme)"
    );
    grids[0].decode().expect("the QR code decodes").1
}

/// Decodes the single QR code in plain `text` as a dark-themed terminal shows it.
pub fn decode_half_blocks(text: &str) -> String {
    decode_terminal(text, Theme::Dark)
}
