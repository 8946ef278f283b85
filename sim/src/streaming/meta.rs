//! The Bayeux messages of one request, answered as Salesforce's Streaming API answers
//! them: `/meta/handshake`, `/meta/subscribe` (with the replay extension),
//! `/meta/connect` (held until an event arrives or the hold time passes),
//! `/meta/unsubscribe` and `/meta/disconnect`, and their errors (`401::Authentication
//! invalid`, `403::Handshake denied` with its `ext.sfdc.failureReason`, `403::Unknown
//! client`, the cookie error, the invalid replay id, the channel errors).
//!
//! It holds the org's lock except while a connect waits (`Shared::wait_world` lets go of
//! it), and writes no socket: `mod.rs` turns the replies into an HTTP answer. No secret
//! reaches a reply: the session is checked, never echoed.

use std::sync::MutexGuard;
use std::time::Instant;

use serde_json::{Map, Value, json};

use crate::bus::{ALL_CHANGE_EVENTS, BusEvent};
use crate::codes::{base36, base64_encode, random_bytes};
use crate::events::change_channel;
use crate::state::{Shared, World};

/// The cookie CometD gives each browser; every later request must send it back.
pub const BROWSER_COOKIE: &str = "BAYEUX_BROWSER";
/// Salesforce's load balancer cookie, which pins a client to the server that knows it.
pub const STREAM_COOKIE: &str = "sfdc-stream";
/// `EventUuid` is delivered from API version 52.0 on (the platform events guide).
const EVENT_UUID_SINCE: u32 = 52;

/// What the request brought besides its messages.
pub struct Ctx {
    pub authenticated: bool,
    /// `BAYEUX_BROWSER` and `sfdc-stream` as the request sent them.
    pub browser: Option<String>,
    pub stream: Option<String>,
    /// The API version of the URL, `/cometd/62.0` → 62.
    pub version: u32,
    /// `Set-Cookie` values to send with the answer.
    pub set_cookies: Vec<String>,
    /// The answer carries events and must be cut (the fault).
    pub cut: bool,
    /// The network went away while a connect was held: answer nothing.
    pub offline: bool,
}

/// Answers each message in order; the events a connect takes come before its reply.
pub fn exchange<'a>(
    shared: &'a Shared,
    mut world: MutexGuard<'a, World>,
    ctx: &mut Ctx,
    messages: &[Value],
) -> (MutexGuard<'a, World>, Vec<Value>) {
    let mut replies = Vec::new();
    world.streaming.expire(Instant::now());
    for message in messages {
        let channel = message.get("channel").and_then(Value::as_str).unwrap_or("");
        let id = message.get("id").cloned();
        let reply = match channel {
            "/meta/handshake" => handshake(&mut world, ctx),
            "/meta/connect" => {
                let (back, mut answered) = connect(shared, world, ctx, message);
                world = back;
                let last = answered.pop();
                replies.extend(answered);
                match last {
                    Some(reply) => reply,
                    None => continue,
                }
            }
            "/meta/subscribe" | "/meta/unsubscribe" | "/meta/disconnect" => {
                match known_client(&mut world, ctx, channel, message) {
                    Err(refusal) => refusal,
                    Ok(client_id) => match channel {
                        "/meta/subscribe" => subscribe(&mut world, &client_id, message),
                        "/meta/unsubscribe" => unsubscribe(&mut world, &client_id, message),
                        _ => disconnect(shared, &mut world, &client_id),
                    },
                }
            }
            "" => json!({"successful": false, "error": "400::Channel name not specified"}),
            // Salesforce's clients only subscribe: publishing from CometD is refused.
            other => json!({"channel": other, "successful": false, "error": "403::Publish denied"}),
        };
        replies.push(with_id(reply, id));
    }
    (world, replies)
}

fn with_id(mut reply: Value, id: Option<Value>) -> Value {
    if let (Some(id), Some(map)) = (id, reply.as_object_mut()) {
        map.insert("id".into(), id);
    }
    reply
}

