//! The sealing settings (docs/sealing.md): `--seal` (what a new pairing is sealed with), and
//! the way to the sealers, `--tpm`, `--pkcs11-module` and `--pkcs11-pin-file`, from the flag,
//! the environment or the board profile's `[store]` (the order is `sources.rs`'s). Checked here
//! (`commands::seal::settings`), before anything runs: an unknown sealer, a sealer this build
//! lacks, or a PIN written into a URI is a usage error that never shows the PIN.
//!
//! Parsing only. The PIN itself is never a setting: `cli.rs` refuses `--pkcs11-pin`.

use super::sources::Sources;
use crate::cli::Opt;
use crate::commands::seal::{self, Settings};
use crate::error::Error;

/// The sealing settings of the command (those it does not take are not read).
pub fn settings(sources: &Sources) -> Result<Settings, Error> {
    seal::settings(
        sources.text(Opt::Seal)?,
        sources.text(Opt::Tpm)?,
        sources.path(Opt::Pkcs11Module)?,
        sources.path(Opt::Pkcs11PinFile)?,
    )
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
        let s = resolve(&["token"], &[("SFPAIR_SEAL", "tpm2")]).unwrap();
        assert_eq!(
            s.seal.seal, None,
            "token stores no new pairing: --seal is not read"
        );
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
        // Only the commands that store a new pairing take --seal.
        let e =
            crate::cli::parse(["sfpair", "unseal", "--seal", "tpm2"].map(Into::into)).unwrap_err();
        assert!(
            e.message().contains("--seal does not apply to unseal"),
            "{e}"
        );
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
            let settings = resolve(
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
            .unwrap();
            crate::config::plan::enrolment(&settings)
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
