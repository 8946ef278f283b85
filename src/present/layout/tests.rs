//! Every layout × every Salesforce-shaped URL: the QR decodes back to the URL, the code is drawn
//! whole, nothing overlaps or runs off the canvas.

use super::*;
use crate::present::fbdev::Geometry;

use crate::present::frame_qr;
use frame_qr::{decode_lit, decode_one};

/// The one-tap URLs a Salesforce pairing produces (login, test, a long My Domain sandbox; each
/// with and without `prompt=login`), plus short RFC 8628-style ones that fit version 3.
pub const URLS: [&str; 8] = [
    "https://login.salesforce.com/setup/connect?user_code=X1D9SEET",
    "https://login.salesforce.com/setup/connect?user_code=X1D9SEET&prompt=login",
    "https://test.salesforce.com/setup/connect?user_code=08T3AY9D",
    "https://test.salesforce.com/setup/connect?user_code=08T3AY9D&prompt=login",
    "https://acme-industrial-devices--fieldtest.sandbox.my.salesforce.com/setup/connect?user_code=25XPRH6C",
    "https://acme-industrial-devices--fieldtest.sandbox.my.salesforce.com/setup/connect?user_code=25XPRH6C&prompt=login",
    "https://example.com/device?user_code=WDJB-MJHT",
    "https://idp.example/d?user_code=WDJBMJHT",
];

/// Canvas sizes: the OLEDs, a big panel, and what fbdev screens become after whole-number scaling.
fn sizes() -> Vec<(u32, u32)> {
    let mut sizes = vec![(128, 64), (128, 32), (256, 128)];
    for (w, h) in [(320, 240), (480, 272), (800, 480), (1920, 1080), (240, 135)] {
        let (_, cw, ch) = Geometry::simple(w, h, 32, w * 4).canvas();
        sizes.push((cw, ch));
    }
    sizes
}

pub use crate::testing::shown_code as shown;

/// Is `text` drawn in `font` somewhere in `frame`, pixel for pixel over its whole box?
fn shows_text(frame: &Canvas, font: Font, text: &str) -> bool {
    shows(frame, font.width(text), font.height(), |c| {
        font.draw(c, text, 0, 0)
    })
}

/// Is the user code drawn in `font` (grouped, zeros dotted) somewhere in `frame`?
fn shows_code(frame: &Canvas, font: Font, code: &str) -> bool {
    shows(frame, font.code_width(code), font.height(), |c| {
        font.draw_code(c, code, 0, 0)
    })
}

/// Is what `draw` draws in a `w` x `h` box somewhere in `frame`, pixel for pixel?
fn shows(frame: &Canvas, w: u32, h: u32, draw: impl Fn(&mut Canvas)) -> bool {
    let mut glyphs = Canvas::new(w, h);
    draw(&mut glyphs);
    if w > frame.width() || h > frame.height() {
        return false;
    }
    (0..=frame.height() - h).any(|y| {
        (0..=frame.width() - w).any(|x| {
            (0..h).all(|gy| (0..w).all(|gx| glyphs.is_lit(gx, gy) == frame.is_lit(x + gx, y + gy)))
        })
    })
}

fn overlaps(a: &Area, b: &Area) -> bool {
    a.x < b.right() && b.x < a.right() && a.y < b.bottom() && b.y < a.bottom()
}

