//! The broker's listening socket: where it may be, how it appears, and how it goes.
//!
//! The socket must never be reachable with the wrong mode or group, and setting them must
//! never touch another file. Mode and group set by path after `bind()` were both wrong: a user
//! who could write the socket's directory renamed a symbolic link over the new socket between
//! the bind and the `chown`, and the broker (often root) gave `/etc/shadow` to the socket's
//! group. So:
//!
//! 1. The directory, and every directory above it, must pass [`trust::check_dir_chain`]:
//!    nobody but this user or root may rename names in it (a sticky `/tmp` passes).
//! 2. The socket is bound inside a private 0700 directory made with `mkdtemp` beside its final
//!    name, and gets its mode and group there, where nobody else can put a name.
//! 3. It is then hard-linked to its final name, which fails if anything is there (two brokers
//!    starting at once, or a name planted since the stale socket was cleared), and the private
//!    name and directory are removed. A socket is only ever reachable complete.
//!
//! At start a stale socket (one nobody listens on) is removed; a live one, or a file that is
//! not a socket, is left alone and reported. Dropping the [`Socket`] removes the file if it is
//! still the one we made.
//!
//! Must not: set a mode or an owner through a name another user could have replaced.

use std::ffi::{CString, OsStr};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use log::info;

use super::ServeOptions;
use crate::error::Error;
use crate::trust;

/// The longest path a Unix socket address holds (`sun_path` is 108 bytes with its NUL).
const MAX_SOCKET_PATH: usize = 107;
/// The private directory's name beside the socket; `mkdtemp` fills the X's.
const STAGING: &str = ".sfpair-XXXXXX";
/// The socket's name inside it.
const STAGED: &str = "s";

/// The listening socket; dropping it removes the file if it is still ours.
pub(super) struct Socket {
    pub(super) listener: UnixListener,
    path: PathBuf,
    pub(super) mode: u32,
    /// (device, inode) of the file we created, so we never remove someone else's.
    identity: (u64, u64),
}

