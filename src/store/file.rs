//! The file store: one record in one file, replaced atomically.
//!
//! The recipe is the only one that is safe on ext4, UBIFS and JFFS2 alike (docs/embedded.md,
//! "Power-safe file writes"): write a temporary file created 0600 with O_EXCL|O_NOFOLLOW (so the secret is never
//! readable by others, not even for a moment, and a planted link is never written through),
//! fsync it, rename it over the old file, fsync the directory. Writers take an advisory lock on
//! the directory so two sfpair processes cannot interleave; [`TokenStore::lock`] holds it across
//! a whole refresh or pairing.
//!
//! What it trusts, and what not (a hostile local user):
//! - The store path may be a symbolic link: it is resolved once, at every operation, to the
//!   file it names (up to 8 links), and that file is read, replaced or wiped in place of the
//!   link, which is left as it is. So a board that links `/var/lib/sfpair/token` to a
//!   persistent partition keeps both the link and the pairing across rotations.
//! - Whatever the path resolves to must be a regular file (opened with O_NOFOLLOW|O_NONBLOCK
//!   and checked with fstat): a FIFO, a device or a directory is refused (exit 2), never read,
//!   waited on or replaced.
//! - The directories holding the link and the file, and the file itself, must belong to the
//!   running user or root and not be writable by group or others, as ssh demands of its keys:
//!   otherwise another user could swap the record for one pointing at their server. Every
//!   directory above them must pass `trust.rs` (ours or root's, shared only if sticky).
//! - `wipe` (`forget`) only zero-fills and removes a file that holds an sfpair record (or is
//!   empty or all zero bytes, as a wipe cut short leaves it): anything else is refused (exit 2)
//!   and left untouched.
//!
//! This file must not log the record's contents.

mod pairing_lock;

