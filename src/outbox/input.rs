//! What `sfpair send` (and the broker's `send`) accepts, checked before anything is written:
//! the sObject and field names, and each record: a JSON object, carrying its external-id field
//! as a non-empty string (unless `--auto-id` may fill it), no `attributes` of its own, no key
//! twice, and no larger than the record limit.
//!
//! The data is one JSON object, a JSON array of objects, or JSON lines (objects one after
//! another). One bad record refuses them all, naming the record by its position (1-based)
//! and saying why: a partial queue would leave the sender unsure what was taken.
//!
//! Records stream: [`each`] reads the data once, a buffer at a time, and hands over
//! one checked record at a time, so memory does not grow with their number; a push reads the
//! data twice through [`Input`] (once to check and size it all, once to write it).
//!
//! Values are carried exactly as sent: each field's value is the text the
//! sender wrote, validated by serde_json but never rebuilt through `serde_json::Value` (which
//! turns `123456789.123456789` into `123456789.12345679` and a 30-digit integer into a float).
//! Only the record's outer shape is written anew: the keys (one spelling of the external id:
//! the one `--external-id` gives) and no whitespace between fields.
//!
//! No I/O of its own: it reads what it is handed. The names go into URL paths
//! (`composite/sobjects/{SObject}/{Field}`), so the name rule here is the only thing standing
//! between the input and the path: Salesforce API names are letters, digits and underscores,
//! starting with a letter.

use std::collections::BTreeSet;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};

use serde::de::{self, Deserializer as _, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::{NewRecord, Records, Target};
use crate::error::Error;

/// Salesforce's longest API name (object and field names are at most 40 characters plus a
/// namespace prefix and suffix; 80 leaves room for both).
const MAX_NAME: usize = 80;

/// Checks an sObject or field API name (`Device_Reading__c`, `ns__Key__c`).
pub fn api_name(name: &str, what: &str) -> Result<(), Error> {
    let mut chars = name.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    if starts_with_letter
        && name.len() <= MAX_NAME
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Ok(());
    }
    Err(Error::config(format!(
        "{what} {}: not a Salesforce API name (letters, digits and underscores, starting with a \
         letter, at most {MAX_NAME} characters), e.g. Device_Reading__c",
        crate::sanitize::text(name)
    )))
}

/// The target of `send SOBJECT --external-id FIELD`, or of `send --event EVENT__e`.
pub fn target(object: &str, external_id: Option<&str>, event: bool) -> Result<Target, Error> {
    api_name(object, if event { "--event" } else { "SOBJECT" })?;
    if event {
        if !object.to_ascii_lowercase().ends_with("__e") {
            return Err(Error::config(format!(
                "--event {object}: a platform event's API name ends in __e (e.g. Device_Alarm__e)"
            )));
        }
        if external_id.is_some() {
            return Err(Error::config(
                "--event and --external-id do not go together: platform events are inserted, \
                 never upserted",
            ));
        }
        return Ok(Target::Event {
            object: object.into(),
        });
    }
    let Some(field) = external_id else {
        return Err(Error::config(format!(
            "sfpair send {object} needs --external-id FIELD: the external-id field that makes a \
             replay update the same row instead of adding a second one"
        )));
    };
    api_name(field, "--external-id")?;
    Ok(Target::Upsert {
        object: object.into(),
        field: field.into(),
    })
}

/// The target of a send as given: `SOBJECT` with `--external-id`, or `--event`, never both.
pub fn target_of(
    sobject: Option<&str>,
    external_id: Option<&str>,
    event: Option<&str>,
    auto_id: bool,
) -> Result<Target, Error> {
    let target = match (event, sobject) {
        (Some(event), None) => target(event, external_id, true)?,
        (Some(_), Some(object)) => {
            return Err(Error::config(format!(
                "send {object} --event: give an sObject to upsert or --event EVENT__e, not both"
            )));
        }
        (None, Some(object)) => target(object, external_id, false)?,
        (None, None) => {
            return Err(Error::config(
                "send needs SOBJECT --external-id FIELD (an upsert), or --event EVENT__e",
            ));
        }
    };
    if auto_id && matches!(target, Target::Event { .. }) {
        return Err(Error::config(
            "--auto-id is for upserts: a platform event has no external id",
        ));
    }
    Ok(target)
}

