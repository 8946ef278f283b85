//! `call` headers a local user can get wrong on purpose.

use crate::harness::{Env, RUN_LIMIT, Running, fast};

#[test]
fn framing_and_oversized_headers_are_refused_before_anything_is_sent() {
    let env = Env::start(fast());
    env.pair_approved();
    let big = format!("X-Big: {}", "a".repeat(120 * 1024));
    for header in [
        "Content-Length: 5",
        "Transfer-Encoding: chunked",
        big.as_str(),
    ] {
        let out =
            Running::spawn(env.command(&["call", "GET", "/services/data/", "--header", header]))
                .finish(RUN_LIMIT);
        assert_eq!(out.code(), 2, "{out:?}");
        assert!(
            out.stderr.len() < 1000,
            "not echoed: {} bytes",
            out.stderr.len()
        );
    }
    assert!(
        env.requests()
            .iter()
            .all(|r| !r.contains("/services/data/"))
    );
}
