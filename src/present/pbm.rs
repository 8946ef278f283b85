//! A frame as a binary PBM (P4), pure: `frame_file.rs` writes it.
//!
//! The picture is the panel as a person sees it: lit pixels white, unlit black (PBM's 1 = black),
//! so the QR is dark modules on a white quiet zone inside a black surround, which any decoder
//! reads.

use super::canvas::Canvas;

/// The frame as a binary PBM: header, then rows of packed bits, 1 = black = unlit.
pub fn encode(frame: &Canvas) -> Vec<u8> {
    let mut out = format!("P4\n{} {}\n", frame.width(), frame.height()).into_bytes();
    for y in 0..frame.height() {
        let row = frame.row(y);
        let last = row.len() - 1;
        let pad = (8 - frame.width() % 8) % 8;
        for (i, byte) in row.iter().enumerate() {
            let mut b = !byte;
            if i == last {
                b &= 0xFF << pad; // padding bits are 0 by convention
            }
            out.push(b);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lit_is_white_and_rows_are_padded() {
        let mut c = Canvas::new(10, 2);
        c.set(0, 0, true);
        c.set(9, 1, true);
        let pbm = encode(&c);
        let header = b"P4\n10 2\n";
        assert_eq!(&pbm[..header.len()], header);
        assert_eq!(&pbm[header.len()..], [0x7F, 0xC0, 0xFF, 0x80]);
    }
}
