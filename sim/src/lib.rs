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
//! | `POST /cometd/{version}` | the Streaming API: Bayeux long polling, platform events and change events with replay (see `streaming/`) |
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

mod bus;
mod client_credentials;
mod codes;
mod config;
mod delivery;
mod device;
mod discovery;
mod errors;
mod events;
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
mod streaming;
mod tls;
mod token_exchange;
mod validate;
mod writes;

use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use config::{AppState, CertMode, Config, DenyMode, RefreshRefusal, SlowDown};
pub use faults::Fault;
pub use headless::{Headless, public_key_der};
pub use log::LogEntry;
pub use schema::Schema;
pub use streaming::{StreamingClient, StreamingStats};
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

    /// The bodies of the last sObject Collections requests (at most 16), oldest first, byte
    /// for byte as they arrived: what a test checks values against, since [`Sim::records`]
    /// holds numbers as f64.
    pub fn collection_bodies(&self) -> Vec<Vec<u8>> {
        self.shared.delivery.bodies()
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
        // A held connect's connection dies too.
        self.shared.wake();
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

    /// Publishes a platform event as an admin, a flow or Apex would: `name` is the
    /// event object (`Device_Command__e`), `payload` its fields as JSON. It is checked
    /// like a REST publish, stored (`records(name)` shows it, with its `EventUuid`) and
    /// delivered to the subscribers of `/event/{name}`. Returns its replay id and
    /// `EventUuid`, or why it was refused.
    pub fn publish_event(
        &self,
        name: &str,
        payload: serde_json::Value,
    ) -> Result<(i64, String), String> {
        let mut world = self.shared.world();
        let object = world
            .schema
            .object(name)
            .filter(|o| o.platform_event)
            .cloned()
            .ok_or_else(|| format!("{name} is not a platform event of this org"))?;
        let serde_json::Value::Object(body) = payload else {
            return Err("the payload must be a JSON object".into());
        };
        let mut fields = validate::check(&world.schema, &object, &body, validate::Write::Create)
            .map_err(|e| format!("{}: {}", e.code, e.message))?;
        let uuid = codes::uuid_v4();
        fields.insert("EventUuid".into(), serde_json::Value::String(uuid.clone()));
        world
            .records
            .insert(&object.name, &object.key_prefix, fields);
        let published = self.shared.commit(&mut world, None);
        let replay_id = published
            .last()
            .map(|p| p.replay_id)
            .ok_or("the event was not published")?;
        Ok((replay_id, uuid))
    }

    /// The events still retained, oldest first: platform events and change events.
    pub fn published_events(&self) -> Vec<PublishedEvent> {
        let world = self.shared.world();
        world
            .bus
            .retained_events()
            .map(|e| PublishedEvent {
                channel: e.channel.clone(),
                replay_id: e.replay_id,
                uuid: e.uuid.clone(),
                payload: e.payload.clone(),
            })
            .collect()
    }

    /// Creates or updates `object`'s record whose external id `field` is `value` with
    /// `fields`, as an admin would in Setup (also while the simulator is offline): the REST
    /// upsert's rules, and the change event it raises. Returns the record's id.
    pub fn upsert_record(
        &self,
        object: &str,
        field: &str,
        value: &str,
        fields: serde_json::Value,
    ) -> Result<String, String> {
        let serde_json::Value::Object(fields) = fields else {
            return Err("the fields must be a JSON object".into());
        };
        rest::upsert_by_hand(&self.shared, object, field, value, &fields)
    }

    /// How long events are kept for replay (`Config::event_retention`, 72 h by default).
    /// Events older than this leave at once; a replay id of theirs is refused from now.
    pub fn set_event_retention(&self, retention: Duration) {
        let mut world = self.shared.world();
        world.bus.set_retention(retention);
        world.bus.expire(Instant::now());
    }

    /// How long a `/meta/connect` is held without events (`Config::streaming_hold`);
    /// `advice.timeout` tells clients this. Connects held now keep their old deadline.
    pub fn set_streaming_hold(&self, hold: Duration) {
        self.shared.world().streaming.knobs.hold = hold;
    }

    /// A client silent longer than this is forgotten (`Config::streaming_silence`).
    pub fn set_streaming_silence(&self, silence: Duration) {
        self.shared.world().streaming.knobs.silence = silence;
    }

    /// The org's concurrent streaming clients (`Config::streaming_client_limit`).
    pub fn set_streaming_client_limit(&self, limit: usize) {
        self.shared.world().streaming.knobs.limit = limit;
    }

    /// From now on every `n`-th `/meta/connect` (0: none) forgets its client
    /// (`Config::forget_client_every_connect`).
    pub fn set_forget_client_every(&self, n: u32) {
        self.shared.world().streaming.knobs.forget_every = n;
    }

    /// From now on every `n`-th connect reply carrying events (0: none) is cut after the
    /// events were taken (`Config::cut_event_reply_every`).
    pub fn set_cut_event_reply_every(&self, n: u32) {
        self.shared.world().streaming.knobs.cut_every = n;
    }

    /// Forgets every streaming client now, as Salesforce does every few hours: each
    /// one's next request gets `403::Unknown client`. Returns how many were known.
    pub fn forget_streaming_clients(&self) -> usize {
        let forgotten = self.shared.world().streaming.forget_all();
        self.shared.wake();
        forgotten
    }

    /// The Streaming API's counters since the start.
    pub fn streaming_stats(&self) -> StreamingStats {
        let mut world = self.shared.world();
        world.streaming.expire(Instant::now());
        let mut stats = world.streaming.stats;
        stats.clients_now = world.streaming.len();
        stats.events_published = world.bus.published();
        stats
    }

    /// The streaming clients known now: subscriptions, positions, deliveries.
    pub fn streaming_clients(&self) -> Vec<StreamingClient> {
        let mut world = self.shared.world();
        world.streaming.expire(Instant::now());
        world.streaming.views()
    }

    /// Stops accepting and joins the accept thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        // Held connects answer now instead of at the end of their hold.
        self.shared.world().streaming.stopping = true;
        self.shared.wake();
        self.acceptor.stop();
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One retained event, as [`Sim::published_events`] lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct PublishedEvent {
    /// `/event/X__e` or `/data/XChangeEvent`.
    pub channel: String,
    pub replay_id: i64,
    /// A platform event's `EventUuid`; change events have none.
    pub uuid: Option<String>,
    /// `data.payload` as subscribers receive it.
    pub payload: serde_json::Value,
}

/// Locks a mutex even if a connection thread panicked while holding it: the data is
/// simple enough to stay usable, and one bad request must not take the simulator down.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
