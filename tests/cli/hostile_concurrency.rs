//! A hostile local user, concurrency and full disks: several sfpair processes on one store, against a
//! server that rotates refresh tokens and kills the grant when a rotated-out token is reused.

use sfpair_sim::Config;

use crate::harness::{Env, RUN_LIMIT, fast, stored_record};
use crate::hostile_store::Mount;

fn rotating() -> Config {
    Config {
        rotate_refresh_tokens: true,
        ..fast()
    }
}

#[test]
fn concurrent_token_runs_with_rotation_all_succeed_and_keep_the_grant() {
    let env = Env::start(rotating());
    env.pair_approved();
    let runs: Vec<_> = (0..8).map(|_| env.spawn(&["token"])).collect();
    for run in runs {
        let out = run.finish(RUN_LIMIT);
        assert_eq!(out.code(), 0, "{out:?}");
    }
    // The stored token is the live one: one more refresh works.
    let out = env.run(&["token"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let refreshes = env
        .requests()
        .iter()
        .filter(|r| r.contains(" refresh_token 200"))
        .count();
    assert_eq!(refreshes, 9);
}

/// Two forced pairings at once: the store's pairing lock lets one run and refuses the other
/// before it asks for a code, so no grant is made that nobody stores; the one pairing that
/// runs revokes the grant it replaces.
#[test]
fn concurrent_forced_pairings_run_one_at_a_time_and_leave_no_grant_unrevoked() {
    let env = Env::start(fast());
    env.pair_approved();
    let a = env.spawn(&["pair", "--force", "--json"]);
    let b = env.spawn(&["pair", "--force", "--json"]);
    let deadline = std::time::Instant::now() + RUN_LIMIT;
    let codes = || env.sim().pending_user_codes();
    while codes().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no code");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(env.sim().approve(&codes()[0]));
    let (a, b) = (a.finish(RUN_LIMIT), b.finish(RUN_LIMIT));
    let mut exits = [a.code(), b.code()];
    exits.sort();
    assert_eq!(exits, [0, 2], "{a:?} {b:?}");
    let refused = if a.code() == 2 { &a } else { &b };
    assert!(
        refused.stderr.contains("another sfpair is pairing"),
        "{}",
        refused.stderr
    );
    let codes_asked = env
        .requests()
        .iter()
        .filter(|l| l.contains(" device_code "))
        .count();
    assert_eq!(codes_asked, 2, "the first pairing's and one more");
    assert_eq!(env.sim().revoked_refresh_tokens(), 1);
    assert_eq!(env.run(&["token"]).code(), 0);
}

#[test]
#[ignore = "needs root: mounts a small tmpfs to fill"]
fn a_full_disk_stops_a_rotation_before_it_is_requested() {
    let env = Env::start(rotating());
    let mount = Mount::tmpfs(&env.scratch.0.join("small"), "64k");
    let store = format!("file:{}", mount.0.join("token").display());
    let mut run = env.spawn(&["pair", "--json", "--store", &store]);
    let code = run.event("code", RUN_LIMIT);
    env.approve(code["verification_uri_complete"].as_str().unwrap());
    assert_eq!(run.finish(RUN_LIMIT).code(), 0);
    let before = stored_record(&mount.0.join("token")).refresh_token;
    // Fill the filesystem.
    let filler = mount.0.join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 128 * 1024]);
    let out = env.run(&["token", "--store", &store]);
    assert_eq!(out.code(), 8, "{out:?}");
    assert!(out.stderr.contains("no refresh was sent"), "{}", out.stderr);
    assert_eq!(stored_record(&mount.0.join("token")).refresh_token, before);
    // Room again: the grant was never touched, so it still works.
    std::fs::remove_file(&filler).unwrap();
    let out = env.run(&["token", "--store", &store]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_ne!(stored_record(&mount.0.join("token")).refresh_token, before);
}
