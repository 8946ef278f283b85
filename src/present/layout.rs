//! Where things go on a small 1-bit screen: the code screen (QR + user code + hints) and the
//! message screens (expired, paired, denied, error), for any canvas size.
//!
//! Pure: it draws into a [`Canvas`] and does no I/O. The QR follows docs/embedded.md, "QR sizing":
//! error
//! correction L, dark modules *unlit*, a *lit* quiet zone (2 modules when there is room, else 1;
//! the dark panel around it is what the camera sees as the margin), and the largest whole number
//! of pixels per module that fits the height — on a 128×64 panel that is 2 px when the one-tap
//! URL fits version 3 (≤ 53 bytes), else 1 px; on larger canvases the module size stops growing
//! where the code beside it would drop below a 13 px font. The user code gets the largest font that still
//! fits beside it; one or two short lines below it give the host to type and the time left.
//! When no scannable QR fits (a 128×32 panel and a Salesforce URL, say), the screen shows the
//! code and the URL as text, and [`CodeScreen::text_only_reason`] says why, for the log.
//! Text comes from embedded-graphics' mono fonts, scaled up by whole numbers on big canvases.
//! The user code is drawn so that no character passes for another: a zero gets a dot in its
//! middle (its O stays hollow; the fonts' 1 has a flag, their I bars at both ends), and a code
//! of letters and digits is shown as two groups with a gap between them, not a character (the
//! person types it as shown, without a space).

use core::time::Duration;

use embedded_graphics::mono_font::{MonoFont, MonoTextStyle, ascii};
use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::{Drawable, Point};
use embedded_graphics::text::{Baseline, Text};

use super::canvas::{Area, Canvas};
use super::qr::QrMatrix;
use crate::event::ShownCode;

/// A mono font, drawn `scale` times its size.
#[derive(Clone, Copy)]
pub struct Font {
    mono: &'static MonoFont<'static>,
    scale: u32,
}

impl core::fmt::Debug for Font {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let s = self.mono.character_size;
        write!(f, "Font({}x{} x{})", s.width, s.height, self.scale)
    }
}

impl PartialEq for Font {
    fn eq(&self, other: &Font) -> bool {
        // The fonts used here differ in size, so the size and scale name one.
        self.mono.character_size == other.mono.character_size && self.scale == other.scale
    }
}

const fn font(mono: &'static MonoFont<'static>, scale: u32) -> Font {
    Font { mono, scale }
}

/// Candidates for the user code and titles, largest first.
const BIG_FONTS: [Font; 9] = [
    font(&ascii::FONT_10X20, 4),
    font(&ascii::FONT_10X20, 3),
    font(&ascii::FONT_10X20, 2),
    font(&ascii::FONT_10X20, 1),
    font(&ascii::FONT_9X15_BOLD, 1),
    font(&ascii::FONT_7X13_BOLD, 1),
    font(&ascii::FONT_6X10, 1),
    font(&ascii::FONT_5X8, 1),
    font(&ascii::FONT_4X6, 1),
];

/// Candidates for hints and details, largest first.
const SMALL_FONTS: [Font; 5] = [
    font(&ascii::FONT_6X10, 3),
    font(&ascii::FONT_6X10, 2),
    font(&ascii::FONT_6X10, 1),
    font(&ascii::FONT_5X8, 1),
    font(&ascii::FONT_4X6, 1),
];

/// Pixels between lines of text, and between the QR and the text.
const GAP: u32 = 2;

/// The smallest code font worth a larger QR: FONT_7X13_BOLD, what fits beside a 2 px/module
/// version 3 code on 128×64 (docs/embedded.md, "QR sizing").
const READABLE: u32 = 13;

impl Font {
    /// Width in pixels of `text` on one line.
    pub fn width(&self, text: &str) -> u32 {
        let n = text.chars().count() as u32;
        let per = self.mono.character_size.width + self.mono.character_spacing;
        (n * per).saturating_sub(self.mono.character_spacing) * self.scale
    }

    /// The height the layout takes, in pixels.
    pub fn height(&self) -> u32 {
        self.mono.character_size.height * self.scale
    }

    /// Characters per line in `width` pixels.
    fn chars_in(&self, width: u32) -> usize {
        let per = (self.mono.character_size.width + self.mono.character_spacing) * self.scale;
        (width / per.max(1)) as usize
    }

