//! Just enough HTTP/1.1: reading requests (Content-Length or chunked bodies, with
//! head and body limits) and writing responses with a Content-Length.
//!
//! Generic over the byte stream, so tests feed it plain buffers. It knows nothing of
//! TLS, routes or OAuth, and never logs: a request body may hold secrets.

use std::io::{self, Read, Write};

/// Larger request heads get 431: no client of ours sends more.
pub const HEAD_LIMIT: usize = 16 * 1024;
/// Larger request bodies get 413. Token requests are a few hundred bytes; a composite or
/// a 200-record collection can reach hundreds of kilobytes.
pub const BODY_LIMIT: usize = 1024 * 1024;

pub const JSON: &str = "application/json;charset=UTF-8";
pub const HTML: &str = "text/html;charset=UTF-8";
pub const TEXT: &str = "text/plain;charset=UTF-8";

/// One parsed request. `path` excludes the query string, which sits in `query`.
#[derive(Debug, Default)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    /// HTTP/1.0 clients get their connection closed after one response.
    pub http10: bool,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the client asked to close the connection after this exchange.
    pub fn wants_close(&self) -> bool {
        let connection = self.header("connection").unwrap_or("");
        if self.http10 {
            !connection.eq_ignore_ascii_case("keep-alive")
        } else {
            connection
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("close"))
        }
    }

    /// The token of an `Authorization: Bearer …` header.
    pub fn bearer(&self) -> Option<&str> {
        let value = self.header("authorization")?;
        let (scheme, token) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    }
}

/// Why a request could not be read.
#[derive(Debug)]
pub enum HttpError {
    /// The socket failed or timed out; nothing can be answered.
    Io(io::Error),
    HeadTooLarge,
    BodyTooLarge,
    Malformed(&'static str),
}

impl HttpError {
    /// The status to answer with before closing, if an answer is still possible.
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::Io(_) => None,
            HttpError::HeadTooLarge => Some(431),
            HttpError::BodyTooLarge => Some(413),
            HttpError::Malformed(_) => Some(400),
        }
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Io(e) => write!(f, "i/o error: {e}"),
            HttpError::HeadTooLarge => write!(f, "request head larger than {HEAD_LIMIT} bytes"),
            HttpError::BodyTooLarge => write!(f, "request body larger than {BODY_LIMIT} bytes"),
            HttpError::Malformed(why) => write!(f, "malformed request: {why}"),
        }
    }
}

impl From<io::Error> for HttpError {
    fn from(e: io::Error) -> Self {
        HttpError::Io(e)
    }
}

/// A byte stream plus the bytes read past the current request (keep-alive clients
/// may send the next request before we answered).
pub struct Conn<S> {
    stream: S,
    buf: Vec<u8>,
}

impl<S: Read + Write> Conn<S> {
    pub fn new(stream: S) -> Self {
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn stream(&mut self) -> &mut S {
        &mut self.stream
    }

    /// The next request, or `None` when the client closed cleanly between requests.
    pub fn read_request(&mut self) -> Result<Option<Request>, HttpError> {
        let head_len = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if self.buf.len() > HEAD_LIMIT {
                return Err(HttpError::HeadTooLarge);
            }
            if self.fill()? == 0 {
                return match self.buf.iter().all(|b| b.is_ascii_whitespace()) {
                    true => Ok(None),
                    false => Err(HttpError::Malformed(
                        "connection closed inside a request head",
                    )),
                };
            }
        };
        if head_len > HEAD_LIMIT {
            return Err(HttpError::HeadTooLarge);
        }
        let mut request = parse_head(&self.buf[..head_len])?;
        self.buf.drain(..head_len);

        let chunked = request
            .header("transfer-encoding")
            .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
        let length = match request.header("content-length") {
            Some(v) if !chunked => v
                .trim()
                .parse::<usize>()
                .map_err(|_| HttpError::Malformed("bad Content-Length"))?,
            _ => 0,
        };
        if length > BODY_LIMIT {
            return Err(HttpError::BodyTooLarge);
        }
        let expects_continue = request
            .header("expect")
            .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"));
        if expects_continue && (chunked || length > 0) && self.buf.is_empty() {
            // curl waits for this before sending larger bodies.
            self.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
            self.stream.flush()?;
        }
        request.body = if chunked {
            self.read_chunked()?
        } else {
            self.take(length)?
        };
        Ok(Some(request))
    }

