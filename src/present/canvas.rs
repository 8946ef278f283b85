//! A 1-bit frame of any size: what a small display shows, one bit per pixel, `true` = lit.
//!
//! Pure: no I/O. The canvas is an embedded-graphics `DrawTarget`, so text is drawn with its mono
//! fonts; panels read it back row by row (framebuffers, PBM) or as 8-row pages (SSD1306/SH1106).
//! `changes_from` finds the rectangle that differs from the previous frame, so a countdown tick
//! re-sends a few bytes instead of the whole frame. Lit means light on the panel: the QR's dark
//! modules are *unlit* pixels (docs/embedded.md, "QR sizing").

use core::convert::Infallible;

use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::{DrawTarget, OriginDimensions, Pixel, Size};

/// A rectangle of pixels (the part of a frame that changed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Area {
    /// Left edge, in pixels.
    pub x: u32,
    /// Top edge, in pixels.
    pub y: u32,
    /// Width, in pixels.
    pub width: u32,
    /// Height, in pixels.
    pub height: u32,
}

impl Area {
    /// One past the last column.
    pub fn right(&self) -> u32 {
        self.x + self.width
    }

    /// One past the last row.
    pub fn bottom(&self) -> u32 {
        self.y + self.height
    }
}

/// A 1-bit frame, row-major, 8 pixels per byte, most significant bit leftmost.
#[derive(Clone, PartialEq, Eq)]
pub struct Canvas {
    width: u32,
    height: u32,
    stride: usize,
    bits: Vec<u8>,
}

impl core::fmt::Debug for Canvas {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Canvas({}x{})", self.width, self.height)
    }
}

impl Canvas {
    /// An all-dark (unlit) frame.
    pub fn new(width: u32, height: u32) -> Canvas {
        let stride = (width as usize).div_ceil(8);
        Canvas {
            width,
            height,
            stride,
            bits: vec![0; stride * height as usize],
        }
    }

    /// The canvas's width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// The canvas's height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The whole frame as an area.
    pub fn area(&self) -> Area {
        Area {
            x: 0,
            y: 0,
            width: self.width,
            height: self.height,
        }
    }

    /// Is the pixel lit? Outside the frame counts as unlit.
    pub fn is_lit(&self, x: u32, y: u32) -> bool {
        x < self.width
            && y < self.height
            && self.bits[y as usize * self.stride + x as usize / 8] & (0x80 >> (x % 8)) != 0
    }

    /// Sets one pixel; outside the frame is ignored (text may run off the edge).
    pub fn set(&mut self, x: u32, y: u32, lit: bool) {
        if x >= self.width || y >= self.height {
            return;
        }
        let byte = &mut self.bits[y as usize * self.stride + x as usize / 8];
        let mask = 0x80 >> (x % 8);
        if lit {
            *byte |= mask;
        } else {
            *byte &= !mask;
        }
    }

    /// Fills a rectangle (clipped to the frame).
    pub fn fill(&mut self, area: Area, lit: bool) {
        for y in area.y..area.bottom().min(self.height) {
            for x in area.x..area.right().min(self.width) {
                self.set(x, y, lit);
            }
        }
    }

    /// Copies `src` here with its top-left corner at (`x`, `y`), each pixel as a
    /// `scale × scale` block; only lit pixels are drawn (text over a dark background).
    pub fn blit_lit(&mut self, src: &Canvas, x: u32, y: u32, scale: u32) {
        for sy in 0..src.height {
            for sx in 0..src.width {
                if src.is_lit(sx, sy) {
                    self.fill(
                        Area {
                            x: x + sx * scale,
                            y: y + sy * scale,
                            width: scale,
                            height: scale,
                        },
                        true,
                    );
                }
            }
        }
    }

    /// The column byte of an SSD1306/SH1106 page: bit k = pixel (`x`, `page * 8 + k`), bit 0 on top.
    pub fn page_byte(&self, x: u32, page: u32) -> u8 {
        (0..8).fold(0, |byte, k| {
            byte | (u8::from(self.is_lit(x, page * 8 + k)) << k)
        })
    }

    /// One row as packed bits, most significant bit leftmost, 1 = lit.
    pub fn row(&self, y: u32) -> &[u8] {
        let start = y as usize * self.stride;
        &self.bits[start..start + self.stride]
    }

    /// The smallest rectangle holding every pixel that differs from `previous`, or `None` when
    /// nothing changed. A frame of another size differs everywhere.
    pub fn changes_from(&self, previous: &Canvas) -> Option<Area> {
        if previous.width != self.width || previous.height != self.height {
            return Some(self.area());
        }
        let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
        for y in 0..self.height {
            let (now, then) = (self.row(y), previous.row(y));
            if now == then {
                continue;
            }
            for (i, (a, b)) in now.iter().zip(then).enumerate() {
                let diff = a ^ b;
                if diff == 0 {
                    continue;
                }
                let first = i as u32 * 8 + diff.leading_zeros();
                let last = i as u32 * 8 + 7 - diff.trailing_zeros();
                x0 = x0.min(first);
                x1 = x1.max(last);
            }
            y0 = y0.min(y);
            y1 = y;
        }
        (y0 != u32::MAX).then(|| Area {
            x: x0,
            y: y0,
            width: x1 - x0 + 1,
            height: y1 - y0 + 1,
        })
    }
}

impl OriginDimensions for Canvas {
    fn size(&self) -> Size {
        Size::new(self.width, self.height)
    }
}

impl DrawTarget for Canvas {
    type Color = BinaryColor;
    type Error = Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Infallible>
    where
        I: IntoIterator<Item = Pixel<BinaryColor>>,
    {
        for Pixel(point, color) in pixels {
            if let (Ok(x), Ok(y)) = (u32::try_from(point.x), u32::try_from(point.y)) {
                self.set(x, y, color.is_on());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixels_pages_and_rows_agree() {
        let mut c = Canvas::new(13, 16);
        c.set(0, 0, true);
        c.set(12, 9, true);
        c.set(20, 20, true); // outside: ignored
        assert!(c.is_lit(0, 0) && c.is_lit(12, 9) && !c.is_lit(1, 0));
        assert_eq!(c.row(0), [0x80, 0x00]);
        assert_eq!(c.row(9), [0x00, 0x08]);
        assert_eq!(c.page_byte(0, 0), 0x01, "bit 0 is the top row of the page");
        assert_eq!(c.page_byte(12, 1), 0x02, "row 9 is bit 1 of page 1");
    }

    #[test]
    fn changes_are_the_bounding_box_of_differing_pixels() {
        let a = Canvas::new(128, 64);
        let mut b = a.clone();
        assert_eq!(b.changes_from(&a), None);
        b.set(70, 40, true);
        b.set(90, 47, true);
        assert_eq!(
            b.changes_from(&a),
            Some(Area {
                x: 70,
                y: 40,
                width: 21,
                height: 8
            })
        );
        assert_eq!(b.changes_from(&Canvas::new(128, 32)), Some(b.area()));
    }

    #[test]
    fn blit_scales_lit_pixels_only() {
        let mut glyph = Canvas::new(2, 1);
        glyph.set(1, 0, true);
        let mut c = Canvas::new(8, 8);
        c.blit_lit(&glyph, 2, 2, 3);
        let lit: Vec<(u32, u32)> = (0..8)
            .flat_map(|y| (0..8).map(move |x| (x, y)))
            .filter(|&(x, y)| c.is_lit(x, y))
            .collect();
        assert_eq!(lit.len(), 9);
        assert!(
            lit.iter()
                .all(|&(x, y)| (5..8).contains(&x) && (2..5).contains(&y))
        );
    }
}
