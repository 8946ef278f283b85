//! The stored pairing and its on-disk/on-flash encoding, shared by every store backend.
//!
//! Layout, little-endian (docs/embedded.md, "Record layout", extended):
//!
//! ```text
//! offset size field
//! 0      4    magic "SFPR"
//! 4      1    format version (1: device flow; 2: a headless grant; 3: sealed, see below)
//! 5      1    flags (0)
//! 6      2    reserved (0xFFFF, the erased-flash value)
//! 8      4    sequence number (flash slots: newer = seq_a.wrapping_sub(seq_b) as i32 > 0)
//! 12     4    payload length n (at most MAX_PAYLOAD)
//! 16     n    payload: fields as tag (u8), length (u16), bytes; unknown tags are skipped
//! 16+n   4    CRC-32/IEEE over bytes 0..16+n
//! ```
//!
//! The header, the length bound, the checksum and the order of the checks are the shared
//! framing in `frame.rs` (the outbox uses it too, with its own magic); this file owns the
//! payload. Later format versions keep this 16-byte header, the length limit and the trailing CRC, so an
//! older sfpair can tell a real newer record (`NewerVersion`: upgrade) from a version byte torn
//! by a power cut on flash (`BadChecksum`: corrupt). A newer version is only reported when its
//! checksum matches.
//!
//! Version 2 adds the grant (tags 12-15: which headless flow, and the username, key file path
//! and audience it needs again; tag 16: the client credentials' secret file path; never a key
//! or a secret) and has no refresh token. It gets its
//! own version, not just new tags, because a version-1 reader skips unknown tags: it would see a
//! record without a refresh token and call it corrupt. With version 2 it says "upgrade sfpair"
//! instead. Device-flow records are still written as version 1, so going back to an older
//! sfpair keeps them readable.
//!
//! Version 3 is a sealed record (`sealed.rs`: the payload is a version 1 or 2 payload encrypted
//! under a data key, with the sealed data key and the sealer's name in the clear). It gets its
//! own version so that an sfpair without sealing says "upgrade sfpair" and never overwrites it.
//! Opening one takes an [`Envelope`](super::sealed::Envelope); [`decode_frame`] checks the frame
//! and names the sealer without opening anything.
//!
//! A record decodes completely or not at all: any bad magic, length, checksum or field is an
//! error with a reason, never a panic and never a half-filled record. Pure and no_std: reads and
//! writes go through `embedded-io`, so the same codec runs on a microcontroller.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use embedded_io::{Read, ReadExactError, Write};
use zeroize::Zeroizing;

use super::frame::{self, FrameError};
use crate::flow::dialect::Dialect;
use crate::secret::Secret;

/// The first four bytes of every record.
pub const MAGIC: [u8; 4] = *b"SFPR";
/// The newest version this sfpair reads (and writes, for sealed records).
pub const VERSION: u8 = 3;
/// The version of headless-grant records (plain).
pub const VERSION_HEADLESS: u8 = 2;
/// The version of sealed records (`sealed.rs`).
pub const VERSION_SEALED: u8 = 3;
/// The version of device-flow records, which an older sfpair reads too.
pub const VERSION_DEVICE: u8 = 1;
pub use super::frame::{CRC_LEN, HEADER_LEN};
/// Far above a real pairing (about 600 bytes), far below any slot.
pub const MAX_PAYLOAD: usize = 8 * 1024;

const TAG_REFRESH_TOKEN: u8 = 1;
const TAG_CLIENT_ID: u8 = 2;
const TAG_DIALECT: u8 = 3;
const TAG_LOGIN_URL: u8 = 4;
const TAG_TOKEN_URL: u8 = 5;
const TAG_REVOKE_URL: u8 = 6;
const TAG_INSTANCE_URL: u8 = 7;
const TAG_IDENTITY_URL: u8 = 8;
const TAG_SCOPE: u8 = 9;
const TAG_ISSUED_AT_MS: u8 = 10;
const TAG_PAIRED_AT: u8 = 11;
const TAG_GRANT: u8 = 12;
const TAG_USERNAME: u8 = 13;
const TAG_KEY_FILE: u8 = 14;
const TAG_AUDIENCE: u8 = 15;
const TAG_SECRET_FILE: u8 = 16;

