//! Where the pairing lives between runs: the `TokenStore` seam and its backends.
//!
//! Every backend stores one [`Record`] with the shared codec in `record.rs`. A backend never
//! replaces a good record with a bad one: a write either completes (and reads back) or leaves
//! the previous record as it was. A record that does not decode is reported as
//! [`Loaded::Corrupt`] with the reason, never as a crash, and is only replaced by a fresh
//! successful pairing.

pub mod crc32;
pub mod frame;
pub mod record;
#[cfg(test)]
mod record_cases;
pub mod sealed;

#[cfg(feature = "std")]
pub mod file;
#[cfg(feature = "flash")]
pub mod flash;
#[cfg(all(feature = "std", feature = "flash"))]
pub mod image;
#[cfg(all(feature = "std", feature = "flash"))]
pub mod mtd;
#[cfg(feature = "embedded-storage")]
pub mod nor_flash;
#[cfg(all(test, feature = "std"))]
mod power;
#[cfg(feature = "std")]
mod replace;

#[cfg(feature = "std")]
use alloc::boxed::Box;
use alloc::string::String;

pub use self::record::Record;
use crate::error::Error;

/// What a store holds. Grows with the stores (a sealed pairing added `Unopened`): match it
/// with a wildcard.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Loaded {
    /// Nothing stored: never paired, or forgotten.
    Empty,
    /// A pairing, read and checked.
    Paired(Record),
    /// Something is stored but does not decode; the reason says why. Reads as "not paired".
    Corrupt(String),
    /// A sealed pairing whose seal cannot be opened here (a store copied from another board, a
    /// cleared TPM, a missing token); the reason says which and what to do. Kept as it is until
    /// a new pairing replaces it: putting the seal back opens it again. See [`unopened`].
    Unopened(String),
}

/// The error for a stored pairing whose seal cannot be opened (exit 6, "re-pair needed"): what
/// every command, the health answer and `doctor` say. `store`: the store's description.
pub fn unopened(store: &str, reason: &str) -> Error {
    Error::new(
        crate::error::ErrorKind::RepairNeeded,
        alloc::format!(
            "{UNOPENED} in {store} cannot be opened here: {reason}. It is kept as it is, so \
             putting the seal back opens it again; or pair again with `sfpair pair --force` \
             (docs/sealing.md)"
        ),
    )
}

const UNOPENED: &str = "the sealed pairing";

/// Whether `e` is [`unopened`]'s error.
pub fn is_unopened(e: &Error) -> bool {
    e.message().starts_with(UNOPENED)
}

/// What [`TokenStore::prepare_save`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SaveCheck {
    /// A save can succeed now (with the space reserved, where the backend can).
    Ready,
    /// The medium cannot be written at all; the reason, for messages.
    ReadOnly(String),
}

/// A place that keeps one pairing record.
pub trait TokenStore: Send {
    /// Reads what is stored: a pairing, nothing, or why what is there cannot be used.
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
    /// Releases the lock [`TokenStore::lock`] took (a no-op for stores without one).
    fn unlock(&mut self) {}
    /// Takes, without waiting, the lock a pairing holds from its first request to its save, so
    /// two pairings of one store never run at once (the second would silently replace the
    /// approval of the first). `Ok(false)`: another process is pairing now. Held until
    /// [`unlock_pairing`](TokenStore::unlock_pairing); a store without one always says `true`.
    fn try_lock_pairing(&mut self) -> Result<bool, Error> {
        Ok(true)
    }
    /// Releases the lock [`TokenStore::try_lock_pairing`] took.
    fn unlock_pairing(&mut self) {}
    /// Checks, before a request whose reply may have to be stored (a refresh that may rotate
    /// the token), that a save could succeed now. `Err`: it could not for a reason that may
    /// pass or that a rule imposes (a full disk, a newer record): the request is not sent.
    /// [`SaveCheck::ReadOnly`]: the medium cannot be written at all (read-only mount,
    /// partition or permission), which is fine until a server rotates. Under the lock, a
    /// backend may reserve the space for that save.
    fn prepare_save(&mut self) -> Result<SaveCheck, Error> {
        self.check_writable().map(|()| SaveCheck::Ready)
    }
    /// Saves a refresh token the server has just rotated. Like `save`, but a store that can
    /// (see [`Checked`]) keeps the record in memory when the write fails, so it is not lost;
    /// and a sealed store keeps the data key of the record it replaces (`save` is a new
    /// pairing: a new data key, sealed as the settings say; `sealed.rs`).
    fn save_rotated(&mut self, record: &Record) -> Result<(), Error> {
        self.save(record)
    }
    /// Where it is, for messages (`file:/var/lib/sfpair/token`).
    fn describe(&self) -> String;
    /// The sealer of the stored record (`tpm2`, `pkcs11:…`): `None` when it is plain or there
    /// is none. Nothing is opened.
    fn sealer(&mut self) -> Result<Option<String>, Error> {
        Ok(None)
    }
}

