//! Integration tests: the real `sfpair` binary against `sfpair-sim` over TLS on 127.0.0.1,
//! approving through the simulator's page as a technician would, with real files for the store.
//! One test binary; each file below is one area.

mod boards;
mod harness;
mod pairing;
#[path = "../support/terminal_qr.rs"]
mod terminal_qr;
mod tokens;
