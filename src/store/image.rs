//! A regular file treated as raw flash: `--store flash-image:PATH[:erase=N,size=N,write=N]`.
//!
//! For hosts, tests, and boards that expose their flash through a file. It has the semantics of
//! the real thing, so the slot store runs the same code on it: an erase sets a whole block to
//! 0xFF, programming ANDs bits into what is there, and with `write` above 1 (NAND pages) a page
//! may only be programmed once per erase. Every erase and program is fsynced before it returns.
//! A missing image is created on the first write (0600, filled with 0xFF, through a temporary
//! file and a rename, so a crash never leaves a short image); until then it reads as erased.
//! This file must not log the bytes it moves.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use log::{debug, warn};
use zeroize::Zeroizing;

use super::flash::{Flash, Geometry};
use crate::error::Error;

/// A typical SPI NOR sector.
pub const DEFAULT_ERASE: u32 = 4096;

const SYNTAX: &str = "flash-image:PATH[:erase=N,size=N,write=N]";

/// A parsed `flash-image:` spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSpec {
    /// The image file.
    pub path: PathBuf,
    /// Erase block (default 4 KiB).
    pub erase_size: u32,
    /// Write unit (default 1, NOR); a page size models NAND.
    pub write_size: u32,
    /// Total size: an existing image must have exactly this size; a new one is created with
    /// it. Default: the existing file's size, or two erase blocks for a new image.
    pub size: Option<u64>,
}

/// A byte count: decimal, `0x` hex, or with a `K`/`KiB`/`M`/`MiB` suffix.
fn parse_bytes(key: &str, value: &str) -> Result<u64, Error> {
    let bad = || {
        Error::config(format!(
            "flash-image option '{key}={value}': expected a byte count such as 4096, 64K, 1M or \
             0x10000"
        ))
    };
    let lower = value.trim().to_ascii_lowercase();
    let (digits, unit) = if let Some(d) = lower
        .strip_suffix("kib")
        .or_else(|| lower.strip_suffix('k'))
    {
        (d, 1024)
    } else if let Some(d) = lower
        .strip_suffix("mib")
        .or_else(|| lower.strip_suffix('m'))
    {
        (d, 1024 * 1024)
    } else {
        (lower.as_str(), 1)
    };
    let number = match digits.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => digits.parse(),
    }
    .map_err(|_| bad())?;
    number.checked_mul(unit).ok_or_else(bad)
}

impl ImageSpec {
    /// Parses what follows `flash-image:`. A last `:` part is options only when it holds `=`,
    /// so paths with colons still work.
    pub fn parse(rest: &str) -> Result<ImageSpec, Error> {
        let (path, options) = match rest.rsplit_once(':') {
            Some((path, options)) if options.contains('=') => (path, options),
            _ => (rest, ""),
        };
        if path.is_empty() {
            return Err(Error::config(format!("flash-image needs a path: {SYNTAX}")));
        }
        let mut spec = ImageSpec {
            path: PathBuf::from(path),
            erase_size: DEFAULT_ERASE,
            write_size: 1,
            size: None,
        };
        for option in options.split(',').filter(|o| !o.is_empty()) {
            let (key, value) = option.split_once('=').unwrap_or((option, ""));
            let key = key.trim();
            if !matches!(key, "erase" | "write" | "size") {
                return Err(Error::config(format!(
                    "unknown flash-image option '{option}': use {SYNTAX}"
                )));
            }
            let n = parse_bytes(key, value)?;
            let small = || {
                u32::try_from(n)
                    .map_err(|_| Error::config(format!("flash-image option '{option}': too large")))
            };
            match key {
                "erase" => spec.erase_size = small()?,
                "write" => spec.write_size = small()?,
                _ => spec.size = Some(n),
            }
        }
        Ok(spec)
    }
}

/// A flash image file.
pub struct ImageFlash {
    path: PathBuf,
    geometry: Geometry,
    /// None until the image exists (it is created on the first write).
    file: Option<File>,
    /// Why writes are refused, when the image could only be opened for reading.
    read_only: Option<String>,
}

