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

#[test]
fn concurrent_forced_pairings_leave_no_grant_unrevoked() {
    let env = Env::start(fast());
    env.pair_approved();
    let mut a = env.spawn(&["pair", "--force", "--json"]);
    let mut b = env.spawn(&["pair", "--force", "--json"]);
    let code_a = a.event("code", RUN_LIMIT);
    let code_b = b.event("code", RUN_LIMIT);
    env.approve(code_a["verification_uri_complete"].as_str().unwrap());
    env.approve(code_b["verification_uri_complete"].as_str().unwrap());
    assert_eq!(a.finish(RUN_LIMIT).code(), 0);
    assert_eq!(b.finish(RUN_LIMIT).code(), 0);
    // Three grants were made; two are replaced and must be revoked: the first pairing's and
    // the one of the two new ones that was stored first.
    assert_eq!(env.sim().revoked_refresh_tokens(), 2);
    assert_eq!(env.run(&["token"]).code(), 0);
}

#[test]
fn a_full_disk_stops_a_rotation_before_it_is_requested() {
    let env = Env::start(rotating());
    let Some(mount) = Mount::tmpfs(&env.scratch.0.join("small"), "64k") else {
        return;
    };
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