#[test]
fn every_layout_and_url_scans_back_to_the_url_or_shows_it_as_text() {
    let mut with_qr = 0;
    for (w, h) in sizes() {
        for url in URLS {
            let code = shown(url);
            let screen = CodeScreen::plan(w, h, &code);
            let frame = screen.draw(Duration::from_secs(600));
            let ctx = format!("{w}x{h} {url}");
            // Every line inside the canvas, clear of the QR and of each other.
            let qr_area = screen.qr().map(|p| Area {
                x: p.x,
                y: p.y,
                width: p.side(),
                height: p.side(),
            });
            let boxes: Vec<Area> = screen
                .lines
                .iter()
                .map(|l| {
                    let text = l.text.clone().unwrap_or_else(|| time_left(code.expires_in));
                    Area {
                        x: l.x,
                        y: l.y,
                        width: match l.code {
                            true => l.font.code_width(&text),
                            false => l.font.width(&text),
                        },
                        height: l.font.height(),
                    }
                })
                .collect();
            for (i, b) in boxes.iter().enumerate() {
                assert!(
                    b.right() <= w && b.bottom() <= h,
                    "{ctx}: line {i} {b:?} off the canvas"
                );
                if let Some(q) = &qr_area {
                    assert!(!overlaps(b, q), "{ctx}: line {i} over the QR");
                }
                for other in &boxes[i + 1..] {
                    assert!(!overlaps(b, other), "{ctx}: lines overlap");
                }
            }
            assert!(
                shows_code(&frame, screen.code_font(), &code.user_code),
                "{ctx}: code not drawn whole"
            );
            match screen.qr() {
                Some(p) => {
                    with_qr += 1;
                    assert!(screen.text_only_reason().is_none());
                    let decoded = decode_one(w, h, |x, y| frame.is_lit(x, y));
                    assert_eq!(decoded, url, "{ctx}");
                    assert!(p.quiet >= 1 && p.side() <= h, "{ctx}: {p:?}");
                }
                None => {
                    let reason = screen.text_only_reason().expect("a reason");
                    assert!(reason.contains("too small"), "{ctx}: {reason}");
                    assert!(decode_lit(w, h, |x, y| frame.is_lit(x, y)).is_empty());
                    // The URL to type is there in full, line by line.
                    let url_lines: Vec<&Line> = screen.lines[1..]
                        .iter()
                        .filter(|l| l.text.is_some())
                        .collect();
                    let joined: String =
                        url_lines.iter().map(|l| l.text.clone().unwrap()).collect();
                    assert_eq!(joined, typed_url(&code.verification_uri), "{ctx}");
                    for l in url_lines {
                        assert!(
                            shows_text(&frame, l.font, l.text.as_deref().unwrap()),
                            "{ctx}"
                        );
                    }
                }
            }
        }
    }
    assert!(with_qr >= 50, "most layouts carry a QR: {with_qr}");
}

#[test]
fn on_128x64_two_pixels_per_module_when_the_url_fits_version_3() {
    for url in URLS {
        let p = CodeScreen::plan(128, 64, &shown(url))
            .qr()
            .expect("a QR on 128x64");
        let expected = if url.len() <= 53 { 2 } else { 1 };
        assert_eq!(p.scale, expected, "{url}");
    }
    let short = CodeScreen::plan(128, 64, &shown(URLS[6]));
    let p = short.qr().unwrap();
    assert_eq!(
        (p.modules, p.quiet, p.side()),
        (29, 1, 62),
        "v3, 1-module quiet zone, 62 px"
    );
    let long = CodeScreen::plan(128, 64, &shown(URLS[0]));
    assert_eq!(long.qr().unwrap().quiet, 2);
    assert_eq!(
        long.code_font(),
        BIG_FONTS[3],
        "FONT_10X20 beside a 1 px QR"
    );
}

#[test]
fn lines_break_at_spaces_and_url_separators() {
    assert_eq!(
        wrap("nobody approved in time", 20),
        ["nobody approved in", "time"]
    );
    assert_eq!(
        wrap("login.salesforce.com/setup/connect", 31),
        ["login.salesforce.com/setup/", "connect"]
    );
    assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
}

#[test]
fn a_big_canvas_keeps_the_code_readable() {
    // 160x120 (a 320x240 framebuffer at x2): 3 px modules would leave the code in a 5x8 font.
    let screen = CodeScreen::plan(160, 120, &shown(URLS[0]));
    assert_eq!(screen.qr().unwrap().scale, 2);
    assert!(screen.code_font().height() >= READABLE);
    assert_eq!(
        CodeScreen::plan(256, 128, &shown(URLS[0]))
            .qr()
            .unwrap()
            .scale,
        3
    );
}

#[test]
fn salesforce_urls_do_not_fit_a_128x32_panel_as_a_qr() {
    for url in &URLS[..6] {
        let screen = CodeScreen::plan(128, 32, &shown(url));
        assert_eq!(screen.qr(), None, "{url}");
    }
    assert!(
        CodeScreen::plan(128, 32, &shown(URLS[7])).qr().is_some(),
        "a short URL does"
    );
}

