//! Figures for BENCHMARKS.md "Flash store": erases and bytes programmed per pairing,
//! per refresh (with and without rotation) and per forget, and the power cuts exercised and
//! survived, on a NOR and a NAND geometry. Run by `scripts/bench-flash`
//! (`cargo run --release --example flash_bench`).
//!
//! Every cut is checked (`testing::sweep_power_cuts`): after the reboot the store reads the old
//! or the new record, never another, never nothing when a record was there, and the operation
//! then succeeds. Exits 1 if any cut breaks that, so the figures are never printed for a store
//! that failed.

use std::process::ExitCode;

use sfpair::flow::dialect::Dialect;
use sfpair::secret::Secret;
use sfpair::store::Record;
use sfpair::store::record;
use sfpair::testing::{NorFlash, Step, Sweep, sweep_power_cuts};

/// A pairing with Salesforce-sized values (a real refresh token is about 90 characters).
fn pairing(n: u32) -> Record {
    Record {
        refresh_token: Secret::new(format!(
            "5Aep861TSESvWeug_xvFHRBTTbf_YrTWgEyjBJrfgqjJdLWaR8RJ8YQ9vLoN3xeB1AFnYxJkDTg{n:012}"
        )),
        client_id:
            "3MVG9IHf89I1t8hrvswazsWedXWY0i1qK20PSFaInvUgLFB6vrcb9bbWFTSIHpO8G2jxBLJA6uZGyPFC5Aejq"
                .into(),
        dialect: Dialect::Salesforce,
        login_url: "https://login.salesforce.com".into(),
        token_url: "https://login.salesforce.com/services/oauth2/token".into(),
        revoke_url: Some("https://login.salesforce.com/services/oauth2/revoke".into()),
        instance_url: "https://acme.my.salesforce.com".into(),
        identity_url: "https://login.salesforce.com/id/00D5g000004ABCDEAA/0055g00000AbCdEAAZ"
            .into(),
        scope: "api refresh_token".into(),
        issued_at_ms: 1_700_000_000_000,
        paired_at: 1_700_000_000,
        grant: Default::default(),
    }
}

fn print_rows(medium: &str, sweep: &Sweep) {
    for s in &sweep.steps {
        println!(
            "| {medium} | {} | {} | {} | {} | {} |",
            s.label, s.erases, s.bytes, s.cut_points, s.survived
        );
    }
}

fn main() -> ExitCode {
    let steps = [
        ("pair", Step::Save(pairing(1))),
        ("refresh, same refresh token", Step::Save(pairing(1))),
        ("refresh, rotated", Step::Save(pairing(2))),
        ("refresh, rotated", Step::Save(pairing(3))),
        ("forget", Step::Wipe),
    ];
    let media = [
        ("NOR, 4 KiB sectors, byte writes", NorFlash::nor(4096, 2)),
        ("NAND, 128 KiB blocks, 2 KiB pages", {
            let chip = NorFlash::nand(128 * 1024, 2048, 3);
            chip.mark_bad(0);
            chip
        }),
    ];
    let record_len = record::to_bytes(&pairing(1), 1)
        .map(|b| b.len())
        .unwrap_or(0);
    println!("Record: {record_len} bytes (header 16, payload, CRC 4).");
    println!();
    println!("| medium | operation | erases | bytes programmed | power cuts tried | survived |");
    println!("|---|---|---:|---:|---:|---:|");
    let mut total = Sweep::default();
    for (medium, chip) in &media {
        let sweep = sweep_power_cuts(chip, &steps);
        print_rows(medium, &sweep);
        total.steps.extend(sweep.steps);
        total.failures.extend(sweep.failures);
    }
    // Across the sequence number's wrap: slot A starts at u32::MAX - 1.
    let chip = NorFlash::nor(4096, 2);
    let mut raw = chip.bytes();
    if let Ok(seeded) = record::to_bytes(&pairing(0), u32::MAX - 1) {
        raw[..seeded.len()].copy_from_slice(&seeded);
    }
    chip.set_bytes(&raw);
    let wrap = sweep_power_cuts(
        &chip,
        &[
            ("rotated, seq to u32::MAX", Step::Save(pairing(1))),
            ("rotated, seq wraps to 0", Step::Save(pairing(2))),
        ],
    );
    print_rows("NOR, across the wrap", &wrap);
    total.steps.extend(wrap.steps);
    total.failures.extend(wrap.failures);
    println!();
    println!(
        "Power cuts: {} tried, {} survived (each: reboot read old or new, then the operation \
         succeeded).",
        total.cut_points(),
        total.survived()
    );
    if total.failures.is_empty() && total.survived() == total.cut_points() {
        ExitCode::SUCCESS
    } else {
        eprintln!("FAILED: {:#?}", total.failures);
        ExitCode::FAILURE
    }
}
