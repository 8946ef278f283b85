//! SSD1306 OLED controller over I2C (128×64 and 128×32 modules): its init sequence and frame
//! writes, to any byte sink where one `write()` is one I2C transaction.
//!
//! Horizontal addressing: set the column and page window, then one data transaction with the
//! window's bytes, so a whole frame is one `write()` of 0x40 + 1024 bytes and a countdown tick is
//! one small strip. Command bytes come from the datasheet and match the `ssd1306` crate and
//! luma.oled (docs/embedded.md, "SSD1306"). The display is switched on only after the first frame, so
//! the power-on garbage in its RAM is never seen. No I/O besides the sink's `write()`.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use super::canvas::{Area, Canvas};
use super::i2c;
use super::screen::Panel;

/// Control byte: the rest of the transaction is commands.
pub const COMMANDS: u8 = 0x00;
/// Control byte: the rest of the transaction is display data.
pub const DATA: u8 = 0x40;

/// The controller's width in pixels.
pub const WIDTH: u32 = 128;

/// An SSD1306 OLED over an I2C bus (`W`: the bus).
pub struct Ssd1306<W: Write> {
    bus: W,
    height: u32,
    name: String,
    on: bool,
}

impl Ssd1306<File> {
    /// Opens the panel at `address` on the bus `path` and initializes it.
    pub fn open(path: &Path, address: u16, height: u32) -> io::Result<Self> {
        let bus = i2c::open(path, address)?;
        let name = format!("ssd1306 on {} at {address:#04x}", path.display());
        Ssd1306::new(bus, height, name).map_err(|e| i2c::explain(e, path, address))
    }
}

impl<W: Write> Ssd1306<W> {
    /// Sends the init sequence (display still off) for a 128×`height` panel (64 or 32 rows).
    pub fn new(mut bus: W, height: u32, name: String) -> io::Result<Self> {
        if height != 64 && height != 32 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{name}: an SSD1306 panel is 128x64 or 128x32, not 128x{height}"),
            ));
        }
        i2c::transaction(&mut bus, &init_sequence(height))?;
        Ok(Ssd1306 {
            bus,
            height,
            name,
            on: false,
        })
    }

    /// Gives the bus back.
    pub fn into_bus(self) -> W {
        self.bus
    }
}

/// Display off, timing, multiplex, charge pump on, horizontal addressing, COM wiring, flipped
/// to the usual module orientation, contrast, normal (not inverted) display, scrolling off.
pub fn init_sequence(height: u32) -> Vec<u8> {
    let com_pins = if height == 64 { 0x12 } else { 0x02 };
    vec![
        COMMANDS,
        0xAE, // display off
        0xD5,
        0x80, // clock divide / oscillator
        0xA8,
        (height - 1) as u8, // multiplex ratio
        0xD3,
        0x00, // display offset
        0x40, // start line 0
        0x8D,
        0x14, // charge pump on
        0x20,
        0x00, // horizontal addressing
        0xDA,
        com_pins, // COM pins: alternative (64 rows) or sequential (32 rows)
        0xA1,     // segment remap: column 127 is SEG0
        0xC8,     // COM scan from the bottom
        0xD9,
        0xF1, // pre-charge
        0x81,
        0xCF, // contrast
        0xDB,
        0x40, // VCOMH
        0xA4, // show RAM
        0xA6, // lit pixel = set bit
        0x2E, // scrolling off
    ]
}

impl<W: Write + Send> Panel for Ssd1306<W> {
    fn size(&self) -> (u32, u32) {
        (WIDTH, self.height)
    }

    fn describe(&self) -> String {
        self.name.clone()
    }

    fn show(&mut self, frame: &Canvas, changed: Area) -> io::Result<()> {
        if (frame.width(), frame.height()) != self.size() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a {}x{} frame on a 128x{} panel",
                    frame.width(),
                    frame.height(),
                    self.height
                ),
            ));
        }
        let (x0, x1) = (changed.x, changed.right().min(WIDTH) - 1);
        let (p0, p1) = (changed.y / 8, (changed.bottom().min(self.height) - 1) / 8);
        i2c::transaction(
            &mut self.bus,
            &[COMMANDS, 0x21, x0 as u8, x1 as u8, 0x22, p0 as u8, p1 as u8],
        )?;
        let mut data = Vec::with_capacity(1 + ((x1 - x0 + 1) * (p1 - p0 + 1)) as usize);
        data.push(DATA);
        for page in p0..=p1 {
            data.extend((x0..=x1).map(|x| frame.page_byte(x, page)));
        }
        i2c::transaction(&mut self.bus, &data)?;
        if !self.on {
            i2c::transaction(&mut self.bus, &[COMMANDS, 0xAF])?;
            self.on = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
