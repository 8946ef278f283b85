//! Linux MTD character devices as raw flash: `--store mtd:/dev/mtdN`.
//!
//! Geometry from the `MEMGETINFO` ioctl (the size from sysfs `/sys/class/mtd/mtdN/size` when
//! readable: `mtd_info_user.size` is 32 bits), erase with `MEMERASE` (`MEMERASE64` past 4 GiB),
//! reads and programs with `pread`/`pwrite`, NAND bad blocks from `MEMGETBADBLOCK`
//! (docs/embedded.md, "Raw flash (MTD)"; numbers from `<mtd/mtd-abi.h>`, the same on arm32, arm64
//! and x86-64).
//! The MTD char driver writes straight to the chip, so a returned `pwrite` is on flash.
//!
//! Refuses `/dev/mtdblockN`: that driver reads a whole erase block into RAM, erases it and writes
//! it back, so a power cut during the erase loses the whole block, both slots with it on small
//! partitions. Refuses anything that is not an MTD character device, with a message that says
//! what to use instead. Never logs the bytes it moves.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use log::debug;

use super::flash::{Flash, Geometry};
use crate::error::Error;

/// `struct mtd_info_user` from `<mtd/mtd-abi.h>`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct MtdInfoUser {
    pub kind: u8,
    pub flags: u32,
    pub size: u32,
    pub erasesize: u32,
    pub writesize: u32,
    pub oobsize: u32,
    pub padding: u64,
}

/// `struct erase_info_user`.
#[repr(C)]
struct EraseInfoUser {
    start: u32,
    length: u32,
}

/// `struct erase_info_user64`.
#[repr(C)]
struct EraseInfoUser64 {
    start: u64,
    length: u64,
}

/// Linux `_IOC(dir, 'M', nr, size)`.
const fn ioc(dir: u32, nr: u32, size: usize) -> u32 {
    (dir << 30) | ((size as u32) << 16) | ((b'M' as u32) << 8) | nr
}
const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;

pub(crate) const MEMGETINFO: u32 = ioc(IOC_READ, 1, size_of::<MtdInfoUser>());
pub(crate) const MEMERASE: u32 = ioc(IOC_WRITE, 2, size_of::<EraseInfoUser>());
pub(crate) const MEMGETBADBLOCK: u32 = ioc(IOC_WRITE, 11, size_of::<i64>());
pub(crate) const MEMERASE64: u32 = ioc(IOC_WRITE, 20, size_of::<EraseInfoUser64>());

/// `mtd_info_user.type` values.
pub(crate) const MTD_ABSENT: u8 = 0;
pub(crate) const MTD_RAM: u8 = 1;
pub(crate) const MTD_ROM: u8 = 2;
pub(crate) const MTD_NORFLASH: u8 = 3;
pub(crate) const MTD_NANDFLASH: u8 = 4;
pub(crate) const MTD_DATAFLASH: u8 = 6;
pub(crate) const MTD_UBIVOLUME: u8 = 7;
pub(crate) const MTD_MLCNANDFLASH: u8 = 8;
/// `mtd_info_user.flags` bits.
pub(crate) const MTD_WRITEABLE: u32 = 0x400;
pub(crate) const MTD_NO_ERASE: u32 = 0x1000;

/// The block-device major of mtdblock (`MTD_BLOCK_MAJOR`).
const MTD_BLOCK_MAJOR: u32 = 31;

fn mtdblock_error(path: &str) -> Error {
    Error::config(format!(
        "{path} is an mtdblock device; sfpair does not write through mtdblock: it rewrites a \
         whole erase block through RAM (read, erase, write back), so a power cut during the \
         erase loses every byte of that block, the stored pairing with it. Use the character \
         device of the same partition: --store mtd:/dev/mtdN"
    ))
}

/// What a `mtd:` path names, from `stat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Node {
    Block { major: u32 },
    Char,
    File,
    Other,
}

impl Node {
    fn of(meta: &fs::Metadata) -> Node {
        let kind = meta.file_type();
        if kind.is_block_device() {
            Node::Block {
                major: libc::major(meta.rdev()),
            }
        } else if kind.is_char_device() {
            Node::Char
        } else if kind.is_file() {
            Node::File
        } else {
            Node::Other
        }
    }
}

