//! Bayeux 1.0 as Salesforce's Streaming API speaks it (CometD, long polling): the messages a
//! client sends, and what the server's replies mean. docs/listen.md, "The wire", has the
//! exchange and the errors with their sources.
//!
//! - Requests: `/meta/handshake` (asking for the replay extension), `/meta/subscribe` with
//!   `ext.replay` (`{channel: position}`: -1 new events only, -2 everything retained, a replay
//!   id: the events after it), `/meta/connect` (long polling), `/meta/disconnect`.
//! - Replies: a JSON array of messages. Event messages (any channel not under `/meta/`) carry
//!   `data.event.replayId`, `data.event.EventUuid` and `data.payload` (platform events), or
//!   `data.payload.ChangeEventHeader` (change events). Meta replies say `successful`, and when
//!   not, `error` (`403::Unknown client`, `401::Authentication invalid`,
//!   `400::The replayId {N} you provided was invalid…`,
//!   `403::Organization concurrent user limit exceeded`) and `advice.reconnect`.
//!
//! Pure: no I/O, no clock. Payloads are kept as the exact text the server sent (values are not
//! rebuilt through a JSON tree), so a command's numbers reach its program unchanged.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde_json::value::RawValue;

use crate::error::Error;
use crate::json::{self, Object};

/// Replay from the newest event on: only what is published after the subscription.
pub const NEW_ONLY: i64 = -1;
/// Replay everything the org still retains (72 hours).
pub const ALL_RETAINED: i64 = -2;

/// What the server advises after a reply (Bayeux `advice`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reconnect {
    /// Send the next `/meta/connect` (after `interval`).
    Retry,
    /// The client is unknown now: handshake and subscribe again.
    Handshake,
    /// Do not reconnect (the session is no longer valid).
    None,
}

/// A reply's advice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Advice {
    /// Whether and how to reconnect.
    pub reconnect: Option<Reconnect>,
    /// How long the server holds a `/meta/connect` (ms).
    pub timeout_ms: Option<u64>,
    /// How long to wait before the next connect (ms).
    pub interval_ms: Option<u64>,
}

/// A failed meta reply, classified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `403::Unknown client`: the server forgot this client (a silence, a missing cookie, or
    /// just hours passed). Handshake again, and subscribe again from the stored position.
    UnknownClient,
    /// `401::…`: the session (access token) is no longer valid. Renew it, then handshake.
    Session,
    /// `400::The replayId {N} you provided was invalid`: the position is older than what the
    /// org retains. Subscribe with [`ALL_RETAINED`] (what was already run is not run again).
    InvalidReplay {
        /// The id the server refused, when it says.
        replay_id: Option<i64>,
    },
    /// `403::Organization concurrent user limit exceeded`: too many streaming clients in the
    /// org. Back off; never a handshake loop.
    OrgLimit,
    /// Anything else, with the server's words.
    Other(String),
}

impl Refusal {
    /// What it means, in words for the log and `doctor`.
    pub fn describe(&self) -> String {
        match self {
            Refusal::OrgLimit => "the org's concurrent streaming client limit is reached".into(),
            Refusal::Session => "the session was refused".into(),
            Refusal::InvalidReplay { .. } => "the replay position was refused".into(),
            Refusal::UnknownClient => "the client was unknown".into(),
            Refusal::Other(text) => text.clone(),
        }
    }

    /// Classifies a Bayeux `error` string (`CODE::text`).
    pub fn of(error: &str) -> Refusal {
        let (code, text) = error.split_once("::").unwrap_or(("", error));
        let text_lower = text.to_ascii_lowercase();
        // A client whose cookies went missing is as good as unknown: shake hands again.
        if text_lower.contains("unknown client") || text_lower.contains("no bayeux_browser cookie")
        {
            Refusal::UnknownClient
        } else if code == "401" {
            Refusal::Session
        } else if text_lower.contains("replayid") && text_lower.contains("invalid") {
            let replay_id = text
                .split(|c: char| !(c.is_ascii_digit() || c == '-'))
                .find_map(|w| w.parse::<i64>().ok());
            Refusal::InvalidReplay { replay_id }
        } else if text_lower.contains("concurrent user limit") {
            Refusal::OrgLimit
        } else {
            Refusal::Other(crate::text::server_text(error).into_owned())
        }
    }
}

/// One event as delivered, with its payload's exact text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered {
    /// The channel it came on.
    pub channel: String,
    /// Its replay id (growing, not contiguous).
    pub replay_id: i64,
    /// `EventUuid` (platform events), or the change event's `transactionKey` and sequence
    /// number, which identify it across redeliveries as well; `None` when the event has neither.
    pub uuid: Option<String>,
    /// `data.payload` as sent.
    pub payload: String,
}