    /// The gap between the code's two groups, in unscaled pixels; 0 for a code that is not
    /// grouped (short, or with its own separator, as RFC 8628's `WDJB-MJHT`).
    fn group_gap(&self, code: &str) -> u32 {
        let grouped = code.len() >= 6 && code.bytes().all(|b| b.is_ascii_alphanumeric());
        match grouped {
            true => self.mono.character_size.width.div_ceil(2) + self.mono.character_spacing,
            false => 0,
        }
    }

    /// Width in pixels of the user code as [`draw_code`](Font::draw_code) draws it.
    pub fn code_width(&self, code: &str) -> u32 {
        self.width(code) + self.group_gap(code) * self.scale
    }

    /// Draws the user code lit at (`x`, `y`): in two groups, each zero dotted.
    pub fn draw_code(&self, canvas: &mut Canvas, code: &str, x: u32, y: u32) {
        let gap = self.group_gap(code);
        let split = if gap > 0 { code.len() / 2 } else { code.len() };
        let (first, second) = code.split_at(split);
        let style = MonoTextStyle::new(self.mono, BinaryColor::On);
        let mut glyphs = Canvas::new(
            self.code_width(code) / self.scale,
            self.mono.character_size.height,
        );
        let second_x = self.width(first) / self.scale + self.mono.character_spacing + gap;
        for (part, at) in [(first, 0), (second, second_x)] {
            let at = Point::new(at as i32, 0);
            let _ = Text::with_baseline(part, at, style, Baseline::Top).draw(&mut glyphs);
        }
        let per = self.mono.character_size.width + self.mono.character_spacing;
        for (i, c) in code.chars().enumerate() {
            if c == '0' {
                let cell = i as u32 * per + if i >= split { gap } else { 0 };
                self.dot_zero(&mut glyphs, cell);
            }
        }
        canvas.blit_lit(&glyphs, x, y, self.scale);
    }

    /// Lights the middle of the hollow of the zero whose cell starts at `cell` (unscaled): a
    /// dot, two pixels wide where the hollow is even and wide enough, one where it is odd, the
    /// whole hollow where it is one or two pixels (a barred zero). A zero with no hollow left
    /// at its middle row (a font's own barred zero) is left as it is.
    fn dot_zero(&self, glyphs: &mut Canvas, cell: u32) {
        let (w, h) = (
            self.mono.character_size.width,
            self.mono.character_size.height,
        );
        let lit_rows: Vec<u32> = (0..h)
            .filter(|&y| (cell..cell + w).any(|x| glyphs.is_lit(x, y)))
            .collect();
        let (Some(&top), Some(&bottom)) = (lit_rows.first(), lit_rows.last()) else {
            return;
        };
        let mid = (top + bottom) / 2;
        let row: Vec<bool> = (cell..cell + w).map(|x| glyphs.is_lit(x, mid)).collect();
        let Some(left) = row.iter().position(|&l| l) else {
            return;
        };
        let Some(start) = row[left..].iter().position(|&l| !l).map(|i| left + i) else {
            return;
        };
        let Some(len) = row[start..].iter().position(|&l| l) else {
            return;
        };
        let dot = match len {
            0 => return,
            1 | 2 => len,
            n if n % 2 == 1 => 1,
            _ => 2,
        };
        let rows = if bottom - top + 1 >= 12 { 2 } else { 1 };
        let x0 = cell + (start + (len - dot) / 2) as u32;
        for y in mid..mid + rows {
            for x in x0..x0 + dot as u32 {
                glyphs.set(x, y, true);
            }
        }
    }

    /// Draws `text` lit, top-left corner at (`x`, `y`).
    pub fn draw(&self, canvas: &mut Canvas, text: &str, x: u32, y: u32) {
        let style = MonoTextStyle::new(self.mono, BinaryColor::On);
        if self.scale == 1 {
            let at = Point::new(x as i32, y as i32);
            let _ = Text::with_baseline(text, at, style, Baseline::Top).draw(canvas);
            return;
        }
        let mut glyphs = Canvas::new(
            self.width(text) / self.scale,
            self.mono.character_size.height,
        );
        let _ = Text::with_baseline(text, Point::zero(), style, Baseline::Top).draw(&mut glyphs);
        canvas.blit_lit(&glyphs, x, y, self.scale);
    }
}

