//! `sfpair doctor`: what a technician runs on a device that does not work. The checks, in
//! order: the clock, DNS for the login host, a TCP connection, the proxy settings, TLS (naming
//! who issued the certificate, so a TLS-inspecting proxy shows), the app as far as the server
//! tells without a person, the store, the displays, and a refresh with the stored pairing. Each
//! says ok, warning or failed (or skipped, when an earlier failure makes it meaningless) and
//! what to do. Exit 0 when nothing failed, else 1; `--json` prints one object with a `checks`
//! array.
//!
//! Nothing printed is secret: no token, no secret, no proxy credentials (their presence only).
//! The checks' own I/O is in `doctor/net.rs` and `doctor/system.rs`; this file orders them and
//! prints. What it costs the org: one refused probe poll, one device code when not paired (it
//! expires unused; no grant is made), and one refresh when paired (which also resets an idle
//! refresh token policy's clock).

mod net;
#[cfg(feature = "listen")]
mod streaming;
mod system;
mod x509;

pub use system::{key_file, key_file_on_disk};

use std::io::Write;
use std::path::Path;

use serde_json::json;

use crate::commands::{Backends, say};
use crate::error::Error;
use crate::flow::dialect::{Client, Dialect, Endpoints};
use crate::flow::reply::{self, Parsed};
use crate::http::{Transport, UreqTransport};
use crate::present::spec::Display;
use crate::secret::Secret;
use crate::store::{self, Loaded};
use crate::time::{Clock, SystemClock};

/// What the doctor checks against.
#[derive(Clone, Debug)]
pub struct Options {
    pub json: bool,
    pub dialect: Dialect,
    pub login_url: String,
    pub endpoints: Endpoints,
    pub scope: String,
    pub displays: Vec<Display>,
    /// The channels to subscribe to once (`--listen`, `--desired`'s change events).
    #[cfg(feature = "listen")]
    pub channels: Vec<String>,
    /// The API version of the Streaming API (`62.0`).
    #[cfg(feature = "listen")]
    pub api_version: String,
}

/// How a check turned out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Ok,
    Warning,
    Failed,
    /// Not tried: an earlier check failed, or there is nothing to check.
    Skipped,
}

impl Level {
    pub const fn name(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warning => "warning",
            Level::Failed => "failed",
            Level::Skipped => "skipped",
        }
    }
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub level: Level,
    pub detail: String,
    /// What to do, when something is to be done.
    pub fix: Option<String>,
}