/// A meta reply (`/meta/handshake`, `/meta/subscribe`, `/meta/connect`, `/meta/disconnect`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaReply {
    /// The meta channel (`/meta/connect`).
    pub channel: String,
    /// Whether it succeeded.
    pub successful: bool,
    /// The client's id (handshake).
    pub client_id: Option<String>,
    /// The channel subscribed to (subscribe).
    pub subscription: Option<String>,
    /// Why it failed, classified.
    pub refusal: Option<Refusal>,
    /// The server's advice.
    pub advice: Advice,
}

/// A reply body: its events, in order, and its meta replies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    /// The events, in the order sent.
    pub events: Vec<Delivered>,
    /// The meta replies.
    pub meta: Vec<MetaReply>,
    /// Only the beginning of a longer reply was read ([`parse_beginning`]): what came after
    /// its last whole message was not received.
    pub cut: bool,
}

impl Parsed {
    /// The meta reply on `channel`, if the body has one.
    pub fn meta_on(&self, channel: &str) -> Option<&MetaReply> {
        self.meta.iter().find(|m| m.channel == channel)
    }
}

/// Reads a reply body. A body that is not a JSON array of messages is a server error.
pub fn parse(body: &[u8]) -> Result<Parsed, Error> {
    let messages = core::str::from_utf8(body)
        .map_err(|e| e.to_string())
        .and_then(|text| Object::parse_array(text).map_err(|e| e.to_string()))
        .map_err(|e| {
            Error::server(format!(
                "the Streaming API answered something that is not Bayeux JSON ({e})"
            ))
        })?;
    let mut parsed = Parsed::default();
    for m in messages {
        let channel = m.string("channel").unwrap_or_default();
        if channel.starts_with("/meta/") {
            // Salesforce puts the real reason of a refused handshake in ext.sfdc.failureReason
            // (`403::Handshake denied` in `error`, `403::Organization concurrent user limit
            // exceeded` or `401::Authentication invalid` there).
            let reason = m
                .object("ext")
                .and_then(|e| e.object("sfdc"))
                .and_then(|s| s.string("failureReason"))
                .or_else(|| m.string("error"));
            parsed.meta.push(MetaReply {
                successful: m.bool("successful").unwrap_or(false),
                client_id: m.string("clientId"),
                subscription: m.string("subscription"),
                refusal: reason.as_deref().map(Refusal::of),
                advice: m.object("advice").map(|a| advice(&a)).unwrap_or_default(),
                channel,
            });
        } else if let Some(data) = m.raw("data") {
            parsed.events.push(event(&channel, data)?);
        }
    }
    Ok(parsed)
}

/// Reads the beginning of a reply longer than what was read: its whole messages, the one cut
/// short and the rest left out, with [`Parsed::cut`] set. Nothing whole: a server error. The
/// bytes are cut in place (no second copy of a reply of megabytes).
pub fn parse_beginning(mut beginning: Vec<u8>) -> Result<Parsed, Error> {
    let end = whole_messages(&beginning);
    if end == 0 {
        return Err(Error::server(format!(
            "the Streaming API sent a message larger than the {} bytes read of a reply",
            beginning.len()
        )));
    }
    beginning.truncate(end);
    beginning.push(b']');
    let mut parsed = parse(&beginning)?;
    parsed.cut = true;
    Ok(parsed)
}

/// How many bytes of `body` (the beginning of a JSON array of objects) hold only whole
/// messages: up to the end of the last object closed at the array's level, 0 if none.
fn whole_messages(body: &[u8]) -> usize {
    let (mut depth, mut in_string, mut escaped, mut end) = (0u32, false, false, 0);
    for (i, &b) in body.iter().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => depth += 1,
            b']' | b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 1 && b == b'}' {
                    end = i + 1;
                }
            }
            _ => {}
        }
    }
    end
}

fn advice(raw: &Object) -> Advice {
    Advice {
        reconnect: raw.string("reconnect").map(|r| match r.as_str() {
            "handshake" => Reconnect::Handshake,
            "none" => Reconnect::None,
            _ => Reconnect::Retry,
        }),
        timeout_ms: raw.uint("timeout"),
        interval_ms: raw.uint("interval"),
    }
}

fn event(channel: &str, data: &RawValue) -> Result<Delivered, Error> {
    let bad = |what: &str| {
        Error::server(format!(
            "an event on {} has no {what}",
            crate::text::server_text(channel)
        ))
    };
    let data = Object::parse(data.get()).map_err(|_| bad("data object"))?;
    let payload = data.raw("payload").ok_or_else(|| bad("payload"))?;
    let event = data.object("event").ok_or_else(|| bad("event header"))?;
    let replay_id = event.int("replayId").ok_or_else(|| bad("replayId"))?;
    let uuid = event.string("EventUuid").or_else(|| {
        // Change events: the transaction and the change's place in it identify one.
        let header = Object::parse(payload.get())
            .ok()?
            .object("ChangeEventHeader")?;
        Some(format!(
            "{}:{}",
            header.string("transactionKey")?,
            header.uint("sequenceNumber").unwrap_or(0)
        ))
    });
    Ok(Delivered {
        channel: channel.to_string(),
        replay_id,
        uuid,
        payload: payload.get().to_string(),
    })
}