/// Only a character device can be MTD (the ioctl then decides); everything else gets a message
/// that says what to use instead.
fn refuse_non_mtd(path: &str, node: Node) -> Result<(), Error> {
    match node {
        Node::Char => Ok(()),
        Node::Block {
            major: MTD_BLOCK_MAJOR,
        } => Err(mtdblock_error(path)),
        Node::Block { .. } => Err(Error::config(format!(
            "{path} is a block device, not an MTD character device (eMMC and SD cards are not \
             MTD): keep the pairing in a file on its filesystem with --store file:PATH"
        ))),
        Node::File => Err(Error::config(format!(
            "{path} is a regular file, not an MTD device: for a file that holds a flash image use \
             --store flash-image:{path}, for a plain token file --store file:{path}"
        ))),
        Node::Other => Err(Error::config(format!(
            "{path} is not an MTD character device: use --store mtd:/dev/mtdN (see cat /proc/mtd)"
        ))),
    }
}

/// Geometry and write policy from `MEMGETINFO` (and the sysfs size, when known).
fn geometry_of(
    path: &str,
    info: &MtdInfoUser,
    sysfs_size: Option<u64>,
) -> Result<(Geometry, bool, Option<String>), Error> {
    let nand = matches!(info.kind, MTD_NANDFLASH | MTD_MLCNANDFLASH);
    match info.kind {
        MTD_ABSENT | MTD_ROM => {
            return Err(Error::config(format!(
                "{path} is an MTD device without writable flash (type {}): choose a NOR or NAND \
                 partition",
                info.kind
            )));
        }
        MTD_NORFLASH | MTD_NANDFLASH | MTD_MLCNANDFLASH | MTD_DATAFLASH | MTD_RAM
        | MTD_UBIVOLUME => {}
        other => debug!("{path}: unknown MTD type {other}; treating it as NOR"),
    }
    if info.flags & MTD_NO_ERASE != 0 {
        return Err(Error::config(format!(
            "{path} has no erase operation (MTD_NO_ERASE); the slot store needs erasable flash: \
             keep the pairing in a file with --store file:PATH"
        )));
    }
    let read_only = (info.flags & MTD_WRITEABLE == 0).then(|| {
        "the partition is read-only (MTD_WRITEABLE is not set: a `ro` partition in the device \
         tree or on the kernel command line)"
            .to_string()
    });
    let geometry = Geometry {
        size: sysfs_size.unwrap_or(u64::from(info.size)),
        erase_size: info.erasesize,
        write_size: info.writesize.max(1),
    };
    Ok((geometry, nand, read_only))
}

/// An open MTD character device.
pub struct MtdFlash {
    path: PathBuf,
    file: File,
    geometry: Geometry,
    nand: bool,
    /// Why writes are refused, when the device could only be opened for reading.
    read_only: Option<String>,
}

impl MtdFlash {
    /// Opens `/dev/mtdN` (read-write when allowed, else read-only for `status` and `token`
    /// without rotation) and reads its geometry. Errors: `Config` when the path is not a usable
    /// MTD partition, `Storage` when it cannot be opened.
    pub fn open(path: &str) -> Result<MtdFlash, Error> {
        if path.is_empty() {
            return Err(Error::config(
                "mtd needs a device: --store mtd:/dev/mtdN (see cat /proc/mtd)",
            ));
        }
        let name = Path::new(path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with("mtdblock") {
            return Err(mtdblock_error(path));
        }
        let meta = match fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::config(format!(
                    "{path} does not exist: list the MTD partitions with cat /proc/mtd and use \
                     --store mtd:/dev/mtdN"
                )));
            }
            Err(e) => return Err(Error::storage(format!("cannot stat {path}: {e}"))),
        };
        refuse_non_mtd(path, Node::of(&meta))?;
        let (file, mut read_only) = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(file) => (file, None),
            // /dev/mtdNro, or no write permission: reading is still useful.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EACCES | libc::EPERM | libc::EROFS)
                ) =>
            {
                let file = File::open(path).map_err(|e| open_error(path, e))?;
                (
                    file,
                    Some(format!("it could only be opened read-only ({e})")),
                )
            }
            Err(e) => return Err(open_error(path, e)),
        };
        let mut info = MtdInfoUser::default();
        // SAFETY: MEMGETINFO writes one mtd_info_user into the buffer we pass, which lives for
        // the whole call and has the kernel's layout (repr(C), checked by a test).
        let rc = unsafe {
            libc::ioctl(
                file.as_raw_fd(),
                MEMGETINFO as libc::Ioctl,
                &mut info as *mut MtdInfoUser,
            )
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return Err(Error::config(format!(
                "{path} is not an MTD character device (MEMGETINFO failed: {e}): use --store \
                 mtd:/dev/mtdN (see cat /proc/mtd)"
            )));
        }
        let (geometry, nand, partition_ro) = geometry_of(path, &info, sysfs_size(&name))?;
        read_only = partition_ro.or(read_only);
        debug!(
            "{path}: MTD type {}, {} bytes, erase {} bytes, write {} bytes{}",
            info.kind,
            geometry.size,
            geometry.erase_size,
            geometry.write_size,
            if read_only.is_some() {
                ", read-only"
            } else {
                ""
            }
        );
        Ok(MtdFlash {
            path: PathBuf::from(path),
            file,
            geometry,
            nand,
            read_only,
        })
    }

    fn fail(&self, what: &str, e: io::Error) -> Error {
        let hint = match e.raw_os_error() {
            Some(libc::EROFS | libc::EPERM | libc::EACCES) => {
                " (some NOR chips power up write-protected: run flash_unlock on the device)"
            }
            Some(libc::EIO) if self.nand => " (the block may be going bad)",
            _ => "",
        };
        Error::storage(format!(
            "cannot {what} mtd:{}: {e}{hint}",
            self.path.display()
        ))
    }

    fn writable(&self) -> Result<(), Error> {
        match &self.read_only {
            Some(reason) => Err(Error::storage(format!(
                "cannot write mtd:{}: {reason}",
                self.path.display()
            ))),
            None => Ok(()),
        }
    }
}