/// Where the QR sits and how big it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QrPlacement {
    /// Top-left corner of the lit quiet zone.
    pub x: u32,
    /// Its top edge, in pixels.
    pub y: u32,
    /// Pixels per module.
    pub scale: u32,
    /// Lit modules around the symbol.
    pub quiet: u32,
    /// Modules per side of the symbol (21 + 4 per version above 1).
    pub modules: u32,
}

impl QrPlacement {
    /// Pixels per side, quiet zone included.
    pub fn side(&self) -> u32 {
        (self.modules + 2 * self.quiet) * self.scale
    }
}

/// One line of text on the code screen.
#[derive(Clone, Debug, PartialEq)]
struct Line {
    font: Font,
    /// `None` = the countdown, filled in at draw time.
    text: Option<String>,
    /// The user code: drawn with [`Font::draw_code`].
    code: bool,
    x: u32,
    y: u32,
}

/// A planned code screen: the QR (or not) and the text lines, for one canvas size and one code.
/// Planned once per code; each countdown tick only redraws.
#[derive(Clone, Debug)]
pub struct CodeScreen {
    width: u32,
    height: u32,
    qr: Option<(QrMatrix, QrPlacement)>,
    lines: Vec<Line>,
    text_only_reason: Option<String>,
}

/// "9:58 left".
fn time_left(remaining: Duration) -> String {
    let secs = remaining.as_secs() + u64::from(remaining.subsec_nanos() > 0);
    format!("{}:{:02} left", secs / 60, secs % 60)
}

/// The verification URL without its scheme: what a person types.
fn typed_url(uri: &str) -> &str {
    uri.strip_prefix("https://")
        .or_else(|| uri.strip_prefix("http://"))
        .unwrap_or(uri)
}

/// Splits `text` into lines of at most `per_line` characters, breaking at a space (dropped) or
/// after a `/ . - ? &` in the second half of the line where there is one, else anywhere.
fn wrap(text: &str, per_line: usize) -> Vec<String> {
    let per_line = per_line.max(1);
    let mut rest: Vec<char> = text.chars().collect();
    let mut lines = Vec::new();
    while rest.len() > per_line {
        let window = &rest[..=per_line];
        let at_space = window.iter().rposition(|&c| c == ' ').filter(|&i| i > 0);
        let after_mark = window[..per_line]
            .iter()
            .rposition(|&c| "/.-?&".contains(c))
            .map(|i| i + 1);
        let (end, skip) = match (at_space, after_mark) {
            (Some(i), _) if i >= per_line / 2 => (i, 1),
            (_, Some(i)) if i >= per_line / 2 => (i, 0),
            _ => (per_line, 0),
        };
        lines.push(rest[..end].iter().collect());
        rest.drain(..end + skip);
    }
    if !rest.is_empty() {
        lines.push(rest.into_iter().collect());
    }
    lines
}

impl CodeScreen {
    /// Plans the screen for `code` on a `width × height` canvas.
    pub fn plan(width: u32, height: u32, code: &ShownCode) -> CodeScreen {
        let qr = QrMatrix::encode(&code.one_tap_uri);
        if let Some(qr) = qr {
            let modules = qr.width() as u32;
            // Largest module size first, as long as the code beside it gets a readable font;
            // if no module size allows that, the largest that fits at all.
            let mut fallback = None;
            for scale in (1..=height / (modules + 2)).rev() {
                let quiet = if (modules + 4) * scale <= height {
                    2
                } else {
                    1
                };
                let placement = QrPlacement {
                    x: 0,
                    y: 0,
                    scale,
                    quiet,
                    modules,
                };
                let side = placement.side();
                let placement = QrPlacement {
                    y: (height - side) / 2,
                    ..placement
                };
                let text_x = side + GAP;
                if text_x >= width {
                    continue;
                }
                if let Some(lines) = plan_beside(text_x, width - text_x - 1, height, code) {
                    let screen = CodeScreen {
                        width,
                        height,
                        qr: Some((qr.clone(), placement)),
                        lines,
                        text_only_reason: None,
                    };
                    if screen.code_font().height() >= READABLE {
                        return screen;
                    }
                    fallback.get_or_insert(screen);
                }
            }
            if let Some(screen) = fallback {
                return screen;
            }
            let reason = format!(
                "the {width}x{height} panel is too small for a scannable QR code of the \
                 {}-byte URL ({modules} modules, at least {} px with its quiet zone, beside \
                 the code); showing the code and the URL as text",
                code.one_tap_uri.len(),
                modules + 2
            );
            return Self::text_only(width, height, code, reason);
        }
        let reason = format!(
            "the {}-byte URL is too long for a QR code; showing the code and the URL as text",
            code.one_tap_uri.len()
        );
        Self::text_only(width, height, code, reason)
    }

