//! `sfpair-sim`: a local HTTPS stand-in for Salesforce's OAuth 2.0 device flow, token,
//! revoke, userinfo and a few REST endpoints, plus a standard RFC 8628 provider, for
//! testing the `sfpair` agent without a real org.
//!
//! The wire format follows docs/protocol.md ("What a stand-in server must do" is this
//! simulator's specification): status codes, error bodies, content types and
//! `Cache-Control: no-store` as Salesforce sends them.
//!
//! ```text
//!            approve (page, hook, auto)         token request
//!  PENDING ────────────────────────────▶ APPROVED ─────────────▶ CONSUMED
//!     │ deny                                │
//!     ▼                                     │   code_ttl passes
//!  DENIED ──────────────────────────────────┴──────────────────▶ EXPIRED
//! ```
//!
//! Endpoints (paths match exactly; `//services/…` is a 404; unknown paths answer 404 and
//! known paths with the wrong method 405, both as REST's JSON error list):
//!
//! | path | what |
//! |---|---|
//! | `POST /services/oauth2/token` | `response_type=device_code`, `grant_type=device` (`code`), `grant_type=refresh_token` |
//! | `POST /services/oauth2/revoke` | `token=`: 200 empty, or 400 `invalid_token` |
//! | `GET /services/oauth2/userinfo`, `GET /id/{org}/{user}` | Bearer; 401 `INVALID_SESSION_ID` otherwise |
//! | `GET /services/data/`, `/services/data/vNN.N/…` | REST: `query`, `queryAll`, `sobjects` (records, external ids, `describe`), `composite`, `composite/sobjects`, `limits`, `sim/bytes?n=N` (see `rest.rs` and docs/simulator.md) |
//! | `GET/POST /setup/connect`, `POST /_nc_external/identity/oauth/device/VerifyDevice` | approval page |
//! | `POST /rfc8628/device`, `POST /rfc8628/token`, `GET/POST /rfc8628/verify` | the RFC 8628 dialect |
//! | `POST /__mock/{approve,deny,expire,ip_block}?user_code=…` | test hooks: 200, or 404 |
//! | `POST /__mock/revoke_user` | revokes all of the user's grants, as an admin would: 200 |
//!
//! ```no_run
//! use sfpair_sim::{Config, Sim};
//!
//! let sim = Sim::start(Config::default())?;
//! sim.write_ca(std::path::Path::new("/tmp/sim-ca.pem"))?;
//! // Point the agent at sim.base_url(), trusting the CA; then approve its code:
//! for code in sim.pending_user_codes() {
//!     sim.approve(&code);
//! }
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Everything binds to 127.0.0.1 only. This file is the public API; it holds no
//! protocol logic. Secrets (device codes, tokens, the client secret) never reach the
//! request log, stderr or a panic message.

mod client_credentials;
mod codes;
mod config;
mod delivery;
mod device;
mod discovery;
mod errors;
mod faults;
mod field;
mod form;
mod grants;
mod headless;
mod http;
mod identity;
mod ids;
mod jwt_bearer;
mod log;
mod oauth;
mod page;
mod reply;
mod rest;
mod rfc8628;
mod router;
mod schema;
mod server;
mod soql;
mod state;
mod store;
mod tls;
mod token_exchange;
mod validate;
mod writes;

use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

pub use config::{AppState, CertMode, Config, DenyMode, RefreshRefusal, SlowDown};
pub use faults::Fault;
pub use headless::{Headless, public_key_der};
pub use log::LogEntry;
pub use schema::Schema;
pub use writes::Write;

use device::Decision;
use server::Acceptor;
use state::Shared;

/// A running simulator. Dropping it (or calling [`Sim::shutdown`]) stops accepting.
pub struct Sim {
    shared: Arc<Shared>,
    acceptor: Acceptor,
    port: u16,
    ca_pem: String,
}

