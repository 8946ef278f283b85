//! A frame as a PNG, for host UIs that show pictures but not PBM (a TV's web or Android UI):
//! 1-bit greyscale, lit = white. Pure: `frame_file.rs` writes it.
//!
//! A 1-bit frame is tiny (128×64 is 1 KiB raw), so the image data goes in *stored* (uncompressed)
//! deflate blocks: a valid PNG that any decoder reads, in about forty lines over the CRC-32 the
//! store already has, instead of the `png` crate and its deflate encoder (see BENCHMARKS.md
//! "Displays" for both costs). The price is size: a 128×64 frame is about 1.2 KB
//! instead of a few hundred bytes, and nobody is short of either.

use super::canvas::Canvas;
use crate::store::crc32::crc32;

/// Largest stored deflate block.
const STORED_MAX: usize = 65_535;

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// Adler-32, the zlib stream's checksum (RFC 1950 §8.2).
fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &byte in chunk {
            a += u32::from(byte);
            b += a;
        }
        a %= 65_521;
        b %= 65_521;
    }
    (b << 16) | a
}

/// The frame as a PNG: 1-bit greyscale, 1 = white = lit.
pub fn encode(frame: &Canvas) -> Vec<u8> {
    // Scanlines: filter type 0 (none), then the row's bits; padding bits are zero in a Canvas.
    let mut raw = Vec::with_capacity((frame.row(0).len() + 1) * frame.height() as usize);
    for y in 0..frame.height() {
        raw.push(0);
        raw.extend_from_slice(frame.row(y));
    }
    // zlib stream (RFC 1950): header, stored deflate blocks (RFC 1951 §3.2.4), Adler-32.
    let mut zlib = vec![0x78, 0x01];
    let blocks = raw.chunks(STORED_MAX).count();
    for (i, block) in raw.chunks(STORED_MAX).enumerate() {
        zlib.push(u8::from(i + 1 == blocks)); // BFINAL on the last, BTYPE 00
        let len = block.len() as u16;
        zlib.extend_from_slice(&len.to_le_bytes());
        zlib.extend_from_slice(&(!len).to_le_bytes());
        zlib.extend_from_slice(block);
    }
    zlib.extend_from_slice(&adler32(&raw).to_be_bytes());

    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::with_capacity(13);
    header.extend_from_slice(&frame.width().to_be_bytes());
    header.extend_from_slice(&frame.height().to_be_bytes());
    header.extend_from_slice(&[1, 0, 0, 0, 0]); // 1 bit, greyscale, deflate, no filter, no interlace
    chunk(&mut out, b"IHDR", &header);
    chunk(&mut out, b"IDAT", &zlib);
    chunk(&mut out, b"IEND", &[]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adler32_matches_zlib() {
        // zlib.adler32(b"Wikipedia") = 0x11E60398 (the RFC 1950 example in Wikipedia's article).
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        assert_eq!(adler32(b""), 1);
    }

    #[test]
    fn chunks_are_well_formed_and_the_pixels_are_stored_as_drawn() {
        let mut c = Canvas::new(10, 3);
        c.set(0, 0, true);
        c.set(9, 2, true);
        let png = encode(&c);
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let mut at = 8;
        let mut kinds = Vec::new();
        let mut idat = Vec::new();
        while at < png.len() {
            let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
            let body = &png[at + 4..at + 8 + len];
            let crc = u32::from_be_bytes(png[at + 8 + len..at + 12 + len].try_into().unwrap());
            assert_eq!(crc32(body), crc);
            kinds.push(String::from_utf8(body[..4].to_vec()).unwrap());
            if &body[..4] == b"IDAT" {
                idat = body[4..].to_vec();
            }
            at += 12 + len;
        }
        assert_eq!(kinds, ["IHDR", "IDAT", "IEND"]);
        // One final stored block holding the three scanlines.
        assert_eq!(&idat[..3], [0x78, 0x01, 0x01]);
        let raw = &idat[7..idat.len() - 4];
        assert_eq!(raw, [0, 0x80, 0x00, 0, 0x00, 0x00, 0, 0x00, 0x40]);
        assert_eq!(&idat[idat.len() - 4..], adler32(raw).to_be_bytes());
    }
}
