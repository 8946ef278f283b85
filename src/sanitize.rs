//! The one sanitiser for text a server chose (error descriptions, REST error messages, user
//! info) before it reaches a terminal, a log line or a display (`ESC[2J`, OSC
//! sequences and forged `error:` lines came through raw).
//!
//! [`text`] replaces, so that nothing a server sends can move the cursor, retitle the terminal,
//! reorder what is shown or start a new line:
//! - CR, LF, TAB, U+2028 and U+2029 by a space (a forged second line becomes part of the first);
//! - other C0 controls, DEL and C1 controls (U+0080-U+009F: U+009B is a one-byte CSI) by
//!   U+FFFD;
//! - bidi controls (U+202A-U+202E, U+2066-U+2069, U+061C) and zero-width format characters
//!   (U+200B-U+200F, U+FEFF) by U+FFFD, so no text is hidden or shown reversed.
//!
//! [`json_line`] serialises a value for JSON-lines output: serde_json escapes C0 but writes
//! DEL and C1 raw, and a terminal showing the line acts on U+009B; they, and the characters
//! above, are written as `\u00XX` escapes, which JSON readers decode to the same string.
//!
//! Pure and `no_std` (alloc); it never decides what is shown, only how.

use alloc::string::String;
use core::fmt::Write;

/// What [`text`] does with one character: `None` keeps it.
fn replacement(c: char) -> Option<char> {
    match c {
        '\r' | '\n' | '\t' | '\u{2028}' | '\u{2029}' => Some(' '),
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => Some('\u{FFFD}'),
        '\u{202A}'..='\u{202E}'
        | '\u{2066}'..='\u{2069}'
        | '\u{200B}'..='\u{200F}'
        | '\u{061C}'
        | '\u{FEFF}' => Some('\u{FFFD}'),
        _ => None,
    }
}

/// Server text made safe to print: see the module documentation.
pub fn text(s: &str) -> String {
    s.chars().map(|c| replacement(c).unwrap_or(c)).collect()
}

/// Whether [`text`] would change `s` (for callers that want to avoid a copy).
pub fn is_clean(s: &str) -> bool {
    s.chars().all(|c| replacement(c).is_none())
}

/// One JSON line (no newline) for `value`, with DEL, C1 and the bidi and zero-width format
/// characters escaped as `\uXXXX` ([`json_text`]).
pub fn json_line(value: &serde_json::Value) -> String {
    json_text(&serde_json::to_string(value).unwrap_or_default())
}

/// JSON text (already valid: a payload as the server sent it) with DEL, C1 and the bidi and
/// zero-width format characters escaped as `\uXXXX`. Such characters can only occur inside
/// JSON strings, so escaping them keeps the text valid and equal in meaning.
pub fn json_text(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if replacement(c).is_some() && !matches!(c, '\r' | '\n' | '\t') {
            // C0 controls are escaped in valid JSON already; what is left is DEL, C1, the
            // format characters and the line separators.
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_lose_their_escape() {
        assert_eq!(text("a\x1b[2Jb"), "a\u{FFFD}[2Jb");
        assert_eq!(text("\x1b]0;owned\x07"), "\u{FFFD}]0;owned\u{FFFD}");
        assert_eq!(
            text("bell\x07 nul\0 del\x7f"),
            "bell\u{FFFD} nul\u{FFFD} del\u{FFFD}"
        );
    }

    #[test]
    fn line_breaks_become_spaces_so_no_line_is_forged() {
        assert_eq!(
            text("bad request\r\nerror: forged"),
            "bad request  error: forged"
        );
        assert_eq!(text("a\tb\u{2028}c\u{2029}d"), "a b c d");
    }

    #[test]
    fn c1_controls_are_replaced() {
        assert_eq!(
            text("x\u{9b}2Jy\u{85}z\u{80}"),
            "x\u{FFFD}2Jy\u{FFFD}z\u{FFFD}"
        );
    }

    #[test]
    fn bidi_and_zero_width_characters_are_replaced() {
        for c in [
            '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}',
            '\u{2068}', '\u{2069}', '\u{200B}', '\u{200C}', '\u{200D}', '\u{200E}', '\u{200F}',
            '\u{061C}', '\u{FEFF}',
        ] {
            let s = alloc::format!("evil{c}moc.example");
            assert_eq!(text(&s), "evil\u{FFFD}moc.example", "{:x}", c as u32);
            assert!(!is_clean(&s));
        }
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        let s = "Déjà vu: naïve café, 日本語, emoji 🙂, quotes \"'";
        assert_eq!(text(s), s);
        assert!(is_clean(s));
    }

    #[test]
    fn json_lines_escape_del_c1_and_format_characters_but_mean_the_same() {
        let value = serde_json::json!({"message": "a\u{9b}2J\u{7f}\u{202e}b\n\x1b", "k\u{85}": 1});
        let line = json_line(&value);
        assert!(
            line.chars().all(|c| replacement(c).is_none()),
            "raw control in {line:?}"
        );
        assert!(line.contains("\\u009b") && line.contains("\\u007f") && line.contains("\\u202e"));
        let back: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back, value);
    }
}
