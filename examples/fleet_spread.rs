//! How a fleet that boots together spreads its first requests and its first retries, with the
//! agent's real flow and jitter: prints the distribution for BENCHMARKS.md.
//!
//! `cargo run --release --example fleet_spread -- [DEVICES] [START_JITTER_SECONDS]`
//! (defaults 10000 and 30). Pure computation on a simulated clock: no network, no sleeping.

use std::time::Duration;

use sfpair::flow::backoff::Jitter;
use sfpair::flow::dialect::{Client, Dialect, Endpoints};
use sfpair::flow::{Action, Flow, FlowConfig};
use sfpair::time::Instant;
use sfpair::wire::{TransportError, TransportErrorKind};

fn main() {
    let mut args = std::env::args().skip(1);
    let devices: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let spread: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(30);
    let mut config = FlowConfig::new(
        Dialect::Salesforce,
        Endpoints::salesforce("https://login.salesforce.com"),
        Client {
            client_id: "KEY".into(),
            client_secret: None,
            scope: "api refresh_token".into(),
        },
    );
    config.start_spread = Duration::from_secs(spread);

    // Each device seeds from its kernel; a generator of distinct seeds stands in for that.
    let mut seeds = Jitter::new(0x5EED);
    let mut first = Vec::new();
    let mut retry = Vec::new();
    for _ in 0..devices {
        let mut flow = Flow::new(config.clone(), seeds.next_u64(), Instant::ZERO);
        let mut at = Instant::ZERO;
        while let Action::Wait(t) = flow.poll(at) {
            at = t;
        }
        first.push(at.since_origin());
        // The org is down: that first request fails; when does this device try again?
        flow.handle(
            at,
            Err(TransportError::new(TransportErrorKind::Refused, "down")),
        );
        if let Action::Wait(t) = flow.poll(at) {
            retry.push(t.saturating_since(Instant::ZERO));
        }
    }
    report("first requests", &first);
    report(
        "first retries (the org is down at each first request)",
        &retry,
    );
}

/// Prints the span of `times` and its busiest 100 ms window, against an even spread.
fn report(what: &str, times: &[Duration]) {
    const BUCKET_MS: u64 = 100;
    let last = times.iter().max().copied().unwrap_or_default();
    let buckets = (last.as_millis() as u64 / BUCKET_MS + 1) as usize;
    let mut counts = vec![0u64; buckets];
    for t in times {
        counts[(t.as_millis() as u64 / BUCKET_MS) as usize] += 1;
    }
    let first = times.iter().min().copied().unwrap_or_default();
    let span_ms = (last - first).as_millis() as u64 + BUCKET_MS;
    let busiest = counts.iter().max().copied().unwrap_or(0);
    let even = times.len() as f64 * BUCKET_MS as f64 / span_ms as f64;
    println!(
        "{what}: {} devices between {:.1} s and {:.1} s; busiest 100 ms: {busiest} requests \
         (an even spread would be {even:.0}; peak/even {:.2})",
        times.len(),
        first.as_secs_f64(),
        last.as_secs_f64(),
        busiest as f64 / even
    );
}
