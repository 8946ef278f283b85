//! What every connection thread shares: the configuration, the simulated org (device
//! codes, grants, records, counters) behind one lock, the fault queue, the delivery
//! knobs and the log.
//!
//! One lock for the whole org keeps the handlers free of lock-ordering puzzles; the
//! simulator serves a handful of clients, so contention does not matter. Handlers
//! must not hold the lock while writing to a socket.

use std::sync::atomic::AtomicU64;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::bus::Bus;
use crate::config::Config;
use crate::delivery::Delivery;
use crate::device::{Devices, Rules};
use crate::faults::FaultQueue;
use crate::grants::{Grants, Policy};
use crate::log::RequestLog;
use crate::store::{Cursors, Records};
use crate::streaming::clients::Streaming;

pub struct Shared {
    pub config: Config,
    pub rules: Rules,
    pub policy: Policy,
    /// The login host, `https://127.0.0.1:PORT`, without a trailing slash.
    pub base_url: String,
    /// Where tokens send the client for REST: `https://INSTANCE_HOST:PORT`, or the
    /// login URL when no instance host is configured.
    pub instance_url: String,
    pub port: u16,
    world: Mutex<World>,
    /// Signalled when something a held `/meta/connect` waits for happens: an event is
    /// published, a client goes, the network goes, the simulator stops.
    wake: Condvar,
    pub faults: FaultQueue,
    /// The persistent delivery faults and their counters, settable at run time.
    pub delivery: Delivery,
    pub log: RequestLog,
    /// Connections accepted so far; the latest one's id.
    pub connections: AtomicU64,
}

/// The simulated org.
pub struct World {
    pub devices: Devices,
    pub grants: Grants,
    pub records: Records,
    /// Query results with pages still to read.
    pub cursors: Cursors,
    /// Requests to `/services/oauth2/token` so far, for the `flaky` knob.
    pub token_requests: u64,
    /// Authenticated REST calls so far, reported in `Sforce-Limit-Info`.
    pub api_usage: u64,
    /// The org's objects and fields: the configured schema, plus fields an admin added while
    /// it runs (`Sim::add_field`).
    pub schema: crate::schema::Schema,
    /// Published platform events and change events (`bus.rs`).
    pub bus: Bus,
    /// The Streaming API's clients, knobs and counters (`streaming/`).
    pub streaming: Streaming,
    /// Every save through REST, and whether its reply was sent (`writes.rs`).
    pub writes: crate::writes::Ledger,
}

impl World {
    /// An org holding only the paired user, so `sobjects/User/{id}` of the identity
    /// URL answers as on Salesforce.
    fn seeded(config: &Config) -> World {
        let mut world = World {
            devices: Devices::default(),
            grants: Grants::default(),
            records: Records::default(),
            cursors: Cursors::default(),
            token_requests: 0,
            api_usage: 0,
            schema: config.schema.clone(),
            bus: Bus::new(config.event_retention),
            streaming: Streaming::new(config),
            writes: crate::writes::Ledger::default(),
        };
        let user = serde_json::json!({
            "Username": crate::codes::USERNAME,
            "FirstName": "Sim",
            "LastName": "Technician",
            "Name": "Sim Technician",
            "Email": crate::codes::USERNAME,
            "Alias": "simtech",
            "IsActive": true,
        });
        if let serde_json::Value::Object(fields) = user {
            world
                .records
                .insert_with_id("User", crate::codes::USER_ID, fields);
        }
        // The seeded user was there before anyone could subscribe: no change event.
        world.records.take_journal();
        world
    }
}

impl Shared {
    pub fn new(config: Config, port: u16) -> Self {
        let base_url = format!("https://127.0.0.1:{port}");
        let instance_url = match &config.instance_host {
            Some(host) => format!("https://{host}:{port}"),
            None => base_url.clone(),
        };
        Shared {
            instance_url,
            port,
            rules: Rules::from(&config),
            policy: Policy {
                session_ttl: config.session_ttl(),
                rotate: config.rotate_refresh_tokens,
                max_per_user: config.max_authorizations_per_user,
                refresh_idle: config.refresh_idle,
                refresh_lifetime: config.refresh_lifetime,
            },
            log: RequestLog::new(config.log_to_stderr),
            delivery: Delivery::new(&config),
            world: Mutex::new(World::seeded(&config)),
            wake: Condvar::new(),
            config,
            base_url,
            faults: FaultQueue::default(),
            connections: AtomicU64::new(0),
        }
    }

    pub fn world(&self) -> MutexGuard<'_, World> {
        crate::lock(&self.world)
    }

    /// Lets go of the org for up to `timeout`, until [`Shared::wake`] (or a spurious
    /// wake-up: callers check what they wait for again), and takes it back.
    pub fn wait_world<'a>(
        &self,
        guard: MutexGuard<'a, World>,
        timeout: Duration,
    ) -> MutexGuard<'a, World> {
        match self.wake.wait_timeout(guard, timeout) {
            Ok((guard, _)) => guard,
            Err(poisoned) => poisoned.into_inner().0,
        }
    }

    /// Wakes every held `/meta/connect` to look again.
    pub fn wake(&self) {
        self.wake.notify_all();
    }

    /// Publishes what a committed request wrote (platform events, change events) and
    /// wakes the held connects. `origin` is the `changeOrigin` of its change events.
    pub fn commit(&self, world: &mut World, origin: Option<&str>) -> Vec<crate::events::Published> {
        let changes = world.records.take_journal();
        if changes.is_empty() {
            return Vec::new();
        }
        let published = crate::events::publish(
            &world.schema,
            &mut world.bus,
            changes,
            origin,
            Instant::now(),
        );
        self.wake();
        published
    }

    /// `https://HOST:PORT` for the host the client called, when it is one this
    /// simulator answers as (127.0.0.1, localhost or the instance host); else the login
    /// URL. Never an arbitrary `Host` value, so a page cannot be made to link elsewhere.
    pub fn public_url(&self, request: &crate::http::Request) -> String {
        let called = request.header("host").and_then(|host| {
            let (name, port) = host.rsplit_once(':')?;
            let known = matches!(name, "127.0.0.1" | "localhost")
                || self.config.instance_host.as_deref() == Some(name);
            (known && port.parse() == Ok(self.port)).then(|| format!("https://{name}:{port}"))
        });
        called.unwrap_or_else(|| self.base_url.clone())
    }

    /// Whether a REST call came to the login host although tokens name another
    /// instance: real orgs serve REST on the instance only.
    pub fn rest_on_login_host(&self, request: &crate::http::Request) -> bool {
        self.instance_url != self.base_url && self.public_url(request) != self.instance_url
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
