//! The test PKI: a CA generated at start-up and a server certificate it signs (valid,
//! for the wrong host, or expired), plus the rustls server configuration.
//!
//! Keys live only in memory for the life of the process; only the CA certificate is
//! ever written out (by `Sim::write_ca`). Nothing here accepts connections.

use std::io;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, date_time_ymd,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::config::CertMode;

/// The CA a client must trust, and the server side of TLS.
pub struct Tls {
    pub ca_pem: String,
    pub server: Arc<ServerConfig>,
}

/// Generates a fresh CA and a server certificate of the requested kind.
pub fn generate(mode: CertMode, instance_host: Option<&str>) -> io::Result<Tls> {
    let ca_key = KeyPair::generate().map_err(pki_error)?;
    let mut ca_params = CertificateParams::default();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "sfpair-sim test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(pki_error)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let mut names: Vec<String> = match mode {
        CertMode::Valid | CertMode::Expired => {
            vec!["127.0.0.1".into(), "::1".into(), "localhost".into()]
        }
        CertMode::WrongHost => vec!["wrong.example".into()],
    };
    // The instance host too, so one certificate serves the login and the instance host.
    if let Some(host) =
        instance_host.filter(|h| mode != CertMode::WrongHost && !names.iter().any(|n| n == h))
    {
        names.push(host.to_string());
    }
    let mut params = CertificateParams::new(names).map_err(pki_error)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "sfpair-sim server");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    if mode == CertMode::Expired {
        params.not_before = date_time_ymd(2020, 1, 1);
        params.not_after = date_time_ymd(2021, 1, 1);
    }
    let key = KeyPair::generate().map_err(pki_error)?;
    let cert = params.signed_by(&key, &issuer).map_err(pki_error)?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| {
            builder.with_no_client_auth().with_single_cert(
                vec![
                    cert.der().clone(),
                    CertificateDer::from(ca_cert.der().to_vec()),
                ],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
        })
        .map_err(|e| io::Error::other(format!("configuring TLS: {e}")))?;
    Ok(Tls {
        ca_pem: ca_cert.pem(),
        server: Arc::new(server),
    })
}

fn pki_error(e: rcgen::Error) -> io::Error {
    io::Error::other(format!("generating the test certificates: {e}"))
}
