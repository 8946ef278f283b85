//! Board profiles: one plain-data file per supported board (`boards/NAME.toml`) that says which
//! binary it runs, which panel shows the code, where the pairing is stored, which org it pairs
//! with and which service unit starts it. `sfpair --board FILE` (or `SFPAIR_BOARD`) loads one as
//! a settings layer between the environment and the defaults.
//!
//! The file's form is checked here (known keys, required ones, absolute paths, device names);
//! what a panel or a store may be is not: a panel is built by `present::spec::panel` and a
//! store by `store::Spec::parse`, the same code the command line goes through, so a profile and
//! the command line can never disagree (the `board_profile` fuzz target holds it to that). The
//! profile is parsed once into those types. Opening a store or a panel touches the device and is
//! not done here. No `#[cfg]` per board: the differences between boards are data.

mod tiny_toml;

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::present::spec::{self, Display};
use crate::store;
use tiny_toml::{Entry, Value};

/// The Rust targets there is a build for (`scripts/lib/arm.sh` builds exactly these).
pub const TARGETS: [&str; 4] = [
    "armv7-unknown-linux-gnueabihf",
    "aarch64-unknown-linux-gnu",
    "aarch64-unknown-linux-musl",
    "arm-unknown-linux-musleabihf",
];

/// A display kind that means "no panel"; the others are `present::spec::PANEL_KINDS`.
pub const NO_PANEL: &str = "none";

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
    (
        "store",
        &[
            "kind",
            "path",
            "seal",
            "tpm",
            "pkcs11_module",
            "pkcs11_pin_file",
        ],
    ),
    (
        "salesforce",
        &[
            "login_url",
            "client_id",
            "scope",
            "ca_file",
            "flow",
            "key_file",
            "username",
            "audience",
        ],
    ),
    ("service", &["systemd", "init"]),
];

