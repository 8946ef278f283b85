//! `sfpair status`: what is stored and, with `--check`, whether it still works; never a token.
//!
//! The report is built once ([`Report`]) and rendered as text for a person or as one JSON
//! object, so both say the same thing.

use std::io::Write;
use std::time::Duration;

use serde_json::{Value, json};

use super::say;
use crate::agent::Agent;
use crate::api;
use crate::error::{Error, ErrorKind};
use crate::store::Record;
use crate::time::{Clock, SystemClock, format_age, format_utc};

#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Refresh and read userinfo, to prove the pairing works.
    pub check: bool,
    pub json: bool,
    /// `--socket`: ask the running agent (`sfpair run`) for its health instead of the store.
    pub socket: Option<std::path::PathBuf>,
}

/// Who the pairing acts as, from the userinfo endpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserInfo {
    pub username: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub user_id: Option<String>,
    pub org_id: Option<String>,
}

/// What `status` says.
#[derive(Debug)]
pub struct Report {
    pub store: String,
    pub record: Record,
    pub org_id: Option<String>,
    pub user_id: Option<String>,
    /// Seconds since the epoch.
    pub paired_at: u64,
    /// `None` when the device's clock is behind the pairing (no RTC, NTP not synced yet).
    pub age: Option<u64>,
    /// The `--check` outcome.
    pub check: Option<Result<UserInfo, Error>>,
}

pub fn run(
    agent: &mut Agent,
    options: &Options,
    wait_for_clock: Duration,
    out: &mut dyn Write,
) -> Result<u8, Error> {
    #[cfg(not(feature = "broker"))]
    if options.socket.is_some() {
        return Err(super::not_built(
            "sfpair status --socket",
            "the token broker",
            "broker",
        ));
    }
    #[cfg(feature = "broker")]
    if let Some(socket) = &options.socket {
        let health = crate::broker::client::Broker::new(socket).health()?;
        if options.json {
            say(out, crate::sanitize::json_line(&health))?;
        } else {
            say(out, describe_health(&health).trim_end())?;
        }
        return health_verdict(&health).map(|()| 0);
    }
    let report = report(agent, options.check, wait_for_clock)?;
    if options.json {
        say(out, crate::sanitize::json_line(&report.json()))?;
    } else {
        say(out, report.text().trim_end())?;
    }
    match report.check {
        Some(Err(e)) => Err(e),
        _ => Ok(0),
    }
}

/// The stored pairing, and with `check` a refresh and userinfo to prove it works.
pub fn report(agent: &mut Agent, check: bool, wait_for_clock: Duration) -> Result<Report, Error> {
    let record = agent.stored()?;
    let (org_id, user_id) = api::org_and_user(&record.identity_url);
    let paired_at = if record.issued_at_ms > 0 {
        record.issued_at_ms / 1000
    } else {
        record.paired_at
    };
    let age = SystemClock::new()
        .unix_time()
        .as_secs()
        .checked_sub(paired_at);
    let check = check.then(|| {
        // Before the first handshake: a clock in 1970 makes every certificate "not yet valid".
        agent
            .wait_for_clock(wait_for_clock)
            .and_then(|()| userinfo(agent))
    });
    Ok(Report {
        store: agent.store_description(),
        record,
        org_id,
        user_id,
        paired_at,
        age,
        check,
    })
}

/// A refresh (proves the refresh token works), then userinfo.
fn userinfo(agent: &mut Agent) -> Result<UserInfo, Error> {
    agent.refresh()?;
    let info = agent.userinfo()?;
    // The server chose these: one sanitiser before anyone prints them.
    let text = |key: &str| {
        info.get(key)
            .and_then(|v| v.as_str())
            .map(crate::sanitize::text)
    };
    Ok(UserInfo {
        username: text("preferred_username"),
        name: text("name"),
        email: text("email"),
        user_id: text("user_id"),
        org_id: text("organization_id"),
    })
}

/// What the running agent's state means as an exit code: 0 while it serves a pairing (also
/// during a re-pair, while the old pairing serves), 5 while nothing is paired (a code may be up),
/// 6 once the server refused the pairing, 1 for an answer this sfpair does not know.
#[cfg(feature = "broker")]
pub fn health_verdict(health: &Value) -> Result<(), Error> {
    let serving = health.get("org_id").is_some_and(|o| !o.is_null());
    let cause = health
        .get("cause")
        .and_then(Value::as_str)
        .map(|c| crate::text::server_text(c).into_owned())
        .unwrap_or_else(|| "unknown".into());
    match health.get("state").and_then(Value::as_str) {
        Some("paired") => Ok(()),
        Some("pairing") if serving => Ok(()),
        Some("pairing") => Err(Error::new(
            ErrorKind::NotPaired,
            "the running agent is not paired yet: a pairing is waiting for its code to be \
             approved",
        )),
        Some("not_paired") => Err(Error::new(
            ErrorKind::NotPaired,
            "the running agent is not paired: run `sfpair pair`, or ask it for a pairing \
             (SIGUSR1)",
        )),
        Some("repair_needed") => Err(Error::new(
            ErrorKind::RepairNeeded,
            format!("the running agent's pairing was refused ({cause}): pair again"),
        )),
        other => Err(Error::server(format!(
            "the running agent answered a state this sfpair does not know ({})",
            other.map_or("none".into(), |s| crate::text::server_text(s).into_owned())
        ))),
    }
}

