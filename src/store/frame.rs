//! The framing every sfpair file and flash record shares: a 16-byte header, a payload, a CRC-32.
//!
//! ```text
//! offset size field
//! 0      4    magic (which kind of frame: "SFPR" token record, "SFPO" outbox log, ...)
//! 4      1    format version (never 0)
//! 5      1    flags (the owner's; the token record writes 0)
//! 6      2    reserved (0xFFFF, the erased-flash value)
//! 8      4    sequence number (the owner's meaning)
//! 12     4    payload length n (at most the owner's bound)
//! 16     n    payload
//! 16+n   4    CRC-32/IEEE over bytes 0..16+n
//! ```
//!
//! One home for what makes bytes a frame: the header layout, the length bound, the checksum,
//! and the order of the checks, so that a torn write (`Truncated`, `BadChecksum`) is never
//! mistaken for a newer sfpair's frame (`NewerVersion`, only reported when the checksum
//! matches). What the payload means is the owner's business (`record.rs`, `outbox/`).
//! Pure and no_std; it never panics on any input.

use alloc::vec::Vec;

use super::crc32::crc32;

/// Bytes before the payload: magic, version, flags, sequence number, length.
pub const HEADER_LEN: usize = 16;
/// Bytes of the CRC-32 after the payload.
pub const CRC_LEN: usize = 4;

/// Why bytes are not a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// All 0xFF (erased flash) or all zero: nothing was ever written here.
    Blank,
    /// The first four bytes are not the owner's magic.
    BadMagic,
    /// Version byte 0, which no writer uses.
    BadVersion,
    /// Written by a newer sfpair (the checksum matches): upgrading sfpair reads it.
    NewerVersion(u8),
    /// Fewer bytes than the header or the payload length says.
    Truncated,
    /// The length field is larger than the owner's bound.
    TooLong(u32),
    /// The CRC-32 does not match: a write was cut, or the medium changed under it.
    BadChecksum,
}

impl FrameError {
    /// In a few words, for messages about a damaged file.
    pub fn describe(self) -> &'static str {
        match self {
            FrameError::Blank => "blank bytes",
            FrameError::BadMagic => "not a frame of this file",
            FrameError::BadVersion => "a bad version byte",
            FrameError::NewerVersion(_) => "a frame of a newer format",
            FrameError::Truncated => "a frame cut short",
            FrameError::TooLong(_) => "an impossible length",
            FrameError::BadChecksum => "a checksum that does not match",
        }
    }
}

/// A decoded frame header; the payload is `bytes[HEADER_LEN..HEADER_LEN + len]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The format version.
    pub version: u8,
    /// The owner's flag bits.
    pub flags: u8,
    /// The sequence number: of two valid frames, the higher is the newer.
    pub seq: u32,
    /// The payload's length in bytes.
    pub len: usize,
}

impl Header {
    /// The whole frame's length: header, payload and CRC.
    pub fn frame_len(&self) -> usize {
        HEADER_LEN + self.len + CRC_LEN
    }
}

/// The header of a frame whose payload is `len` bytes: what [`encode`] writes first (a sealed
/// record authenticates it before the payload exists).
pub fn header(magic: &[u8; 4], version: u8, flags: u8, seq: u32, len: usize) -> [u8; HEADER_LEN] {
    let mut h = [0xFF; HEADER_LEN];
    h[..4].copy_from_slice(magic);
    h[4] = version;
    h[5] = flags;
    h[8..12].copy_from_slice(&seq.to_le_bytes());
    // The owner bounds the payload far below 4 GiB (its `max_payload`).
    h[12..].copy_from_slice(&(len as u32).to_le_bytes());
    h
}

