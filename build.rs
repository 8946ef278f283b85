//! Records the build time, so the agent can tell a wall clock that is obviously wrong (a board
//! without a battery-backed clock boots in 1970 until NTP syncs) before TLS fails on it.
//! Honours SOURCE_DATE_EPOCH for reproducible builds.

use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
    println!("cargo:rustc-env=SFPAIR_BUILD_UNIX={secs}");
}
