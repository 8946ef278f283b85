//! A sealed record (format version 3) and the seam the stores seal and open records through.
//!
//! The payload of a sealed record, fields as tag (u8), length (u16, little-endian), value, in
//! exactly this order:
//!
//! ```text
//! tag name    value
//! 1   sealer  which sealer holds the data key: `systemd-creds`, `tpm2` or `pkcs11:URI` (UTF-8)
//! 2   key     the 256-bit data key as that sealer sealed it (opaque here)
//! 3   inner   the format version of the plain payload inside (1 or 2), one byte
//! 4   nonce   12 bytes, new at every save
//! 5   sealed  the plain payload (`record.rs`) under AES-256-GCM with the data key, and its tag
//! ```
//!
//! The associated data is the frame's 16-byte header (so the sequence number and length are
//! bound: a sealed record cannot be replayed into another slot's place) and every payload byte
//! before field 5's value (so the sealer's name and the sealed key cannot be swapped).
//!
//! Reading names the sealer without opening anything; opening is an [`Envelope`]'s job.
//! Backends (`file.rs`, `flash.rs`) write through an `Envelope` and never see a data key.
//! [`Plain`] is the envelope of a build without sealing: it writes plain records and says why
//! it cannot open a sealed one. `seal::envelope` is the one that seals. Pure and no_std; no
//! crypto here, only the layout.

use alloc::string::String;
use alloc::vec::Vec;

use zeroize::Zeroizing;

use super::frame;
use super::record::{self, DecodeError, Decoded, MAGIC, MAX_PAYLOAD, Record, VERSION_SEALED};
use crate::error::Error;

const TAG_SEALER: u8 = 1;
const TAG_KEY: u8 = 2;
const TAG_INNER: u8 = 3;
const TAG_NONCE: u8 = 4;
const TAG_SEALED: u8 = 5;

/// Bytes of the AES-GCM nonce, random for every write.
pub const NONCE_LEN: usize = 12;
/// The AES-GCM tag after the ciphertext.
pub const TAG_LEN: usize = 16;

/// A sealed payload, parsed (nothing opened).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sealed<'a> {
    /// The sealer's name (`tpm2`, `pkcs11:...`), so a reader knows which one opens it.
    pub sealer: &'a str,
    /// The data key as the sealer sealed it.
    pub key: &'a [u8],
    /// The format version of the plain payload inside.
    pub inner: u8,
    /// The AES-GCM nonce.
    pub nonce: [u8; NONCE_LEN],
    /// The ciphertext and its tag.
    pub sealed: &'a [u8],
    /// How many payload bytes come before `sealed` (they are associated data).
    pub clear_len: usize,
}

