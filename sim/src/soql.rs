//! The SOQL subset the simulator answers:
//! `SELECT field, … FROM Object [WHERE field op literal [AND …]] [ORDER BY field [ASC|DESC]] [LIMIT n]`
//! with `op` one of `=` and `!=`, and literals `'text'` (with `\'` and `\\`), numbers,
//! `true`, `false` and `null`. Keywords and names ignore case, as in Salesforce.
//!
//! Anything else is a `MALFORMED_QUERY`; unknown objects `INVALID_TYPE`, unknown
//! fields `INVALID_FIELD`, with Salesforce's wording. Parsing and running only: the
//! paging and the wire format are `rest/query.rs`'s.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::errors::RecordError;
use crate::schema::{Object, Schema};
use crate::store::{Records, same};

/// A parsed query, with names resolved against the schema.
#[derive(Debug, PartialEq)]
pub struct Query {
    pub object: String,
    pub fields: Vec<String>,
    conditions: Vec<(String, bool, Value)>,
    order: Option<(String, bool)>,
    limit: Option<usize>,
}

#[derive(Debug, PartialEq, Clone)]
enum Token {
    Word(String),
    Text(String),
    Number(String),
    Comma,
    Equals,
    NotEquals,
}

fn tokens(soql: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = soql.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            ',' => {
                chars.next();
                out.push(Token::Comma);
            }
            '=' => {
                chars.next();
                out.push(Token::Equals);
            }
            '!' => {
                chars.next();
                if chars.next() != Some('=') {
                    return Err("unexpected token: '!'".into());
                }
                out.push(Token::NotEquals);
            }
            '\'' => {
                chars.next();
                let mut text = String::new();
                loop {
                    match chars.next() {
                        None => return Err("unterminated string literal".into()),
                        Some('\'') => break,
                        Some('\\') => match chars.next() {
                            Some(escaped @ ('\'' | '\\' | '"')) => text.push(escaped),
                            Some('n') => text.push('\n'),
                            _ => return Err("invalid escape in a string literal".into()),
                        },
                        Some(c) => text.push(c),
                    }
                }
                out.push(Token::Text(text));
            }
            c if c.is_ascii_digit() || c == '-' || c == '.' => {
                let mut number = String::new();
                while let Some(&d) = chars
                    .peek()
                    .filter(|d| d.is_ascii_digit() || **d == '.' || **d == '-')
                {
                    number.push(d);
                    chars.next();
                }
                out.push(Token::Number(number));
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut word = String::new();
                while let Some(&d) = chars
                    .peek()
                    .filter(|d| d.is_ascii_alphanumeric() || **d == '_')
                {
                    word.push(d);
                    chars.next();
                }
                out.push(Token::Word(word));
            }
            other => return Err(format!("unexpected token: '{other}'")),
        }
    }
    Ok(out)
}