/// Numbers the messages of one client, as Bayeux asks (`id`).
#[derive(Default)]
pub struct Ids(u64);

impl Ids {
    fn next(&mut self) -> u64 {
        self.0 += 1;
        self.0
    }
}

/// `/meta/handshake`, asking for the replay extension.
pub fn handshake(ids: &mut Ids) -> String {
    format!(
        r#"[{{"channel":"/meta/handshake","version":"1.0","minimumVersion":"1.0","supportedConnectionTypes":["long-polling"],"ext":{{"replay":true}},"id":"{}"}}]"#,
        ids.next()
    )
}

/// `/meta/subscribe` to `channel` from `position` (a replay id, [`NEW_ONLY`] or
/// [`ALL_RETAINED`]).
pub fn subscribe(ids: &mut Ids, client_id: &str, channel: &str, position: i64) -> String {
    let client_id = json_string(client_id);
    let channel = json_string(channel);
    format!(
        r#"[{{"channel":"/meta/subscribe","clientId":{client_id},"subscription":{channel},"ext":{{"replay":{{{channel}:{position}}}}},"id":"{}"}}]"#,
        ids.next()
    )
}

/// `/meta/connect`, long polling.
pub fn connect(ids: &mut Ids, client_id: &str) -> String {
    format!(
        r#"[{{"channel":"/meta/connect","clientId":{},"connectionType":"long-polling","id":"{}"}}]"#,
        json_string(client_id),
        ids.next()
    )
}

/// `/meta/disconnect`: frees the org's streaming slot at once.
pub fn disconnect(ids: &mut Ids, client_id: &str) -> String {
    format!(
        r#"[{{"channel":"/meta/disconnect","clientId":{},"id":"{}"}}]"#,
        json_string(client_id),
        ids.next()
    )
}

fn json_string(s: &str) -> String {
    let mut quoted = String::new();
    json::quote(&mut quoted, s);
    quoted
}

