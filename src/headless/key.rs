//! An RSA private key from a PEM file (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`), and
//! RS256 signatures with it (RSA PKCS#1 v1.5 with SHA-256, ring).
//!
//! The file is read under the rules for secret files (`files.rs`: not a FIFO, ours or root's,
//! readable by its owner only): a key that others on the board can read is a key they can
//! enrol with, so it is refused with the `chmod` to run. Nothing from the file is ever put in a
//! message, a log line or Debug output (only its path); the decoded bytes are wiped when
//! dropped.

use std::fmt;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::rand::SystemRandom;
use ring::rsa::PublicKeyComponents;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use zeroize::Zeroizing;

use crate::error::Error;
use crate::jwt::RsaPublic;

/// A real key file is 1.7 KB (2048 bits) to 3.3 KB (4096 bits) of PEM.
const MAX_PEM: u64 = 16 * 1024;

pub struct SigningKey {
    pair: RsaKeyPair,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

impl SigningKey {
    /// Reads and checks the key file `path`. Every refusal is a usage error naming the file.
    pub fn load(path: &Path, what: &str) -> Result<SigningKey, Error> {
        let shown = path.display();
        let pem = crate::files::read_secret(path, MAX_PEM, &format!("the {what}"))?;
        SigningKey::from_pem(&pem)
            .map_err(|problem| Error::config(format!("the {what} {shown} {problem}")))
    }

    /// The key in PEM text; `Err` says what is wrong, without quoting the text.
    pub fn from_pem(pem: &[u8]) -> Result<SigningKey, &'static str> {
        let text = core::str::from_utf8(pem).map_err(|_| "is not a PEM text file")?;
        let (label, der) = pem_block(text)?;
        let pair = match label {
            "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der),
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der),
            "ENCRYPTED PRIVATE KEY" => {
                return Err(
                    "is encrypted: sfpair needs it unencrypted (openssl pkey -in KEY -out \
                            PLAIN), protected by the file's permissions instead",
                );
            }
            _ => {
                return Err(
                    "holds no RSA private key (BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY)",
                );
            }
        }
        .map_err(|_| "is not an RSA private key of 2048 to 4096 bits that ring accepts")?;
        Ok(SigningKey { pair })
    }

    /// The RS256 signature of `message` (deterministic: PKCS#1 v1.5 has no salt).
    pub fn sign_rs256(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let mut signature = vec![0u8; self.pair.public().modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message,
                &mut signature,
            )
            .map_err(|_| Error::config("the RSA key could not sign (ring refused it)"))?;
        Ok(signature)
    }

    /// The public half, for a JWK.
    pub fn public(&self) -> RsaPublic {
        let parts: PublicKeyComponents<Vec<u8>> = self.pair.public().into();
        RsaPublic {
            modulus: parts.n,
            exponent: parts.e,
        }
    }

    /// The public key as PKCS#1 RSAPublicKey DER (what a verifier takes).
    pub fn public_der(&self) -> Vec<u8> {
        self.pair.public().as_ref().to_vec()
    }
}

