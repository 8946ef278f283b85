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
//! (`sfpair-data-key`) is sealed into it and checked when it is opened.

use std::ffi::OsStr;
use std::path::PathBuf;

use zeroize::Zeroizing;

use super::child;
use super::{DataKey, KEY_LEN, Sealer};
use crate::error::Error;

/// The credential's name: sealed into it, and its file name under `$CREDENTIALS_DIRECTORY`.
pub const NAME: &str = "sfpair-data-key";
const PROGRAM: &str = "systemd-creds";
const PACKAGE: &str = "systemd (250 or later)";

pub struct SystemdCreds;

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
        if !ran.status.success() || ran.stdout.is_empty() {
            return Err(Error::config(format!(
                "systemd-creds could not seal the data key ({}). Its host key needs root; a \
                 service of another user gets the key from its unit (docs/sealing.md)",
                ran.said()
            )));
        }
        Ok(ran.stdout.to_vec())
    }

    fn unseal(&self, sealed: &[u8]) -> Result<DataKey, Error> {
        if let Some(path) = from_unit() {
            let bytes = Zeroizing::new(std::fs::read(&path).map_err(|e| {
                Error::config(format!(
                    "cannot read the credential {}: {e}",
                    path.display()
                ))
            })?);
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
        if !ran.status.success() {
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