use std::ffi::OsString;
use std::fs::{self, DirBuilder, File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use log::{debug, warn};
use zeroize::Zeroizing;

use super::record::{self, DecodeError, Frame, MAGIC};
use super::replace::{self, Failed, RealDir};
use super::sealed::{Envelope, Plain};
use super::{Loaded, Record, SaveCheck, TokenStore};
use crate::error::Error;
use crate::trust::{self, euid, trusted_owner};

/// A token file is a few hundred bytes; anything past this is not ours.
const MAX_FILE: u64 = 64 * 1024;
/// How many symbolic links the store path may go through.
const MAX_LINKS: usize = 8;
/// What `prepare_save` reserves: more than any record needs (its payload is at most 8 KiB).
const RESERVE: usize = record::MAX_PAYLOAD + record::HEADER_LEN + record::CRC_LEN;

/// The pairing in one file, replaced atomically (a temporary file, fsync, rename, fsync of the directory), 0600 from the first byte, under a directory only its owner may change.
pub struct FileStore {
    path: PathBuf,
    /// The directory lock, while [`TokenStore::lock`] holds it.
    held: Option<File>,
    /// A temporary file written and fsynced by `prepare_save`, overwritten in place by the next
    /// save so that save needs no new blocks.
    prepared: Option<(PathBuf, File)>,
    /// How records are sealed and opened (`store/sealed.rs`); plain unless given.
    envelope: Box<dyn Envelope>,
    /// The pairing lock (`pairing_lock.rs`), while a pairing holds it.
    pairing: Option<File>,
}

impl FileStore {
    /// A store at `path`; nothing is read or created until it is used.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileStore {
            path: path.into(),
            held: None,
            prepared: None,
            envelope: Box::new(Plain),
            pairing: None,
        }
    }

    /// Seals and opens records through `envelope`.
    pub fn with_envelope(mut self, envelope: Box<dyn Envelope>) -> Self {
        self.envelope = envelope;
        self
    }

    /// Where the record lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `$SFPAIR_STATE_DIR/token`, else `/var/lib/sfpair/token` for root, else
    /// `$XDG_STATE_HOME/sfpair/token` (default `~/.local/state/sfpair/token`).
    pub fn default_path(env: impl Fn(&str) -> Option<String>, is_root: bool) -> Option<PathBuf> {
        if let Some(dir) = env("SFPAIR_STATE_DIR").filter(|d| !d.is_empty()) {
            return Some(Path::new(&dir).join("token"));
        }
        if is_root {
            return Some(PathBuf::from("/var/lib/sfpair/token"));
        }
        let state = env("XDG_STATE_HOME")
            .filter(|d| d.starts_with('/'))
            .map(PathBuf::from)
            .or_else(|| {
                env("HOME")
                    .filter(|h| !h.is_empty())
                    .map(|h| Path::new(&h).join(".local/state"))
            })?;
        Some(state.join("sfpair/token"))
    }

    fn fail(&self, what: &str, e: io::Error) -> Error {
        let hint = match e.kind() {
            io::ErrorKind::PermissionDenied => {
                " (run as the user that owns the store, or choose another with --store)"
            }
            io::ErrorKind::ReadOnlyFilesystem => {
                " (the filesystem is read-only: point --store at a writable one)"
            }
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
                " (the filesystem is full: free some space)"
            }
            _ => "",
        };
        Error::storage(format!("cannot {what} {}: {e}{hint}", self.path.display()))
    }

    /// The file the store path names: the path itself, or the file at the end of its links.
    /// Every directory on the way (the link's and the target's) passes [`check_dir`] when it
    /// exists.
    fn target(&self) -> Result<PathBuf, Error> {
        let mut path = self.path.clone();
        for _ in 0..=MAX_LINKS {
            check_dir(dir_of(&path))?;
            let meta = match fs::symlink_metadata(&path) {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(path),
                Err(e) => return Err(self.fail("read", e)),
            };
            if !meta.file_type().is_symlink() {
                return Ok(path);
            }
            let link = fs::read_link(&path).map_err(|e| self.fail("read the link", e))?;
            let next = dir_of(&path).join(link);
            // The target's directory, without links, so the next round checks the real one.
            let (Some(name), Ok(dir)) = (next.file_name(), fs::canonicalize(dir_of(&next))) else {
                return Err(Error::config(format!(
                    "file:{} is a link to {}, which is not a file in a directory that exists: \
                     fix the link or point --store at the file itself",
                    self.path.display(),
                    next.display()
                )));
            };
            let name = name.to_owned();
            path = dir.join(name);
        }
        Err(Error::config(format!(
            "file:{} goes through more than {MAX_LINKS} symbolic links: point --store at the \
             file itself",
            self.path.display()
        )))
    }

    /// Opens the record at `target` for reading: `None` when there is none. Refuses anything
    /// but a regular file owned by this user or root and writable by nobody else, without
    /// blocking on a FIFO or following a link swapped in since `target` was resolved.
    fn open_existing(&self, target: &Path) -> Result<Option<File>, Error> {
        let file = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(target)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            // ELOOP: a link swapped in since `target` was resolved; reported as it is.
            Err(e) => return Err(self.fail("read", e)),
        };
        let meta = file.metadata().map_err(|e| self.fail("read", e))?;
        check_file(target, &meta)?;
        Ok(Some(file))
    }

    /// Creates `dir` (0700, with its parents) when it is missing.
    fn make_dir(&self, dir: &Path) -> Result<(), Error> {
        if !dir.exists() {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| self.fail("create the directory for", e))?;
        }
        Ok(())
    }

    /// The directory for the record: created (0700) if missing, checked, and locked for
    /// writing unless [`TokenStore::lock`] holds the lock already.
    fn lock_dir(&self, target: &Path) -> Result<Option<File>, Error> {
        let dir = dir_of(target);
        self.make_dir(dir)?;
        check_dir(dir)?;
        if self.held.is_some() {
            return Ok(None);
        }
        let handle = File::open(dir).map_err(|e| self.fail("open the directory of", e))?;
        handle
            .lock()
            .map_err(|e| self.fail("lock the directory of", e))?;
        Ok(Some(handle))
    }

    /// The directory holding `target`, for the write recipe (`replace.rs`), with the names of
    /// the temporary file and the record in it.
    fn recipe(&self, target: &Path) -> Result<(RealDir, OsString, OsString), Error> {
        let temp = temp_path(target);
        let (Some(temp), Some(name)) = (temp.file_name(), target.file_name()) else {
            return Err(Error::storage(format!(
                "cannot write {}: the path names no file",
                self.path.display()
            )));
        };
        let dir = RealDir(dir_of(target).to_path_buf());
        Ok((dir, temp.to_owned(), name.to_owned()))
    }

    fn sync_dir(&self, dir: &Path) {
        // Without this the rename itself may not survive a power cut (UBIFS, ext4 without
        // auto_da_alloc). The new record is in place either way, so only warn.
        if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
            warn!(
                "could not fsync the directory of {}: {e}",
                self.path.display()
            );
        }
    }

    /// Fails unless `target` is missing or a regular file holding something of ours; else
    /// the sealer of what is there (`None`: nothing, or a plain record).
    fn check_replaceable(&self, target: &Path) -> Result<Option<String>, Error> {
        match self.load_from(target)? {
            Some(bytes) => refuse_foreign(target, &bytes).map(|()| record::sealer_of(&bytes)),
            None => Ok(None),
        }
    }

    fn load_from(&self, target: &Path) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
        let Some(file) = self.open_existing(target)? else {
            return Ok(None);
        };
        let mut bytes = Zeroizing::new(Vec::new());
        file.take(MAX_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| self.fail("read", e))?;
        Ok(Some(bytes))
    }
}

/// A medium that cannot be written at all, as opposed to one that is full for now.
fn is_read_only(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
    )
}

/// The directory holding `path` (`.` for a bare name).
fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn temp_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    dir_of(target).join(format!(".{name}.tmp"))
}

/// A directory that holds (or will hold) the record: another user who can write to it could
/// replace the record, or plant a link where the temporary file goes. A directory that does
/// not exist yet passes (it is created 0700).
fn check_dir(dir: &Path) -> Result<(), Error> {
    // The directories above may be shared only if sticky (`trust.rs`): else another user could
    // rename this directory away and put one of theirs in its place.
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        trust::check_dir_chain(parent, "--store")?;
    }
    let meta = match fs::metadata(dir) {
        Ok(meta) => meta,
        Err(_) => return Ok(()), // missing: created 0700 by the first save
    };
    if !meta.is_dir() {
        return Err(Error::config(format!(
            "{} is {}, not a directory: --store file:PATH needs a directory to keep the file in",
            dir.display(),
            crate::files::kind_name(&meta)
        )));
    }
    check_owner(dir, &meta, "700")
}