fn handshake(world: &mut World, ctx: &mut Ctx) -> Value {
    let streaming = &mut world.streaming;
    let denied = |reason: &str| {
        json!({
            "ext": {"sfdc": {"failureReason": reason}, "replay": true, "payload.format": true},
            "advice": {"reconnect": "none"},
            "channel": "/meta/handshake",
            "error": "403::Handshake denied",
            "successful": false,
        })
    };
    if !ctx.authenticated {
        streaming.stats.denied_handshakes += 1;
        return denied("401::Authentication invalid");
    }
    if !streaming.has_room() {
        streaming.stats.denied_handshakes += 1;
        streaming.stats.limit_refusals += 1;
        return denied("403::Organization concurrent user limit exceeded");
    }
    // CometD keeps a browser's cookie across handshakes and sets one only when missing;
    // the load balancer likewise keeps the server the cookie already names.
    let browser = match &ctx.browser {
        Some(browser) => browser.clone(),
        None => {
            let value = format!("{}-{}", base36(4), base36(24));
            ctx.set_cookies.push(format!(
                "{BROWSER_COOKIE}={value}; Path=/; Secure; HttpOnly"
            ));
            ctx.browser = Some(value.clone());
            value
        }
    };
    let stream = match &ctx.stream {
        Some(stream) => stream.clone(),
        None => new_stream_cookie(ctx),
    };
    let client_id = streaming.add(browser, stream, Instant::now());
    json!({
        "ext": {"replay": true, "payload.format": true},
        "minimumVersion": "1.0",
        "clientId": client_id,
        "supportedConnectionTypes": ["long-polling"],
        "channel": "/meta/handshake",
        "version": "1.0",
        "successful": true,
    })
}

/// A fresh `sfdc-stream` value, sent back in `Set-Cookie`.
fn new_stream_cookie(ctx: &mut Ctx) -> String {
    let value = format!("!{}", base64_encode(&random_bytes(60)));
    ctx.set_cookies.push(format!(
        "{STREAM_COOKIE}={value}; Path=/; Secure; SameSite=None"
    ));
    ctx.stream = Some(value.clone());
    value
}

/// The message's client if the session is good and the client is known here, with its
/// cookies; else the reply that refuses it.
fn known_client(
    world: &mut World,
    ctx: &mut Ctx,
    channel: &str,
    message: &Value,
) -> Result<String, Value> {
    let client_id = message
        .get("clientId")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !ctx.authenticated {
        return Err(json!({
            "clientId": client_id,
            "advice": {"reconnect": "none", "interval": 0},
            "channel": channel,
            "error": "401::Authentication invalid",
            "successful": false,
        }));
    }
    let unknown = json!({
        "advice": {"interval": 0, "reconnect": "handshake"},
        "channel": channel,
        "error": "403::Unknown client",
        "successful": false,
    });
    let Some(client) = world.streaming.get(client_id) else {
        return Err(unknown);
    };
    let Some(browser) = &ctx.browser else {
        return Err(json!({
            "clientId": client_id,
            "advice": {"interval": 0, "reconnect": "handshake"},
            "channel": channel,
            "error": format!("400::Client {client_id} has established a session, but no {BROWSER_COOKIE} cookie present"),
            "successful": false,
        }));
    };
    // Without its sfdc-stream cookie, or with another client's cookies, the request
    // lands on a server that does not know the client.
    let same_server = ctx.stream.as_deref() == Some(client.stream.as_str());
    if *browser != client.browser || !same_server {
        if ctx.stream.is_none() {
            new_stream_cookie(ctx);
        }
        return Err(unknown);
    }
    let client_id = client_id.to_string();
    if let Some(client) = world.streaming.get_mut(&client_id) {
        client.last_seen = Instant::now();
    }
    Ok(client_id)
}

/// Whether the org has this channel: a platform event's (the name's case matters), an
/// object's change events, or all of them.
fn channel_exists(world: &World, channel: &str) -> bool {
    if channel == ALL_CHANGE_EVENTS {
        return true;
    }
    if let Some(event) = channel.strip_prefix("/event/") {
        return world
            .schema
            .objects
            .iter()
            .any(|o| o.platform_event && o.name == event);
    }
    channel.starts_with("/data/")
        && world
            .schema
            .objects
            .iter()
            .any(|o| !o.platform_event && change_channel(&o.name) == channel)
}

