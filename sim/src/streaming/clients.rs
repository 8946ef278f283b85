//! The Streaming API's memory: the Bayeux clients the org knows (their cookies,
//! subscriptions and positions), the knobs a test turns (hold time, silence window,
//! concurrent client limit, the two faults) and the counters it reads back.
//!
//! State and its rules only (who is forgotten when, who may handshake, which events a
//! client takes next); the messages on the wire are `meta.rs`'s.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use crate::bus::{Bus, BusEvent};
use crate::codes::base36;
use crate::config::Config;

/// What a test can turn at run time; the defaults are Salesforce's.
#[derive(Clone, Copy, Debug)]
pub struct Knobs {
    /// How long a `/meta/connect` is held when no event arrives (`advice.timeout`).
    pub hold: Duration,
    /// A client silent this long (no request, none held) is forgotten.
    pub silence: Duration,
    /// The org's concurrent streaming clients.
    pub limit: usize,
    /// Every n-th `/meta/connect` (0: none) forgets its client.
    pub forget_every: u32,
    /// Every n-th `/meta/connect` reply carrying events (0: none) is cut after the events
    /// were taken.
    pub cut_every: u32,
}

impl Knobs {
    pub fn from(config: &Config) -> Knobs {
        Knobs {
            hold: config.streaming_hold,
            silence: config.streaming_silence,
            limit: config.streaming_client_limit,
            forget_every: config.forget_client_every_connect,
            cut_every: config.cut_event_reply_every,
        }
    }
}

/// Counters since the start (`Sim::streaming_stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamingStats {
    /// Successful handshakes.
    pub handshakes: u64,
    /// Handshakes refused: a bad session or the concurrent client limit.
    pub denied_handshakes: u64,
    /// Of those, refused for the concurrent client limit.
    pub limit_refusals: u64,
    /// Successful subscribes.
    pub subscribes: u64,
    /// Subscribes refused for their replay id.
    pub invalid_replays: u64,
    pub unsubscribes: u64,
    /// `/meta/connect` requests of known clients.
    pub connects: u64,
    pub disconnects: u64,
    /// Platform events and change events published since the start.
    pub events_published: u64,
    /// Events taken by connect replies (a cut reply's too).
    pub events_delivered: u64,
    /// Connect replies that carried events.
    pub event_replies: u64,
    /// Of those, cut by the fault.
    pub cut_replies: u64,
    /// Clients forgotten: silent too long, by the fault, or by `Sim::forget_streaming_clients`.
    pub forgotten: u64,
    /// Clients known now.
    pub clients_now: usize,
    /// The most clients known at once.
    pub clients_max: usize,
}

/// One client as a test sees it (`Sim::streaming_clients`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamingClient {
    pub client_id: String,
    /// Each subscribed channel and the replay id of the last event taken on it (where a
    /// `-1` subscription started, or 0 for `-2`, before the first).
    pub subscriptions: Vec<(String, i64)>,
    pub connects: u64,
    pub events_delivered: u64,
    /// The replay id of the last event delivered to it.
    pub last_replay_id: Option<i64>,
}

pub struct Client {
    /// The `BAYEUX_BROWSER` cookie it handshook with.
    pub browser: String,
    /// The `sfdc-stream` cookie: the server that knows it.
    pub stream: String,
    /// Channel -> replay id of the last event taken.
    pub subscriptions: BTreeMap<String, i64>,
    pub last_seen: Instant,
    /// Connects of it held right now.
    pub holding: usize,
    /// Its newest connect, so an older one still held gives way and takes nothing.
    pub newest_connect: u64,
    pub connected: bool,
    pub connects: u64,
    pub delivered: u64,
    pub last_delivered: Option<i64>,
}

pub struct Streaming {
    pub knobs: Knobs,
    pub stats: StreamingStats,
    clients: HashMap<String, Client>,
    /// Set when the simulator stops: held connects answer at once.
    pub stopping: bool,
}

impl Streaming {
    pub fn new(config: &Config) -> Streaming {
        Streaming {
            knobs: Knobs::from(config),
            stats: StreamingStats::default(),
            clients: HashMap::new(),
            stopping: false,
        }
    }

    /// Forgets the clients silent longer than the window; none with a held connect.
    pub fn expire(&mut self, now: Instant) {
        let silence = self.knobs.silence;
        let before = self.clients.len();
        self.clients
            .retain(|_, c| c.holding > 0 || now.duration_since(c.last_seen) <= silence);
        self.stats.forgotten += (before - self.clients.len()) as u64;
    }

    /// Whether one more client may handshake.
    pub fn has_room(&self) -> bool {
        self.clients.len() < self.knobs.limit
    }

