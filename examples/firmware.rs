//! Firmware that pairs the device if it is not paired yet, then creates a record every minute
//! for as long as it runs: the library API in one file (`Agent::pair`, `Agent::call`).
//!
//! ```sh
//! SFPAIR_CLIENT_ID=3MVG9...YOURKEY SFPAIR_STORE=file:/var/lib/sfpair/token \
//!     cargo run --example firmware
//! ```
//!
//! Environment: `SFPAIR_LOGIN_URL` (default https://login.salesforce.com), `SFPAIR_CLIENT_ID`,
//! `SFPAIR_STORE` (`file:PATH`), `SFPAIR_CA_FILE` (optional). For tests and demos:
//! `SFPAIR_EXAMPLE_ITERATIONS` (stop after that many records; default: never) and
//! `SFPAIR_EXAMPLE_INTERVAL` (seconds between records; default 60).
//!
//! An expired session is refreshed inside `call` (one refresh, one retry), a rotated refresh
//! token is stored before it is used, and only "pair again" stops the loop: a network failure
//! or an HTTP error just waits for the next minute.

use std::process::ExitCode;
use std::time::Duration;

use sfpair::agent::Agent;
use sfpair::error::{Error, ErrorKind};
use sfpair::flow::FlowConfig;
use sfpair::http::{HttpConfig, UreqTransport};
use sfpair::present::select;
use sfpair::present::spec::Display;
use sfpair::rest::RestRequest;
use sfpair::store::{self, Loaded};
use sfpair::time::SystemClock;

/// Where the readings go: a custom object of the org (any sObject the user may create).
const RECORDS: &str = "/services/data/v62.0/sobjects/Device_Reading__c/";

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn number(name: &str) -> Result<Option<u64>, Error> {
    env(name)
        .map(|v| {
            v.parse()
                .map_err(|_| Error::config(format!("{name} needs a whole number")))
        })
        .transpose()
}

fn main() -> ExitCode {
    sfpair::logging::init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn run() -> Result<(), Error> {
    let login_url =
        env("SFPAIR_LOGIN_URL").unwrap_or_else(|| "https://login.salesforce.com".into());
    let client_id = env("SFPAIR_CLIENT_ID")
        .ok_or_else(|| Error::config("set SFPAIR_CLIENT_ID to your app's consumer key"))?;
    let store_spec = env("SFPAIR_STORE").unwrap_or_else(|| "file:/var/lib/sfpair/token".into());
    let iterations = number("SFPAIR_EXAMPLE_ITERATIONS")?;
    let interval = Duration::from_secs(number("SFPAIR_EXAMPLE_INTERVAL")?.unwrap_or(60));
    let http = match env("SFPAIR_CA_FILE") {
        Some(ca) => HttpConfig::default().with_ca_file(ca),
        None => HttpConfig::default(),
    };

    let mut agent = Agent::new(
        Box::new(SystemClock::new()),
        Box::new(UreqTransport::new(&http)?),
        store::open(&store::Spec::parse(&store_spec)?)?,
    );
    // The product's own display policy (present::select), as `sfpair pair --display text`.
    for presenter in select::presenters(&[Display::Text], false) {
        agent.add_presenter(presenter);
    }

    // Pair once; after that the stored refresh token survives reboots.
    if !matches!(agent.load()?, Loaded::Paired(_)) {
        agent.pair(FlowConfig::salesforce(&login_url, &client_id))?;
    }

    let mut sent = 0u64;
    loop {
        sent += 1;
        let reading = serde_json::json!({ "Name": format!("reading {sent}"), "Value__c": 21.5 });
        let create = RestRequest::post_json(RECORDS, reading.to_string())?;
        let mut body = Vec::new();
        match agent.call(&create, &mut body) {
            Ok(reply) => match reply.error() {
                None => {
                    let created: serde_json::Value =
                        serde_json::from_slice(&body).unwrap_or_default();
                    println!("created {}", created["id"].as_str().unwrap_or("?"));
                }
                Some(e) if stops(&e) => return Err(e),
                Some(e) => eprintln!("warning: {e}; trying again next time"),
            },
            Err(e) if stops(&e) => return Err(e),
            Err(e) => eprintln!("warning: {e}; trying again next time"),
        }
        if iterations.is_some_and(|max| sent >= max) {
            return Ok(());
        }
        std::thread::sleep(interval);
    }
}

/// Only a lost pairing stops the firmware: a person has to pair it again.
fn stops(e: &Error) -> bool {
    matches!(e.kind(), ErrorKind::RepairNeeded | ErrorKind::NotPaired)
}
