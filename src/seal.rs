//! Sealing the stored pairing to the board (docs/sealing.md): the settings (`--seal`, `--tpm`,
//! `--pkcs11-module`, `--pkcs11-pin-file`), the [`Sealer`] seam with one module per sealer,
//! and the store opened through the envelope that uses them (`envelope.rs`).
//!
//! A sealer only seals and unseals a 256-bit data key; the record itself is encrypted by the
//! envelope. Which sealer sealed a record is stored with it (`store/sealed.rs`), so reading a
//! sealed store needs only the way to that sealer (`--tpm`, the PKCS#11 module and PIN), never
//! `--seal` again. Nothing here logs or returns a key; errors say which seal failed and what
//! to do, and are shown as they are (exit 6 when a stored seal cannot be opened).

use std::path::PathBuf;

use zeroize::Zeroizing;

use crate::error::Error;
use crate::store::{self, TokenStore};

#[cfg(any(feature = "systemd-creds", feature = "tpm2"))]
mod child;
pub mod envelope;
#[cfg(feature = "pkcs11")]
pub mod pkcs11;
#[cfg(feature = "systemd-creds")]
pub mod systemd_creds;
#[cfg(feature = "tpm2")]
pub mod tpm2;

/// The data key: AES-256.
pub const KEY_LEN: usize = 32;
/// A data key in memory, wiped when dropped.
pub type DataKey = Zeroizing<[u8; KEY_LEN]>;

/// One way to keep a data key bound to the board.
pub trait Sealer {
    /// The sealed form of `key`, stored with the record. `Err`: why it cannot seal, and what
    /// to do.
    fn seal(&self, key: &[u8; KEY_LEN]) -> Result<Vec<u8>, Error>;
    /// The key inside `sealed`. `Err`: why it cannot be opened here (another board, a cleared
    /// TPM, a missing token, a missing tool) and what to do; the record is then kept as it is.
    fn unseal(&self, sealed: &[u8]) -> Result<DataKey, Error>;
}

/// What `--seal` names.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Choice {
    /// Plain records.
    None,
    /// `systemd-creds`: the data key sealed by `systemd-creds encrypt` (the TPM2 or the host key).
    SystemdCreds,
    /// `tpm2`: the data key sealed to the board's TPM through tpm2-tools.
    Tpm2,
    /// `pkcs11:URI` (RFC 7512): the data key wrapped by the key the URI names.
    Pkcs11(String),
}

impl Choice {
    /// Parses `--seal` / `SFPAIR_SEAL`; a usage error (exit 2) names the choices.
    pub fn parse(value: &str) -> Result<Choice, Error> {
        let choice = match value {
            "none" => Choice::None,
            "systemd-creds" => Choice::SystemdCreds,
            "tpm2" => Choice::Tpm2,
            uri if uri.starts_with("pkcs11:") => Choice::Pkcs11(uri.into()),
            other => {
                return Err(Error::config(format!(
                    "unknown --seal '{other}': use none, systemd-creds, tpm2 or pkcs11:URI \
                     (docs/sealing.md)"
                )));
            }
        };
        if let Some(name) = choice.name() {
            // A sealer this build lacks is refused now, not at the first save.
            maker(&name, &Ways::default()).map_err(Error::config)?;
        }
        Ok(choice)
    }

    /// The sealer's name as stored in a record; `None` for plain.
    pub fn name(&self) -> Option<String> {
        match self {
            Choice::None => None,
            Choice::SystemdCreds => Some("systemd-creds".into()),
            Choice::Tpm2 => Some("tpm2".into()),
            Choice::Pkcs11(uri) => Some(uri.clone()),
        }
    }
}

/// How to reach the sealers: everything but the choice, which the record names.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Ways {
    /// `--tpm`: the TPM as tpm2-tools name it (a TCTI: `device:/dev/tpmrm0`,
    /// `swtpm:host=127.0.0.1,port=2321`); a bare path is a device.
    pub tpm: String,
    /// `--pkcs11-module`: the PKCS#11 module, when the URI has no `module-path`.
    pub pkcs11_module: Option<PathBuf>,
    /// `--pkcs11-pin-file`: the token's user PIN (else the `pkcs11-pin` credential).
    pub pkcs11_pin_file: Option<PathBuf>,
    /// Where a `systemd-creds` seal also writes its credential for a unit's
    /// `LoadCredentialEncrypted=`: beside a file store (`open_store` sets it).
    pub credential_file: Option<PathBuf>,
}

