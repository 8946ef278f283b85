//! The file store's pairing lock: an flock on `.NAME.pairing` beside the record (the file the
//! store path resolves to), taken without waiting for the whole of a pairing, so a second
//! `sfpair pair` (or `sfpair run`'s pairing) is refused with a message instead of replacing the
//! first one's approval. A lock of its own, not the directory lock that refreshes and saves
//! hold: a pairing waits minutes for a person, and `token` or the broker must not wait with it.
//!
//! The file is created 0600 in the record's checked directory (created 0700 if missing), never
//! through a link, and never removed: removing a lock file another process may be opening would
//! let two hold "the" lock. It holds nothing. Locks go with the process: a `kill -9` frees it.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use super::{FileStore, check_dir, dir_of};
use crate::error::Error;

impl FileStore {
    /// Takes the pairing lock if nobody holds it (`false` when another process does).
    pub(super) fn lock_pairing(&mut self) -> Result<bool, Error> {
        if self.pairing.is_some() {
            return Ok(true);
        }
        let target = self.target()?;
        let dir = dir_of(&target);
        check_dir(dir)?;
        self.make_dir(dir)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(lock_path(&target))
            .map_err(|e| self.fail("open the pairing lock beside", e))?;
        match file.try_lock() {
            Ok(()) => {
                self.pairing = Some(file);
                Ok(true)
            }
            Err(std::fs::TryLockError::WouldBlock) => Ok(false),
            Err(std::fs::TryLockError::Error(e)) => Err(self.fail("lock the pairing of", e)),
        }
    }
}

/// `.NAME.pairing` beside the record `NAME`.
fn lock_path(target: &std::path::Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    dir_of(target).join(format!(".{name}.pairing"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TokenStore;

    #[test]
    fn one_pairing_at_a_time_and_the_lock_goes_with_its_holder() {
        let dir = std::env::temp_dir().join(format!("sfpair-pairing-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("state/token");
        let (mut first, mut second) = (FileStore::new(&path), FileStore::new(&path));
        assert!(first.try_lock_pairing().unwrap(), "free: taken");
        assert!(
            first.try_lock_pairing().unwrap(),
            "taking it twice is harmless"
        );
        assert!(!second.try_lock_pairing().unwrap(), "held by the first");
        first.unlock_pairing();
        assert!(second.try_lock_pairing().unwrap(), "free again");
        drop(second);
        assert!(
            first.try_lock_pairing().unwrap(),
            "dropping the store frees it"
        );
        use std::os::unix::fs::PermissionsExt;
        let lock = std::fs::metadata(dir.join("state/.token.pairing")).unwrap();
        assert_eq!(lock.permissions().mode() & 0o777, 0o600);
        assert_eq!(lock.len(), 0, "it holds nothing");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
