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
//!                                 └─> Presenters (console, JSON lines, small displays)
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
//! After pairing, [`agent::Agent::access_token`] hands out the session cached in memory (or
//! refreshes), and [`agent::Agent::call`] makes REST calls that survive an expired session: one
//! refresh and one retry on 401 `INVALID_SESSION_ID` (`call.rs`, rules in `rest.rs`), the body
//! streamed in bounded memory. [`broker`] (`sfpair serve`) hands sessions to other local
//! processes over a Unix socket; `signature.rs` checks token responses when a consumer secret is
//! configured.
//!
//! # Features
//!
//! - `std` (default): everything that does I/O. Without it the crate is the pure core (the flow,
//!   the record codec, secrets, errors) for `no_std` + `alloc` targets.
//! - `flash` (default): the raw-flash store: the A/B slot store `store::flash` (no_std too) and,
//!   with `std`, its `mtd:/dev/mtdN` and `flash-image:PATH` backends and `testing::NorFlash`.
//! - `mozilla-roots` (default): Mozilla's root certificates compiled in, trusted when no CA file
//!   is given. Without it (`--no-default-features --features std`) a CA file is required and
//!   the armv7 binary is about 60 KB smaller.
//! - `jwt-bearer`, `client-credentials`, `asset-token` (default): enrolment without a person
//!   ([`agent::Agent::enrol`], docs/headless.md) and the asset token exchange
//!   ([`agent::Agent::asset_token`]); the JWT bytes are `jwt.rs`, requests and refusals
//!   `headless/`.
//! - `displays` (default): small displays (`present::screen` and its panels: SSD1306/SH1106
//!   OLEDs, framebuffers, PBM/PNG frame files). Without it `--display` is `console` or `text`.
//! - `broker` (default): the token broker, `broker` (`sfpair serve`, `call --socket`).
//! - `boards` (default): board profiles, `board` (`--board`, `SFPAIR_BOARD`).
//! - `rest` (default): REST calls, `call` and `Agent::call` (`sfpair call`).
//! - `outbox` (default): the durable queue of records to deliver, `outbox` (issue 13).
//! - `minimal`: `std` + `mozilla-roots` and nothing else: pair (both dialects), token, status,
//!   forget, console/text/JSON output, the file store. `--no-default-features --features
//!   minimal`; `scripts/cross-build --minimal` builds it for the boards.
//!
//! What each feature costs on armv7 is in Cargo.toml and BENCHMARKS.md ("Size (issue 15)").
//!
//! # Example
//!
//! ```no_run
//! use sfpair::agent::Agent;
//! use sfpair::flow::FlowConfig;
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
//! agent.pair(FlowConfig::salesforce("https://login.salesforce.com", "3MVG9...YOURKEY"))?;
//! let session = agent.access_token()?;
//! println!("REST base: {}", session.instance_url);
//! # Ok(())
//! # }
//! ```
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

#[cfg(feature = "std")]
pub mod access_expiry;
#[cfg(feature = "std")]
pub mod agent;
pub mod api;
#[cfg(feature = "boards")]
pub mod board;
#[cfg(feature = "broker")]
pub mod broker;
#[cfg(feature = "rest")]
pub mod call;
#[cfg(feature = "std")]
pub mod cli;
pub mod clock_check;
#[cfg(feature = "std")]
pub mod commands;
#[cfg(feature = "std")]
pub mod config;
pub mod error;
pub mod event;
#[cfg(feature = "std")]
pub mod files;
pub mod flow;
#[cfg(feature = "std")]
pub mod headless;
#[cfg(feature = "broker")]
pub mod health;
#[cfg(feature = "std")]
pub mod http;
#[cfg(any(feature = "jwt-bearer", feature = "asset-token"))]
pub mod jwt;
#[cfg(feature = "broker")]
pub mod keepalive;
#[cfg(feature = "std")]
pub mod logging;
pub mod login_url;
#[cfg(feature = "broker")]
pub mod notify;
#[cfg(feature = "outbox")]
pub mod outbox;
#[cfg(feature = "pkcs11")]
pub mod pkcs11;
#[cfg(feature = "std")]
pub mod present;
#[cfg(feature = "std")]
pub mod process;
pub mod refusal;
pub mod rest;
pub mod sanitize;
#[cfg(feature = "seal")]
pub mod seal;
pub mod secret;
#[cfg(feature = "broker")]
pub mod service;
pub mod session;
#[cfg(feature = "std")]
pub mod signature;
pub mod store;
#[cfg(feature = "std")]
pub mod testing;
pub mod text;
pub mod time;
#[cfg(feature = "std")]
pub(crate) mod trust;
pub mod url;
pub mod wire;
