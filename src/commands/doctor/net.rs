//! The doctor's network checks: the proxy settings as sfpair reads them, DNS, a TCP connection,
//! and TLS with rustls directly, through a verifier that records the chain the server presents
//! before it verifies it, so that a failure (or a TLS-inspecting proxy) can name who issued the
//! certificate. The same trust as the agent's (`http.rs`): the CA file, else Mozilla's roots.
//!
//! Nothing secret is printed: a proxy's credentials are said to be there, never shown.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::x509;

/// The proxy sfpair would use for `url`, as ureq reads the environment (ALL_PROXY, HTTPS_PROXY,
/// HTTP_PROXY, lower-case too; NO_PROXY).
pub struct ProxySetting {
    pub host: String,
    pub port: u16,
    /// HTTP CONNECT (others, SOCKS, are not probed through).
    pub connect: bool,
    /// `user:password` for Proxy-Authorization, never printed.
    credentials: Option<(String, String)>,
}

impl ProxySetting {
    pub fn has_credentials(&self) -> bool {
        self.credentials.is_some()
    }
}

/// `Ok(None)`: no proxy for `url` (none set, or NO_PROXY exempts it); `Err`: what is wrong
/// with the setting.
pub fn proxy_for(url: &str) -> Result<Option<ProxySetting>, String> {
    let Some(proxy) = ureq::Proxy::try_from_env() else {
        let set = [
            "ALL_PROXY",
            "all_proxy",
            "HTTPS_PROXY",
            "https_proxy",
            "HTTP_PROXY",
            "http_proxy",
        ]
        .iter()
        .find(|v| std::env::var_os(v).is_some());
        return match set {
            Some(var) => Err(format!(
                "{var} is set but is not a proxy URL sfpair can use"
            )),
            None => Ok(None),
        };
    };
    let uri: ureq::http::Uri = url.parse().map_err(|_| format!("bad URL {url}"))?;
    if proxy.is_no_proxy(&uri) {
        return Ok(None);
    }
    Ok(Some(ProxySetting {
        host: proxy.host().to_string(),
        port: proxy.port(),
        connect: matches!(
            proxy.protocol(),
            ureq::ProxyProtocol::Http | ureq::ProxyProtocol::Https
        ),
        credentials: proxy
            .username()
            .map(|u| (u.to_string(), proxy.password().unwrap_or("").to_string())),
    }))
}

/// The addresses `host:port` resolves to (getaddrinfo).
pub fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    match (host, port).to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() {
                Err(format!("{host} resolves to no address"))
            } else {
                Ok(addrs)
            }
        }
        Err(e) => Err(format!("{host} does not resolve: {e}")),
    }
}

/// A TCP connection to the first address that answers (at most three tried).
pub fn connect(addrs: &[SocketAddr], timeout: Duration) -> Result<TcpStream, String> {
    let mut last = String::from("no address");
    for addr in addrs.iter().take(3) {
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(stream) => {
                let _ = stream.set_read_timeout(Some(timeout));
                let _ = stream.set_write_timeout(Some(timeout));
                return Ok(stream);
            }
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(last)
}

/// Asks an HTTP proxy for a tunnel to `host:port` (CONNECT), as ureq does.
pub fn tunnel(
    stream: &mut TcpStream,
    proxy: &ProxySetting,
    host: &str,
    port: u16,
) -> Result<(), String> {
    use base64::Engine as _;
    let mut head = format!("CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n");
    if let Some((user, password)) = &proxy.credentials {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        head.push_str(&format!("Proxy-Authorization: Basic {basic}\r\n"));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .map_err(|e| format!("sending CONNECT to the proxy: {e}"))?;
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    while !reply.ends_with(b"\r\n\r\n") {
        if reply.len() > 8192 {
            return Err("the proxy's CONNECT reply is too long".into());
        }
        match stream.read(&mut byte) {
            Ok(1) => reply.push(byte[0]),
            Ok(_) => return Err("the proxy closed the connection".into()),
            Err(e) => return Err(format!("reading the proxy's CONNECT reply: {e}")),
        }
    }
    let status = String::from_utf8_lossy(&reply);
    let line = status.lines().next().unwrap_or_default().to_string();
    match line.split_whitespace().nth(1) {
        Some("200") => Ok(()),
        _ => Err(format!("the proxy refused the tunnel: {line}")),
    }
}

/// The trust the agent uses: the CA file, else the compiled-in Mozilla roots.
pub fn roots(ca_file: Option<&Path>) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let pem = crate::files::read_trusted(path, 4 << 20, "the CA file")
                .map_err(|e| e.message().to_string())?;
            for item in ureq::tls::parse_pem(pem.as_bytes()) {
                if let Ok(ureq::tls::PemItem::Certificate(c)) = item {
                    store
                        .add(CertificateDer::from(c.der().to_vec()))
                        .map_err(|e| {
                            format!("a certificate in {} is unusable: {e}", path.display())
                        })?;
                }
            }
            if store.is_empty() {
                return Err(format!(
                    "the CA file {} holds no certificate",
                    path.display()
                ));
            }
        }
        None => mozilla(&mut store)?,
    }
    Ok(store)
}