/// One record's text as given, whitespace included, may be at most twice the record limit
/// (plus room for indentation): what is held of one record at a time is bounded by it.
fn raw_limit(max_record: usize) -> usize {
    2 * max_record + 4096
}

/// Reads `data` and calls `visit(json, missing_id)` for each checked record, in order, one at
/// a time: `json` is the record as it will be queued, `missing_id` says that `--auto-id` is to
/// fill in its external id. Returns how many there were; the first bad record (or a `visit`
/// error) stops it.
///
/// The records are framed here (where each object ends, by its brackets outside strings) and
/// parsed one by one from memory, rather than by serde_json's reader-based parser, which would
/// link a second copy of the parser (5,560 bytes more on armv7: BENCHMARKS.md, "Memory and
/// bytes").
pub fn each(
    data: &mut dyn Read,
    target: &Target,
    auto_id: bool,
    max_record: usize,
    visit: &mut dyn FnMut(&str, bool) -> Result<(), Error>,
) -> Result<usize, Error> {
    let mut f = Framer {
        r: BufReader::with_capacity(16 * 1024, data),
        line: 1,
        column: 1,
        text: Vec::new(),
    };
    let array = f.skip_space()? == Some(b'[');
    if array {
        f.bump();
    }
    let mut n = 0;
    loop {
        let Some(b) = f.skip_space()? else {
            if array {
                return Err(f.not_an_array("it ends too early"));
            }
            break;
        };
        if array && b == b']' && n == 0 {
            f.bump();
            break;
        }
        n += 1;
        let (line, column) = (f.line, f.column);
        match b {
            b'{' => f.object(n, max_record)?,
            b'"' => return Err(refused(n, "it is a string, not a JSON object")),
            b't' | b'f' => return Err(refused(n, "it is a boolean, not a JSON object")),
            b'n' => return Err(refused(n, "it is null, not a JSON object")),
            b'[' => return Err(refused(n, "it is an array, not a JSON object")),
            b'-' | b'0'..=b'9' => return Err(refused(n, "it is a number, not a JSON object")),
            _ if array => return Err(f.not_an_array("a syntax error")),
            _ => return Err(refused(n, &f.at("not valid JSON: a syntax error"))),
        }
        let text = std::str::from_utf8(&f.text).map_err(|_| refused(n, "it is not UTF-8 text"))?;
        let (json, missing) = record(n, text, (line, column), target, auto_id, max_record)?;
        visit(&json, missing)?;
        if array {
            match f.skip_space()? {
                Some(b',') => f.bump(),
                Some(b']') => {
                    f.bump();
                    break;
                }
                Some(_) => return Err(f.not_an_array("a syntax error")),
                None => return Err(f.not_an_array("it ends too early")),
            }
        }
    }
    if array && f.skip_space()?.is_some() {
        return Err(f.not_an_array("a syntax error"));
    }
    if n == 0 {
        return Err(Error::config(
            "no records in the data: give a JSON object, an array of objects, or JSON lines",
        ));
    }
    Ok(n)
}

/// Where one record ends: a reader of JSON values, a byte at a time, that knows its line and
/// column for messages.
struct Framer<'a> {
    r: BufReader<&'a mut dyn Read>,
    line: usize,
    column: usize,
    /// The text of the object read last.
    text: Vec<u8>,
}

