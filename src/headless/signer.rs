//! Which key signs a JWT bearer assertion: an RSA key file (`key.rs`, signed with ring), or a
//! key in a PKCS#11 token named by a URI (`--key-file pkcs11:token=…;object=…`), which signs
//! inside the token (`CKM_SHA256_RSA_PKCS` is RS256): that private key never exists in
//! sfpair's memory or files.
//!
//! The record stores what `--key-file` gave (an absolute path, or the URI); how to reach the
//! token (the module and the PIN file) comes from the settings each time, as [`KeyAccess`].

use std::path::{Path, PathBuf};

use crate::error::Error;

/// How to reach a key in a token: `--pkcs11-module` and `--pkcs11-pin-file`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyAccess {
    pub pkcs11_module: Option<PathBuf>,
    pub pkcs11_pin_file: Option<PathBuf>,
}

/// `--key-file` naming a key in a token: the URI, checked; `None` for a key file.
pub fn token_key(key_file: &Path) -> Result<Option<String>, Error> {
    let Some(uri) = key_file.to_str().filter(|k| k.starts_with("pkcs11:")) else {
        return Ok(None);
    };
    #[cfg(feature = "pkcs11")]
    {
        crate::pkcs11::Uri::parse(uri)?;
        Ok(Some(uri.to_string()))
    }
    #[cfg(not(feature = "pkcs11"))]
    {
        let _ = uri;
        Err(not_built())
    }
}

/// The RS256 signature of `message` by the key `key_file` names (a path, or a `pkcs11:` URI).
#[cfg(any(feature = "jwt-bearer", feature = "asset-token"))]
pub fn sign_rs256(key_file: &str, message: &[u8], access: &KeyAccess) -> Result<Vec<u8>, Error> {
    if key_file.starts_with("pkcs11:") {
        #[cfg(feature = "pkcs11")]
        {
            let uri = crate::pkcs11::Uri::parse(key_file)?;
            let session = crate::pkcs11::Session::open(
                &uri,
                crate::pkcs11::Access {
                    module: access.pkcs11_module.as_deref(),
                    pin_file: access.pkcs11_pin_file.as_deref(),
                },
            )?;
            return session.sign_rs256(&uri, message);
        }
        #[cfg(not(feature = "pkcs11"))]
        return Err(not_built());
    }
    let _ = access;
    super::key::SigningKey::load(Path::new(key_file), "key file (--key-file)")?.sign_rs256(message)
}

/// A key in a token, in a build without PKCS#11 (exit 2). (Not `commands::not_built`: the
/// agent reaches this file, and commands depend on the agent, not the other way.)
#[cfg(not(feature = "pkcs11"))]
fn not_built() -> Error {
    Error::config(
        "--key-file pkcs11: names a key in a PKCS#11 token, and this sfpair is built without \
         PKCS#11 tokens (the `pkcs11` feature); use a build with it (the default build has it)",
    )
}