fn open_error(path: &str, e: io::Error) -> Error {
    match e.raw_os_error() {
        Some(libc::ENXIO | libc::ENODEV) => Error::config(format!(
            "{path}: no MTD device behind this node ({e}); list the partitions with cat /proc/mtd"
        )),
        _ => Error::storage(format!(
            "cannot open {path}: {e} (sfpair needs read and write access to the partition)"
        )),
    }
}

/// `/sys/class/mtd/<name>/size`, exact past 4 GiB where `MEMGETINFO` wraps.
fn sysfs_size(name: &str) -> Option<u64> {
    fs::read_to_string(format!("/sys/class/mtd/{name}/size"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

impl Flash for MtdFlash {
    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        // NAND: ECC-corrected bit flips read as good data; uncorrectable ones come back as they
        // are (the char driver does not fail the read) and fail the record's CRC.
        self.file
            .read_exact_at(buf, offset)
            .map_err(|e| self.fail("read", e))
    }

    fn erase(&mut self, offset: u64) -> Result<(), Error> {
        self.writable()?;
        let length = u64::from(self.geometry.erase_size);
        let fd = self.file.as_raw_fd();
        // SAFETY: MEMERASE(64) reads one erase_info_user(64) from the pointer, valid for the
        // call; the kernel erases synchronously and checks the range itself.
        let rc = match (u32::try_from(offset), u32::try_from(length)) {
            (Ok(start), Ok(length)) => unsafe {
                let arg = EraseInfoUser { start, length };
                libc::ioctl(fd, MEMERASE as libc::Ioctl, &arg as *const EraseInfoUser)
            },
            _ => unsafe {
                let arg = EraseInfoUser64 {
                    start: offset,
                    length,
                };
                libc::ioctl(
                    fd,
                    MEMERASE64 as libc::Ioctl,
                    &arg as *const EraseInfoUser64,
                )
            },
        };
        if rc < 0 {
            return Err(self.fail("erase a block of", io::Error::last_os_error()));
        }
        Ok(())
    }

    fn program(&mut self, offset: u64, bytes: &[u8]) -> Result<(), Error> {
        self.writable()?;
        self.file
            .write_all_at(bytes, offset)
            .map_err(|e| self.fail("program", e))
    }

    fn is_bad(&mut self, offset: u64) -> Result<bool, Error> {
        if !self.nand {
            return Ok(false);
        }
        let at: i64 = offset as i64;
        // SAFETY: MEMGETBADBLOCK reads one loff_t from the pointer, valid for the call.
        let rc = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                MEMGETBADBLOCK as libc::Ioctl,
                &at as *const i64,
            )
        };
        match rc {
            0 => Ok(false),
            1.. => Ok(true),
            _ => {
                let e = io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EOPNOTSUPP) {
                    Ok(false)
                } else {
                    Err(self.fail("check for bad blocks on", e))
                }
            }
        }
    }

    fn lock(&mut self) -> Result<(), Error> {
        self.file.lock().map_err(|e| self.fail("lock", e))
    }

    fn unlock(&mut self) {
        let _ = self.file.unlock();
    }

    fn check_writable(&mut self) -> Result<(), Error> {
        self.writable()
    }

    fn describe(&self) -> String {
        format!("mtd:{}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn ioctl_numbers_and_struct_layout_match_the_kernel_headers() {
        // From <mtd/mtd-abi.h> as compiled by gcc (docs/embedded.md, "Raw flash (MTD)").
        assert_eq!(size_of::<MtdInfoUser>(), 32);
        assert_eq!(MEMGETINFO, 0x8020_4d01);
        assert_eq!(MEMERASE, 0x4008_4d02);
        assert_eq!(MEMERASE64, 0x4010_4d14);
        assert_eq!(MEMGETBADBLOCK, 0x4008_4d0b);
    }

    fn config_error(path: &str) -> Error {
        match MtdFlash::open(path) {
            Ok(_) => panic!("{path} was accepted as MTD"),
            Err(e) => e,
        }
    }

    #[test]
    fn mtdblock_paths_are_refused_with_the_reason() {
        for path in ["/dev/mtdblock3", "/dev/mtdblock0"] {
            let e = config_error(path);
            assert_eq!(e.kind(), ErrorKind::Config);
            assert!(e.message().contains("power cut"), "{e}");
            assert!(e.message().contains("mtd:/dev/mtdN"), "{e}");
        }
    }

    #[test]
    fn things_that_are_not_mtd_are_refused_with_what_to_use_instead() {
        let dir = std::env::temp_dir().join(format!("sfpair-mtd-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("image.bin");
        fs::write(&file, [0xFF; 16]).unwrap();
        let cases = [
            (file.to_str().unwrap().to_string(), "flash-image:"),
            (
                dir.to_str().unwrap().to_string(),
                "not an MTD character device",
            ),
            ("/dev/null".to_string(), "MEMGETINFO failed"),
            ("/dev/mtd-does-not-exist".to_string(), "cat /proc/mtd"),
            (String::new(), "mtd needs a device"),
        ];
        for (path, needle) in cases {
            let e = config_error(&path);
            assert_eq!(e.kind(), ErrorKind::Config, "{path}: {e}");
            assert!(e.message().contains(needle), "{path}: {e}");
        }
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn block_devices_are_told_apart_by_major() {
        let e = refuse_non_mtd("/dev/weird", Node::Block { major: 31 }).unwrap_err();
        assert!(e.message().contains("mtdblock"), "{e}");
        let e = refuse_non_mtd("/dev/mmcblk0p3", Node::Block { major: 179 }).unwrap_err();
        assert!(e.message().contains("eMMC"), "{e}");
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(refuse_non_mtd("/dev/mtd3", Node::Char).is_ok());
    }

    fn info(kind: u8, flags: u32, size: u32, erase: u32, write: u32) -> MtdInfoUser {
        MtdInfoUser {
            kind,
            flags,
            size,
            erasesize: erase,
            writesize: write,
            ..MtdInfoUser::default()
        }
    }

    #[test]
    fn geometry_and_policy_come_from_memgetinfo() {
        let nor = info(MTD_NORFLASH, MTD_WRITEABLE | 0x800, 65536, 4096, 1);
        let (g, nand, ro) = geometry_of("/dev/mtd3", &nor, None).unwrap();
        assert_eq!((g.size, g.erase_size, g.write_size), (65536, 4096, 1));
        assert!(!nand && ro.is_none());
        let nand_ro = info(MTD_NANDFLASH, 0, 1 << 20, 128 << 10, 2048);
        let (g, nand, ro) = geometry_of("/dev/mtd4", &nand_ro, Some(8 << 30)).unwrap();
        assert_eq!(g.size, 8 << 30, "sysfs size wins (MEMGETINFO is 32-bit)");
        assert!(nand);
        assert!(ro.unwrap().contains("read-only"));
        for (bad, needle) in [
            (info(MTD_ROM, 0, 65536, 4096, 1), "without writable flash"),
            (
                info(MTD_NORFLASH, MTD_WRITEABLE | MTD_NO_ERASE, 65536, 4096, 1),
                "no erase",
            ),
        ] {
            let e = geometry_of("/dev/mtd5", &bad, None).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config);
            assert!(e.message().contains(needle), "{e}");
        }
    }
}
