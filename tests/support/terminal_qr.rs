//! Reads a QR code drawn in Unicode half blocks back into pixels and decodes it with rqrr, as a
//! phone camera would read the terminal. Shared by the unit tests (`present/qr.rs`) and the
//! integration tests (`tests/cli`) through `#[path]`.

/// Decodes the single QR code in `text` (lines of `█ ▀ ▄` and spaces; anything else is dark).
pub fn decode_half_blocks(text: &str) -> String {
    let lines: Vec<Vec<char>> = text.lines().map(|l| l.chars().collect()).collect();
    let width = lines.iter().map(Vec::len).max().expect("some lines");
    let height = lines.len() * 2;
    let (scale, border) = (4, 8);
    let (w, h) = (width * scale + 2 * border, height * scale + 2 * border);
    let pixel = |x: usize, y: usize| -> u8 {
        if x < border || y < border || x >= w - border || y >= h - border {
            return 0; // the dark terminal background around the code
        }
        let (cx, cy) = ((x - border) / scale, (y - border) / scale);
        let ch = lines[cy / 2].get(cx).copied().unwrap_or(' ');
        if matches!((ch, cy % 2), ('█', _) | ('▀', 0) | ('▄', 1)) {
            255
        } else {
            0
        }
    };
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, pixel);
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "expected exactly one QR code");
    grids[0].decode().expect("the QR code decodes").1
}
