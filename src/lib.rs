//! sfpair pairs a headless device (a TV, a hub, a kiosk, a gateway) with Salesforce through the
//! OAuth 2.0 device flow, keeps the refresh token safe, and hands out access tokens afterwards.
//! The same engine speaks standard RFC 8628 for other providers.
//!
//! # A first pairing, then a REST call
//!
//! ```no_run
//! use sfpair::{Agent, Console, FileStore, FlowConfig, HttpConfig, RestRequest, Style};
//! use sfpair::{SystemClock, UreqTransport};
//!
//! # fn main() -> Result<(), sfpair::Error> {
//! let mut agent = Agent::new(
//!     Box::new(SystemClock::new()),
//!     Box::new(UreqTransport::new(&HttpConfig::default())?),
//!     Box::new(FileStore::new("/var/lib/sfpair/token")),
//! );
//! agent.add_presenter(Box::new(Console::stdout(Style::Qr)));
//! agent.pair(FlowConfig::salesforce("https://login.salesforce.com", "3MVG9...YOURKEY"))?;
//!
//! let mut body = Vec::new();
//! let reply = agent.call(&RestRequest::get("/services/data/v62.0/limits")?, &mut body)?;
//! println!("HTTP {}: {} bytes", reply.status, body.len());
//! # Ok(())
//! # }
//! ```
//!
//! The README opens with the same example, and `cargo test --doc` builds it from there.
//!
//! # What the library offers
//!
//! - [`Agent`]: pairs ([`Agent::pair`], or [`Agent::enrol`] without a person), hands out
//!   sessions ([`Agent::access_token`]) refreshing when needed, makes REST calls that survive an
//!   expired session ([`Agent::call`]), and forgets. A [`Stop`] cancels any wait
//!   ([`Agent::set_stop`]).
//! - The seams it is built from, each a small trait with real implementations and test doubles
//!   ([`testing`]): a [`Clock`], a [`Transport`] ([`UreqTransport`]), a [`TokenStore`]
//!   ([`FileStore`], and raw flash in [`store::flash`]), and [`Presenter`]s for the code
//!   ([`Console`], [`JsonLines`], small displays in [`present`]).
//! - The pure device flow ([`flow`]): a state machine that says what to send and when, and
//!   builds without std for microcontrollers, with the record codec and the flash slot store.
//! - With `broker`, the token broker and its client ([`broker`]); with `outbox`, the durable
//!   queue of records ([`outbox`]) and its delivery ([`delivery`]).
//!
//! Types that will grow are `#[non_exhaustive]` ([`Event`], [`FlowConfig`], [`Session`],
//! [`RestRequest`], [`HttpConfig`], [`ErrorKind`]): build them with their constructors, match
//! them with a wildcard. Modules marked hidden in these docs are the command line's inside
//! (`cli`, `config`, `commands`, `service` and their helpers): public only for the `sfpair`
//! binary, the fuzz targets and the tests, and not part of the API.
//!
//! # How it fits together
//!
//! The modules are ranked in layers, each using only its own layer and those below; the one
//! list is `LAYERS` in `tests/layers.rs`, which the test suite enforces (docs/development.md,
//! "Layout"). The pairing, as the agent drives the flow:
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
//! - `flash` (default): the raw-flash store: the A/B slot store `store::flash` (no_std too) and,
//!   with `std`, its `mtd:/dev/mtdN` and `flash-image:PATH` backends and `testing::NorFlash`.
//! - `embedded-storage`: the slot store on any `embedded_storage::nor_flash::NorFlash` driver
//!   (`store::nor_flash`), no_std.
//! - `mozilla-roots` (default): Mozilla's root certificates compiled in, trusted when no CA file
//!   is given. Without it (`--no-default-features --features std`) a CA file is required and
//!   the armv7 binary is about 60 KB smaller.
//! - `jwt-bearer`, `client-credentials`, `asset-token` (default): enrolment without a person
//!   ([`Agent::enrol`], docs/headless.md) and the asset token exchange.
//! - `displays` (default): small displays (`present::screen` and its panels: SSD1306/SH1106
//!   OLEDs, framebuffers, PBM/PNG frame files). Without it `--display` is `console` or `text`.
//! - `broker` (default): the token broker (`sfpair serve`, `sfpair run`, `call --socket`).
//! - `boards` (default): board profiles (`--board`, `SFPAIR_BOARD`).
//! - `rest` (default): REST calls, [`Agent::call`] (`sfpair call`).
//! - `outbox` (default): the durable queue of records to deliver, `outbox`, and `delivery`.
//! - `seal` (default), with `systemd-creds`, `tpm2` and `pkcs11` (default): the stored pairing
//!   sealed to the board ([`seal`], docs/sealing.md), and a JWT bearer key kept in a PKCS#11
//!   token.
//! - `minimal`: `std` + `mozilla-roots` and nothing else: pair (both dialects), token, status,
//!   forget, console/text/JSON output, the file store. `--no-default-features --features
//!   minimal`; `scripts/cross-build --minimal` builds it for the boards.
//!
//! What each feature costs on armv7 is in Cargo.toml and BENCHMARKS.md ("Size").
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(missing_docs)]

