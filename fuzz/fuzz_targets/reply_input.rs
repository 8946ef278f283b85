//! Shared by the reply targets: the first byte picks the HTTP status, the second the content
//! type, the rest is the body, so the fuzzer explores statuses and HTML/JSON handling too.

use sfpair::wire::Reply;

pub fn reply(data: &[u8]) -> Reply {
    const STATUSES: [u16; 10] = [200, 201, 204, 302, 400, 401, 403, 404, 429, 503];
    const TYPES: [&str; 4] = [
        "application/json;charset=UTF-8",
        "text/html",
        "",
        "text/plain",
    ];
    let status = STATUSES[data.first().copied().unwrap_or(0) as usize % STATUSES.len()];
    let content_type = TYPES[data.get(1).copied().unwrap_or(0) as usize % TYPES.len()];
    Reply::new(status, content_type, data.get(2..).unwrap_or_default())
}