impl<'a> Sealed<'a> {
    /// Parses a version-3 payload: each field once, in order, nothing after the last.
    pub fn parse(payload: &'a [u8]) -> Result<Sealed<'a>, DecodeError> {
        let mut rest = payload;
        let mut field = |tag: u8, name: &'static str| -> Result<&'a [u8], DecodeError> {
            let [t, l0, l1, tail @ ..] = rest else {
                return Err(DecodeError::Truncated);
            };
            if *t != tag {
                return Err(DecodeError::MissingField(name));
            }
            let len = u16::from_le_bytes([*l0, *l1]) as usize;
            let value = tail.get(..len).ok_or(DecodeError::Truncated)?;
            rest = &tail[len..];
            Ok(value)
        };
        let sealer = core::str::from_utf8(field(TAG_SEALER, "sealer")?)
            .ok()
            .filter(|s| !s.is_empty())
            .ok_or(DecodeError::BadField("sealer"))?;
        let key = field(TAG_KEY, "sealed key")?;
        let inner = match field(TAG_INNER, "inner version")? {
            [v @ (record::VERSION_DEVICE | record::VERSION_HEADLESS)] => *v,
            _ => return Err(DecodeError::BadField("inner version")),
        };
        let nonce = field(TAG_NONCE, "nonce")?
            .try_into()
            .map_err(|_| DecodeError::BadField("nonce"))?;
        let sealed = field(TAG_SEALED, "sealed")?;
        if !rest.is_empty() || sealed.len() < TAG_LEN {
            return Err(DecodeError::BadField("sealed"));
        }
        Ok(Sealed {
            sealer,
            key,
            inner,
            nonce,
            sealed,
            clear_len: payload.len() - sealed.len(),
        })
    }
}

fn put(out: &mut Vec<u8>, tag: u8, value: &[u8]) {
    out.push(tag);
    out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    out.extend_from_slice(value);
}

/// The start of a sealed record's payload (fields 1 to 4, and field 5's tag and length for
/// `plain_len` plain bytes), and the associated data (the frame's header and that start).
/// The caller seals the plain payload with the associated data, appends the ciphertext and
/// tag to the payload, and frames it with [`frame_bytes`].
pub fn begin(
    seq: u32,
    sealer: &str,
    key: &[u8],
    inner: u8,
    nonce: &[u8; NONCE_LEN],
    plain_len: usize,
) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), record::TooLarge> {
    let sealed_len = plain_len + TAG_LEN;
    // Room for the plain payload and its tag too: it is sealed in place and must not be
    // moved (a reallocation would leave an unwiped copy of it behind).
    let mut payload = Zeroizing::new(Vec::with_capacity(
        32 + sealer.len() + key.len() + sealed_len,
    ));
    put(&mut payload, TAG_SEALER, sealer.as_bytes());
    put(&mut payload, TAG_KEY, key);
    put(&mut payload, TAG_INNER, &[inner]);
    put(&mut payload, TAG_NONCE, nonce);
    payload.push(TAG_SEALED);
    payload.extend_from_slice(&(sealed_len as u16).to_le_bytes());
    let total = payload.len() + sealed_len;
    if total > MAX_PAYLOAD {
        return Err(record::TooLarge(total));
    }
    let mut aad = Vec::with_capacity(frame::HEADER_LEN + payload.len());
    aad.extend_from_slice(&frame::header(&MAGIC, VERSION_SEALED, 0, seq, total));
    aad.extend_from_slice(&payload);
    Ok((payload, aad))
}

/// The whole sealed record (header, payload, CRC) for a payload from [`begin`] with its
/// ciphertext appended.
pub fn frame_bytes(seq: u32, payload: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(
        frame::HEADER_LEN + payload.len() + frame::CRC_LEN,
    ));
    frame::encode(&mut out, &MAGIC, VERSION_SEALED, 0, seq, payload);
    out
}

/// The associated data of a sealed frame as stored: its header and the payload's clear start.
pub fn aad_of<'b>(frame_bytes: &'b [u8], sealed: &Sealed<'_>) -> &'b [u8] {
    &frame_bytes[..frame::HEADER_LEN + sealed.clear_len]
}

/// How records become the bytes a backend stores, and sealed ones become records again.
pub trait Envelope: Send {
    /// The bytes to store for `record` with sequence number `seq`. `fresh`: a new pairing,
    /// stored in the form the settings ask for (sealed with a new data key, or plain);
    /// otherwise a refresh of what is stored, kept in its form (`stored`: the sealer of the
    /// record stored now, `None` when it is plain or there is none).
    fn encode(
        &mut self,
        record: &Record,
        seq: u32,
        fresh: bool,
        stored: Option<&str>,
    ) -> Result<Zeroizing<Vec<u8>>, Error>;

    /// Whether [`encode`](Envelope::encode) would store a record in another form than
    /// `stored` (plain to sealed, sealed to plain or to another sealer): then even an
    /// unchanged record is written (`sfpair seal`, `sfpair unseal`).
    fn reforms(&self, fresh: bool, stored: Option<&str>) -> bool;

    /// Opens a sealed record (`record::Frame::Sealed`): `Unopened` with the reason when its
    /// seal cannot be opened here.
    fn open(&mut self, frame: &[u8]) -> Result<Decoded, DecodeError>;

    /// Called before a new pairing starts (`TokenStore::check_writable`): a sealer that
    /// cannot seal is found now, before anyone approves a code for a pairing that could not be
    /// stored. `stored`: as for `encode`.
    fn prepare(&mut self, _stored: Option<&str>) -> Result<(), Error> {
        Ok(())
    }
}