/// Parses and resolves a query.
pub fn parse(soql: &str, schema: &Schema) -> Result<Query, RecordError> {
    let malformed = |why: String| RecordError::new(400, "MALFORMED_QUERY", why);
    let tokens = tokens(soql).map_err(malformed)?;
    let mut at = 0;
    let keyword = |at: &mut usize, word: &str| -> bool {
        match tokens.get(*at) {
            Some(Token::Word(w)) if w.eq_ignore_ascii_case(word) => {
                *at += 1;
                true
            }
            _ => false,
        }
    };
    let name = |at: &mut usize| -> Option<String> {
        match tokens.get(*at) {
            Some(Token::Word(w)) => {
                *at += 1;
                Some(w.clone())
            }
            _ => None,
        }
    };
    if !keyword(&mut at, "SELECT") {
        return Err(malformed(
            "unexpected token: the query must start with SELECT".into(),
        ));
    }
    let mut raw_fields = Vec::new();
    loop {
        let field =
            name(&mut at).ok_or_else(|| malformed("expected a field name after SELECT".into()))?;
        raw_fields.push(field);
        if tokens.get(at) != Some(&Token::Comma) {
            break;
        }
        at += 1;
    }
    if !keyword(&mut at, "FROM") {
        return Err(malformed(format!(
            "unexpected token: '{}': expected FROM",
            describe(tokens.get(at))
        )));
    }
    let object_name =
        name(&mut at).ok_or_else(|| malformed("expected an object after FROM".into()))?;
    let object = schema.object(&object_name).ok_or_else(|| {
        RecordError::new(
            400,
            "INVALID_TYPE",
            format!(
                "sObject type '{object_name}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names."
            ),
        )
    })?;
    if object.platform_event {
        // Platform events cannot be queried with SOQL (platform events guide,
        // "Considerations"); the wording is unconfirmed.
        return Err(RecordError::new(
            400,
            "INVALID_TYPE_FOR_OPERATION",
            format!("entity type {} does not support query", object.name),
        ));
    }
    let resolve = |raw: &str| -> Result<String, RecordError> { resolve_field(object, raw) };
    let fields = raw_fields
        .iter()
        .map(|f| resolve(f))
        .collect::<Result<Vec<_>, _>>()?;
    let mut conditions = Vec::new();
    if keyword(&mut at, "WHERE") {
        loop {
            let field =
                name(&mut at).ok_or_else(|| malformed("expected a field after WHERE".into()))?;
            let field = resolve(&field)?;
            let equal = match tokens.get(at) {
                Some(Token::Equals) => true,
                Some(Token::NotEquals) => false,
                other => {
                    return Err(malformed(format!(
                        "unexpected token: '{}': only = and != are simulated",
                        describe(other)
                    )));
                }
            };
            at += 1;
            let literal = match tokens.get(at) {
                Some(Token::Text(t)) => Value::String(t.clone()),
                Some(Token::Number(n)) => serde_json::from_str::<serde_json::Number>(n)
                    .map(Value::Number)
                    .map_err(|_| malformed(format!("bad number: {n}")))?,
                Some(Token::Word(w)) if w.eq_ignore_ascii_case("true") => Value::Bool(true),
                Some(Token::Word(w)) if w.eq_ignore_ascii_case("false") => Value::Bool(false),
                Some(Token::Word(w)) if w.eq_ignore_ascii_case("null") => Value::Null,
                other => {
                    return Err(malformed(format!(
                        "unexpected token: '{}': expected a literal",
                        describe(other)
                    )));
                }
            };
            at += 1;
            conditions.push((field, equal, literal));
            if !keyword(&mut at, "AND") {
                break;
            }
        }
    }
    let mut order = None;
    if keyword(&mut at, "ORDER") {
        if !keyword(&mut at, "BY") {
            return Err(malformed("expected BY after ORDER".into()));
        }
        let field =
            name(&mut at).ok_or_else(|| malformed("expected a field after ORDER BY".into()))?;
        let field = resolve(&field)?;
        let descending = keyword(&mut at, "DESC");
        if !descending {
            keyword(&mut at, "ASC");
        }
        order = Some((field, descending));
    }
    let mut limit = None;
    if keyword(&mut at, "LIMIT") {
        match tokens.get(at) {
            Some(Token::Number(n)) => {
                limit = Some(
                    n.parse()
                        .map_err(|_| malformed(format!("bad LIMIT: {n}")))?,
                );
                at += 1;
            }
            other => {
                return Err(malformed(format!(
                    "unexpected token: '{}': expected a number after LIMIT",
                    describe(other)
                )));
            }
        }
    }
    if let Some(extra) = tokens.get(at) {
        return Err(malformed(format!(
            "unexpected token: '{}'",
            describe(Some(extra))
        )));
    }
    Ok(Query {
        object: object.name.clone(),
        fields,
        conditions,
        order,
        limit,
    })
}

fn describe(token: Option<&Token>) -> String {
    match token {
        None => "end of query".into(),
        Some(Token::Word(w)) | Some(Token::Number(w)) => w.clone(),
        Some(Token::Text(t)) => format!("'{t}'"),
        Some(Token::Comma) => ",".into(),
        Some(Token::Equals) => "=".into(),
        Some(Token::NotEquals) => "!=".into(),
    }
}

fn resolve_field(object: &Object, raw: &str) -> Result<String, RecordError> {
    object.field(raw).map(|f| f.name.clone()).ok_or_else(|| {
        RecordError::new(
            400,
            "INVALID_FIELD",
            format!(
                "No such column '{raw}' on entity '{}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.",
                object.name
            ),
        )
    })
}