/// How the agent gets a new session: with the stored refresh token (the device flow), or by
/// running a headless grant again, which has no refresh token (docs/protocol.md, "Headless
/// grants (JWT bearer, client credentials, asset token)"). Boxed: a record stays small.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Grant {
    /// The device flow's refresh token (`Record::refresh_token`).
    #[default]
    Device,
    /// Enrolled without a person (JWT bearer, client credentials).
    Headless(alloc::boxed::Box<Headless>),
}

/// A grant that runs again for each new session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Headless {
    /// A fresh assertion signed with the key in `key_file` (its path only).
    JwtBearer {
        /// The integration user the assertion names.
        username: String,
        /// Where the private key is (its path only).
        key_file: String,
        /// The assertion's audience (the login host).
        audience: String,
    },
    /// The consumer key and secret; the secret comes from the settings each time, by default
    /// from the file it was read from at enrolment (its path only; `None` in records written
    /// before it was kept).
    ClientCredentials {
        /// The file the secret was read from at enrolment (its path only).
        secret_file: Option<String>,
    },
}

impl Grant {
    /// The JWT bearer grant.
    pub fn jwt_bearer(username: String, key_file: String, audience: String) -> Grant {
        Grant::Headless(alloc::boxed::Box::new(Headless::JwtBearer {
            username,
            key_file,
            audience,
        }))
    }

    /// The client credentials grant, with no secret file remembered.
    pub fn client_credentials() -> Grant {
        Grant::Headless(alloc::boxed::Box::new(Headless::ClientCredentials {
            secret_file: None,
        }))
    }

    /// The client credentials grant, remembering the path of the secret's file.
    pub fn client_credentials_from(secret_file: Option<String>) -> Grant {
        Grant::Headless(alloc::boxed::Box::new(Headless::ClientCredentials {
            secret_file,
        }))
    }

    /// The `--flow` name.
    pub fn name(&self) -> &'static str {
        match self.headless() {
            None => "device",
            Some(Headless::JwtBearer { .. }) => "jwt-bearer",
            Some(Headless::ClientCredentials { .. }) => "client-credentials",
        }
    }

    /// The headless grant's details, `None` for a device-flow pairing.
    pub fn headless(&self) -> Option<&Headless> {
        match self {
            Grant::Device => None,
            Grant::Headless(h) => Some(h),
        }
    }

    /// Whether a new access token comes without a refresh token (JWT bearer, client credentials).
    pub fn is_headless(&self) -> bool {
        *self != Grant::Device
    }
}

/// Everything needed to get access tokens after a reboot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The refresh token (empty for headless grants, which need none).
    pub refresh_token: Secret,
    /// The app's consumer key.
    pub client_id: String,
    /// Which device-flow dialect paired it (Salesforce's, or RFC 8628).
    pub dialect: Dialect,
    /// Salesforce login URL (login, test or My Domain); empty for RFC 8628 providers.
    pub login_url: String,
    /// Where refresh-token grants go.
    pub token_url: String,
    /// RFC 7009 revocation endpoint, when known.
    pub revoke_url: Option<String>,
    /// Base URL for REST calls.
    pub instance_url: String,
    /// Salesforce identity URL (`.../id/{org}/{user}`), or empty.
    pub identity_url: String,
    /// The scopes granted, as the server listed them.
    pub scope: String,
    /// The server's `issued_at` of the pairing (epoch ms), 0 when unknown.
    pub issued_at_ms: u64,
    /// The device's wall clock at pairing (epoch s); may be wrong on boards without an RTC.
    pub paired_at: u64,
    /// How a new session is obtained; a headless grant stores an empty refresh token.
    pub grant: Grant,
}