impl Socket {
    /// Creates the socket at `options.socket` with its mode (0600, or 0660 in `options.group`),
    /// listening and non-blocking.
    pub(super) fn bind(options: &ServeOptions) -> Result<Socket, Error> {
        let path = &options.socket;
        let dir = dir_of(path);
        trust::check_dir_chain(dir, "--socket")?;
        claim(path)?;
        let mode = if options.group.is_some() {
            0o660
        } else {
            0o600
        };
        let staging = Staging::create(dir, path)?;
        let staged = staging.dir.join(STAGED);
        let listener = UnixListener::bind(&staged).map_err(|e| {
            Error::config(format!(
                "cannot create the socket {}: {e} (may this user write to {}?)",
                path.display(),
                dir.display()
            ))
        })?;
        // Inside our own 0700 directory nobody else can have put a link: these names are ours.
        fs::set_permissions(&staged, fs::Permissions::from_mode(mode)).map_err(|e| {
            Error::config(format!("cannot set the mode of {}: {e}", path.display()))
        })?;
        if let Some(gid) = options.group {
            std::os::unix::fs::lchown(&staged, None, Some(gid)).map_err(|e| {
                Error::config(format!(
                    "cannot give {} to group {gid}: {e} (the broker's user must be in that \
                     group, or root)",
                    path.display()
                ))
            })?;
        }
        let meta = fs::symlink_metadata(&staged)
            .map_err(|e| Error::config(format!("cannot stat {}: {e}", staged.display())))?;
        fs::hard_link(&staged, path).map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => Error::config(format!(
                "{} appeared while the broker was starting (another `sfpair serve` or `run` \
                 on the same --socket?); stop it first",
                path.display()
            )),
            _ => Error::config(format!("cannot create the socket {}: {e}", path.display())),
        })?;
        let socket = Socket {
            listener,
            path: path.clone(),
            mode,
            identity: (meta.dev(), meta.ino()),
        };
        drop(staging);
        socket
            .listener
            .set_nonblocking(true)
            .map_err(|e| Error::config(format!("cannot configure {}: {e}", path.display())))?;
        Ok(socket)
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        let ours =
            fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.identity);
        if ours {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// The private directory the socket is bound in; dropping it removes it and what it holds.
struct Staging {
    dir: PathBuf,
}

impl Staging {
    /// `mkdtemp` in `dir`: a new 0700 directory of ours, under a name nobody had.
    fn create(dir: &Path, socket: &Path) -> Result<Staging, Error> {
        let template = dir.join(STAGING);
        let longest = template.as_os_str().len() + 1 + STAGED.len();
        if longest > MAX_SOCKET_PATH {
            return Err(Error::config(format!(
                "--socket {} is too long: the broker binds it first in a private directory \
                 beside it, and {longest} bytes do not fit a socket address ({MAX_SOCKET_PATH} \
                 at most); choose a shorter path",
                socket.display()
            )));
        }
        let template = CString::new(template.as_os_str().as_bytes()).map_err(|_| {
            Error::config(format!("--socket {} holds a NUL byte", socket.display()))
        })?;
        let raw = template.into_raw();
        // SAFETY: `raw` is a NUL-terminated, writable buffer that mkdtemp fills in place; it
        // is taken back into a CString right after, whatever mkdtemp returned.
        let made = unsafe { libc::mkdtemp(raw) };
        let name = unsafe { CString::from_raw(raw) };
        if made.is_null() {
            return Err(Error::config(format!(
                "cannot create a private directory in {} for the socket: {} (may this user \
                 write there?)",
                dir.display(),
                io::Error::last_os_error()
            )));
        }
        Ok(Staging {
            dir: PathBuf::from(OsStr::from_bytes(name.as_bytes())),
        })
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_file(self.dir.join(STAGED));
        let _ = fs::remove_dir(&self.dir);
    }
}

/// The directory holding `path` (`.` for a bare name).
fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Makes room for the socket: nothing there is fine; a socket nobody listens on is stale and
/// removed; a live socket or any other file is an error.
pub(super) fn claim(path: &Path) -> Result<(), Error> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(Error::config(format!(
                "cannot check {}: {e}",
                path.display()
            )));
        }
    };
    if !meta.file_type().is_socket() {
        return Err(Error::config(format!(
            "{} exists and is not a socket; refusing to replace it: choose another --socket",
            path.display()
        )));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(Error::config(format!(
            "another process (a running `sfpair serve`?) listens on {}; stop it first",
            path.display()
        ))),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            info!("removing the stale socket {}", path.display());
            fs::remove_file(path).map_err(|e| {
                Error::config(format!(
                    "cannot remove the stale socket {}: {e}",
                    path.display()
                ))
            })
        }
        Err(e) => Err(Error::config(format!(
            "cannot check whether {} is in use: {e}",
            path.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sfpair-sock-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }

    fn options(path: &Path, group: Option<u32>) -> ServeOptions {
        ServeOptions {
            socket: path.to_path_buf(),
            group,
            allow_uids: vec![],
            allow_gids: vec![],
        }
    }

    #[test]
    fn a_stale_socket_is_removed_a_live_one_and_other_files_are_kept() {
        let dir = scratch("claim");
        let path = dir.join("s.sock");
        assert!(claim(&path).is_ok(), "nothing there");
        let live = UnixListener::bind(&path).unwrap();
        let e = claim(&path).unwrap_err();
        assert!(e.message().contains("listens on"), "{e}");
        drop(live); // the file stays, but nobody listens: stale
        assert!(path.exists());
        // A test in this binary that forks (the child runner's) may hold a copy of the
        // listening descriptor until its exec closes it: wait (bounded) until nobody listens.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(&path).is_ok() {
            assert!(std::time::Instant::now() < deadline, "still listened on");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        claim(&path).unwrap();
        assert!(!path.exists());
        fs::write(&path, "not a socket").unwrap();
        let e = claim(&path).unwrap_err();
        assert!(e.message().contains("not a socket"), "{e}");
        assert!(path.exists());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_socket_appears_with_its_mode_leaves_no_staging_and_is_removed_on_drop() {
        let dir = scratch("bind");
        let path = dir.join("s.sock");
        let socket = Socket::bind(&options(&path, None)).unwrap();
        let meta = fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["s.sock"], "nothing but the socket is left");
        UnixStream::connect(&path).expect("the linked name reaches the listener");
        drop(socket);
        assert!(!path.exists());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn with_a_group_the_socket_is_0660_in_that_group() {
        let dir = scratch("group");
        let path = dir.join("s.sock");
        let gid = fs::metadata(&dir).unwrap().gid(); // a group this user may give
        let socket = Socket::bind(&options(&path, Some(gid))).unwrap();
        let meta = fs::symlink_metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o660);
        assert_eq!(meta.gid(), gid);
        drop(socket);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_directory_others_may_write_is_refused_and_nothing_is_created() {
        let dir = scratch("shared");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let path = dir.join("s.sock");
        let e = Socket::bind(&options(&path, None)).err().unwrap();
        assert!(e.message().contains("writable by other users"), "{e}");
        assert!(e.message().contains("--socket"), "{e}");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
        // Sticky, as /tmp: others may add names but not replace ours.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o1777)).unwrap();
        drop(Socket::bind(&options(&path, None)).unwrap());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_path_too_long_for_the_staging_directory_is_refused_with_the_reason() {
        let dir = scratch("long");
        let deep = dir.join("d".repeat(100));
        fs::create_dir(&deep).unwrap();
        let e = Socket::bind(&options(&deep.join("s"), None)).err().unwrap();
        assert!(e.message().contains("too long"), "{e}");
        fs::remove_dir_all(dir).unwrap();
    }
}
