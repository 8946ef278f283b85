//! The `Transport` seam and its real implementation on ureq + rustls (ring).
//!
//! Settings follow docs/development.md, "Design decisions": verification always on (a CA file or
//! the compiled-in
//! Mozilla roots), https only (plain http only to loopback), no redirects, connect/read
//! timeouts and a deadline for the whole exchange (a server that trickles its reply a byte at
//! a time defeats a per-read timeout; `Request::deadline`), small buffers (`INPUT_BUFFER` in,
//! `OUTPUT_BUFFER` out: a pairing's whole heap peaks under 80 KB instead of about 550 KB with
//! ureq's defaults), and one pooled keep-alive connection so every poll of a pairing reuses one TLS
//! session. HTTP error statuses are replies, not errors: OAuth errors arrive as HTTP 400.
//! Errors are classified for retrying; their text names the host and the reason, never a
//! secret. Proxies come from `HTTPS_PROXY`/`NO_PROXY` (ureq reads them).

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use log::debug;
use ureq::tls::{PemItem, RootCerts, TlsConfig};
use zeroize::Zeroizing;

use crate::error::Error;
use crate::url;
use crate::wire::{Body, Method, Reply, Request, TransportError, TransportErrorKind};

/// Sends requests and reads replies.
pub trait Transport: Send {
    /// Sends `request` and reads the whole reply (within the body limit).
    fn send(&mut self, request: &Request) -> Result<Reply, TransportError>;

    /// Sends `request` and returns the status and headers with the body still unread, for REST
    /// replies of any size: the caller copies the body where it goes, a buffer at a time, or
    /// reads a few KB of an error body and drops the rest. There is no body limit.
    ///
    /// The default reads the whole reply with [`Transport::send`] (for test doubles).
    fn open(&mut self, request: &Request) -> Result<OpenReply, TransportError> {
        let reply = self.send(request)?;
        Ok(OpenReply {
            status: reply.status,
            content_type: reply.content_type.clone(),
            retry_after: reply.retry_after,
            limit_info: None,
            cookies: reply.cookies.clone(),
            body: Box::new(io::Cursor::new(reply.body.to_vec())),
        })
    }
}

