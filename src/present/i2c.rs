//! Linux i2c-dev, shared by the OLED drivers: open `/dev/i2c-N`, bind a slave address, and send
//! each message as one `write()` (one I2C transaction: START, address, bytes, STOP).
//!
//! Raw `libc::ioctl` on a `File` (about fifteen lines) instead of the i2cdev/linux-embedded-hal
//! crates, which would bring nix (twice) for one ioctl. Errors name the device and say what to
//! check, because "EBUSY" alone helps nobody in the field (docs/embedded.md,
//! "I2C from user space").

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

/// `I2C_SLAVE` from `<linux/i2c-dev.h>`: the address the following reads and writes go to.
const I2C_SLAVE: u32 = 0x0703;

/// The kernel clamps one i2c-dev `write()` to 8192 bytes (`drivers/i2c/i2c-dev.c`).
pub const MAX_TRANSACTION: usize = 8192;

/// Sends `bytes` as one I2C transaction. A short write is an error, never retried: the rest
/// would start a new transaction whose first byte the controller would take as a control byte.
pub fn transaction<W: Write>(bus: &mut W, bytes: &[u8]) -> io::Result<()> {
    debug_assert!(bytes.len() <= MAX_TRANSACTION);
    let sent = bus.write(bytes)?;
    if sent != bytes.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("the bus took {sent} of {} bytes", bytes.len()),
        ));
    }
    Ok(())
}

/// Opens the bus `path` and binds `address` (7-bit).
pub fn open(path: &Path, address: u16) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| explain(e, path, address))?;
    // SAFETY: a valid open descriptor; I2C_SLAVE takes the address as an integer argument.
    let rc = unsafe {
        libc::ioctl(
            file.as_raw_fd(),
            I2C_SLAVE as _,
            libc::c_ulong::from(address),
        )
    };
    if rc < 0 {
        return Err(explain(io::Error::last_os_error(), path, address));
    }
    Ok(file)
}

/// The same error, with the device named and what to check said.
pub fn explain(e: io::Error, path: &Path, address: u16) -> io::Error {
    let device = format!("{} at address {address:#04x}", path.display());
    let advice = match e.raw_os_error() {
        Some(libc::ENOENT) => {
            "no such I2C bus: enable I2C (Raspberry Pi: dtparam=i2c_arm=on) and load the \
             i2c-dev module, then check the bus number with `ls /dev/i2c-*`"
        }
        Some(libc::EACCES) | Some(libc::EPERM) => {
            "permission denied: run as a user in the i2c group (or root)"
        }
        Some(libc::EBUSY) => {
            "the address is owned by a kernel driver (for example ssd1307fb from a device-tree \
             overlay): use --display fb:/dev/fbN for that panel, or remove the overlay"
        }
        Some(libc::ENOTTY) | Some(libc::EINVAL) => "this is not an I2C bus device",
        Some(libc::ENOSYS) => {
            "the I2C ioctl is not available: this is not an I2C bus, or an emulator (qemu-user) \
             that does not pass it through"
        }
        Some(libc::ENXIO) | Some(libc::EREMOTEIO) | Some(libc::EIO) => {
            "no device answered: check the wiring, the power and the address (0x3c or 0x3d)"
        }
        Some(libc::ETIMEDOUT) | Some(libc::EAGAIN) => {
            "the bus timed out: check the wiring and the pull-up resistors"
        }
        _ => "",
    };
    let message = if advice.is_empty() {
        format!("{device}: {e}")
    } else {
        format!("{device}: {e}; {advice}")
    };
    io::Error::new(e.kind(), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_bus_says_how_to_enable_i2c() {
        let e = open(Path::new("/dev/i2c-does-not-exist"), 0x3c).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("/dev/i2c-does-not-exist at address 0x3c"),
            "{text}"
        );
        assert!(text.contains("i2c-dev"), "{text}");
    }

    #[test]
    fn a_file_that_is_not_a_bus_is_refused_at_open() {
        let path = std::env::temp_dir().join(format!("sfpair-not-i2c-{}", std::process::id()));
        std::fs::write(&path, b"").unwrap();
        let e = open(&path, 0x3d).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert!(e.to_string().contains("not an I2C bus"), "{e}");
        assert!(e.to_string().contains("0x3d"), "{e}");
    }

    #[test]
    fn busy_and_silent_devices_get_advice() {
        let busy = explain(
            io::Error::from_raw_os_error(libc::EBUSY),
            Path::new("/dev/i2c-1"),
            0x3c,
        );
        assert!(busy.to_string().contains("kernel driver"), "{busy}");
        assert!(busy.to_string().contains("fb:/dev/fbN"), "{busy}");
        let silent = explain(
            io::Error::from_raw_os_error(libc::EREMOTEIO),
            Path::new("/dev/i2c-1"),
            0x3c,
        );
        assert!(
            silent.to_string().contains("no device answered"),
            "{silent}"
        );
    }

    #[test]
    fn a_short_write_is_an_error() {
        struct Short;
        impl Write for Short {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                Ok(buf.len() / 2)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        assert!(transaction(&mut Short, &[0x00, 0xAE]).is_err());
    }
}
