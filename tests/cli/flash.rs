//! The raw-flash store end to end: `sfpair pair --store flash-image:...` against the simulator,
//! then `token`, `status` and `forget`, reading the real image file's slots with the library's
//! codec. Bad flash specs and a record from a newer sfpair, through the real binary.
//! Needs the `flash` feature (a default one).
#![cfg(feature = "flash")]

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sfpair::store::record::{self, Decoded};
use sfpair_sim::Config;

use crate::harness::{Env, Output, RUN_LIMIT, Running, fast};

const SLOT: usize = 4096;
const SIZE: usize = 4 * SLOT;

fn image_spec(env: &Env) -> (PathBuf, String) {
    let path = env.scratch.0.join("flash/sfpair.img");
    let spec = format!("flash-image:{}:erase=4K,size=16K", path.display());
    (path, spec)
}

fn slot(image: &Path, index: usize) -> Vec<u8> {
    fs::read(image).unwrap()[index * SLOT..(index + 1) * SLOT].to_vec()
}

fn decoded(image: &Path, index: usize) -> Decoded {
    record::decode(&slot(image, index)).expect("a valid record in the slot")
}

fn erased(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0xFF)
}

/// Runs sfpair with this store and `RUST_LOG=sfpair=debug`.
fn run_debug(env: &Env, args: &[&str]) -> Output {
    let mut c = env.command(args);
    c.env("RUST_LOG", "sfpair=debug");
    Running::spawn(c).finish(RUN_LIMIT)
}

fn pair(env: &Env, spec: &str) -> Output {
    let mut c = env.command(&["pair", "--json", "--store", spec]);
    c.env("RUST_LOG", "sfpair=debug");
    let mut run = Running::spawn(c);
    let code = run.event("code", RUN_LIMIT);
    env.approve(code["verification_uri_complete"].as_str().unwrap());
    let out = run.finish(RUN_LIMIT);
    assert_eq!(out.code(), 0, "{out:?}");
    out
}

