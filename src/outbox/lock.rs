//! The outbox's two locks, each an `flock` on its own file in the outbox directory, never
//! replaced (a lock on a file that a rename replaces would lock nothing):
//!
//! - `lock`: every mutation and every read of the queue (push, next_batch, settle, compact,
//!   retry_dead, status), held only for that one operation, so two `send` processes never
//!   interleave a write and a reader never sees a compaction half done;
//! - `deliver.lock`: taken without waiting by whoever delivers (`flush`, `run`), for the whole
//!   of its delivery, so two deliverers never send the same batch at once. It is not held by
//!   the queue operations, and the queue lock is never held during HTTP.
//!
//! Locks go with the process: a `kill -9` releases them.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Opens (creating 0600) a lock file, never through a symbolic link.
pub fn open_lock_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Held while this process delivers; dropping it lets another deliverer in.
pub struct DeliverLock {
    _file: File,
}

/// The delivery lock, or `None` when another process holds it now.
pub fn try_deliver_lock(dir: &Path) -> io::Result<Option<DeliverLock>> {
    let file = open_lock_file(&dir.join("deliver.lock"))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(DeliverLock { _file: file })),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}
