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

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::Error;

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
}

impl Parsed {
    /// The meta reply on `channel`, if the body has one.
    pub fn meta_on(&self, channel: &str) -> Option<&MetaReply> {
        self.meta.iter().find(|m| m.channel == channel)
    }
}

#[derive(Deserialize)]
struct RawMessage<'a> {
    #[serde(borrow)]
    channel: Option<&'a str>,
    successful: Option<bool>,
    #[serde(rename = "clientId")]
    client_id: Option<String>,
    subscription: Option<String>,
    error: Option<String>,
    advice: Option<RawAdvice>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    ext: Option<RawExt>,
}

#[derive(Deserialize)]
struct RawExt {
    sfdc: Option<RawSfdc>,
}

/// Salesforce puts the real reason of a refused handshake here (`403::Handshake denied` in
/// `error`, `403::Organization concurrent user limit exceeded` or `401::Authentication invalid`
/// in `ext.sfdc.failureReason`).
#[derive(Deserialize)]
struct RawSfdc {
    #[serde(rename = "failureReason")]
    failure_reason: Option<String>,
}

#[derive(Deserialize)]
struct RawAdvice {
    reconnect: Option<String>,
    timeout: Option<u64>,
    interval: Option<u64>,
}

#[derive(Deserialize)]
struct RawData<'a> {
    #[serde(borrow)]
    payload: Option<&'a RawValue>,
    event: Option<RawEvent>,
}

#[derive(Deserialize)]
struct RawEvent {
    #[serde(rename = "replayId")]
    replay_id: Option<i64>,
    #[serde(rename = "EventUuid")]
    event_uuid: Option<String>,
}

#[derive(Deserialize)]
struct ChangeHeaderOnly {
    #[serde(rename = "ChangeEventHeader")]
    header: Option<ChangeHeader>,
}

#[derive(Deserialize)]
struct ChangeHeader {
    #[serde(rename = "transactionKey")]
    transaction_key: Option<String>,
    #[serde(rename = "sequenceNumber")]
    sequence_number: Option<u64>,
}

/// Reads a reply body. A body that is not a JSON array of messages is a server error.
pub fn parse(body: &[u8]) -> Result<Parsed, Error> {
    let messages: Vec<RawMessage> = serde_json::from_slice(body).map_err(|e| {
        Error::server(format!(
            "the Streaming API answered something that is not Bayeux JSON ({e})"
        ))
    })?;
    let mut parsed = Parsed::default();
    for m in messages {
        let channel = m.channel.unwrap_or_default();
        if channel.starts_with("/meta/") {
            parsed.meta.push(MetaReply {
                channel: channel.to_string(),
                successful: m.successful.unwrap_or(false),
                client_id: m.client_id,
                subscription: m.subscription,
                refusal: m
                    .ext
                    .and_then(|e| e.sfdc)
                    .and_then(|s| s.failure_reason)
                    .or(m.error)
                    .as_deref()
                    .map(Refusal::of),
                advice: m.advice.map(advice).unwrap_or_default(),
            });
        } else if let Some(data) = m.data {
            parsed.events.push(event(channel, data)?);
        }
    }
    Ok(parsed)
}

fn advice(raw: RawAdvice) -> Advice {
    Advice {
        reconnect: raw.reconnect.as_deref().map(|r| match r {
            "handshake" => Reconnect::Handshake,
            "none" => Reconnect::None,
            _ => Reconnect::Retry,
        }),
        timeout_ms: raw.timeout,
        interval_ms: raw.interval,
    }
}

fn event(channel: &str, data: &RawValue) -> Result<Delivered, Error> {
    let bad = |what: &str| {
        Error::server(format!(
            "an event on {} has no {what}",
            crate::text::server_text(channel)
        ))
    };
    let data: RawData = serde_json::from_str(data.get()).map_err(|_| bad("data object"))?;
    let payload = data.payload.ok_or_else(|| bad("payload"))?;
    let event = data.event.ok_or_else(|| bad("event header"))?;
    let replay_id = event.replay_id.ok_or_else(|| bad("replayId"))?;
    let uuid = event.event_uuid.or_else(|| {
        // Change events: the transaction and the change's place in it identify one.
        let header = serde_json::from_str::<ChangeHeaderOnly>(payload.get())
            .ok()?
            .header?;
        Some(format!(
            "{}:{}",
            header.transaction_key?,
            header.sequence_number.unwrap_or(0)
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
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
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
    fn a_body_that_is_not_bayeux_is_a_server_error() {
        assert_eq!(
            parse(b"<html>").unwrap_err().kind(),
            crate::error::ErrorKind::Server
        );
        assert!(parse(br#"[{"channel":"/event/X__e","data":{"payload":{}}}]"#).is_err());
    }
}
