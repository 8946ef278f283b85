//! `GET query?q=SOQL` and `GET queryAll?q=SOQL` (which also sees deleted records), and
//! the following pages at `query/{cursor}-{offset}`: `totalSize`, `done`,
//! `nextRecordsUrl` and records with `attributes`, as Salesforce pages a result.
//!
//! A result is computed whole at the first request and kept until its last page is
//! read; the page size is `Config::query_page_size` (Salesforce's default is 2000).

use serde_json::{Value, json};

use crate::errors::{not_found, rest_error};
use crate::form::Params;
use crate::http::Response;
use crate::ids;
use crate::soql;

use super::call::{Call, Ctx, error_response};

/// `GET query?q=…` and `GET queryAll?q=…`.
pub fn first_page(ctx: &mut Ctx, call: &Call, segments: &[&str]) -> Response {
    let all = segments[0] == "queryAll";
    let params = Params::urlencoded(call.query.as_bytes());
    let Some(soql) = params.get("q") else {
        return rest_error(400, "MALFORMED_QUERY", "A query string has to be specified");
    };
    let query = match soql::parse(soql, &ctx.world.schema) {
        Ok(query) => query,
        Err(error) => return error_response(&error),
    };
    let rows: Vec<Value> = soql::run(&query, &ctx.world.records, all)
        .into_iter()
        .map(|(id, fields)| {
            let mut record = serde_json::Map::new();
            record.insert("attributes".into(), ctx.attributes(&query.object, &id));
            record.extend(fields);
            Value::Object(record)
        })
        .collect();
    let cursors = &mut ctx.world.cursors;
    cursors.issued += 1;
    let cursor = ids::record_id("01g", cursors.issued);
    page(ctx, segments[0], cursor, rows, 0)
}

/// `GET query/{cursor}-{offset}`.
pub fn next_page(ctx: &mut Ctx, _call: &Call, segments: &[&str]) -> Response {
    let Some((cursor, offset)) = segments[1].rsplit_once('-') else {
        return not_found();
    };
    let Ok(offset) = offset.parse::<usize>() else {
        return not_found();
    };
    let Some(rows) = ctx.world.cursors.open.remove(cursor) else {
        return rest_error(400, "INVALID_QUERY_LOCATOR", "invalid query locator");
    };
    page(ctx, segments[0], cursor.to_string(), rows, offset)
}

fn page(ctx: &mut Ctx, kind: &str, cursor: String, rows: Vec<Value>, offset: usize) -> Response {
    let size = ctx.shared.config.query_page_size.max(1);
    let total = rows.len();
    let end = (offset + size).min(total);
    let records: Vec<Value> = rows.get(offset.min(total)..end).unwrap_or(&[]).to_vec();
    let mut body = json!({"totalSize": total, "done": end >= total, "records": records});
    if end < total {
        body["nextRecordsUrl"] = Value::String(ctx.url(&format!("{kind}/{cursor}-{end}")));
        ctx.world.cursors.open.insert(cursor, rows);
    }
    Response::json(200, &body)
}
