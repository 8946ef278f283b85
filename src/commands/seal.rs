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

/// The settings from their values (flag, environment, board profile: resolved by `config`).
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

#[cfg(test)]
#[cfg(feature = "seal")]
mod tests {
    use crate::config::Settings;
    use crate::error::Error;
    use crate::seal::{Choice, DEFAULT_TPM};

    /// The settings with a store given (so no home directory is needed).
    fn resolve(args: &[&str], env: &[(&str, &str)]) -> Result<Settings, Error> {
        let mut env = env.to_vec();
        env.push(("SFPAIR_STORE", "file:/var/lib/sfpair/token"));
        crate::config::tests::resolve(args, &env)
    }

    #[test]
    fn the_settings_come_from_flags_then_the_environment_and_refuse_what_they_must() {
        let s = resolve(&["token"], &[]).unwrap();
        assert_eq!(s.seal.seal, None, "not given: like what is stored");
        assert_eq!(s.seal.ways.tpm, DEFAULT_TPM);
        let s = resolve(
            &[
                "pair",
                "--seal",
                "tpm2",
                "--tpm",
                "swtpm:host=127.0.0.1,port=2321",
            ],
            &[
                ("SFPAIR_SEAL", "none"),
                ("SFPAIR_PKCS11_MODULE", "/lib/p11.so"),
            ],
        )
        .unwrap();
        assert_eq!(
            s.seal.seal,
            Some(Choice::Tpm2),
            "the flag beats the variable"
        );
        assert_eq!(s.seal.ways.tpm, "swtpm:host=127.0.0.1,port=2321");
        assert_eq!(
            s.seal.ways.pkcs11_module.as_deref(),
            Some(std::path::Path::new("/lib/p11.so"))
        );
        let s = resolve(&["pair"], &[("SFPAIR_SEAL", "pkcs11:token=a;object=b")]).unwrap();
        assert_eq!(
            s.seal.seal,
            Some(Choice::Pkcs11("pkcs11:token=a;object=b".into()))
        );
        for (args, env, needle) in [
            (
                &["pair", "--seal", "tpm"][..],
                &[][..],
                "unknown --seal 'tpm'",
            ),
            (&["pair", "--seal", ""], &[], "--seal is empty"),
            (
                &["pair"],
                &[("SFPAIR_SEAL", "pkcs11:object=k?pin-value=4321")],
                "PIN itself",
            ),
            (
                &["pair", "--pkcs11-pin-file", ""],
                &[],
                "--pkcs11-pin-file is empty",
            ),
        ] {
            let e = resolve(args, env).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}");
            assert!(e.message().contains(needle), "{args:?}: {e}");
            assert!(!e.message().contains("4321"), "the PIN is never shown: {e}");
        }
        let e = crate::cli::parse(["sfpair", "pair", "--pkcs11-pin", "4321"].map(Into::into))
            .unwrap_err();
        assert!(e.message().contains("--pkcs11-pin-file"), "{e}");
        assert!(!e.message().contains("4321"), "{e}");
    }

    #[cfg(feature = "boards")]
    #[test]
    fn a_board_profile_seals_and_flags_and_the_environment_beat_it() {
        let dir = std::env::temp_dir().join(format!("sfpair-seal-board-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let profile = dir.join("board.toml");
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("boards/raspberry-pi-4.toml"),
        )
        .unwrap()
        .replace(
            "[store]\n",
            "[store]\nseal = \"tpm2\"\ntpm = \"/dev/tpmrm1\"\n",
        )
        .replace("MYDOMAIN", "acme");
        std::fs::write(&profile, text).unwrap();
        std::fs::copy(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("boards/raspberry-pi-4.service"),
            dir.join("raspberry-pi-4.service"),
        )
        .unwrap();
        let board = [("SFPAIR_BOARD", profile.to_str().unwrap())];
        let s = resolve(&["pair"], &board).unwrap();
        assert_eq!(s.seal.seal, Some(Choice::Tpm2));
        assert_eq!(s.seal.ways.tpm, "/dev/tpmrm1");
        let s = resolve(&["pair", "--seal", "none"], &board).unwrap();
        assert_eq!(s.seal.seal, Some(Choice::None));
        let mut env = board.to_vec();
        env.push(("SFPAIR_SEAL", "systemd-creds"));
        assert_eq!(
            resolve(&["pair"], &env).unwrap().seal.seal,
            Some(Choice::SystemdCreds)
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_key_in_a_token_is_stored_as_its_uri_and_a_key_file_as_an_absolute_path() {
        let enrol = |key: &str| {
            resolve(
                &[
                    "pair",
                    "--flow",
                    "jwt-bearer",
                    "--client-id",
                    "K",
                    "--username",
                    "u@x",
                    "--key-file",
                    key,
                ],
                &[],
            )
            .unwrap()
            .enrolment()
        };
        let grant = enrol("pkcs11:token=dev;object=device")
            .unwrap()
            .unwrap()
            .grant;
        let key_file = |g: &crate::store::record::Grant| match g.headless() {
            Some(crate::store::record::Headless::JwtBearer { key_file, .. }) => key_file.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(key_file(&grant), "pkcs11:token=dev;object=device");
        let grant = enrol("device.key").unwrap().unwrap().grant;
        assert!(key_file(&grant).starts_with('/'), "{}", key_file(&grant));
        let e = enrol("pkcs11:token=dev").unwrap_err();
        assert!(e.message().contains("names no object"), "{e}");
    }
}
