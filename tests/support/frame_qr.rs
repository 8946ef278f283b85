//! Reads QR codes off a 1-bit picture with rqrr, as a phone camera would read the panel: the
//! picture gets a dark surround (the unlit panel and its bezel), lit pixels are white. Shared by
//! the unit tests (`present/`) and the integration tests (`tests/cli`) through `#[path]`.

#![allow(dead_code)]

/// Every QR code found in the `width × height` picture where `lit(x, y)` is a light pixel, decoded.
/// A code that is found but does not decode is a failure: it would not scan either.
pub fn decode_lit(width: u32, height: u32, lit: impl Fn(u32, u32) -> bool) -> Vec<String> {
    let border = 8;
    let (w, h) = (width + 2 * border, height + 2 * border);
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w as usize, h as usize, |x, y| {
        let (x, y) = (x as u32, y as u32);
        let inside = x >= border && y >= border && x < w - border && y < h - border;
        if inside && lit(x - border, y - border) {
            255
        } else {
            0
        }
    });
    img.detect_grids()
        .iter()
        .map(|g| match g.decode() {
            Ok((_, text)) => text,
            Err(e) => panic!("a QR code was found but does not decode: {e:?}"),
        })
        .collect()
}

/// The one QR code in the picture, decoded; panics unless there is exactly one.
pub fn decode_one(width: u32, height: u32, lit: impl Fn(u32, u32) -> bool) -> String {
    let found = decode_lit(width, height, lit);
    assert_eq!(
        found.len(),
        1,
        "expected exactly one QR code, found {found:?}"
    );
    found.into_iter().next().unwrap()
}