/// A validated profile, parsed into the types the settings use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Board {
    /// The profile file, for messages.
    pub path: PathBuf,
    pub name: String,
    /// One of [`TARGETS`]: which binary goes on this board.
    pub target: String,
    /// The panel that shows the code, if the board has one.
    pub panel: Option<Display>,
    /// What the console shows besides the panel: `Text`, `Console`, or nothing.
    pub console: Option<Display>,
    pub store: store::Spec,
    /// May still hold [`LOGIN_URL_PLACEHOLDER`].
    pub login_url: String,
    pub client_id: Option<String>,
    pub scope: Option<String>,
    pub ca_file: Option<String>,
    /// The headless grant settings, as `--flow`, `--key-file`, `--username`, `--audience`.
    pub flow: Option<String>,
    pub key_file: Option<String>,
    pub username: Option<String>,
    pub audience: Option<String>,
    /// Sealing, as `--seal`, `--tpm`, `--pkcs11-module`, `--pkcs11-pin-file` (checked where
    /// the settings are resolved, like those flags).
    pub seal: [Option<String>; 4],
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
        let text = crate::files::read_small(path, 64 * 1024).map_err(|e| {
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
        let kinds: Vec<&str> = spec::PANEL_KINDS
            .iter()
            .copied()
            .chain([NO_PANEL])
            .collect();
        f.one_of(line, "display kind", &kind, &kinds)?;
        let device = f.text("display", "device")?;
        let address = f.number("display", "address")?;
        let width = f.number("display", "width")?;
        let height = f.number("display", "height")?;
        let panel = Board::panel(&f, line, kind, device, address, width, height)?;
        let console = match f.text("display", "console")? {
            None => Some(Display::Text),
            Some((line, console)) => {
                f.one_of(line, "console", &console, &CONSOLE_KINDS)?;
                match console.as_str() {
                    "none" => None,
                    other => Some(spec::display(other).map_err(|e| f.fail(line, e.message()))?),
                }
            }
        };

        let (kind_line, store_kind) = f.required_text("store", "kind", "\"file\"")?;
        f.one_of(kind_line, "store kind", &store_kind, &STORE_KINDS)?;
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
        let store = store::Spec::parse(&format!("{store_kind}:{store_path}"))
            .map_err(|e| f.fail(kind_line, e.message()))?;
        let seal = ["seal", "tpm", "pkcs11_module", "pkcs11_pin_file"]
            .map(|key| f.text("store", key).map(|v| v.map(|(_, v)| v)));
        let [a, b, c, d] = seal;
        let seal = [a?, b?, c?, d?];

        let (line, login_url) = f.required_text(
            "salesforce",
            "login_url",
            "\"https://MYDOMAIN.my.salesforce.com\"",
        )?;
        // The placeholder is allowed here (the profile is a template until an integrator fills
        // it in); `for_settings` refuses to pair with it. The rest of the URL must be valid.
        crate::login_url::check(&login_url.replace(LOGIN_URL_PLACEHOLDER, "mydomain"))
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

        let flow = f.text("salesforce", "flow")?.map(|(_, v)| v);
        let key_file = match f.text("salesforce", "key_file")? {
            Some((line, key)) => {
                // A key in a PKCS#11 token is a URI (docs/sealing.md), else an absolute path.
                if !key.starts_with("pkcs11:") {
                    f.absolute(line, "key_file", &key)?;
                }
                Some(key)
            }
            None => None,
        };
        let username = f.text("salesforce", "username")?.map(|(_, v)| v);
        let audience = f.text("salesforce", "audience")?.map(|(_, v)| v);

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
            store,
            login_url,
            client_id,
            scope,
            ca_file,
            flow,
            key_file,
            username,
            audience,
            seal,
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
    ) -> Result<Option<Display>, Error> {
        let i2c = kind == "ssd1306" || kind.starts_with("sh1106");
        if kind == NO_PANEL {
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
        // The profile names real devices: a typo here would only show at boot.
        let prefix = match kind.as_str() {
            _ if i2c => Some("/dev/i2c-"),
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
        if i2c && address.is_none() {
            return Err(f.fail(
                kind_line,
                format!("an I2C panel needs 'address' (0x3C or 0x3D for a {kind})"),
            ));
        }
        let size = match (width, height) {
            (None, None) => None,
            (Some((_, w)), Some((_, h))) => Some((clamp(w), clamp(h))),
            (Some((line, _)), None) | (None, Some((line, _))) => {
                return Err(f.fail(line, "give both 'width' and 'height', or neither"));
            }
        };
        // Everything about what sfpair can drive (addresses, sizes, controllers) is the
        // `--display` rule's to say: with the address's line, or the panel kind's.
        let address_line = address.map_or(kind_line, |a| a.0);
        let address = address.map(|(_, a)| u16::try_from(a).unwrap_or(u16::MAX));
        spec::panel(&kind, &device, address, size)
            .map(Some)
            .map_err(|why| match why {
                spec::Why::Address(_) => f.fail(address_line, why.text()),
                _ => f.fail(kind_line, why.text()),
            })
    }

    /// The displays this board stands for: its panel, then its console.
    pub fn displays(&self) -> Vec<Display> {
        self.panel.iter().chain(&self.console).cloned().collect()
    }

    /// What this profile answers for a text setting's `SFPAIR_*` variable: the board layer sits
    /// between the environment and the defaults, so it answers exactly like the environment
    /// does. Typed settings (the store, the displays) are read from the fields.
    pub fn env_value(&self, var: &str) -> Option<String> {
        match var {
            "SFPAIR_LOGIN_URL" if !self.login_url_is_placeholder() => Some(self.login_url.clone()),
            "SFPAIR_CLIENT_ID" => self.client_id.clone(),
            "SFPAIR_SCOPE" => self.scope.clone(),
            "SFPAIR_CA_FILE" => self.ca_file.clone(),
            "SFPAIR_FLOW" => self.flow.clone(),
            "SFPAIR_KEY_FILE" => self.key_file.clone(),
            "SFPAIR_USERNAME" => self.username.clone(),
            "SFPAIR_AUDIENCE" => self.audience.clone(),
            "SFPAIR_SEAL" => self.seal[0].clone(),
            "SFPAIR_TPM" => self.seal[1].clone(),
            "SFPAIR_PKCS11_MODULE" => self.seal[2].clone(),
            "SFPAIR_PKCS11_PIN_FILE" => self.seal[3].clone(),
            _ => None,
        }
    }

    pub fn login_url_is_placeholder(&self) -> bool {
        self.login_url.contains(LOGIN_URL_PLACEHOLDER)
    }
}

/// A profile number as a pixel count for the display rule to judge (a huge one stays huge).
fn clamp(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// `/dev/mtdN`: the MTD character device (not `mtdblockN`, not `mtdNro`).
fn is_mtd_char_device(path: &str) -> bool {
    path.strip_prefix("/dev/mtd")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests;
