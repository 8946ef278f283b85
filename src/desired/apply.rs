//! Writing the desired state and running the device's program for it, once per content, across
//! `kill -9` and power cuts.
//!
//! PATH is replaced atomically, only when the record's content differs from what PATH holds:
//! a temporary file beside it (created 0640 with O_EXCL|O_NOFOLLOW), fsynced, renamed over PATH,
//! the directory fsynced: PATH is always the old content or the new, whole. The program runs
//! after the rename, with the new JSON on standard input and `SFPAIR_PREVIOUS` naming a file
//! with the old content.
//!
//! Once per content: before the rename, the new content is written to a marker,
//! `.NAME.sfpair-apply` (fsynced); it is removed when the program has run. A crash anywhere in
//! between leaves the marker: at the next start, [`resume`] runs the program if PATH holds the
//! marker's content (the rename happened), and drops the marker if not (the next read applies
//! it again). A program that fails is reported and not run again for that content (a broken
//! program must not loop); the next change runs it.
//!
//! Must not log the record's content (it is the org's, maybe customer data).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use log::info;

use crate::error::Error;
use crate::listen::runner::{self, Exec as Program, Ran};
use crate::stop::Stop;

/// What an apply did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// PATH already held this content: nothing written, nothing run.
    Unchanged,
    /// PATH was replaced; how the program ran (`None` without a program, or when a stop cut
    /// it: it runs again at the next start).
    Changed {
        /// How the program ran; `None` without one, or when a stop cut it.
        program: Option<Ran>,
    },
}

fn beside(path: &Path, suffix: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    dir.join(format!(".{name}.sfpair-{suffix}"))
}

/// The marker of an apply in progress.
pub fn marker(path: &Path) -> PathBuf {
    beside(path, "apply")
}

/// The old content, for the program (`SFPAIR_PREVIOUS`).
pub fn previous(path: &Path) -> PathBuf {
    beside(path, "previous")
}

fn storage(path: &Path, what: &str, e: io::Error) -> Error {
    Error::storage(format!(
        "cannot {what} {} for the desired state: {e} (check --desired-file)",
        path.display()
    ))
}

/// What a file holds; `None` when it does not exist. Never follows a link.
fn read(path: &Path) -> Result<Option<Vec<u8>>, Error> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path);
    let mut file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(storage(path, "read", e)),
    };
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return Err(Error::config(format!(
            "{} is not a regular file: --desired-file names a file sfpair replaces",
            path.display()
        )));
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| storage(path, "read", e))?;
    Ok(Some(bytes))
}

/// Writes `bytes` to `path` atomically (a temporary file, fsync, rename, directory fsync),
/// mode 0640.
fn replace(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = beside(path, "tmp");
    let _ = fs::remove_file(&tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o640)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)
        .map_err(|e| storage(&tmp, "create", e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| storage(&tmp, "write", e))?;
    fs::rename(&tmp, path).map_err(|e| storage(path, "replace", e))?;
    sync_dir(path)
}

fn sync_dir(path: &Path) -> Result<(), Error> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| storage(dir, "sync", e))
}