/// Why bytes are not a valid record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// All 0xFF (erased flash) or all zero: nothing was ever written here.
    Blank,
    /// The first four bytes are not [`MAGIC`].
    BadMagic,
    /// Written by a newer sfpair; upgrading sfpair reads it.
    NewerVersion(u8),
    /// Fewer bytes than the header or the payload length says.
    Truncated,
    /// The length field is larger than any record can be.
    TooLong(u32),
    /// The CRC-32 does not match: a write was cut, or the medium changed under it.
    BadChecksum,
    /// A field is not valid (bad UTF-8, wrong size, unknown dialect).
    BadField(&'static str),
    /// A field every record must have is absent.
    MissingField(&'static str),
    /// A sealed record this reader cannot open: the reason says which seal and what to do.
    Unopened(String),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Blank => f.write_str("no record (blank)"),
            DecodeError::BadMagic => f.write_str("not an sfpair record (bad magic)"),
            DecodeError::NewerVersion(v) => write!(
                f,
                "record format version {v} is newer than this sfpair understands ({VERSION}); \
                 upgrade sfpair"
            ),
            DecodeError::Truncated => f.write_str("record is truncated"),
            DecodeError::TooLong(n) => write!(f, "record claims an impossible length ({n} bytes)"),
            DecodeError::BadChecksum => f.write_str("record checksum does not match (corrupt)"),
            DecodeError::BadField(name) => write!(f, "record field '{name}' is invalid"),
            DecodeError::MissingField(name) => write!(f, "record lacks the field '{name}'"),
            DecodeError::Unopened(reason) => f.write_str(reason),
        }
    }
}

/// A decoded record and the sequence number it was written with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// The pairing.
    pub record: Record,
    /// Its sequence number: of two valid records, the higher is the newer.
    pub seq: u32,
    /// The sealer it was sealed with (`tpm2`, `pkcs11:...`), `None` for a plain record.
    pub sealer: Option<String>,
}

/// A checked frame, before a sealed one is opened.
// Short-lived, one at a time; boxing the common case would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A plain record, decoded.
    Plain(Decoded),
    /// A sealed record (version 3): its sequence number and its sealer's name; the frame's
    /// bytes go to [`Envelope::open`](super::sealed::Envelope::open).
    Sealed {
        /// Its sequence number.
        seq: u32,
        /// The sealer's name, as written (`tpm2`, `pkcs11:...`).
        sealer: String,
    },
}

impl Frame {
    /// The sequence number, sealed or not.
    pub fn seq(&self) -> u32 {
        match self {
            Frame::Plain(d) => d.seq,
            Frame::Sealed { seq, .. } => *seq,
        }
    }

    /// The sealer of the record, `None` for a plain one.
    pub fn sealer(&self) -> Option<&str> {
        match self {
            Frame::Plain(_) => None,
            Frame::Sealed { sealer, .. } => Some(sealer),
        }
    }
}

/// Is `a` a newer sequence number than `b`, across wrap-around (RFC 1982 style)?
pub fn seq_newer(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

fn put_field(out: &mut Vec<u8>, tag: u8, value: &[u8]) {
    // Values are bounded by MAX_PAYLOAD, checked by the caller, so the u16 cannot overflow.
    out.push(tag);
    out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    out.extend_from_slice(value);
}

/// Why a record cannot be encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TooLarge(pub usize);

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "record of {} bytes exceeds {MAX_PAYLOAD}", self.0)
    }
}

/// The complete encoded record (header, payload, CRC). Wiped on drop: it holds the token.
pub fn to_bytes(record: &Record, seq: u32) -> Result<Zeroizing<Vec<u8>>, TooLarge> {
    let (version, payload) = payload(record)?;
    let mut out = Zeroizing::new(Vec::with_capacity(HEADER_LEN + payload.len() + CRC_LEN));
    // Exact capacity: the frame never reallocates, so no unwiped copy of the token is left.
    frame::encode(&mut out, &MAGIC, version, 0, seq, &payload);
    Ok(out)
}