/// The matching records' selected fields, in order; `all` includes deleted records.
pub fn run(query: &Query, records: &Records, all: bool) -> Vec<(String, Map<String, Value>)> {
    let mut hits: Vec<_> = records
        .of(&query.object)
        .filter(|r| all || !r.deleted)
        .filter(|r| {
            query.conditions.iter().all(|(field, equal, literal)| {
                let value = r.fields.get(field).unwrap_or(&Value::Null);
                same(value, literal) == *equal
            })
        })
        .collect();
    if let Some((field, descending)) = &query.order {
        hits.sort_by(|a, b| {
            let ordering = compare(a.fields.get(field), b.fields.get(field));
            if *descending {
                ordering.reverse()
            } else {
                ordering
            }
        });
    }
    hits.into_iter()
        .take(query.limit.unwrap_or(usize::MAX))
        .map(|r| {
            let selected = query
                .fields
                .iter()
                .map(|f| (f.clone(), r.fields.get(f).cloned().unwrap_or(Value::Null)))
                .collect();
            (r.id.clone(), selected)
        })
        .collect()
}

/// Nulls first, then numbers, booleans and strings (ignoring case).
fn compare(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    let a = a.filter(|v| !v.is_null());
    let b = b.filter(|v| !v.is_null());
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(Value::Number(a)), Some(Value::Number(b))) => a
            .as_f64()
            .partial_cmp(&b.as_f64())
            .unwrap_or(Ordering::Equal),
        (Some(Value::Bool(a)), Some(Value::Bool(b))) => a.cmp(b),
        (Some(a), Some(b)) => {
            let text = |v: &Value| {
                v.as_str()
                    .map(str::to_lowercase)
                    .unwrap_or_else(|| v.to_string())
            };
            text(a).cmp(&text(b))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn store() -> Records {
        let mut records = Records::default();
        for (name, employees) in [("Beta", 5), ("alpha", 50), ("Gamma", 5)] {
            let fields = json!({"Name": name, "NumberOfEmployees": employees});
            records.insert("Account", "001", fields.as_object().cloned().unwrap());
        }
        records
    }

    fn names(soql: &str) -> Vec<String> {
        let schema = Schema::default();
        let query = parse(soql, &schema).unwrap();
        run(&query, &store(), false)
            .into_iter()
            .map(|(_, f)| f["Name"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn where_order_and_limit() {
        assert_eq!(
            names("SELECT Name FROM Account"),
            ["Beta", "alpha", "Gamma"]
        );
        assert_eq!(
            names("select name from account order by Name"),
            ["alpha", "Beta", "Gamma"]
        );
        assert_eq!(
            names(
                "SELECT Id, Name FROM Account WHERE NumberOfEmployees = 5 ORDER BY Name DESC LIMIT 1"
            ),
            ["Gamma"]
        );
        assert_eq!(
            names("SELECT Name FROM Account WHERE NumberOfEmployees != 5 AND Name = 'ALPHA'"),
            ["alpha"]
        );
        assert_eq!(
            names("SELECT Name FROM Account WHERE Name = 'it\\'s'"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn errors_carry_salesforce_codes() {
        let schema = Schema::default();
        let code = |soql: &str| parse(soql, &schema).unwrap_err().code;
        assert_eq!(code("SELECT FROM Account"), "MALFORMED_QUERY");
        assert_eq!(code("SELECT Name Account"), "MALFORMED_QUERY");
        assert_eq!(
            code("SELECT Name FROM Account WHERE Name LIKE 'a%'"),
            "MALFORMED_QUERY"
        );
        assert_eq!(code("SELECT Name FROM Account LIMIT"), "MALFORMED_QUERY");
        assert_eq!(
            code("SELECT Name FROM Account GROUP BY Name"),
            "MALFORMED_QUERY"
        );
        assert_eq!(code("SELECT Name FROM Nope__c"), "INVALID_TYPE");
        assert_eq!(code("SELECT Nope FROM Account"), "INVALID_FIELD");
    }
}