fn remove(path: &Path) -> Result<(), Error> {
    match fs::remove_file(path) {
        Ok(()) => sync_dir(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(storage(path, "remove", e)),
    }
}

/// Makes PATH hold `content`, running `program` after a change (see the module docs).
pub fn apply(
    path: &Path,
    content: &[u8],
    program: Option<&Program>,
    stop: &Stop,
) -> Result<Applied, Error> {
    resume(path, program, stop)?;
    let old = read(path)?;
    if old.as_deref() == Some(content) {
        return Ok(Applied::Unchanged);
    }
    replace(&previous(path), old.as_deref().unwrap_or_default())?;
    replace(&marker(path), content)?;
    replace(path, content)?;
    info!("the desired state changed: {} replaced", path.display());
    let ran = program.and_then(|p| run(p, path, content, stop));
    if program.is_some() && ran.is_none() {
        // Stopped: the marker stays, so the program runs again at the next start.
        return Ok(Applied::Changed { program: None });
    }
    remove(&marker(path))?;
    Ok(Applied::Changed { program: ran })
}

/// Finishes an apply a crash cut short: runs the program if PATH holds the marker's content,
/// then removes the marker. Called at start and before every apply.
pub fn resume(path: &Path, program: Option<&Program>, stop: &Stop) -> Result<(), Error> {
    let Some(pending) = read(&marker(path))? else {
        return Ok(());
    };
    if read(path)?.as_deref() == Some(&pending[..]) {
        info!(
            "the last change to {} was cut before its program ended; running it again",
            path.display()
        );
        if let Some(p) = program
            && run(p, path, &pending, stop).is_none()
        {
            return Ok(()); // stopped again: the marker stays
        }
    }
    remove(&marker(path))
}

/// Runs the program with the new content on stdin and the old one's file in `SFPAIR_PREVIOUS`.
fn run(p: &Program, path: &Path, content: &[u8], stop: &Stop) -> Option<Ran> {
    let vars = [
        ("SFPAIR_PREVIOUS", previous(path).display().to_string()),
        ("SFPAIR_DESIRED_FILE", path.display().to_string()),
    ];
    runner::run_program(p, content, &vars, stop, "the desired state's program")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("sfpair-desired-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A program that appends what it got (stdin, then the old content) to a log.
    fn logger(dir: &Path) -> Program {
        Program {
            program: "/bin/sh".into(),
            args: vec![
                "-c".into(),
                format!(
                    "{{ cat; echo; cat \"$SFPAIR_PREVIOUS\"; echo; }} >> {}",
                    dir.join("runs").display()
                ),
            ],
            timeout: std::time::Duration::from_secs(30),
        }
    }

    #[test]
    fn a_change_is_written_and_run_once_and_an_unchanged_read_does_nothing() {
        let dir = scratch("once");
        let path = dir.join("desired.json");
        let p = logger(&dir);
        let stop = Stop::new();
        let first = apply(&path, b"{\"v\":1}", Some(&p), &stop).unwrap();
        assert!(matches!(
            first,
            Applied::Changed {
                program: Some(Ran {
                    exit_code: Some(0),
                    ..
                })
            }
        ));
        assert_eq!(
            apply(&path, b"{\"v\":1}", Some(&p), &stop).unwrap(),
            Applied::Unchanged
        );
        apply(&path, b"{\"v\":2}", Some(&p), &stop).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"{\"v\":2}");
        let runs = fs::read_to_string(dir.join("runs")).unwrap();
        assert_eq!(runs, "{\"v\":1}\n\n{\"v\":2}\n{\"v\":1}\n");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o640
        );
        assert!(!marker(&path).exists());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_crash_after_the_rename_runs_the_program_again_and_one_before_it_does_not() {
        let dir = scratch("crash");
        let path = dir.join("desired.json");
        let p = logger(&dir);
        // Cut after the rename, before the program ended: PATH and the marker agree.
        fs::write(&path, b"{\"v\":3}").unwrap();
        fs::write(previous(&path), b"{\"v\":2}").unwrap();
        fs::write(marker(&path), b"{\"v\":3}").unwrap();
        resume(&path, Some(&p), &Stop::new()).unwrap();
        assert_eq!(
            fs::read_to_string(dir.join("runs")).unwrap(),
            "{\"v\":3}\n{\"v\":2}\n"
        );
        assert!(!marker(&path).exists());
        // Cut before the rename: PATH still old; the marker is dropped, nothing runs.
        fs::write(marker(&path), b"{\"v\":4}").unwrap();
        resume(&path, Some(&p), &Stop::new()).unwrap();
        assert_eq!(
            fs::read_to_string(dir.join("runs")).unwrap(),
            "{\"v\":3}\n{\"v\":2}\n"
        );
        assert!(!marker(&path).exists());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_path_that_is_not_a_file_is_refused_and_left_alone() {
        let dir = scratch("fifo");
        let path = dir.join("desired.json");
        fs::create_dir(&path).unwrap();
        let e = apply(&path, b"{}", None, &Stop::new()).unwrap_err();
        assert_eq!(e.exit_code(), 2, "{e}");
        assert!(path.is_dir());
        fs::remove_dir_all(dir).unwrap();
    }
}
