//! Which local directories sfpair may trust to hold its files: the one home of the rule the
//! store, the outbox and the broker's socket follow.
//!
//! A directory is trusted when it and every directory above it belong to the running user or
//! root, and none of them can be written by another user, unless it is sticky (`/tmp`): in a
//! sticky directory others may add names but cannot rename or remove ours. Anything else lets
//! another local user swap a name we are about to use, after we checked it and before we use
//! it: a symbolic link renamed over a new socket turned the broker's `chown` against
//! `/etc/shadow`; an outbox moved aside let another user read and plant records.
//!
//! Not covered, as everywhere in sfpair: root, and other processes of sfpair's own user.
//!
//! Checks only; it creates, opens and changes nothing.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// The running user.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Who may own what sfpair trusts: the running user, or root.
pub fn trusted_owner(uid: u32) -> bool {
    uid == 0 || uid == euid()
}

/// Mode bits that let the group or others write.
const OTHERS_WRITE: u32 = 0o022;
/// The sticky bit: in such a directory only a name's owner may rename or remove it.
const STICKY: u32 = 0o1000;

/// Checks `dir` and every directory above it: each belongs to this user or root, and none is
/// writable by others unless it is sticky. Both the path as written and the path with its links
/// resolved are walked, since whoever may replace a link, or any directory its target goes
/// through, could redirect us. `what` names the setting in the message (`--socket`,
/// `--outbox`). A `dir` that does not exist yet is checked from its nearest existing ancestor.
pub fn check_dir_chain(dir: &Path, what: &str) -> Result<(), Error> {
    let written = absolute(dir)?;
    walk(&written, what)?;
    let mut existing = written.as_path();
    while fs::symlink_metadata(existing).is_err() {
        match existing.parent() {
            Some(parent) => existing = parent,
            None => return Ok(()),
        }
    }
    match fs::canonicalize(existing) {
        Ok(resolved) if resolved != existing => walk(&resolved, what),
        Ok(_) => Ok(()),
        Err(e) => Err(Error::config(format!(
            "cannot resolve {} for {what}: {e}",
            existing.display()
        ))),
    }
}

/// Checks every existing directory from `path` up to `/`.
fn walk(path: &Path, what: &str) -> Result<(), Error> {
    let mut at = Some(path);
    while let Some(here) = at {
        match fs::metadata(here) {
            Ok(meta) => check_one(here, &meta, what)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::config(format!(
                    "cannot check {} for {what}: {e}",
                    here.display()
                )));
            }
        }
        at = here.parent();
    }
    Ok(())
}

/// One directory of the chain.
fn check_one(dir: &Path, meta: &fs::Metadata, what: &str) -> Result<(), Error> {
    if !meta.is_dir() {
        return Err(Error::config(format!(
            "{} is not a directory: {what} needs a directory to keep its file in",
            dir.display()
        )));
    }
    let mode = meta.mode();
    let fix = if !trusted_owner(meta.uid()) {
        foreign_owner(meta.uid(), dir)
    } else if mode & OTHERS_WRITE != 0 && mode & STICKY == 0 {
        format!(
            "is writable by other users and not sticky (mode {:o}): run: chmod go-w {} \
             (or chmod +t, as /tmp is)",
            mode & 0o7777,
            dir.display()
        )
    } else {
        return Ok(());
    };
    Err(Error::config(format!(
        "{} {fix}; until then another user could swap what sfpair keeps there, so {what} \
         there is refused",
        dir.display()
    )))
}

/// What to say of `path`, owned by `uid`, neither this user nor root: whose it is, and the
/// `chown` that makes it ours.
pub fn foreign_owner(uid: u32, path: &Path) -> String {
    format!(
        "belongs to uid {uid}, not to this user ({}) or root: run: chown {} {}",
        euid(),
        euid(),
        path.display()
    )
}

/// `dir` made absolute against the working directory, without touching the file system.
fn absolute(dir: &Path) -> Result<PathBuf, Error> {
    if dir.is_absolute() {
        return Ok(dir.to_path_buf());
    }
    let here = std::env::current_dir()
        .map_err(|e| Error::config(format!("cannot read the working directory: {e}")))?;
    Ok(here.join(dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sfpair-trust-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }

    fn chmod(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_private_chain_passes_and_a_missing_tail_is_checked_from_what_exists() {
        let dir = scratch("private");
        check_dir_chain(&dir, "--socket").unwrap();
        check_dir_chain(&dir.join("not/yet"), "--socket").unwrap();
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_directory_or_ancestor_others_can_write_is_refused_unless_sticky() {
        let top = scratch("shared");
        let inner = top.join("inner");
        fs::create_dir(&inner).unwrap();
        chmod(&inner, 0o700);
        for mode in [0o777, 0o775, 0o757] {
            chmod(&top, mode);
            let e = check_dir_chain(&inner, "--socket").unwrap_err();
            assert!(e.message().contains("writable by other users"), "{e}");
            assert!(e.message().contains(&top.display().to_string()), "{e}");
            assert!(e.message().contains("--socket"), "{e}");
        }
        chmod(&top, 0o1777); // as /tmp
        check_dir_chain(&inner, "--socket").unwrap();
        check_dir_chain(&top, "--socket").unwrap();
        fs::remove_dir_all(top).unwrap();
    }

    #[test]
    fn a_link_is_checked_where_it_points_too() {
        let top = scratch("link");
        let shared = top.join("shared");
        fs::create_dir_all(shared.join("inner")).unwrap();
        chmod(&shared, 0o777);
        std::os::unix::fs::symlink(shared.join("inner"), top.join("link")).unwrap();
        let e = check_dir_chain(&top.join("link"), "--socket").unwrap_err();
        assert!(e.message().contains(&shared.display().to_string()), "{e}");
        chmod(&shared, 0o755);
        check_dir_chain(&top.join("link"), "--socket").unwrap();
        fs::remove_dir_all(top).unwrap();
    }

    #[test]
    fn a_file_in_the_chain_is_not_a_directory() {
        let dir = scratch("file");
        let file = dir.join("f");
        fs::write(&file, "x").unwrap();
        let e = check_dir_chain(&file, "--outbox").unwrap_err();
        assert!(e.message().contains("not a directory"), "{e}");
        fs::remove_dir_all(dir).unwrap();
    }
}
