//! Board profiles: one plain-data file per supported board (`boards/NAME.toml`) that says which
//! binary it runs, which panel shows the code, where the pairing is stored, which org it pairs
//! with and which service unit starts it. `sfpair --board FILE` (or `SFPAIR_BOARD`) loads one as
//! a settings layer between the environment and the defaults.
//!
//! Fields are checked one by one here (kinds from the lists below, paths, addresses, sizes);
//! a panel as a whole is then checked by the same parser as `--display`, so a profile that
//! validates never yields a display value the command line would refuse (the `board_profile`
//! fuzz target holds it to that). Store kinds are checked by name only: opening a store touches
//! the device. No `#[cfg]` per board: the differences between boards are data.

mod tiny_toml;

use std::path::{Path, PathBuf};

use crate::cli::Args;
use crate::error::Error;
use tiny_toml::{Entry, Value};

/// The Rust targets there is a build for (`scripts/lib/arm.sh` builds exactly these).
pub const TARGETS: [&str; 4] = [
    "armv7-unknown-linux-gnueabihf",
    "aarch64-unknown-linux-gnu",
    "aarch64-unknown-linux-musl",
    "arm-unknown-linux-musleabihf",
];

/// Panel kinds a profile may name, with the `--display` form each becomes:
/// `ssd1306` / `sh1106` (I2C OLED: `KIND:BUS@0xADDR`, plus `:WxH` when not 128×64), `fb`
/// (Linux framebuffer: `fb:DEVICE`, geometry from the device), `pbm` (frame files:
/// `pbm:PATH:WxH`), `none` (no panel).
pub const DISPLAY_KINDS: [&str; 5] = ["ssd1306", "sh1106", "fb", "pbm", "none"];

/// What the console (standard output: the journal, a serial console) shows besides the panel.
pub const CONSOLE_KINDS: [&str; 3] = ["text", "console", "none"];

/// Store kinds a profile may name; the spec is `KIND:PATH`.
pub const STORE_KINDS: [&str; 3] = ["file", "mtd", "flash-image"];

/// Marks a login URL the integrator has not filled in yet (`https://MYDOMAIN.my.salesforce.com`).
pub const LOGIN_URL_PLACEHOLDER: &str = "MYDOMAIN";

/// Every table and key a profile may use.
const KEYS: [(&str, &[&str]); 5] = [
    ("", &["name", "target"]),
    (
        "display",
        &["kind", "device", "address", "width", "height", "console"],
    ),
    ("store", &["kind", "path"]),
    (
        "salesforce",
        &["login_url", "client_id", "scope", "ca_file"],
    ),
    ("service", &["systemd", "init"]),
];

/// A panel on the board.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Panel {
    /// One of [`DISPLAY_KINDS`] other than `none`.
    pub kind: String,
    /// The I2C bus, framebuffer device or frame file.
    pub device: String,
    /// 7-bit I2C address (I2C panels only).
    pub address: Option<u8>,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

impl Panel {
    /// The `--display` value for this panel (`ssd1306:/dev/i2c-1@0x3c`, `fb:/dev/fb1`, …).
    pub fn display_spec(&self) -> String {
        let size = match (self.width, self.height) {
            (Some(w), Some(h)) => format!(":{w}x{h}"),
            _ => String::new(),
        };
        match self.address {
            Some(a) if size == ":128x64" => format!("{}:{}@{a:#04x}", self.kind, self.device),
            Some(a) => format!("{}:{}@{a:#04x}{size}", self.kind, self.device),
            None => format!("{}:{}{size}", self.kind, self.device),
        }
    }
}

/// One board profile, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Board {
    /// The profile file, for messages.
    pub path: PathBuf,
    pub name: String,
    /// One of [`TARGETS`]: which binary goes on this board.
    pub target: String,
    pub panel: Option<Panel>,
    /// One of [`CONSOLE_KINDS`].
    pub console: String,
    /// A `--store` spec, `KIND:PATH`.
    pub store: String,
    /// May still hold [`LOGIN_URL_PLACEHOLDER`].
    pub login_url: String,
    pub client_id: Option<String>,
    pub scope: Option<String>,
    pub ca_file: Option<String>,
    /// Service files, relative to the profile's directory.
    pub systemd_unit: Option<String>,
    pub init_script: Option<String>,
}

