//! The device follows its record in the org: desired state, applied once per change.
//!
//! The device's record (`--desired SOBJECT/FIELD/VALUE`, found by its external id, for example
//! `Device__c/Device_Id__c/GW-0042`) is read over REST and written to `--desired-file PATH` when
//! its content differs from what PATH holds; `--desired-exec PROGRAM` then runs once for that
//! content (`desired/apply.rs`). The record as read is the truth: a change event is only a
//! doorbell (it carries only the changed fields, and can be missed past the 72 hours the org
//! keeps it). docs/desired.md has the whole loop, with the reported state going back through
//! the outbox.
//!
//! `sfpair desired` reads once; `sfpair run --desired …` reads at start, after every
//! (re)connect of the listener, on each change event for the record, and at least every
//! `--desired-every` (`follow.rs`).
//!
//! Must not log the record's content.

pub mod apply;
pub mod follow;

use serde::Deserialize;

use crate::call::{self, Caller};
use crate::error::{Error, ErrorKind};
use crate::listen::runner::Exec;
use crate::outbox::input::api_name;
use crate::rest::RestRequest;
use crate::stop::Stop;

pub use apply::Applied;

/// `--desired-every` when not given: a safety net under the change events.
pub const DEFAULT_EVERY: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

/// Which record, by external id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The record's object (`Device__c`).
    pub sobject: String,
    /// Its external id field (`Device_Id__c`).
    pub field: String,
    /// This device's value of that field (`GW-0042`).
    pub value: String,
}

impl Target {
    /// `SOBJECT/FIELD/VALUE` (`Device__c/Device_Id__c/GW-0042`).
    pub fn parse(text: &str) -> Result<Target, Error> {
        let mut parts = text.trim().splitn(3, '/');
        let (sobject, field, value) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        if value.is_empty() {
            return Err(Error::config(format!(
                "--desired '{text}' is not SOBJECT/FIELD/VALUE: the device's record by its \
                 external id, e.g. Device__c/Device_Id__c/GW-0042"
            )));
        }
        api_name(sobject, "--desired's SOBJECT")?;
        api_name(field, "--desired's FIELD")?;
        Ok(Target {
            sobject: sobject.to_string(),
            field: field.to_string(),
            value: value.to_string(),
        })
    }

    /// As written: `Device__c/Device_Id__c/GW-0042`.
    pub fn describe(&self) -> String {
        format!("{}/{}/{}", self.sobject, self.field, self.value)
    }

    /// The change events' channel of the record's object (`/data/Device__ChangeEvent`).
    pub fn change_channel(&self) -> String {
        let base = self.sobject.strip_suffix("__c").map_or_else(
            || format!("{}ChangeEvent", self.sobject),
            |custom| format!("{custom}__ChangeEvent"),
        );
        format!("/data/{base}")
    }
}

/// What to follow and how to apply it.
#[derive(Clone, Debug)]
pub struct Options {
    /// Which record.
    pub target: Target,
    /// Where it goes (`--desired-file`).
    pub file: std::path::PathBuf,
    /// The program run after each change (`--desired-exec`).
    pub exec: Option<Exec>,
    /// `--desired-fields`: only these fields are read (and so compared).
    pub fields: Vec<String>,
    /// `--desired-every`.
    pub every: std::time::Duration,
    /// The API version of the read (`62.0`).
    pub api_version: String,
}

/// One read of the record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Read {
    /// The record's Salesforce id (for change events' `recordIds`).
    pub id: Option<String>,
    /// Its `LastModifiedDate`, as the org wrote it.
    pub last_modified: Option<String>,
    /// The record as the org sent it.
    pub body: Vec<u8>,
}

#[derive(Deserialize)]
struct Header {
    #[serde(rename = "Id")]
    id: Option<String>,
    #[serde(rename = "LastModifiedDate")]
    last_modified: Option<String>,
}

/// The REST request for the record.
fn request(options: &Options) -> Result<RestRequest, Error> {
    let mut value = String::new();
    crate::wire::percent_encode_segment(&options.target.value, &mut value);
    let mut path = format!(
        "/services/data/v{}/sobjects/{}/{}/{value}",
        options.api_version, options.target.sobject, options.target.field
    );
    if !options.fields.is_empty() {
        path.push_str("?fields=");
        path.push_str(&options.fields.join(","));
    }
    RestRequest::get(&path)
}

/// Reads the record. A record that does not exist, a field the org lacks or another HTTP error
/// is [`ErrorKind::Http`] (exit 9); nothing is written then.
pub fn read(via: &mut dyn Caller, options: &Options) -> Result<Read, Error> {
    let mut body = Vec::new();
    let reply = call::call(via, &request(options)?, &mut body)?;
    if let Some(e) = reply.error() {
        let what = if reply.status == 404 {
            format!(
                "the record {} does not exist in the org",
                options.target.describe()
            )
        } else {
            format!("reading the record {}", options.target.describe())
        };
        return Err(Error::new(
            ErrorKind::Http,
            format!(
                "{what}: {}; {} is left as it is",
                e.message(),
                options.file.display()
            ),
        ));
    }
    let header: Header = serde_json::from_slice(&body).map_err(|e| {
        Error::server(format!(
            "the record {} is not a JSON object ({e})",
            options.target.describe()
        ))
    })?;
    Ok(Read {
        id: header.id,
        last_modified: header.last_modified,
        body,
    })
}

/// Reads the record and applies it: `sfpair desired`, and each read of `run --desired`.
pub fn once(
    via: &mut dyn Caller,
    options: &Options,
    stop: &Stop,
) -> Result<(Read, Applied), Error> {
    let read = read(via, options)?;
    let applied = apply::apply(&options.file, &read.body, options.exec.as_ref(), stop)?;
    Ok((read, applied))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_api_names_and_a_value() {
        let t = Target::parse("Device__c/Device_Id__c/GW 42/x").unwrap();
        assert_eq!(
            (t.sobject.as_str(), t.field.as_str(), t.value.as_str()),
            ("Device__c", "Device_Id__c", "GW 42/x")
        );
        assert_eq!(t.change_channel(), "/data/Device__ChangeEvent");
        assert_eq!(
            Target::parse("Account/Ext__c/1").unwrap().change_channel(),
            "/data/AccountChangeEvent"
        );
        for bad in [
            "",
            "Device__c",
            "Device__c/Device_Id__c",
            "Device__c/Device_Id__c/",
            "1x/F/v",
            "D/F f/v",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_request_percent_encodes_the_value_and_limits_the_fields() {
        let options = Options {
            target: Target::parse("Device__c/Device_Id__c/GW 42/x").unwrap(),
            file: "/tmp/x".into(),
            exec: None,
            fields: vec!["Brightness__c".into(), "Interval__c".into()],
            every: DEFAULT_EVERY,
            api_version: "62.0".into(),
        };
        assert_eq!(
            request(&options).unwrap().path,
            "/services/data/v62.0/sobjects/Device__c/Device_Id__c/GW%2042%2Fx?fields=Brightness__c,Interval__c"
        );
    }
}