/// Owned by this user or root and writable by nobody else, as ssh demands of its keys: else
/// another user could swap the pairing for one of theirs. `chmod` is the mode to suggest.
fn check_owner(path: &Path, meta: &Metadata, chmod: &str) -> Result<(), Error> {
    let fix = if !trusted_owner(meta.uid()) {
        format!(
            "belongs to uid {}, not to you or root: run: chown {}",
            meta.uid(),
            euid()
        )
    } else if meta.mode() & 0o022 != 0 {
        format!(
            "is writable by other users (mode {:o}): run: chmod {chmod}",
            meta.mode() & 0o7777
        )
    } else {
        return Ok(());
    };
    Err(Error::config(format!(
        "{} {fix} {0} (another user could replace the pairing, so sfpair does not use it)",
        path.display()
    )))
}

/// The record file itself, as opened (fstat, so it is the file we read).
fn check_file(path: &Path, meta: &Metadata) -> Result<(), Error> {
    if !meta.file_type().is_file() {
        return Err(Error::config(format!(
            "{} is {}: --store file:PATH names a regular file. sfpair neither reads nor \
             replaces it; point --store at a file of its own",
            path.display(),
            crate::files::kind_name(meta)
        )));
    }
    check_owner(path, meta, "600")?;
    if meta.mode() & 0o044 != 0 {
        warn!(
            "{} is readable by other users (mode {:o}); run: chmod 600 {}",
            path.display(),
            meta.mode() & 0o777,
            path.display()
        );
    }
    Ok(())
}

/// What the bytes of a record file hold (the power-cut model reads its files through this too).
pub(super) fn loaded(bytes: &[u8], envelope: &mut dyn Envelope) -> Loaded {
    if bytes.len() as u64 > MAX_FILE {
        return Loaded::Corrupt(format!("file is larger than {MAX_FILE} bytes"));
    }
    if bytes.is_empty() {
        return Loaded::Corrupt("file is empty (a crash during an unsafe write?)".into());
    }
    let decoded = match record::decode_frame(bytes) {
        Ok(Frame::Plain(decoded)) => Ok(decoded),
        Ok(Frame::Sealed { .. }) => envelope.open(bytes),
        Err(e) => Err(e),
    };
    match decoded {
        Ok(decoded) => Loaded::Paired(decoded.record),
        Err(DecodeError::Blank) => Loaded::Corrupt("file holds only zero bytes".into()),
        Err(DecodeError::Unopened(reason)) => Loaded::Unopened(reason),
        Err(e) => Loaded::Corrupt(e.to_string()),
    }
}

/// Refuses to replace or erase bytes that are not sfpair's.
fn refuse_foreign(target: &Path, bytes: &[u8]) -> Result<(), Error> {
    if ours(bytes) {
        return Ok(());
    }
    Err(Error::config(format!(
        "{} does not hold an sfpair pairing ({}). sfpair neither erases nor replaces it: check \
         --store; if the file is really meant for sfpair, delete it yourself",
        target.display(),
        record::decode(bytes)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    )))
}

/// Whether bytes found at the store path are sfpair's to erase: a record (of any format
/// version, even damaged: it starts with the magic), nothing, or the zeros a wipe leaves.
fn ours(bytes: &[u8]) -> bool {
    bytes.is_empty() || bytes.starts_with(&MAGIC) || bytes.iter().all(|&b| b == 0)
}

impl TokenStore for FileStore {
    fn load(&mut self) -> Result<Loaded, Error> {
        let target = self.target()?;
        Ok(match self.load_from(&target)? {
            Some(bytes) => loaded(&bytes, &mut *self.envelope),
            None => Loaded::Empty,
        })
    }

    fn save(&mut self, record: &Record) -> Result<(), Error> {
        self.save_as(record, true)
    }

    fn save_rotated(&mut self, record: &Record) -> Result<(), Error> {
        self.save_as(record, false)
    }

    fn wipe(&mut self) -> Result<(), Error> {
        self.wipe_file()
    }

    fn check_writable(&mut self) -> Result<(), Error> {
        let target = self.target()?;
        let stored = self.check_replaceable(&target)?;
        self.envelope.prepare(stored.as_deref())
    }

    fn stored_format(&mut self) -> Result<Option<u8>, Error> {
        self.stored_format_of()
    }

    fn lock(&mut self) -> Result<(), Error> {
        self.lock_held()
    }

    fn unlock(&mut self) {
        self.unlock_held()
    }

    fn try_lock_pairing(&mut self) -> Result<bool, Error> {
        self.lock_pairing()
    }

    fn unlock_pairing(&mut self) {
        // Dropping the handle releases the flock.
        self.pairing = None;
    }

    fn prepare_save(&mut self) -> Result<SaveCheck, Error> {
        self.reserve()
    }

    fn describe(&self) -> String {
        format!("file:{}", self.path.display())
    }

    fn sealer(&mut self) -> Result<Option<String>, Error> {
        let target = self.target()?;
        Ok(self
            .load_from(&target)?
            .and_then(|bytes| record::sealer_of(&bytes)))
    }
}

