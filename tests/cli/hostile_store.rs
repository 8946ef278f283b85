//! A hostile local user: the attacks on the store, replayed against the real binary.
//! Each one must be refused with exit 2 and leave what it aimed at untouched, without hanging.

use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt, symlink};
use std::time::Duration;

use crate::harness::{Env, Running, fast, stored_record};

fn store_arg(path: &std::path::Path) -> String {
    format!("file:{}", path.display())
}

#[test]
fn forget_through_a_link_to_a_non_record_erases_nothing() {
    let env = Env::start(fast());
    let dir = env.scratch.0.join("r");
    fs::create_dir_all(&dir).unwrap();
    let victim = dir.join("victim");
    fs::write(&victim, b"precious, not a token\n").unwrap();
    symlink(&victim, dir.join("token")).unwrap();
    let out = env.run(&["forget", "--store", &store_arg(&dir.join("token"))]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(
        out.stderr.contains("neither erases nor replaces"),
        "{}",
        out.stderr
    );
    assert_eq!(fs::read(&victim).unwrap(), b"precious, not a token\n");
    // A config file named as the store directly.
    let board = dir.join("board.toml");
    fs::write(&board, b"[board]\n").unwrap();
    let out = env.run(&["forget", "--store", &store_arg(&board)]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert_eq!(fs::read(&board).unwrap(), b"[board]\n");
    assert!(env.requests().iter().all(|r| !r.contains("revoke")));
}

#[test]
fn a_fifo_or_a_device_as_the_store_is_refused_at_once() {
    let env = Env::start(fast());
    let fifo = env.scratch.0.join("fifo");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    for args in [&["status"][..], &["token"], &["forget"]] {
        let mut args = args.to_vec();
        let spec = store_arg(&fifo);
        args.extend(["--store", &spec]);
        // Bounded: the old binary hung here until the harness killed it.
        let out = Running::spawn(env.command(&args)).finish(Duration::from_secs(20));
        assert_eq!(out.code(), 2, "{args:?}: {out:?}");
        assert!(out.stderr.contains("a FIFO"), "{}", out.stderr);
    }
    let out = env.run(&["forget", "--store", "file:/dev/null"]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr.contains("a character device"), "{}", out.stderr);
    let out = env.run(&["pair", "--json", "--store", "file:/dev/null"]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(
        fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device()
    );
}

#[test]
fn a_linked_token_path_keeps_its_link_and_the_rotated_token() {
    let env = Env::start(sfpair_sim::Config {
        rotate_refresh_tokens: true,
        ..fast()
    });
    env.pair_approved();
    let state = env.token_path().parent().unwrap().to_path_buf();
    let persist = env.scratch.0.join("persist");
    fs::create_dir_all(&persist).unwrap();
    fs::set_permissions(&persist, fs::Permissions::from_mode(0o700)).unwrap();
    fs::rename(env.token_path(), persist.join("token")).unwrap();
    symlink(persist.join("token"), env.token_path()).unwrap();
    let before = stored_record(&persist.join("token")).refresh_token;
    let out = env.run(&["token"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        fs::symlink_metadata(env.token_path())
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let after = stored_record(&persist.join("token")).refresh_token;
    assert_ne!(before, after, "rotated, and stored where the link points");
    assert_eq!(env.run(&["token"]).code(), 0);
    assert!(!state.join(".token.tmp").exists());
}

#[test]
fn a_world_writable_directory_is_not_trusted() {
    let env = Env::start(fast());
    env.pair_approved();
    let state = env.token_path().parent().unwrap().to_path_buf();
    fs::set_permissions(&state, fs::Permissions::from_mode(0o777)).unwrap();
    let out = env.run(&["status"]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr.contains("chmod 700"), "{}", out.stderr);
    fs::set_permissions(&state, fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(env.run(&["status"]).code(), 0);
}

/// Needs root to give the record to another user; scripts/test runs it (`--ignored`) as root
/// and says NOT RUN otherwise.
#[test]
#[ignore = "needs root: chowns the record to uid 65534"]
fn a_record_another_user_owns_is_not_trusted() {
    assert_root();
    let env = Env::start(fast());
    env.pair_approved();
    std::os::unix::fs::chown(env.token_path(), Some(65534), None).unwrap();
    let out = env.run(&["call", "GET", "/services/data/"]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr.contains("uid 65534"), "{}", out.stderr);
    assert!(
        env.requests()
            .iter()
            .all(|r| !r.contains("/services/data/"))
    );
}

/// The root-only tests fail, never pass, when they are not root (run with `--ignored`).
pub fn assert_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "this test needs root (scripts/test runs it as root)"
    );
}

#[test]
fn an_empty_file_path_is_a_usage_error() {
    let env = Env::start(fast());
    let out = env.run(&["status", "--store", "file:"]);
    assert_eq!(out.code(), 2, "{out:?}");
}

/// A small tmpfs mounted for one test (root only), unmounted when dropped.
pub struct Mount(pub std::path::PathBuf);

impl Mount {
    /// Mounts it, or fails the test: the tests that need one are `#[ignore]`d, and run as
    /// root by scripts/test, where a tmpfs can always be mounted.
    pub fn tmpfs(dir: &std::path::Path, size: &str) -> Mount {
        assert_root();
        fs::create_dir_all(dir).unwrap();
        let ok = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "mount -t tmpfs failed on {}", dir.display());
        Mount(dir.to_path_buf())
    }

    /// Writes `filler` until the filesystem is full (bounded by its size); removing that file
    /// makes the room again.
    pub fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.0.join("filler");
        let mut filler = fs::File::create(&path).unwrap();
        for chunk in [64 * 1024, 4096, 1] {
            let bytes = vec![0u8; chunk];
            for _ in 0..100_000 {
                if filler.write_all(&bytes).is_err() {
                    break;
                }
            }
        }
        assert!(filler.write_all(b"x").is_err(), "the filesystem is full");
        path
    }

    pub fn remount(&self, options: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
#[ignore = "needs root: mounts a tmpfs"]
fn a_flash_image_on_a_read_only_mount_still_reads() {
    let env = Env::start(fast());
    let mount = Mount::tmpfs(&env.scratch.0.join("ro"), "1m");
    let spec = format!(
        "flash-image:{}:erase=4K,size=16K",
        mount.0.join("sfpair.img").display()
    );
    let mut run = env.spawn(&["pair", "--json", "--store", &spec]);
    let code = run.event("code", crate::harness::RUN_LIMIT);
    env.approve(code["verification_uri_complete"].as_str().unwrap());
    assert_eq!(run.finish(crate::harness::RUN_LIMIT).code(), 0);
    mount.remount("ro");
    let out = env.run(&["status", "--store", &spec]);
    assert_eq!(out.code(), 0, "{out:?}");
    let out = env.run(&["token", "--store", &spec]);
    assert_eq!(out.code(), 0, "{out:?}");
}

#[test]
#[ignore = "needs root: mounts a tmpfs"]
fn a_file_store_on_a_read_only_mount_still_refreshes_without_rotation() {
    let env = Env::start(fast());
    let mount = Mount::tmpfs(&env.scratch.0.join("ro-file"), "1m");
    let spec = store_arg(&mount.0.join("token"));
    let mut run = env.spawn(&["pair", "--json", "--store", &spec]);
    let code = run.event("code", crate::harness::RUN_LIMIT);
    env.approve(code["verification_uri_complete"].as_str().unwrap());
    assert_eq!(run.finish(crate::harness::RUN_LIMIT).code(), 0);
    mount.remount("ro");
    assert_eq!(env.run(&["status", "--store", &spec]).code(), 0);
    let out = env.run(&["token", "--store", &spec]);
    assert_eq!(out.code(), 0, "{out:?}");
}
