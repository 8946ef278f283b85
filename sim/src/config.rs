//! The simulator's knobs, with the defaults of docs/protocol.md, "What a stand-in server
//! must do".
//!
//! Plain data only: this file decides nothing at run time and reads no flags
//! (`main.rs` turns flags into a [`Config`]).

use std::fmt;
use std::time::Duration;

use crate::schema::Schema;

/// Everything a test or the binary can tune. Start from `Config::default()`
/// and change the fields a scenario needs. Its `Debug` output hides the secret.
#[derive(Clone)]
pub struct Config {
    /// Port on 127.0.0.1; 0 picks a free one (read it back with `Sim::port`).
    pub port: u16,
    /// The only consumer key accepted; any other gets `invalid_client_id`.
    pub client_id: String,
    /// Whether the app may use the device flow at all (checked at step 1).
    pub app: AppState,
    /// Seconds the client must wait between polls, as announced at step 1.
    pub interval: u64,
    /// Lifetime of device and user codes.
    pub code_ttl: Duration,
    /// What a Salesforce code that the user denied answers when polled.
    pub deny_mode: DenyMode,
    /// When polls answer `slow_down`.
    pub slow_down: SlowDown,
    /// When n > 0, every n-th request to `/services/oauth2/token` gets a 503 HTML page.
    pub flaky: u32,
    /// Access-token lifetime; `None` means Salesforce's default session timeout of 2 h.
    pub session_ttl: Option<Duration>,
    /// Issue a new refresh token at every refresh and retire the old one.
    pub rotate_refresh_tokens: bool,
    /// The consumer secret: keys the `signature` of token responses, and is what
    /// `require_secret_for_refresh` checks. `None` signs with an empty key.
    pub consumer_secret: Option<String>,
    /// Refuse a refresh that does not carry the right `client_secret`.
    pub require_secret_for_refresh: bool,
    /// Approve every new code (both dialects) this long after it was issued.
    pub auto_approve_after: Option<Duration>,
    /// Live grants one user may hold; one more evicts the least recently used.
    pub max_authorizations_per_user: usize,
    /// The connected app's name, shown on the approval page.
    pub app_name: String,
    /// Which server certificate to present.
    pub cert: CertMode,
    /// The host of `instance_url` in token replies (e.g. `localhost`), when the org's
    /// instance is not the login host. It must resolve to 127.0.0.1; the certificate
    /// names it, and REST answers only there.
    pub instance_host: Option<String>,
    /// Print each request-log line to stderr.
    pub log_to_stderr: bool,
    /// The JWT bearer, client credentials and asset token settings (`headless.rs`).
    pub headless: crate::headless::Headless,
    /// The org's objects: the standard ones, plus those of a schema file
    /// (`Schema::from_json`, format in docs/simulator.md).
    pub schema: Schema,
    /// Records per page of a query result (Salesforce's default is 2000).
    pub query_page_size: usize,
    /// Refresh token policy "expire if not used for N": a refresh token unused this long dies.
    pub refresh_idle: Option<Duration>,
    /// Refresh token policy "expire after N": a refresh token this old dies.
    pub refresh_lifetime: Option<Duration>,
    /// Every refresh is refused this way (`field.rs`), whatever the token.
    pub refresh_refusal: Option<RefreshRefusal>,
    /// Access tokens are JWTs with `exp` (still accepted by the REST endpoints).
    pub jwt_access_tokens: bool,
    /// When n > 0, every n-th sObject Collections request is committed, then its
    /// connection is closed without a reply (a lost reply). `Sim::set_commit_then_drop_every`.
    pub commit_then_drop_every: u32,
    /// When n > 0, every n-th record submitted through sObject Collections is refused
    /// `UNABLE_TO_LOCK_ROW` and not written; each distinct record at most once.
    /// `Sim::set_lock_row_every`.
    pub lock_row_every: u32,
    /// The daily API allocation: `Sforce-Limit-Info` and `limits` report it, and once
    /// the usage reaches it every REST request gets 403 `REQUEST_LIMIT_EXCEEDED`. `None`
    /// reports Salesforce's 15000 and enforces nothing. `Sim::set_api_limit`.
    pub api_limit: Option<u64>,
    /// How long platform events and change events are kept for replay (Salesforce: 72 h).
    /// `Sim::set_event_retention`.
    pub event_retention: Duration,
    /// How long a `/meta/connect` is held when no event comes (Salesforce: 110 s, its
    /// `advice.timeout`). `Sim::set_streaming_hold`.
    pub streaming_hold: Duration,
    /// A streaming client silent this long is forgotten; its next request gets
    /// `403::Unknown client` (Salesforce: about 40 s). `Sim::set_streaming_silence`.
    pub streaming_silence: Duration,
    /// The org's concurrent streaming clients (Salesforce: 2,000 Performance and
    /// Unlimited, 1,000 Enterprise, 20 Developer Edition); one more handshake is denied.
    /// `Sim::set_streaming_client_limit`.
    pub streaming_client_limit: usize,
    /// When n > 0, every n-th `/meta/connect` forgets its client (`403::Unknown client`).
    /// `Sim::set_forget_client_every`.
    pub forget_client_every_connect: u32,
    /// When n > 0, every n-th `/meta/connect` reply that carries events is cut after the
    /// events were taken: the client must replay them from its stored position.
    /// `Sim::set_cut_event_reply_every`.
    pub cut_event_reply_every: u32,
}

