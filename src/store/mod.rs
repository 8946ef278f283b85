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
    /// old record or the new one. (Opened through [`open`], a save over a newer sfpair's record
    /// is refused first, for every backend: see [`Checked`].)
    fn save(&mut self, record: &Record) -> Result<(), Error>;
    /// Removes the record so the secret is gone from the medium, as far as the medium allows.
    fn wipe(&mut self) -> Result<(), Error>;
    /// Fails, before a pairing starts, when a later `save` would be refused for what the store
    /// holds (foreign data, a file that is not a regular one), so nobody approves a code for a
    /// pairing that cannot be kept.
    fn check_writable(&mut self) -> Result<(), Error> {
        Ok(())
    }
    /// The format version of a record written by a newer sfpair, when the medium holds one
    /// (which this sfpair must not overwrite: [`Checked`] refuses the save).
    fn stored_format(&mut self) -> Result<Option<u8>, Error> {
        Ok(None)
    }
    /// Takes the store's exclusive lock (another process's `lock`, `save` and `wipe` wait)
    /// until [`unlock`](TokenStore::unlock). The agent holds it across load -> request -> save,
    /// so two processes never spend the same refresh token. Locking twice is harmless.
    fn lock(&mut self) -> Result<(), Error> {
        Ok(())
    }
    fn unlock(&mut self) {}
    /// Fails when a save could not succeed now (no space, read-only, no permission), before a
    /// request whose reply must be stored (a refresh that may rotate the token) is sent. Under
    /// the lock, a backend may reserve the space for that save.
    fn prepare_save(&mut self) -> Result<(), Error> {
        self.check_writable()
    }
    /// Where it is, for messages (`file:/var/lib/sfpair/token`).
    fn describe(&self) -> String;
}

/// The store rules that are the same for every backend, applied once around any of them:
/// a record written by a newer sfpair is never overwritten (`upgrade sfpair`, exit 8).
pub struct Checked<S>(pub S);

impl<S: TokenStore> Checked<S> {
    fn refuse_newer(&mut self) -> Result<(), Error> {
        match self.0.stored_format()? {
            Some(v) => Err(Error::storage(alloc::format!(
                "{} holds a pairing written by a newer sfpair (record format {v}; this sfpair \
                 writes {}). It is not overwritten: upgrade sfpair, or erase it with `sfpair \
                 forget` and pair again",
                self.0.describe(),
                record::VERSION
            ))),
            None => Ok(()),
        }
    }
}

impl<S: TokenStore> TokenStore for Checked<S> {
    fn load(&mut self) -> Result<Loaded, Error> {
        self.0.load()
    }
    fn save(&mut self, record: &Record) -> Result<(), Error> {
        self.refuse_newer()?;
        self.0.save(record)
    }
    fn wipe(&mut self) -> Result<(), Error> {
        self.0.wipe()
    }
    fn check_writable(&mut self) -> Result<(), Error> {
        self.refuse_newer()?;
        self.0.check_writable()
    }
    fn stored_format(&mut self) -> Result<Option<u8>, Error> {
        self.0.stored_format()
    }
    fn lock(&mut self) -> Result<(), Error> {
        self.0.lock()
    }
    fn unlock(&mut self) {
        self.0.unlock()
    }
    fn prepare_save(&mut self) -> Result<(), Error> {
        self.refuse_newer()?;
        self.0.prepare_save()
    }
    fn describe(&self) -> String {
        self.0.describe()
    }
}

/// A parsed `--store` value: which backend, where. Parse once ([`Spec::parse`]), open with
/// [`open`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Spec {
    /// `file:PATH`
    #[cfg(feature = "std")]
    File(std::path::PathBuf),
    /// `mtd:/dev/mtdN`
    #[cfg(all(feature = "std", feature = "flash"))]
    Mtd(std::path::PathBuf),
    /// `flash-image:PATH[:erase=N,size=N,write=N]`
    #[cfg(all(feature = "std", feature = "flash"))]
    FlashImage(image::ImageSpec),
}

#[cfg(feature = "std")]
impl Spec {
    /// Parses a `--store` value; an unknown scheme or an empty path is a usage error (exit 2).
    pub fn parse(spec: &str) -> Result<Spec, Error> {
        let empty = |scheme: &str| {
            Error::config(alloc::format!(
                "--store {scheme}: needs a path, e.g. {scheme}:{}",
                match scheme {
                    "mtd" => "/dev/mtd3",
                    _ => "/var/lib/sfpair/token",
                }
            ))
        };
        match spec.split_once(':') {
            Some(("file", "")) => Err(empty("file")),
            Some(("file", path)) => Ok(Spec::File(path.into())),
            #[cfg(feature = "flash")]
            Some(("mtd", "")) => Err(empty("mtd")),
            #[cfg(feature = "flash")]
            Some(("mtd", path)) => Ok(Spec::Mtd(path.into())),
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

/// What [`open`] accepts: a parsed [`Spec`], or (until every caller parses first) the text of
/// a `--store` value.
#[cfg(feature = "std")]
pub trait AsSpec {
    fn to_spec(&self) -> Result<Spec, Error>;
}

#[cfg(feature = "std")]
impl AsSpec for Spec {
    fn to_spec(&self) -> Result<Spec, Error> {
        Ok(self.clone())
    }
}

#[cfg(feature = "std")]
impl AsSpec for str {
    fn to_spec(&self) -> Result<Spec, Error> {
        Spec::parse(self)
    }
}

#[cfg(feature = "std")]
impl AsSpec for String {
    fn to_spec(&self) -> Result<Spec, Error> {
        Spec::parse(self)
    }
}

/// Opens the store a [`Spec`] names, behind the rules every backend shares ([`Checked`]).
#[cfg(feature = "std")]
pub fn open<S: AsSpec + ?Sized>(spec: &S) -> Result<Box<dyn TokenStore>, Error> {
    Ok(match spec.to_spec()? {
        Spec::File(path) => Box::new(Checked(file::FileStore::new(path))),
        #[cfg(feature = "flash")]
        Spec::Mtd(path) => flash_store(Box::new(mtd::MtdFlash::open(&path.to_string_lossy())?))?,
        #[cfg(feature = "flash")]
        Spec::FlashImage(image) => flash_store(Box::new(image::ImageFlash::open(image)?))?,
    })
}

/// The slot store over a boxed medium: one copy of its code for every backend.
#[cfg(all(feature = "std", feature = "flash"))]
fn flash_store(medium: Box<dyn flash::Flash + Send>) -> Result<Box<dyn TokenStore>, Error> {
    Ok(Box::new(Checked(flash::SlotStore::new(medium)?)))
}

#[cfg(all(test, feature = "std", feature = "flash"))]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_once_into_their_backend() {
        assert_eq!(
            Spec::parse("file:/var/lib/sfpair/token").unwrap(),
            Spec::File("/var/lib/sfpair/token".into())
        );
        assert_eq!(
            Spec::parse("mtd:/dev/mtd3").unwrap(),
            Spec::Mtd("/dev/mtd3".into())
        );
        assert!(matches!(
            Spec::parse("flash-image:/tmp/a.img:erase=64K").unwrap(),
            Spec::FlashImage(image::ImageSpec {
                erase_size: 65536,
                ..
            })
        ));
        for bad in ["file:", "mtd:", "flash-image:", "disk:/x", "token"] {
            let err = Spec::parse(bad).unwrap_err();
            assert_eq!(err.kind(), crate::error::ErrorKind::Config, "{bad}");
        }
        assert!(
            Spec::parse("file:")
                .unwrap_err()
                .message()
                .contains("needs a path")
        );
    }
}
