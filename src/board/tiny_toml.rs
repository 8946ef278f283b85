//! The small subset of TOML that board profiles are written in: `# comments`, `[table]`
//! headers, and `key = value` lines whose value is a string (`"..."` or `'...'`, no escapes) or
//! a whole number (decimal or `0x` hex). Every profile is therefore valid TOML that any TOML
//! tool reads the same way; anything outside the subset is an error with its line number, never
//! a silent guess.
//!
//! Pure: text in, entries out. It knows nothing about boards (that is `board.rs`).
//!
//! Why not the `toml` crate: board profiles need nothing TOML has beyond this, and the crate
//! costs bytes the boards do not have. Measured on the stripped armv7 release binary
//! (scripts/cross-build's route): the whole board feature, this parser, the validation and
//! every message, adds 20,160 bytes; parsing with `toml` 0.9 (`parse` + `serde`, into a
//! `toml::Table`) instead of this file adds another 115,872 bytes.

use std::fmt;

/// A value on the right of `=`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Str(String),
    Int(u64),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => write!(f, "\"{s}\""),
            Value::Int(n) => write!(f, "{n}"),
        }
    }
}

/// One `key = value` line: the table it is in (`""` before any header), with its line number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub line: usize,
    pub table: String,
    pub key: String,
    pub value: Value,
}

/// A syntax error: the 1-based line and what is wrong there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub message: String,
}

fn is_bare_key(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// What may follow a value or a header: spaces, then nothing or a comment.
fn only_comment(rest: &str) -> bool {
    let rest = rest.trim_start();
    rest.is_empty() || rest.starts_with('#')
}

fn parse_value(text: &str) -> Result<Value, String> {
    let text = text.trim_start();
    if let Some(quote) = text.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let body = &text[1..];
        let end = body
            .find(quote)
            .ok_or_else(|| format!("the string has no closing {quote}"))?;
        let (value, rest) = (&body[..end], &body[end + 1..]);
        if quote == '"' && value.contains('\\') {
            return Err("escapes (\\) are not supported here: write the value without them".into());
        }
        if !only_comment(rest) {
            return Err(format!(
                "unexpected text after the string: '{}'",
                rest.trim()
            ));
        }
        return Ok(Value::Str(value.to_string()));
    }
    let token = text
        .split(|c: char| c.is_whitespace() || c == '#')
        .next()
        .unwrap_or("");
    if !only_comment(&text[token.len()..]) {
        return Err(format!(
            "unexpected text after '{token}': one value per line"
        ));
    }
    let number = match token.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None if token.bytes().all(|b| b.is_ascii_digit()) => token.parse(),
        None => {
            return Err(format!(
                "'{token}' is neither a quoted string nor a whole number (quote text: \"{token}\")"
            ));
        }
    };
    number
        .map(Value::Int)
        .map_err(|_| format!("'{token}' is not a valid whole number"))
}

/// Parses a whole profile into its entries, in file order. A table header that repeats, or a
/// key that repeats within a table, is an error (TOML forbids both).
pub fn parse(text: &str) -> Result<Vec<Entry>, SyntaxError> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut tables: Vec<String> = Vec::new();
    let mut table = String::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let err = |message: String| SyntaxError { line, message };
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(header) = trimmed.strip_prefix('[') {
            if header.starts_with('[') {
                return Err(err(
                    "arrays of tables ([[...]]) are not supported here".into()
                ));
            }
            let (name, rest) = header
                .split_once(']')
                .ok_or_else(|| err("the table header has no closing ]".into()))?;
            let name = name.trim();
            if !is_bare_key(name) {
                return Err(err(format!(
                    "'[{name}]' is not a plain table name (letters, digits, - and _)"
                )));
            }
            if !only_comment(rest) {
                return Err(err(format!("unexpected text after [{name}]")));
            }
            if tables.iter().any(|t| t == name) {
                return Err(err(format!("the table [{name}] appears twice")));
            }
            tables.push(name.to_string());
            table = name.to_string();
            continue;
        }
        let (key, value) = trimmed.split_once('=').ok_or_else(|| {
            err(format!(
                "expected 'key = value' or '[table]', found '{trimmed}'"
            ))
        })?;
        let key = key.trim();
        if !is_bare_key(key) {
            return Err(err(format!(
                "'{key}' is not a plain key (letters, digits, - and _; no dots or quotes)"
            )));
        }
        if entries.iter().any(|e| e.table == table && e.key == key) {
            return Err(err(format!("'{key}' is set twice")));
        }
        let value = parse_value(value).map_err(err)?;
        entries.push(Entry {
            line,
            table: table.clone(),
            key: key.to_string(),
            value,
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(line: usize, table: &str, key: &str, value: Value) -> Entry {
        Entry {
            line,
            table: table.into(),
            key: key.into(),
            value,
        }
    }

    #[test]
    fn strings_numbers_tables_and_comments() {
        let text = "# a board\nname = \"Pi 4\"  # trailing comment\n\n[display]\nkind = 'ssd1306'\naddress = 0x3C\nwidth=128\nbus = \"/dev/i2c-1#x\"\n";
        assert_eq!(
            parse(text).unwrap(),
            [
                entry(2, "", "name", Value::Str("Pi 4".into())),
                entry(5, "display", "kind", Value::Str("ssd1306".into())),
                entry(6, "display", "address", Value::Int(0x3c)),
                entry(7, "display", "width", Value::Int(128)),
                entry(8, "display", "bus", Value::Str("/dev/i2c-1#x".into())),
            ]
        );
    }

    #[test]
    fn anything_outside_the_subset_is_an_error_with_its_line() {
        for (text, line, says) in [
            ("a = 1\nb = yes\n", 2, "neither a quoted string"),
            ("a = \"open\n", 1, "no closing"),
            ("a = \"x\" y\n", 1, "after the string"),
            ("a = 1 2\n", 1, "one value per line"),
            ("a = \"c:\\\\x\"\n", 1, "escapes"),
            ("[t]\na = 1\n[t]\n", 3, "appears twice"),
            ("a = 1\na = 2\n", 2, "set twice"),
            ("[[t]]\n", 1, "arrays of tables"),
            ("[t\n", 1, "no closing ]"),
            ("a.b = 1\n", 1, "not a plain key"),
            ("just words\n", 1, "expected 'key = value'"),
            ("a = 0xZZ\n", 1, "not a valid whole number"),
            ("a = -1\n", 1, "neither a quoted string"),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e:?}");
            assert!(e.message.contains(says), "{text:?}: {}", e.message);
        }
    }

    #[test]
    fn the_same_key_in_different_tables_is_fine() {
        let entries = parse("[a]\nkind = \"x\"\n[b]\nkind = \"y\"\n").unwrap();
        assert_eq!(entries.len(), 2);
    }
}