    /// Decodes a chunked body, discarding extensions and trailers.
    fn read_chunked(&mut self) -> Result<Vec<u8>, HttpError> {
        let mut body = Vec::new();
        loop {
            let line = self.take_line()?;
            let size = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size, 16)
                .map_err(|_| HttpError::Malformed("bad chunk size"))?;
            if size == 0 {
                while !self.take_line()?.is_empty() {}
                return Ok(body);
            }
            if body.len() + size > BODY_LIMIT {
                return Err(HttpError::BodyTooLarge);
            }
            body.extend(self.take(size)?);
            if !self.take_line()?.is_empty() {
                return Err(HttpError::Malformed("chunk longer than its size"));
            }
        }
    }

    fn take_line(&mut self) -> Result<String, HttpError> {
        loop {
            if let Some(i) = find(&self.buf, b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return Ok(line);
            }
            if self.buf.len() > HEAD_LIMIT {
                return Err(HttpError::Malformed("chunk line too long"));
            }
            self.fill_or_fail()?;
        }
    }

    fn take(&mut self, n: usize) -> Result<Vec<u8>, HttpError> {
        while self.buf.len() < n {
            self.fill_or_fail()?;
        }
        Ok(self.buf.drain(..n).collect())
    }

    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    fn fill_or_fail(&mut self) -> Result<(), HttpError> {
        match self.fill()? {
            0 => Err(HttpError::Malformed(
                "connection closed inside a request body",
            )),
            _ => Ok(()),
        }
    }
}

fn parse_head(head: &[u8]) -> Result<Request, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut headers);
    match parsed.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return Err(HttpError::Malformed("incomplete request head"));
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::HeadTooLarge),
        Err(_) => return Err(HttpError::Malformed("bad request head")),
    }
    let target = parsed.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Ok(Request {
        method: parsed.method.unwrap_or("").to_string(),
        path: path.to_string(),
        query: query.to_string(),
        http10: parsed.version == Some(0),
        headers: parsed
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
        body: Vec::new(),
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A response body: bytes in hand, or a JSON array of an exact size generated while
/// it is written, so multi-megabyte bodies never sit in memory.
#[derive(Debug)]
pub enum Body {
    Bytes(Vec<u8>),
    JsonArray(u64),
}

impl Body {
    fn len(&self) -> u64 {
        match self {
            Body::Bytes(b) => b.len() as u64,
            Body::JsonArray(n) => *n,
        }
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            headers: vec![("Content-Type", content_type.to_string())],
            body: Body::Bytes(body.into()),
        }
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Response::new(status, JSON, value.to_string())
    }

    /// A status with no body and no content type (the revoke endpoint's 200).
    pub fn empty(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Body::Bytes(Vec::new()),
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Status line and headers, ending with the blank line.
    pub fn head(&self, close: bool) -> Vec<u8> {
        self.head_with_length(self.body.len(), close)
    }

    /// The head, announcing `length` body bytes whatever the body holds (for faults).
    pub fn head_with_length(&self, length: u64, close: bool) -> Vec<u8> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!("Content-Length: {length}\r\n"));
        head.push_str(if close {
            "Connection: close\r\n"
        } else {
            "Connection: keep-alive\r\n"
        });
        head.push_str("\r\n");
        head.into_bytes()
    }

    /// Writes the whole response.
    pub fn write_to(&self, w: &mut impl Write, close: bool) -> io::Result<()> {
        w.write_all(&self.head(close))?;
        match &self.body {
            Body::Bytes(bytes) => w.write_all(bytes)?,
            Body::JsonArray(n) => write_json_array(w, *n)?,
        }
        w.flush()
    }
}

