//! The bridge from the embedded ecosystem's flash drivers to the slot store: any
//! `embedded_storage::nor_flash::NorFlash` (a HAL's internal flash, an SPI NOR driver) is a
//! [`Flash`] medium for [`SlotStore`](super::flash::SlotStore), over a window of it that the
//! application gives to sfpair (two erase blocks at least).
//!
//! Reads of any length at any offset are served from reads aligned to the driver's
//! `READ_SIZE`; erases and programs are passed through in the driver's units, which the slot
//! store already keeps to (`Geometry::write_size` is `WRITE_SIZE`). `no_std`; the driver's
//! errors become [`Error`]s that name the window and the operation.

use alloc::format;
use alloc::string::String;
use alloc::vec;

use embedded_storage::nor_flash::{NorFlash, NorFlashError, NorFlashErrorKind};

use super::flash::{Flash, Geometry};
use crate::error::Error;

/// A window of a NOR flash driver, as the slot store's medium.
pub struct NorFlashMedium<F: NorFlash> {
    driver: F,
    base: u32,
    len: u32,
}

impl<F: NorFlash> NorFlashMedium<F> {
    /// The `len` bytes of `driver` from `base`, which must be whole erase blocks inside the
    /// driver's capacity (checked here, so a wrong window is refused before anything is read).
    pub fn new(driver: F, base: u32, len: u32) -> Result<Self, Error> {
        let erase = F::ERASE_SIZE as u32;
        let end = u64::from(base) + u64::from(len);
        if erase == 0
            || !base.is_multiple_of(erase)
            || !len.is_multiple_of(erase)
            || end > driver.capacity() as u64
        {
            return Err(Error::config(format!(
                "the flash window {base:#x}+{len:#x} is not whole erase blocks of {erase:#x} \
                 bytes inside the driver's {:#x}",
                driver.capacity()
            )));
        }
        Ok(NorFlashMedium { driver, base, len })
    }

    /// Gives the driver back.
    pub fn into_driver(self) -> F {
        self.driver
    }

    fn at(&self, offset: u64) -> u32 {
        self.base + offset as u32
    }
}

/// A driver error as ours, naming what failed.
fn failed(what: &str, offset: u64, e: impl NorFlashError) -> Error {
    let why = match e.kind() {
        NorFlashErrorKind::NotAligned => "not aligned to the driver's unit",
        NorFlashErrorKind::OutOfBounds => "out of the driver's bounds",
        _ => "the driver failed",
    };
    Error::storage(format!("flash {what} at {offset:#x}: {why}"))
}

impl<F: NorFlash> Flash for NorFlashMedium<F> {
    fn geometry(&self) -> Geometry {
        Geometry {
            size: u64::from(self.len),
            erase_size: F::ERASE_SIZE as u32,
            write_size: F::WRITE_SIZE as u32,
        }
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        let unit = F::READ_SIZE.max(1) as u64;
        let start = offset - offset % unit;
        let end = (offset + buf.len() as u64).div_ceil(unit) * unit;
        if start == offset && end == offset + buf.len() as u64 {
            let at = self.at(offset);
            return self
                .driver
                .read(at, buf)
                .map_err(|e| failed("read", offset, e));
        }
        let mut aligned = vec![0u8; (end - start) as usize];
        let at = self.at(start);
        self.driver
            .read(at, &mut aligned)
            .map_err(|e| failed("read", offset, e))?;
        let skip = (offset - start) as usize;
        buf.copy_from_slice(&aligned[skip..skip + buf.len()]);
        Ok(())
    }

    fn erase(&mut self, offset: u64) -> Result<(), Error> {
        let from = self.at(offset);
        self.driver
            .erase(from, from + F::ERASE_SIZE as u32)
            .map_err(|e| failed("erase", offset, e))
    }

    fn program(&mut self, offset: u64, bytes: &[u8]) -> Result<(), Error> {
        let at = self.at(offset);
        self.driver
            .write(at, bytes)
            .map_err(|e| failed("program", offset, e))
    }

    fn describe(&self) -> String {
        format!("flash {:#x}+{:#x}", self.base, self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::flash::SlotStore;
    use crate::store::{Loaded, TokenStore};
    use embedded_storage::nor_flash::{ErrorType, ReadNorFlash};

    /// A NOR chip as the embedded-storage traits describe one, with reads of 4 bytes only, and
    /// writes that may only clear bits, as on real NOR.
    struct Chip {
        bytes: alloc::vec::Vec<u8>,
    }

    #[derive(Debug)]
    struct ChipError(NorFlashErrorKind);

    impl NorFlashError for ChipError {
        fn kind(&self) -> NorFlashErrorKind {
            self.0
        }
    }

    impl ErrorType for Chip {
        type Error = ChipError;
    }

    impl ReadNorFlash for Chip {
        const READ_SIZE: usize = 4;
        fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), ChipError> {
            let o = offset as usize;
            if !o.is_multiple_of(4) || !bytes.len().is_multiple_of(4) {
                return Err(ChipError(NorFlashErrorKind::NotAligned));
            }
            bytes.copy_from_slice(&self.bytes[o..o + bytes.len()]);
            Ok(())
        }
        fn capacity(&self) -> usize {
            self.bytes.len()
        }
    }

    impl NorFlash for Chip {
        const WRITE_SIZE: usize = 4;
        const ERASE_SIZE: usize = 4096;
        fn erase(&mut self, from: u32, to: u32) -> Result<(), ChipError> {
            self.bytes[from as usize..to as usize].fill(0xFF);
            Ok(())
        }
        fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), ChipError> {
            let o = offset as usize;
            for (cell, b) in self.bytes[o..o + bytes.len()].iter_mut().zip(bytes) {
                *cell &= *b;
            }
            Ok(())
        }
    }

    fn record() -> crate::store::Record {
        crate::store::Record {
            refresh_token: crate::secret::Secret::new("RT-nor"),
            client_id: "K".into(),
            dialect: crate::flow::dialect::Dialect::Salesforce,
            login_url: "https://login.salesforce.com".into(),
            token_url: "https://login.salesforce.com/services/oauth2/token".into(),
            revoke_url: None,
            instance_url: "https://acme.my.salesforce.com".into(),
            identity_url: String::new(),
            scope: "api refresh_token".into(),
            issued_at_ms: 1,
            paired_at: 2,
            grant: Default::default(),
        }
    }

    #[test]
    fn a_pairing_round_trips_through_a_window_of_an_embedded_storage_driver() {
        let chip = Chip {
            bytes: vec![0xFF; 64 * 1024],
        };
        // The application gives sfpair 16 KiB at 32 KiB; the rest is its own.
        let medium = NorFlashMedium::new(chip, 32 * 1024, 16 * 1024).unwrap();
        let mut store = SlotStore::new(medium).unwrap();
        store.save(&record()).unwrap();
        match store.load().unwrap() {
            Loaded::Paired(r) => assert_eq!(r.refresh_token.expose(), "RT-nor"),
            other => panic!("{other:?}"),
        }
        let chip = store.into_flash().into_driver();
        assert!(
            chip.bytes[..32 * 1024].iter().all(|&b| b == 0xFF),
            "nothing outside"
        );
    }

    #[test]
    fn a_window_that_is_not_whole_erase_blocks_is_refused() {
        let chip = || Chip {
            bytes: vec![0xFF; 16 * 1024],
        };
        assert!(NorFlashMedium::new(chip(), 100, 8192).is_err());
        assert!(NorFlashMedium::new(chip(), 0, 8000).is_err());
        assert!(
            NorFlashMedium::new(chip(), 8192, 16384).is_err(),
            "past the end"
        );
    }
}