impl FileStore {
    /// One atomic replace: the record sealed or plain as `fresh` and the envelope say
    /// ([`TokenStore::save`]: a new pairing; `save_rotated`: a refresh).
    fn save_as(&mut self, record: &Record, fresh: bool) -> Result<(), Error> {
        let target = self.target()?;
        let _lock = self.lock_dir(&target)?;
        // What is there must be a regular file of ours to be replaced (a device node, a FIFO
        // or somebody's config file is refused, not renamed over).
        let stored = self.check_replaceable(&target)?;
        let bytes = self.envelope.encode(record, 0, fresh, stored.as_deref())?;
        // A prepared file is overwritten in place: its blocks are already allocated, so a full
        // disk does not stop this write.
        let reusable = self.held.is_some()
            && (self.prepared.as_ref()).is_some_and(|(temp, _)| *temp == temp_path(&target));
        let reserved = if reusable {
            self.prepared.take().map(|(_, file)| file)
        } else {
            // Reserved for a record the link no longer names: not left behind.
            self.discard_prepared();
            None
        };
        let (mut dir, temp, name) = self.recipe(&target)?;
        match replace::replace(&mut dir, &temp, &name, &bytes, reserved) {
            Ok(()) => {}
            Err(Failed::Write(e)) => return Err(self.fail("write", e)),
            // The new record is in place either way, so only warn.
            Err(Failed::SyncDir(e)) => warn!(
                "could not fsync the directory of {}: {e}",
                self.path.display()
            ),
        }
        debug!("stored the pairing in {}", target.display());
        Ok(())
    }

    fn wipe_file(&mut self) -> Result<(), Error> {
        let target = self.target()?;
        if !dir_of(&target).exists() {
            return Ok(());
        }
        let _lock = self.lock_dir(&target)?;
        self.discard_prepared();
        if let Some(bytes) = self.load_from(&target)? {
            refuse_foreign(&target, &bytes)?;
            // Overwrite before unlinking, so a plain filesystem does not keep the token in a
            // free block. (Journaling and flash filesystems may still hold old copies; only a
            // flash store's erase really destroys it.) O_NOFOLLOW: the file just checked.
            if let Ok(f) = OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
                .open(&target)
                && f.metadata().is_ok_and(|m| m.is_file())
            {
                let _ = f
                    .write_all_at(&vec![0u8; bytes.len()], 0)
                    .and_then(|()| f.sync_all());
            }
        }
        for path in [target.clone(), temp_path(&target)] {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.fail("remove", e)),
            }
        }
        self.sync_dir(dir_of(&target));
        Ok(())
    }

    fn stored_format_of(&mut self) -> Result<Option<u8>, Error> {
        let target = self.target()?;
        Ok(match self.load_from(&target)? {
            Some(bytes) => match record::decode(&bytes) {
                Err(DecodeError::NewerVersion(v)) => Some(v),
                _ => None,
            },
            None => None,
        })
    }

    fn lock_held(&mut self) -> Result<(), Error> {
        if self.held.is_none() {
            let target = self.target()?;
            // No directory, no record: nothing to guard, and `token` or `forget` on an empty
            // store must not create one. A save creates it and locks it itself.
            if !dir_of(&target).exists() {
                return Ok(());
            }
            self.held = self.lock_dir(&target)?;
        }
        Ok(())
    }

    fn unlock_held(&mut self) {
        // Dropping the handle releases the flock.
        self.held = None;
        self.discard_prepared();
    }

    /// Removes the temporary file `prepare_save` reserved, if there is one.
    fn discard_prepared(&mut self) {
        if let Some((temp, _)) = self.prepared.take() {
            let _ = fs::remove_file(temp);
        }
    }

    fn reserve(&mut self) -> Result<SaveCheck, Error> {
        let target = self.target()?;
        let _lock = self.lock_dir(&target)?;
        self.check_replaceable(&target)?;
        let (mut dir, temp_name, _) = self.recipe(&target)?;
        let temp = temp_path(&target);
        let file = match replace::reserve(&mut dir, &temp_name, RESERVE) {
            Ok(file) => file,
            Err(e) if is_read_only(&e) => {
                return Ok(SaveCheck::ReadOnly(
                    self.fail("write", e).message().to_string(),
                ));
            }
            Err(e) => return Err(self.fail("reserve space for a new record in", e)),
        };
        if self.held.is_some() {
            self.prepared = Some((temp, file));
        } else {
            // Without the lock another writer would take it for a crashed one's: a check only.
            let _ = fs::remove_file(temp);
        }
        Ok(SaveCheck::Ready)
    }
}

