//! `--seal pkcs11:URI`: the data key wrapped (RSA-OAEP) by the public half of an
//! RSA key pair in a PKCS#11 token, and unwrapped inside the token by its private half, which
//! never leaves it. The URI (RFC 7512) names the token and the key; the module comes from
//! `--pkcs11-module` or the URI's `module-path`, the PIN from a file (`pkcs11.rs`).

use zeroize::Zeroizing;

use super::{DataKey, KEY_LEN, Sealer, Ways};
use crate::error::Error;
use crate::pkcs11::{Access, Session, Uri};

/// Wraps and unwraps the data key with the token key the URI names (AES key wrap, or RSA-OAEP).
pub struct Pkcs11Sealer {
    uri: Uri,
    ways: Ways,
}

impl Pkcs11Sealer {
    /// A sealer for `uri` (RFC 7512), the module from the URI or from `ways`; opens nothing yet.
    pub fn new(uri: &str, ways: &Ways) -> Result<Pkcs11Sealer, Error> {
        Ok(Pkcs11Sealer {
            uri: Uri::parse(uri)?,
            ways: ways.clone(),
        })
    }

    fn session(&self) -> Result<Session, Error> {
        Session::open(
            &self.uri,
            Access {
                module: self.ways.pkcs11_module.as_deref(),
                pin_file: self.ways.pkcs11_pin_file.as_deref(),
            },
        )
    }
}

impl Sealer for Pkcs11Sealer {
    fn seal(&self, key: &[u8; KEY_LEN]) -> Result<Vec<u8>, Error> {
        self.session()?.wrap(&self.uri, key)
    }

    fn unseal(&self, sealed: &[u8]) -> Result<DataKey, Error> {
        let session = self.session()?;
        let plain = session.unwrap(&self.uri, sealed).map_err(|e| {
            Error::config(format!(
                "the key in the {} does not unwrap it ({}): it was sealed by another token \
                 (another board), or the key was replaced since",
                session.what(),
                e.message()
            ))
        })?;
        if plain.len() != KEY_LEN {
            return Err(Error::config(format!(
                "the {} unwrapped {} bytes, not a data key",
                session.what(),
                plain.len()
            )));
        }
        let mut key: DataKey = Zeroizing::new([0; KEY_LEN]);
        key.copy_from_slice(&plain);
        Ok(key)
    }
}
