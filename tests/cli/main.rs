//! Integration tests: the real `sfpair` binary against `sfpair-sim` over TLS on 127.0.0.1,
//! approving through the simulator's page as a technician would, with real files for the store.
//! One test binary; each file below is one area.

mod boards;
mod broker;
mod call;
mod connect_proxy;
mod desired;
mod display;
mod doctor;
mod faults;
mod field;
mod flash;
mod harness;
mod headless;
mod health;
mod hostile_broker;
mod hostile_call;
mod hostile_concurrency;
mod hostile_delivery;
mod hostile_keys;
mod hostile_lanes;
mod hostile_outbox;
mod hostile_server;
mod hostile_signals;
mod hostile_store;
mod hygiene;
mod instance_host;
mod library;
mod listen;
mod listen_fleet;
mod listen_once;
mod netfault;
mod outbox;
mod outbox_values;
mod output;
mod pairing;
mod proxy;
mod run;
mod run_listen;
mod seal;
mod settings;
mod signature;
mod status;
mod stop;
mod stored;
mod terminal;
#[path = "../support/terminal_qr.rs"]
mod terminal_qr;
mod tokens;
