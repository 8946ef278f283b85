//! Proxies and trust: HTTPS_PROXY is honoured (CONNECT through a proxy on loopback), NO_PROXY
//! bypasses it, and a proxy that refuses the tunnel is a clear network error.

use crate::connect_proxy::ConnectProxy;
use crate::harness::{Env, RUN_LIMIT, Running, fast};

#[test]
fn pairs_through_an_https_proxy() {
    let env = Env::start(fast());
    let proxy = ConnectProxy::start(false);
    let mut c = env.command(&["pair", "--json"]);
    c.env("HTTPS_PROXY", proxy.url());
    let mut run = Running::spawn(c);
    let code = run.event("code", RUN_LIMIT);
    env.approve(code["verification_uri_complete"].as_str().unwrap());
    let out = run.finish(RUN_LIMIT);
    assert_eq!(out.code(), 0, "{out:?}");
    let targets = proxy.targets();
    assert!(!targets.is_empty());
    assert!(
        targets
            .iter()
            .all(|t| *t == format!("127.0.0.1:{}", env.sim().port())),
        "{targets:?}"
    );
}

#[test]
fn no_proxy_goes_direct() {
    let env = Env::start(fast());
    let proxy = ConnectProxy::start(true);
    let mut c = env.command(&["pair", "--json"]);
    c.env("HTTPS_PROXY", proxy.url())
        .env("NO_PROXY", "localhost,127.0.0.1");
    let mut run = Running::spawn(c);
    let code = run.event("code", RUN_LIMIT);
    env.approve(code["verification_uri_complete"].as_str().unwrap());
    let out = run.finish(RUN_LIMIT);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(proxy.targets().is_empty(), "{:?}", proxy.targets());
}

#[test]
fn a_proxy_that_refuses_the_tunnel_is_a_network_error() {
    let env = Env::start(fast());
    let proxy = ConnectProxy::start(true);
    let mut c = env.command(&["pair", "--retry-for", "3"]);
    c.env("HTTPS_PROXY", proxy.url());
    let out = Running::spawn(c).finish(RUN_LIMIT);
    assert_eq!(out.code(), 7, "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "the proxy 127.0.0.1:{} refused the tunnel",
            proxy.url().rsplit(':').next().unwrap()
        )),
        "{}",
        out.stderr
    );
    assert!(env.sim().log().is_empty(), "nothing reached the server");
}
