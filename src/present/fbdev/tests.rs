//! The framebuffer writer against regular files of a given geometry, for each pixel format: the
//! picture read back from the bytes scans, padding and off-screen lines are untouched, and a
//! countdown tick writes only a few rows.

use super::*;
use crate::event::Event;
use crate::present::Presenter;
use crate::present::layout::tests::{URLS, shown};
use crate::present::screen::Screen;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::present::frame_qr;

#[test]
fn kernel_structures_have_the_c_layout_of_this_architecture() {
    assert_eq!(size_of::<VarScreenInfo>(), 160);
    let fix = if cfg!(target_pointer_width = "64") {
        80
    } else {
        68
    };
    assert_eq!(size_of::<FixScreenInfo>(), fix);
    // Offsets from a C probe (`offsetof` on <linux/fb.h>) built with Debian's armhf and arm64
    // cross compilers and run under qemu-user.
    let (line_length, mmio_start) = if fix == 80 { (48, 56) } else { (44, 48) };
    assert_eq!(
        core::mem::offset_of!(FixScreenInfo, line_length),
        line_length
    );
    assert_eq!(core::mem::offset_of!(FixScreenInfo, mmio_start), mmio_start);
}

fn var(bits: u32, rgb: [(u32, u32); 4]) -> VarScreenInfo {
    let field = |(offset, length)| FbBitfield {
        offset,
        length,
        msb_right: 0,
    };
    VarScreenInfo {
        xres: 320,
        yres: 240,
        bits_per_pixel: bits,
        red: field(rgb[0]),
        green: field(rgb[1]),
        blue: field(rgb[2]),
        transp: field(rgb[3]),
        ..VarScreenInfo::default()
    }
}

fn fix(visual: u32, line_length: u32) -> FixScreenInfo {
    FixScreenInfo {
        visual,
        line_length,
        ..FixScreenInfo::default()
    }
}

#[test]
fn pixel_formats_come_from_the_screen_info() {
    let rgb565 =
        Geometry::from_screen_info(&var(16, [(11, 5), (5, 6), (0, 5), (0, 0)]), &fix(2, 640))
            .unwrap();
    assert_eq!(
        rgb565.format,
        PixelFormat::Color {
            bytes: 2,
            lit: 0xFFFF,
            unlit: 0
        }
    );
    let argb =
        Geometry::from_screen_info(&var(32, [(16, 8), (8, 8), (0, 8), (24, 8)]), &fix(2, 1280))
            .unwrap();
    assert_eq!(
        argb.format,
        PixelFormat::Color {
            bytes: 4,
            lit: 0xFFFF_FFFF,
            unlit: 0xFF00_0000
        }
    );
    let mono01 = Geometry::from_screen_info(&var(1, [(0, 1); 4]), &fix(0, 40)).unwrap();
    assert_eq!(
        mono01.format,
        PixelFormat::Mono {
            lit_is_one: false,
            lsb_first: true
        }
    );
    let pseudo = Geometry::from_screen_info(&var(8, [(0, 8); 4]), &fix(3, 320)).unwrap_err();
    assert!(pseudo.contains("not supported"), "{pseudo}");
    let short =
        Geometry::from_screen_info(&var(16, [(11, 5), (5, 6), (0, 5), (0, 0)]), &fix(2, 600))
            .unwrap_err();
    assert!(short.contains("implausible"), "{short}");
}

/// A file standing in for screen memory, counting the bytes written.
struct Memory {
    file: File,
    written: Arc<Mutex<usize>>,
}

impl WriteAt for Memory {
    fn write_all_at(&mut self, bytes: &[u8], offset: u64) -> io::Result<()> {
        *self.written.lock().unwrap() += bytes.len();
        FileExt::write_all_at(&self.file, bytes, offset)
    }
}