/// The store rules that are the same for every backend, applied once around any of them
/// ([`open`] returns every backend inside one):
/// - a record written by a newer sfpair is never overwritten (`upgrade sfpair`, exit 8);
/// - a rotated refresh token that could not be stored ([`TokenStore::save_rotated`]) is kept
///   in memory, handed out by `load` in place of the older stored one, and written again at
///   every later `load` until a save succeeds: the process keeps working with the live token,
///   and a disk that has room again gets it back by itself. Until then the medium holds the
///   previous token (which a server that rotates may no longer accept).
///
/// Not generic: one copy of this code for every backend (bytes are a budget on armv7).
#[cfg(feature = "std")]
pub struct Checked {
    inner: Box<dyn TokenStore>,
    pending: Option<Record>,
}

#[cfg(feature = "std")]
impl Checked {
    /// Wraps `inner`, checking its medium before the first request that may have to be stored.
    pub fn new(inner: impl TokenStore + 'static) -> Self {
        Checked {
            inner: Box::new(inner),
            pending: None,
        }
    }

    fn refuse_newer(&mut self) -> Result<(), Error> {
        match self.inner.stored_format()? {
            Some(v) => Err(Error::storage(alloc::format!(
                "{} holds a pairing written by a newer sfpair (record format {v}; this sfpair \
                 writes {}). It is not overwritten: upgrade sfpair, or erase it with `sfpair \
                 forget` and pair again",
                self.inner.describe(),
                record::VERSION
            ))),
            None => Ok(()),
        }
    }

    fn save_checked(&mut self, record: &Record) -> Result<(), Error> {
        self.refuse_newer()?;
        self.inner.save(record)
    }
}

#[cfg(feature = "std")]
impl TokenStore for Checked {
    fn load(&mut self) -> Result<Loaded, Error> {
        if let Some(pending) = self.pending.take() {
            match self
                .refuse_newer()
                .and_then(|()| self.inner.save_rotated(&pending))
            {
                Ok(()) => {
                    log::warn!("stored the rotated refresh token that could not be stored earlier")
                }
                Err(_) => self.pending = Some(pending.clone()),
            }
            return Ok(Loaded::Paired(pending));
        }
        self.inner.load()
    }
    fn save(&mut self, record: &Record) -> Result<(), Error> {
        self.save_checked(record)?;
        self.pending = None;
        Ok(())
    }
    fn save_rotated(&mut self, record: &Record) -> Result<(), Error> {
        let saved = self
            .refuse_newer()
            .and_then(|()| self.inner.save_rotated(record));
        match saved {
            Ok(()) => self.pending = None,
            Err(_) => self.pending = Some(record.clone()),
        }
        saved
    }
    fn wipe(&mut self) -> Result<(), Error> {
        self.pending = None;
        self.inner.wipe()
    }
    fn check_writable(&mut self) -> Result<(), Error> {
        self.refuse_newer()?;
        self.inner.check_writable()
    }
    fn stored_format(&mut self) -> Result<Option<u8>, Error> {
        self.inner.stored_format()
    }
    fn lock(&mut self) -> Result<(), Error> {
        self.inner.lock()
    }
    fn try_lock_pairing(&mut self) -> Result<bool, Error> {
        self.inner.try_lock_pairing()
    }
    fn unlock_pairing(&mut self) {
        self.inner.unlock_pairing()
    }
    fn unlock(&mut self) {
        self.inner.unlock()
    }
    fn prepare_save(&mut self) -> Result<SaveCheck, Error> {
        self.refuse_newer()?;
        self.inner.prepare_save()
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn sealer(&mut self) -> Result<Option<String>, Error> {
        self.inner.sealer()
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
                "--store {scheme}: needs a path after the colon"
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

/// Opens the store a [`Spec`] names, behind the rules every backend shares ([`Checked`]),
/// writing plain records ([`sealed::Plain`]).
#[cfg(feature = "std")]
pub fn open(spec: &Spec) -> Result<Box<dyn TokenStore>, Error> {
    open_with(spec, Box::new(sealed::Plain))
}

/// [`open`], with records sealed and opened through `envelope` (`seal::open_store`).
#[cfg(feature = "std")]
pub fn open_with(
    spec: &Spec,
    envelope: Box<dyn sealed::Envelope>,
) -> Result<Box<dyn TokenStore>, Error> {
    Ok(match spec {
        Spec::File(path) => Box::new(Checked::new(
            file::FileStore::new(path).with_envelope(envelope),
        )),
        #[cfg(feature = "flash")]
        Spec::Mtd(path) => flash_store(
            Box::new(mtd::MtdFlash::open(&path.to_string_lossy())?),
            envelope,
        )?,
        #[cfg(feature = "flash")]
        Spec::FlashImage(image) => {
            flash_store(Box::new(image::ImageFlash::open(image.clone())?), envelope)?
        }
    })
}

/// The slot store over a boxed medium: one copy of its code for every backend.
#[cfg(all(feature = "std", feature = "flash"))]
fn flash_store(
    medium: Box<dyn flash::Flash + Send>,
    envelope: Box<dyn sealed::Envelope>,
) -> Result<Box<dyn TokenStore>, Error> {
    Ok(Box::new(Checked::new(
        flash::SlotStore::new(medium)?.with_envelope(envelope),
    )))
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
