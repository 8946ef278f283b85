//! The outbox's I/O seam: the few file operations it does in its directory, named by file name.
//!
//! [`RealDisk`] is the directory on the filesystem; the tests' power-cut model (`model.rs`)
//! implements the same trait and loses what was not synced. Everything the outbox writes goes
//! through here, so the model sees every write boundary. Files are created 0600 from the first
//! byte and never opened through a symbolic link (O_NOFOLLOW); the directory is 0700.
//!
//! This file knows nothing of frames or records; it must not log file contents.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::lock;

/// The operations the outbox needs. Reads do not count as write boundaries.
pub trait Disk: Send {
    /// The file's length, `None` when it does not exist.
    fn len(&mut self, name: &str) -> io::Result<Option<u64>>;
    /// Reads at `offset`; fewer bytes than `buf` holds only at the end of the file.
    fn read_at(&mut self, name: &str, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// Appends `bytes` in one write, creating the file (0600) if missing: `true` when it did
    /// (the caller then syncs the directory too).
    fn append(&mut self, name: &str, bytes: &[u8]) -> io::Result<bool>;
    fn truncate(&mut self, name: &str, len: u64) -> io::Result<()>;
    fn fsync(&mut self, name: &str) -> io::Result<()>;
    /// Replaces `to` with `from`; durable only after [`Disk::fsync_dir`].
    fn rename(&mut self, from: &str, to: &str) -> io::Result<()>;
    /// Removes the file; a missing file is not an error.
    fn remove(&mut self, name: &str) -> io::Result<()>;
    fn fsync_dir(&mut self) -> io::Result<()>;
    /// Takes the exclusive lock every mutation runs under (other processes wait).
    fn lock(&mut self) -> io::Result<()>;
    fn unlock(&mut self);
}

/// The outbox directory on the filesystem.
pub struct RealDisk {
    dir: PathBuf,
    lock: File,
}

/// Creates `dir` (0700, with its parents) when missing and checks it: a directory owned by this
/// user or root that nobody else can write to (else another user could swap the queue).
pub fn prepare_dir(dir: &Path) -> io::Result<()> {
    match DirBuilder::new().recursive(true).mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = fs::metadata(dir)?;
    if !meta.is_dir() {
        return Err(io::Error::other("it is not a directory"));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me && meta.uid() != 0 {
        return Err(io::Error::other(format!(
            "it belongs to uid {}, not to this user (uid {me}) or root",
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(io::Error::other(format!(
            "others can write to it (mode {:o}): chmod 700 it",
            meta.mode() & 0o7777
        )));
    }
    Ok(())
}

impl RealDisk {
    pub fn open(dir: &Path) -> io::Result<RealDisk> {
        prepare_dir(dir)?;
        Ok(RealDisk {
            dir: dir.to_path_buf(),
            lock: lock::open_lock_file(&dir.join("lock"))?,
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn open_read(&self, name: &str) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(self.path(name))
    }
}

impl Disk for RealDisk {
    fn len(&mut self, name: &str) -> io::Result<Option<u64>> {
        match self.open_read(name) {
            Ok(f) => {
                let meta = f.metadata()?;
                if !meta.is_file() {
                    return Err(io::Error::other("it is not a regular file"));
                }
                Ok(Some(meta.len()))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn read_at(&mut self, name: &str, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let f = self.open_read(name)?;
        let mut done = 0;
        while done < buf.len() {
            match f.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    fn append(&mut self, name: &str, bytes: &[u8]) -> io::Result<bool> {
        let path = self.path(name);
        let open = |create: bool| {
            OpenOptions::new()
                .append(true)
                .create_new(create)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&path)
        };
        let (mut f, created) = match open(false) {
            Ok(f) => (f, false),
            Err(e) if e.kind() == io::ErrorKind::NotFound => (open(true)?, true),
            Err(e) => return Err(e),
        };
        f.write_all(bytes)?;
        Ok(created)
    }

    fn truncate(&mut self, name: &str, len: u64) -> io::Result<()> {
        OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(self.path(name))?
            .set_len(len)
    }

    fn fsync(&mut self, name: &str) -> io::Result<()> {
        self.open_read(name)?.sync_all()
    }

    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        fs::rename(self.path(from), self.path(to))
    }

    fn remove(&mut self, name: &str) -> io::Result<()> {
        match fs::remove_file(self.path(name)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    fn fsync_dir(&mut self) -> io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }

    fn lock(&mut self) -> io::Result<()> {
        self.lock.lock()
    }

    fn unlock(&mut self) {
        // Nothing to do on failure: the lock goes with the handle at exit anyway.
        let _ = self.lock.unlock();
    }
}
