//! Logging on the `log` facade to standard error, configured by `RUST_LOG`, default `warn`.
//!
//! `RUST_LOG` takes what env_logger's does, minus its `/filter` suffix: comma-separated
//! directives, each a level (`debug`), a target (`sfpair::store`, every level) or both
//! (`sfpair=debug,ureq=info`); the longest matching target prefix wins. A directive that does
//! not parse is reported once on standard error and ignored. This is our own ~100 lines instead
//! of env_logger: the same behaviour for what sfpair needs, 2 KB less on armv7 and two crates
//! fewer (Cargo.toml, BENCHMARKS.md, "Size").
//!
//! At trace level `ureq_proto` hex-dumps every request it sends, Authorization header and form
//! body included, so the HTTP and TLS crates are clamped to debug whatever `RUST_LOG` says: no
//! log level may show a token. Our own code never logs one (secrets are `Secret`s).

use std::io::Write;

use log::{Level, LevelFilter, Log, Metadata, Record};

/// Crates whose trace output would carry request or response bytes.
const CLAMPED: [&str; 2] = ["ureq", "rustls"];

/// What `RUST_LOG` asks for: a default level and per-target levels.
#[derive(Debug, PartialEq, Eq)]
struct Filter {
    default: LevelFilter,
    /// Longest target first, so the first prefix that matches is the most specific.
    targets: Vec<(String, LevelFilter)>,
}

impl Filter {
    /// Parses a `RUST_LOG` value; returns the directives it had to ignore as well.
    fn parse(spec: &str) -> (Filter, Vec<String>) {
        let mut filter = Filter {
            default: LevelFilter::Warn,
            targets: Vec::new(),
        };
        let mut ignored = Vec::new();
        for directive in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            match directive.split_once('=') {
                None => match directive.parse::<LevelFilter>() {
                    Ok(level) => filter.default = level,
                    Err(_) if valid_target(directive) => filter
                        .targets
                        .push((directive.to_string(), LevelFilter::Trace)),
                    Err(_) => ignored.push(directive.to_string()),
                },
                Some((target, level)) => match level.trim().parse::<LevelFilter>() {
                    Ok(level) if valid_target(target.trim()) => {
                        filter.targets.push((target.trim().to_string(), level))
                    }
                    _ => ignored.push(directive.to_string()),
                },
            }
        }
        // Stable: of two directives for the same target, the later one wins, as in env_logger.
        filter.targets.reverse();
        filter
            .targets
            .sort_by_key(|(t, _)| std::cmp::Reverse(t.len()));
        (filter, ignored)
    }

    fn level_for(&self, target: &str) -> LevelFilter {
        self.targets
            .iter()
            .find(|(t, _)| target.starts_with(t.as_str()))
            .map_or(self.default, |(_, level)| *level)
    }

    /// The most verbose level anything may log at: records above it are not even formatted.
    fn max(&self) -> LevelFilter {
        self.targets
            .iter()
            .map(|(_, level)| *level)
            .fold(self.default, Ord::max)
    }

    fn enabled(&self, metadata: &Metadata) -> bool {
        !too_chatty(metadata) && metadata.level() <= self.level_for(metadata.target())
    }
}

/// A module path: `::`-separated identifiers.
fn valid_target(t: &str) -> bool {
    !t.is_empty()
        && t.split("::")
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_alphanumeric() || c == '_'))
}

fn too_chatty(metadata: &Metadata) -> bool {
    metadata.level() > Level::Debug && CLAMPED.iter().any(|c| metadata.target().starts_with(c))
}

/// `sfpair: warning: message`; from debug on, with the target: `sfpair: debug: [target] message`.
fn line(record: &Record) -> String {
    let level = match record.level() {
        Level::Error => "error",
        Level::Warn => "warning",
        Level::Info => "info",
        Level::Debug => "debug",
        Level::Trace => "trace",
    };
    if record.level() >= Level::Debug {
        format!("sfpair: {level}: [{}] {}\n", record.target(), record.args())
    } else {
        format!("sfpair: {level}: {}\n", record.args())
    }
}

struct StderrLogger(Filter);

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        self.0.enabled(metadata)
    }

    fn log(&self, record: &Record) {
        if self.enabled(record.metadata()) {
            // One write per record, so lines from the broker's threads do not interleave. A
            // failed write to standard error has nowhere to be reported.
            let _ = std::io::stderr().lock().write_all(line(record).as_bytes());
        }
    }

    fn flush(&self) {}
}

