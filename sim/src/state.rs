//! What every connection thread shares: the configuration, the simulated org (device
//! codes, grants, records, counters) behind one lock, the fault queue and the log.
//!
//! One lock for the whole org keeps the handlers free of lock-ordering puzzles; the
//! simulator serves a handful of clients, so contention does not matter. Handlers
//! must not hold the lock while writing to a socket.

use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::Config;
use crate::device::{Devices, Rules};
use crate::faults::FaultQueue;
use crate::grants::{Grants, Policy};
use crate::log::RequestLog;
use crate::rest::Records;

pub struct Shared {
    pub config: Config,
    pub rules: Rules,
    pub policy: Policy,
    /// `https://127.0.0.1:PORT`, without a trailing slash.
    pub base_url: String,
    world: Mutex<World>,
    pub faults: FaultQueue,
    pub log: RequestLog,
    /// Connections accepted so far; the latest one's id.
    pub connections: AtomicU64,
}

/// The simulated org.
#[derive(Default)]
pub struct World {
    pub devices: Devices,
    pub grants: Grants,
    pub records: Records,
    /// Requests to `/services/oauth2/token` so far, for the `flaky` knob.
    pub token_requests: u64,
    /// Authenticated REST calls so far, reported in `Sforce-Limit-Info`.
    pub api_usage: u64,
}

impl Shared {
    pub fn new(config: Config, base_url: String) -> Self {
        Shared {
            rules: Rules::from(&config),
            policy: Policy {
                session_ttl: config.session_ttl(),
                rotate: config.rotate_refresh_tokens,
                max_per_user: config.max_authorizations_per_user,
                refresh_idle: config.refresh_idle,
                refresh_lifetime: config.refresh_lifetime,
            },
            log: RequestLog::new(config.log_to_stderr),
            config,
            base_url,
            world: Mutex::new(World::default()),
            faults: FaultQueue::default(),
            connections: AtomicU64::new(0),
        }
    }

    pub fn world(&self) -> MutexGuard<'_, World> {
        crate::lock(&self.world)
    }

    /// The identity URL, which is also the token responses' `id`.
    pub fn identity_url(&self) -> String {
        format!(
            "{}/id/{}/{}",
            self.base_url,
            crate::codes::ORG_ID,
            crate::codes::USER_ID
        )
    }
}

/// Wall-clock milliseconds, as Salesforce's `issued_at` carries them.
pub fn epoch_millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}