/// The TPM when `--tpm` is not given: the kernel's resource manager.
pub const DEFAULT_TPM: &str = "/dev/tpmrm0";

impl Default for Ways {
    fn default() -> Self {
        Ways {
            tpm: DEFAULT_TPM.into(),
            pkcs11_module: None,
            pkcs11_pin_file: None,
            credential_file: None,
        }
    }
}

/// The sealing settings, validated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Settings {
    /// `--seal`: what a new pairing is sealed with. `None` (not given anywhere): like the
    /// pairing it replaces, plain when nothing is stored.
    pub seal: Option<Choice>,
    /// The sealers' own settings (the TPM's TCTI, the PKCS#11 module and PIN file, the credential's place).
    pub ways: Ways,
}

impl Settings {
    /// From the raw values (flag, else environment, else board profile: `config` resolves
    /// that order). Empty values are the caller's error to report.
    pub fn from_values(
        seal: Option<&str>,
        tpm: Option<&str>,
        pkcs11_module: Option<PathBuf>,
        pkcs11_pin_file: Option<PathBuf>,
    ) -> Result<Settings, Error> {
        Ok(Settings {
            seal: seal.map(Choice::parse).transpose()?,
            ways: Ways {
                tpm: tpm.unwrap_or(DEFAULT_TPM).into(),
                pkcs11_module,
                pkcs11_pin_file,
                credential_file: None,
            },
        })
    }
}

/// Opens the store `spec` names with records sealed as `settings` say.
// Without the `flash` feature a file store is the only kind.
#[allow(irrefutable_let_patterns)]
pub fn open_store(spec: &store::Spec, settings: &Settings) -> Result<Box<dyn TokenStore>, Error> {
    let mut settings = settings.clone();
    if let store::Spec::File(path) = spec {
        settings.ways.credential_file = Some(path.with_file_name(CREDENTIAL_FILE));
    }
    store::open_with(
        spec,
        Box::new(envelope::Sealing::new(settings, Box::new(maker))),
    )
}

/// The `systemd-creds` credential written beside a file store, for a unit's
/// `LoadCredentialEncrypted=sfpair-data-key:PATH` (docs/sealing.md).
pub const CREDENTIAL_FILE: &str = "sfpair-data-key.cred";

/// Builds the sealer a record names, reached as `Ways` say (`Err`: why this build cannot).
pub type Maker = Box<dyn Fn(&str, &Ways) -> Result<Box<dyn Sealer>, String> + Send>;

/// The sealers this build has, by the name a record stores.
// With every sealer built, the arms after the built ones cannot be reached.
#[allow(unreachable_patterns)]
pub fn maker(name: &str, ways: &Ways) -> Result<Box<dyn Sealer>, String> {
    let _ = ways;
    let feature = match name {
        #[cfg(feature = "systemd-creds")]
        "systemd-creds" => {
            return Ok(Box::new(systemd_creds::SystemdCreds {
                credential_file: ways.credential_file.clone(),
            }));
        }
        #[cfg(feature = "tpm2")]
        "tpm2" => return Ok(Box::new(tpm2::Tpm2::new(&ways.tpm))),
        #[cfg(feature = "pkcs11")]
        uri if uri.starts_with("pkcs11:") => {
            return pkcs11::Pkcs11Sealer::new(uri, ways)
                .map(|s| Box::new(s) as Box<dyn Sealer>)
                .map_err(|e| e.message().to_string());
        }
        "systemd-creds" => "systemd-creds",
        "tpm2" => "tpm2",
        uri if uri.starts_with("pkcs11:") => "pkcs11",
        other => return Err(format!("the sealer '{other}' is unknown to this sfpair")),
    };
    Err(format!(
        "{name} sealing is not in this sfpair (the `{feature}` feature): use a build with it \
         (the default build has it)"
    ))
}
