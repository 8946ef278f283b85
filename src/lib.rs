//! sfpair pairs a headless device with Salesforce through the OAuth 2.0 device flow.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

#[cfg(feature = "std")]
pub mod agent;
pub mod api;
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
