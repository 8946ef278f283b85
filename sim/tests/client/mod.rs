//! A minimal HTTPS/1.1 client for the integration tests: one TLS connection, raw
//! requests, Content-Length responses. Raw on purpose: the tests must control exactly
//! which connection carries which request, and must see transport faults as they are.
//! Each test binary uses part of it.

#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use sfpair_sim::Sim;

pub const CLIENT_ID: &str = "3MVG9sfpair.sim.consumer.key";

pub struct Client {
    stream: StreamOwned<ClientConnection, TcpStream>,
    buf: Vec<u8>,
    /// The name sent in SNI and the `Host` header.
    host: String,
}

/// A response as received.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("status {} body is not JSON: {e}", self.status))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Client {
    /// Connects to the simulator, trusting only its CA.
    pub fn connect(sim: &Sim) -> io::Result<Client> {
        Client::connect_to(sim.port(), &sim.ca_pem())
    }

    pub fn connect_to(port: u16, ca_pem: &str) -> io::Result<Client> {
        Client::connect_as(port, ca_pem, "127.0.0.1")
    }

    /// Connects to 127.0.0.1 calling the server `host` (SNI, certificate check, `Host`).
    pub fn connect_as(port: u16, ca_pem: &str, host: &str) -> io::Result<Client> {
        let mut roots = RootCertStore::empty();
        let ca = CertificateDer::from_pem_slice(ca_pem.as_bytes()).map_err(io::Error::other)?;
        roots.add(ca).map_err(io::Error::other)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from(host.to_string()).map_err(io::Error::other)?;
        let session = ClientConnection::new(Arc::new(config), name).map_err(io::Error::other)?;
        let tcp = TcpStream::connect(("127.0.0.1", port))?;
        // Every test answer comes in well under this; a hang fails the test instead.
        tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut stream = StreamOwned::new(session, tcp);
        // Finish the handshake now, so certificate errors surface here.
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(Client {
            stream,
            buf: Vec::new(),
            host: format!("{host}:{port}"),
        })
    }

    /// Sends this `Host` header from now on (the TLS name stays as connected).
    pub fn set_host(&mut self, host: &str) {
        self.host = host.to_string();
    }

    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Reply> {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
            self.host,
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        self.stream.write_all(head.as_bytes())?;
        self.stream.write_all(body)?;
        self.stream.flush()?;
        self.read_reply()
    }

    pub fn post_form(&mut self, path: &str, form: &[(&str, &str)]) -> io::Result<Reply> {
        let body = urlencode(form);
        let content_type = [("Content-Type", "application/x-www-form-urlencoded")];
        self.request("POST", path, &content_type, body.as_bytes())
    }

    pub fn get(&mut self, path: &str, bearer: Option<&str>) -> io::Result<Reply> {
        match bearer {
            Some(token) => self.request(
                "GET",
                path,
                &[("Authorization", &format!("Bearer {token}"))],
                b"",
            ),
            None => self.request("GET", path, &[], b""),
        }
    }

    fn read_reply(&mut self) -> io::Result<Reply> {
        let head_len = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            self.fill()?;
        };
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        response
            .parse(&self.buf[..head_len])
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let status = response.code.unwrap_or(0);
        let headers: Vec<(String, String)> = response
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect();
        self.buf.drain(..head_len);
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        while self.buf.len() < length {
            self.fill()?;
        }
        let body = self.buf.drain(..length).collect();
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    /// Reads more; a close before the reply is complete is an `UnexpectedEof` error.
    fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk)? {
            0 => Err(io::ErrorKind::UnexpectedEof.into()),
            n => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
        }
    }
}

pub fn urlencode(form: &[(&str, &str)]) -> String {
    let encode = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    form.iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}