impl Framer<'_> {
    fn peek(&mut self) -> Result<Option<u8>, Error> {
        let buf = self
            .r
            .fill_buf()
            .map_err(|e| Error::config(format!("cannot read the data: {e}")))?;
        Ok(buf.first().copied())
    }

    fn bump(&mut self) {
        if self.peek().ok().flatten() == Some(b'\n') {
            self.line += 1;
            self.column = 0;
        }
        self.column += 1;
        self.r.consume(1);
    }

    /// The next byte that is not JSON whitespace, left unread; `None` at the end.
    fn skip_space(&mut self) -> Result<Option<u8>, Error> {
        loop {
            match self.peek()? {
                Some(b' ' | b'\t' | b'\n' | b'\r') => self.bump(),
                other => return Ok(other),
            }
        }
    }

    /// Reads the object that starts here into `text`: up to its closing brace, counting
    /// brackets outside strings. Its syntax is serde_json's to check ([`record`]).
    fn object(&mut self, n: usize, max_record: usize) -> Result<(), Error> {
        let limit = raw_limit(max_record);
        self.text.clear();
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
        loop {
            let Some(b) = self.peek()? else {
                return Err(refused(n, &self.at("not valid JSON: it ends too early")));
            };
            self.bump();
            self.text.push(b);
            if self.text.len() > limit {
                return Err(refused(
                    n,
                    &format!(
                        "it is more than {limit} bytes of text (the limit per record is \
                         {max_record} bytes of JSON)"
                    ),
                ));
            }
            match (in_string, escaped, b) {
                (true, true, _) => escaped = false,
                (true, false, b'\\') => escaped = true,
                (true, false, b'"') => in_string = false,
                (true, false, _) => {}
                (false, _, b'"') => in_string = true,
                (false, _, b'{' | b'[') => depth += 1,
                (false, _, b'}' | b']') => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                (false, _, _) => {}
            }
        }
    }

    /// `what` with where the reading is.
    fn at(&self, what: &str) -> String {
        format!("{what} at line {} column {}", self.line, self.column)
    }

    fn not_an_array(&self, what: &str) -> Error {
        Error::config(format!(
            "the data is not a valid JSON array: {}",
            self.at(what)
        ))
    }
}

/// Splits `data` into checked records for `target`, all of them in memory (the library's
/// convenience; `send` streams with [`each`] and [`Input`]).
pub fn records(
    data: &str,
    target: &Target,
    auto_id: bool,
    max_record: usize,
) -> Result<Vec<NewRecord>, Error> {
    let mut out = Vec::new();
    each(
        &mut data.as_bytes(),
        target,
        auto_id,
        max_record,
        &mut |json, missing| {
            out.push(NewRecord {
                target: target.clone(),
                json: json.to_string(),
                auto_id: missing,
            });
            Ok(())
        },
    )?;
    Ok(out)
}

/// Data that can be read from its start again, for a push that reads it twice: a file (whose
/// reading starts where its offset was), or bytes in memory (`io::Cursor`).
pub trait Rewind: Read + Seek {}
impl<T: Read + Seek> Rewind for T {}

/// The records of `data` for one target, as a push takes them ([`Records`]): each visit reads
/// the data again from where it started and checks every record again, so a file changed
/// between the two readings is noticed (the push compares what it wrote with what it sized).
pub struct Input<'a> {
    data: &'a mut dyn Rewind,
    start: u64,
    target: &'a Target,
    auto_id: bool,
    max_record: usize,
}

impl<'a> Input<'a> {
    /// Input read from `source` (see the fields).
    pub fn new(
        data: &'a mut dyn Rewind,
        target: &'a Target,
        auto_id: bool,
        max_record: usize,
    ) -> io::Result<Input<'a>> {
        let start = data.stream_position()?;
        Ok(Input {
            data,
            start,
            target,
            auto_id,
            max_record,
        })
    }
}

impl Records for Input<'_> {
    fn each(
        &mut self,
        visit: &mut dyn FnMut(&Target, &str, bool) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.data
            .seek(SeekFrom::Start(self.start))
            .map_err(|e| Error::config(format!("cannot read the data again: {e}")))?;
        let target = self.target;
        each(
            &mut *self.data,
            target,
            self.auto_id,
            self.max_record,
            &mut |json, missing| visit(target, json, missing),
        )
        .map(|_| ())
    }
}

