//! Frame files: each frame encoded as a PBM or a PNG and renamed over the previous one, for host
//! UIs that draw the picture themselves, screenshots and tests.
//!
//! A reader never sees half a frame. The file is written under a temporary name in the same
//! directory and renamed over the old one, which is atomic on POSIX filesystems. Frames are not
//! fsynced: a frame lost to a power cut is redrawn on the next start. The encoders live in
//! `pbm.rs` and `png.rs`; this file only writes.
//!
//! The directory may be shared with other users (`/tmp`, `/run/user`): the temporary file is
//! created with O_CREAT|O_EXCL|O_NOFOLLOW, so a link or a file planted under its name is never
//! written through or truncated (a stale one of ours is removed first; one we may not remove
//! fails the frame), and the rename replaces a link at the frame's own name instead of
//! following it.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::canvas::{Area, Canvas};
use super::screen::Panel;

/// How a frame is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Binary PBM (P4): no dependency at all, read by zbarimg and netpbm.
    Pbm,
    /// PNG with stored deflate blocks: viewable anywhere.
    Png,
}

/// A frame file (PBM or PNG) as a panel: each frame replaces the file atomically.
pub struct FrameFile {
    path: PathBuf,
    temp: PathBuf,
    width: u32,
    height: u32,
    format: Format,
}

impl FrameFile {
    /// Frames of `width × height` go to `path` in `format`; its directory must exist.
    pub fn new(path: &Path, width: u32, height: u32, format: Format) -> io::Result<FrameFile> {
        let name = path.file_name().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: not a file name", path.display()),
            )
        })?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        if !dir.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{}: the directory {} does not exist",
                    path.display(),
                    dir.display()
                ),
            ));
        }
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(".tmp");
        Ok(FrameFile {
            path: path.to_path_buf(),
            temp: dir.join(temp_name),
            width,
            height,
            format,
        })
    }
}

/// Writes `bytes` to a new file at `temp`, then renames it to `path`.
fn replace(temp: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let create = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(temp)
    };
    let written = match create() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            // Left by a run that was killed, or planted: unlink (which never follows a link).
            fs::remove_file(temp).and_then(|()| create())
        }
        other => other,
    }
    .and_then(|mut file| file.write_all(bytes))
    .and_then(|()| fs::rename(temp, path));
    if written.is_err() {
        let _ = fs::remove_file(temp);
    }
    written.map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

impl Panel for FrameFile {
    fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn describe(&self) -> String {
        format!("frame file {}", self.path.display())
    }

    fn show(&mut self, frame: &Canvas, _changed: Area) -> io::Result<()> {
        let bytes = match self.format {
            Format::Pbm => super::pbm::encode(frame),
            Format::Png => super::png::encode(frame),
        };
        replace(&self.temp, &self.path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_replace_the_file_whole() {
        let dir = std::env::temp_dir().join(format!("sfpair-pbm-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("frame.pbm");
        let mut f = FrameFile::new(&path, 16, 8, Format::Pbm).unwrap();
        let mut c = Canvas::new(16, 8);
        f.show(&c, c.area()).unwrap();
        c.set(3, 3, true);
        f.show(&c, c.area()).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), super::super::pbm::encode(&c));
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["frame.pbm"], "no temporary file left behind");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            FrameFile::new(&dir.join("frame.pbm"), 16, 8, Format::Png).is_err(),
            "missing directory"
        );
    }

    #[test]
    fn a_link_planted_at_the_temporary_name_is_not_written_through() {
        let dir = std::env::temp_dir().join(format!("sfpair-pbm-link-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("root-only");
        fs::write(&victim, b"keep me").unwrap();
        std::os::unix::fs::symlink(&victim, dir.join(".frame.pbm.tmp")).unwrap();
        let mut f = FrameFile::new(&dir.join("frame.pbm"), 16, 8, Format::Pbm).unwrap();
        let c = Canvas::new(16, 8);
        f.show(&c, c.area()).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"keep me");
        assert_eq!(
            fs::read(dir.join("frame.pbm")).unwrap(),
            super::super::pbm::encode(&c)
        );
        // A link at the frame's own name is replaced, not followed.
        fs::remove_file(dir.join("frame.pbm")).unwrap();
        std::os::unix::fs::symlink(&victim, dir.join("frame.pbm")).unwrap();
        f.show(&c, c.area()).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"keep me");
        fs::remove_dir_all(&dir).unwrap();
    }
}