/// The plain payload of `record` and the format version it belongs to (1: device flow, 2: a
/// headless grant); the sealed form encrypts exactly these bytes. Wiped on drop.
pub fn payload(record: &Record) -> Result<(u8, Zeroizing<Vec<u8>>), TooLarge> {
    let mut payload = Zeroizing::new(Vec::with_capacity(512));
    if !record.grant.is_headless() {
        put_field(
            &mut payload,
            TAG_REFRESH_TOKEN,
            record.refresh_token.expose().as_bytes(),
        );
    }
    put_field(&mut payload, TAG_CLIENT_ID, record.client_id.as_bytes());
    put_field(&mut payload, TAG_DIALECT, record.dialect.name().as_bytes());
    put_field(&mut payload, TAG_LOGIN_URL, record.login_url.as_bytes());
    put_field(&mut payload, TAG_TOKEN_URL, record.token_url.as_bytes());
    if let Some(revoke) = &record.revoke_url {
        put_field(&mut payload, TAG_REVOKE_URL, revoke.as_bytes());
    }
    put_field(
        &mut payload,
        TAG_INSTANCE_URL,
        record.instance_url.as_bytes(),
    );
    put_field(
        &mut payload,
        TAG_IDENTITY_URL,
        record.identity_url.as_bytes(),
    );
    put_field(&mut payload, TAG_SCOPE, record.scope.as_bytes());
    put_field(
        &mut payload,
        TAG_ISSUED_AT_MS,
        &record.issued_at_ms.to_le_bytes(),
    );
    put_field(&mut payload, TAG_PAIRED_AT, &record.paired_at.to_le_bytes());
    match record.grant.headless() {
        None => {}
        Some(Headless::ClientCredentials { secret_file }) => {
            put_field(&mut payload, TAG_GRANT, b"client-credentials");
            if let Some(path) = secret_file {
                put_field(&mut payload, TAG_SECRET_FILE, path.as_bytes());
            }
        }
        Some(Headless::JwtBearer {
            username,
            key_file,
            audience,
        }) => {
            put_field(&mut payload, TAG_GRANT, b"jwt-bearer");
            put_field(&mut payload, TAG_USERNAME, username.as_bytes());
            put_field(&mut payload, TAG_KEY_FILE, key_file.as_bytes());
            put_field(&mut payload, TAG_AUDIENCE, audience.as_bytes());
        }
    }
    if payload.len() > MAX_PAYLOAD {
        return Err(TooLarge(payload.len()));
    }
    let version = if record.grant.is_headless() {
        VERSION_HEADLESS
    } else {
        VERSION_DEVICE
    };
    Ok((version, payload))
}

/// Writes the encoded record to an `embedded-io` sink.
pub fn write_record<W: Write>(
    out: &mut W,
    record: &Record,
    seq: u32,
) -> Result<(), WriteError<W::Error>> {
    let bytes = to_bytes(record, seq).map_err(WriteError::TooLarge)?;
    out.write_all(&bytes).map_err(WriteError::Io)
}

/// Failure to write a record.
#[derive(Debug)]
pub enum WriteError<E> {
    /// The record does not fit the medium or the format.
    TooLarge(TooLarge),
    /// The medium failed.
    Io(E),
}

/// Reads one record from an `embedded-io` source: the header, then exactly the bytes it claims.
pub fn read_record<R: Read>(input: &mut R) -> Result<Decoded, ReadError<R::Error>> {
    let mut header = [0u8; HEADER_LEN];
    input
        .read_exact(&mut header)
        .map_err(ReadError::from_exact)?;
    let len = check_header(&header).map_err(ReadError::Decode)?;
    let mut bytes = Zeroizing::new(Vec::with_capacity(HEADER_LEN + len + CRC_LEN));
    bytes.extend_from_slice(&header);
    bytes.resize(HEADER_LEN + len + CRC_LEN, 0);
    input
        .read_exact(&mut bytes[HEADER_LEN..])
        .map_err(ReadError::from_exact)?;
    decode(&bytes).map_err(ReadError::Decode)
}

/// Failure to read a record.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadError<E> {
    /// What was read is not a valid record.
    Decode(DecodeError),
    /// The medium failed.
    Io(E),
}

impl<E> ReadError<E> {
    fn from_exact(e: ReadExactError<E>) -> Self {
        match e {
            ReadExactError::UnexpectedEof => ReadError::Decode(DecodeError::Truncated),
            ReadExactError::Other(e) => ReadError::Io(e),
        }
    }
}

/// Validates the fixed header and returns the payload length.
fn check_header(header: &[u8; HEADER_LEN]) -> Result<usize, DecodeError> {
    frame::check_header(header, &MAGIC, MAX_PAYLOAD)
        .map(|h| h.len)
        .map_err(DecodeError::from)
}

