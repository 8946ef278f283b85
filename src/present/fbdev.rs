//! Linux framebuffer (`/dev/fbN`): the 1-bit canvas, scaled up by a whole number to fill the
//! screen, written as 1, 16, 24 or 32 bits per pixel at the right offsets.
//!
//! The screen's geometry comes from the `FBIOGET_VSCREENINFO`/`FBIOGET_FSCREENINFO` ioctls only
//! in [`FrameBuffer::open`]; everything else works from a [`Geometry`] value, so tests drive the
//! same writer against a regular file. The kernel structures are declared with C types
//! (`c_ulong` is 4 bytes on 32-bit ARM, 8 on 64-bit: `fb_fix_screeninfo` is 68 or 80 bytes).
//! Rows are written with `pwrite` at `yoffset + y` lines of `line_length` bytes (never assumed to
//! be `width × bytes per pixel`: drivers pad), and only the rows and columns that changed. Colour
//! screens get white for lit and black for unlit in whatever channel layout the driver reports.
//! 1 bpp: `MONO10` means 1 = lit, `MONO01` 1 = dark; the leftmost pixel is the *least*
//! significant bit, as in ssd1307fb, the usual 1-bpp driver on these boards (bit order is driver
//! specific, docs/embedded.md, "fbdev"). It draws on the screen it is given: a framebuffer that the
//! text console also uses will get the console's cursor over it.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;

use super::canvas::{Area, Canvas};
use super::screen::Panel;

const FBIOGET_VSCREENINFO: u32 = 0x4600;
const FBIOGET_FSCREENINFO: u32 = 0x4602;
const FB_TYPE_PACKED_PIXELS: u32 = 0;
const FB_VISUAL_MONO01: u32 = 0;
const FB_VISUAL_MONO10: u32 = 1;
const FB_VISUAL_TRUECOLOR: u32 = 2;
const FB_VISUAL_DIRECTCOLOR: u32 = 4;

/// `struct fb_bitfield` from `<linux/fb.h>`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FbBitfield {
    /// Bit position of the channel's lowest bit, from the right.
    pub offset: u32,
    pub length: u32,
    pub msb_right: u32,
}

/// `struct fb_var_screeninfo` from `<linux/fb.h>` (160 bytes on every architecture).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct VarScreenInfo {
    pub xres: u32,
    pub yres: u32,
    pub xres_virtual: u32,
    pub yres_virtual: u32,
    pub xoffset: u32,
    pub yoffset: u32,
    pub bits_per_pixel: u32,
    pub grayscale: u32,
    pub red: FbBitfield,
    pub green: FbBitfield,
    pub blue: FbBitfield,
    pub transp: FbBitfield,
    pub nonstd: u32,
    pub activate: u32,
    pub height: u32,
    pub width: u32,
    pub accel_flags: u32,
    pub pixclock: u32,
    pub left_margin: u32,
    pub right_margin: u32,
    pub upper_margin: u32,
    pub lower_margin: u32,
    pub hsync_len: u32,
    pub vsync_len: u32,
    pub sync: u32,
    pub vmode: u32,
    pub rotate: u32,
    pub colorspace: u32,
    pub reserved: [u32; 4],
}

/// `struct fb_fix_screeninfo` from `<linux/fb.h>`: its two `unsigned long`s make it 68 bytes on
/// 32-bit ARM and 80 on 64-bit.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FixScreenInfo {
    pub id: [u8; 16],
    pub smem_start: libc::c_ulong,
    pub smem_len: u32,
    pub type_: u32,
    pub type_aux: u32,
    pub visual: u32,
    pub xpanstep: u16,
    pub ypanstep: u16,
    pub ywrapstep: u16,
    pub line_length: u32,
    pub mmio_start: libc::c_ulong,
    pub mmio_len: u32,
    pub accel: u32,
    pub capabilities: u16,
    pub reserved: [u16; 2],
}

/// How a pixel is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PixelFormat {
    /// 1 bit per pixel.
    Mono {
        /// A set bit is lit.
        lit_is_one: bool,
        /// The leftmost pixel is the lowest bit.
        lsb_first: bool,
    },
    /// 2, 3 or 4 bytes per pixel, little-endian values.
    Color {
        /// Bytes a pixel.
        bytes: u32,
        /// The value written for a lit pixel.
        lit: u32,
        /// The value written for an unlit pixel.
        unlit: u32,
    },
}

/// What the writer needs to know about a screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Visible pixels.
    pub width: u32,
    /// Visible rows.
    pub height: u32,
    /// Where the visible area starts in the (virtual) screen memory.
    pub xoffset: u32,
    /// The first visible row in the memory (panning).
    pub yoffset: u32,
    /// Bytes from one line to the next.
    pub line_length: u32,
    /// How pixels are stored.
    pub format: PixelFormat,
}