/// The profile's entries, taken one by one as they are validated.
struct Fields<'a> {
    path: &'a Path,
    entries: Vec<Entry>,
}

impl Fields<'_> {
    fn fail(&self, line: usize, message: impl std::fmt::Display) -> Error {
        Error::config(format!(
            "board profile {}:{line}: {message}",
            self.path.display()
        ))
    }

    fn missing(&self, table: &str, key: &str, example: &str) -> Error {
        let place = if table.is_empty() {
            "at the top".to_string()
        } else {
            format!("in [{table}]")
        };
        Error::config(format!(
            "board profile {}: '{key}' is missing {place} (for example {key} = {example})",
            self.path.display()
        ))
    }

    fn take(&mut self, table: &str, key: &str) -> Option<Entry> {
        let at = self
            .entries
            .iter()
            .position(|e| e.table == table && e.key == key)?;
        Some(self.entries.remove(at))
    }

    fn text(&mut self, table: &str, key: &str) -> Result<Option<(usize, String)>, Error> {
        match self.take(table, key) {
            None => Ok(None),
            Some(Entry {
                line,
                value: Value::Str(s),
                ..
            }) if !s.trim().is_empty() => Ok(Some((line, s))),
            Some(e) => Err(self.fail(e.line, format!("'{key}' needs non-empty quoted text"))),
        }
    }

    fn required_text(
        &mut self,
        table: &str,
        key: &str,
        example: &str,
    ) -> Result<(usize, String), Error> {
        self.text(table, key)?
            .ok_or_else(|| self.missing(table, key, example))
    }

    fn number(&mut self, table: &str, key: &str) -> Result<Option<(usize, u64)>, Error> {
        match self.take(table, key) {
            None => Ok(None),
            Some(Entry {
                line,
                value: Value::Int(n),
                ..
            }) => Ok(Some((line, n))),
            Some(e) => Err(self.fail(
                e.line,
                format!("'{key}' needs a whole number, not {}", e.value),
            )),
        }
    }

    fn one_of(&self, line: usize, key: &str, value: &str, allowed: &[&str]) -> Result<(), Error> {
        if allowed.contains(&value) {
            Ok(())
        } else {
            Err(self.fail(
                line,
                format!("unknown {key} '{value}': use one of {}", allowed.join(", ")),
            ))
        }
    }

    fn absolute(&self, line: usize, key: &str, value: &str) -> Result<(), Error> {
        if value.starts_with('/') {
            Ok(())
        } else {
            Err(self.fail(
                line,
                format!("'{key}' must be an absolute path, not '{value}'"),
            ))
        }
    }
}

impl Board {
    /// Reads and validates the profile at `path`.
    pub fn load(path: &Path) -> Result<Board, Error> {
        // A profile is a few hundred bytes; a path like /dev/zero must not hang the agent.
        let text = crate::config::read_small(path, 64 * 1024).map_err(|e| {
            Error::config(format!(
                "cannot read the board profile {}: {e}",
                path.display()
            ))
        })?;
        Board::parse(path, &text)
    }