impl ImageFlash {
    /// Opens (but does not create) the image and checks its geometry against the spec.
    pub fn open(spec: ImageSpec) -> Result<ImageFlash, Error> {
        let what = format!("flash-image:{}", spec.path.display());
        let mut image = ImageFlash {
            geometry: Geometry {
                size: spec.size.unwrap_or(2 * u64::from(spec.erase_size.max(1))),
                erase_size: spec.erase_size,
                write_size: spec.write_size,
            },
            path: spec.path,
            file: None,
            read_only: None,
        };
        // O_NONBLOCK: a FIFO planted here must not hang the open; fstat below refuses it.
        // Read-only first: reading never needs more (a read-only mount or file still loads).
        let flags = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;
        let reader = match OpenOptions::new()
            .read(true)
            .custom_flags(flags)
            .open(&image.path)
        {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                image.geometry.check(&what)?;
                return Ok(image);
            }
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(Error::config(format!(
                    "{what} is a symbolic link: name the image file itself"
                )));
            }
            Err(e) => return Err(image.fail("read", e)),
        };
        let meta = reader.metadata().map_err(|e| image.fail("read", e))?;
        let kind = meta.file_type();
        if kind.is_char_device() || kind.is_block_device() {
            return Err(Error::config(format!(
                "{what} is a device, not an image file: for an MTD partition use \
                 --store mtd:/dev/mtdN"
            )));
        }
        if !kind.is_file() {
            return Err(Error::config(format!(
                "{what} is not a regular file; {SYNTAX} names a file that holds a flash image"
            )));
        }
        if let Some(size) = spec.size
            && size != meta.len()
        {
            return Err(Error::config(format!(
                "{what} is {} bytes, but the spec says size={size}: the image is truncated or \
                 the spec is wrong; nothing was changed",
                meta.len()
            )));
        }
        image.geometry.size = meta.len();
        image.geometry.check(&what)?;
        if meta.mode() & 0o077 != 0 {
            warn!(
                "{} is readable by other users (mode {:o}); run: chmod 600 {}",
                image.path.display(),
                meta.mode() & 0o777,
                image.path.display()
            );
        }
        image.file = Some(
            match OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(flags)
                .open(&image.path)
            {
                Ok(file) => file,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
                    ) =>
                {
                    image.read_only = Some(format!("opened read-only ({e})"));
                    reader
                }
                Err(e) => return Err(image.fail("open", e)),
            },
        );
        Ok(image)
    }

    fn fail(&self, what: &str, e: io::Error) -> Error {
        let hint = match e.kind() {
            io::ErrorKind::PermissionDenied => {
                " (run as the user that owns the image, or choose another with --store)"
            }
            _ => "",
        };
        Error::storage(format!(
            "cannot {what} flash-image:{}: {e}{hint}",
            self.path.display()
        ))
    }

    /// The open image, creating it (0600, all 0xFF) if it does not exist yet.
    fn writable(&mut self) -> Result<&File, Error> {
        if let Some(reason) = &self.read_only {
            return Err(Error::storage(format!(
                "cannot write flash-image:{}: {reason}",
                self.path.display()
            )));
        }
        let file = match self.file.take() {
            Some(file) => file,
            None => {
                let file = self.create().map_err(|e| self.fail("create", e))?;
                debug!(
                    "created flash-image:{} ({} bytes of 0xFF)",
                    self.path.display(),
                    self.geometry.size
                );
                file
            }
        };
        Ok(self.file.insert(file))
    }

    fn create(&self) -> io::Result<File> {
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if !dir.exists() {
            DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        }
        let name = self.path.file_name().unwrap_or_default().to_string_lossy();
        let temp = dir.join(format!(".{name}.tmp"));
        match fs::remove_file(&temp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&temp)?;
        let block = vec![0xFF; self.geometry.erase_size as usize];
        for _ in 0..self.geometry.blocks() {
            file.write_all(&block)?;
        }
        file.sync_all()?;
        fs::rename(&temp, &self.path)?;
        File::open(dir)?.sync_all()?;
        Ok(file)
    }

    fn check_range(&self, offset: u64, len: usize) -> Result<(), Error> {
        match offset.checked_add(len as u64) {
            Some(end) if end <= self.geometry.size => Ok(()),
            _ => Err(Error::storage(format!(
                "flash-image:{}: access of {len} bytes at {offset:#x} is past its end ({} bytes)",
                self.path.display(),
                self.geometry.size
            ))),
        }
    }
}

