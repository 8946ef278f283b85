//! Doctor's Streaming API check: with the session the refresh check got, one handshake, one
//! subscription to each channel the device would listen to (`--listen`, and `--desired`'s
//! change events) from `-1` (nothing is delivered, nothing runs), and a disconnect that frees
//! the org's streaming client at once. Each refusal is said with what the admin changes.

use super::{Check, Level};
use crate::call::Caller;
use crate::http::{HttpConfig, UreqTransport};
use crate::listen::REPLY_LIMIT;
use crate::listen::bayeux::{NEW_ONLY, Refusal};
use crate::listen::stream::{Failure, Stream};

/// The check, named `streaming`.
pub fn check(
    sessions: &mut dyn Caller,
    http: &HttpConfig,
    api_version: &str,
    channels: &[String],
) -> Check {
    let transport = match UreqTransport::new(http) {
        Ok(t) => t,
        Err(e) => return Check::new("streaming", Level::Failed, e.message().to_string()),
    };
    let mut stream = Stream::new(Box::new(transport), api_version, REPLY_LIMIT);
    if let Err(f) = stream.handshake(sessions) {
        return failed("the handshake", f);
    }
    let mut subscribed = Vec::new();
    for channel in channels {
        if let Err(f) = stream.subscribe(sessions, channel, NEW_ONLY) {
            stream.disconnect(sessions);
            return refused_channel(channel, f);
        }
        subscribed.push(channel.as_str());
    }
    stream.disconnect(sessions);
    Check::new(
        "streaming",
        Level::Ok,
        format!(
            "the Streaming API (CometD {api_version}) shook hands; subscribed to {}",
            subscribed.join(", ")
        ),
    )
}

fn failed(what: &str, f: Failure) -> Check {
    match f {
        Failure::Refused(Refusal::OrgLimit) => Check::new(
            "streaming",
            Level::Warning,
            format!("{what} was refused: the org's concurrent streaming client limit is reached"),
        )
        .fix(
            "fewer streaming clients at once: --listen-duty ON/EVERY for a fleet \
             (docs/listen.md, \"Fleets\")",
        ),
        Failure::Refused(Refusal::Session) => Check::new(
            "streaming",
            Level::Failed,
            format!("{what} was refused: the session is not accepted by the Streaming API"),
        )
        .fix(
            "the user needs the API Enabled and Streaming API permissions, and the app the \
             `api` scope",
        ),
        Failure::Refused(r) => Check::new(
            "streaming",
            Level::Failed,
            format!("{what} was refused: {}", r.describe()),
        ),
        Failure::Transient(why) => Check::new(
            "streaming",
            Level::Failed,
            format!("{what} did not complete: {why}"),
        )
        .fix("check the network to the instance (/cometd)"),
        Failure::Fatal(e) => Check::new("streaming", Level::Failed, e.message().to_string()),
    }
}

fn refused_channel(channel: &str, f: Failure) -> Check {
    let Failure::Refused(Refusal::Other(why)) = &f else {
        return failed(&format!("subscribing to {channel}"), f);
    };
    let fix = match channel.strip_prefix("/data/") {
        Some(_) => {
            "select the object in Setup, Change Data Capture, and give the user Read \
                    on it"
        }
        None => {
            "create the platform event in Setup, or check its name; the user needs Read \
                 on it"
        }
    };
    Check::new(
        "streaming",
        Level::Failed,
        format!("subscribing to {channel} was refused: {why}"),
    )
    .fix(fix)
}
