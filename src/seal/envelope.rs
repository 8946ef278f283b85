//! The envelope: a record encrypted with AES-256-GCM (ring) under a random 256-bit data key,
//! the data key sealed by a [`Sealer`](crate::seal::Sealer) and stored beside it (`store/sealed.rs` has the
//! layout and the associated data).
//!
//! The data key of the record last opened or sealed is held in memory, wiped on drop, for the
//! life of the process: a refresh that stores a rotated token reuses it and never calls the
//! sealer (a TPM or a token is slow, and may be busy); a new pairing gets a new key, sealed as
//! `--seal` says. A record is opened with the sealer its own record names. A seal that cannot
//! be opened is `Unopened` with the sealer's reason: the store keeps the record as it is.
//!
//! It must not log, return or store a data key or a plain payload; every buffer that holds one
//! is wiped, and is sized up front so it is never moved.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use super::{DataKey, KEY_LEN, Maker, Settings};
use crate::error::Error;
use crate::store::frame;
use crate::store::record::{self, DecodeError, Decoded, MAGIC, MAX_PAYLOAD, Record, VERSION};
use crate::store::sealed::{self, Envelope, NONCE_LEN, Sealed};

/// A data key with the sealer that sealed it and its sealed form.
struct Held {
    key: DataKey,
    sealer: String,
    sealed: Vec<u8>,
}

/// Records sealed and opened as the settings say.
pub struct Sealing {
    settings: Settings,
    make: Maker,
    /// The key of the record last opened or sealed: a refresh keeps it.
    key: Option<Held>,
    /// A new pairing's key, sealed by [`Envelope::prepare`] before the pairing started.
    prepared: Option<Held>,
    random: SystemRandom,
}

impl Sealing {
    /// `make` builds the sealer a record names (`seal::maker`, or a test's).
    pub fn new(settings: Settings, make: Maker) -> Sealing {
        Sealing {
            settings,
            make,
            key: None,
            prepared: None,
            random: SystemRandom::new(),
        }
    }

    /// The sealer a save seals with (`None`: plain): a refresh keeps what is stored; a new
    /// pairing takes `--seal`, or, without it, what it replaces.
    fn target(&self, fresh: bool, stored: Option<&str>) -> Option<String> {
        match (&self.settings.seal, fresh) {
            (Some(choice), true) => choice.name(),
            _ => stored.map(String::from),
        }
    }

    fn random(&self, out: &mut [u8]) -> Result<(), Error> {
        self.random
            .fill(out)
            .map_err(|_| Error::storage("the system's random source failed; nothing was stored"))
    }

    /// A new data key, sealed by `sealer`.
    fn new_key(&self, sealer: &str) -> Result<Held, Error> {
        let mut key: DataKey = Zeroizing::new([0; KEY_LEN]);
        self.random(&mut key[..])?;
        let made = (self.make)(sealer, &self.settings.ways).map_err(Error::config)?;
        let sealed = made.seal(&key)?;
        Ok(Held {
            key,
            sealer: sealer.into(),
            sealed,
        })
    }

    /// The key `encode` seals with for `sealer`: the prepared one for a new pairing, the one
    /// in use for a refresh, else a new one.
    fn key_for(&mut self, sealer: &str, fresh: bool) -> Result<Held, Error> {
        let reuse = if fresh {
            self.prepared.take()
        } else {
            self.key.take()
        };
        match reuse {
            Some(held) if held.sealer == sealer => Ok(held),
            _ => self.new_key(sealer),
        }
    }

    fn seal(&mut self, record: &Record, seq: u32, held: &Held) -> Result<Vec<u8>, Error> {
        let (inner, plain) = record::payload(record).map_err(too_large)?;
        let mut nonce = [0u8; NONCE_LEN];
        self.random(&mut nonce)?;
        let (mut payload, aad) =
            sealed::begin(seq, &held.sealer, &held.sealed, inner, &nonce, plain.len())
                .map_err(too_large)?;
        let start = payload.len();
        payload.extend_from_slice(&plain);
        let tag = cipher(&held.key)
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&aad[..]),
                &mut payload[start..],
            )
            .map_err(|_| Error::storage("AES-GCM could not seal the record"))?;
        payload.extend_from_slice(tag.as_ref());
        Ok(sealed::frame_bytes(seq, &payload).to_vec())
    }
}

fn too_large(e: record::TooLarge) -> Error {
    Error::storage(format!("cannot store the pairing: {e}"))
}

fn cipher(key: &DataKey) -> LessSafeKey {
    // A 32-byte key is always a valid AES-256 key.
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key[..]).expect("a 32-byte AES-256 key"))
}

impl Envelope for Sealing {
    fn encode(
        &mut self,
        record: &Record,
        seq: u32,
        fresh: bool,
        stored: Option<&str>,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let Some(sealer) = self.target(fresh, stored) else {
            return record::to_bytes(record, seq).map_err(too_large);
        };
        let held = self.key_for(&sealer, fresh)?;
        let sealed = self.seal(record, seq, &held);
        // Kept whether or not this save succeeds: it is the key the record will be under.
        self.key = Some(held);
        sealed.map(Zeroizing::new)
    }

    fn reforms(&self, fresh: bool, stored: Option<&str>) -> bool {
        self.target(fresh, stored).as_deref() != stored
    }

    fn open(&mut self, bytes: &[u8]) -> Result<Decoded, DecodeError> {
        let h = frame::decode(bytes, &MAGIC, MAX_PAYLOAD, VERSION)?;
        let payload = &bytes[frame::HEADER_LEN..frame::HEADER_LEN + h.len];
        let sealed = Sealed::parse(payload)?;
        let cached = self
            .key
            .take()
            .filter(|k| k.sealer == sealed.sealer && k.sealed == sealed.key);
        let held = match cached {
            Some(held) => held,
            None => {
                let unopened = |why: String| {
                    DecodeError::Unopened(format!("sealed with {}: {why}", sealed.sealer))
                };
                let made = (self.make)(sealed.sealer, &self.settings.ways).map_err(unopened)?;
                let key = made
                    .unseal(sealed.key)
                    .map_err(|e| unopened(e.message().to_string()))?;
                Held {
                    key,
                    sealer: sealed.sealer.into(),
                    sealed: sealed.key.to_vec(),
                }
            }
        };
        let mut plain = Zeroizing::new(Vec::with_capacity(sealed.sealed.len()));
        plain.extend_from_slice(sealed.sealed);
        let opened = cipher(&held.key).open_in_place(
            Nonce::assume_unique_for_key(sealed.nonce),
            Aad::from(sealed::aad_of(bytes, &sealed)),
            &mut plain,
        );
        let Ok(plain) = opened else {
            return Err(DecodeError::Unopened(format!(
                "sealed with {}: its data key unseals but does not decrypt the record (altered \
                 after it was written, or the key given by the service's credential is another \
                 one)",
                sealed.sealer
            )));
        };
        let record = record::from_payload(plain, sealed.inner)?;
        let sealer = Some(held.sealer.clone());
        self.key = Some(held);
        Ok(Decoded {
            record,
            seq: h.seq,
            sealer,
        })
    }

    fn prepare(&mut self, stored: Option<&str>) -> Result<(), Error> {
        let Some(sealer) = self.target(true, stored) else {
            return Ok(());
        };
        if self.prepared.as_ref().is_none_or(|p| p.sealer != sealer) {
            self.prepared = Some(self.new_key(&sealer)?);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
