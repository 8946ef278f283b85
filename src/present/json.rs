//! JSON lines on standard output, one event per line, for a host UI that draws its own screen.
//!
//! The format is documented in docs/json-events.md; keep the two in step. Lines carry the
//! user code and URLs (they are meant to be shown) but never the device code or a token.

use std::io::{self, Write};

use serde_json::{Value, json};

use super::Presenter;
use crate::event::Event;

/// The `--json` presenter: one JSON object a line per event (docs/json-events.md).
pub struct JsonLines<W: Write> {
    out: W,
    /// The first write failure: the host UI reading these lines cannot see the code.
    broken: Option<String>,
}

impl JsonLines<io::Stdout> {
    /// On standard output.
    pub fn stdout() -> Self {
        JsonLines::new(io::stdout())
    }
}

impl<W: Write> JsonLines<W> {
    /// On `out`.
    pub fn new(out: W) -> Self {
        JsonLines { out, broken: None }
    }

    /// Gives the writer back.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// The JSON line for an event, or `None` for events a host UI does not need (the countdown:
/// it has `expires_in` and its own clock).
pub fn to_json(event: &Event) -> Option<Value> {
    Some(match event {
        Event::CodeIssued(c) => json!({
            "event": if c.number == 1 { "code" } else { "new_code" },
            "user_code": c.user_code,
            "verification_uri": c.verification_uri,
            "verification_uri_complete": c.one_tap_uri,
            "expires_in": c.expires_in.as_secs(),
            "interval": c.interval.as_secs(),
            "code_number": c.number,
            "max_codes": c.max_codes,
        }),
        Event::CodeExpired {
            number,
            last,
            reason,
        } => json!({
            "event": "code_expired",
            "code_number": number,
            "last": last,
            "reason": reason,
        }),
        Event::SlowDown { interval } => json!({
            "event": "slow_down",
            "interval": interval.as_secs(),
        }),
        Event::Retrying { reason, delay } => json!({
            "event": "retrying",
            "reason": reason,
            "retry_in_ms": u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        }),
        Event::Countdown { .. } => return None,
        Event::Paired(p) => json!({
            "event": "paired",
            "instance_url": p.instance_url,
            "org_id": p.org_id,
            "user_id": p.user_id,
        }),
        Event::Failed(e) => {
            let mut v = json!({
                "event": "error",
                "kind": e.kind().name(),
                "exit_code": e.exit_code(),
                "message": e.message(),
            });
            // An OAuth refusal: the server's own fields, for programs that decide on the code.
            if let Some(code) = e.oauth_error() {
                v["oauth_error"] = json!(code);
                v["oauth_description"] = json!(e.oauth_description());
            }
            v
        }
    })
}

impl<W: Write + Send> Presenter for JsonLines<W> {
    fn show(&mut self, event: &Event) {
        let Some(value) = to_json(event) else { return };
        // C1 and the bidi characters escaped, unlike serde_json: a terminal may show the lines.
        let mut line = crate::sanitize::json_line(&value);
        line.push('\n');
        if let Err(e) = self
            .out
            .write_all(line.as_bytes())
            .and_then(|()| self.out.flush())
        {
            log::debug!("JSON event output failed: {e}");
            self.broken
                .get_or_insert_with(|| format!("the JSON lines on standard output failed: {e}"));
        }
    }

    fn broken(&self) -> Option<&str> {
        self.broken.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, ErrorKind};
    use crate::event::ShownCode;
    use std::time::Duration;

    #[test]
    fn every_event_is_one_parseable_line() {
        let mut j = JsonLines::new(Vec::new());
        let code = crate::testing::shown_code(
            "https://login.salesforce.com/setup/connect?user_code=X1D9SEET",
        );
        j.show(&Event::CodeIssued(code.clone()));
        j.show(&Event::Countdown {
            remaining: Duration::from_secs(3),
        });
        j.show(&Event::SlowDown {
            interval: Duration::from_secs(10),
        });
        j.show(&Event::CodeIssued(ShownCode { number: 2, ..code }));
        j.show(&Event::Failed(Error::new(
            ErrorKind::Denied,
            "denied \"quoted\"\nnewline",
        )));
        let out = String::from_utf8(j.into_inner()).unwrap();
        let lines: Vec<Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let kinds: Vec<&str> = lines.iter().map(|v| v["event"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["code", "slow_down", "new_code", "error"]);
        assert_eq!(lines[0]["user_code"], "X1D9SEET");
        assert_eq!(lines[0]["expires_in"], 600);
        assert_eq!(lines[3]["exit_code"], 3);
        assert_eq!(lines[3]["kind"], "denied");
    }

    #[test]
    fn a_failed_write_marks_the_presenter_broken() {
        let mut full = JsonLines::new(std::fs::File::create("/dev/full").unwrap());
        assert_eq!(full.broken(), None);
        full.show(&Event::SlowDown {
            interval: Duration::from_secs(10),
        });
        assert!(full.broken().unwrap().contains("standard output"));
    }
}
