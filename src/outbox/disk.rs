//! The outbox's I/O seam: the few file operations it does in its directory, named by file name.
//!
//! [`RealDisk`] is the directory on the filesystem; the tests' power-cut model (`model.rs`)
//! implements the same trait and loses what was not synced. Everything the outbox writes goes
//! through here, so the model sees every write boundary.
//!
//! Another local user must not be able to swap the queue, plant records or read them
//! (docs/outbox.md, "On disk"). So, for the real directory:
//!
//! - every directory above it passes `trust::check_dir_chain` (ours or root's, and writable by
//!   others only if sticky), and the directory itself is ours or root's, not writable by
//!   others: nobody else can rename it away or put a directory of theirs in its place;
//! - it is opened once and held: every file is opened, created, renamed and removed relative
//!   to that descriptor (`openat` and friends), never through a path again, and never through
//!   a symbolic link (`O_NOFOLLOW`);
//! - every file is checked when it is opened (on the descriptor, so it is the file used): a
//!   regular file, ours or root's, that neither the group nor others may read or write. A file
//!   created here is 0600 from its first byte; the directory is created 0700.
//!
//! This file knows nothing of frames or records; it must not log file contents.

use std::ffi::CString;
use std::fs::{DirBuilder, File, Metadata};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt};
use std::path::Path;

use super::{DEAD, LOG, LOG_NEW, MARK};
use crate::error::Error;
use crate::trust::{self, euid, trusted_owner};

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
    /// Opens (creating 0600) a lock file of the directory, for the delivery lock.
    fn open_lock(&self, name: &str) -> io::Result<File>;
    /// Sets aside room for `bytes` more at the end of `name` (creating it empty, 0600, if
    /// missing: `true` when it did, and the caller syncs the directory), so that appending
    /// them later cannot fail for want of space; `StorageFull` when there is no such room.
    fn reserve(&mut self, name: &str, bytes: u64) -> io::Result<bool>;
}

/// The outbox directory on the filesystem, held open.
pub struct RealDisk {
    /// The directory: every operation goes through it, never through its path.
    fd: OwnedFd,
    lock: File,
}

/// The mode bits of a file that let the group or others in.
const SHARED: u32 = 0o077;
/// The mode bits of a directory that let the group or others write.
const OTHERS_WRITE: u32 = 0o022;

impl RealDisk {
    /// Opens `name` with `flags`, checked as [`RealDisk::open_at`] does, or creates it (0600,
    /// never through a link) when it is missing: `true` then, and the caller syncs the
    /// directory.
    fn open_or_create(&self, name: &str, flags: libc::c_int) -> io::Result<(File, bool)> {
        match self.open_at(name, flags) {
            Ok(f) => Ok((f, false)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let create =
                    flags | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
                Ok((open_at(&self.fd, name, create, 0o600)?, true))
            }
            Err(e) => Err(e),
        }
    }

    /// Checks the directories above `dir`, creates `dir` (0700, with its parents) when
    /// missing, opens and checks it, and opens (creating) its lock file. Refusals of trust
    /// are configuration errors (exit 2) saying what to run; other failures storage errors.
    pub fn open(dir: &Path) -> Result<RealDisk, Error> {
        trust::check_dir_chain(dir, "--outbox")?;
        let cannot = |e: io::Error| {
            Error::storage(format!(
                "cannot open the outbox directory {}: {e} (choose another with --outbox)",
                dir.display()
            ))
        };
        match DirBuilder::new().recursive(true).mode(0o700).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(cannot(e)),
        }
        let fd = open_dir(dir).map_err(cannot)?;
        let meta = borrowed_file(&fd).metadata().map_err(cannot)?;
        check_dir(dir, &meta)?;
        let lock = open_lock_at(&fd, "lock").map_err(|e| refusal(dir, "lock", e))?;
        let disk = RealDisk { fd, lock };
        // Every file there now, checked before anything is read: a planted one is refused
        // with exit 2 and what to run, before it is believed.
        for name in [LOG, MARK, DEAD, LOG_NEW, "deliver.lock"] {
            match disk.open_read(name) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(refusal(dir, name, e)),
            }
        }
        Ok(disk)
    }

    /// `openat(dir, name)` with `flags` (O_NOFOLLOW and O_CLOEXEC added), then the file's
    /// check on the descriptor.
    fn open_at(&self, name: &str, flags: libc::c_int) -> io::Result<File> {
        let file = open_at(
            &self.fd,
            name,
            flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0,
        )?;
        check_file(&file.metadata()?)?;
        Ok(file)
    }

    fn open_read(&self, name: &str) -> io::Result<File> {
        self.open_at(name, libc::O_RDONLY | libc::O_NONBLOCK)
    }
}