impl From<FrameError> for DecodeError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::Blank => DecodeError::Blank,
            FrameError::BadMagic => DecodeError::BadMagic,
            FrameError::BadVersion => DecodeError::BadField("version"),
            FrameError::NewerVersion(v) => DecodeError::NewerVersion(v),
            FrameError::Truncated => DecodeError::Truncated,
            FrameError::TooLong(n) => DecodeError::TooLong(n),
            FrameError::BadChecksum => DecodeError::BadChecksum,
        }
    }
}

/// Decodes a plain record from the start of `bytes` (trailing bytes, such as the rest of a
/// flash slot, are ignored). A sealed one is `Unopened`: open it with [`decode_frame`] and an
/// [`Envelope`](super::sealed::Envelope).
pub fn decode(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    match decode_frame(bytes)? {
        Frame::Plain(decoded) => Ok(decoded),
        Frame::Sealed { sealer, .. } => Err(DecodeError::Unopened(alloc::format!(
            "the record is sealed with {sealer}; only a sealing store opens it"
        ))),
    }
}

/// Checks the frame at the start of `bytes` and decodes it, except that a sealed record is
/// only named (its sequence number and sealer), not opened.
pub fn decode_frame(bytes: &[u8]) -> Result<Frame, DecodeError> {
    decode_up_to(bytes, VERSION)
}

/// [`decode_frame`] as a reader of format versions up to `newest` would: `decode_up_to(b, 1)`
/// is what an sfpair from before version 2 does with `b` (the tests pin that it refuses).
pub fn decode_up_to(bytes: &[u8], newest: u8) -> Result<Frame, DecodeError> {
    let h = frame::decode(bytes, &MAGIC, MAX_PAYLOAD, newest)?;
    let payload = &bytes[HEADER_LEN..HEADER_LEN + h.len];
    if h.version == VERSION_SEALED {
        let sealed = super::sealed::Sealed::parse(payload)?;
        return Ok(Frame::Sealed {
            seq: h.seq,
            sealer: sealed.sealer.into(),
        });
    }
    let record = parse_fields(payload, h.version)?;
    Ok(Frame::Plain(Decoded {
        record,
        seq: h.seq,
        sealer: None,
    }))
}

/// The sealer of the record at the start of `bytes`, when it is a valid sealed one.
pub fn sealer_of(bytes: &[u8]) -> Option<String> {
    match decode_frame(bytes) {
        Ok(Frame::Sealed { sealer, .. }) => Some(sealer),
        _ => None,
    }
}

/// The record in a plain payload of format `version` (1 or 2): what a sealed record holds once
/// it is opened.
pub fn from_payload(payload: &[u8], version: u8) -> Result<Record, DecodeError> {
    if !(VERSION_DEVICE..=VERSION_HEADLESS).contains(&version) {
        return Err(DecodeError::BadField("version"));
    }
    parse_fields(payload, version)
}

#[derive(Default)]
struct Fields {
    refresh_token: Option<Secret>,
    client_id: Option<String>,
    dialect: Option<Dialect>,
    login_url: Option<String>,
    token_url: Option<String>,
    revoke_url: Option<String>,
    instance_url: Option<String>,
    identity_url: Option<String>,
    scope: Option<String>,
    issued_at_ms: Option<u64>,
    paired_at: Option<u64>,
    grant: Option<String>,
    username: Option<String>,
    key_file: Option<String>,
    audience: Option<String>,
    secret_file: Option<String>,
}

fn text(value: &[u8], name: &'static str) -> Result<String, DecodeError> {
    core::str::from_utf8(value)
        .map(String::from)
        .map_err(|_| DecodeError::BadField(name))
}

fn number(value: &[u8], name: &'static str) -> Result<u64, DecodeError> {
    let bytes: [u8; 8] = value.try_into().map_err(|_| DecodeError::BadField(name))?;
    Ok(u64::from_le_bytes(bytes))
}

