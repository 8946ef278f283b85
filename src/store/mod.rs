//! Where the pairing lives between runs: the `TokenStore` seam and its backends.
//!
//! Every backend stores one [`Record`] with the shared codec in `record.rs`. A backend never
//! replaces a good record with a bad one: a write either completes (and reads back) or leaves
//! the previous record as it was. A record that does not decode is reported as
//! [`Loaded::Corrupt`] with the reason, never as a crash, and is only replaced by a fresh
//! successful pairing.

pub mod crc32;
pub mod record;

#[cfg(feature = "std")]
pub mod file;
#[cfg(feature = "flash")]
pub mod flash;
#[cfg(all(feature = "std", feature = "flash"))]
pub mod image;
#[cfg(all(feature = "std", feature = "flash"))]
pub mod mtd;

#[cfg(feature = "std")]
use alloc::boxed::Box;
use alloc::string::String;

pub use self::record::Record;
use crate::error::Error;

/// What a store holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Loaded {
    /// Nothing stored: never paired, or forgotten.
    Empty,
    Paired(Record),
    /// Something is stored but does not decode; the reason says why. Reads as "not paired".
    Corrupt(String),
}

/// A place that keeps one pairing record.
pub trait TokenStore: Send {
    fn load(&mut self) -> Result<Loaded, Error>;
    /// Replaces the stored record atomically: after a crash at any point, `load` returns the
    /// old record or the new one.
    fn save(&mut self, record: &Record) -> Result<(), Error>;
    /// Removes the record so the secret is gone from the medium, as far as the medium allows.
    fn wipe(&mut self) -> Result<(), Error>;
    /// Fails, before a pairing starts, when a later `save` would be refused for what the store
    /// holds (a flash store never overwrites a newer sfpair's record or foreign data), so nobody
    /// approves a code for a pairing that cannot be kept.
    fn check_writable(&mut self) -> Result<(), Error> {
        Ok(())
    }
    /// Where it is, for messages (`file:/var/lib/sfpair/token`).
    fn describe(&self) -> String;
}

/// A `--store` value, parsed once: flags, the environment and board profiles all produce one,
/// and [`open`] takes it.
#[cfg(feature = "std")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Spec {
    /// `file:PATH`.
    File(std::path::PathBuf),
    /// `mtd:/dev/mtdN`.
    #[cfg(feature = "flash")]
    Mtd(std::path::PathBuf),
    /// `flash-image:PATH[:erase=N,size=N,write=N]`.
    #[cfg(feature = "flash")]
    FlashImage(image::ImageSpec),
}

#[cfg(feature = "std")]
impl Spec {
    /// Parses a `--store` value (`file:PATH`, `mtd:/dev/mtdN`,
    /// `flash-image:PATH[:erase=N,size=N,write=N]`).
    pub fn parse(spec: &str) -> Result<Spec, Error> {
        match spec.split_once(':') {
            Some(("file", path)) if !path.is_empty() => Ok(Spec::File(path.into())),
            Some(("file", _)) => Err(Error::config(
                "--store file: needs a path, e.g. file:/var/lib/sfpair/token",
            )),
            #[cfg(feature = "flash")]
            Some(("mtd", path)) if !path.is_empty() => Ok(Spec::Mtd(path.into())),
            #[cfg(feature = "flash")]
            Some(("flash-image", rest)) => Ok(Spec::FlashImage(image::ImageSpec::parse(rest)?)),
            _ => Err(Error::config(alloc::format!(
                "unknown store '{spec}': use file:PATH{}",
                if cfg!(feature = "flash") {
                    ", mtd:/dev/mtdN or flash-image:PATH[:erase=N,size=N,write=N]"
                } else {
                    " (this build has no flash store)"
                }
            ))),
        }
    }
}

/// The `--store` form (`file:/var/lib/sfpair/token`), for messages.
#[cfg(feature = "std")]
impl core::fmt::Display for Spec {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Spec::File(path) => write!(f, "file:{}", path.display()),
            #[cfg(feature = "flash")]
            Spec::Mtd(path) => write!(f, "mtd:{}", path.display()),
            #[cfg(feature = "flash")]
            Spec::FlashImage(image) => write!(f, "flash-image:{}", image.path.display()),
        }
    }
}

/// Opens the store `spec` names.
#[cfg(feature = "std")]
pub fn open(spec: &Spec) -> Result<Box<dyn TokenStore>, Error> {
    match spec {
        Spec::File(path) => Ok(Box::new(file::FileStore::new(path))),
        #[cfg(feature = "flash")]
        Spec::Mtd(path) => flash_store(Box::new(mtd::MtdFlash::open(&path.to_string_lossy())?)),
        #[cfg(feature = "flash")]
        Spec::FlashImage(image) => flash_store(Box::new(image::ImageFlash::open(image.clone())?)),
    }
}

/// The slot store over a boxed medium: one copy of its code for every backend.
#[cfg(all(feature = "std", feature = "flash"))]
fn flash_store(medium: Box<dyn flash::Flash + Send>) -> Result<Box<dyn TokenStore>, Error> {
    Ok(Box::new(flash::SlotStore::new(medium)?))
}