#[test]
fn the_countdown_and_a_new_code_change_only_text() {
    let mut code = shown(URLS[0]);
    let screen = CodeScreen::plan(128, 64, &code);
    let a = screen.draw(Duration::from_secs(600));
    let b = screen.draw(Duration::from_millis(598_200));
    let changed = b.changes_from(&a).unwrap();
    let qr = screen.qr().unwrap();
    assert!(changed.x >= qr.side(), "{changed:?}");
    assert!(shows_text(
        &b,
        screen.lines.last().unwrap().font,
        "9:59 left"
    ));
    code.number = 2;
    let second = CodeScreen::plan(128, 64, &code).draw(Duration::from_secs(600));
    assert!(
        SMALL_FONTS
            .iter()
            .any(|f| shows_text(&second, *f, "new code 2/3")),
        "a replacement code says so"
    );
    assert_eq!(decode_one(128, 64, |x, y| second.is_lit(x, y)), URLS[0]);
}

#[test]
fn message_screens_hold_no_qr_and_fit() {
    for (w, h) in sizes() {
        for (title, detail) in [
            ("Paired", "acme.my.salesforce.com"),
            ("Expired", "nobody approved in time"),
        ] {
            let frame = message_screen(w, h, title, detail);
            assert!(decode_lit(w, h, |x, y| frame.is_lit(x, y)).is_empty());
            let big = BIG_FONTS
                .iter()
                .find(|f| shows_text(&frame, **f, title))
                .unwrap_or_else(|| panic!("{w}x{h}: title {title} not drawn"));
            assert!(big.height() >= 10 || h < 40, "{w}x{h}: {big:?}");
        }
    }
}

/// The code's characters cannot pass for one another in any font it may be drawn in: a zero
/// is dotted where an O is hollow, a 1 is not an I, and an 8-character code is two groups of 4
/// with a gap of unlit columns between them, wider than the space between two characters.
#[test]
fn the_code_s_zero_is_dotted_its_one_is_no_i_and_it_is_two_groups() {
    let drawn = |font: Font, text: &str| {
        let mut c = Canvas::new(font.code_width(text), font.height());
        font.draw_code(&mut c, text, 0, 0);
        c
    };
    for font in BIG_FONTS.iter().filter(|f| f.scale == 1) {
        let (zero, o) = (drawn(*font, "0"), drawn(*font, "O"));
        let differs = |a: &Canvas, b: &Canvas| {
            (0..a.height()).any(|y| (0..a.width()).any(|x| a.is_lit(x, y) != b.is_lit(x, y)))
        };
        assert!(differs(&zero, &o), "{font:?}: 0 and O");
        // The dot: a pixel lit in the zero's middle row that the O leaves unlit.
        let mid = |c: &Canvas| {
            let rows: Vec<u32> = (0..c.height())
                .filter(|&y| (0..c.width()).any(|x| c.is_lit(x, y)))
                .collect();
            (rows[0] + rows[rows.len() - 1]) / 2
        };
        let lit = |c: &Canvas, y: u32| (0..c.width()).filter(|&x| c.is_lit(x, y)).count();
        assert!(
            lit(&zero, mid(&zero)) > lit(&o, mid(&o)),
            "{font:?}: the zero's middle is not filled in"
        );
        assert!(
            differs(&drawn(*font, "1"), &drawn(*font, "I")),
            "{font:?}: 1 and I"
        );
        // Two groups: the columns between the 4th and the 5th character are unlit, and more
        // of them than between two characters of a group.
        let code = "G5O0DKSY";
        let c = drawn(*font, code);
        let blank = |x: u32| (0..c.height()).all(|y| !c.is_lit(x, y));
        let runs: Vec<u32> = {
            let mut runs = Vec::new();
            let mut run = 0;
            for x in 0..c.width() {
                if blank(x) {
                    run += 1;
                } else if run > 0 {
                    runs.push(run);
                    run = 0;
                }
            }
            runs
        };
        let widest = runs.iter().max().copied().unwrap_or(0);
        assert!(
            widest >= font.mono.character_size.width.div_ceil(2),
            "{font:?}: no gap between the groups: {runs:?}"
        );
        assert_eq!(
            font.code_width(code),
            font.width(code) + font.group_gap(code),
            "{font:?}: the gap is room, not a character"
        );
        assert_eq!(
            font.group_gap("WDJB-MJHT"),
            0,
            "a code with its own separator"
        );
    }
}