/// No sealing: records are written plain, and a sealed one is named but not opened.
#[derive(Clone, Copy, Debug, Default)]
pub struct Plain;

impl Envelope for Plain {
    fn encode(
        &mut self,
        record: &Record,
        seq: u32,
        _fresh: bool,
        _stored: Option<&str>,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        record::to_bytes(record, seq).map_err(|e| Error::storage(alloc::format!("{e}")))
    }

    fn reforms(&self, fresh: bool, stored: Option<&str>) -> bool {
        fresh && stored.is_some()
    }

    fn open(&mut self, frame: &[u8]) -> Result<Decoded, DecodeError> {
        let sealer = match record::decode_frame(frame)? {
            record::Frame::Sealed { sealer, .. } => sealer,
            record::Frame::Plain(decoded) => return Ok(decoded),
        };
        Err(DecodeError::Unopened(not_built(&sealer)))
    }
}

/// Why a build without sealing cannot open a record sealed with `sealer`.
pub fn not_built(sealer: &str) -> String {
    alloc::format!(
        "it is sealed with {sealer}, and this sfpair is built without sealing (the `seal` \
         feature): use a build with it (the default build has it)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed_payload() -> Vec<u8> {
        let (mut payload, aad) = begin(9, "tpm2", b"blob", 1, &[7; NONCE_LEN], 5).unwrap();
        assert_eq!(&aad[frame::HEADER_LEN..], &payload[..]);
        payload.extend_from_slice(&[0xAB; 5 + TAG_LEN]);
        payload.to_vec()
    }

    #[test]
    fn the_layout_parses_back_and_the_clear_part_is_the_associated_data() {
        let payload = sealed_payload();
        let parsed = Sealed::parse(&payload).unwrap();
        assert_eq!(
            (parsed.sealer, parsed.key, parsed.inner, parsed.nonce),
            ("tpm2", &b"blob"[..], 1, [7; NONCE_LEN])
        );
        assert_eq!(parsed.sealed, &[0xAB; 5 + TAG_LEN][..]);
        let frame = frame_bytes(9, &payload);
        let (_, aad) = begin(9, "tpm2", b"blob", 1, &[7; NONCE_LEN], 5).unwrap();
        assert_eq!(aad_of(&frame, &parsed), &aad[..]);
        match record::decode_frame(&frame).unwrap() {
            record::Frame::Sealed { seq, sealer } => assert_eq!((seq, &sealer[..]), (9, "tpm2")),
            other => panic!("{other:?}"),
        }
        // A plain reader is told why, and never gets a half record.
        let err = record::decode(&frame).unwrap_err();
        assert!(matches!(err, DecodeError::Unopened(_)), "{err:?}");
        let err = Plain.open(&frame).unwrap_err();
        assert!(err.to_string().contains("`seal` feature"), "{err}");
    }

    #[test]
    fn every_truncation_and_reordering_of_the_fields_is_refused() {
        let payload = sealed_payload();
        for len in 0..payload.len() {
            assert!(Sealed::parse(&payload[..len]).is_err(), "{len}");
        }
        let mut extra = payload.clone();
        extra.push(0);
        assert!(Sealed::parse(&extra).is_err());
        let mut swapped = payload.clone();
        swapped[0] = TAG_KEY;
        assert_eq!(
            Sealed::parse(&swapped).unwrap_err(),
            DecodeError::MissingField("sealer")
        );
        let (mut bad_inner, _) = begin(1, "tpm2", b"k", 3, &[0; NONCE_LEN], 1).unwrap();
        bad_inner.extend_from_slice(&[0; 1 + TAG_LEN]);
        assert_eq!(
            Sealed::parse(&bad_inner).unwrap_err(),
            DecodeError::BadField("inner version")
        );
    }

    #[test]
    fn a_sealed_record_that_would_not_fit_is_refused() {
        assert!(begin(1, "tpm2", &[0; 100], 1, &[0; NONCE_LEN], MAX_PAYLOAD).is_err());
    }
}