/// The channel as Salesforce writes it: a bare `Device_Command__e` is the platform event's
/// channel `/event/Device_Command__e`; `/event/…`, `/data/…` and `/topic/…` are kept. Only API
/// names are accepted (the name goes into the subscription).
pub fn channel(name: &str) -> Result<String, Error> {
    let name = name.trim();
    let full = if name.starts_with('/') {
        name.to_string()
    } else {
        format!("/event/{name}")
    };
    let mut parts = full.trim_start_matches('/').splitn(2, '/');
    let (kind, rest) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let api_name = crate::outbox::input::api_name(rest, "the channel").is_ok();
    if !matches!(kind, "event" | "data" | "topic") || !api_name {
        return Err(Error::config(format!(
            "'{name}' is not a channel: use an event's API name (Device_Command__e), \
             /event/NAME__e, /data/NAMEChangeEvent or /data/ChangeEvents"
        )));
    }
    Ok(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_keep_their_payload_text_and_meta_replies_their_advice() {
        let body = br#"[
          {"channel":"/event/Device_Command__e","data":{"schema":"S1","payload":{"Device_Id__c":"GW-1","Value__c":123456789.123456789,"CreatedDate":"2026-12-07T06:24:55.000+0000"},"event":{"replayId":1008,"EventUuid":"28c5-1"}}},
          {"channel":"/meta/connect","successful":true,"advice":{"reconnect":"retry","timeout":110000,"interval":0},"id":"3"}
        ]"#;
        let parsed = parse(body).unwrap();
        assert_eq!(parsed.events.len(), 1);
        let e = &parsed.events[0];
        assert_eq!((e.replay_id, e.uuid.as_deref()), (1008, Some("28c5-1")));
        assert!(e.payload.contains("123456789.123456789"), "{}", e.payload);
        let connect = parsed.meta_on("/meta/connect").unwrap();
        assert!(connect.successful);
        assert_eq!(connect.advice.reconnect, Some(Reconnect::Retry));
        assert_eq!(connect.advice.timeout_ms, Some(110_000));
    }

    #[test]
    fn change_events_are_identified_by_their_transaction() {
        let body = br#"[{"channel":"/data/Device__ChangeEvent","data":{"schema":"S","payload":{"ChangeEventHeader":{"entityName":"Device__c","recordIds":["a01"],"changeType":"UPDATE","transactionKey":"tx-9","sequenceNumber":2},"Brightness__c":70},"event":{"replayId":55}}}]"#;
        let e = &parse(body).unwrap().events[0];
        assert_eq!(e.uuid.as_deref(), Some("tx-9:2"));
    }

    #[test]
    fn refusals_are_classified_by_their_code_and_words() {
        assert_eq!(Refusal::of("403::Unknown client"), Refusal::UnknownClient);
        assert_eq!(Refusal::of("401::Authentication invalid"), Refusal::Session);
        assert_eq!(
            Refusal::of(
                "400::The replayId {77} you provided was invalid.  Please provide a valid ID, -2 \
                 to replay all events, or -1 to replay only new events."
            ),
            Refusal::InvalidReplay {
                replay_id: Some(77)
            }
        );
        assert_eq!(
            Refusal::of("403::Organization concurrent user limit exceeded"),
            Refusal::OrgLimit
        );
        assert!(matches!(Refusal::of("500::boom"), Refusal::Other(_)));
        assert_eq!(
            Refusal::of(
                "400::Client 1x2y has established a session, but no BAYEUX_BROWSER cookie present"
            ),
            Refusal::UnknownClient
        );
    }

    #[test]
    fn a_refused_handshake_is_classified_by_its_failure_reason() {
        let body = br#"[{"channel":"/meta/handshake","successful":false,"error":"403::Handshake denied","ext":{"sfdc":{"failureReason":"403::Organization concurrent user limit exceeded"}},"advice":{"reconnect":"none"}}]"#;
        let parsed = parse(body).unwrap();
        assert_eq!(
            parsed.meta_on("/meta/handshake").unwrap().refusal,
            Some(Refusal::OrgLimit)
        );
        let body = br#"[{"channel":"/meta/handshake","successful":false,"error":"403::Handshake denied","ext":{"sfdc":{"failureReason":"401::Authentication invalid"}}}]"#;
        assert_eq!(parse(body).unwrap().meta[0].refusal, Some(Refusal::Session));
    }

    #[test]
    fn requests_are_one_message_arrays_with_the_replay_extension() {
        let mut ids = Ids::default();
        let h: serde_json::Value = serde_json::from_str(&handshake(&mut ids)).unwrap();
        assert_eq!(h[0]["ext"]["replay"], true);
        let s: serde_json::Value =
            serde_json::from_str(&subscribe(&mut ids, "c\"1", "/event/X__e", 42)).unwrap();
        assert_eq!(s[0]["clientId"], "c\"1");
        assert_eq!(s[0]["ext"]["replay"]["/event/X__e"], 42);
        assert_eq!(s[0]["id"], "2");
        let c: serde_json::Value = serde_json::from_str(&connect(&mut ids, "c")).unwrap();
        assert_eq!(c[0]["connectionType"], "long-polling");
    }

    #[test]
    fn channels_are_api_names() {
        assert_eq!(
            channel("Device_Command__e").unwrap(),
            "/event/Device_Command__e"
        );
        assert_eq!(
            channel("/data/Device__ChangeEvent").unwrap(),
            "/data/Device__ChangeEvent"
        );
        for bad in [
            "",
            "/event/",
            "/event/a b",
            "/other/X__e",
            "/event/../x",
            "1abc",
        ] {
            assert!(channel(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_beginning_of_a_longer_reply_gives_its_whole_messages_and_says_it_was_cut() {
        let message = |n: u32| {
            format!(
                r#"{{"channel":"/event/E__e","data":{{"payload":{{"Text__c":"a \"}}]{{[\\ {n}"}},"event":{{"replayId":{n},"EventUuid":"u{n}"}}}}}}"#
            )
        };
        let whole = format!("[{},{},{}]", message(1), message(2), message(3));
        assert!(!parse(whole.as_bytes()).unwrap().cut);
        // Cut anywhere in the third message (inside its escaped quote, brackets, braces and
        // backslash too): the first two, cut.
        let third = whole.rfind(",{").unwrap() + 1;
        for end in third..whole.len() - 1 {
            let parsed = parse_beginning(whole.as_bytes()[..end].to_vec()).unwrap();
            let ids: Vec<i64> = parsed.events.iter().map(|e| e.replay_id).collect();
            assert_eq!(ids, [1, 2], "cut at {end}");
            assert!(parsed.cut);
            assert!(parsed.events[1].payload.contains(r#"a \"}]{[\\ 2"#));
        }
        // Cut inside the first: nothing whole, a server error (a message over the limit).
        let e = parse_beginning(whole.as_bytes()[..20].to_vec()).unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Server);
        assert!(e.message().contains("larger than the 20 bytes"), "{e}");
    }

    #[test]
    fn a_body_that_is_not_bayeux_is_a_server_error() {
        assert_eq!(
            parse(b"<html>").unwrap_err().kind(),
            crate::error::ErrorKind::Server
        );
        assert!(parse(br#"[{"channel":"/event/X__e","data":{"payload":{}}}]"#).is_err());
    }
}