/// Writes exactly `n` bytes of valid JSON: `[0,0,…,0]`, padded with one space when
/// the length is even (n = 1 gives `0`; n = 0 writes nothing).
pub fn write_json_array(w: &mut impl Write, n: u64) -> io::Result<()> {
    let byte_at = |i: u64| -> u8 {
        if n == 1 {
            return b'0';
        }
        let inner = n - 2;
        match i {
            0 => b'[',
            i if i == n - 1 => b']',
            i if inner.is_multiple_of(2) && i == n - 2 => b' ',
            i if (i - 1).is_multiple_of(2) => b'0',
            _ => b',',
        }
    };
    let mut chunk = Vec::with_capacity(16 * 1024);
    let mut i = 0;
    while i < n {
        chunk.clear();
        while i < n && chunk.len() < 16 * 1024 {
            chunk.push(byte_at(i));
            i += 1;
        }
        w.write_all(&chunk)?;
    }
    Ok(())
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Input bytes to read, and whatever gets written.
    struct Duplex {
        input: io::Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl Read for Duplex {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Write for Duplex {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.output.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn conn(input: &[u8]) -> Conn<Duplex> {
        Conn::new(Duplex {
            input: io::Cursor::new(input.to_vec()),
            output: Vec::new(),
        })
    }

    #[test]
    fn reads_pipelined_requests_with_content_length() {
        let mut c =
            conn(b"POST /a?x=1 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\n\r\n");
        let first = c.read_request().unwrap().unwrap();
        assert_eq!(
            (
                first.method.as_str(),
                first.path.as_str(),
                first.query.as_str()
            ),
            ("POST", "/a", "x=1")
        );
        assert_eq!(first.body, b"abc");
        let second = c.read_request().unwrap().unwrap();
        assert_eq!(second.path, "/b");
        assert!(c.read_request().unwrap().is_none());
    }

    #[test]
    fn decodes_chunked_bodies() {
        let mut c = conn(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\nA\r\n0123456789\r\n0\r\nTrailer: t\r\n\r\n");
        assert_eq!(c.read_request().unwrap().unwrap().body, b"abc0123456789");
    }

    #[test]
    fn enforces_the_limits() {
        let big = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            BODY_LIMIT + 1
        );
        assert!(matches!(
            conn(big.as_bytes()).read_request(),
            Err(HttpError::BodyTooLarge)
        ));
        let long = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(HEAD_LIMIT));
        assert!(matches!(
            conn(long.as_bytes()).read_request(),
            Err(HttpError::HeadTooLarge)
        ));
        let cut = b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab";
        assert!(matches!(
            conn(cut).read_request(),
            Err(HttpError::Malformed(_))
        ));
    }

    #[test]
    fn answers_expect_100_continue() {
        let mut c = conn(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
        // The body has not arrived; reading it fails, but the interim answer went out first.
        assert!(c.read_request().is_err());
        assert_eq!(c.stream().output, b"HTTP/1.1 100 Continue\r\n\r\n");
    }

    #[test]
    fn connection_close_and_http10() {
        let mut c = conn(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET / HTTP/1.0\r\n\r\n");
        assert!(c.read_request().unwrap().unwrap().wants_close());
        assert!(c.read_request().unwrap().unwrap().wants_close());
    }

    #[test]
    fn bearer_tokens() {
        let mut c = conn(b"GET / HTTP/1.1\r\nAuthorization: Bearer abc\r\n\r\n");
        assert_eq!(c.read_request().unwrap().unwrap().bearer(), Some("abc"));
    }

    #[test]
    fn json_arrays_have_the_exact_length_and_parse() {
        for n in [1u64, 2, 3, 4, 5, 10, 11, 40_000] {
            let mut out = Vec::new();
            write_json_array(&mut out, n).unwrap();
            assert_eq!(out.len() as u64, n);
            serde_json::from_slice::<serde_json::Value>(&out).unwrap();
        }
    }

    #[test]
    fn responses_carry_content_length_and_connection() {
        let mut out = Vec::new();
        Response::new(200, TEXT, "hi")
            .write_to(&mut out, true)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(text.contains("Content-Length: 2\r\nConnection: close\r\n\r\nhi"));
    }
}
