//! The event bus: every published platform event and change event, with its replay id,
//! kept for the retention window, and the questions the Streaming API asks of it (which
//! events follow a position on a channel, whether a replay id is still retained).
//!
//! Replay ids grow but are not contiguous, as on Salesforce ("Replay ID values aren't
//! guaranteed to be contiguous for consecutive events"): each event steps the counter by
//! 1 to 5, so a client that computes ids instead of storing them fails its tests. One
//! counter serves every channel, so an id names one event in the whole org.
//!
//! Data only: no wire format (`streaming/`), no knowledge of records (`events.rs` builds
//! the payloads). Time is the simulator's monotonic clock, so a test sets a retention of
//! seconds and waits instead of living through 72 hours.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Salesforce keeps platform events and change events for 72 hours.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(72 * 60 * 60);
/// The channel of every change event of every object selected for Change Data Capture.
pub const ALL_CHANGE_EVENTS: &str = "/data/ChangeEvents";
/// At most this many events are kept, the oldest leaving first, whatever the retention:
/// every record written raises a change event, and a load test of millions of records
/// must not keep them all in memory for 72 hours. Salesforce has no such count (unlike
/// the simulator, it has disks).
pub const MAX_RETAINED: usize = 100_000;
/// The first replay id the simulator hands out, less one step.
const FIRST_REPLAY: i64 = 1000;

/// One published event.
#[derive(Clone, Debug)]
pub struct BusEvent {
    /// `/event/X__e` or `/data/XChangeEvent`.
    pub channel: String,
    pub replay_id: i64,
    /// The platform event's `EventUuid`; change events have none.
    pub uuid: Option<String>,
    /// The id of the event's schema, as `data.schema` carries it.
    pub schema: String,
    /// `data.payload`.
    pub payload: Value,
    pub published: Instant,
}

pub struct Bus {
    events: VecDeque<BusEvent>,
    last_replay: i64,
    /// Xorshift state for the replay id steps: fixed, so a run can be repeated.
    steps: u64,
    retention: Duration,
    published: u64,
    /// Transactions that published change events: the source of `commitNumber`.
    commits: u64,
}

impl Default for Bus {
    fn default() -> Self {
        Bus::new(DEFAULT_RETENTION)
    }
}

impl Bus {
    pub fn new(retention: Duration) -> Bus {
        Bus {
            events: VecDeque::new(),
            last_replay: FIRST_REPLAY,
            steps: 0x9e37_79b9_7f4a_7c15,
            retention,
            published: 0,
            commits: 0,
        }
    }

    pub fn set_retention(&mut self, retention: Duration) {
        self.retention = retention;
    }

    /// Stores an event and returns its replay id.
    pub fn publish(
        &mut self,
        channel: String,
        schema: String,
        payload: Value,
        uuid: Option<String>,
        now: Instant,
    ) -> i64 {
        self.expire(now);
        self.steps ^= self.steps << 13;
        self.steps ^= self.steps >> 7;
        self.steps ^= self.steps << 17;
        self.last_replay += 1 + (self.steps % 5) as i64;
        self.published += 1;
        if self.events.len() >= MAX_RETAINED {
            self.events.pop_front();
        }
        self.events.push_back(BusEvent {
            channel,
            replay_id: self.last_replay,
            uuid,
            schema,
            payload,
            published: now,
        });
        self.last_replay
    }

    /// The `commitNumber` of the next transaction: growing, and large like a database's
    /// system change number.
    pub fn next_commit(&mut self) -> u64 {
        self.commits += 1;
        10_000_000_000 + self.commits * 7
    }

    /// Drops the events older than the retention.
    pub fn expire(&mut self, now: Instant) {
        while let Some(oldest) = self.events.front() {
            match now.checked_duration_since(oldest.published) {
                Some(age) if age >= self.retention => self.events.pop_front(),
                _ => break,
            };
        }
    }

    /// The newest replay id issued on any channel (a `-1` subscription starts here).
    pub fn last_replay(&self) -> i64 {
        self.last_replay
    }

    /// Whether `replay_id` names a retained event that a subscription to `channel`
    /// receives: what a stored replay id must be to subscribe from it.
    pub fn retained(&self, channel: &str, replay_id: i64) -> bool {
        self.events
            .iter()
            .any(|e| e.replay_id == replay_id && receives(channel, &e.channel))
    }