    /// Validates a profile's text; `path` is only for messages.
    pub fn parse(path: &Path, text: &str) -> Result<Board, Error> {
        let entries = tiny_toml::parse(text).map_err(|e| {
            Error::config(format!(
                "board profile {}:{}: {}",
                path.display(),
                e.line,
                e.message
            ))
        })?;
        let mut f = Fields { path, entries };
        // Unknown keys first: a misspelt table or key explains a "missing" one, and must never
        // pass silently.
        for e in &f.entries {
            let known = KEYS.iter().find(|(table, _)| *table == e.table);
            if !known.is_some_and(|(_, keys)| keys.contains(&e.key.as_str())) {
                let place = if e.table.is_empty() {
                    "at the top".to_string()
                } else {
                    format!("in [{}]", e.table)
                };
                return Err(f.fail(
                    e.line,
                    format!(
                        "unknown key '{}' {place} (boards/README.md lists the keys)",
                        e.key
                    ),
                ));
            }
        }

        let (_, name) = f.required_text("", "name", "\"Raspberry Pi 4\"")?;
        let (line, target) = f.required_text("", "target", "\"aarch64-unknown-linux-gnu\"")?;
        f.one_of(line, "target", &target, &TARGETS)?;

        let (line, kind) = f.required_text("display", "kind", "\"ssd1306\"")?;
        f.one_of(line, "display kind", &kind, &DISPLAY_KINDS)?;
        let device = f.text("display", "device")?;
        let address = f.number("display", "address")?;
        let width = f.number("display", "width")?;
        let height = f.number("display", "height")?;
        let panel = Board::panel(&f, line, kind, device, address, width, height)?;
        let console = match f.text("display", "console")? {
            None => "text".to_string(),
            Some((line, console)) => {
                f.one_of(line, "console", &console, &CONSOLE_KINDS)?;
                console
            }
        };

        let (line, store_kind) = f.required_text("store", "kind", "\"file\"")?;
        f.one_of(line, "store kind", &store_kind, &STORE_KINDS)?;
        let (line, store_path) = f.required_text("store", "path", "\"/var/lib/sfpair/token\"")?;
        f.absolute(line, "path", &store_path)?;
        if store_kind == "mtd" && !is_mtd_char_device(&store_path) {
            return Err(f.fail(
                line,
                format!(
                    "an mtd store is a character device /dev/mtdN, not '{store_path}' \
                     (/dev/mtdblockN goes through a block cache that can lose a write on power cut)"
                ),
            ));
        }

        let (line, login_url) = f.required_text(
            "salesforce",
            "login_url",
            "\"https://MYDOMAIN.my.salesforce.com\"",
        )?;
        // The placeholder is allowed here (the profile is a template until an integrator fills
        // it in); `for_settings` refuses to pair with it. The rest of the URL must be valid.
        crate::config::login_url(&login_url.replace(LOGIN_URL_PLACEHOLDER, "mydomain"))
            .map_err(|e| f.fail(line, e.message()))?;
        let client_id = f.text("salesforce", "client_id")?.map(|(_, v)| v);
        let scope = f.text("salesforce", "scope")?.map(|(_, v)| v);
        let ca_file = match f.text("salesforce", "ca_file")? {
            Some((line, ca)) => {
                f.absolute(line, "ca_file", &ca)?;
                Some(ca)
            }
            None => None,
        };

        let systemd_unit = f.text("service", "systemd")?.map(|(_, v)| v);
        let init_script = f.text("service", "init")?.map(|(_, v)| v);
        if systemd_unit.is_none() && init_script.is_none() {
            return Err(f.missing("service", "systemd", "\"raspberry-pi-4.service\""));
        }

        Ok(Board {
            path: path.to_path_buf(),
            name,
            target,
            panel,
            console,
            store: format!("{store_kind}:{store_path}"),
            login_url,
            client_id,
            scope,
            ca_file,
            systemd_unit,
            init_script,
        })
    }

