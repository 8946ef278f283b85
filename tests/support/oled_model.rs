//! Software models of the SSD1306 and SH1106 OLED controllers, for tests: they take the I2C
//! transactions a driver sends (one `write()` each), interpret control bytes, commands and data
//! as the chips do (datasheets: SSD1306 rev 1.1 §8.1.5, §10; SH1106 v0.1 §"Commands"), keep the
//! display RAM, and show what the glass of a usual module would show. Anything a real chip would
//! not accept the way the driver meant it — an unknown command, a command split across
//! transactions, a data byte past the end of the RAM, a panel left off or without its charge
//! pump, a mirrored orientation — panics, so a driver bug fails the test. Shared through `#[path]`.

#![allow(dead_code)]

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

/// A bus that records each `write()` as one transaction.
#[derive(Clone, Default)]
pub struct RecordingBus(pub Arc<Mutex<Vec<Vec<u8>>>>);

impl RecordingBus {
    pub fn take(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Write for RecordingBus {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        assert!(buf.len() <= 8192, "i2c-dev clamps a write to 8192 bytes");
        self.0.lock().unwrap().push(buf.to_vec());
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What differs between the two chips.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chip {
    Ssd1306,
    /// With the module's column offset: glass column 0 is RAM column `offset`.
    Sh1106 {
        offset: usize,
    },
}

pub struct OledModel {
    chip: Chip,
    /// Glass rows (64 or 32).
    rows: usize,
    ram: Vec<[u8; 132]>,
    mode: u8,
    col_start: usize,
    col_end: usize,
    page_start: usize,
    page_end: usize,
    col: usize,
    page: usize,
    on: bool,
    charge_pump: bool,
    mux: Option<u8>,
    com_pins: Option<u8>,
    start_line: u8,
    offset: u8,
    seg_remap: bool,
    com_reversed: bool,
    inverted: bool,
    entire_on: bool,
    scrolling: bool,
    /// Commands and data bytes interpreted.
    pub commands: usize,
    pub data_bytes: usize,
    pub transactions: usize,
}

impl OledModel {
    pub fn new(chip: Chip, rows: usize) -> OledModel {
        OledModel {
            chip,
            rows,
            ram: vec![[0x5A; 132]; 8], // power-on RAM is garbage
            mode: 2,                   // reset: page addressing
            col_start: 0,
            col_end: 127,
            page_start: 0,
            page_end: 7,
            col: 0,
            page: 0,
            on: false,
            charge_pump: false,
            mux: None,
            com_pins: None,
            start_line: 0,
            offset: 0,
            seg_remap: false,
            com_reversed: false,
            inverted: false,
            entire_on: false,
            scrolling: false,
            commands: 0,
            data_bytes: 0,
            transactions: 0,
        }
    }

    fn ram_columns(&self) -> usize {
        match self.chip {
            Chip::Ssd1306 => 128,
            Chip::Sh1106 { .. } => 132,
        }
    }

    /// Feeds every recorded transaction.
    pub fn feed(&mut self, transactions: &[Vec<u8>]) {
        for t in transactions {
            self.transaction(t);
        }
    }

    /// One I2C write: control byte(s), then commands or data.
    pub fn transaction(&mut self, bytes: &[u8]) {
        self.transactions += 1;
        let mut pending: Vec<u8> = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            let control = bytes[i];
            i += 1;
            assert_eq!(control & 0x3F, 0, "bad control byte {control:#04x}");
            let continuation = control & 0x80 != 0; // Co: one byte, then another control byte
            let data = control & 0x40 != 0; // D/C#
            let body = if continuation {
                assert!(i < bytes.len(), "control byte without its byte");
                i += 1;
                &bytes[i - 1..i]
            } else {
                let rest = &bytes[i..];
                i = bytes.len();
                rest
            };
            for &b in body {
                if data {
                    assert!(pending.is_empty(), "data in the middle of a command");
                    self.data(b);
                } else {
                    pending.push(b);
                    if pending.len() == 1 + self.arguments(pending[0]) {
                        let command = std::mem::take(&mut pending);
                        self.command(&command);
                    }
                }
            }
        }
        assert!(
            pending.is_empty(),
            "command {pending:02x?} split across transactions"
        );
    }

    fn arguments(&self, op: u8) -> usize {
        match (self.chip, op) {
            (Chip::Ssd1306, 0x20 | 0x8D) => 1,
            (Chip::Ssd1306, 0x21 | 0x22 | 0xA3) => 2,
            (Chip::Ssd1306, 0x26 | 0x27) => 6,
            (Chip::Ssd1306, 0x29 | 0x2A) => 5,
            (Chip::Sh1106 { .. }, 0xAD) => 1,
            (_, 0x81 | 0xA8 | 0xD3 | 0xD5 | 0xD9 | 0xDA | 0xDB) => 1,
            _ => 0,
        }
    }

    fn command(&mut self, c: &[u8]) {
        self.commands += 1;
        let sh = matches!(self.chip, Chip::Sh1106 { .. });
        match c[0] {
            0x00..=0x0F => self.col = (self.col & 0xF0) | usize::from(c[0] & 0x0F),
            0x10..=0x1F => self.col = (self.col & 0x0F) | (usize::from(c[0] & 0x0F) << 4),
            0x20 if !sh => {
                assert!(c[1] <= 2, "bad addressing mode");
                self.mode = c[1];
            }
            0x21 if !sh => {
                (self.col_start, self.col_end) = (usize::from(c[1]), usize::from(c[2]));
                assert!(
                    self.col_start <= self.col_end && self.col_end < 128,
                    "column range {c:02x?}"
                );
                self.col = self.col_start;
            }
            0x22 if !sh => {
                (self.page_start, self.page_end) = (usize::from(c[1]), usize::from(c[2]));
                assert!(
                    self.page_start <= self.page_end && self.page_end < 8,
                    "page range {c:02x?}"
                );
                self.page = self.page_start;
            }
            0x26 | 0x27 | 0x29 | 0x2A | 0xA3 if !sh => {}
            0x2E if !sh => self.scrolling = false,
            0x2F if !sh => self.scrolling = true,
            0x30..=0x33 if sh => {} // pump voltage
            0x40..=0x7F => self.start_line = c[0] & 0x3F,
            0x81 => {}
            0x8D if !sh => self.charge_pump = c[1] == 0x14,
            0xAD if sh => self.charge_pump = c[1] == 0x8B,
            0xA0 | 0xA1 => self.seg_remap = c[0] == 0xA1,
            0xA4 | 0xA5 => self.entire_on = c[0] == 0xA5,
            0xA6 | 0xA7 => self.inverted = c[0] == 0xA7,
            0xA8 => self.mux = Some(c[1]),
            0xAE | 0xAF => {
                if sh && c[0] == 0xAF {
                    // The SH1106 takes the DC-DC setting only while the display is off.
                    assert!(self.charge_pump, "display on before the DC-DC converter");
                }
                self.on = c[0] == 0xAF;
            }
            0xB0..=0xB7 => self.page = usize::from(c[0] & 0x07),
            0xC0 | 0xC8 => self.com_reversed = c[0] == 0xC8,
            0xD3 => self.offset = c[1],
            0xD5 | 0xD9 | 0xDB => {}
            0xDA => self.com_pins = Some(c[1]),
            0xE3 => {}
            0xE0 | 0xEE if sh => {}
            op => panic!("{:?} has no command {op:#04x}", self.chip),
        }
    }

    fn data(&mut self, b: u8) {
        self.data_bytes += 1;
        assert!(
            self.col < self.ram_columns(),
            "data past column {}",
            self.ram_columns() - 1
        );
        self.ram[self.page][self.col] = b;
        match (self.chip, self.mode) {
            (Chip::Ssd1306, 0) => {
                self.col += 1;
                if self.col > self.col_end {
                    self.col = self.col_start;
                    self.page = if self.page >= self.page_end {
                        self.page_start
                    } else {
                        self.page + 1
                    };
                }
            }
            (Chip::Ssd1306, 2) | (Chip::Sh1106 { .. }, _) => self.col += 1,
            (_, mode) => panic!("addressing mode {mode} not modelled"),
        }
    }

    /// What the glass shows: `rows × 128`, `true` = lit. Panics when the panel would not show a
    /// correct, upright picture.
    pub fn glass(&self) -> Vec<Vec<bool>> {
        assert!(self.on, "display is off");
        assert!(self.charge_pump, "charge pump off: the panel stays dark");
        assert_eq!(self.mux, Some(self.rows as u8 - 1), "multiplex ratio");
        let pins = if self.rows == 64 { 0x12 } else { 0x02 };
        assert_eq!(
            self.com_pins,
            Some(pins),
            "COM pins configuration for {} rows",
            self.rows
        );
        assert_eq!(
            (self.start_line, self.offset),
            (0, 0),
            "start line and offset"
        );
        assert!(
            self.seg_remap && self.com_reversed,
            "the picture would be mirrored on the usual modules"
        );
        assert!(
            !self.inverted && !self.entire_on && !self.scrolling,
            "inverted, all-on or scrolling"
        );
        let first = match self.chip {
            Chip::Ssd1306 => 0,
            Chip::Sh1106 { offset } => offset,
        };
        (0..self.rows)
            .map(|y| {
                (0..128)
                    .map(|x| self.ram[y / 8][first + x] & (1 << (y % 8)) != 0)
                    .collect()
            })
            .collect()
    }
}