extern crate alloc;

#[cfg(feature = "std")]
pub use agent::{Agent, Enrolment, Forgotten, RefreshOutcome};
#[cfg(feature = "broker")]
pub use broker::client::Broker;
pub use error::{Error, ErrorKind};
pub use event::{Event, Paired};
pub use flow::FlowConfig;
#[cfg(feature = "std")]
pub use http::{HttpConfig, Transport, UreqTransport};
#[cfg(feature = "outbox")]
pub use outbox::Outbox;
#[cfg(feature = "std")]
pub use present::Presenter;
#[cfg(feature = "std")]
pub use present::console::{Console, Style};
#[cfg(feature = "std")]
pub use present::json::JsonLines;
pub use rest::{RestReply, RestRequest};
pub use secret::Secret;
pub use session::Session;
#[cfg(feature = "std")]
pub use stop::Stop;
#[cfg(feature = "std")]
pub use store::file::FileStore;
pub use store::{Record, TokenStore};
pub use time::Clock;
#[cfg(feature = "std")]
pub use time::SystemClock;

/// The README's examples, built as doc tests so the README cannot drift from the API.
#[cfg(all(doctest, feature = "rest"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

#[cfg(feature = "std")]
#[doc(hidden)]
pub mod access_expiry;
#[cfg(feature = "std")]
pub mod agent;
#[doc(hidden)]
pub mod api;
#[cfg(feature = "boards")]
#[doc(hidden)]
pub mod board;
#[cfg(feature = "broker")]
pub mod broker;
#[cfg(feature = "rest")]
pub mod call;
#[cfg(any(feature = "listen", feature = "seal"))]
#[doc(hidden)]
pub mod child;
#[cfg(feature = "std")]
#[doc(hidden)]
pub mod cli;
#[doc(hidden)]
pub mod clock_check;
#[cfg(feature = "std")]
#[doc(hidden)]
pub mod commands;
#[cfg(feature = "std")]
#[doc(hidden)]
pub mod config;
#[cfg(feature = "outbox")]
pub mod delivery;
#[cfg(feature = "desired")]
pub mod desired;
pub mod error;
pub mod event;
#[cfg(feature = "std")]
#[doc(hidden)]
pub mod files;
pub mod flow;
#[cfg(feature = "std")]
#[doc(hidden)]
pub mod headless;
#[cfg(feature = "broker")]
#[doc(hidden)]
pub mod health;
#[cfg(feature = "std")]
pub mod http;
#[doc(hidden)]
pub mod json;
#[cfg(any(feature = "jwt-bearer", feature = "asset-token"))]
#[doc(hidden)]
pub mod jwt;
#[cfg(feature = "broker")]
#[doc(hidden)]
pub mod keepalive;
#[cfg(feature = "std")]
#[cfg(feature = "listen")]
pub mod listen;
#[cfg(feature = "std")]
#[doc(hidden)]
pub mod logging;
#[doc(hidden)]
pub mod login_url;
#[cfg(feature = "broker")]
#[doc(hidden)]
pub mod mailbox;
#[cfg(feature = "broker")]
#[doc(hidden)]
pub mod notify;
#[cfg(feature = "outbox")]
pub mod outbox;
#[cfg(feature = "pkcs11")]
#[doc(hidden)]
pub mod pkcs11;
#[cfg(feature = "std")]
pub mod present;
#[cfg(feature = "std")]
#[doc(hidden)]
pub mod process;
pub mod refusal;
pub mod rest;
#[doc(hidden)]
pub mod sanitize;
#[cfg(feature = "seal")]
pub mod seal;
pub mod secret;
#[cfg(feature = "broker")]
#[doc(hidden)]
pub mod service;
pub mod session;
#[cfg(feature = "std")]
#[doc(hidden)]
pub mod signature;
#[cfg(feature = "std")]
pub mod stop;
pub mod store;
#[cfg(feature = "std")]
pub mod testing;
#[doc(hidden)]
pub mod text;
pub mod time;
#[cfg(feature = "std")]
pub(crate) mod trust;
#[doc(hidden)]
pub mod url;
pub mod wire;
