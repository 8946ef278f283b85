//! Small files read whole, with a size limit: secret files, CA bundles, board profiles, key
//! files. The one home of the rules for files sfpair is pointed at by a setting:
//!
//! - Every one is opened without blocking and must be a regular file (checked on the opened
//!   descriptor, so it is the file read): a FIFO would block the open for ever (under `serve`,
//!   every token and health request behind it), `/dev/zero` would never end, a directory is a
//!   mistake. Each is refused at once with what it is instead (exit 2).
//! - A secret ([`read_secret`]: `--client-secret-file`, `--key-file`, `--device-key`) must also
//!   belong to this user or root, and neither the group nor others may read or write it, as ssh
//!   requires of its keys: otherwise another user on the board may read it, or swap in their
//!   own. The refusal says the `chown` or `chmod 600` to run.
//! - A CA bundle ([`read_trusted`]: `--ca-file`) is public, so anyone may read it; but it
//!   decides whom sfpair hands its tokens to, so it too must belong to this user or root and
//!   must not be writable by the group or others (`chmod go-w`): another user who could add a
//!   certificate to it could stand in for Salesforce.
//! - A text secret keeps its bytes as written, except one final newline (`\n` or `\r\n`, as
//!   editors and `echo` add), which is taken off ([`secret_text`]). Other whitespace around it
//!   is kept and named in a warning: a secret with a stray trailing space is refused by the
//!   server as a mismatch, which would otherwise look like a wrong secret.
//!
//! Reading only; writing records is the stores' job (`store/`). Must not put a secret's bytes
//! in a message: only paths, modes, owners and counts.

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use zeroize::Zeroizing;

use crate::error::Error;
use crate::secret::Secret;
use crate::trust::trusted_owner;

/// Opens `path` for reading without blocking on it, and checks on the open descriptor that it
/// is a regular file.
fn open_regular(path: &Path) -> io::Result<(File, Metadata)> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other(format!(
            "it is {}, not a regular file",
            kind_name(&meta)
        )));
    }
    Ok((file, meta))
}

/// What a file that is not a regular one is, for a message: `a directory`, `a FIFO`, …
pub fn kind_name(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_file() {
        "a regular file"
    } else {
        "an unknown kind of file"
    }
}

/// Reads the whole of `file`, refusing more than `limit` bytes.
fn read_limited(file: File, limit: u64) -> io::Result<Zeroizing<Vec<u8>>> {
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::other(format!("longer than {limit} bytes")));
    }
    Ok(bytes)
}

/// Reads a small text file, refusing anything longer than `limit` bytes and anything that is
/// not a regular file.
pub fn read_small(path: &Path, limit: u64) -> io::Result<String> {
    let (file, _) = open_regular(path)?;
    let bytes = read_limited(file, limit)?;
    String::from_utf8(bytes.to_vec())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "it is not UTF-8 text"))
}

/// Reads the secret file `path` (at most `limit` bytes) under the rules above. `what` names it
/// in messages (`the key file (--key-file)`). Every refusal is a configuration error (exit 2).
pub fn read_secret(path: &Path, limit: u64, what: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
    let shown = path.display();
    let cannot = |e: io::Error| Error::config(format!("cannot read {what} {shown}: {e}"));
    let (file, meta) = open_regular(path).map_err(cannot)?;
    owned_here(path, &meta, what)?;
    if meta.mode() & 0o077 != 0 {
        return Err(Error::config(format!(
            "{what} {shown} may be read or written by other users (mode {:o}): run: chmod 600 \
             {shown} (sfpair reads a secret only when nobody else can)",
            meta.mode() & 0o777
        )));
    }
    read_limited(file, limit).map_err(cannot)
}

/// Reads the public but trust-deciding file `path` (a CA bundle) under the rules above.
pub fn read_trusted(path: &Path, limit: u64, what: &str) -> Result<String, Error> {
    let shown = path.display();
    let cannot = |e: io::Error| Error::config(format!("cannot read {what} {shown}: {e}"));
    let (file, meta) = open_regular(path).map_err(cannot)?;
    owned_here(path, &meta, what)?;
    if meta.mode() & 0o022 != 0 {
        return Err(Error::config(format!(
            "{what} {shown} may be changed by other users (mode {:o}): run: chmod go-w {shown} \
             (it decides which servers sfpair trusts with its tokens)",
            meta.mode() & 0o777
        )));
    }
    let bytes = read_limited(file, limit).map_err(cannot)?;
    String::from_utf8(bytes.to_vec())
        .map_err(|_| Error::config(format!("{what} {shown} is not UTF-8 text")))
}

/// Refuses a file that belongs to another user than this one or root.
fn owned_here(path: &Path, meta: &Metadata, what: &str) -> Result<(), Error> {
    if trusted_owner(meta.uid()) {
        return Ok(());
    }
    Err(Error::config(format!(
        "{what} {} {}; until then another user could change it",
        path.display(),
        crate::trust::foreign_owner(meta.uid(), path)
    )))
}