impl Check {
    pub fn new(name: &'static str, level: Level, detail: impl Into<String>) -> Check {
        Check {
            name,
            level,
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn fix(mut self, fix: impl Into<String>) -> Check {
        self.fix = Some(fix.into());
        self
    }
}

/// Runs every check, prints them, and returns 0 when none failed, else 1.
pub fn run(options: &Options, backends: &Backends, out: &mut dyn Write) -> Result<u8, Error> {
    let checks = diagnose(options, backends);
    let failed = checks.iter().any(|c| c.level == Level::Failed);
    if options.json {
        let list: Vec<_> = checks
            .iter()
            .map(|c| json!({"check": c.name, "status": c.level.name(), "detail": c.detail, "fix": c.fix}))
            .collect();
        say(out, json!({"ok": !failed, "checks": list}))?;
    } else {
        for c in &checks {
            say(
                out,
                format!("{:<8} {:<12} {}", c.level.name(), c.name, c.detail),
            )?;
            if let Some(fix) = &c.fix {
                say(out, format!("{:<21} what to do: {fix}", ""))?;
            }
        }
        let count = |l| checks.iter().filter(|c| c.level == l).count();
        say(
            out,
            format!(
                "{} ok, {} warning(s), {} failed, {} skipped",
                count(Level::Ok),
                count(Level::Warning),
                count(Level::Failed),
                count(Level::Skipped)
            ),
        )?;
    }
    Ok(u8::from(failed))
}

fn skipped(name: &'static str, why: &str) -> Check {
    Check::new(name, Level::Skipped, format!("not tried: {why}"))
}

/// The checks, in order.
pub fn diagnose(options: &Options, backends: &Backends) -> Vec<Check> {
    let mut checks = Vec::new();
    let clock = SystemClock::new();
    checks.push(system::clock(
        clock.unix_time(),
        crate::clock_check::BUILD_UNIX,
        system::ntp_synchronised(),
    ));

    let url = options.endpoints.token.as_str();
    let (host, port) = match crate::url::parse(url) {
        Some(p) => (
            p.host.trim_matches(['[', ']']).to_string(),
            p.port.unwrap_or(443),
        ),
        None => (url.to_string(), 443),
    };
    let timeout = backends.http.connect_timeout;
    let proxy = net::proxy_for(url);

    // DNS for the login host (an HTTP proxy resolves it itself, so there it only warns).
    let via_proxy = matches!(&proxy, Ok(Some(_)));
    let addrs = net::resolve(&host, port);
    checks.push(match &addrs {
        Ok(a) => Check::new("dns", Level::Ok, format!("{host} resolves to {}", list(a))),
        Err(e) if via_proxy => {
            Check::new("dns", Level::Warning, format!("{e}; the proxy resolves it"))
        }
        Err(e) => Check::new("dns", Level::Failed, e.clone())
            .fix("check the DNS servers (/etc/resolv.conf) and the login URL's host name"),
    });

    // TCP: to the proxy when one applies, else to the host.
    let stream = match &proxy {
        Ok(Some(p)) => net::resolve(&p.host, p.port).and_then(|a| net::connect(&a, timeout)),
        _ => addrs
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|a| net::connect(a, timeout)),
    };
    let target = match &proxy {
        Ok(Some(p)) => format!("the proxy {}:{}", p.host, p.port),
        _ => format!("{host}:{port}"),
    };
    checks.push(match &stream {
        Ok(s) => Check::new(
            "tcp",
            Level::Ok,
            format!(
                "connected to {target} ({})",
                s.peer_addr().map(|a| a.to_string()).unwrap_or_default()
            ),
        ),
        Err(e) => Check::new(
            "tcp",
            Level::Failed,
            format!("cannot connect to {target}: {e}"),
        )
        .fix("check the network, a firewall that blocks outbound port 443, or the proxy setting"),
    });

    checks.push(match &proxy {
        Ok(None) => Check::new(
            "proxy",
            Level::Ok,
            format!("none for {host} (HTTPS_PROXY / ALL_PROXY unset, or NO_PROXY exempts it)"),
        ),
        Ok(Some(p)) if !p.connect => Check::new(
            "proxy",
            Level::Warning,
            format!(
                "{}:{} is not an HTTP proxy: TLS is not checked through it",
                p.host, p.port
            ),
        ),
        Ok(Some(p)) => Check::new(
            "proxy",
            Level::Ok,
            format!(
                "{}:{} for {host}{}",
                p.host,
                p.port,
                if p.has_credentials() {
                    ", with credentials (not shown)"
                } else {
                    ""
                }
            ),
        ),
        Err(e) => Check::new("proxy", Level::Failed, e.clone())
            .fix("set HTTPS_PROXY to http://HOST:PORT, or unset it"),
    });

    // TLS, through the proxy's tunnel when there is one.
    let tls_ok = match stream {
        Err(_) => {
            checks.push(skipped("tls", "no connection"));
            false
        }
        Ok(mut stream) => {
            let tunnel = match &proxy {
                Ok(Some(p)) if p.connect => net::tunnel(&mut stream, p, &host, port),
                Ok(Some(_)) => Err("not an HTTP proxy".to_string()),
                _ => Ok(()),
            };
            let check = match tunnel.and_then(|()| net::roots(backends.http.ca_file.as_deref())) {
                Err(e) => Check::new("tls", Level::Failed, e)
                    .fix("check the proxy (HTTPS_PROXY) and the CA file (--ca-file)"),
                Ok(roots) => tls_check(&host, net::handshake(&mut stream, &host, roots), backends),
            };
            let ok = check.level != Level::Failed;
            checks.push(check);
            ok
        }
    };

    // The store first: whether a pairing exists decides how far the app check goes.
    let mut store = Vec::new();
    let record = store_checks(backends, &clock, &mut store);
    let client_id = backends
        .client_id
        .clone()
        .or_else(|| record.as_ref().map(|r| r.client_id.clone()));
    let app = if !tls_ok {
        skipped("app", "no TLS connection")
    } else {
        app_check(options, backends, client_id, record.is_some())
    };
    checks.push(app);
    checks.extend(store);

    display_checks(&options.displays, &mut checks);

    let agent = match (&record, tls_ok) {
        (None, _) => {
            checks.push(skipped("refresh", "not paired"));
            None
        }
        (Some(_), false) => {
            checks.push(skipped("refresh", "no TLS connection"));
            None
        }
        (Some(_), true) => {
            let (check, agent) = refresh_check(backends);
            checks.push(check);
            agent
        }
    };
    #[cfg(feature = "listen")]
    if !options.channels.is_empty() {
        checks.push(match agent {
            Some(mut agent) => streaming::check(
                &mut agent,
                &backends.http,
                &options.api_version,
                &options.channels,
            ),
            None => skipped("streaming", "no session (see the refresh check)"),
        });
    }
    #[cfg(not(feature = "listen"))]
    drop(agent);
    checks
}

fn list(addrs: &[std::net::SocketAddr]) -> String {
    let ips: Vec<String> = addrs.iter().take(4).map(|a| a.ip().to_string()).collect();
    ips.join(", ")
}

fn tls_check(host: &str, finding: net::TlsFinding, backends: &Backends) -> Check {
    let presented = match finding.chain.first() {
        Some((subject, issuer)) => format!("certificate {subject}, issued by {issuer}"),
        None => "no certificate seen".to_string(),
    };
    let trust = match &backends.http.ca_file {
        Some(path) => format!("the CA file {}", path.display()),
        None => "the built-in Mozilla roots".to_string(),
    };
    let top = finding
        .top_issuer()
        .unwrap_or("an unknown issuer")
        .to_string();
    match finding.result {
        Ok(version) => Check::new(
            "tls",
            Level::Ok,
            format!("{version} with {host}; {presented}; trusted by {trust}"),
        ),
        Err(e) => Check::new(
            "tls",
            Level::Failed,
            format!("{e}; the server presented: {presented}; it is checked against {trust}"),
        )
        .fix(format!(
            "if {top} is your network's TLS-inspecting proxy, give its CA certificate with \
                 --ca-file (SFPAIR_CA_FILE); otherwise check the clock and the CA file"
        )),
    }
}

/// Readable, writable, free space, and the record's age and flow.
fn store_checks(
    backends: &Backends,
    clock: &SystemClock,
    checks: &mut Vec<Check>,
) -> Option<crate::store::Record> {
    let spec = backends.store.to_string();
    let mut opened = match backends.open_store() {
        Ok(s) => s,
        Err(e) => {
            checks.push(
                Check::new("store", Level::Failed, e.message().to_string()).fix("check --store"),
            );
            return None;
        }
    };
    let (record, check) = match opened.load() {
        Ok(Loaded::Paired(r)) => {
            let age = clock.unix_time().as_secs().saturating_sub(r.paired_at);
            let sealed = match opened.sealer() {
                Ok(Some(sealer)) => format!(", sealed with {sealer}"),
                _ => ", not sealed".into(),
            };
            let check = Check::new(
                "store",
                Level::Ok,
                format!(
                    "{spec}: paired {} ago with {} ({} flow), org instance {}{sealed}",
                    crate::time::format_age(age),
                    r.client_id,
                    r.dialect.name(),
                    r.instance_url
                ),
            );
            (Some(r), check)
        }
        Ok(Loaded::Empty) => (
            None,
            Check::new("store", Level::Warning, format!("{spec}: not paired"))
                .fix("run `sfpair pair`"),
        ),
        Ok(Loaded::Corrupt(why)) => (
            None,
            Check::new(
                "store",
                Level::Failed,
                format!("{spec}: the record is unreadable ({why})"),
            )
            .fix("pair again with `sfpair pair --force` (the record is replaced when it succeeds)"),
        ),
        Ok(Loaded::Unopened(why)) => (
            None,
            Check::new(
                "store",
                Level::Failed,
                store::unopened(&spec, &why).message().to_string(),
            )
            .fix("put the seal back (the TPM, the token, the unit's credential), or pair again"),
        ),
        Err(e) => (
            None,
            Check::new("store", Level::Failed, e.message().to_string())
                .fix("check the store's path and permissions"),
        ),
    };
    checks.push(check);
    checks.push(match opened.check_writable() {
        Ok(()) => Check::new("store write", Level::Ok, format!("{spec} can be written")),
        Err(e) => Check::new("store write", Level::Failed, e.message().to_string())
            .fix("a rotated refresh token must be stored: fix the directory's owner and mode"),
    });
    if let Some(path) = file_path(&backends.store) {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let dir = if dir.exists() {
            dir
        } else {
            dir.parent().unwrap_or(Path::new("/"))
        };
        checks.push(system::free_space(dir, system::free_bytes(dir)));
    }
    record
}

/// The file of a `file:` store (without the `flash` feature it is the only kind).
#[allow(unreachable_patterns)]
fn file_path(spec: &store::Spec) -> Option<&Path> {
    match spec {
        store::Spec::File(path) => Some(path),
        _ => None,
    }
}

fn app_check(
    options: &Options,
    backends: &Backends,
    client_id: Option<String>,
    paired: bool,
) -> Check {
    let Some(client_id) = client_id else {
        return Check::new(
            "app",
            Level::Failed,
            "no client id configured and none stored",
        )
        .fix("give --client-id (SFPAIR_CLIENT_ID): the consumer key of your external client app");
    };
    let mut transport = match UreqTransport::new(&backends.http) {
        Ok(t) => t,
        Err(e) => return Check::new("app", Level::Failed, e.message().to_string()),
    };
    let client = Client {
        client_id: client_id.clone(),
        scope: options.scope.clone(),
    };
    // A poll with a code that cannot exist: refused either way, but how tells whether the
    // consumer key is known. It creates nothing at the server.
    let probe = options.dialect.poll_request(
        &options.endpoints,
        &client,
        &Secret::new("sfpair-doctor-probe"),
        None,
    );
    match send_oauth(&mut transport, &probe) {
        Err(check) => return check,
        Ok(Some(e)) if e.error == "invalid_client_id" => {
            return Check::new(
                "app",
                Level::Failed,
                format!(
                    "the org does not know the consumer key {client_id} ({})",
                    e.summary()
                ),
            )
            .fix("check --client-id and --login-url: the app must exist in this org");
        }
        Ok(Some(e)) if refused_app(&e) => return app_refused(&e),
        Ok(_) => {}
    }
    if paired {
        return Check::new(
            "app",
            Level::Ok,
            format!(
                "the consumer key {client_id} is known; the device flow was not probed (a code \
                 would stay live for its lifetime): the refresh below checks the pairing"
            ),
        );
    }
    let request = options.dialect.device_request(&options.endpoints, &client);
    match transport.send(&request) {
        Err(e) => Check::new("app", Level::Failed, e.detail).fix("check the network"),
        Ok(reply) if (200..300).contains(&reply.status) => Check::new(
            "app",
            Level::Ok,
            format!(
                "the consumer key {client_id} is known and the device flow is enabled (one code \
                 was requested to learn this: it expires unused, no grant is made)"
            ),
        ),
        Ok(reply) => match reply::classify::<serde_json::Value>(&reply) {
            Parsed::OAuth(e) if refused_app(&e) || e.error == "invalid_client_id" => {
                app_refused(&e)
            }
            Parsed::OAuth(e) => Check::new(
                "app",
                Level::Warning,
                format!("a device code was refused: {}", e.summary()),
            ),
            Parsed::Transient(why) | Parsed::Rejected(why) => Check::new(
                "app",
                Level::Warning,
                format!("the device endpoint answered {why}"),
            ),
            Parsed::Ok(_) => Check::new(
                "app",
                Level::Warning,
                "an unexpected answer to a device code request",
            ),
        },
    }
}

/// The refusals that say the app itself is not set up for this device.
fn refused_app(e: &reply::OAuthError) -> bool {
    e.description_contains("not enabled") || e.description_contains("must be installed")
}

fn app_refused(e: &reply::OAuthError) -> Check {
    Check::new(
        "app",
        Level::Failed,
        format!("the org refuses the app: {}", e.summary()),
    )
    .fix(
        "in the external client app: Enable OAuth, Enable Device Flow, install it in the org, \
         and let the user in (docs/protocol.md, \"Lifetimes and app settings\")",
    )
}

/// The OAuth error of a reply (`None` when it is not one); a failed exchange is a finding.
fn send_oauth(
    transport: &mut UreqTransport,
    request: &crate::wire::Request,
) -> Result<Option<reply::OAuthError>, Check> {
    match transport.send(request) {
        Err(e) => Err(Check::new("app", Level::Failed, e.detail).fix("check the network")),
        Ok(reply) => match reply::classify::<serde_json::Value>(&reply) {
            Parsed::OAuth(e) => Ok(Some(e)),
            Parsed::Transient(why) | Parsed::Rejected(why) => Err(Check::new(
                "app",
                Level::Warning,
                format!("the token endpoint answered {why}"),
            )
            .fix("check --login-url; a captive portal or maintenance page answers like this")),
            Parsed::Ok(_) => Ok(None),
        },
    }
}

fn display_checks(displays: &[Display], checks: &mut Vec<Check>) {
    use std::io::IsTerminal;
    if displays.is_empty() {
        checks.push(Check::new(
            "display",
            Level::Ok,
            "none configured: the code goes to the console",
        ));
        return;
    }
    for display in displays {
        #[cfg(feature = "displays")]
        let opened = crate::present::select::open_panel(display)
            .map(|r| r.map(|panel| (panel.describe(), panel.size())));
        // Without small displays the list holds consoles only.
        #[cfg(not(feature = "displays"))]
        let opened: Option<std::io::Result<(String, (u32, u32))>> = None;
        let check = match opened {
            None => Check::new(
                "display",
                Level::Ok,
                format!(
                    "{}: standard output{}",
                    if *display == Display::Text {
                        "text"
                    } else {
                        "console"
                    },
                    if std::io::stdout().is_terminal() {
                        " (a terminal)"
                    } else {
                        ""
                    }
                ),
            ),
            Some(Ok((name, (w, h)))) => {
                Check::new("display", Level::Ok, format!("{name} opens, {w}x{h}"))
            }
            Some(Err(e)) => Check::new("display", Level::Failed, format!("cannot open {e}")).fix(
                "check the device path, the wiring and the permissions (the i2c or video group)",
            ),
        };
        checks.push(check);
    }
}

/// The refresh check, and the agent holding its session when it worked.
fn refresh_check(backends: &Backends) -> (Check, Option<crate::agent::Agent>) {
    let mut agent = match backends.agent() {
        Ok(a) => a,
        Err(e) => {
            return (
                Check::new("refresh", Level::Failed, e.message().to_string()),
                None,
            );
        }
    };
    let check = match agent.refresh() {
        Ok(session) => {
            let check = Check::new(
                "refresh",
                Level::Ok,
                format!(
                    "the stored pairing works: a refresh gave a session for {}",
                    session.instance_url
                ),
            );
            return (check, Some(agent));
        }
        Err(e) => {
            let fix = match crate::refusal::cause_of(&e) {
                Some(cause) => cause.admin_action().to_string(),
                None => "see the message".to_string(),
            };
            Check::new("refresh", Level::Failed, e.message().to_string()).fix(fix)
        }
    };
    (check, None)
}
