//! The file store: one record in one file, replaced atomically.
//!
//! The recipe is the only one that is safe on ext4, UBIFS and JFFS2 alike (docs/embedded.md,
//! "Power-safe file writes"): write a temporary file created 0600 with O_EXCL (so the secret is
//! never readable by
//! others, not even for a moment), fsync it, rename it over the old file, fsync the directory.
//! Writers take an advisory lock on the directory so two sfpair processes cannot interleave.
//! This file must not log the record's contents.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use log::{debug, warn};

use super::record::{self, DecodeError};
use super::{Loaded, Record, TokenStore};
use crate::error::Error;

/// A token file is a few hundred bytes; anything past this is not ours.
const MAX_FILE: u64 = 64 * 1024;

pub struct FileStore {
    path: PathBuf,
}

impl FileStore {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileStore { path: path.into() }
    }

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

    fn dir(&self) -> &Path {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        }
    }

    fn temp_path(&self) -> PathBuf {
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        self.dir().join(format!(".{name}.tmp"))
    }

    fn fail(&self, what: &str, e: io::Error) -> Error {
        let hint = match e.kind() {
            io::ErrorKind::PermissionDenied => {
                " (run as the user that owns the store, or choose another with --store)"
            }
            io::ErrorKind::ReadOnlyFilesystem => {
                " (the filesystem is read-only: point --store at a writable one)"
            }
            _ => "",
        };
        Error::storage(format!("cannot {what} {}: {e}{hint}", self.path.display()))
    }

    /// Creates the directory (0700) if needed and locks it for writing.
    fn lock_dir(&self) -> Result<File, Error> {
        let dir = self.dir();
        if !dir.exists() {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| self.fail("create the directory for", e))?;
        }
        let handle = File::open(dir).map_err(|e| self.fail("open the directory of", e))?;
        handle
            .lock()
            .map_err(|e| self.fail("lock the directory of", e))?;
        Ok(handle)
    }

    fn write_temp(&self, temp: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(temp)?;
        file.write_all(bytes)?;
        file.sync_all()
    }
}

impl TokenStore for FileStore {
    fn load(&mut self) -> Result<Loaded, Error> {
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Loaded::Empty),
            Err(e) => return Err(self.fail("read", e)),
        };
        let meta = file.metadata().map_err(|e| self.fail("read", e))?;
        if meta.mode() & 0o077 != 0 {
            warn!(
                "{} is readable by other users (mode {:o}); run: chmod 600 {}",
                self.path.display(),
                meta.mode() & 0o777,
                self.path.display()
            );
        }
        let mut bytes = zeroize::Zeroizing::new(Vec::new());
        file.take(MAX_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| self.fail("read", e))?;
        if bytes.len() as u64 > MAX_FILE {
            return Ok(Loaded::Corrupt(format!(
                "file is larger than {MAX_FILE} bytes"
            )));
        }
        if bytes.is_empty() {
            return Ok(Loaded::Corrupt(
                "file is empty (a crash during an unsafe write?)".into(),
            ));
        }
        match record::decode(&bytes) {
            Ok(decoded) => Ok(Loaded::Paired(decoded.record)),
            Err(DecodeError::Blank) => Ok(Loaded::Corrupt("file holds only zero bytes".into())),
            Err(e) => Ok(Loaded::Corrupt(e.to_string())),
        }
    }

    fn save(&mut self, record: &Record) -> Result<(), Error> {
        let bytes = record::to_bytes(record, 0).map_err(|e| Error::storage(e.to_string()))?;
        let _lock = self.lock_dir()?;
        let temp = self.temp_path();
        // We hold the lock, so a temp file left here is from a crashed writer.
        match fs::remove_file(&temp) {
            Ok(()) => debug!("removed a stale {}", temp.display()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(self.fail("replace", e)),
        }
        let written = self
            .write_temp(&temp, &bytes)
            .and_then(|()| fs::rename(&temp, &self.path));
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            return Err(self.fail("write", e));
        }
        // Without this the rename itself may not survive a power cut (UBIFS, ext4 without
        // auto_da_alloc). The new record is in place either way, so only warn.
        if let Err(e) = File::open(self.dir()).and_then(|d| d.sync_all()) {
            warn!(
                "could not fsync the directory of {}: {e}",
                self.path.display()
            );
        }
        debug!("stored the pairing in {}", self.path.display());
        Ok(())
    }

    fn wipe(&mut self) -> Result<(), Error> {
        let _lock = match self.lock_dir() {
            Ok(lock) => lock,
            Err(_) if !self.dir().exists() => return Ok(()),
            Err(e) => return Err(e),
        };
        // Overwrite before unlinking, so a plain filesystem does not keep the token in a free
        // block. (Journaling and flash filesystems may still hold old copies; only a flash
        // store's erase really destroys it.)
        if let Ok(mut f) = OpenOptions::new().write(true).open(&self.path) {
            let len = f.metadata().map(|m| m.len()).unwrap_or(0).min(MAX_FILE);
            let _ = f
                .write_all(&vec![0u8; len as usize])
                .and_then(|()| f.sync_all());
        }
        for path in [self.path.clone(), self.temp_path()] {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.fail("remove", e)),
            }
        }
        if let Err(e) = File::open(self.dir()).and_then(|d| d.sync_all()) {
            warn!(
                "could not fsync the directory of {}: {e}",
                self.path.display()
            );
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("file:{}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::dialect::Dialect;
    use crate::secret::Secret;

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
        assert!(!store.temp_path().exists());
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
        fs::write(store.temp_path(), b"half a record").unwrap();
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
        fs::create_dir(store.temp_path()).unwrap();
        fs::write(store.temp_path().join("x"), b"").unwrap();
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