    /// A new client; returns its id.
    pub fn add(&mut self, browser: String, stream: String, now: Instant) -> String {
        let id = base36(27);
        self.clients.insert(
            id.clone(),
            Client {
                browser,
                stream,
                subscriptions: BTreeMap::new(),
                last_seen: now,
                holding: 0,
                newest_connect: 0,
                connected: false,
                connects: 0,
                delivered: 0,
                last_delivered: None,
            },
        );
        self.stats.handshakes += 1;
        self.stats.clients_max = self.stats.clients_max.max(self.clients.len());
        id
    }

    pub fn get(&self, id: &str) -> Option<&Client> {
        self.clients.get(id)
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Client> {
        self.clients.get_mut(id)
    }

    /// Forgets one client; false when it was not known.
    pub fn remove(&mut self, id: &str) -> bool {
        self.clients.remove(id).is_some()
    }

    /// Forgets every client, as Salesforce does every few hours.
    pub fn forget_all(&mut self) -> usize {
        let n = self.clients.len();
        self.clients.clear();
        self.stats.forgotten += n as u64;
        n
    }

    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// The clients as a test sees them, in no particular order.
    pub fn views(&self) -> Vec<StreamingClient> {
        self.clients
            .iter()
            .map(|(id, c)| StreamingClient {
                client_id: id.clone(),
                subscriptions: c
                    .subscriptions
                    .iter()
                    .map(|(k, v)| (k.clone(), *v))
                    .collect(),
                connects: c.connects,
                events_delivered: c.delivered,
                last_replay_id: c.last_delivered,
            })
            .collect()
    }
}

impl Client {
    /// Whether any subscribed channel has an event past its position.
    pub fn has_pending(&self, bus: &Bus) -> bool {
        self.subscriptions
            .iter()
            .any(|(channel, after)| bus.after(channel, *after).next().is_some())
    }

    /// Takes every event past each subscription's position, oldest first, each once
    /// even when two subscriptions receive it, and moves the positions past them.
    pub fn take(&mut self, bus: &Bus) -> Vec<BusEvent> {
        let mut taken: BTreeMap<i64, BusEvent> = BTreeMap::new();
        for (channel, after) in self.subscriptions.iter_mut() {
            for event in bus.after(channel, *after) {
                *after = event.replay_id;
                taken
                    .entry(event.replay_id)
                    .or_insert_with(|| event.clone());
            }
        }
        if let Some(last) = taken.keys().next_back() {
            self.last_delivered = Some(*last);
        }
        self.delivered += taken.len() as u64;
        taken.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn streaming(limit: usize, silence: Duration) -> Streaming {
        Streaming::new(&Config {
            streaming_client_limit: limit,
            streaming_silence: silence,
            ..Config::default()
        })
    }

    #[test]
    fn silent_clients_are_forgotten_but_not_while_held() {
        let mut s = streaming(10, Duration::from_secs(40));
        let t0 = Instant::now();
        let quiet = s.add("b".into(), "s".into(), t0);
        let held = s.add("b".into(), "s".into(), t0);
        s.get_mut(&held).unwrap().holding = 1;
        s.expire(t0 + Duration::from_secs(40));
        assert_eq!(s.len(), 2, "40 s is still within the window");
        s.expire(t0 + Duration::from_secs(41));
        assert!(s.get(&quiet).is_none());
        assert!(s.get(&held).is_some());
        assert_eq!(s.stats.forgotten, 1);
    }

    #[test]
    fn the_limit_counts_known_clients() {
        let mut s = streaming(2, Duration::from_secs(40));
        let now = Instant::now();
        let a = s.add("b".into(), "s".into(), now);
        assert!(s.has_room());
        s.add("b".into(), "s".into(), now);
        assert!(!s.has_room());
        assert!(s.remove(&a));
        assert!(s.has_room());
        assert_eq!((s.stats.handshakes, s.stats.clients_max), (2, 2));
    }

    #[test]
    fn a_client_takes_each_event_once_across_its_subscriptions() {
        let mut bus = Bus::default();
        let now = Instant::now();
        let mut publish =
            |channel: &str| bus.publish(channel.into(), "s".into(), json!({}), None, now);
        let c1 = publish("/data/Device__ChangeEvent");
        let e1 = publish("/event/Cmd__e");
        let c2 = publish("/data/Device__ChangeEvent");
        let mut s = streaming(10, Duration::from_secs(40));
        let id = s.add("b".into(), "s".into(), now);
        let client = s.get_mut(&id).unwrap();
        client.subscriptions.insert("/data/ChangeEvents".into(), 0);
        client
            .subscriptions
            .insert("/data/Device__ChangeEvent".into(), c1);
        client.subscriptions.insert("/event/Cmd__e".into(), 0);
        assert!(client.has_pending(&bus));
        let ids: Vec<i64> = client.take(&bus).iter().map(|e| e.replay_id).collect();
        assert_eq!(ids, [c1, e1, c2]);
        assert!(!client.has_pending(&bus));
        assert!(client.take(&bus).is_empty());
        assert_eq!((client.delivered, client.last_delivered), (3, Some(c2)));
    }
}