/// A text secret from the bytes of its file: UTF-8, one final newline taken off, and a
/// warning that names any other whitespace around it (kept: it may be part of the secret).
pub fn secret_text(bytes: &[u8], path: &Path, what: &str) -> Result<Secret, Error> {
    let text = core::str::from_utf8(bytes)
        .map_err(|_| Error::config(format!("{what} {} is not UTF-8 text", path.display())))?;
    let text = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text);
    if text.is_empty() {
        return Err(Error::config(format!("{what} {} is empty", path.display())));
    }
    let before = text.len() - text.trim_start().len();
    let after = text.len() - text.trim_end().len();
    if before + after > 0 {
        log::warn!(
            "{what} {} has whitespace around the secret ({before} byte(s) before it, {after} \
             after it, besides one final newline): it is used as written. If the server refuses \
             the secret, remove that whitespace",
            path.display()
        );
    }
    Ok(Secret::new(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::euid;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sfpair-files-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn mkfifo(path: &Path) {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }

    #[test]
    fn refuses_files_over_the_limit_and_anything_but_a_regular_file() {
        let dir = scratch("small");
        let e = read_small(Path::new("/dev/zero"), 16).unwrap_err();
        assert!(e.to_string().contains("a character device"), "{e}");
        let path = dir.join("f");
        std::fs::write(&path, "0123456789").unwrap();
        assert_eq!(read_small(&path, 10).unwrap(), "0123456789");
        let e = read_small(&path, 9).unwrap_err();
        assert!(e.to_string().contains("longer than 9 bytes"), "{e}");
        let e = read_small(&dir, 9).unwrap_err();
        assert!(e.to_string().contains("a directory"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A FIFO blocked the open for ever (no writer ever comes); now it is refused at once,
    /// under every rule.
    #[test]
    fn a_fifo_is_refused_at_once_never_waited_on() {
        let dir = scratch("fifo");
        let fifo = dir.join("fifo");
        mkfifo(&fifo);
        let start = std::time::Instant::now();
        let e = read_secret(&fifo, 4096, "the key file (--key-file)").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.message().contains("a FIFO, not a regular file"), "{e}");
        assert!(read_trusted(&fifo, 4096, "the CA file").is_err());
        assert!(read_small(&fifo, 4096).is_err());
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_secret_others_may_read_or_write_is_refused_with_the_chmod() {
        let dir = scratch("modes");
        let path = dir.join("secret");
        std::fs::write(&path, "s3cret\n").unwrap();
        for mode in [0o644, 0o640, 0o604, 0o620, 0o602] {
            chmod(&path, mode);
            let e = read_secret(&path, 4096, "the client secret file").unwrap_err();
            assert_eq!(e.exit_code(), 2);
            assert!(
                e.message()
                    .contains(&format!("run: chmod 600 {}", path.display())),
                "{e}"
            );
            assert!(!e.message().contains("s3cret"), "{e}");
        }
        for mode in [0o600, 0o400] {
            chmod(&path, mode);
            assert_eq!(
                &*read_secret(&path, 4096, "the client secret file").unwrap(),
                b"s3cret\n"
            );
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A CA bundle is public (0644 is fine) but others must not be able to change it.
    #[test]
    fn a_ca_file_may_be_read_by_all_but_changed_by_none_but_its_owner() {
        let dir = scratch("ca");
        let path = dir.join("ca.pem");
        std::fs::write(&path, "pem").unwrap();
        chmod(&path, 0o644);
        assert_eq!(read_trusted(&path, 4096, "the CA file").unwrap(), "pem");
        for mode in [0o664, 0o646] {
            chmod(&path, mode);
            let e = read_trusted(&path, 4096, "the CA file").unwrap_err();
            assert!(e.message().contains("chmod go-w"), "{e}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// Owned by another user, even 0600: refused.
    #[test]
    #[ignore = "needs root: chowns a file to another user (scripts/test runs it as root)"]
    fn a_secret_of_another_user_is_refused_with_the_chown() {
        assert_eq!(euid(), 0, "run as root");
        let dir = scratch("owner");
        let path = dir.join("secret");
        std::fs::write(&path, "s3cret").unwrap();
        chmod(&path, 0o600);
        std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
        let e = read_secret(&path, 4096, "the key file (--key-file)").unwrap_err();
        assert!(e.message().contains("belongs to uid 65534"), "{e}");
        assert!(e.message().contains("run: chown 0"), "{e}");
        assert!(read_trusted(&path, 4096, "the CA file").is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_file_of_root_is_trusted() {
        let meta = std::fs::metadata("/").unwrap();
        assert!(owned_here(Path::new("/"), &meta, "x").is_ok(), "root's");
    }

    #[test]
    fn only_a_final_newline_is_taken_off_and_other_whitespace_is_kept() {
        let p = Path::new("/etc/secret");
        let w = "the client secret file";
        assert_eq!(secret_text(b"abc\n", p, w).unwrap().expose(), "abc");
        assert_eq!(secret_text(b"abc\r\n", p, w).unwrap().expose(), "abc");
        assert_eq!(secret_text(b"abc", p, w).unwrap().expose(), "abc");
        assert_eq!(secret_text(b"abc  \n", p, w).unwrap().expose(), "abc  ");
        assert_eq!(secret_text(b"abc\n\n", p, w).unwrap().expose(), "abc\n");
        assert_eq!(secret_text(b" abc", p, w).unwrap().expose(), " abc");
        assert!(secret_text(b"\n", p, w).is_err());
        assert!(secret_text(b"\xff\n", p, w).is_err());
    }
}
