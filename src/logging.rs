//! Logging through `log` + `env_logger`, configured by `RUST_LOG`, default `warn`.
//!
//! At trace level `ureq_proto` hex-dumps every request it sends, Authorization header and form
//! body included, so the HTTP and TLS crates are clamped to debug whatever `RUST_LOG` says: no
//! log level may show a token. Our own code never logs one (secrets are `Secret`s).

use std::io::Write;

use log::{Level, LevelFilter, Log, Metadata, Record};

/// Crates whose trace output would carry request or response bytes.
const CLAMPED: [&str; 2] = ["ureq", "rustls"];

struct Clamped(env_logger::Logger);

fn too_chatty(metadata: &Metadata) -> bool {
    metadata.level() > Level::Debug && CLAMPED.iter().any(|c| metadata.target().starts_with(c))
}

impl Log for Clamped {
    fn enabled(&self, metadata: &Metadata) -> bool {
        !too_chatty(metadata) && self.0.enabled(metadata)
    }

    fn log(&self, record: &Record) {
        if self.enabled(record.metadata()) {
            self.0.log(record);
        }
    }

    fn flush(&self) {
        self.0.flush();
    }
}

/// Installs the logger (standard error). Call once, first thing in `main`.
pub fn init() {
    let mut builder = env_logger::Builder::new();
    builder.filter_level(LevelFilter::Warn);
    if let Ok(spec) = std::env::var("RUST_LOG") {
        builder.parse_filters(&spec);
    }
    builder.format(|buf, record| {
        let level = match record.level() {
            Level::Error => "error",
            Level::Warn => "warning",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        };
        if record.level() >= Level::Debug {
            writeln!(
                buf,
                "sfpair: {level}: [{}] {}",
                record.target(),
                record.args()
            )
        } else {
            writeln!(buf, "sfpair: {level}: {}", record.args())
        }
    });
    let logger = builder.build();
    let max = logger.filter();
    if log::set_boxed_logger(Box::new(Clamped(logger))).is_ok() {
        log::set_max_level(max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_and_tls_crates_are_clamped_below_trace() {
        let meta = |level, target| Metadata::builder().level(level).target(target).build();
        assert!(too_chatty(&meta(Level::Trace, "ureq_proto::util")));
        assert!(too_chatty(&meta(Level::Trace, "rustls::client")));
        assert!(!too_chatty(&meta(Level::Debug, "ureq::pool")));
        assert!(!too_chatty(&meta(Level::Trace, "sfpair::agent")));
    }
}