    /// The retained events a subscription to `channel` receives after `replay_id`,
    /// oldest first.
    pub fn after<'a>(
        &'a self,
        channel: &'a str,
        replay_id: i64,
    ) -> impl Iterator<Item = &'a BusEvent> + 'a {
        // Replay ids grow along the queue: skip the older part without reading it.
        let start = self.events.partition_point(|e| e.replay_id <= replay_id);
        self.events
            .range(start..)
            .filter(move |e| receives(channel, &e.channel))
    }

    /// Every retained event, oldest first.
    pub fn retained_events(&self) -> impl Iterator<Item = &BusEvent> {
        self.events.iter()
    }

    /// Events published since the start, retained or not.
    pub fn published(&self) -> u64 {
        self.published
    }
}

/// Whether a subscription to `subscribed` receives an event of `channel`: its own
/// channel, and every change event for `/data/ChangeEvents`.
pub fn receives(subscribed: &str, channel: &str) -> bool {
    subscribed == channel || (subscribed == ALL_CHANGE_EVENTS && channel.starts_with("/data/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn publish(bus: &mut Bus, channel: &str, at: Instant) -> i64 {
        bus.publish(channel.into(), "s".into(), json!({}), None, at)
    }

    #[test]
    fn replay_ids_grow_by_varying_steps() {
        let mut bus = Bus::default();
        let now = Instant::now();
        let ids: Vec<i64> = (0..50)
            .map(|_| publish(&mut bus, "/event/A__e", now))
            .collect();
        let steps: Vec<i64> = ids.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(steps.iter().all(|s| (1..=5).contains(s)), "{steps:?}");
        assert!(steps.iter().any(|&s| s != 1), "not contiguous: {steps:?}");
        assert!(
            steps.iter().any(|&s| s != steps[0]),
            "steps vary: {steps:?}"
        );
        assert_eq!(bus.published(), 50);
    }

    #[test]
    fn a_subscription_reads_its_channel_after_a_position() {
        let mut bus = Bus::default();
        let now = Instant::now();
        let a1 = publish(&mut bus, "/event/A__e", now);
        let b1 = publish(&mut bus, "/event/B__e", now);
        let c1 = publish(&mut bus, "/data/Device__ChangeEvent", now);
        let a2 = publish(&mut bus, "/event/A__e", now);
        let ids = |channel: &str, after: i64| -> Vec<i64> {
            bus.after(channel, after).map(|e| e.replay_id).collect()
        };
        assert_eq!(ids("/event/A__e", 0), [a1, a2]);
        assert_eq!(ids("/event/A__e", a1), [a2]);
        assert_eq!(ids("/event/A__e", a2), Vec::<i64>::new());
        assert_eq!(ids(ALL_CHANGE_EVENTS, 0), [c1]);
        assert!(bus.retained("/event/A__e", a1));
        // An id of another channel, or one never issued, is no position on this one.
        assert!(!bus.retained("/event/A__e", b1));
        assert!(!bus.retained("/event/A__e", a1 + 1000));
        assert!(bus.retained(ALL_CHANGE_EVENTS, c1));
    }

    #[test]
    fn the_bus_keeps_at_most_its_capacity() {
        let mut bus = Bus::default();
        let now = Instant::now();
        let first = publish(&mut bus, "/event/A__e", now);
        for _ in 1..=MAX_RETAINED {
            publish(&mut bus, "/event/A__e", now);
        }
        assert_eq!(bus.retained_events().count(), MAX_RETAINED);
        assert!(!bus.retained("/event/A__e", first));
    }

    #[test]
    fn events_leave_after_the_retention() {
        let mut bus = Bus::new(Duration::from_secs(10));
        let start = Instant::now();
        let old = publish(&mut bus, "/event/A__e", start);
        let new = publish(&mut bus, "/event/A__e", start + Duration::from_secs(5));
        bus.expire(start + Duration::from_secs(10));
        assert!(!bus.retained("/event/A__e", old));
        assert!(bus.retained("/event/A__e", new));
        assert_eq!(bus.retained_events().count(), 1);
        assert_eq!(bus.published(), 2);
    }
}