fn mask(field: &FbBitfield) -> u32 {
    match field.length {
        0 => 0,
        n if n >= 32 => u32::MAX,
        n => ((1u32 << n) - 1) << field.offset,
    }
}

impl Geometry {
    /// From the kernel's description of the screen, or why it cannot be drawn on.
    pub(crate) fn from_screen_info(
        var: &VarScreenInfo,
        fix: &FixScreenInfo,
    ) -> Result<Geometry, String> {
        if fix.type_ != FB_TYPE_PACKED_PIXELS {
            return Err(format!(
                "the framebuffer is not packed pixels (type {}); only packed pixels are supported",
                fix.type_
            ));
        }
        let format = match (var.bits_per_pixel, fix.visual) {
            (1, FB_VISUAL_MONO10) => PixelFormat::Mono {
                lit_is_one: true,
                lsb_first: true,
            },
            (1, FB_VISUAL_MONO01) => PixelFormat::Mono {
                lit_is_one: false,
                lsb_first: true,
            },
            (bpp @ (16 | 24 | 32), FB_VISUAL_TRUECOLOR | FB_VISUAL_DIRECTCOLOR) => {
                let alpha = mask(&var.transp);
                PixelFormat::Color {
                    bytes: bpp / 8,
                    lit: mask(&var.red) | mask(&var.green) | mask(&var.blue) | alpha,
                    unlit: alpha,
                }
            }
            (bpp, visual) => {
                return Err(format!(
                    "{bpp} bits per pixel with visual {visual} is not supported: use a 1 bpp \
                     monochrome or a 16, 24 or 32 bpp true-colour mode"
                ));
            }
        };
        let geometry = Geometry {
            width: var.xres,
            height: var.yres,
            xoffset: var.xoffset,
            yoffset: var.yoffset,
            line_length: fix.line_length,
            format,
        };
        if geometry.width == 0 || geometry.height == 0 || fix.line_length < geometry.min_line() {
            return Err(format!(
                "implausible geometry: {}x{} with {} bytes per line",
                var.xres, var.yres, fix.line_length
            ));
        }
        Ok(geometry)
    }

    /// A screen of `width × height` pixels at `bits` per pixel (1, 16 = RGB565, 24 = RGB888,
    /// 32 = XRGB8888), lines padded to `line_length` bytes: for tests and tools.
    pub fn simple(width: u32, height: u32, bits: u32, line_length: u32) -> Geometry {
        let format = match bits {
            1 => PixelFormat::Mono {
                lit_is_one: true,
                lsb_first: true,
            },
            16 => PixelFormat::Color {
                bytes: 2,
                lit: 0xFFFF,
                unlit: 0,
            },
            24 => PixelFormat::Color {
                bytes: 3,
                lit: 0xFF_FFFF,
                unlit: 0,
            },
            _ => PixelFormat::Color {
                bytes: 4,
                lit: 0x00FF_FFFF,
                unlit: 0,
            },
        };
        Geometry {
            width,
            height,
            xoffset: 0,
            yoffset: 0,
            line_length,
            format,
        }
    }

    fn bits_per_pixel(&self) -> u32 {
        match self.format {
            PixelFormat::Mono { .. } => 1,
            PixelFormat::Color { bytes, .. } => bytes * 8,
        }
    }

    fn min_line(&self) -> u32 {
        ((self.xoffset + self.width) * self.bits_per_pixel()).div_ceil(8)
    }

    /// The whole-number factor the canvas is scaled by, and the canvas size: as large as fills
    /// the screen with the canvas at least 128×64 where the screen allows.
    pub fn canvas(&self) -> (u32, u32, u32) {
        let scale = (self.width / 128).min(self.height / 64).max(1);
        (scale, self.width / scale, self.height / scale)
    }
}

/// Where the frame bytes go: `pwrite` on the device, or a stand-in in tests.
pub trait WriteAt: Send {
    /// Writes all of `bytes` at `offset` of the device.
    fn write_all_at(&mut self, bytes: &[u8], offset: u64) -> io::Result<()>;
}

impl WriteAt for File {
    fn write_all_at(&mut self, bytes: &[u8], offset: u64) -> io::Result<()> {
        FileExt::write_all_at(self, bytes, offset)
    }
}

/// A Linux framebuffer (`/dev/fbN`) as a presenter's panel.
pub struct FrameBuffer<D: WriteAt = File> {
    device: D,
    geometry: Geometry,
    scale: u32,
    canvas: (u32, u32),
    /// Top-left corner of the scaled canvas on the screen (the remainder is split as margins).
    origin: (u32, u32),
    name: String,
    /// The margins have been painted dark.
    cleared: bool,
}