impl Drop for FileStore {
    fn drop(&mut self) {
        self.discard_prepared();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::dialect::Dialect;
    use crate::secret::Secret;
    use std::os::unix::fs::FileTypeExt;

    fn sample(rt: &str) -> Record {
        Record {
            refresh_token: Secret::new(rt),
            client_id: "K".into(),
            dialect: Dialect::Salesforce,
            login_url: "https://login.salesforce.com".into(),
            token_url: "https://login.salesforce.com/services/oauth2/token".into(),
            revoke_url: None,
            instance_url: "https://x.my.salesforce.com".into(),
            identity_url: String::new(),
            scope: "api refresh_token".into(),
            issued_at_ms: 1,
            paired_at: 2,
            grant: Default::default(),
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sfpair-file-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    /// A store in a fresh directory `name`, its file `token` holding `sample("rt")`.
    fn saved(name: &str) -> (PathBuf, FileStore) {
        let dir = temp_dir(name);
        let mut store = FileStore::new(dir.join("token"));
        store.save(&sample("rt")).unwrap();
        (dir, store)
    }

    #[test]
    fn saves_0600_in_a_0700_directory_and_loads_back() {
        let dir = temp_dir("save");
        let path = dir.join("state/token");
        let mut store = FileStore::new(&path);
        assert_eq!(store.load().unwrap(), Loaded::Empty);
        store.save(&sample("rt-1")).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(
            fs::metadata(path.parent().unwrap()).unwrap().mode() & 0o777,
            0o700
        );
        assert_eq!(store.load().unwrap(), Loaded::Paired(sample("rt-1")));
        store.save(&sample("rt-2")).unwrap();
        assert_eq!(store.load().unwrap(), Loaded::Paired(sample("rt-2")));
        assert!(!temp_path(store.path()).exists());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn corrupt_truncated_and_empty_files_read_as_corrupt_with_a_reason() {
        let dir = temp_dir("corrupt");
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        let mut store = FileStore::new(&path);
        store.save(&sample("rt")).unwrap();
        let good = fs::read(&path).unwrap();
        for (bytes, needle) in [
            (good[..good.len() - 3].to_vec(), "truncated"),
            (Vec::new(), "empty"),
            (
                b"garbage that is long enough to hold a header".to_vec(),
                "magic",
            ),
            (
                {
                    let mut b = good.clone();
                    b[30] ^= 0x40;
                    b
                },
                "checksum",
            ),
        ] {
            fs::write(&path, &bytes).unwrap();
            match store.load().unwrap() {
                Loaded::Corrupt(reason) => assert!(reason.contains(needle), "{reason}"),
                other => panic!("{other:?}"),
            }
            // Still there: a corrupt file is evidence, only a new pairing replaces it.
            assert_eq!(fs::read(&path).unwrap(), bytes);
        }
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_stale_temp_file_from_a_crash_does_not_block_the_next_save() {
        let dir = temp_dir("stale");
        fs::create_dir_all(&dir).unwrap();
        let mut store = FileStore::new(dir.join("token"));
        fs::write(temp_path(store.path()), b"half a record").unwrap();
        store.save(&sample("rt")).unwrap();
        assert_eq!(store.load().unwrap(), Loaded::Paired(sample("rt")));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_failed_write_leaves_the_old_record() {
        let dir = temp_dir("readonly");
        fs::create_dir_all(&dir).unwrap();
        let mut store = FileStore::new(dir.join("token"));
        store.save(&sample("old")).unwrap();
        // A directory where the temp file must go makes the write fail after the lock.
        fs::create_dir(temp_path(store.path())).unwrap();
        fs::write(temp_path(store.path()).join("x"), b"").unwrap();
        let err = store.save(&sample("new")).unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::Storage);
        assert_eq!(store.load().unwrap(), Loaded::Paired(sample("old")));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn wipe_removes_the_file_and_is_idempotent() {
        let dir = temp_dir("wipe");
        let mut store = FileStore::new(dir.join("token"));
        store.wipe().unwrap();
        store.save(&sample("rt")).unwrap();
        store.wipe().unwrap();
        assert_eq!(store.load().unwrap(), Loaded::Empty);
        store.wipe().unwrap();
        fs::remove_dir_all(dir).unwrap();
    }

    fn config_error(result: Result<impl std::fmt::Debug, Error>, needle: &str) {
        let err = result.unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::Config, "{err}");
        assert!(err.message().contains(needle), "{err}");
    }

    #[test]
    fn wipe_never_erases_what_a_link_points_to_unless_it_is_a_record() {
        let dir = temp_dir("victim");
        fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("board.toml");
        fs::write(&victim, b"[board]\nname = \"precious\"\n").unwrap();
        std::os::unix::fs::symlink(&victim, dir.join("token")).unwrap();
        let mut store = FileStore::new(dir.join("token"));
        assert!(matches!(store.load().unwrap(), Loaded::Corrupt(_)));
        config_error(store.wipe(), "does not hold an sfpair pairing");
        assert_eq!(
            fs::read(&victim).unwrap(),
            b"[board]\nname = \"precious\"\n"
        );
        // The same file named directly.
        config_error(
            FileStore::new(&victim).wipe(),
            "does not hold an sfpair pairing",
        );
        assert!(victim.exists());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn fifos_and_devices_are_refused_without_blocking_or_being_replaced() {
        let dir = temp_dir("fifo");
        fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("token");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string; mkfifo has no other preconditions.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let mut store = FileStore::new(&fifo);
        config_error(store.load(), "a FIFO");
        config_error(store.save(&sample("rt")), "a FIFO");
        config_error(store.wipe(), "a FIFO");
        config_error(store.check_writable(), "a FIFO");
        assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
        let mut null = FileStore::new("/dev/null");
        config_error(null.load(), "a character device");
        config_error(null.save(&sample("rt")), "a character device");
        config_error(null.wipe(), "a character device");
        assert!(
            fs::metadata("/dev/null")
                .unwrap()
                .file_type()
                .is_char_device()
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_linked_store_rotates_through_the_link_and_keeps_it() {
        let dir = temp_dir("link");
        let persist = dir.join("persist");
        fs::create_dir_all(&persist).unwrap();
        fs::create_dir_all(dir.join("var")).unwrap();
        let link = dir.join("var/token");
        std::os::unix::fs::symlink("../persist/token", &link).unwrap();
        let mut store = FileStore::new(&link);
        // A dangling link: the first save creates its target.
        store.save(&sample("rt-1")).unwrap();
        store.save(&sample("rt-2")).unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            FileStore::new(persist.join("token")).load().unwrap(),
            Loaded::Paired(sample("rt-2"))
        );
        assert_eq!(store.load().unwrap(), Loaded::Paired(sample("rt-2")));
        store.wipe().unwrap();
        assert!(!persist.join("token").exists());
        assert!(fs::symlink_metadata(&link).is_ok(), "the link stays");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_directory_or_record_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir("modes");
        fs::create_dir_all(&dir).unwrap();
        let mut store = FileStore::new(dir.join("token"));
        store.save(&sample("rt")).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        config_error(store.load(), "chmod 700");
        config_error(store.save(&sample("rt-2")), "chmod 700");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        fs::set_permissions(dir.join("token"), fs::Permissions::from_mode(0o666)).unwrap();
        config_error(store.load(), "chmod 600");
        fs::set_permissions(dir.join("token"), fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(store.load().unwrap(), Loaded::Paired(sample("rt")));
        fs::remove_dir_all(dir).unwrap();
    }

    /// Needs root to give the files to another user; scripts/test runs it (`--ignored`) as
    /// root and says NOT RUN otherwise.
    #[test]
    #[ignore = "needs root: chowns the record and its directory to uid 65534"]
    fn a_directory_or_record_another_user_owns_is_refused() {
        assert_eq!(
            euid(),
            0,
            "this test needs root (scripts/test runs it as root)"
        );
        let dir = temp_dir("owner");
        fs::create_dir_all(&dir).unwrap();
        let mut store = FileStore::new(dir.join("token"));
        store.save(&sample("rt")).unwrap();
        std::os::unix::fs::chown(dir.join("token"), Some(65534), None).unwrap();
        config_error(store.load(), "belongs to uid 65534");
        std::os::unix::fs::chown(dir.join("token"), Some(0), None).unwrap();
        std::os::unix::fs::chown(&dir, Some(65534), None).unwrap();
        config_error(store.load(), "belongs to uid 65534");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_store_below_a_directory_others_may_write_is_refused_unless_it_is_sticky() {
        use std::os::unix::fs::PermissionsExt;
        let top = temp_dir("ancestor");
        let dir = top.join("state");
        fs::create_dir_all(&dir).unwrap();
        let mut store = FileStore::new(dir.join("token"));
        store.save(&sample("rt")).unwrap();
        // Another user could rename `state` away and put a directory of theirs in its place.
        fs::set_permissions(&top, fs::Permissions::from_mode(0o777)).unwrap();
        config_error(store.load(), "chmod go-w");
        config_error(store.save(&sample("rt-2")), "chmod go-w");
        fs::set_permissions(&top, fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(matches!(store.load().unwrap(), Loaded::Paired(_)));
        fs::remove_dir_all(top).unwrap();
    }

    #[test]
    fn a_link_planted_at_the_temp_path_is_not_written_through() {
        let dir = temp_dir("plant");
        fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("victim");
        fs::write(&victim, b"root only").unwrap();
        let mut store = FileStore::new(dir.join("token"));
        std::os::unix::fs::symlink(&victim, temp_path(&dir.join("token"))).unwrap();
        store.save(&sample("rt")).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"root only");
        assert_eq!(store.load().unwrap(), Loaded::Paired(sample("rt")));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_newer_format_is_not_overwritten_through_the_seam() {
        let dir = temp_dir("newer");
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        FileStore::new(&path).save(&sample("rt")).unwrap();
        let mut bytes = fs::read(&path).unwrap();
        bytes[4] = record::VERSION + 1;
        let end = bytes.len() - record::CRC_LEN;
        let crc = crate::store::crc32::crc32(&bytes[..end]);
        bytes[end..].copy_from_slice(&crc.to_le_bytes());
        fs::write(&path, &bytes).unwrap();
        let mut store = crate::store::open(&crate::store::Spec::File(path.clone())).unwrap();
        let err = store.save(&sample("rt-2")).unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::Storage);
        assert!(err.message().contains("upgrade sfpair"), "{err}");
        assert_eq!(store.check_writable().unwrap_err().kind(), err.kind());
        assert_eq!(fs::read(&path).unwrap(), bytes);
        store.wipe().unwrap();
        assert!(!path.exists());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn locking_an_empty_store_creates_nothing() {
        let dir = temp_dir("lock-empty");
        let mut store = FileStore::new(dir.join("state/token"));
        store.lock().unwrap();
        assert_eq!(store.load().unwrap(), Loaded::Empty);
        store.unlock();
        assert!(!dir.exists());
    }

    #[test]
    fn prepare_save_under_the_lock_reserves_the_temp_file_the_save_reuses() {
        let dir = temp_dir("prepare");
        let mut store = FileStore::new(dir.join("token"));
        store.save(&sample("rt-1")).unwrap();
        store.lock().unwrap();
        assert_eq!(store.prepare_save().unwrap(), SaveCheck::Ready);
        let temp = temp_path(&dir.join("token"));
        assert_eq!(fs::metadata(&temp).unwrap().len(), RESERVE as u64);
        store.save(&sample("rt-2")).unwrap();
        store.unlock();
        assert!(!temp.exists());
        assert_eq!(store.load().unwrap(), Loaded::Paired(sample("rt-2")));
        // Cut to the record's length: no reserved zeros are left behind it.
        let encoded = record::to_bytes(&sample("rt-2"), 0).unwrap();
        assert_eq!(
            fs::metadata(dir.join("token")).unwrap().len(),
            encoded.len() as u64
        );
        // Unlocked: only a check, nothing left behind.
        store.prepare_save().unwrap();
        assert!(!temp.exists());
        fs::remove_dir_all(dir).unwrap();
    }

    /// A record whose payload is exactly `record::MAX_PAYLOAD` bytes (a long scope).
    fn largest() -> Record {
        let mut r = sample("rt");
        let base = record::payload(&r).unwrap().1.len();
        r.scope.push_str(&"s".repeat(record::MAX_PAYLOAD - base));
        assert_eq!(record::payload(&r).unwrap().1.len(), record::MAX_PAYLOAD);
        r
    }

    #[test]
    fn the_largest_record_is_stored_and_a_file_over_64_kib_is_not_read_as_one() {
        let dir = temp_dir("largest");
        let path = dir.join("token");
        let mut store = FileStore::new(&path);
        store.save(&largest()).unwrap();
        assert_eq!(store.load().unwrap(), Loaded::Paired(largest()));
        // The reserve is exactly what the largest record needs (checked under the lock).
        store.lock().unwrap();
        store.prepare_save().unwrap();
        let reserved = fs::metadata(temp_path(&path)).unwrap().len();
        assert_eq!(
            reserved,
            record::to_bytes(&largest(), 0).unwrap().len() as u64
        );
        store.unlock();
        // 64 KiB is read (and is no record); one byte more is refused unread.
        let mut big = MAGIC.to_vec();
        big.resize(64 * 1024, 0);
        fs::write(&path, &big).unwrap();
        match store.load().unwrap() {
            Loaded::Corrupt(reason) => assert!(!reason.contains("larger"), "{reason}"),
            other => panic!("{other:?}"),
        }
        big.push(0);
        fs::write(&path, &big).unwrap();
        match store.load().unwrap() {
            Loaded::Corrupt(reason) => assert!(reason.contains("larger than 65536"), "{reason}"),
            other => panic!("{other:?}"),
        }
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_save_after_prepare_save_is_the_reserved_file_renamed() {
        use std::os::unix::fs::MetadataExt;
        let dir = temp_dir("reuse");
        let path = dir.join("token");
        let mut store = FileStore::new(&path);
        store.save(&sample("rt-1")).unwrap();
        store.lock().unwrap();
        store.prepare_save().unwrap();
        // A second name keeps the reserved inode alive, so its number cannot be reused by
        // another file: the same number afterwards is the same file.
        let witness = dir.join("witness");
        fs::hard_link(temp_path(&path), &witness).unwrap();
        let reserved = fs::metadata(&witness).unwrap().ino();
        store.save(&sample("rt-2")).unwrap();
        // Its blocks were allocated by prepare_save: a full disk cannot stop this save.
        assert_eq!(fs::metadata(&path).unwrap().ino(), reserved);
        store.unlock();
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_reserved_file_is_not_used_for_a_record_the_link_no_longer_names() {
        // The link is moved to another directory between prepare_save and the save (both under
        // the lock of the first directory): the record goes where the link points now.
        let dir = temp_dir("retarget");
        for d in ["a", "b", "var"] {
            fs::create_dir_all(dir.join(d)).unwrap();
        }
        let link = dir.join("var/token");
        std::os::unix::fs::symlink("../a/token", &link).unwrap();
        let mut store = FileStore::new(&link);
        store.save(&sample("rt-1")).unwrap();
        store.lock().unwrap();
        store.prepare_save().unwrap();
        fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink("../b/token", &link).unwrap();
        store.save(&sample("rt-2")).unwrap();
        assert!(
            !temp_path(&dir.join("a/token")).exists(),
            "the file reserved in the old directory is not left behind"
        );
        store.unlock();
        assert_eq!(
            FileStore::new(dir.join("b/token")).load().unwrap(),
            Loaded::Paired(sample("rt-2"))
        );
        assert_eq!(
            FileStore::new(dir.join("a/token")).load().unwrap(),
            Loaded::Paired(sample("rt-1"))
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn lock_holds_the_directory_lock_until_unlock() {
        let (dir, mut store) = saved("dirlock");
        let other = File::open(&dir).unwrap();
        store.lock().unwrap();
        assert!(matches!(
            other.try_lock(),
            Err(fs::TryLockError::WouldBlock)
        ));
        store.unlock();
        other.try_lock().unwrap();
        other.unlock().unwrap();
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_wipe_after_prepare_save_leaves_no_reserved_temp_file() {
        let (dir, mut store) = saved("wipe-prepared");
        store.lock().unwrap();
        store.prepare_save().unwrap();
        let temp = temp_path(&dir.join("token"));
        assert!(temp.exists());
        store.wipe().unwrap();
        assert!(!temp.exists(), "the reserved file went with the record");
        store.unlock();
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_reserved_temp_file_goes_when_the_store_is_dropped() {
        let (dir, mut store) = saved("drop");
        store.lock().unwrap();
        store.prepare_save().unwrap();
        let temp = temp_path(&dir.join("token"));
        assert!(temp.exists());
        drop(store);
        assert!(!temp.exists());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn wipe_zero_fills_the_record_before_removing_it() {
        let dir = temp_dir("zero");
        let path = dir.join("token");
        let mut store = FileStore::new(&path);
        store.save(&sample("rt-secret")).unwrap();
        let len = fs::metadata(&path).unwrap().len() as usize;
        // A second name for the same inode shows what the wipe left in its blocks.
        let witness = dir.with_extension("witness");
        let _ = fs::remove_file(&witness);
        fs::hard_link(&path, &witness).unwrap();
        store.wipe().unwrap();
        assert!(!path.exists());
        assert_eq!(fs::read(&witness).unwrap(), vec![0u8; len]);
        fs::remove_file(witness).unwrap();
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_bare_name_lives_in_the_current_directory_and_is_described_as_given() {
        assert_eq!(dir_of(Path::new("token")), Path::new("."));
        assert_eq!(
            dir_of(Path::new("/var/lib/sfpair/token")),
            Path::new("/var/lib/sfpair")
        );
        assert_eq!(temp_path(Path::new("token")), Path::new("./.token.tmp"));
        assert_eq!(FileStore::new("/data/token").describe(), "file:/data/token");
    }

    #[test]
    fn storage_errors_say_what_to_do_and_only_a_read_only_medium_is_read_only() {
        use io::ErrorKind::*;
        let store = FileStore::new("/data/token");
        for (kind, hint) in [
            (PermissionDenied, "run as the user that owns the store"),
            (ReadOnlyFilesystem, "point --store at a writable one"),
            (StorageFull, "free some space"),
            (QuotaExceeded, "free some space"),
        ] {
            let e = store.fail("write", io::Error::from(kind));
            assert_eq!(e.kind(), crate::error::ErrorKind::Storage);
            assert!(e.message().starts_with("cannot write /data/token: "), "{e}");
            assert!(e.message().contains(hint), "{kind:?}: {e}");
        }
        let other = store.fail("read", io::Error::from(Interrupted));
        assert!(!other.message().contains('('), "{other}");
        // A full disk is full for now: a check before a refresh must not call it read-only.
        assert!(is_read_only(&io::Error::from(ReadOnlyFilesystem)));
        assert!(is_read_only(&io::Error::from(PermissionDenied)));
        assert!(!is_read_only(&io::Error::from(StorageFull)));
    }

    #[test]
    fn a_store_path_that_cannot_be_opened_is_an_error_not_an_empty_store() {
        // A socket is there (open gives ENXIO): not "no pairing", and never replaced.
        let dir = temp_dir("socket");
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        let _socket = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let mut store = FileStore::new(&path);
        let e = store.load().unwrap_err();
        assert!(e.message().contains("cannot read"), "{e}");
        assert!(store.save(&sample("rt")).is_err());
        assert!(store.wipe().is_err());
        assert!(fs::symlink_metadata(&path).unwrap().file_type().is_socket());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_rotated_save_is_stored_and_the_stored_format_and_sealer_are_read_from_the_file() {
        use crate::store::sealed;
        let dir = temp_dir("rotated");
        let path = dir.join("token");
        let mut store = FileStore::new(&path);
        assert_eq!(store.stored_format().unwrap(), None);
        assert_eq!(store.sealer().unwrap(), None);
        store.save(&sample("rt-1")).unwrap();
        store.save_rotated(&sample("rt-2")).unwrap();
        assert_eq!(store.load().unwrap(), Loaded::Paired(sample("rt-2")));
        // A record this sfpair writes is no newer format, and a plain one has no sealer.
        assert_eq!(store.stored_format().unwrap(), None);
        assert_eq!(store.sealer().unwrap(), None);
        // A sealed record names its sealer in the clear (not opened here).
        let (mut payload, _) =
            sealed::begin(7, "tpm2", b"key", 1, &[0; sealed::NONCE_LEN], 4).unwrap();
        payload.extend_from_slice(&[0x5a; 4 + sealed::TAG_LEN]);
        fs::write(&path, sealed::frame_bytes(7, &payload)).unwrap();
        assert_eq!(store.sealer().unwrap().as_deref(), Some("tpm2"));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_wipe_that_cannot_remove_a_file_says_so() {
        // Something that is not a file where the temporary file goes: `forget` must not
        // report success while it is there.
        let (dir, mut store) = saved("wipe-fails");
        fs::create_dir(temp_path(store.path())).unwrap();
        let e = store.wipe().unwrap_err();
        assert!(e.message().contains("cannot remove"), "{e}");
        assert_eq!(
            store.load().unwrap(),
            Loaded::Empty,
            "the record itself is gone"
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_reserve_that_fails_on_a_writable_medium_is_an_error_not_read_only() {
        // Read-only means "refresh without rotating" (a read-only mount, tested as root by
        // the CLI suite); any other failure to reserve the space stops the refresh.
        let (dir, mut store) = saved("reserve-fails");
        fs::create_dir(temp_path(store.path())).unwrap();
        fs::write(temp_path(store.path()).join("x"), b"").unwrap();
        let e = store.prepare_save().unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Storage, "{e}");
        assert!(e.message().contains("reserve space"), "{e}");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn default_path_follows_the_documented_order() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let p = |e, root| FileStore::default_path(e, root).unwrap();
        assert_eq!(
            p(env(&[("SFPAIR_STATE_DIR", "/data/sf")]), true),
            PathBuf::from("/data/sf/token")
        );
        assert_eq!(
            p(env(&[("HOME", "/home/u")]), true),
            PathBuf::from("/var/lib/sfpair/token")
        );
        assert_eq!(
            p(
                env(&[("XDG_STATE_HOME", "/st"), ("HOME", "/home/u")]),
                false
            ),
            PathBuf::from("/st/sfpair/token")
        );
        assert_eq!(
            p(env(&[("HOME", "/home/u")]), false),
            PathBuf::from("/home/u/.local/state/sfpair/token")
        );
        assert_eq!(FileStore::default_path(env(&[]), false), None);
    }
}
