//! Frame files: each frame written as a binary PBM (P4) and renamed over the previous one, for
//! host UIs that draw the picture themselves, screenshots and tests.
//!
//! The picture is the panel as a person sees it: lit pixels white, unlit black (PBM's 1 = black),
//! so the QR is dark modules on a white quiet zone inside a black surround, which any decoder
//! reads. A reader never sees half a frame: the file is written under a temporary name in the
//! same directory and renamed (atomic on POSIX filesystems). Frames are not fsynced: a frame lost
//! to a power cut is redrawn on the next start.

use std::io;
use std::path::{Path, PathBuf};

use super::canvas::{Area, Canvas};
use super::screen::Panel;

/// The frame as a binary PBM: header, then rows of packed bits, 1 = black = unlit.
pub fn encode(frame: &Canvas) -> Vec<u8> {
    let mut out = format!("P4\n{} {}\n", frame.width(), frame.height()).into_bytes();
    for y in 0..frame.height() {
        let row = frame.row(y);
        let last = row.len() - 1;
        let pad = (8 - frame.width() % 8) % 8;
        for (i, byte) in row.iter().enumerate() {
            let mut b = !byte;
            if i == last {
                b &= 0xFF << pad; // padding bits are 0 by convention
            }
            out.push(b);
        }
    }
    out
}

pub struct PbmFile {
    path: PathBuf,
    temp: PathBuf,
    width: u32,
    height: u32,
}

impl PbmFile {
    /// Frames of `width × height` go to `path`; its directory must exist.
    pub fn new(path: &Path, width: u32, height: u32) -> io::Result<PbmFile> {
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
        Ok(PbmFile {
            path: path.to_path_buf(),
            temp: dir.join(temp_name),
            width,
            height,
        })
    }
}

impl PbmFile {
    /// The temporary name frames are written under before the rename.
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }
}

/// Writes `bytes` to `temp`, then renames it to `path`.
pub(crate) fn replace(temp: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    std::fs::write(temp, bytes)
        .and_then(|()| std::fs::rename(temp, path))
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

impl Panel for PbmFile {
    fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn describe(&self) -> String {
        format!("frame file {}", self.path.display())
    }

    fn show(&mut self, frame: &Canvas, _changed: Area) -> io::Result<()> {
        replace(&self.temp, &self.path, &encode(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lit_is_white_and_rows_are_padded() {
        let mut c = Canvas::new(10, 2);
        c.set(0, 0, true);
        c.set(9, 1, true);
        let pbm = encode(&c);
        let header = b"P4\n10 2\n";
        assert_eq!(&pbm[..header.len()], header);
        assert_eq!(&pbm[header.len()..], [0x7F, 0xC0, 0xFF, 0x80]);
    }

    #[test]
    fn frames_replace_the_file_whole() {
        let dir = std::env::temp_dir().join(format!("sfpair-pbm-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("frame.pbm");
        let mut f = PbmFile::new(&path, 16, 8).unwrap();
        let mut c = Canvas::new(16, 8);
        f.show(&c, c.area()).unwrap();
        c.set(3, 3, true);
        f.show(&c, c.area()).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), encode(&c));
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["frame.pbm"], "no temporary file left behind");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            PbmFile::new(&dir.join("frame.pbm"), 16, 8).is_err(),
            "missing directory"
        );
    }
}