fn subscribe(world: &mut World, client_id: &str, message: &Value) -> Value {
    let subscription = message.get("subscription").and_then(Value::as_str);
    let mut reply = json!({
        "clientId": client_id,
        "channel": "/meta/subscribe",
        "subscription": subscription,
        "successful": false,
    });
    let refuse = |mut reply: Value, error: String| {
        reply["error"] = Value::String(error);
        reply
    };
    let Some(channel) = subscription.filter(|s| !s.is_empty()) else {
        return refuse(reply, "400::Channel name not specified".into());
    };
    if !channel.starts_with('/') {
        return refuse(
            reply,
            "400::Channel subscriptions must start with a leading '/'".into(),
        );
    }
    if !channel_exists(world, channel) {
        return refuse(
            reply,
            format!("400::The channel you requested to subscribe to does not exist {{{channel}}}"),
        );
    }
    // No replay extension for the channel means new events only, as on Salesforce.
    let asked = message
        .get("ext")
        .and_then(|ext| ext.get("replay"))
        .and_then(|replay| replay.get(channel))
        .map(replay_value);
    world.bus.expire(Instant::now());
    let position = match asked {
        None | Some(Some(-1)) => world.bus.last_replay(),
        Some(Some(-2)) => 0,
        Some(Some(id)) if id > 0 && world.bus.retained(channel, id) => id,
        Some(given) => {
            world.streaming.stats.invalid_replays += 1;
            let shown = given.map_or_else(|| "null".to_string(), |id| id.to_string());
            return refuse(
                reply,
                format!(
                    "400::The replayId {{{shown}}} you provided was invalid. Please provide a valid ID, -2 to replay all events, or -1 to replay only new events."
                ),
            );
        }
    };
    if let Some(client) = world.streaming.get_mut(client_id) {
        client.subscriptions.insert(channel.to_string(), position);
    }
    world.streaming.stats.subscribes += 1;
    reply["successful"] = Value::Bool(true);
    reply
}