/// Is visible pixel (x, y) lit in screen memory `mem`? Read independently of the writer.
fn lit_at(mem: &[u8], g: &Geometry, x: u32, y: u32) -> bool {
    let line = ((g.yoffset + y) * g.line_length) as usize;
    let mx = g.xoffset + x;
    match g.format {
        PixelFormat::Mono {
            lit_is_one,
            lsb_first,
        } => {
            let byte = mem[line + mx as usize / 8];
            let bit = if lsb_first {
                byte >> (mx % 8)
            } else {
                byte >> (7 - mx % 8)
            } & 1;
            (bit == 1) == lit_is_one
        }
        PixelFormat::Color { bytes, lit, unlit } => {
            let at = line + (mx * bytes) as usize;
            let mut v = [0u8; 4];
            v[..bytes as usize].copy_from_slice(&mem[at..at + bytes as usize]);
            let v = u32::from_le_bytes(v);
            assert!(v == lit || v == unlit, "pixel ({x}, {y}) = {v:#x}");
            v == lit
        }
    }
}

#[test]
fn every_bit_depth_shows_a_scannable_code_and_leaves_padding_alone() {
    let mut mono01 = Geometry::simple(256, 128, 1, 40);
    mono01.format = PixelFormat::Mono {
        lit_is_one: false,
        lsb_first: false,
    };
    let mut panned = Geometry::simple(480, 272, 32, 480 * 4 + 64);
    panned.yoffset = 272; // the second page of a double-buffered screen
    panned.xoffset = 8;
    let screens = [
        (Geometry::simple(256, 128, 1, 36), 128),
        (mono01, 128),
        (Geometry::simple(320, 240, 16, 320 * 2 + 32), 240),
        (Geometry::simple(200, 150, 24, 200 * 3 + 4), 150),
        (panned, 2 * 272),
    ];
    let dir = std::env::temp_dir().join(format!("sfpair-fb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (i, (g, lines)) in screens.into_iter().enumerate() {
        let path = dir.join(format!("fb{i}"));
        let size = (g.line_length * lines) as usize;
        std::fs::write(&path, vec![0xA5u8; size]).unwrap();
        let written = Arc::new(Mutex::new(0));
        let memory = Memory {
            file: OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap(),
            written: written.clone(),
        };
        let fb = FrameBuffer::with_geometry(memory, g, format!("test fb{i}"));
        let (scale, cw, ch) = g.canvas();
        assert_eq!(fb.size(), (cw, ch));
        let mut screen = Screen::new(fb);
        let url = URLS[i % URLS.len()];
        screen.show(&Event::CodeIssued(shown(url)));
        let full = *written.lock().unwrap();
        screen.show(&Event::Countdown {
            remaining: Duration::from_secs(599),
        });
        let tick = *written.lock().unwrap() - full;
        assert!(
            tick * 8 < full,
            "fb{i}: a tick wrote {tick} of {full} bytes"
        );
        std::mem::forget(screen);

        let mem = std::fs::read(&path).unwrap();
        assert_eq!(mem.len(), size, "fb{i}: nothing written past the end");
        let decoded = frame_qr::decode_one(g.width, g.height, |x, y| lit_at(&mem, &g, x, y));
        assert_eq!(decoded, url, "fb{i} at scale {scale}");
        // Bytes outside the visible area keep their old value.
        for line in 0..lines {
            let row = &mem[(line * g.line_length) as usize..((line + 1) * g.line_length) as usize];
            let visible = line >= g.yoffset && line < g.yoffset + g.height;
            let used = if visible { g.min_line() as usize } else { 0 };
            let start = if visible {
                (g.xoffset * g.bits_per_pixel() / 8) as usize
            } else {
                0
            };
            assert!(
                row[..start].iter().chain(&row[used..]).all(|&b| b == 0xA5),
                "fb{i} line {line}"
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_regular_file_is_not_a_framebuffer() {
    let path = std::env::temp_dir().join(format!("sfpair-not-fb-{}", std::process::id()));
    std::fs::write(&path, b"").unwrap();
    let e = FrameBuffer::open(&path).err().unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(e.to_string().contains("not a framebuffer"), "{e}");
    assert!(e.to_string().contains(&path.display().to_string()), "{e}");
    let e = FrameBuffer::open(Path::new("/dev/fb-does-not-exist"))
        .err()
        .unwrap();
    assert!(e.to_string().contains("/dev/fb-does-not-exist"), "{e}");
}