    fn text_only(width: u32, height: u32, code: &ShownCode, reason: String) -> CodeScreen {
        let inner = width.saturating_sub(2);
        let url = typed_url(&code.verification_uri);
        let mut chosen = None;
        'fonts: for big in BIG_FONTS
            .iter()
            .filter(|f| f.code_width(&code.user_code) <= inner)
        {
            for small in SMALL_FONTS.iter().filter(|f| f.height() < big.height()) {
                let url_lines = wrap(url, small.chars_in(inner));
                let total =
                    big.height() + (url_lines.len() as u32 + 1) * (small.height() + 1) + GAP;
                if total <= height {
                    chosen = Some((*big, *small, url_lines, true));
                    break 'fonts;
                }
                let total = big.height() + url_lines.len() as u32 * (small.height() + 1) + GAP;
                if total <= height {
                    chosen = Some((*big, *small, url_lines, false));
                    break 'fonts;
                }
            }
        }
        let (big, small, url_lines, with_time) = chosen.unwrap_or_else(|| {
            // Nothing fits whole: the smallest fonts, and as much of the URL as there is room for.
            let (big, small) = (
                BIG_FONTS[BIG_FONTS.len() - 1],
                SMALL_FONTS[SMALL_FONTS.len() - 1],
            );
            let room = height.saturating_sub(big.height() + GAP) / (small.height() + 1);
            let mut lines = wrap(url, small.chars_in(inner));
            lines.truncate(room as usize);
            (big, small, lines, false)
        });
        let mut lines = Vec::new();
        let mut y = 0;
        lines.push(Line {
            font: big,
            text: Some(code.user_code.clone()),
            code: true,
            x: 1,
            y,
        });
        y += big.height() + GAP;
        for text in url_lines {
            lines.push(Line {
                font: small,
                text: Some(text),
                code: false,
                x: 1,
                y,
            });
            y += small.height() + 1;
        }
        if with_time {
            lines.push(Line {
                font: small,
                text: None,
                code: false,
                x: 1,
                y,
            });
            y += small.height();
        }
        // Centre the block vertically.
        let shift = height.saturating_sub(y) / 2;
        for line in &mut lines {
            line.y += shift;
        }
        CodeScreen {
            width,
            height,
            qr: None,
            lines,
            text_only_reason: Some(reason),
        }
    }

    /// Where the QR is, or `None` on the text-only screen.
    pub fn qr(&self) -> Option<QrPlacement> {
        self.qr.as_ref().map(|(_, p)| *p)
    }

    /// Why there is no QR (for the log), on the text-only screen.
    pub fn text_only_reason(&self) -> Option<&str> {
        self.text_only_reason.as_deref()
    }

    /// The font the user code is drawn in.
    pub fn code_font(&self) -> Font {
        self.lines
            .iter()
            .map(|l| l.font)
            .max_by_key(Font::height)
            .expect("the code line")
    }

    /// The frame, with `remaining` as the time left.
    pub fn draw(&self, remaining: Duration) -> Canvas {
        let mut canvas = Canvas::new(self.width, self.height);
        if let Some((qr, p)) = &self.qr {
            draw_qr(&mut canvas, qr, p);
        }
        let left = time_left(remaining);
        for line in &self.lines {
            let text = line.text.as_deref().unwrap_or(&left);
            if line.code {
                line.font.draw_code(&mut canvas, text, line.x, line.y);
            } else {
                line.font.draw(&mut canvas, text, line.x, line.y);
            }
        }
        canvas
    }
}