impl FrameBuffer<File> {
    /// Opens `/dev/fbN` and reads its geometry.
    pub fn open(path: &Path) -> io::Result<FrameBuffer<File>> {
        let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
            .map_err(named)?;
        let mut var = VarScreenInfo::default();
        let mut fix = FixScreenInfo::default();
        // SAFETY: valid descriptor; the kernel fills structures declared exactly as in <linux/fb.h>.
        let rc = unsafe {
            libc::ioctl(
                file.as_raw_fd(),
                FBIOGET_VSCREENINFO as _,
                &mut var as *mut VarScreenInfo,
            )
        };
        // SAFETY: as above.
        let rc = if rc < 0 {
            rc
        } else {
            unsafe {
                libc::ioctl(
                    file.as_raw_fd(),
                    FBIOGET_FSCREENINFO as _,
                    &mut fix as *mut FixScreenInfo,
                )
            }
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return Err(named(if e.raw_os_error() == Some(libc::ENOTTY) {
                io::Error::new(e.kind(), "not a framebuffer device (the fbdev ioctls fail)")
            } else {
                e
            }));
        }
        let geometry = Geometry::from_screen_info(&var, &fix)
            .map_err(|why| named(io::Error::new(io::ErrorKind::Unsupported, why)))?;
        Ok(FrameBuffer::with_geometry(
            file,
            geometry,
            format!("framebuffer {}", path.display()),
        ))
    }
}

impl<D: WriteAt> FrameBuffer<D> {
    /// A writer for a screen of known geometry.
    pub fn with_geometry(device: D, geometry: Geometry, name: String) -> Self {
        let (scale, cw, ch) = geometry.canvas();
        FrameBuffer {
            device,
            geometry,
            scale,
            canvas: (cw, ch),
            origin: (
                (geometry.width - cw * scale) / 2,
                (geometry.height - ch * scale) / 2,
            ),
            name,
            cleared: false,
        }
    }

    /// How many device pixels one canvas pixel takes.
    pub fn scale(&self) -> u32 {
        self.scale
    }

    /// Gives the device back.
    pub fn into_device(self) -> D {
        self.device
    }

    /// Is screen pixel (`x`, `y`) lit in `frame`?
    fn lit(&self, frame: &Canvas, x: u32, y: u32) -> bool {
        let (ox, oy) = self.origin;
        x >= ox && y >= oy && frame.is_lit((x - ox) / self.scale, (y - oy) / self.scale)
    }

    /// Writes screen rows `y0..y1`, columns `x0..x1` (visible coordinates).
    fn write_rect(&mut self, frame: &Canvas, x0: u32, x1: u32, y0: u32, y1: u32) -> io::Result<()> {
        let g = self.geometry;
        let mut row = Vec::new();
        for y in y0..y1 {
            row.clear();
            let line = u64::from(g.yoffset + y) * u64::from(g.line_length);
            let start = match g.format {
                PixelFormat::Mono {
                    lit_is_one,
                    lsb_first,
                } => {
                    // Whole bytes: from the byte holding x0 to the one holding x1 - 1.
                    let first = (g.xoffset + x0) / 8;
                    let last = (g.xoffset + x1 - 1) / 8;
                    for byte in first..=last {
                        let mut b = 0u8;
                        for bit in 0..8 {
                            let mx = byte * 8 + bit;
                            let visible = mx >= g.xoffset && mx - g.xoffset < g.width;
                            let lit = visible && self.lit(frame, mx - g.xoffset, y);
                            if lit == lit_is_one {
                                b |= if lsb_first { 1 << bit } else { 0x80 >> bit };
                            }
                        }
                        row.push(b);
                    }
                    u64::from(first)
                }
                PixelFormat::Color { bytes, lit, unlit } => {
                    for x in x0..x1 {
                        let value = if self.lit(frame, x, y) { lit } else { unlit };
                        row.extend_from_slice(&value.to_le_bytes()[..bytes as usize]);
                    }
                    u64::from((g.xoffset + x0) * bytes)
                }
            };
            self.device.write_all_at(&row, line + start)?;
        }
        Ok(())
    }
}

impl<D: WriteAt> Panel for FrameBuffer<D> {
    fn size(&self) -> (u32, u32) {
        self.canvas
    }

    fn describe(&self) -> String {
        self.name.clone()
    }

    fn show(&mut self, frame: &Canvas, changed: Area) -> io::Result<()> {
        if (frame.width(), frame.height()) != self.canvas {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a {}x{} frame for a {}x{} canvas",
                    frame.width(),
                    frame.height(),
                    self.canvas.0,
                    self.canvas.1
                ),
            ));
        }
        if !self.cleared {
            // The first frame paints the whole screen, margins included.
            let (w, h) = (self.geometry.width, self.geometry.height);
            self.write_rect(frame, 0, w, 0, h)?;
            self.cleared = true;
            return Ok(());
        }
        let (s, (ox, oy)) = (self.scale, self.origin);
        self.write_rect(
            frame,
            ox + changed.x * s,
            ox + changed.right() * s,
            oy + changed.y * s,
            oy + changed.bottom() * s,
        )
    }
}

#[cfg(test)]
mod tests;