impl Sim {
    /// Generates the certificates, binds `127.0.0.1:config.port` (0 picks a free port)
    /// and serves on background threads.
    pub fn start(config: Config) -> std::io::Result<Sim> {
        let tls = tls::generate(config.cert, config.instance_host.as_deref())?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, config.port))?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared::new(config, port));
        let acceptor = Acceptor::spawn(listener, tls.server, Arc::clone(&shared))?;
        Ok(Sim {
            shared,
            acceptor,
            port,
            ca_pem: tls.ca_pem,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `https://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The `instance_url` of token responses: `https://INSTANCE_HOST:PORT` with
    /// [`Config::instance_host`], else the same as [`Sim::base_url`].
    pub fn instance_url(&self) -> String {
        self.shared.instance_url.clone()
    }

    /// PEM of the CA that signed the server certificate.
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    pub fn write_ca(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, &self.ca_pem)
    }

    /// Every request so far, in order.
    pub fn log(&self) -> Vec<LogEntry> {
        self.shared.log.entries()
    }

    /// TLS connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Approves a pending code of either dialect, as the approval page would.
    pub fn approve(&self, user_code: &str) -> bool {
        page::decide(&self.shared, Some(user_code), Decision::Approve)
    }

    /// Denies a pending code.
    pub fn deny(&self, user_code: &str) -> bool {
        page::decide(&self.shared, Some(user_code), Decision::Deny)
    }

    /// Ends a live code now, as if its lifetime had passed.
    pub fn expire(&self, user_code: &str) -> bool {
        page::decide(&self.shared, Some(user_code), Decision::Expire)
    }

    /// Makes the token exchange of a live code fail after approval with
    /// `invalid_grant`/`token exchange failed`, as with Salesforce login IP ranges
    /// (docs/protocol.md, "Device flow errors"; the `ip_block` hook of "What a stand-in
    /// server must do").
    pub fn ip_block(&self, user_code: &str) -> bool {
        page::decide(&self.shared, Some(user_code), Decision::IpBlock)
    }

    /// User codes waiting for a decision, oldest first.
    pub fn pending_user_codes(&self) -> Vec<String> {
        let mut world = self.shared.world();
        world
            .devices
            .pending_user_codes(Instant::now(), &self.shared.rules)
    }

    /// Every access token issued so far now gets 401 `INVALID_SESSION_ID`.
    pub fn expire_sessions(&self) {
        self.shared.world().grants.expire_sessions();
    }

    /// Revokes every grant of the (single simulated) user, as an admin does from the app's
    /// OAuth usage page; returns how many live grants died. Also `POST /__mock/revoke_user`.
    pub fn revoke_user(&self) -> usize {
        self.shared.world().grants.revoke_all()
    }

    /// Refresh tokens revoked through `/services/oauth2/revoke`.
    pub fn revoked_refresh_tokens(&self) -> usize {
        self.shared.world().grants.revoked_refresh_tokens()
    }

    /// Every secret the simulator ever handed out: device codes, access and refresh tokens.
    /// Tests search the agent's output for them: none may ever appear there.
    pub fn issued_secrets(&self) -> Vec<String> {
        let world = self.shared.world();
        let mut secrets = world.devices.every_device_code();
        secrets.extend(world.grants.every_token());
        secrets
    }

    /// The live records of an object, as stored (every field the org knows of them,
    /// `Id` included), in creation order: what a test reads back after a client wrote.
    pub fn records(&self, object: &str) -> Vec<serde_json::Map<String, serde_json::Value>> {
        let world = self.shared.world();
        world
            .records
            .of(object)
            .filter(|r| !r.deleted)
            .map(|r| r.fields.clone())
            .collect()
    }

    /// Adds a field to an object while the org runs, as an admin would in Setup (the fix a
    /// dead letter waits for). `field` is one entry of a schema file's `fields`.
    pub fn add_field(&self, object: &str, field: serde_json::Value) -> Result<(), String> {
        let mut world = self.shared.world();
        world.schema.add_field(object, &field)
    }

    /// Queues faults; each is applied to the next request of its kind (see [`Fault`]).
    pub fn push_faults(&self, faults: &[Fault]) {
        self.shared.faults.push(faults);
    }

    /// From now on every `n`-th sObject Collections request (0: none) is committed and
    /// then its connection closed without a reply (`Config::commit_then_drop_every`).
    pub fn set_commit_then_drop_every(&self, n: u32) {
        self.shared.delivery.set_drop_every(n);
    }

    /// The next `n` sObject Collections requests are committed and then their connections
    /// closed without a reply, whatever `commit_then_drop_every` says: one lost reply at a
    /// moment the test chooses.
    pub fn drop_next_collections_replies(&self, n: u32) {
        self.shared.delivery.drop_next(n);
    }

    /// Every save of a record through the REST API so far (creates and updates, upserts
    /// included), in order: which row, in which request, and whether that request's reply
    /// was sent. A row with two acknowledged writes was sent twice (see `writes.rs`).
    pub fn writes(&self) -> Vec<Write> {
        self.shared.world().writes.all()
    }

    /// From now on every `n`-th record submitted through sObject Collections (0: none)
    /// is refused `UNABLE_TO_LOCK_ROW`, each distinct record at most once
    /// (`Config::lock_row_every`).
    pub fn set_lock_row_every(&self, n: u32) {
        self.shared.delivery.set_lock_every(n);
    }

    /// Sets the daily API allocation and enforces it: once the usage reaches `max`, REST
    /// requests get 403 `REQUEST_LIMIT_EXCEEDED` (`Config::api_limit`). A higher value
    /// lifts the refusal.
    pub fn set_api_limit(&self, max: u64) {
        self.shared.delivery.set_api_limit(Some(max));
    }

    /// Back to no enforced allocation (15000 reported), as with `Config::api_limit: None`.
    pub fn clear_api_limit(&self) {
        self.shared.delivery.set_api_limit(None);
    }

    /// Sets the count of REST requests served today, which `Sforce-Limit-Info` reports.
    pub fn set_api_usage(&self, n: u64) {
        self.shared.world().api_usage = n;
    }

    /// REST requests served so far (refused ones do not count).
    pub fn api_usage(&self) -> u64 {
        self.shared.world().api_usage
    }

    /// While on, every new TCP connection is reset before TLS, and live keep-alive
    /// connections are reset at their next request: the client sees a network error.
    /// Off restores service on the same port, with the same org and valid tokens.
    pub fn set_offline(&self, offline: bool) {
        self.shared.delivery.set_offline(offline);
    }

    /// sObject Collections requests run so far (authenticated, within the API
    /// allocation, not taken by a queued fault), whatever their answer.
    pub fn collections_requests(&self) -> u64 {
        self.shared.delivery.collections_requests()
    }

    /// Collections requests committed whose reply was dropped.
    pub fn dropped_replies(&self) -> u64 {
        self.shared.delivery.dropped_replies()
    }

    /// Records refused `UNABLE_TO_LOCK_ROW` so far.
    pub fn lock_row_refusals(&self) -> u64 {
        self.shared.delivery.lock_row_refusals()
    }

    /// Stops accepting and joins the accept thread.
    pub fn shutdown(mut self) {
        self.acceptor.stop();
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.acceptor.stop();
    }
}

/// Locks a mutex even if a connection thread panicked while holding it: the data is
/// simple enough to stay usable, and one bad request must not take the simulator down.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