/// A reply whose body has not been read yet (see [`Transport::open`]). Reading the body to its
/// end gives the connection back to the pool; dropping it early closes the connection.
pub struct OpenReply {
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type` header, lower-cased, or empty.
    pub content_type: String,
    /// The `Retry-After` header, in seconds, when present.
    pub retry_after: Option<Duration>,
    /// Salesforce's `Sforce-Limit-Info` header (`api-usage=N/M`).
    pub limit_info: Option<String>,
    /// The `name=value` of each `Set-Cookie` header.
    pub cookies: Vec<String>,
    /// The body; read errors are network failures (timeouts, resets, TLS alerts).
    pub body: Box<dyn io::Read + Send>,
}

/// How to reach servers: [`HttpConfig::default`], then what differs
/// ([`with_ca_file`](HttpConfig::with_ca_file)).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HttpConfig {
    /// PEM bundle to trust instead of the compiled-in Mozilla roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// How long a connection (DNS included) may take.
    pub connect_timeout: Duration,
    /// For the reply headers and for the body, each.
    pub read_timeout: Duration,
    /// Replies larger than this are refused (OAuth replies are a few KB).
    pub body_limit: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            ca_file: None,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            body_limit: 64 * 1024,
        }
    }
}

impl HttpConfig {
    /// Trust the PEM certificates in `path` instead of the compiled-in Mozilla roots.
    pub fn with_ca_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }
}

/// ureq's input buffer, per layer (HTTP, and TLS below it): the most of a reply held at once,
/// and so the longest reply head accepted. Salesforce's reply heads are 1-3 KB (cookies, HSTS,
/// `Sforce-Limit-Info`); 8 KiB leaves room for a proxy's additions. Was 16 KiB: that cut
/// the heap of a pairing by 16 KiB (BENCHMARKS.md, "Memory and bytes"). Bodies stream through
/// it, whatever their size.
const INPUT_BUFFER: usize = 8 * 1024;
/// ureq's output buffer, per layer: requests are a few hundred bytes plus a body written
/// through it.
const OUTPUT_BUFFER: usize = 4 * 1024;

/// The stack of a thread that sends requests through this transport (`run`'s supervisor and
/// delivery threads, the broker's workers). A TLS handshake through ureq, rustls and webpki is
/// the deepest thing such a thread does: 64 KiB measured on x86_64 in a release build, 164 KiB
/// in a debug build. std's default of 2 MiB each is address space that a board with
/// strict overcommit (`vm.overcommit_memory=2`) must still back with memory.
pub const THREAD_STACK: usize = 256 * 1024;

/// ureq with rustls: the transport the agent uses for real.
pub struct UreqTransport {
    agent: ureq::Agent,
    body_limit: u64,
    /// `host:port` of the proxy from the environment, for messages.
    proxy: Option<String>,
    read_timeout: Duration,
}

impl UreqTransport {
    /// A transport with `config`'s roots, timeouts and proxy (from the environment).
    pub fn new(config: &HttpConfig) -> Result<Self, Error> {
        let roots = match &config.ca_file {
            Some(path) => load_roots(path)?,
            None => default_roots()?,
        };
        let tls = TlsConfig::builder()
            .root_certs(roots)
            .unversioned_rustls_crypto_provider(Arc::new(crypto_provider()))
            .build();
        // HTTPS_PROXY (or ALL_PROXY, HTTP_PROXY) and NO_PROXY, as ureq reads them.
        let proxy = ureq::Proxy::try_from_env();
        let proxy_name = proxy.as_ref().map(|p| format!("{}:{}", p.host(), p.port()));
        if let Some(name) = &proxy_name {
            debug!("using the proxy {name} (NO_PROXY applies)");
        }
        let agent = ureq::Agent::config_builder()
            .proxy(proxy)
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("sfpair/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(config.connect_timeout))
            .timeout_resolve(Some(config.connect_timeout))
            .timeout_send_request(Some(config.read_timeout))
            .timeout_send_body(Some(config.read_timeout))
            .timeout_recv_response(Some(config.read_timeout))
            .timeout_recv_body(Some(config.read_timeout))
            // The whole of one exchange read whole, however its bytes are paced.
            .timeout_per_call(Some(config.connect_timeout + config.read_timeout))
            .input_buffer_size(INPUT_BUFFER)
            .output_buffer_size(OUTPUT_BUFFER)
            .max_response_header_size(INPUT_BUFFER)
            .max_idle_connections(1)
            .max_idle_connections_per_host(1)
            .max_idle_age(Duration::from_secs(120))
            .tls_config(tls)
            .build()
            .new_agent();
        Ok(UreqTransport {
            agent,
            body_limit: config.body_limit,
            proxy: proxy_name,
            read_timeout: config.read_timeout,
        })
    }
}

/// rustls's ring provider with every TLS 1.3 and 1.2 suite and key exchange it has, but no
/// private-key loader: sfpair never presents a client certificate, and ring's loader (RSA,
/// ECDSA and Ed25519 key parsing and signing) would otherwise be linked for nothing, since
/// rustls reaches it through the provider whatever the configuration: 35,520 bytes on armv7
/// (full build 1,178,308 -> 1,142,788; BENCHMARKS.md, "Size"). Verifying the server's
/// certificates and signatures is untouched. `doctor`'s own handshake uses it too: its call to
/// ring's `default_provider()` had linked the loader back (BENCHMARKS.md, "Memory and
/// bytes").
pub(crate) fn crypto_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::CryptoProvider {
        key_provider: &NoClientKeys,
        ..rustls::crypto::ring::default_provider()
    }
}

/// Refuses every private key: the agent authenticates with OAuth, not with a client certificate.
#[derive(Debug)]
struct NoClientKeys;

impl rustls::crypto::KeyProvider for NoClientKeys {
    fn load_private_key(
        &self,
        _key: rustls::pki_types::PrivateKeyDer<'static>,
    ) -> Result<Arc<dyn rustls::sign::SigningKey>, rustls::Error> {
        Err(rustls::Error::General(
            "sfpair has no TLS client certificates".into(),
        ))
    }
}

/// The roots trusted without --ca-file: Mozilla's, when compiled in.
#[cfg(feature = "mozilla-roots")]
fn default_roots() -> Result<RootCerts, Error> {
    Ok(RootCerts::WebPki)
}

/// Built without the `mozilla-roots` feature there is nothing to trust but a CA file, and TLS
/// verification is never off.
#[cfg(not(feature = "mozilla-roots"))]
fn default_roots() -> Result<RootCerts, Error> {
    Err(Error::config(
        "this sfpair was built without the compiled-in Mozilla roots (cargo feature \
         mozilla-roots): give the CA certificates to trust with --ca-file or SFPAIR_CA_FILE",
    ))
}

/// Reads a PEM bundle; a file with no certificate is a configuration error, not "trust nothing".
fn load_roots(path: &Path) -> Result<RootCerts, Error> {
    // A CA bundle is at most a few hundred KB (Mozilla's whole set is about 220 KB).
    let pem = crate::files::read_trusted(path, 4 << 20, "the CA file")?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(pem.as_bytes()) {
        match item {
            Ok(PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => {
                return Err(Error::config(format!(
                    "the CA file {} is not valid PEM: {e}",
                    path.display()
                )));
            }
        }
    }
    if certs.is_empty() {
        return Err(Error::config(format!(
            "the CA file {} holds no certificate",
            path.display()
        )));
    }
    debug!(
        "trusting {} certificate(s) from {}",
        certs.len(),
        path.display()
    );
    Ok(RootCerts::new_with_certs(&certs))
}

/// Ends the requests of one [`UreqTransport`] from another thread: a held long poll (the
/// Streaming API's `/meta/connect`, up to 110 s) returns at once with an error, and the
/// transport takes no more requests. For a stop that must not wait for the server.
pub struct Interrupt(ureq::Agent);

impl Interrupt {
    /// Shuts the transport's connections down.
    pub fn interrupt(self) {
        self.0.shutdown();
    }
}

impl UreqTransport {
    /// What ends this transport's requests from another thread.
    pub fn interrupter(&self) -> Interrupt {
        Interrupt(self.agent.clone())
    }

    /// Builds and runs `request`; `streaming` lifts the total body time limit (a big body may
    /// take minutes) and keeps a per-read timeout instead, so a stalled server still fails.
    /// The request's own deadline, when it has one, bounds the whole exchange either way
    /// (delivery's replies are small, and must not be trickled out for ever).
    fn run(
        &mut self,
        request: &Request,
        streaming: bool,
    ) -> Result<(String, ureq::http::Response<ureq::Body>), TransportError> {
        let host = url::host(&request.url).unwrap_or("?").to_string();
        if !url::is_secure(&request.url) {
            return Err(TransportError::new(
                TransportErrorKind::Invalid,
                format!(
                    "refusing to send to {}: https is required (plain http only to loopback)",
                    request.url
                ),
            ));
        }
        let method = match request.method {
            Method::Get => ureq::http::Method::GET,
            Method::Post => ureq::http::Method::POST,
            Method::Put => ureq::http::Method::PUT,
            Method::Patch => ureq::http::Method::PATCH,
            Method::Delete => ureq::http::Method::DELETE,
        };
        let mut builder = ureq::http::Request::builder()
            .method(method)
            .uri(request.url.as_str())
            .header("Accept", "application/json");
        if let Some(token) = &request.bearer {
            let value = Zeroizing::new(format!("Bearer {}", token.expose()));
            builder = builder.header("Authorization", value.as_str());
        }
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        // A caller's own Content-Type (`sfpair call --header`) wins over the default.
        let typed = request
            .headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
        let body: Zeroizing<Vec<u8>> = match &request.body {
            Body::Empty => Zeroizing::new(Vec::new()),
            Body::Form(form) => {
                builder = builder.header("Content-Type", "application/x-www-form-urlencoded");
                Zeroizing::new(form.encode().as_bytes().to_vec())
            }
            Body::Json(json) => {
                if !typed {
                    builder = builder.header("Content-Type", "application/json");
                }
                Zeroizing::new(json.clone())
            }
        };
        let http_request = builder.body(body.as_slice()).map_err(|e| {
            TransportError::new(TransportErrorKind::Invalid, format!("{host}: {e}"))
        })?;
        let http_request = if streaming {
            self.agent
                .configure_request(http_request)
                .timeout_recv_body(None)
                .timeout_per_read(Some(self.read_timeout))
                .timeout_per_call(request.deadline)
                .build()
        } else if request.deadline.is_some() {
            self.agent
                .configure_request(http_request)
                .timeout_per_call(request.deadline)
                .build()
        } else {
            http_request
        };
        let response = self
            .agent
            .run(http_request)
            .map_err(|e| classify(&host, self.proxy.as_deref(), e))?;
        debug!(
            "{} {} -> {}",
            request.method.as_str(),
            redacted_path(&request.url),
            response.status().as_u16()
        );
        Ok((host, response))
    }
}

/// A response header as text, when present and valid.
fn header_of(response: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// `Retry-After` in seconds (the HTTP-date form is not used by Salesforce).
fn retry_after_of(response: &ureq::http::Response<ureq::Body>) -> Option<Duration> {
    header_of(response, "retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// The `name=value` of each `Set-Cookie` header (the attributes after it are not kept).
fn cookies_of(response: &ureq::http::Response<ureq::Body>) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .map(|v| v.trim().to_string())
        .collect()
}

impl Transport for UreqTransport {
    fn send(&mut self, request: &Request) -> Result<Reply, TransportError> {
        let (host, mut response) = self.run(request, false)?;
        let status = response.status().as_u16();
        let content_type = header_of(&response, "content-type").unwrap_or_default();
        let retry_after = retry_after_of(&response);
        let cookies = cookies_of(&response);
        let bytes = response
            .body_mut()
            .with_config()
            .limit(self.body_limit)
            .read_to_vec()
            .map_err(|e| classify(&host, self.proxy.as_deref(), e))?;
        let mut reply = Reply::new(status, &content_type, bytes);
        reply.retry_after = retry_after;
        reply.cookies = cookies;
        Ok(reply)
    }

    fn open(&mut self, request: &Request) -> Result<OpenReply, TransportError> {
        let (_, response) = self.run(request, true)?;
        Ok(OpenReply {
            status: response.status().as_u16(),
            content_type: header_of(&response, "content-type")
                .unwrap_or_default()
                .to_ascii_lowercase(),
            retry_after: retry_after_of(&response),
            limit_info: header_of(&response, "sforce-limit-info"),
            cookies: cookies_of(&response),
            body: Box::new(Deadlined(response.into_body().into_reader())),
        })
    }
}

/// What a request's whole-exchange deadline ending it is called.
const PAST_DEADLINE: &str = "timed out: the whole exchange took longer than its deadline";

/// A streamed body whose read errors say plainly when the request's deadline ended it (ureq
/// says "timeout: per call").
struct Deadlined<R>(R);

impl<R: io::Read> io::Read for Deadlined<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(|e| {
            let ended = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<ureq::Error>());
            match ended {
                Some(ureq::Error::Timeout(ureq::Timeout::PerCall)) => {
                    io::Error::new(io::ErrorKind::TimedOut, PAST_DEADLINE)
                }
                _ => e,
            }
        })
    }
}

/// The URL without its query, for debug logs (queries are never secret here, but they are
/// noise).
fn redacted_path(u: &str) -> &str {
    u.split('?').next().unwrap_or(u)
}

/// Turns a ureq error into a retry decision and a message that names the host.
fn classify(host: &str, proxy: Option<&str>, e: ureq::Error) -> TransportError {
    use TransportErrorKind as K;
    let (kind, what) = match e {
        ureq::Error::HostNotFound => (K::Dns, "the host name does not resolve (DNS)".to_string()),
        ureq::Error::Timeout(ureq::Timeout::PerCall) => (K::Timeout, PAST_DEADLINE.to_string()),
        ureq::Error::Timeout(t) => (K::Timeout, format!("timed out ({t})")),
        ureq::Error::Io(io) => return classify_io(host, io),
        ureq::Error::Rustls(tls) => return classify_tls(host, &tls),
        ureq::Error::Tls(what) => (K::Tls, format!("TLS failed: {what}")),
        ureq::Error::ConnectionFailed => (K::Refused, "could not connect".to_string()),
        ureq::Error::Protocol(p) => (K::Protocol, format!("the reply is not valid HTTP ({p})")),
        ureq::Error::BodyExceedsLimit(limit) => (
            K::TooLarge,
            format!("the reply is larger than {limit} bytes"),
        ),
        ureq::Error::LargeResponseHeader(..) => {
            (K::TooLarge, "the reply headers are too large".to_string())
        }
        ureq::Error::ConnectProxyFailed(why) => (
            K::Proxy,
            format!(
                "the proxy {} refused the tunnel ({why}); check HTTPS_PROXY and NO_PROXY",
                proxy.unwrap_or("from the environment")
            ),
        ),
        ureq::Error::InvalidProxyUrl => (
            K::Invalid,
            "HTTPS_PROXY is not a valid proxy URL".to_string(),
        ),
        ureq::Error::BadUri(u) => (K::Invalid, format!("bad URL {u}")),
        other => (K::Protocol, other.to_string()),
    };
    TransportError::new(kind, format!("{host}: {what}"))
}

fn classify_io(host: &str, e: io::Error) -> TransportError {
    use TransportErrorKind as K;
    if let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return classify_tls(host, tls);
    }
    // std reports getaddrinfo failures as an uncategorized error with this text.
    if e.to_string().contains("failed to lookup address") {
        return TransportError::new(
            K::Dns,
            format!("{host}: the host name does not resolve (DNS): {e}"),
        );
    }
    let kind = match e.kind() {
        io::ErrorKind::ConnectionRefused
        | io::ErrorKind::HostUnreachable
        | io::ErrorKind::NetworkUnreachable
        | io::ErrorKind::AddrNotAvailable => K::Refused,
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => K::Timeout,
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => K::Reset,
        _ => K::Protocol,
    };
    TransportError::new(kind, format!("{host}: {e}"))
}

pub(crate) fn classify_tls(host: &str, e: &rustls::Error) -> TransportError {
    use rustls::CertificateError as C;
    let (kind, hint) = match e {
        rustls::Error::InvalidCertificate(cert) => (
            TransportErrorKind::Certificate,
            match cert {
                C::UnknownIssuer | C::BadSignature => {
                    " If the server uses a private CA (a corporate TLS proxy, or sfpair-sim), \
                     pass its certificate with --ca-file"
                }
                C::NotValidForName | C::NotValidForNameContext { .. } => {
                    " The certificate belongs to another host: check --login-url, or whether a \
                     proxy answers in the server's place"
                }
                C::Expired
                | C::ExpiredContext { .. }
                | C::NotValidYet
                | C::NotValidYetContext { .. } => {
                    " Either the server's certificate is out of date or this device's clock is \
                     wrong: check the date (NTP)"
                }
                _ => "",
            },
        ),
        rustls::Error::InvalidCertRevocationList(_) => (TransportErrorKind::Certificate, ""),
        _ => (TransportErrorKind::Tls, ""),
    };
    let what = match kind {
        TransportErrorKind::Certificate => "TLS verification of",
        _ => "the TLS connection to",
    };
    TransportError::new(kind, format!("{what} {host} failed: {e}.{hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_provider_keeps_every_suite_and_group_but_loads_no_client_key() {
        let ours = crypto_provider();
        let ring = rustls::crypto::ring::default_provider();
        assert_eq!(ours.cipher_suites, ring.cipher_suites);
        assert_eq!(ours.kx_groups.len(), ring.kx_groups.len());
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(vec![0x30, 0x00].into());
        assert!(ours.key_provider.load_private_key(key).is_err());
    }

    #[test]
    fn plain_http_to_a_real_host_is_refused_before_connecting() {
        let mut t = UreqTransport::new(&HttpConfig::default()).unwrap();
        let err = t
            .send(&Request::get("http://login.salesforce.com/services/data/"))
            .unwrap_err();
        assert_eq!(err.kind, TransportErrorKind::Invalid);
    }

    #[test]
    fn a_ca_file_without_certificates_is_a_config_error() {
        let path = std::env::temp_dir().join(format!("sfpair-empty-ca-{}", std::process::id()));
        std::fs::write(&path, "not a certificate\n").unwrap();
        let err = UreqTransport::new(&HttpConfig {
            ca_file: Some(path.clone()),
            ..HttpConfig::default()
        })
        .err()
        .unwrap();
        assert!(err.message().contains("holds no certificate"), "{err}");
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn refused_connections_are_transient() {
        // Bind and drop a listener to get a loopback port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut t = UreqTransport::new(&HttpConfig::default()).unwrap();
        let err = t
            .send(&Request::get(format!("https://127.0.0.1:{port}/x")))
            .unwrap_err();
        assert_eq!(err.kind, TransportErrorKind::Refused, "{err:?}");
        assert!(err.kind.is_transient());
        assert!(err.detail.starts_with("127.0.0.1: "));
    }
}
