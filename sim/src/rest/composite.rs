//! `POST composite`: up to 25 subrequests run in order in one call, each answered in
//! `compositeResponse` with `body`, `httpHeaders`, `httpStatusCode` and `referenceId`.
//! A subrequest may use an earlier one's result as `@{referenceId.field}` (also
//! `@{ref.records[0].Id}`) in its URL or body. With `allOrNone`, one failure rolls every
//! change back and the other subrequests answer `PROCESSING_HALTED`.
//!
//! Subrequests go through the same routes as direct requests, through the
//! [`Handler`]-typed dispatcher passed in, so this file imports no other handler.

use serde_json::{Map, Value, json};

use crate::errors::rest_error;
use crate::http::Response;

use super::call::{Call, Ctx, body_json, json_object, versioned};

/// Salesforce's cap on subrequests in one composite request.
const MAX_SUBREQUESTS: usize = 25;

const HALTED: &str =
    "The transaction was rolled back since another operation in the same transaction failed.";

/// Runs one subrequest: `(ctx, version, call)`.
pub type Dispatch = fn(&mut Ctx, u32, &Call) -> Response;

pub fn handle(ctx: &mut Ctx, call: &Call, dispatch: Dispatch) -> Response {
    let body = match json_object(call.body) {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    let all_or_none = body
        .get("allOrNone")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let Some(subrequests) = body.get("compositeRequest").and_then(Value::as_array) else {
        return rest_error(400, "JSON_PARSER_ERROR", "compositeRequest must be a list");
    };
    if subrequests.len() > MAX_SUBREQUESTS {
        return rest_error(
            400,
            "INVALID_BATCH_REQUEST",
            &format!(
                "Limit Exceeded: the composite request has more than {MAX_SUBREQUESTS} subrequests"
            ),
        );
    }
    let snapshot = all_or_none.then(|| ctx.world.records.clone());
    let mut results: Map<String, Value> = Map::new();
    let mut answers = Vec::new();
    let mut failed = false;
    for sub in subrequests {
        let reference = sub
            .get("referenceId")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let (status, headers, body) = if failed && all_or_none {
            halted()
        } else {
            run_one(ctx, sub, &results, dispatch)
        };
        if status >= 400 {
            failed = true;
        }
        results.insert(reference.clone(), body.clone());
        answers.push((reference, status, headers, body));
    }
    if let (true, Some(snapshot)) = (failed, snapshot) {
        ctx.world.records = snapshot;
        for answer in &mut answers {
            if answer.1 < 400 {
                let (status, headers, body) = halted();
                (answer.1, answer.2, answer.3) = (status, headers, body);
            }
        }
    }
    let composite: Vec<Value> = answers
        .into_iter()
        .map(|(reference, status, headers, body)| {
            json!({"body": body, "httpHeaders": headers, "httpStatusCode": status, "referenceId": reference})
        })
        .collect();
    Response::json(200, &json!({"compositeResponse": composite}))
}

fn halted() -> (u16, Value, Value) {
    (
        400,
        json!({}),
        json!([{"errorCode": "PROCESSING_HALTED", "message": HALTED}]),
    )
}

fn run_one(
    ctx: &mut Ctx,
    sub: &Value,
    results: &Map<String, Value>,
    dispatch: Dispatch,
) -> (u16, Value, Value) {
    let refuse = |message: String| {
        (
            400,
            json!({}),
            json!([{"errorCode": "PROCESSING_HALTED", "message": message}]),
        )
    };
    let method = sub
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_uppercase();
    let Some(url) = sub.get("url").and_then(Value::as_str) else {
        return refuse("every subrequest needs a url".into());
    };
    let url = match substitute(url, results) {
        Ok(url) => url,
        Err(missing) => return refuse(missing),
    };
    let body = match sub.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(body) => match substitute(&body.to_string(), results) {
            Ok(text) => text.into_bytes(),
            Err(missing) => return refuse(missing),
        },
    };
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let Some((version, resource)) = versioned(path) else {
        return (
            404,
            json!({}),
            json!([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]),
        );
    };
    let call = Call {
        method: &method,
        resource,
        query,
        body: &body,
    };
    let response = dispatch(ctx, version, &call);
    let headers: Map<String, Value> = response
        .headers
        .iter()
        .filter(|(name, _)| *name == "Location")
        .map(|(name, value)| (name.to_string(), Value::String(value.clone())))
        .collect();
    (
        response.status,
        Value::Object(headers),
        body_json(&response),
    )
}

/// Replaces every `@{ref.path}` with the value found in an earlier result.
fn substitute(text: &str, results: &Map<String, Value>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("@{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('}') else {
            return Err("unterminated @{ reference".into());
        };
        let expression = &rest[start + 2..start + end];
        let value = lookup(expression, results).ok_or_else(|| {
            format!("Invalid reference specified. No value for {expression} found in the results of earlier subrequests.")
        })?;
        match value {
            Value::String(s) => out.push_str(&s),
            other => out.push_str(&other.to_string()),
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `ref.records[0].Id` -> the value under that path of result `ref`.
fn lookup(expression: &str, results: &Map<String, Value>) -> Option<Value> {
    let mut parts = expression.split('.');
    let mut value = results.get(parts.next()?)?;
    for part in parts {
        let (key, index) = match part.split_once('[') {
            Some((key, index)) => (
                key,
                Some(index.trim_end_matches(']').parse::<usize>().ok()?),
            ),
            None => (part, None),
        };
        value = value.get(key)?;
        if let Some(i) = index {
            value = value.get(i)?;
        }
    }
    (!value.is_null()).then(|| value.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_resolve_paths_and_indexes() {
        let mut results = Map::new();
        results.insert("acct".into(), json!({"id": "001SIM000000001YBA"}));
        results.insert(
            "q".into(),
            json!({"records": [{"Id": "003SIM000000001YBA"}]}),
        );
        assert_eq!(
            substitute("/x/@{acct.id}?c=@{q.records[0].Id}", &results).unwrap(),
            "/x/001SIM000000001YBA?c=003SIM000000001YBA"
        );
        assert!(substitute("@{nope.id}", &results).is_err());
    }
}