/// The text column beside the QR: an optional "new code" notice, the code, the host, the time
/// left; `None` when the code does not fit in `width × height` even in the smallest font.
fn plan_beside(x: u32, width: u32, height: u32, code: &ShownCode) -> Option<Vec<Line>> {
    let host = crate::url::host(&code.verification_uri).unwrap_or("");
    let longest_time = time_left(code.expires_in);
    let notice = (code.number > 1).then(|| format!("new code {}/{}", code.number, code.max_codes));
    for big in BIG_FONTS
        .iter()
        .filter(|f| f.code_width(&code.user_code) <= width)
    {
        let Some(small) = SMALL_FONTS
            .iter()
            .find(|f| f.height() < big.height() && f.width(&longest_time) <= width)
        else {
            continue;
        };
        let host_font = SMALL_FONTS
            .iter()
            .filter(|f| f.height() <= small.height())
            .find(|f| !host.is_empty() && f.width(host) <= width);
        let notice_font = notice.as_ref().and_then(|n| {
            SMALL_FONTS
                .iter()
                .filter(|f| f.height() <= small.height())
                .find(|f| f.width(n) <= width)
        });
        // Drop the host, then the notice, until the column fits.
        let choices = [
            (notice_font, host_font),
            (notice_font, None),
            (None, host_font),
            (None, None),
        ];
        for (notice_font, host_font) in choices {
            let mut lines = Vec::new();
            let mut y = 0;
            if let (Some(f), Some(n)) = (notice_font, &notice) {
                lines.push(Line {
                    font: *f,
                    text: Some(n.clone()),
                    code: false,
                    x,
                    y,
                });
                y += f.height() + GAP;
            }
            lines.push(Line {
                font: *big,
                text: Some(code.user_code.clone()),
                code: true,
                x,
                y,
            });
            y += big.height() + GAP;
            if let Some(f) = host_font {
                lines.push(Line {
                    font: *f,
                    text: Some(host.to_string()),
                    code: false,
                    x,
                    y,
                });
                y += f.height() + GAP;
            }
            lines.push(Line {
                font: *small,
                text: None,
                code: false,
                x,
                y,
            });
            y += small.height();
            if y <= height {
                let shift = (height - y) / 2;
                for line in &mut lines {
                    line.y += shift;
                }
                return Some(lines);
            }
        }
    }
    None
}

/// The QR: a lit square (the quiet zone) with the dark modules left unlit.
fn draw_qr(canvas: &mut Canvas, qr: &QrMatrix, p: &QrPlacement) {
    let side = p.side();
    canvas.fill(
        Area {
            x: p.x,
            y: p.y,
            width: side,
            height: side,
        },
        true,
    );
    let origin = (p.x + p.quiet * p.scale, p.y + p.quiet * p.scale);
    for my in 0..p.modules {
        for mx in 0..p.modules {
            if qr.is_dark(mx as usize, my as usize) {
                canvas.fill(
                    Area {
                        x: origin.0 + mx * p.scale,
                        y: origin.1 + my * p.scale,
                        width: p.scale,
                        height: p.scale,
                    },
                    false,
                );
            }
        }
    }
}

/// A screen with a title and a few words below it, centred: used when there is no code to show
/// (expired, paired, denied, error). It never holds a user code.
pub fn message_screen(width: u32, height: u32, title: &str, detail: &str) -> Canvas {
    let mut canvas = Canvas::new(width, height);
    let inner = width.saturating_sub(2);
    let big = BIG_FONTS
        .iter()
        .find(|f| f.width(title) <= inner && f.height() <= height / 2)
        .unwrap_or(&BIG_FONTS[BIG_FONTS.len() - 1]);
    let room = height.saturating_sub(big.height() + GAP);
    let fits =
        |f: &&Font, lines: u32| f.height() < big.height() && lines * (f.height() + 1) <= room;
    // The largest font that holds the detail on one line, else the largest that holds it wrapped.
    let small = SMALL_FONTS
        .iter()
        .find(|f| f.width(detail) <= inner && fits(f, 1))
        .or_else(|| {
            SMALL_FONTS
                .iter()
                .find(|f| fits(f, wrap(detail, f.chars_in(inner)).len() as u32))
        })
        .unwrap_or(&SMALL_FONTS[SMALL_FONTS.len() - 1]);
    let mut detail_lines = if detail.is_empty() {
        Vec::new()
    } else {
        wrap(detail, small.chars_in(inner))
    };
    detail_lines.truncate((room / (small.height() + 1)) as usize);
    let total = big.height()
        + if detail_lines.is_empty() {
            0
        } else {
            GAP + detail_lines.len() as u32 * (small.height() + 1)
        };
    let mut y = height.saturating_sub(total) / 2;
    big.draw(
        &mut canvas,
        title,
        width.saturating_sub(big.width(title)) / 2,
        y,
    );
    y += big.height() + GAP;
    for line in &detail_lines {
        small.draw(
            &mut canvas,
            line,
            width.saturating_sub(small.width(line)) / 2,
            y,
        );
        y += small.height() + 1;
    }
    canvas
}

#[cfg(test)]
pub(crate) mod tests;
