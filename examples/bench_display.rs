//! Times the display path into in-memory sinks: one code screen (plan the layout, encode the QR,
//! draw, send the whole frame) and one countdown tick (draw, find what changed, send only that),
//! for each kind of panel. Prints a Markdown table for BENCHMARKS.md; `scripts/bench-display`
//! runs it. It measures this machine's CPU only: on an OLED the I2C bus dominates, so the table
//! also gives the bytes each update puts on the bus and what they take at 100 and 400 kHz.

use std::hint::black_box;
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sfpair::event::{Event, ShownCode};
use sfpair::present::Presenter;
use sfpair::present::fbdev::{FrameBuffer, Geometry, WriteAt};
use sfpair::present::frame_file::{Format, FrameFile};
use sfpair::present::screen::{Panel, Screen};
use sfpair::present::sh1106::Sh1106;
use sfpair::present::ssd1306::Ssd1306;

const ROUNDS: u32 = 200;

/// An I2C bus that only counts.
#[derive(Clone, Default)]
struct CountingBus {
    bytes: Arc<AtomicUsize>,
    transactions: Arc<AtomicUsize>,
}

impl CountingBus {
    fn counts(&self) -> (usize, usize) {
        (
            self.bytes.load(Ordering::Relaxed),
            self.transactions.load(Ordering::Relaxed),
        )
    }
}

impl Write for CountingBus {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bytes.fetch_add(buf.len(), Ordering::Relaxed);
        self.transactions.fetch_add(1, Ordering::Relaxed);
        Ok(black_box(buf).len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Screen memory in RAM.
struct Memory(Vec<u8>);

impl WriteAt for Memory {
    fn write_all_at(&mut self, bytes: &[u8], offset: u64) -> io::Result<()> {
        let at = offset as usize;
        self.0[at..at + bytes.len()].copy_from_slice(bytes);
        Ok(())
    }
}

fn code() -> ShownCode {
    sfpair::testing::shown_code("https://login.salesforce.com/setup/connect?user_code=X1D9SEET")
}

/// Median time of `ROUNDS` runs of `step` on a fresh screen (made outside the timing).
fn time<P: Panel>(
    make: &mut dyn FnMut() -> Screen<P>,
    step: &mut dyn FnMut(&mut Screen<P>),
) -> Duration {
    let mut times: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let mut screen = make();
            let start = Instant::now();
            step(&mut screen);
            let t = start.elapsed();
            std::mem::forget(screen); // no blanking on drop inside the figures
            t
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn show_code<P: Panel>(s: &mut Screen<P>) {
    s.show(&Event::CodeIssued(code()));
}

fn tick<P: Panel>(s: &mut Screen<P>) {
    s.show(&Event::Countdown {
        remaining: Duration::from_secs(599),
    });
}

fn micros(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

/// Wire time of an I2C write: 9 bit times per byte (8 + ACK) plus the address byte and
/// START/STOP per transaction.
fn wire_ms(bytes: usize, transactions: usize, hz: f64) -> f64 {
    ((bytes + transactions) * 9 + 2 * transactions) as f64 / hz * 1e3
}

fn oled_row<P: Panel>(name: &str, make: impl Fn(CountingBus) -> P) {
    let full = time(
        &mut || Screen::new(make(CountingBus::default())),
        &mut |s| show_code(s),
    );
    let ticked = time(
        &mut || {
            let mut s = Screen::new(make(CountingBus::default()));
            show_code(&mut s);
            s
        },
        &mut |s| tick(s),
    );
    let bus = CountingBus::default();
    let mut s = Screen::new(make(bus.clone()));
    let init = bus.counts();
    show_code(&mut s);
    let after_code = bus.counts();
    tick(&mut s);
    let after_tick = bus.counts();
    std::mem::forget(s);
    let (fb, ft) = (after_code.0 - init.0, after_code.1 - init.1);
    let (tb, tt) = (after_tick.0 - after_code.0, after_tick.1 - after_code.1);
    if tb == 0 {
        println!(
            "| {name} | {} | {fb} B in {ft} writes | {:.1} / {:.1} ms | {} | nothing changed (no countdown on this layout) | |",
            micros(full),
            wire_ms(fb, ft, 100e3),
            wire_ms(fb, ft, 400e3),
            micros(ticked),
        );
        return;
    }
    println!(
        "| {name} | {} | {fb} B in {ft} writes | {:.1} / {:.1} ms | {} | {tb} B in {tt} writes | {:.1} / {:.1} ms |",
        micros(full),
        wire_ms(fb, ft, 100e3),
        wire_ms(fb, ft, 400e3),
        micros(ticked),
        wire_ms(tb, tt, 100e3),
        wire_ms(tb, tt, 400e3),
    );
}

fn fb_row(name: &str, geometry: Geometry) {
    let size = (geometry.line_length * geometry.height) as usize;
    let make = || FrameBuffer::with_geometry(Memory(vec![0; size]), geometry, name.into());
    let full = time(&mut || Screen::new(make()), &mut |s| show_code(s));
    let ticked = time(
        &mut || {
            let mut s = Screen::new(make());
            show_code(&mut s);
            s
        },
        &mut |s| tick(s),
    );
    let (scale, w, h) = geometry.canvas();
    println!(
        "| {name} (canvas {w}x{h} ×{scale}) | {} | {size} B | | {} | | |",
        micros(full),
        micros(ticked)
    );
}

fn main() {
    println!(
        "| sink | code screen: event → sink | bytes | I2C at 100 / 400 kHz | countdown tick | bytes | I2C at 100 / 400 kHz |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    oled_row("SSD1306 128x64", |bus| {
        Ssd1306::new(bus, 64, "bench".into()).unwrap()
    });
    oled_row("SSD1306 128x32", |bus| {
        Ssd1306::new(bus, 32, "bench".into()).unwrap()
    });
    oled_row("SH1106 128x64", |bus| {
        Sh1106::new(bus, 2, "bench".into()).unwrap()
    });
    fb_row("fbdev 320x240 RGB565", Geometry::simple(320, 240, 16, 640));
    fb_row(
        "fbdev 800x480 XRGB8888",
        Geometry::simple(800, 480, 32, 3200),
    );
    fb_row("fbdev 128x64 1 bpp", Geometry::simple(128, 64, 1, 16));
    let dir = std::env::temp_dir().join(format!("sfpair-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("frame.pbm");
    let full = time(
        &mut || Screen::new(FrameFile::new(&path, 128, 64, Format::Pbm).unwrap()),
        &mut |s| show_code(s),
    );
    let ticked = time(
        &mut || {
            let mut s = Screen::new(FrameFile::new(&path, 128, 64, Format::Pbm).unwrap());
            show_code(&mut s);
            s
        },
        &mut |s| tick(s),
    );
    println!(
        "| PBM file 128x64 ({}; write + rename) | {} | {} B | | {} | whole file | |",
        std::env::temp_dir().display(),
        micros(full),
        std::fs::metadata(&path).unwrap().len(),
        micros(ticked)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