/// Appends one frame to `out`.
pub fn encode(
    out: &mut Vec<u8>,
    magic: &[u8; 4],
    version: u8,
    flags: u8,
    seq: u32,
    payload: &[u8],
) {
    let start = out.len();
    out.reserve(HEADER_LEN + payload.len() + CRC_LEN);
    out.extend_from_slice(&header(magic, version, flags, seq, payload.len()));
    out.extend_from_slice(payload);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// Checks the fixed header alone (magic, version byte, length bound): enough to know how many
/// bytes the frame claims before reading them.
pub fn check_header(
    header: &[u8; HEADER_LEN],
    magic: &[u8; 4],
    max_payload: usize,
) -> Result<Header, FrameError> {
    if header.iter().all(|&b| b == 0xFF) || header.iter().all(|&b| b == 0) {
        return Err(FrameError::Blank);
    }
    if header[..4] != magic[..] {
        return Err(FrameError::BadMagic);
    }
    if header[4] == 0 {
        return Err(FrameError::BadVersion);
    }
    let len = u32::from_le_bytes([header[12], header[13], header[14], header[15]]);
    if len as usize > max_payload {
        return Err(FrameError::TooLong(len));
    }
    Ok(Header {
        version: header[4],
        flags: header[5],
        seq: u32::from_le_bytes([header[8], header[9], header[10], header[11]]),
        len: len as usize,
    })
}

/// Decodes the frame at the start of `bytes` (trailing bytes are ignored): its header, once the
/// checksum matches and the version is at most `newest`.
pub fn decode(
    bytes: &[u8],
    magic: &[u8; 4],
    max_payload: usize,
    newest: u8,
) -> Result<Header, FrameError> {
    let header: &[u8; HEADER_LEN] = bytes
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(if bytes.iter().all(|&b| b == 0xFF) && !bytes.is_empty() {
            FrameError::Blank
        } else {
            FrameError::Truncated
        })?;
    let h = check_header(header, magic, max_payload)?;
    let end = HEADER_LEN + h.len;
    let stored = bytes.get(end..end + CRC_LEN).ok_or(FrameError::Truncated)?;
    let stored = u32::from_le_bytes([stored[0], stored[1], stored[2], stored[3]]);
    if crc32(&bytes[..end]) != stored {
        return Err(FrameError::BadChecksum);
    }
    if h.version > newest {
        return Err(FrameError::NewerVersion(h.version));
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_round_trips_and_every_damage_is_named() {
        let mut out = Vec::new();
        encode(&mut out, b"SFPO", 1, 2, 7, b"hello");
        let h = decode(&out, b"SFPO", 64, 1).unwrap();
        assert_eq!((h.version, h.flags, h.seq, h.len), (1, 2, 7, 5));
        assert_eq!(&out[HEADER_LEN..HEADER_LEN + h.len], b"hello");
        assert_eq!(h.frame_len(), out.len());
        assert_eq!(decode(&out, b"SFPR", 64, 1), Err(FrameError::BadMagic));
        assert_eq!(decode(&out, b"SFPO", 4, 1), Err(FrameError::TooLong(5)));
        for len in 0..out.len() {
            assert_eq!(
                decode(&out[..len], b"SFPO", 64, 1),
                Err(FrameError::Truncated),
                "{len}"
            );
        }
        for bit in 0..out.len() * 8 {
            let mut bad = out.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(decode(&bad, b"SFPO", 64, 1).is_err(), "bit {bit}");
        }
        // A newer version is only believed with a matching checksum.
        let mut newer = Vec::new();
        encode(&mut newer, b"SFPO", 2, 0, 0, b"x");
        assert_eq!(
            decode(&newer, b"SFPO", 64, 1),
            Err(FrameError::NewerVersion(2))
        );
        newer[4] = 3;
        assert_eq!(decode(&newer, b"SFPO", 64, 1), Err(FrameError::BadChecksum));
        assert_eq!(decode(&[0; 40], b"SFPO", 64, 1), Err(FrameError::Blank));
        assert_eq!(decode(&[0xFF; 4], b"SFPO", 64, 1), Err(FrameError::Blank));
    }
}