/// Checks one record's text (an object by its brackets; its syntax is checked here), found
/// at line and column `at` of the data, and writes it as it will be queued.
fn record(
    n: usize,
    raw: &str,
    at: (usize, usize),
    target: &Target,
    auto_id: bool,
    max_record: usize,
) -> Result<(String, bool), Error> {
    let mut fields = Fields {
        target,
        out: String::with_capacity(raw.len()),
        seen: BTreeSet::new(),
        has_id: false,
        problem: None,
    };
    if let Err(e) = (&mut serde_json::Deserializer::from_str(raw)).deserialize_map(&mut fields) {
        if let Some(why) = fields.problem {
            return Err(refused(n, &why));
        }
        // serde_json counts from the record's first byte; the sender counts from the data's.
        let (line, column) = match e.line() {
            1 => (at.0, at.1 + e.column().saturating_sub(1)),
            l => (at.0 + l - 1, e.column()),
        };
        return Err(refused(
            n,
            &format!(
                "not valid JSON: {} at line {line} column {column}",
                category(&e)
            ),
        ));
    }
    let mut missing_id = false;
    if let Target::Upsert { field, .. } = target
        && !fields.has_id
    {
        if !auto_id {
            return Err(refused(
                n,
                &format!(
                    "it has no {field}, its external id (add it, or pass --auto-id to let \
                     sfpair fill in one unique to this device)"
                ),
            ));
        }
        missing_id = true;
    }
    let json = fields.out;
    // Room for the id sfpair may add (`"Field":"<16 hex>-<20 digits>"`).
    let reserve = if missing_id { 48 + MAX_NAME } else { 0 };
    if json.len() + reserve > max_record {
        return Err(refused(
            n,
            &format!(
                "it is {} bytes of JSON; the limit per record is {max_record} bytes",
                json.len() + reserve
            ),
        ));
    }
    Ok((json, missing_id))
}

/// One record's fields, written out as they come: each value's text untouched.
struct Fields<'a> {
    target: &'a Target,
    out: String,
    /// The keys so far, lower-cased: Salesforce field names ignore case.
    seen: BTreeSet<String>,
    has_id: bool,
    problem: Option<String>,
}

impl Fields<'_> {
    fn field(&mut self, key: &str, value: &str) -> Result<(), String> {
        if key.eq_ignore_ascii_case("attributes") {
            return Err(
                "it has its own \"attributes\"; sfpair sets the sObject type itself".into(),
            );
        }
        if !self.seen.insert(key.to_ascii_lowercase()) {
            return Err(format!(
                "the key {} appears twice (Salesforce field names ignore case); give each \
                 field once",
                serde_json::Value::from(crate::sanitize::text(key))
            ));
        }
        let mut name = key;
        if let Target::Upsert { field, .. } = self.target
            && key.eq_ignore_ascii_case(field)
        {
            let id: Option<String> = serde_json::from_str(value).ok();
            if id.is_none_or(|id| id.trim().is_empty()) {
                return Err(format!(
                    "its {field} is {}; an external id must be a non-empty string",
                    kind(value)
                ));
            }
            // One spelling on the wire: the field as --external-id names it.
            name = field;
            self.has_id = true;
        }
        self.out.push(if self.out.is_empty() { '{' } else { ',' });
        self.out
            .push_str(&serde_json::Value::from(name).to_string());
        self.out.push(':');
        push_compact(&mut self.out, value);
        Ok(())
    }
}

/// Appends a valid JSON value's text without the whitespace between its tokens (a nested
/// object or array may span lines; a queued record, and a broker request, is one line).
/// Strings, numbers and every other token are copied byte for byte.
fn push_compact(out: &mut String, value: &str) {
    let (mut in_string, mut escaped) = (false, false);
    for c in value.chars() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        } else if matches!(c, ' ' | '\t' | '\n' | '\r') {
            continue;
        }
        out.push(c);
    }
}

impl<'de> Visitor<'de> for &mut Fields<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            let value: &RawValue = map.next_value()?;
            if let Err(why) = self.field(&key, value.get()) {
                self.problem = Some(why);
                return Err(de::Error::custom("refused"));
            }
        }
        if self.out.is_empty() {
            self.out.push('{');
        }
        self.out.push('}');
        Ok(())
    }
}