impl Flash for ImageFlash {
    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        self.check_range(offset, buf.len())?;
        match &self.file {
            Some(file) => file
                .read_exact_at(buf, offset)
                .map_err(|e| self.fail("read", e)),
            // Not created yet: reads as erased flash.
            None => {
                buf.fill(0xFF);
                Ok(())
            }
        }
    }

    fn erase(&mut self, offset: u64) -> Result<(), Error> {
        let erase = self.geometry.erase_size;
        if !offset.is_multiple_of(u64::from(erase)) {
            return Err(Error::storage(format!(
                "flash-image:{}: erase at {offset:#x} is not on an erase block boundary",
                self.path.display()
            )));
        }
        self.check_range(offset, erase as usize)?;
        let file = self.writable()?;
        let written = file
            .write_all_at(&vec![0xFF; erase as usize], offset)
            .and_then(|()| file.sync_data());
        written.map_err(|e| self.fail("erase a block of", e))
    }

    fn program(&mut self, offset: u64, bytes: &[u8]) -> Result<(), Error> {
        let write = u64::from(self.geometry.write_size);
        if !offset.is_multiple_of(write) || !(bytes.len() as u64).is_multiple_of(write) {
            return Err(Error::storage(format!(
                "flash-image:{}: a program of {} bytes at {offset:#x} is not whole {write}-byte \
                 pages",
                self.path.display(),
                bytes.len()
            )));
        }
        self.check_range(offset, bytes.len())?;
        let path = self.path.display().to_string();
        let file = self.writable()?;
        let mut cells = Zeroizing::new(vec![0u8; bytes.len()]);
        let result = file.read_exact_at(&mut cells, offset).and_then(|()| {
            if write > 1
                && let Some(page) = cells
                    .chunks(write as usize)
                    .position(|page| page.iter().any(|&b| b != 0xFF))
            {
                return Err(io::Error::other(format!(
                    "the page at {:#x} is programmed again without an erase, which NAND forbids \
                     ({path})",
                    offset + page as u64 * write
                )));
            }
            // Programming only clears bits.
            for (cell, &new) in cells.iter_mut().zip(bytes) {
                *cell &= new;
            }
            file.write_all_at(&cells, offset)?;
            file.sync_data()
        });
        result.map_err(|e| self.fail("program", e))
    }

    fn lock(&mut self) -> Result<(), Error> {
        if self.read_only.is_some() {
            return Ok(()); // the write itself reports why it cannot happen
        }
        match &self.file {
            Some(file) => file.lock().map_err(|e| self.fail("lock", e)),
            // Not created yet: taking the lock must not create it (`token` on an empty store
            // would leave an image behind). The creation is an atomic rename.
            None => Ok(()),
        }
    }

    fn unlock(&mut self) {
        if let Some(file) = &self.file {
            let _ = file.unlock();
        }
    }

    fn check_writable(&mut self) -> Result<(), Error> {
        match &self.read_only {
            Some(reason) => Err(Error::storage(format!(
                "cannot write flash-image:{}: {reason}",
                self.path.display()
            ))),
            None => Ok(()),
        }
    }

    fn describe(&self) -> String {
        format!("flash-image:{}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_with_defaults_suffixes_and_colons_in_paths() {
        let s = ImageSpec::parse("/tmp/a.img").unwrap();
        assert_eq!(
            (s.path, s.erase_size, s.write_size, s.size),
            (PathBuf::from("/tmp/a.img"), 4096, 1, None)
        );
        let s = ImageSpec::parse("/tmp/b.img:erase=128K,size=1M,write=2048").unwrap();
        assert_eq!(
            (s.erase_size, s.write_size, s.size),
            (128 * 1024, 2048, Some(1024 * 1024))
        );
        let s = ImageSpec::parse("/tmp/c:d.img:erase=0x10000").unwrap();
        assert_eq!(s.path, PathBuf::from("/tmp/c:d.img"));
        assert_eq!(s.erase_size, 0x10000);
        assert_eq!(
            ImageSpec::parse("/tmp/c:d.img").unwrap().path,
            PathBuf::from("/tmp/c:d.img")
        );
    }

    #[test]
    fn bad_specs_are_config_errors_that_name_the_problem() {
        for (spec, needle) in [
            ("", "needs a path"),
            (":erase=4096", "needs a path"),
            (
                "/x:erase=4k,colour=red",
                "unknown flash-image option 'colour=red'",
            ),
            ("/x:erase=lots", "expected a byte count"),
            ("/x:size=99999999999999999999", "expected a byte count"),
            ("/x:erase=8G", "expected a byte count"),
            ("/x:write=0x1000000000", "too large"),
        ] {
            let err = ImageSpec::parse(spec).unwrap_err();
            assert_eq!(err.kind(), crate::error::ErrorKind::Config, "{spec}");
            assert!(err.message().contains(needle), "{spec}: {err}");
        }
    }
}
