//! Rules for the text people read: error messages, log lines, events.
//!
//! A message is one line of words: no control characters (no newline, tab or escape sequence
//! that could drive a terminal or split a log record) and no run of two spaces after its first
//! word, which is what a lost `\` line continuation in a string literal leaves behind. Leading
//! indentation is allowed. [`is_clean`] is the check (tests call it on every message they
//! reach); [`server_text`] makes a server-chosen string fit to quote in a message.
//! Pure, no allocation unless text must change.

use alloc::borrow::Cow;
use alloc::string::String;

/// Whether `msg` has no control character and no double space after its indentation.
pub fn is_clean(msg: &str) -> bool {
    !msg.chars().any(char::is_control) && !msg.trim_start_matches(' ').contains("  ")
}

/// Server-chosen text (an `error_description`, a REST `message`) made fit to quote in a
/// message: the one sanitiser (`sanitize::text`: line breaks become spaces, other controls, C1,
/// bidi and zero-width characters U+FFFD), then runs of spaces become one space and none is
/// left at either end.
pub fn server_text(s: &str) -> Cow<'_, str> {
    if crate::sanitize::is_clean(s) && is_clean(s) && !s.starts_with(' ') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    for c in crate::sanitize::text(s).chars() {
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        out.push(c);
    }
    out.truncate(out.trim_end().len());
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_messages_pass_and_holes_and_controls_do_not() {
        assert!(is_clean(
            "the clock is not set, so no server certificate can be checked"
        ));
        assert!(is_clean("  indented: allowed"));
        assert!(is_clean(""));
        assert!(!is_clean("the clock is                      not set"));
        assert!(!is_clean("two  spaces"));
        assert!(!is_clean("ends with two  "));
        assert!(!is_clean("a\nnewline"));
        assert!(!is_clean("a\ttab"));
        assert!(!is_clean("an \x1b[2J escape"));
        assert!(!is_clean("a \u{85} next-line"));
    }

    #[test]
    fn server_text_is_made_clean() {
        assert!(matches!(server_text("user is inactive"), Cow::Borrowed(_)));
        assert_eq!(server_text("a  b\x1b[2Jc\n"), "a b\u{FFFD}[2Jc");
        assert_eq!(server_text("  lead"), "lead");
        for s in ["x\t\ty", "   ", "\u{7}bell  ", "ok"] {
            assert!(is_clean(&server_text(s)), "{s:?}");
        }
    }
}