/// Why a file of the outbox is not used: another user could have planted it or may change it.
/// Carried inside an `io::Error` (PermissionDenied) so the outbox can say it as it is.
#[derive(Debug)]
pub struct Untrusted(pub String);

impl std::fmt::Display for Untrusted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Untrusted {}

fn untrusted(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, Untrusted(why))
}

/// The trust refusals, as the outbox reports them: configuration errors (exit 2) naming the
/// file; `None` for any other error.
pub fn untrusted_error(path: &Path, e: &io::Error) -> Option<Error> {
    let why = e.get_ref()?.downcast_ref::<Untrusted>()?;
    Some(Error::config(format!("{} {}", path.display(), why.0)))
}

/// An error from opening `name` in `dir`: a trust refusal, or a storage error.
fn refusal(dir: &Path, name: &str, e: io::Error) -> Error {
    let path = dir.join(name);
    untrusted_error(&path, &e)
        .unwrap_or_else(|| Error::storage(format!("cannot open {}: {e}", path.display())))
}

/// A file of the outbox, as opened: regular, ours or root's, private.
fn check_file(meta: &Metadata) -> io::Result<()> {
    if !meta.is_file() {
        return Err(untrusted(
            "is not a regular file: sfpair uses only its own files in the outbox; move it away"
                .into(),
        ));
    }
    if !trusted_owner(meta.uid()) {
        return Err(untrusted(format!(
            "belongs to uid {}, not to this user ({}) or root: another user may have planted it, \
             so it is not used; check it, then move it away or run: chown {} on it",
            meta.uid(),
            euid(),
            euid()
        )));
    }
    if meta.mode() & SHARED != 0 {
        return Err(untrusted(format!(
            "may be read or written by other users (mode {:o}): it is not used; check it, then \
             run: chmod 600 on it",
            meta.mode() & 0o7777
        )));
    }
    Ok(())
}

/// The outbox directory itself, as opened.
fn check_dir(dir: &Path, meta: &Metadata) -> Result<(), Error> {
    let fix = if !meta.is_dir() {
        "is not a directory".to_string()
    } else if !trusted_owner(meta.uid()) {
        crate::trust::foreign_owner(meta.uid(), dir)
    } else if meta.mode() & OTHERS_WRITE != 0 {
        format!(
            "may be written by other users (mode {:o}): run: chmod 700 {}",
            meta.mode() & 0o7777,
            dir.display()
        )
    } else {
        return Ok(());
    };
    Err(Error::config(format!(
        "the outbox directory {} {fix}; until then another user could swap the queue, so it is \
         not used",
        dir.display()
    )))
}

fn c_name(name: &str) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

fn open_dir(dir: &Path) -> io::Result<OwnedFd> {
    let path = CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: a valid NUL-terminated path; the result is checked.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: open returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `openat(dir, name, flags, mode)`; a symbolic link met with O_NOFOLLOW is said as such.
fn open_at(dir: &OwnedFd, name: &str, flags: libc::c_int, mode: libc::mode_t) -> io::Result<File> {
    let name = c_name(name)?;
    // SAFETY: `dir` is an open directory descriptor, `name` a valid NUL-terminated string;
    // the result is checked.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags, mode as libc::c_uint) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ELOOP) {
            return Err(untrusted(
                "is a symbolic link: sfpair never follows links in the outbox; move it away".into(),
            ));
        }
        return Err(e);
    }
    // SAFETY: openat returned a new descriptor that nothing else owns.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// A `File` view of the directory's descriptor, for fstat and fsync; never closes it.
