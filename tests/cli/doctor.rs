//! `sfpair doctor` against the simulator over real TLS: a healthy device, a CA that does not
//! match (the issuer is named), a dead port, and no secret in what it prints. The clock check
//! cannot be faked in the binary (it reads the system clock, as the agent does): its verdicts
//! are unit tests in `src/commands/doctor/system.rs`.

use serde_json::Value;
use sfpair_sim::Config;

use crate::harness::{Env, Output, fast};

fn checks(out: &Output) -> Vec<(String, String, String)> {
    let v: Value = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("one JSON object ({e}): {out:?}"));
    v["checks"]
        .as_array()
        .expect("a checks array")
        .iter()
        .map(|c| {
            (
                c["check"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
                c["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn status<'a>(checks: &'a [(String, String, String)], name: &str) -> (&'a str, &'a str) {
    let c = checks
        .iter()
        .find(|c| c.0 == name)
        .unwrap_or_else(|| panic!("no {name} check in {checks:?}"));
    (c.1.as_str(), c.2.as_str())
}

#[test]
fn a_healthy_paired_device_passes_every_check_and_prints_no_secret() {
    let env = Env::start(fast());
    env.pair_approved();
    let out = env.run(&["doctor", "--json"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let all = checks(&out);
    let order: Vec<&str> = all.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(
        order,
        [
            "clock",
            "dns",
            "tcp",
            "proxy",
            "tls",
            "app",
            "store",
            "store write",
            "store space",
            "display",
            "refresh"
        ]
    );
    for (name, level, detail) in &all {
        // This machine's NTP state is its own; the clock check's verdicts are unit-tested.
        if name == "clock" {
            assert_ne!(level, "failed", "{detail}");
            continue;
        }
        assert_eq!(level, "ok", "{name}: {detail}");
    }
    let (_, tls) = status(&all, "tls");
    assert!(tls.contains("issued by CN=sfpair-sim test CA"), "{tls}");
    let (_, store) = status(&all, "store");
    assert!(store.contains("salesforce flow"), "{store}");
    for secret in env.sim().issued_secrets() {
        assert!(!out.stdout.contains(&secret) && !out.stderr.contains(&secret));
    }
    // The text form says the same, one line per check and a summary.
    let text = env.run(&["doctor"]);
    assert_eq!(text.code(), 0, "{text:?}");
    assert!(text.stdout.contains("0 failed"), "{}", text.stdout);
    assert!(
        text.stdout
            .lines()
            .any(|l| l.starts_with("ok       refresh")),
        "{}",
        text.stdout
    );
}

#[test]
fn an_unpaired_device_learns_that_the_app_allows_the_device_flow() {
    let env = Env::start(fast());
    let out = env.run(&["doctor", "--json"]);
    let all = checks(&out);
    let (level, app) = status(&all, "app");
    assert_eq!(level, "ok", "{app}");
    assert!(app.contains("device flow is enabled"), "{app}");
    assert_eq!(status(&all, "store").0, "warning");
    assert_eq!(status(&all, "refresh").0, "skipped");
    assert_eq!(out.code(), 0, "warnings are not failures: {out:?}");

    let disabled = Env::start(Config {
        app: sfpair_sim::AppState::DeviceFlowDisabled,
        ..fast()
    });
    let out = disabled.run(&["doctor", "--json"]);
    assert_eq!(out.code(), 1, "{out:?}");
    let all = checks(&out);
    let (level, app) = status(&all, "app");
    assert_eq!(level, "failed");
    assert!(app.contains("device flow is not enabled"), "{app}");

    let out = env.run(&["doctor", "--json", "--client-id", "3MVG9unknown"]);
    let all = checks(&out);
    let (level, app) = status(&all, "app");
    assert_eq!((level, out.code()), ("failed", 1), "{app}");
    assert!(app.contains("does not know the consumer key"), "{app}");
}

#[test]
fn a_certificate_from_another_ca_fails_tls_and_names_its_issuer() {
    let env = Env::start(fast());
    let other = Env::start(fast());
    let mut command = env.command(&["doctor", "--json"]);
    command.env("SFPAIR_CA_FILE", &other.ca);
    let out = crate::harness::Running::spawn(command).finish(crate::harness::RUN_LIMIT);
    assert_eq!(out.code(), 1, "{out:?}");
    let all = checks(&out);
    let (level, tls) = status(&all, "tls");
    assert_eq!(level, "failed");
    assert!(
        tls.contains("TLS verification of 127.0.0.1 failed"),
        "{tls}"
    );
    assert!(tls.contains("issued by CN=sfpair-sim test CA"), "{tls}");
    assert_eq!(status(&all, "app").0, "skipped");
}

#[test]
fn a_dead_port_fails_tcp_and_skips_what_needs_a_connection() {
    let env = Env::start(fast());
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("https://127.0.0.1:{port}");
    let out = env.run(&["doctor", "--json", "--login-url", &url]);
    assert_eq!(out.code(), 1, "{out:?}");
    let all = checks(&out);
    let (level, tcp) = status(&all, "tcp");
    assert_eq!(level, "failed");
    assert!(tcp.contains(&format!("127.0.0.1:{port}")), "{tcp}");
    assert_eq!(status(&all, "dns").0, "ok");
    assert_eq!(status(&all, "tls").0, "skipped");
    assert_eq!(status(&all, "app").0, "skipped");
}

#[test]
fn behind_a_proxy_the_tls_check_goes_through_the_tunnel_and_a_refusing_proxy_is_named() {
    use crate::connect_proxy::ConnectProxy;
    let env = Env::start(fast());
    env.pair_approved();
    let proxy = ConnectProxy::start(false);
    let mut command = env.command(&["doctor", "--json"]);
    command.env("HTTPS_PROXY", proxy.url());
    let out = crate::harness::Running::spawn(command).finish(crate::harness::RUN_LIMIT);
    assert_eq!(out.code(), 0, "{out:?}");
    let all = checks(&out);
    let (level, detail) = status(&all, "proxy");
    assert_eq!(level, "ok");
    assert!(
        detail.starts_with(&proxy.url()["http://".len()..]),
        "{detail}"
    );
    assert!(status(&all, "tcp").1.contains("the proxy"), "{all:?}");
    assert_eq!(status(&all, "tls").0, "ok", "{all:?}");
    assert_eq!(status(&all, "refresh").0, "ok", "{all:?}");
    let target = format!("127.0.0.1:{}", env.sim().port());
    assert!(
        proxy.targets().iter().all(|t| *t == target),
        "{:?}",
        proxy.targets()
    );
    assert!(
        proxy.targets().len() >= 2,
        "the doctor's own tunnel and the agent's"
    );

    let refusing = ConnectProxy::start(true);
    let mut command = env.command(&["doctor", "--json"]);
    command.env("HTTPS_PROXY", refusing.url());
    let out = crate::harness::Running::spawn(command).finish(crate::harness::RUN_LIMIT);
    assert_eq!(out.code(), 1, "{out:?}");
    let all = checks(&out);
    let (level, tls) = status(&all, "tls");
    assert_eq!(level, "failed");
    assert!(tls.contains("the proxy refused the tunnel"), "{tls}");
}

#[test]
fn the_streaming_check_subscribes_once_to_each_channel_and_names_what_the_admin_fixes() {
    let env = Env::start(fast());
    env.pair_approved();
    let before = env.sim().streaming_stats();
    let out = env.run(&[
        "doctor",
        "--json",
        "--listen",
        "Device_Command__e",
        "--desired",
        "Device__c/Device_Id__c/GW-1",
    ]);
    let list = checks(&out);
    let (level, detail) = status(&list, "streaming");
    assert_eq!(level, "ok", "{detail}");
    assert!(
        detail.contains("/event/Device_Command__e") && detail.contains("/data/Device__ChangeEvent"),
        "{detail}"
    );
    let after = env.sim().streaming_stats();
    assert_eq!(after.subscribes - before.subscribes, 2);
    assert_eq!(
        after.disconnects - before.disconnects,
        1,
        "the slot is freed"
    );
    assert_eq!(after.clients_now, 0);

    let out = env.run(&["doctor", "--json", "--listen", "Device_Commnd__e"]);
    assert_eq!(out.code(), 1, "{out:?}");
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let check = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "streaming")
        .unwrap()
        .clone();
    assert_eq!(check["status"], "failed");
    assert!(
        check["detail"].as_str().unwrap().contains("does not exist"),
        "{check}"
    );
    assert!(
        check["fix"]
            .as_str()
            .unwrap()
            .contains("create the platform event"),
        "{check}"
    );

    // Without --listen or --desired there is nothing to check.
    let out = env.run(&["doctor", "--json"]);
    assert!(checks(&out).iter().all(|c| c.0 != "streaming"));
}
