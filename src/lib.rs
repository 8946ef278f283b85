//! sfpair pairs a headless device (a TV, a hub, a kiosk, a gateway) with Salesforce through the
//! OAuth 2.0 device flow, keeps the refresh token safe, and hands out access tokens afterwards.
//! The same engine speaks standard RFC 8628 for other providers.
//!
//! # How it fits together
//!
//! ```text
//!   main.rs (CLI) ─> config ─> Agent ──> Flow (pure: what to send, when)   ─┐
//!                                 │  └─> api (pure: refresh, revoke)        ├─> wire, secret, error
//!                                 ├─> Transport (ureq + rustls)            ─┘
//!                                 ├─> TokenStore (file; codec in store::record)
//!                                 └─> Presenters (console, JSON lines)
//! ```
//!
//! `config` also reads an optional board profile (`board`, `boards/*.toml`): which binary,
//! panel, store and org a board uses.
//!
//! The pairing, as the agent drives the flow:
//!
//! ```text
//!   request code ─> show code + QR ─> wait interval ─> poll ─┬─ pending ───> wait interval
//!        ^                                                   ├─ slow_down ─> interval += 5 s
//!        └──── expired (up to --max-codes) <─────────────────┼─ network ───> back off, same code
//!                                                            ├─ approved ──> store, done
//!                                                            └─ denied / config ─> stop
//! ```
//!
//! # Features
//!
//! - `std` (default): everything that does I/O. Without it the crate is the pure core (the flow,
//!   the record codec, secrets, errors) for `no_std` + `alloc` targets.
//! - `mozilla-roots` (default): Mozilla's root certificates compiled in, trusted when no CA file
//!   is given. Without it (`--no-default-features --features std`) a CA file is required and
//!   the armv7 binary is about 60 KB smaller.
//!
//! # Example
//!
//! ```no_run
//! use sfpair::agent::Agent;
//! use sfpair::flow::FlowConfig;
//! use sfpair::flow::dialect::{Client, Dialect, Endpoints};
//! use sfpair::http::{HttpConfig, UreqTransport};
//! use sfpair::present::console::{Console, Style};
//! use sfpair::store::file::FileStore;
//! use sfpair::time::SystemClock;
//!
//! # fn main() -> Result<(), sfpair::error::Error> {
//! let mut agent = Agent::new(
//!     Box::new(SystemClock::new()),
//!     Box::new(UreqTransport::new(&HttpConfig::default())?),
//!     Box::new(FileStore::new("/var/lib/sfpair/token")),
//! );
//! agent.add_presenter(Box::new(Console::stdout(Style::Qr)));
//! let client = Client {
//!     client_id: "3MVG9...YOURKEY".into(),
//!     client_secret: None,
//!     scope: "api refresh_token".into(),
//! };
//! let endpoints = Endpoints::salesforce("https://login.salesforce.com");
//! agent.pair(FlowConfig::new(Dialect::Salesforce, endpoints, client))?;
//! let session = agent.access_token()?;
//! println!("REST base: {}", session.instance_url);
//! # Ok(())
//! # }
//! ```
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

#[cfg(feature = "std")]
pub mod agent;
pub mod api;
#[cfg(feature = "std")]
pub mod board;
#[cfg(feature = "std")]
pub mod cli;
#[cfg(feature = "std")]
pub mod config;
pub mod error;
pub mod event;
pub mod flow;
#[cfg(feature = "std")]
pub mod http;
#[cfg(feature = "std")]
pub mod logging;
#[cfg(feature = "std")]
pub mod present;
pub mod secret;
pub mod store;
#[cfg(feature = "std")]
pub mod testing;
pub mod time;
pub mod url;
pub mod wire;