/// The first PEM block: its label and its decoded bytes (wiped on drop).
fn pem_block(text: &str) -> Result<(&str, Zeroizing<Vec<u8>>), &'static str> {
    let mut lines = text.lines().map(str::trim);
    let label = lines
        .by_ref()
        .find_map(|l| l.strip_prefix("-----BEGIN ")?.strip_suffix("-----"))
        .ok_or("is not PEM (no -----BEGIN line)")?;
    let mut body = Zeroizing::new(String::new());
    let mut ended = false;
    for line in lines {
        if line.starts_with("-----END ") {
            ended = true;
            break;
        }
        if line.contains(':') {
            // RFC 1421 headers (Proc-Type: 4,ENCRYPTED): an encrypted legacy key.
            return Err("is an encrypted legacy PEM key: decrypt it first (openssl pkey)");
        }
        body.push_str(line);
    }
    if !ended {
        return Err("is a PEM block without its -----END line");
    }
    let der = STANDARD
        .decode(body.as_bytes())
        .map_err(|_| "has a PEM body that is not valid base64")?;
    Ok((label, Zeroizing::new(der)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt;

    /// A 2048-bit key made for these tests only (`openssl genpkey`); it signs nothing real.
    const PKCS8: &[u8] = include_bytes!("testdata/pinned-test-key.pem");
    /// The same key in PKCS#1 (`openssl rsa -traditional`).
    const PKCS1: &[u8] = include_bytes!("testdata/pinned-test-key-pkcs1.pem");

    /// RS256 with PKCS#1 v1.5 is deterministic: for this key, these claims and this clock the
    /// assertion is exactly these bytes. The signature was computed independently with
    /// `openssl dgst -sha256 -sign` over the same signing input.
    #[test]
    fn the_assertion_is_pinned_for_a_fixed_key_claims_and_clock() {
        let claims = jwt::bearer_claims(
            "3MVG9KEY",
            "gw@acme.com",
            "https://login.salesforce.com",
            1_700_000_000,
        );
        let input = jwt::signing_input(jwt::HEADER_RS256, &claims);
        assert_eq!(
            input,
            "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL2xvZ2luLnNhbGVzZm9yY2UuY29tIiwiZXhwIjoxNz\
             AwMDAwMTUwLCJpc3MiOiIzTVZHOUtFWSIsInN1YiI6Imd3QGFjbWUuY29tIn0"
        );
        let expected = "mc3OMTkA-lkBBV3-3wHWzmMqoa8u44VDzhv39ozZf7vq7fGYdqsbJhvhkYS7tIpZ4zux0QC\
            Xn3M0iL9H-lHt23SzIKETfTt1GedGzNEphkNFDsBA7syumq1lvFnunT4L8w83t6zyP9AwdSOHq3VLzLgmr8n\
            Q5w0Lx309QkjW64My8lRllGM_ZeAXjGoq19H51DXZBgkacPNQt98LW0PBxH4hwqLb56ncrhPAbyuegbKofjR\
            Bn59GWTt94PMchEwtDT5fXzEthu_UshsfgAP4UDpZZC64P5CWoyTaJwtPDQ-46pC-fhmokyxPkrSpOjrrPol8\
            6q36cRBna0w1GLNC7w";
        for pem in [PKCS8, PKCS1] {
            let key = SigningKey::from_pem(pem).unwrap();
            let signature = key.sign_rs256(input.as_bytes()).unwrap();
            assert_eq!(
                jwt::assemble(&input, &signature),
                format!("{input}.{expected}")
            );
        }
        let key = SigningKey::from_pem(PKCS8).unwrap();
        assert_eq!(key.public().exponent, [1, 0, 1]);
        assert_eq!(key.public().modulus.len(), 256);
        assert_eq!(format!("{key:?}"), "SigningKey(<redacted>)");
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_can_read_is_refused_with_the_chmod() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("sfpair-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("device.key");
        std::fs::write(&path, PKCS8).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = SigningKey::load(&path, "key file").unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(
            err.message()
                .contains(&format!("chmod 600 {}", path.display()))
        );
        assert!(!err.message().contains("PRIVATE"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(SigningKey::load(&path, "key file").is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn foreign_and_broken_pem_is_refused_without_quoting_it() {
        assert!(SigningKey::from_pem(b"hello").is_err());
        let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(
            SigningKey::from_pem(cert.as_bytes())
                .unwrap_err()
                .contains("no RSA private key")
        );
        let cut = "-----BEGIN PRIVATE KEY-----\nAAAA\n";
        assert!(
            SigningKey::from_pem(cut.as_bytes())
                .unwrap_err()
                .contains("END")
        );
        let junk = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(
            SigningKey::from_pem(junk.as_bytes())
                .unwrap_err()
                .contains("RSA private key")
        );
    }
}