#[cfg(feature = "broker")]
/// A health answer for a person: the state, who, the last refresh and the next keepalive,
/// the cause when the pairing died. It never holds a token: the answer has none.
pub fn describe_health(health: &Value) -> String {
    // Values came from a server at some point: one line each, no control characters.
    let text = |key: &str| {
        health
            .get(key)
            .and_then(Value::as_str)
            .map(|v| crate::text::server_text(v).into_owned())
    };
    let now = SystemClock::new().unix_time().as_secs();
    let mut lines = vec![
        "The running agent's health (sfpair run):".to_string(),
        format!(
            "  state      {}",
            text("state").unwrap_or_else(|| "unknown".into())
        ),
    ];
    if let (Some(org), Some(user)) = (text("org_id"), text("user_id")) {
        lines.push(format!("  org        {org}, user {user}"));
    }
    if let Some(code) = text("user_code") {
        lines.push(format!("  code       {code} (waiting for approval)"));
    }
    if let Some(last) = health.get("last_refresh").filter(|l| !l.is_null()) {
        let at = last["at"].as_u64().unwrap_or(0);
        let how = match last["error"].as_str() {
            None => "ok".to_string(),
            Some(kind) => format!("failed ({})", crate::text::server_text(kind)),
        };
        lines.push(format!(
            "  refreshed  {} ago, {how}",
            format_age(now.saturating_sub(at))
        ));
    }
    if let Some(next) = health.get("next_keepalive").and_then(Value::as_u64) {
        lines.push(format!(
            "  keepalive  in {}",
            format_age(next.saturating_sub(now))
        ));
    }
    if let Some(cause) = text("cause") {
        lines.push(format!("  cause      {cause}"));
        if let Some(why) = text("cause_text") {
            lines.push(format!("             {why}"));
        }
        if let Some(admin) = text("admin_action") {
            lines.push(format!("  admin      {admin}"));
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

impl Report {
    /// One JSON object (`sfpair status --json`).
    pub fn json(&self) -> Value {
        let r = &self.record;
        let mut value = json!({
            "paired": true,
            "store": self.store,
            "dialect": r.dialect.name(),
            "instance_url": r.instance_url,
            "login_url": r.login_url,
            "token_url": r.token_url,
            "client_id": r.client_id,
            "flow": r.grant.name(),
            "org_id": self.org_id,
            "user_id": self.user_id,
            "scope": r.scope,
            "paired_at": self.paired_at,
            "age_seconds": self.age,
            "age": self.age.map(format_age),
        });
        match &self.check {
            Some(Ok(user)) => {
                value["check"] = json!({
                    "refresh": "ok",
                    "username": user.username,
                    "name": user.name,
                    "email": user.email,
                    "user_id": user.user_id,
                    "org_id": user.org_id,
                })
            }
            Some(Err(e)) => {
                value["check"] = json!({
                    "refresh": if e.kind() == ErrorKind::RepairNeeded { "rejected" } else { "failed" },
                    "error": e.kind().name(),
                    "message": e.message(),
                })
            }
            None => {}
        }
        value
    }

    /// Lines for a person.
    pub fn text(&self) -> String {
        let r = &self.record;
        // Record fields came from a server once (older records were stored unvalidated).
        let t = |s: &str| crate::text::server_text(s).into_owned();
        let mut lines = vec![format!("Paired, stored in {}", self.store)];
        lines.push(format!("  instance   {}", t(&r.instance_url)));
        if !r.login_url.is_empty() {
            lines.push(format!("  login URL  {}", t(&r.login_url)));
        } else {
            lines.push(format!("  token URL  {}", t(&r.token_url)));
        }
        lines.push(format!("  client id  {}", t(&r.client_id)));
        if r.grant.is_headless() {
            lines.push(format!(
                "  flow       {} (no refresh token: each new session runs the grant)",
                r.grant.name()
            ));
        }
        if let (Some(org), Some(user_id)) = (&self.org_id, &self.user_id) {
            lines.push(format!("  org        {}, user {}", t(org), t(user_id)));
        }
        lines.push(format!("  scope      {}", t(&r.scope)));
        lines.push(match self.age {
            Some(age) => format!(
                "  paired     {} ({} ago)",
                format_utc(self.paired_at),
                format_age(age)
            ),
            None => format!(
                "  paired     {} (age unknown: this device's clock is behind that time)",
                format_utc(self.paired_at)
            ),
        });
        match &self.check {
            Some(Ok(user)) => {
                let who = user.username.as_deref().unwrap_or("(unknown user)");
                let name = user
                    .name
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default();
                lines.push(format!("  user       {who}{name}"));
                if let Some(org) = &user.org_id {
                    lines.push(format!("  org id     {org}"));
                }
                lines.push(if r.grant.is_headless() {
                    format!("  check      the {} grant works", r.grant.name())
                } else {
                    "  check      the refresh token works".into()
                });
            }
            Some(Err(_)) => lines.push("  check      FAILED (see the error below)".into()),
            None => {}
        }
        let mut text = lines.join("\n");
        text.push('\n');
        text
    }
}