/// How a refresh is refused in the field scenarios (docs/protocol.md, "When a pairing dies").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshRefusal {
    /// `invalid_grant` / `ip restricted`: the refresh token IP allowlist blocks this network.
    IpRestricted,
    /// `invalid_client` / `invalid client credentials`: the app now requires the secret.
    SecretRequired,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: 0,
            client_id: "3MVG9sfpair.sim.consumer.key".to_string(),
            app: AppState::Ok,
            interval: 5,
            code_ttl: Duration::from_secs(600),
            deny_mode: DenyMode::Pending,
            slow_down: SlowDown::Off,
            flaky: 0,
            session_ttl: None,
            rotate_refresh_tokens: false,
            consumer_secret: None,
            require_secret_for_refresh: false,
            auto_approve_after: None,
            max_authorizations_per_user: 5,
            app_name: "sfpair device agent".to_string(),
            cert: CertMode::Valid,
            log_to_stderr: false,
            headless: crate::headless::Headless::default(),
            instance_host: None,
            schema: Schema::default(),
            query_page_size: 2000,
            refresh_idle: None,
            refresh_lifetime: None,
            refresh_refusal: None,
            jwt_access_tokens: false,
            commit_then_drop_every: 0,
            lock_row_every: 0,
            api_limit: None,
            event_retention: crate::bus::DEFAULT_RETENTION,
            streaming_hold: Duration::from_secs(110),
            streaming_silence: Duration::from_secs(40),
            streaming_client_limit: 1000,
            forget_client_every_connect: 0,
            cut_event_reply_every: 0,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret = self.consumer_secret.as_ref().map(|_| "<redacted>");
        f.debug_struct("Config")
            .field("port", &self.port)
            .field("client_id", &self.client_id)
            .field("app", &self.app)
            .field("interval", &self.interval)
            .field("code_ttl", &self.code_ttl)
            .field("deny_mode", &self.deny_mode)
            .field("slow_down", &self.slow_down)
            .field("flaky", &self.flaky)
            .field("session_ttl", &self.session_ttl)
            .field("rotate_refresh_tokens", &self.rotate_refresh_tokens)
            .field("consumer_secret", &secret)
            .field(
                "require_secret_for_refresh",
                &self.require_secret_for_refresh,
            )
            .field("auto_approve_after", &self.auto_approve_after)
            .field(
                "max_authorizations_per_user",
                &self.max_authorizations_per_user,
            )
            .field("app_name", &self.app_name)
            .field("cert", &self.cert)
            .field("instance_host", &self.instance_host)
            .field("log_to_stderr", &self.log_to_stderr)
            .field("headless", &self.headless)
            .field(
                "schema",
                &self
                    .schema
                    .objects
                    .iter()
                    .map(|o| &o.name)
                    .collect::<Vec<_>>(),
            )
            .field("query_page_size", &self.query_page_size)
            .field("refresh_idle", &self.refresh_idle)
            .field("refresh_lifetime", &self.refresh_lifetime)
            .field("refresh_refusal", &self.refresh_refusal)
            .field("jwt_access_tokens", &self.jwt_access_tokens)
            .field("commit_then_drop_every", &self.commit_then_drop_every)
            .field("lock_row_every", &self.lock_row_every)
            .field("api_limit", &self.api_limit)
            .field("event_retention", &self.event_retention)
            .field("streaming_hold", &self.streaming_hold)
            .field("streaming_silence", &self.streaming_silence)
            .field("streaming_client_limit", &self.streaming_client_limit)
            .field(
                "forget_client_every_connect",
                &self.forget_client_every_connect,
            )
            .field("cut_event_reply_every", &self.cut_event_reply_every)
            .finish()
    }
}

impl Config {
    /// Access-token lifetime in force.
    pub(crate) fn session_ttl(&self) -> Duration {
        self.session_ttl.unwrap_or(Duration::from_secs(2 * 60 * 60))
    }
}

/// The app's device-flow status in the simulated org (docs/protocol.md,
/// "Device flow restriction (2025)" and "Device flow errors").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppState {
    /// Device flow enabled and the app installed.
    Ok,
    /// Step 1 answers `invalid_grant` / `device flow is not enabled for the app`.
    DeviceFlowDisabled,
    /// Step 1 answers `invalid_client` / `app must be installed into org`.
    NotInstalled,
}

/// How a denied Salesforce code answers polls (the RFC 8628 dialect always says `access_denied`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DenyMode {
    /// As observed on Salesforce: `authorization_pending` until the code expires.
    Pending,
    /// 400 `access_denied`, as RFC 8628 prescribes.
    AccessDenied,
}

/// When a poll answers `slow_down`. Every `slow_down` adds 5 s to the code's
/// interval for good, as RFC 8628 section 3.5 asks of clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlowDown {
    /// Never.
    Off,
    /// When a poll comes sooner than the code's current interval after the previous poll.
    Strict,
    /// The first n polls of each code, whatever their timing.
    FirstPolls(u32),
}

/// Which certificate the server presents; all are signed by the same generated CA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertMode {
    /// Valid for 127.0.0.1, ::1, localhost and the instance host.
    Valid,
    /// Valid, but only for `wrong.example`.
    WrongHost,
    /// Right names, but its validity ended in the past.
    Expired,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_consumer_secret() {
        let config = Config {
            consumer_secret: Some("hunter2".into()),
            ..Config::default()
        };
        let printed = format!("{config:?}");
        assert!(printed.contains("<redacted>") && !printed.contains("hunter2"));
    }
}
