//! SH1106 OLED controller over I2C (the common 1.3" 128×64 modules): its init sequence and
//! frame writes, to any byte sink where one `write()` is one I2C transaction.
//!
//! Unlike the SSD1306 it has 132 columns of RAM with the 128-pixel panel usually centred on them
//! (column offset 2; some modules use 0), page addressing only (no window commands, so one page
//! at a time), and its charge pump is the DC-DC command `AD 8B` (docs/embedded.md, "SH1106"). Each
//! page goes as two transactions, a command one (page, column) and a data one, as the sh1106
//! crate and luma.oled do; folding both into one with continuation control bytes would save
//! about 0.4 ms of a ~23 ms frame at 400 kHz, not worth a sequence no field driver uses.
//! No I/O besides the sink's `write()`.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use super::canvas::{Area, Canvas};
use super::i2c;
use super::screen::Panel;
use super::ssd1306::{COMMANDS, DATA};

/// The controller's width in pixels.
pub const WIDTH: u32 = 128;
/// The controller's height in pixels.
pub const HEIGHT: u32 = 64;
/// Where a 128-pixel panel starts in the 132-column RAM on most modules.
pub const CENTRED_OFFSET: u8 = 2;

/// An SH1106 OLED over an I2C bus (`W`: the bus).
pub struct Sh1106<W: Write> {
    bus: W,
    column_offset: u8,
    name: String,
    on: bool,
}

impl Sh1106<File> {
    /// Opens the panel at `address` on the bus `path` and initializes it.
    pub fn open(path: &Path, address: u16, column_offset: u8) -> io::Result<Self> {
        let bus = i2c::open(path, address)?;
        let name = format!("sh1106 on {} at {address:#04x}", path.display());
        Sh1106::new(bus, column_offset, name).map_err(|e| i2c::explain(e, path, address))
    }
}

impl<W: Write> Sh1106<W> {
    /// Sends the init sequence (display still off).
    pub fn new(mut bus: W, column_offset: u8, name: String) -> io::Result<Self> {
        i2c::transaction(&mut bus, &init_sequence())?;
        Ok(Sh1106 {
            bus,
            column_offset,
            name,
            on: false,
        })
    }

    /// Gives the bus back.
    pub fn into_bus(self) -> W {
        self.bus
    }
}

/// Display off, timing, multiplex, DC-DC (charge pump) on, flipped to the usual module
/// orientation, COM wiring, contrast, normal display. The values of the sh1106 crate.
pub fn init_sequence() -> Vec<u8> {
    vec![
        COMMANDS, 0xAE, // display off
        0xD5, 0x80, // clock divide / oscillator
        0xA8, 0x3F, // multiplex ratio: 64 rows
        0xD3, 0x00, // display offset
        0x40, // start line 0
        0xAD, 0x8B, // DC-DC converter on (only while the display is off)
        0xA1, // segment remap
        0xC8, // COM scan from the bottom
        0xDA, 0x12, // COM pins: alternative
        0x81, 0x80, // contrast
        0xD9, 0xF1, // pre-charge / discharge
        0xDB, 0x40, // VCOM deselect level
        0xA4, // show RAM
        0xA6, // lit pixel = set bit
    ]
}

impl<W: Write + Send> Panel for Sh1106<W> {
    fn size(&self) -> (u32, u32) {
        (WIDTH, HEIGHT)
    }

    fn describe(&self) -> String {
        self.name.clone()
    }

    fn show(&mut self, frame: &Canvas, changed: Area) -> io::Result<()> {
        if (frame.width(), frame.height()) != (WIDTH, HEIGHT) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a {}x{} frame on a 128x64 panel",
                    frame.width(),
                    frame.height()
                ),
            ));
        }
        let (x0, x1) = (changed.x, changed.right().min(WIDTH) - 1);
        let (p0, p1) = (changed.y / 8, (changed.bottom().min(HEIGHT) - 1) / 8);
        let column = x0 as u8 + self.column_offset;
        let mut data = Vec::with_capacity(1 + WIDTH as usize);
        for page in p0..=p1 {
            i2c::transaction(
                &mut self.bus,
                &[
                    COMMANDS,
                    0xB0 | page as u8,
                    column & 0x0F,
                    0x10 | (column >> 4),
                ],
            )?;
            data.clear();
            data.push(DATA);
            data.extend((x0..=x1).map(|x| frame.page_byte(x, page)));
            i2c::transaction(&mut self.bus, &data)?;
        }
        if !self.on {
            i2c::transaction(&mut self.bus, &[COMMANDS, 0xAF])?;
            self.on = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