#[cfg(feature = "mozilla-roots")]
fn mozilla(store: &mut RootCertStore) -> Result<(), String> {
    store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    Ok(())
}

#[cfg(not(feature = "mozilla-roots"))]
fn mozilla(_: &mut RootCertStore) -> Result<(), String> {
    Err("this sfpair has no compiled-in roots: give --ca-file".into())
}

/// What the TLS handshake showed.
pub struct TlsFinding {
    /// (subject, issuer) of each certificate the server sent, its own first.
    pub chain: Vec<(String, String)>,
    /// The protocol version, or why the handshake failed.
    pub result: Result<String, String>,
}

impl TlsFinding {
    /// Who issued the top of the presented chain (the CA the device must trust).
    pub fn top_issuer(&self) -> Option<&str> {
        self.chain.last().map(|(_, issuer)| issuer.as_str())
    }
}

/// Records the chain, then lets webpki verify it.
#[derive(Debug)]
struct Recording {
    inner: Arc<WebPkiServerVerifier>,
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut seen) = self.seen.lock() {
            seen.clear();
            seen.push(end_entity.to_vec());
            seen.extend(intermediates.iter().map(|c| c.to_vec()));
        }
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A TLS handshake with `host` over `stream`, verified against `roots`.
pub fn handshake(stream: &mut TcpStream, host: &str, roots: RootCertStore) -> TlsFinding {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let result = handshake_inner(stream, host, roots, &seen);
    let chain = seen
        .lock()
        .map(|s| {
            s.iter()
                .map(|der| {
                    x509::names(der)
                        .unwrap_or_else(|| ("(unreadable)".into(), "(unreadable)".into()))
                })
                .collect()
        })
        .unwrap_or_default();
    TlsFinding { chain, result }
}

fn handshake_inner(
    stream: &mut TcpStream,
    host: &str,
    roots: RootCertStore,
    seen: &Arc<Mutex<Vec<Vec<u8>>>>,
) -> Result<String, String> {
    // The agent's own provider: the same suites, without ring's private-key loader (http.rs).
    let provider = Arc::new(crate::http::crypto_provider());
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| format!("cannot build the verifier: {e}"))?;
    let verifier = Recording {
        inner,
        seen: seen.clone(),
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_string()).map_err(|e| format!("{host}: {e}"))?;
    let mut conn =
        rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    // Each round reads or writes; a handshake takes a handful. Bounded all the same.
    for _ in 0..64 {
        if !conn.is_handshaking() {
            let version = match conn.protocol_version() {
                Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3",
                Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2",
                _ => "TLS",
            };
            conn.send_close_notify();
            let _ = conn.complete_io(stream);
            return Ok(version.to_string());
        }
        conn.complete_io(stream).map_err(|e| describe(host, &e))?;
    }
    Err("the TLS handshake did not finish".into())
}

/// rustls's error, said for a technician, as the agent says it (`http.rs`).
fn describe(host: &str, e: &std::io::Error) -> String {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => crate::http::classify_tls(host, tls).detail,
        None => e.to_string(),
    }
}