    fn panel(
        f: &Fields,
        kind_line: usize,
        kind: String,
        device: Option<(usize, String)>,
        address: Option<(usize, u64)>,
        width: Option<(usize, u64)>,
        height: Option<(usize, u64)>,
    ) -> Result<Option<Panel>, Error> {
        let i2c = kind == "ssd1306" || kind == "sh1106";
        if kind == "none" {
            let given = [device.as_ref().map(|d| d.0), address.map(|a| a.0)];
            let given = given
                .into_iter()
                .chain([width.map(|w| w.0), height.map(|h| h.0)]);
            if let Some(line) = given.flatten().min() {
                return Err(f.fail(
                    line,
                    "display kind \"none\" takes no device, address or size",
                ));
            }
            return Ok(None);
        }
        let (device_line, device) = device.ok_or_else(|| {
            f.fail(
                kind_line,
                format!(
                    "display kind \"{kind}\" needs 'device' (\"/dev/i2c-1\", \"/dev/fb1\" or a file)"
                ),
            )
        })?;
        f.absolute(device_line, "device", &device)?;
        let prefix = match kind.as_str() {
            "ssd1306" | "sh1106" => Some("/dev/i2c-"),
            "fb" => Some("/dev/fb"),
            _ => None,
        };
        if let Some(prefix) = prefix
            && !device
                .strip_prefix(prefix)
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(f.fail(
                device_line,
                format!("a {kind} panel's device is {prefix}N, not '{device}'"),
            ));
        }
        let address = match (i2c, address) {
            (true, None) => {
                return Err(f.fail(
                    kind_line,
                    format!("an I2C panel needs 'address' (0x3C or 0x3D for a {kind})"),
                ));
            }
            // 0x08..=0x77: the 7-bit addresses I2C leaves to devices.
            (true, Some((line, a))) if !(0x08..=0x77).contains(&a) => {
                return Err(f.fail(line, format!("I2C address {a:#04x} is outside 0x08..0x77")));
            }
            (true, Some((_, a))) => Some(a as u8),
            (false, Some((line, _))) => {
                return Err(f.fail(line, format!("a {kind} display has no I2C address")));
            }
            (false, None) => None,
        };
        let mut size = [None, None];
        for (slot, value, what) in [(0, width, "width"), (1, height, "height")] {
            size[slot] = match (kind.as_str(), value) {
                ("fb", Some((line, _))) => {
                    return Err(f.fail(
                        line,
                        format!("a framebuffer's {what} comes from the device: leave it out"),
                    ));
                }
                ("fb", None) => None,
                (_, None) => {
                    return Err(f.fail(kind_line, format!("a {kind} panel needs '{what}'")));
                }
                (_, Some((line, v))) if !(8..=4096).contains(&v) => {
                    return Err(f.fail(line, format!("{what} {v} is outside 8..4096 pixels")));
                }
                (_, Some((_, v))) => Some(v as u32),
            };
        }
        let panel = Panel {
            kind,
            device,
            address,
            width: size[0],
            height: size[1],
        };
        // The fields are fine one by one; whether the panel as a whole is one sfpair can drive
        // (an SSD1306 is 128x64 or 128x32, say) is for the same parser as `--display` to say.
        crate::present::spec::display(&panel.display_spec())
            .map_err(|e| f.fail(kind_line, e.message().to_string()))?;
        Ok(Some(panel))
    }

    /// The `--display` values this board stands for: its panel, then its console.
    pub fn display_specs(&self) -> Vec<String> {
        let mut specs = Vec::new();
        if let Some(p) = &self.panel {
            specs.push(p.display_spec());
        }
        if self.console != "none" {
            specs.push(self.console.clone());
        }
        specs
    }

    /// What this profile answers for an `SFPAIR_*` variable: the board layer sits between the
    /// environment and the defaults, so it answers exactly like the environment does.
    pub fn env_value(&self, var: &str) -> Option<String> {
        match var {
            "SFPAIR_LOGIN_URL" if !self.login_url_is_placeholder() => Some(self.login_url.clone()),
            "SFPAIR_CLIENT_ID" => self.client_id.clone(),
            "SFPAIR_SCOPE" => self.scope.clone(),
            "SFPAIR_CA_FILE" => self.ca_file.clone(),
            "SFPAIR_STORE" => Some(self.store.clone()),
            _ => None,
        }
    }

    pub fn login_url_is_placeholder(&self) -> bool {
        self.login_url.contains(LOGIN_URL_PLACEHOLDER)
    }

    /// The profile named by `--board` or `SFPAIR_BOARD`, if any. Refuses a profile whose
    /// login URL is still the placeholder unless a flag or the environment gives the URL.
    pub fn for_settings(
        args: &Args,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Board>, Error> {
        let given = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        let Some(path) = args
            .board
            .clone()
            .or_else(|| given(env("SFPAIR_BOARD")).map(PathBuf::from))
        else {
            return Ok(None);
        };
        let board = Board::load(&path)?;
        let url_given =
            given(args.login_url.clone()).is_some() || given(env("SFPAIR_LOGIN_URL")).is_some();
        if board.login_url_is_placeholder() && !url_given {
            return Err(Error::config(format!(
                "the board profile {} still has the placeholder login_url '{}': put your org's \
                 login URL there (https://login.salesforce.com, https://test.salesforce.com or \
                 https://NAME.my.salesforce.com), or give --login-url / SFPAIR_LOGIN_URL",
                path.display(),
                board.login_url
            )));
        }
        Ok(Some(board))
    }
}

/// `/dev/mtdN`: the MTD character device (not `mtdblockN`, not `mtdNro`).
fn is_mtd_char_device(path: &str) -> bool {
    path.strip_prefix("/dev/mtd")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests;