fn borrowed_file(fd: &OwnedFd) -> std::mem::ManuallyDrop<File> {
    // SAFETY: the descriptor outlives the view, and ManuallyDrop keeps the view from closing it.
    std::mem::ManuallyDrop::new(unsafe { File::from_raw_fd(fd.as_raw_fd()) })
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl Disk for RealDisk {
    fn len(&mut self, name: &str) -> io::Result<Option<u64>> {
        match self.open_read(name) {
            Ok(f) => Ok(Some(f.metadata()?.len())),
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
        let (mut f, created) = self.open_or_create(name, libc::O_WRONLY | libc::O_APPEND)?;
        f.write_all(bytes)?;
        Ok(created)
    }

    fn truncate(&mut self, name: &str, len: u64) -> io::Result<()> {
        self.open_at(name, libc::O_WRONLY)?.set_len(len)
    }

    fn fsync(&mut self, name: &str) -> io::Result<()> {
        self.open_read(name)?.sync_all()
    }

    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        let (from, to) = (c_name(from)?, c_name(to)?);
        let at = self.fd.as_raw_fd();
        // SAFETY: an open directory descriptor and two valid NUL-terminated names.
        check(unsafe { libc::renameat(at, from.as_ptr(), at, to.as_ptr()) })
    }

    fn remove(&mut self, name: &str) -> io::Result<()> {
        let name = c_name(name)?;
        // SAFETY: an open directory descriptor and a valid NUL-terminated name.
        match check(unsafe { libc::unlinkat(self.fd.as_raw_fd(), name.as_ptr(), 0) }) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    fn fsync_dir(&mut self) -> io::Result<()> {
        borrowed_file(&self.fd).sync_all()
    }

    fn lock(&mut self) -> io::Result<()> {
        self.lock.lock()
    }

    fn unlock(&mut self) {
        // Nothing to do on failure: the lock goes with the handle at exit anyway.
        let _ = self.lock.unlock();
    }

    fn open_lock(&self, name: &str) -> io::Result<File> {
        open_lock_at(&self.fd, name)
    }

    /// `fallocate(FALLOC_FL_KEEP_SIZE)` past the end: blocks that belong to the file, for the
    /// appends to come, without changing what it holds. Where the filesystem cannot do that
    /// (some flash filesystems), the free space is checked instead: no reservation then, but a
    /// full disk is still seen before the request that would need it.
    fn reserve(&mut self, name: &str, bytes: u64) -> io::Result<bool> {
        let (file, created) = self.open_or_create(name, libc::O_WRONLY)?;
        let end = file.metadata()?.len();
        let (Ok(at), Ok(len)) = (libc::off_t::try_from(end), libc::off_t::try_from(bytes)) else {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        };
        // SAFETY: an open descriptor and plain integers; the result is checked.
        let rc = unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, at, len) };
        if rc == 0 {
            return Ok(created);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EOPNOTSUPP) {
            return Err(e);
        }
        // SAFETY: a zeroed statvfs is a valid out-parameter; the result is checked.
        let mut fs: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: an open descriptor and a statvfs to fill.
        check(unsafe { libc::fstatvfs(file.as_raw_fd(), &mut fs) })?;
        let free = (fs.f_bavail as u64).saturating_mul(fs.f_frsize as u64);
        if free < bytes.saturating_add(fs.f_frsize as u64) {
            return Err(io::Error::from(io::ErrorKind::StorageFull));
        }
        Ok(created)
    }
}

/// Opens (creating 0600) the lock file `name` in `dir`, never through a link, and checks it.
fn open_lock_at(dir: &OwnedFd, name: &str) -> io::Result<File> {
    let flags = libc::O_RDWR | libc::O_CREAT | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    let file = open_at(dir, name, flags, 0o600)?;
    check_file(&file.metadata()?)?;
    Ok(file)
}
