//! `--seal systemd-creds`: the data key sealed by systemd's credentials (systemd 250 and
//! later): `systemd-creds encrypt --with-key=auto`, which uses the TPM2 when the machine has
//! one and else the host key in `/var/lib/systemd/credential.secret` (root only).
//!
//! Opening, in order:
//! 1. `$CREDENTIALS_DIRECTORY/sfpair-data-key`, when the service's unit passes the credential
//!    (`LoadCredentialEncrypted=sfpair-data-key:PATH`): the service manager decrypted it, so a
//!    service running as another user than root needs neither the host key nor the TPM;
//! 2. `systemd-creds decrypt`, with the sealed key from the record.
//!
//! The key goes to and from `systemd-creds` through pipes (`child.rs`); the credential's name
//! (`sfpair-data-key`) is sealed into it and checked when it is opened. Each seal also writes
//! the sealed key (a credential file as systemd reads it) beside a file store, for the unit:
//! 0600 from its first byte, through a temporary file and a rename. It is sealed, so it holds
//! nothing secret; a new pairing replaces it, and the service then needs a restart to be
//! given the new one.

use std::ffi::OsStr;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::child;
use super::{DataKey, KEY_LEN, Sealer};
use crate::error::Error;

/// The credential's name: sealed into it, and its file name under `$CREDENTIALS_DIRECTORY`.
pub const NAME: &str = "sfpair-data-key";
const PROGRAM: &str = "systemd-creds";
const PACKAGE: &str = "systemd (250 or later)";

/// Seals the data key with `systemd-creds encrypt`; opens it from the unit's credential or with `systemd-creds decrypt`.
pub struct SystemdCreds {
    /// Where the credential is written for the unit, if anywhere.
    pub credential_file: Option<PathBuf>,
}

/// Writes `credential` to `path` atomically, 0600 from the first byte, never through a link.
fn write_credential(path: &Path, credential: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.exists()) {
        // As the store makes its directory: a new pairing's seal comes before its first save.
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(dir)?;
    }
    let temp = path.with_extension("cred.tmp");
    let _ = std::fs::remove_file(&temp);
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&temp)
        .and_then(|mut f| f.write_all(credential).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&temp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// The key the unit passed, if it did.
fn from_unit() -> Option<PathBuf> {
    let dir = std::env::var_os("CREDENTIALS_DIRECTORY")?;
    let path = PathBuf::from(dir).join(NAME);
    path.exists().then_some(path)
}

fn key_from(bytes: &[u8], from: &str) -> Result<DataKey, Error> {
    if bytes.len() != KEY_LEN {
        return Err(Error::config(format!(
            "{from} holds {} bytes, not a {KEY_LEN}-byte data key",
            bytes.len()
        )));
    }
    let mut key: DataKey = Zeroizing::new([0; KEY_LEN]);
    key.copy_from_slice(bytes);
    Ok(key)
}

impl Sealer for SystemdCreds {
    fn seal(&self, key: &[u8; KEY_LEN]) -> Result<Vec<u8>, Error> {
        let name = format!("--name={NAME}");
        let args = [
            OsStr::new("encrypt"),
            OsStr::new(&name),
            OsStr::new("--with-key=auto"),
            OsStr::new("-"),
            OsStr::new("-"),
        ];
        let ran = child::run(PROGRAM, &args, key, PACKAGE)?;
        if !ran.success || ran.stdout.is_empty() {
            return Err(Error::config(format!(
                "systemd-creds could not seal the data key ({}). Its host key needs root; a \
                 service of another user gets the key from its unit (docs/sealing.md)",
                ran.said()
            )));
        }
        if let Some(path) = &self.credential_file {
            // Best effort: the record holds the sealed key too, and opens without the unit.
            if let Err(e) = write_credential(path, &ran.stdout) {
                log::warn!(
                    "could not write the credential {} for the service's unit: {e}",
                    path.display()
                );
            }
        }
        Ok(ran.stdout.to_vec())
    }

    fn unseal(&self, sealed: &[u8]) -> Result<DataKey, Error> {
        if let Some(path) = from_unit() {
            // A secret file's rules (files.rs): systemd passes it 0400, to this user.
            let bytes = crate::files::read_secret(&path, 64, "the credential")?;
            return key_from(&bytes, &format!("the credential {}", path.display()));
        }
        let name = format!("--name={NAME}");
        let args = [
            OsStr::new("decrypt"),
            OsStr::new(&name),
            OsStr::new("-"),
            OsStr::new("-"),
        ];
        let ran = child::run(PROGRAM, &args, sealed, PACKAGE)?;
        if !ran.success {
            return Err(Error::config(format!(
                "systemd-creds cannot open it ({}): it was sealed on another machine, or this \
                 machine's credential key (its TPM, or /var/lib/systemd/credential.secret) \
                 changed since; or this user may not read the host key (run as root, or give \
                 the service the credential: docs/sealing.md)",
                ran.said()
            )));
        }
        key_from(&ran.stdout, "what systemd-creds decrypted")
    }
}
