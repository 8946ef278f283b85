//! JSON objects read field by field and written by hand, for the formats sfpair owns (the
//! inbox's entries) and the messages it picks a few fields from (Bayeux): one small reader
//! and writer shared by all of them instead of a serde derive for each, because every derived
//! `Deserialize` is a parser of its own in the binary (an internally tagged enum buffers every
//! field first, which costs the most; BENCHMARKS.md, "Bytes for the third wave").
//!
//! serde_json still does the lexing (strings, escapes, numbers): [`Object`] keeps each value as
//! its exact text ([`RawValue`]), and a getter parses the one value asked for. A value of the
//! wrong type reads as absent, as does `null`; the caller says what is missing.
//!
//! Pure: no I/O. Must not be used for replies whose every field matters to a security
//! decision without checking what is missing (absent and wrong look the same here).

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// A JSON object's fields, each value as the exact text sent, in the order sent.
pub struct Object<'a> {
    fields: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> Object<'a> {
    /// Reads one object.
    pub fn parse(text: &'a str) -> Result<Object<'a>, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Reads an array of objects.
    pub fn parse_array(text: &'a str) -> Result<Vec<Object<'a>>, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The value of `key` as sent (the first, if the key is repeated); `None` when absent or
    /// `null`.
    pub fn raw(&self, key: &str) -> Option<&'a RawValue> {
        let (_, value) = self.fields.iter().find(|(k, _)| k == key)?;
        (value.get() != "null").then_some(*value)
    }

    /// A string value.
    pub fn string(&self, key: &str) -> Option<String> {
        serde_json::from_str(self.raw(key)?.get()).ok()
    }

    /// An integer value that fits an i64.
    pub fn int(&self, key: &str) -> Option<i64> {
        serde_json::from_str(self.raw(key)?.get()).ok()
    }

    /// A non-negative integer value.
    pub fn uint(&self, key: &str) -> Option<u64> {
        serde_json::from_str(self.raw(key)?.get()).ok()
    }

    /// `true` or `false`.
    pub fn bool(&self, key: &str) -> Option<bool> {
        match self.raw(key)?.get() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }
    }

    /// An object value.
    pub fn object(&self, key: &str) -> Option<Object<'a>> {
        Object::parse(self.raw(key)?.get()).ok()
    }
}

/// A key, borrowed from the text unless it had escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> Visitor<'de> for Keys {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.into())))
            }
        }
        d.deserialize_str(Keys)
    }
}

impl<'de> Deserialize<'de> for Object<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = Object<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Object<'de>, A::Error> {
                let mut fields = Vec::new();
                while let Some((Key(k), v)) = map.next_entry::<Key<'de>, &'de RawValue>()? {
                    fields.push((k, v));
                }
                Ok(Object { fields })
            }
        }
        d.deserialize_map(Fields)
    }
}

/// Writes one JSON object, field by field: `{"t":"start","u":"…"}`.
pub struct Writer(String);

impl Writer {
    /// An empty object.
    pub fn new() -> Writer {
        Writer(String::from("{"))
    }

    fn key(&mut self, key: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        quote(&mut self.0, key);
        self.0.push(':');
    }

    /// A string field.
    pub fn string(&mut self, key: &str, value: &str) -> &mut Writer {
        self.key(key);
        quote(&mut self.0, value);
        self
    }

    /// A field whose value is JSON already (a number, `null`, an object as sent).
    pub fn raw(&mut self, key: &str, json: &str) -> &mut Writer {
        self.key(key);
        self.0.push_str(json);
        self
    }

    /// A number field.
    pub fn number(&mut self, key: &str, value: impl fmt::Display) -> &mut Writer {
        self.key(key);
        let _ = fmt::Write::write_fmt(&mut self.0, format_args!("{value}"));
        self
    }

    /// A string field, or `null`.
    pub fn opt_string(&mut self, key: &str, value: Option<&str>) -> &mut Writer {
        match value {
            Some(v) => self.string(key, v),
            None => self.raw(key, "null"),
        }
    }

    /// The object's text.
    pub fn end(&mut self) -> String {
        let mut text = core::mem::take(&mut self.0);
        text.push('}');
        text
    }
}

impl Default for Writer {
    fn default() -> Self {
        Writer::new()
    }
}

/// `s` as a JSON string, quoted and escaped, appended to `out`.
pub fn quote(out: &mut String, s: &str) {
    // A str always serialises.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_as_sent_and_wrong_or_null_ones_are_absent() {
        let o = Object::parse(
            r#"{"s":"a\"b","n":-7,"u":18446744073709551615,"b":true,"f":1.10,"z":null,
                "o":{"k":[1,2]},"s":"second","k\u0065y":1}"#,
        )
        .unwrap();
        assert_eq!(o.string("s").as_deref(), Some("a\"b"));
        assert_eq!((o.int("n"), o.uint("n")), (Some(-7), None));
        assert_eq!(o.uint("u"), Some(u64::MAX));
        assert_eq!((o.bool("b"), o.bool("n")), (Some(true), None));
        assert_eq!(o.raw("f").map(RawValue::get), Some("1.10"));
        assert!(o.raw("z").is_none() && o.string("z").is_none());
        assert!(o.string("n").is_none() && o.int("s").is_none());
        assert_eq!(o.object("o").unwrap().raw("k").unwrap().get(), "[1,2]");
        assert!(o.object("s").is_none() && o.raw("missing").is_none());
        assert_eq!(o.int("key"), Some(1));
        let list = Object::parse_array(r#"[{"a":1},{"a":2}]"#).unwrap();
        assert_eq!(list[1].int("a"), Some(2));
        assert!(Object::parse("[1]").is_err() && Object::parse("{\"a\":}").is_err());
        assert!(Object::parse_array("[1]").is_err());
    }

    #[test]
    fn written_objects_read_back_with_every_character() {
        let tricky = "quote \" backslash \\ newline \n nul \u{0} é 🙂";
        let text = Writer::new()
            .string("t", "accept")
            .string("p", tricky)
            .number("id", -2i64)
            .raw("x", "null")
            .opt_string("o", None)
            .opt_string("q", Some("v"))
            .end();
        assert!(
            text.starts_with(r#"{"t":"accept","p":"quote \" backslash"#),
            "{text}"
        );
        let o = Object::parse(&text).unwrap();
        assert_eq!(o.string("p").as_deref(), Some(tricky));
        assert_eq!(o.int("id"), Some(-2));
        assert!(o.raw("x").is_none() && o.raw("o").is_none());
        assert_eq!(o.string("q").as_deref(), Some("v"));
        assert_eq!(Writer::new().end(), "{}");
    }
}