/// Installs the logger (standard error). Call once, first thing in `main`.
pub fn init() {
    let (filter, ignored) = Filter::parse(&std::env::var("RUST_LOG").unwrap_or_default());
    for directive in ignored {
        eprintln!(
            "sfpair: warning: RUST_LOG: ignoring '{directive}' (use a level, a target, or \
             target=level; levels: off, error, warn, info, debug, trace)"
        );
    }
    let max = filter.max();
    if log::set_boxed_logger(Box::new(StderrLogger(filter))).is_ok() {
        log::set_max_level(max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(level: Level, target: &str) -> Metadata<'_> {
        Metadata::builder().level(level).target(target).build()
    }

    #[test]
    fn http_and_tls_crates_are_clamped_below_trace() {
        assert!(too_chatty(&meta(Level::Trace, "ureq_proto::util")));
        assert!(too_chatty(&meta(Level::Trace, "rustls::client")));
        assert!(!too_chatty(&meta(Level::Debug, "ureq::pool")));
        assert!(!too_chatty(&meta(Level::Trace, "sfpair::agent")));
        let (trace, _) = Filter::parse("trace");
        assert!(!trace.enabled(&meta(Level::Trace, "ureq_proto::util")));
        assert!(trace.enabled(&meta(Level::Debug, "ureq_proto::util")));
        assert!(trace.enabled(&meta(Level::Trace, "sfpair::agent")));
    }

    #[test]
    fn rust_log_takes_a_level_targets_or_both() {
        let (f, ignored) = Filter::parse("");
        assert_eq!(
            (f.default, f.targets.len(), ignored.len()),
            (LevelFilter::Warn, 0, 0)
        );
        assert!(f.enabled(&meta(Level::Warn, "sfpair")));
        assert!(!f.enabled(&meta(Level::Info, "sfpair")));

        let (f, _) = Filter::parse("INFO");
        assert_eq!(f.max(), LevelFilter::Info);
        assert!(f.enabled(&meta(Level::Info, "ureq::pool")));

        let (f, ignored) = Filter::parse("error, sfpair=debug ,sfpair::store=trace,ureq=off");
        assert!(ignored.is_empty());
        assert!(f.enabled(&meta(Level::Debug, "sfpair::agent")));
        assert!(!f.enabled(&meta(Level::Trace, "sfpair::agent")));
        assert!(f.enabled(&meta(Level::Trace, "sfpair::store::flash")));
        assert!(!f.enabled(&meta(Level::Error, "ureq::pool")));
        assert!(!f.enabled(&meta(Level::Warn, "rustls::conn")));
        assert!(f.enabled(&meta(Level::Error, "rustls::conn")));
        assert_eq!(f.max(), LevelFilter::Trace);

        // A bare target logs everything from it; the later of two directives wins.
        let (f, _) = Filter::parse("sfpair::broker,sfpair=info,sfpair=error");
        assert!(f.enabled(&meta(Level::Trace, "sfpair::broker")));
        assert!(!f.enabled(&meta(Level::Info, "sfpair::agent")));
        assert!(f.enabled(&meta(Level::Error, "sfpair::agent")));
    }

    #[test]
    fn bad_directives_are_reported_and_ignored() {
        let (f, ignored) = Filter::parse("loud,sfpair=chatty,=debug,a b,debug,x/y");
        assert_eq!(ignored, ["sfpair=chatty", "=debug", "a b", "x/y"]);
        // `loud` reads as a target, as env_logger reads it.
        assert_eq!(f.default, LevelFilter::Debug);
        assert_eq!(f.level_for("loud"), LevelFilter::Trace);
    }

    #[test]
    fn lines_carry_the_target_from_debug_on() {
        let args = format_args!("pairing");
        let record = Record::builder()
            .level(Level::Warn)
            .target("sfpair::agent")
            .args(args)
            .build();
        assert_eq!(line(&record), "sfpair: warning: pairing\n");
        let args = format_args!("pairing");
        let record = Record::builder()
            .level(Level::Debug)
            .target("sfpair::agent")
            .args(args)
            .build();
        assert_eq!(line(&record), "sfpair: debug: [sfpair::agent] pairing\n");
    }
}
