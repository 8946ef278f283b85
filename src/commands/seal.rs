//! `sfpair seal` and `sfpair unseal`: the stored pairing moved to sealed (a new data key, sealed
//! by `--seal`) or back to plain, kept either way: one atomic replace of the store, under its
//! lock, so a power cut leaves the old form or the new one (docs/sealing.md).
//!
//! Also the sealing settings as every command sees them, whatever this build has: a build
//! without sealing refuses `--seal` other than `none`, opens stores plain, and says why it
//! cannot open a sealed one.

use std::io::Write;
use std::path::PathBuf;

use super::Backends;
#[cfg(feature = "seal")]
use super::say;
use crate::error::Error;
#[cfg(feature = "seal")]
use crate::error::ErrorKind;
use crate::headless::signer::KeyAccess;
#[cfg(feature = "seal")]
use crate::store::Loaded;
use crate::store::{self, TokenStore};

/// The sealing settings (`seal::Settings`; in a build without sealing, nothing).
#[cfg(feature = "seal")]
pub use crate::seal::Settings;

#[cfg(not(feature = "seal"))]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    pkcs11_module: Option<PathBuf>,
    pkcs11_pin_file: Option<PathBuf>,
}

/// The settings from their values (flag, environment, board profile: resolved by
/// `config/seal.rs`, whose tests cover this).
pub fn settings(
    seal: Option<String>,
    tpm: Option<String>,
    pkcs11_module: Option<PathBuf>,
    pkcs11_pin_file: Option<PathBuf>,
) -> Result<Settings, Error> {
    #[cfg(feature = "seal")]
    {
        Settings::from_values(
            seal.as_deref(),
            tpm.as_deref(),
            pkcs11_module,
            pkcs11_pin_file,
        )
    }
    #[cfg(not(feature = "seal"))]
    {
        let _ = tpm;
        if seal.is_some_and(|s| s != "none") {
            return Err(super::not_built("--seal", "sealing", "seal"));
        }
        Ok(Settings {
            pkcs11_module,
            pkcs11_pin_file,
        })
    }
}

/// The store `spec` names, sealed as `settings` say.
pub fn open_store(spec: &store::Spec, settings: &Settings) -> Result<Box<dyn TokenStore>, Error> {
    #[cfg(feature = "seal")]
    return crate::seal::open_store(spec, settings);
    #[cfg(not(feature = "seal"))]
    {
        let _ = settings;
        store::open(spec)
    }
}

/// How a JWT bearer key in a token is reached.
pub fn key_access(settings: &Settings) -> KeyAccess {
    #[cfg(feature = "seal")]
    let (module, pin_file) = (&settings.ways.pkcs11_module, &settings.ways.pkcs11_pin_file);
    #[cfg(not(feature = "seal"))]
    let (module, pin_file) = (&settings.pkcs11_module, &settings.pkcs11_pin_file);
    KeyAccess {
        pkcs11_module: module.clone(),
        pkcs11_pin_file: pin_file.clone(),
    }
}

/// `sfpair seal` (`seal`: true) or `sfpair unseal`.
#[cfg(not(feature = "seal"))]
pub fn run(_backends: &Backends, _seal: bool, _out: &mut dyn Write) -> Result<u8, Error> {
    Err(super::not_built(
        "sfpair seal and unseal",
        "sealing",
        "seal",
    ))
}

/// `sfpair seal` (`seal`: true) or `sfpair unseal`.
#[cfg(feature = "seal")]
pub fn run(backends: &Backends, seal: bool, out: &mut dyn Write) -> Result<u8, Error> {
    use crate::seal::Choice;
    let mut settings = backends.seal.clone();
    let target = if seal {
        settings
            .seal
            .clone()
            .filter(|c| *c != Choice::None)
            .ok_or_else(|| {
                Error::config(
                    "sfpair seal needs what to seal with: --seal systemd-creds, tpm2 or \
                     pkcs11:URI (SFPAIR_SEAL)",
                )
            })?
    } else {
        Choice::None
    };
    settings.seal = Some(target.clone());
    let mut store = open_store(&backends.store, &settings)?;
    store.lock()?;
    let done = reform(&mut *store, target.name());
    store.unlock();
    let said = match (done?, target.name()) {
        (false, Some(name)) => format!("already sealed with {name}; nothing changed"),
        (false, None) => "already plain (not sealed); nothing changed".into(),
        (true, Some(name)) => format!("sealed with {name} now, under a new data key"),
        (true, None) => "stored plain now (not sealed)".into(),
    };
    say(
        out,
        format!("The pairing in {} is {said}.", store.describe()),
    )?;
    Ok(0)
}

/// Stores the pairing again in the form `target` names (under the store's lock); `false`
/// when it is in that form already.
#[cfg(feature = "seal")]
fn reform(store: &mut dyn TokenStore, target: Option<String>) -> Result<bool, Error> {
    let record = match store.load()? {
        Loaded::Paired(record) => record,
        Loaded::Empty => {
            return Err(Error::new(
                ErrorKind::NotPaired,
                format!(
                    "not paired ({} is empty): nothing to seal or unseal",
                    store.describe()
                ),
            ));
        }
        Loaded::Corrupt(reason) => {
            return Err(Error::new(
                ErrorKind::NotPaired,
                format!(
                    "the stored pairing in {} is unreadable ({reason}); it is kept as it is",
                    store.describe()
                ),
            ));
        }
        Loaded::Unopened(reason) => return Err(store::unopened(&store.describe(), &reason)),
    };
    if store.sealer()? == target {
        return Ok(false);
    }
    // A new pairing's save: the form the settings ask for, a new data key, one replace.
    store.save(&record)?;
    Ok(true)
}