fn refused(n: usize, why: &str) -> Error {
    Error::config(format!("record {n} refused: {why}; nothing was queued"))
}

/// What a valid JSON text is, from its first character.
fn kind(json: &str) -> &'static str {
    match json.as_bytes().first() {
        Some(b'n') => "null",
        Some(b't' | b'f') => "a boolean",
        Some(b'"') => "a string",
        Some(b'[') => "an array",
        Some(b'{') => "an object",
        _ => "a number",
    }
}

/// serde_json's error category in words, without its text (which may quote the input).
fn category(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Eof => "it ends too early",
        serde_json::error::Category::Syntax => "a syntax error",
        serde_json::error::Category::Data => "a data error",
        serde_json::error::Category::Io => "a read error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::CleanErr;

    fn upsert() -> Target {
        target("Device_Reading__c", Some("Reading_Key__c"), false).unwrap()
    }

    #[test]
    fn an_object_an_array_and_json_lines_are_all_accepted() {
        let one = records(
            r#"{"Reading_Key__c":"a","Value__c":1}"#,
            &upsert(),
            false,
            1024,
        );
        assert_eq!(one.unwrap().len(), 1);
        let array = records(
            r#"[{"Reading_Key__c":"a"},{"Reading_Key__c":"b"}]"#,
            &upsert(),
            false,
            1024,
        );
        assert_eq!(array.unwrap().len(), 2);
        let lines = "{\"Reading_Key__c\":\"a\"}\n{\"Reading_Key__c\":\"b\"}\n\n{\"Reading_Key__c\":\"c\"}\n";
        let lines = records(lines, &upsert(), false, 1024).unwrap();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[2].json, r#"{"Reading_Key__c":"c"}"#);
    }

    #[test]
    fn a_bad_record_is_named_by_position_and_why() {
        let e = records(
            "{\"Reading_Key__c\":\"a\"}\n{\"Value__c\":2}\n",
            &upsert(),
            false,
            1024,
        )
        .map(|_| ())
        .clean_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.message()
                .starts_with("record 2 refused: it has no Reading_Key__c"),
            "{}",
            e.message()
        );
        assert!(e.message().contains("--auto-id"));

        let e = records("[1]", &upsert(), false, 1024)
            .map(|_| ())
            .clean_err();
        assert!(
            e.message().contains("record 1 refused: it is a number"),
            "{}",
            e.message()
        );
        let e = records(r#"{"Reading_Key__c":7}"#, &upsert(), false, 1024)
            .map(|_| ())
            .clean_err();
        assert!(
            e.message()
                .contains("is a number; an external id must be a non-empty string")
        );
        let e = records(r#"{"Reading_Key__c":" "}"#, &upsert(), false, 1024)
            .map(|_| ())
            .clean_err();
        assert!(e.message().contains("non-empty string"));
        let e = records("{\"Reading_Key__c\":\"a\"}\n{oops", &upsert(), false, 1024)
            .map(|_| ())
            .clean_err();
        assert!(
            e.message().starts_with("record 2 refused: not valid JSON"),
            "{}",
            e.message()
        );
        let e = records(r#"[{"Reading_Key__c":"a"}"#, &upsert(), false, 1024)
            .map(|_| ())
            .clean_err();
        assert!(e.message().contains("not a valid JSON array"));
        let e = records("  \n", &upsert(), false, 1024)
            .map(|_| ())
            .clean_err();
        assert!(e.message().starts_with("no records"));
        let e = records(
            r#"{"Reading_Key__c":"a","attributes":{"type":"Account"}}"#,
            &upsert(),
            false,
            1024,
        )
        .map(|_| ())
        .clean_err();
        assert!(e.message().contains("attributes"));
    }

    #[test]
    fn the_record_limit_counts_the_json_and_the_id_to_come() {
        let big = format!(
            r#"{{"Reading_Key__c":"a","Sensor__c":"{}"}}"#,
            "x".repeat(100)
        );
        assert!(records(&big, &upsert(), false, big.len()).is_ok());
        let e = records(&big, &upsert(), false, big.len() - 1)
            .map(|_| ())
            .clean_err();
        assert!(
            e.message().contains(&format!("it is {} bytes", big.len())),
            "{}",
            e.message()
        );
        let e = records(r#"{"Value__c":1}"#, &upsert(), true, 40)
            .map(|_| ())
            .clean_err();
        assert!(e.message().contains("limit per record is 40 bytes"));
    }

    #[test]
    fn auto_id_marks_only_the_records_that_lack_one() {
        let got = records(
            "{\"Reading_Key__c\":\"a\"}\n{\"Value__c\":2}",
            &upsert(),
            true,
            1024,
        )
        .unwrap();
        assert!(!got[0].auto_id);
        assert!(got[1].auto_id);
    }

    #[test]
    fn the_external_id_is_spelled_as_the_flag_spells_it() {
        let got = records(r#"{"reading_key__C":"a"}"#, &upsert(), false, 1024).unwrap();
        assert_eq!(got[0].json, r#"{"Reading_Key__c":"a"}"#);
    }

    #[test]
    fn names_that_could_bend_the_path_are_refused() {
        for bad in [
            "",
            "Account/../x",
            "Acc ount",
            "1Account",
            "Account?x=1",
            "Ä",
            &"a".repeat(81),
        ] {
            let e = target(bad, Some("Key__c"), false).map(|_| ()).clean_err();
            assert_eq!(e.exit_code(), 2);
            let e = target("Account", Some(bad), false).map(|_| ()).clean_err();
            assert_eq!(e.exit_code(), 2);
        }
        assert!(target("ns__Thing__c", Some("ns__Key__c"), false).is_ok());
        let e = target("Device_Reading__c", None, false)
            .map(|_| ())
            .clean_err();
        assert!(e.message().contains("needs --external-id"));
        let e = target("Device_Alarm__c", None, true)
            .map(|_| ())
            .clean_err();
        assert!(e.message().contains("ends in __e"));
        let e = target("Device_Alarm__e", Some("K__c"), true)
            .map(|_| ())
            .clean_err();
        assert!(e.message().contains("do not go together"));
        assert!(target("Device_Alarm__e", None, true).is_ok());
    }

    #[test]
    fn events_need_no_external_id() {
        let event = target("Device_Alarm__e", None, true).unwrap();
        let got = records(r#"{"Code__c":"E1"}"#, &event, false, 1024).unwrap();
        assert!(!got[0].auto_id);
    }

    #[test]
    fn values_arrive_as_written_not_rebuilt() {
        let data = r#"{"Reading_Key__c":"a","Value__c":123456789.123456789,"Big__c":123456789012345678901234567890,"E__c":1.0e+2,"S__c":"caf\u00e9 \"q\""}"#;
        let got = records(data, &upsert(), false, 1024).unwrap();
        assert_eq!(got[0].json, data);
        let array = format!("[\n  {data} ,\n {data}\n]");
        let got = records(&array, &upsert(), false, 1024).unwrap();
        assert_eq!((got.len(), got[1].json.as_str()), (2, data));
    }

    #[test]
    fn nested_values_lose_only_their_whitespace() {
        let data = "{ \"Reading_Key__c\" : \"a b\",\n \"Parent__r\": {\n  \"Key__c\": \"x \\\" y\" ,\"N\": [ 1.50 , 2 ]\n }\n}";
        let got = records(data, &upsert(), false, 1024).unwrap();
        assert_eq!(
            got[0].json,
            r#"{"Reading_Key__c":"a b","Parent__r":{"Key__c":"x \" y","N":[1.50,2]}}"#
        );
    }

    #[test]
    fn a_key_given_twice_is_refused_by_name() {
        for data in [
            r#"{"Reading_Key__c":"a","Value__c":1,"Value__c":2}"#,
            r#"{"Reading_Key__c":"a","Value__c":1,"value__C":2}"#,
            r#"{"Reading_Key__c":"a","reading_key__c":"b"}"#,
        ] {
            let lines = format!("{{\"Reading_Key__c\":\"ok\"}}\n{data}");
            let e = records(&lines, &upsert(), false, 1024)
                .map(|_| ())
                .clean_err();
            assert_eq!(e.exit_code(), 2);
            assert!(
                e.message().starts_with("record 2 refused: the key ")
                    && e.message().contains("appears twice"),
                "{}",
                e.message()
            );
        }
        let e = records(
            r#"{"Reading_Key__c":"a","Value__c":1,"Value__c":2}"#,
            &upsert(),
            false,
            1024,
        )
        .map(|_| ())
        .clean_err();
        assert!(
            e.message().contains(r#"the key "Value__c" appears twice"#),
            "{}",
            e.message()
        );
    }

    #[test]
    fn records_stream_one_at_a_time() {
        // A reader that hands out 7 bytes per read: records cross every buffer boundary.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(7).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut lines = String::new();
        for i in 0..2000 {
            lines.push_str(&format!(
                "{{\"Reading_Key__c\":\"k{i}\",\"Value__c\":{i}.25}}\n"
            ));
        }
        let array = format!("[{}]", lines.trim_end().replace('\n', ","));
        for data in [&lines, &array] {
            let mut seen = 0;
            let n = each(
                &mut Trickle(data.as_bytes()),
                &upsert(),
                false,
                1024,
                &mut |json, _| {
                    assert_eq!(
                        json,
                        format!(r#"{{"Reading_Key__c":"k{seen}","Value__c":{seen}.25}}"#)
                    );
                    seen += 1;
                    Ok(())
                },
            )
            .unwrap();
            assert_eq!((n, seen), (2000, 2000));
        }
    }

    #[test]
    fn one_record_may_not_make_the_reader_buffer_without_end() {
        let huge = format!(
            r#"{{"Reading_Key__c":"a","Blob__c":"{}"}}"#,
            "x".repeat(10_000)
        );
        let e = records(&huge, &upsert(), false, 1024)
            .map(|_| ())
            .clean_err();
        assert!(
            e.message()
                .starts_with("record 1 refused: it is more than 6144 bytes of text"),
            "{}",
            e.message()
        );
        let e = records(&format!("[{huge}]"), &upsert(), false, 1024)
            .map(|_| ())
            .clean_err();
        assert!(
            e.message().contains("more than 6144 bytes"),
            "{}",
            e.message()
        );
    }

    #[test]
    fn input_reads_its_data_again_from_where_it_started() {
        let mut data = io::Cursor::new(b"xx{\"Reading_Key__c\":\"a\"}".to_vec());
        data.set_position(2);
        let target = upsert();
        let mut input = Input::new(&mut data, &target, false, 1024).unwrap();
        for _ in 0..2 {
            let mut got = Vec::new();
            input
                .each(&mut |_, json, _| {
                    got.push(json.to_string());
                    Ok(())
                })
                .unwrap();
            assert_eq!(got, [r#"{"Reading_Key__c":"a"}"#]);
        }
    }

    #[test]
    fn a_syntax_error_is_placed_in_the_data_not_in_the_record() {
        let data = "{\"Reading_Key__c\":\"a\"}\n  {\"Reading_Key__c\": x}";
        let e = records(data, &upsert(), false, 1024)
            .map(|_| ())
            .clean_err();
        assert_eq!(
            e.message(),
            "record 2 refused: not valid JSON: a syntax error at line 2 column 22; nothing was queued"
        );
        let e = records("[{\"Reading_Key__c\":\"a\"} {}]", &upsert(), false, 1024)
            .map(|_| ())
            .clean_err();
        assert_eq!(
            e.message(),
            "the data is not a valid JSON array: a syntax error at line 1 column 25"
        );
        let e = records("[{\"Reading_Key__c\":\"a\"}] x", &upsert(), false, 1024)
            .map(|_| ())
            .clean_err();
        assert!(
            e.message()
                .contains("not a valid JSON array: a syntax error at line 1 column 26"),
            "{}",
            e.message()
        );
        assert!(
            records("[]", &upsert(), false, 1024)
                .map(|_| ())
                .clean_err()
                .message()
                .starts_with("no records")
        );
    }
}