fn parse_fields(mut payload: &[u8], version: u8) -> Result<Record, DecodeError> {
    let mut f = Fields::default();
    while !payload.is_empty() {
        let [tag, l0, l1, rest @ ..] = payload else {
            return Err(DecodeError::Truncated);
        };
        let len = u16::from_le_bytes([*l0, *l1]) as usize;
        let value = rest.get(..len).ok_or(DecodeError::Truncated)?;
        match *tag {
            TAG_REFRESH_TOKEN => {
                f.refresh_token = Some(Secret::new(text(value, "refresh_token")?));
            }
            TAG_CLIENT_ID => f.client_id = Some(text(value, "client_id")?),
            TAG_DIALECT => {
                let name = text(value, "dialect")?;
                f.dialect =
                    Some(Dialect::from_name(&name).ok_or(DecodeError::BadField("dialect"))?);
            }
            TAG_LOGIN_URL => f.login_url = Some(text(value, "login_url")?),
            TAG_TOKEN_URL => f.token_url = Some(text(value, "token_url")?),
            TAG_REVOKE_URL => f.revoke_url = Some(text(value, "revoke_url")?),
            TAG_INSTANCE_URL => f.instance_url = Some(text(value, "instance_url")?),
            TAG_IDENTITY_URL => f.identity_url = Some(text(value, "identity_url")?),
            TAG_SCOPE => f.scope = Some(text(value, "scope")?),
            TAG_ISSUED_AT_MS => f.issued_at_ms = Some(number(value, "issued_at")?),
            TAG_PAIRED_AT => f.paired_at = Some(number(value, "paired_at")?),
            TAG_GRANT if version >= 2 => f.grant = Some(text(value, "grant")?),
            TAG_USERNAME if version >= 2 => f.username = Some(text(value, "username")?),
            TAG_KEY_FILE if version >= 2 => f.key_file = Some(text(value, "key_file")?),
            TAG_AUDIENCE if version >= 2 => f.audience = Some(text(value, "audience")?),
            TAG_SECRET_FILE if version >= 2 => {
                f.secret_file = Some(text(value, "secret_file")?);
            }
            // A field from a newer minor revision of this version: skip it.
            _ => {}
        }
        payload = &rest[len..];
    }
    let grant = match f.grant.as_deref() {
        None => Grant::Device,
        Some("client-credentials") => {
            Grant::client_credentials_from(f.secret_file.filter(|p| !p.is_empty()))
        }
        Some("jwt-bearer") => {
            let need = |v: Option<String>, name| {
                v.filter(|v| !v.is_empty())
                    .ok_or(DecodeError::MissingField(name))
            };
            Grant::jwt_bearer(
                need(f.username, "username")?,
                need(f.key_file, "key_file")?,
                need(f.audience, "audience")?,
            )
        }
        Some(_) => return Err(DecodeError::BadField("grant")),
    };
    let refresh_token = if grant.is_headless() {
        Secret::new("")
    } else {
        f.refresh_token
            .filter(|t| !t.is_empty())
            .ok_or(DecodeError::MissingField("refresh_token"))?
    };
    let token_url = f
        .token_url
        .filter(|u| !u.is_empty())
        .ok_or(DecodeError::MissingField("token_url"))?;
    Ok(Record {
        refresh_token,
        client_id: f.client_id.ok_or(DecodeError::MissingField("client_id"))?,
        dialect: f.dialect.unwrap_or(Dialect::Salesforce),
        login_url: f.login_url.unwrap_or_default(),
        token_url,
        revoke_url: f.revoke_url,
        instance_url: f
            .instance_url
            .ok_or(DecodeError::MissingField("instance_url"))?,
        identity_url: f.identity_url.unwrap_or_default(),
        scope: f.scope.unwrap_or_default(),
        issued_at_ms: f.issued_at_ms.unwrap_or(0),
        paired_at: f.paired_at.unwrap_or(0),
        grant,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::crc32::crc32;

    pub(crate) fn sample() -> Record {
        Record {
            refresh_token: Secret::new("5Aep861TSESvWeug_xvFHRBTTbf_YrTWgEyjBJrfgqj"),
            client_id: "3MVG9KEY".into(),
            dialect: Dialect::Salesforce,
            login_url: "https://login.salesforce.com".into(),
            token_url: "https://login.salesforce.com/services/oauth2/token".into(),
            revoke_url: Some("https://login.salesforce.com/services/oauth2/revoke".into()),
            instance_url: "https://acme.my.salesforce.com".into(),
            identity_url: "https://login.salesforce.com/id/00D/005".into(),
            scope: "api refresh_token".into(),
            issued_at_ms: 1_700_000_000_000,
            paired_at: 1_700_000_000,
            grant: Grant::Device,
        }
    }

    fn headless() -> Record {
        Record {
            refresh_token: Secret::new(""),
            grant: Grant::jwt_bearer(
                "gw@acme.com".into(),
                "/etc/sfpair/device.key".into(),
                "https://login.salesforce.com".into(),
            ),
            ..sample()
        }
    }

    #[test]
    fn headless_records_are_version_2_and_an_older_reader_says_upgrade() {
        let bytes = to_bytes(&headless(), 3).unwrap();
        assert_eq!(bytes[4], 2);
        assert_eq!(decode(&bytes).unwrap().record, headless());
        // What an sfpair that knows only version 1 does with it: refuse, saying "upgrade".
        let err = decode_up_to(&bytes, 1).unwrap_err();
        assert_eq!(err, DecodeError::NewerVersion(2));
        assert!(err.to_string().contains("upgrade sfpair"));
        // Device-flow records stay version 1, readable by that older sfpair.
        let device = to_bytes(&sample(), 3).unwrap();
        assert_eq!(device[4], 1);
        assert_eq!(
            decode_up_to(&device, 1).unwrap(),
            Frame::Plain(decode(&device).unwrap())
        );
        assert_eq!(decode(&device).unwrap().record, sample());
        // The secret-free record names the key file, never the key; no refresh token is written.
        let cc = Record {
            grant: Grant::client_credentials(),
            ..headless()
        };
        assert_eq!(decode(&to_bytes(&cc, 1).unwrap()).unwrap().record, cc);
        // The client credentials remember where the secret is read from, not the secret.
        let remembered = Record {
            grant: Grant::client_credentials_from(Some("/etc/sfpair/secret".into())),
            ..headless()
        };
        let bytes = to_bytes(&remembered, 1).unwrap();
        assert_eq!(decode(&bytes).unwrap().record, remembered);
        assert!(bytes.windows(18).any(|w| w == b"/etc/sfpair/secret"));
    }

    #[test]
    fn a_version_1_record_cannot_smuggle_in_a_grant() {
        let mut payload = Vec::new();
        put_field(&mut payload, TAG_REFRESH_TOKEN, b"rt");
        put_field(&mut payload, TAG_CLIENT_ID, b"K");
        put_field(&mut payload, TAG_TOKEN_URL, b"https://x/token");
        put_field(&mut payload, TAG_INSTANCE_URL, b"https://x");
        put_field(&mut payload, TAG_GRANT, b"client-credentials");
        assert_eq!(parse_fields(&payload, 1).unwrap().grant, Grant::Device);
        assert_eq!(
            parse_fields(&payload, 2).unwrap().grant,
            Grant::client_credentials()
        );
    }

    #[test]
    fn the_shared_framing_writes_the_same_bytes_as_before() {
        // The layout as record.rs wrote it by hand before frame.rs: byte for byte the same.
        for (record, version) in [(sample(), 1u8), (headless(), 2)] {
            let bytes = to_bytes(&record, 0x0102_0304).unwrap();
            let payload = &bytes[HEADER_LEN..bytes.len() - CRC_LEN];
            let mut want = Vec::new();
            want.extend_from_slice(b"SFPR");
            want.extend_from_slice(&[version, 0, 0xFF, 0xFF, 4, 3, 2, 1]);
            want.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            want.extend_from_slice(payload);
            let crc = crc32(&want);
            want.extend_from_slice(&crc.to_le_bytes());
            assert_eq!(bytes.to_vec(), want);
        }
    }

    #[test]
    fn round_trips_through_bytes_and_embedded_io() {
        let bytes = to_bytes(&sample(), 7).unwrap();
        let decoded = decode(&bytes).unwrap();
        assert_eq!(
            decoded,
            Decoded {
                record: sample(),
                seq: 7,
                sealer: None,
            }
        );

        let mut sink: Vec<u8> = Vec::new();
        write_record(&mut sink, &sample(), 9).unwrap();
        let mut source: &[u8] = &sink;
        assert_eq!(read_record(&mut source).unwrap().seq, 9);
        assert!(source.is_empty(), "read exactly one record");
    }

    #[test]
    fn trailing_bytes_are_ignored() {
        let mut bytes = to_bytes(&sample(), 1).unwrap().to_vec();
        bytes.extend_from_slice(&[0xFF; 100]);
        assert_eq!(decode(&bytes).unwrap().record, sample());
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = to_bytes(&sample(), 1).unwrap();
        for len in 0..bytes.len() {
            let err = decode(&bytes[..len]).unwrap_err();
            assert!(
                matches!(err, DecodeError::Truncated | DecodeError::Blank),
                "len {len}: {err:?}"
            );
            let mut source: &[u8] = &bytes[..len];
            assert!(read_record(&mut source).is_err());
        }
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let bytes = to_bytes(&sample(), 1).unwrap();
        for i in 0..bytes.len() * 8 {
            let mut damaged = bytes.to_vec();
            damaged[i / 8] ^= 1 << (i % 8);
            // The reserved bytes are not checked on their own, but the CRC covers them.
            assert!(decode(&damaged).is_err(), "flip of bit {i} went unnoticed");
        }
    }

    #[test]
    fn blank_flash_and_foreign_data_are_told_apart() {
        assert_eq!(decode(&[0xFF; 64]).unwrap_err(), DecodeError::Blank);
        assert_eq!(decode(&[0; 64]).unwrap_err(), DecodeError::Blank);
        assert_eq!(
            decode(b"{\"refresh_token\": \"x\"}").unwrap_err(),
            DecodeError::BadMagic
        );
    }

    #[test]
    fn newer_versions_and_huge_lengths_are_refused() {
        let mut bytes = to_bytes(&sample(), 1).unwrap().to_vec();
        let newer = VERSION + 1;
        bytes[4] = newer;
        // A version byte changed without a matching checksum is a torn write, not a newer sfpair.
        assert_eq!(decode(&bytes).unwrap_err(), DecodeError::BadChecksum);
        let end = bytes.len() - CRC_LEN;
        let crc = crc32(&bytes[..end]);
        bytes[end..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            decode(&bytes).unwrap_err(),
            DecodeError::NewerVersion(newer)
        );
        let mut source: &[u8] = &bytes;
        assert_eq!(
            read_record(&mut source).unwrap_err(),
            ReadError::Decode(DecodeError::NewerVersion(newer))
        );
        let mut bytes = to_bytes(&sample(), 1).unwrap().to_vec();
        bytes[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&bytes).unwrap_err(), DecodeError::TooLong(u32::MAX));
    }

    #[test]
    fn unknown_fields_are_skipped_and_required_ones_enforced() {
        // Build a payload by hand with an extra tag 200 and no refresh token.
        let mut payload = Vec::new();
        put_field(&mut payload, 200, b"future");
        put_field(&mut payload, TAG_CLIENT_ID, b"K");
        put_field(&mut payload, TAG_TOKEN_URL, b"https://x/token");
        put_field(&mut payload, TAG_INSTANCE_URL, b"https://x");
        assert_eq!(
            parse_fields(&payload, 1).unwrap_err(),
            DecodeError::MissingField("refresh_token")
        );
        put_field(&mut payload, TAG_REFRESH_TOKEN, b"rt");
        let r = parse_fields(&payload, 1).unwrap();
        assert_eq!(r.refresh_token.expose(), "rt");
        assert_eq!(r.dialect, Dialect::Salesforce);
    }

    #[test]
    fn sequence_numbers_compare_across_wrap_around() {
        assert!(seq_newer(2, 1));
        assert!(!seq_newer(1, 2));
        assert!(seq_newer(0, u32::MAX));
        assert!(seq_newer(5, u32::MAX - 5));
        assert!(!seq_newer(7, 7));
    }

    #[test]
    fn oversized_records_are_refused_at_encoding() {
        let mut r = sample();
        r.scope = "x".repeat(MAX_PAYLOAD);
        assert!(to_bytes(&r, 1).is_err());
    }
}