#[test]
fn pair_token_status_and_forget_on_a_flash_image() {
    let env = Env::start(fast());
    let (image, spec) = image_spec(&env);
    let paired = pair(&env, &spec);
    let meta = fs::metadata(&image).unwrap();
    assert_eq!(meta.len() as usize, SIZE);
    assert_eq!(meta.mode() & 0o777, 0o600);
    let a = decoded(&image, 0);
    assert_eq!(a.seq, 1);
    assert_eq!(a.record.instance_url, env.base_url);
    assert!(erased(&slot(&image, 1)), "slot B untouched");
    let rt = a.record.refresh_token.expose().to_string();
    assert!(paired.stderr.contains("erased slot A"), "{}", paired.stderr);
    assert!(paired.stderr.contains("programmed"), "{}", paired.stderr);
    assert!(!paired.stderr.contains(&rt) && !paired.stdout.contains(&rt));

    // No rotation: the refresh returns the same refresh token, and nothing is written.
    let before = fs::read(&image).unwrap();
    let out = run_debug(&env, &["token", "--store", &spec]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.trim().starts_with("00D"), "{}", out.stdout);
    assert_eq!(fs::read(&image).unwrap(), before, "a refresh wrote nothing");
    assert!(!out.stderr.contains("erased"), "{}", out.stderr);

    let out = env.run(&["status", "--store", &spec]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains(&spec[..spec.find(":erase").unwrap()]));

    let out = env.run(&["forget", "--store", &spec]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(env.sim().revoked_refresh_tokens(), 1);
    let after = fs::read(&image).unwrap();
    assert_eq!(after.len(), SIZE);
    assert!(
        erased(&after),
        "both slots erased: the token is physically gone"
    );
    assert_eq!(env.run(&["token", "--store", &spec]).code(), 5);
}

#[test]
fn rotated_refresh_tokens_alternate_between_the_slots() {
    let env = Env::start(Config {
        rotate_refresh_tokens: true,
        ..fast()
    });
    let (image, spec) = image_spec(&env);
    pair(&env, &spec);
    let first = decoded(&image, 0);
    let out = run_debug(&env, &["token", "--store", &spec]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stderr.contains("erased slot B"), "{}", out.stderr);
    let (a, b) = (decoded(&image, 0), decoded(&image, 1));
    assert_eq!(a, first, "the previous pairing stays in slot A");
    assert_eq!(b.seq, 2);
    assert_ne!(b.record.refresh_token, first.record.refresh_token);
    let out = env.run(&["token", "--store", &spec]);
    assert_eq!(out.code(), 0, "{out:?}");
    let a = decoded(&image, 0);
    assert_eq!(a.seq, 3, "the older slot is the next one written");
    assert_ne!(a.record.refresh_token, b.record.refresh_token);
    // The newest token is the live one: a further refresh works.
    assert_eq!(env.run(&["token", "--store", &spec]).code(), 0);
}

#[test]
fn bad_flash_specs_exit_2_and_say_what_to_use() {
    let env = Env::start(fast());
    let (image, spec) = image_spec(&env);
    let dir = image.parent().unwrap();
    fs::create_dir_all(dir).unwrap();
    let truncated = vec![0xFF; 5000];
    fs::write(&image, &truncated).unwrap();
    let cases = [
        ("mtd:/dev/mtdblock0".to_string(), "power cut"),
        ("mtd:/dev/null".to_string(), "not an MTD"),
        (format!("mtd:{}", image.display()), "flash-image:"),
        (
            format!("flash-image:{}/x.img:erase=100", dir.display()),
            "too small",
        ),
        (
            format!("flash-image:{}/x.img:colour=red", dir.display()),
            "unknown flash-image option",
        ),
        (spec.clone(), "truncated"),
        ("nvram:0".to_string(), "mtd:/dev/mtdN"),
    ];
    for (spec, needle) in cases {
        let out = env.run(&["status", "--store", &spec]);
        assert_eq!(out.code(), 2, "{spec}: {out:?}");
        assert!(out.stderr.contains(needle), "{spec}: {}", out.stderr);
    }
    assert_eq!(fs::read(&image).unwrap(), truncated, "left as it was");
    assert!(!dir.join("x.img").exists());
}

#[test]
fn a_pairing_from_a_newer_sfpair_is_kept_and_pair_refuses_before_showing_a_code() {
    let env = Env::start(fast());
    let (image, spec) = image_spec(&env);
    // What a newer sfpair would have written: format version 2, checksum matching.
    let record = sfpair::store::Record {
        refresh_token: sfpair::secret::Secret::new("5Aep861.from-a-newer-sfpair"),
        client_id: crate::harness::CLIENT_ID.into(),
        dialect: sfpair::flow::dialect::Dialect::Salesforce,
        login_url: env.base_url.clone(),
        token_url: format!("{}/services/oauth2/token", env.base_url),
        revoke_url: None,
        instance_url: env.base_url.clone(),
        identity_url: String::new(),
        scope: "api refresh_token".into(),
        issued_at_ms: 0,
        paired_at: 0,
        grant: Default::default(),
    };
    let mut bytes = record::to_bytes(&record, 7).unwrap().to_vec();
    bytes[4] = record::VERSION + 1;
    let end = bytes.len() - record::CRC_LEN;
    let crc = sfpair::store::crc32::crc32(&bytes[..end]);
    bytes[end..].copy_from_slice(&crc.to_le_bytes());
    let mut contents = vec![0xFF; SIZE];
    contents[..bytes.len()].copy_from_slice(&bytes);
    fs::create_dir_all(image.parent().unwrap()).unwrap();
    fs::write(&image, &contents).unwrap();

    let out = env.run(&["pair", "--json", "--store", &spec]);
    assert_eq!(out.code(), 8, "{out:?}");
    assert!(out.stderr.contains("upgrade sfpair"), "{}", out.stderr);
    assert!(
        out.events().iter().all(|e| e["event"] != "code"),
        "no code shown"
    );
    assert!(env.requests().is_empty(), "nothing asked of the server");
    assert_eq!(fs::read(&image).unwrap(), contents, "kept as it is");

    let out = env.run(&["token", "--store", &spec]);
    assert_eq!(out.code(), 5, "{out:?}");
    assert!(out.stderr.contains("upgrade sfpair"), "{}", out.stderr);

    // `forget` is the explicit way out: it erases (it cannot revoke a record it cannot read).
    let out = env.run(&["forget", "--store", &spec]);
    assert!(erased(&fs::read(&image).unwrap()), "{out:?}");
    pair(&env, &spec);
    assert_eq!(decoded(&image, 0).seq, 1);
}