/// A replay id as a number, whether the client sent `1234` or `"1234"`.
fn replay_value(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn unsubscribe(world: &mut World, client_id: &str, message: &Value) -> Value {
    let subscription = message.get("subscription").and_then(Value::as_str);
    if let (Some(client), Some(channel)) = (world.streaming.get_mut(client_id), subscription) {
        client.subscriptions.remove(channel);
    }
    world.streaming.stats.unsubscribes += 1;
    json!({
        "clientId": client_id,
        "channel": "/meta/unsubscribe",
        "subscription": subscription,
        "successful": true,
    })
}

fn disconnect(shared: &Shared, world: &mut World, client_id: &str) -> Value {
    world.streaming.remove(client_id);
    world.streaming.stats.disconnects += 1;
    // A connect of this client held elsewhere ends now.
    shared.wake();
    json!({"clientId": client_id, "channel": "/meta/disconnect", "successful": true})
}

/// A connect: refused, or held until an event arrives, the hold time passes, a newer
/// connect of the same client comes, or the simulator stops. Returns the event messages
/// then the reply; nothing when the network went away meanwhile.
fn connect<'a>(
    shared: &'a Shared,
    mut world: MutexGuard<'a, World>,
    ctx: &mut Ctx,
    message: &Value,
) -> (MutexGuard<'a, World>, Vec<Value>) {
    const CHANNEL: &str = "/meta/connect";
    let client_id = match known_client(&mut world, ctx, CHANNEL, message) {
        Ok(id) => id,
        Err(refusal) => return (world, vec![refusal]),
    };
    let kind = message.get("connectionType").and_then(Value::as_str);
    if let Some(kind) = kind.filter(|k| *k != "long-polling") {
        let error = format!("400::Invalid connection type {{{kind}}}");
        let reply =
            json!({"clientId": client_id, "channel": CHANNEL, "error": error, "successful": false});
        return (world, vec![reply]);
    }
    let streaming = &mut world.streaming;
    streaming.stats.connects += 1;
    let sequence = streaming.stats.connects;
    let forget = streaming.knobs.forget_every;
    if forget > 0 && sequence.is_multiple_of(u64::from(forget)) {
        streaming.remove(&client_id);
        streaming.stats.forgotten += 1;
        let reply = json!({
            "advice": {"interval": 0, "reconnect": "handshake"},
            "channel": CHANNEL,
            "error": "403::Unknown client",
            "successful": false,
        });
        return (world, vec![reply]);
    }
    let hold = streaming.knobs.hold;
    let asks_now = message
        .get("advice")
        .and_then(|a| a.get("timeout"))
        .and_then(Value::as_u64)
        == Some(0);
    let Some(client) = streaming.get_mut(&client_id) else {
        return (world, Vec::new());
    };
    // The first connect after a handshake answers at once, with the advice; the later
    // ones are held (what Salesforce's clients log).
    let first = !client.connected;
    let at_once = first || asks_now;
    client.connected = true;
    client.connects += 1;
    client.newest_connect = sequence;
    client.holding += 1;
    let deadline = Instant::now() + hold;
    enum End {
        Ready,
        Gone,
        Superseded,
    }
    let end = loop {
        let stopping = world.streaming.stopping || shared.delivery.offline();
        let bus = &world.bus;
        let end = match world.streaming.get(&client_id) {
            None => Some(End::Gone),
            Some(c) if c.newest_connect != sequence => Some(End::Superseded),
            Some(c) if at_once || stopping || c.has_pending(bus) => Some(End::Ready),
            Some(_) => None,
        };
        if let Some(end) = end {
            break end;
        }
        let now = Instant::now();
        if now >= deadline {
            break End::Ready;
        }
        world = shared.wait_world(world, deadline - now);
    };
    if let Some(client) = world.streaming.get_mut(&client_id) {
        client.holding -= 1;
        client.last_seen = Instant::now();
    }
    if shared.delivery.offline() {
        ctx.offline = true;
        return (world, Vec::new());
    }
    let mut replies = Vec::new();
    match end {
        End::Gone => {
            replies.push(json!({
                "advice": {"interval": 0, "reconnect": "handshake"},
                "channel": CHANNEL,
                "error": "403::Unknown client",
                "successful": false,
            }));
            return (world, replies);
        }
        End::Superseded => {}
        End::Ready => {
            world.bus.expire(Instant::now());
            let World { streaming, bus, .. } = &mut *world;
            let stopping = streaming.stopping;
            let taken = match streaming.get_mut(&client_id) {
                Some(client) if !stopping => client.take(bus),
                _ => Vec::new(),
            };
            if !taken.is_empty() {
                let stats = &mut streaming.stats;
                stats.events_delivered += taken.len() as u64;
                stats.event_replies += 1;
                let cut = streaming.knobs.cut_every;
                if cut > 0 && stats.event_replies.is_multiple_of(u64::from(cut)) {
                    stats.cut_replies += 1;
                    ctx.cut = true;
                }
            }
            replies.extend(taken.iter().map(|event| event_message(event, ctx.version)));
        }
    }
    let mut reply = json!({"clientId": client_id, "channel": CHANNEL, "successful": true});
    if first {
        let timeout = u64::try_from(hold.as_millis()).unwrap_or(u64::MAX);
        reply["advice"] = json!({"interval": 0, "timeout": timeout, "reconnect": "retry"});
    }
    replies.push(reply);
    (world, replies)
}

/// An event as the Streaming API delivers it.
fn event_message(event: &BusEvent, version: u32) -> Value {
    let mut header = Map::new();
    header.insert("replayId".into(), json!(event.replay_id));
    if let Some(uuid) = event.uuid.as_ref().filter(|_| version >= EVENT_UUID_SINCE) {
        header.insert("EventUuid".into(), Value::String(uuid.clone()));
    }
    json!({
        "channel": event.channel,
        "data": {"schema": event.schema, "payload": event.payload, "event": header},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_ids_may_come_as_numbers_or_text() {
        assert_eq!(replay_value(&json!(-2)), Some(-2));
        assert_eq!(replay_value(&json!("1234")), Some(1234));
        assert_eq!(replay_value(&json!(1.5)), None);
        assert_eq!(replay_value(&json!(null)), None);
    }

    #[test]
    fn event_uuids_are_delivered_from_v52() {
        let event = BusEvent {
            channel: "/event/A__e".into(),
            replay_id: 1003,
            uuid: Some("u".into()),
            schema: "s".into(),
            payload: json!({"X__c": 1}),
            published: Instant::now(),
        };
        let new = event_message(&event, 62);
        assert_eq!(
            new["data"]["event"],
            json!({"replayId": 1003, "EventUuid": "u"})
        );
        assert_eq!(new["data"]["payload"]["X__c"], 1);
        let old = event_message(&event, 51);
        assert_eq!(old["data"]["event"], json!({"replayId": 1003}));
    }
}
