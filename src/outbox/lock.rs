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
//! Locks go with the process: a `kill -9` releases them. The files are opened by `disk.rs`
//! (relative to the held directory, created 0600, never through a link).

use std::fs::File;
use std::io;

/// Held while this process delivers; dropping it lets another deliverer in.
pub struct DeliverLock {
    _file: File,
}

/// The delivery lock on `file` (the outbox's `deliver.lock`, opened by `disk.rs`), or `None`
/// when another process holds it now.
pub fn try_deliver_lock(file: File) -> io::Result<Option<DeliverLock>> {
    match file.try_lock() {
        Ok(()) => Ok(Some(DeliverLock { _file: file })),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}
