//! Random codes and tokens in each dialect's shape, user-code normalisation, and base64.
//!
//! Every secret comes from the operating system's CSPRNG (through ring), so a test
//! cannot guess a device code or token. Nothing here keeps state or logs anything.

use ring::rand::{SecureRandom, SystemRandom};

/// Salesforce user codes: 8 characters of `[A-Z0-9]`, no dash (docs/protocol.md,
/// "Device code reply").
const SALESFORCE_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
/// RFC 8628 section 6.1's base-20 set: no vowels, so no words can form.
const BASE20_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Characters Salesforce uses after the `!` of a session id.
const TOKEN_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._";

/// The simulated org and user, in their 18-character forms.
pub const ORG_ID: &str = "00DSIM0000000012BA";
pub const USER_ID: &str = "005SIM000000001YBA";
/// The paired user's `Username` (and email).
pub const USERNAME: &str = "technician@sim.example";

/// `n` random bytes.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0; n];
    // The system RNG failing means the OS cannot give randomness at all; a
    // simulator cannot do anything useful then.
    SystemRandom::new()
        .fill(&mut bytes)
        .unwrap_or_else(|_| panic!("the system random number generator failed"));
    bytes
}

/// `len` characters drawn uniformly from `alphabet` (rejection sampling, so no bias).
fn random_string(alphabet: &[u8], len: usize) -> String {
    let limit = 256 - 256 % alphabet.len();
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for byte in random_bytes(len * 2) {
            if (byte as usize) < limit && out.len() < len {
                out.push(alphabet[byte as usize % alphabet.len()] as char);
            }
        }
    }
    out
}

/// A Salesforce-style user code such as `X1D9SEET`.
pub fn salesforce_user_code() -> String {
    random_string(SALESFORCE_ALPHABET, 8)
}

/// An RFC 8628-style user code such as `WDJB-MJHT`.
pub fn rfc8628_user_code() -> String {
    let code = random_string(BASE20_ALPHABET, 8);
    format!("{}-{}", &code[..4], &code[4..])
}

/// A Salesforce-style device code: base64 of `client_id;ip;issued_ms;user_code`, as the
/// doc's sample decodes, plus a random tail so that knowing those fields is not enough.
pub fn salesforce_device_code(client_id: &str, issued_ms: u128, user_code: &str) -> String {
    let tail = hex(&random_bytes(16));
    base64_encode(format!("{client_id};127.0.0.1;{issued_ms};{user_code};{tail}").as_bytes())
}

/// An opaque RFC 8628 device code: 256 random bits, base64url without padding.
pub fn rfc8628_device_code() -> String {
    base64url(&random_bytes(32))
}

/// A Salesforce session id such as `00DSIM000000001!AR…`.
pub fn salesforce_access_token() -> String {
    format!("{}!AR{}", &ORG_ID[..15], random_string(TOKEN_ALPHABET, 96))
}

/// A Salesforce-looking refresh token.
pub fn salesforce_refresh_token() -> String {
    format!("5Aep861SIM{}", random_string(TOKEN_ALPHABET, 77))
}

/// An opaque token for the RFC 8628 dialect.
pub fn opaque_token() -> String {
    base64url(&random_bytes(32))
}

/// A random (version 4) UUID in its usual text form, as `EventUuid` values and CDC
/// `transactionKey`s look: `28c52274-5f0b-4a5e-9d3e-0b2f5cfa7c1d`.
pub fn uuid_v4() -> String {
    let mut b = random_bytes(16);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|byte| format!("{byte:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// `len` random characters of `[0-9a-z]`: the shape of a Streaming API `clientId`
/// (`1cyu4thyxh3fgv1nqwcvebt3o9x`, as client logs show them) and of cookie values.
pub fn base36(len: usize) -> String {
    random_string(b"0123456789abcdefghijklmnopqrstuvwxyz", len)
}

/// How user codes are compared: case-insensitively, ignoring spaces and dashes
/// (RFC 8628 section 6.1), so `wdjb mjht` finds `WDJB-MJHT`.
pub fn normalise_user_code(code: &str) -> String {
    code.chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648 section 4), as Salesforce uses for
/// device codes and signatures.
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(STANDARD[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// base64url without padding (RFC 4648 section 5), for opaque tokens.
pub fn base64url(data: &[u8]) -> String {
    base64_encode(data)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

/// Decodes standard base64 (padding optional); `None` on any other character.
/// Used for HTTP Basic client credentials.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let value = STANDARD.iter().position(|&s| s == c)? as u32;
        acc = (acc << 6) | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4_and_distinct() {
        let (a, b) = (uuid_v4(), uuid_v4());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'));
        assert!(matches!(&parts[3][..1], "8" | "9" | "a" | "b"));
        assert!(
            base36(27)
                .bytes()
                .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
        );
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base64_encode(plain.as_bytes()), encoded);
            assert_eq!(base64_decode(encoded).unwrap(), plain.as_bytes());
        }
        assert_eq!(base64_decode("not base64!"), None);
    }

    #[test]
    fn user_codes_have_each_dialects_shape() {
        let sf = salesforce_user_code();
        assert_eq!(sf.len(), 8);
        assert!(sf.bytes().all(|b| SALESFORCE_ALPHABET.contains(&b)));

        let rfc = rfc8628_user_code();
        assert_eq!(rfc.len(), 9);
        assert_eq!(&rfc[4..5], "-");
        assert!(
            rfc.bytes()
                .filter(|&b| b != b'-')
                .all(|b| BASE20_ALPHABET.contains(&b))
        );
    }

    #[test]
    fn salesforce_device_code_decodes_like_the_observed_sample() {
        let code = salesforce_device_code("KEY", 1477674487505, "X1D9SEET");
        let decoded = String::from_utf8(base64_decode(&code).unwrap()).unwrap();
        assert!(decoded.starts_with("KEY;127.0.0.1;1477674487505;X1D9SEET;"));
        assert_ne!(
            code,
            salesforce_device_code("KEY", 1477674487505, "X1D9SEET")
        );
    }

    #[test]
    fn tokens_look_like_salesforce_session_ids() {
        let token = salesforce_access_token();
        assert!(token.starts_with("00DSIM000000001!AR"));
        assert_ne!(token, salesforce_access_token());
    }

    #[test]
    fn user_codes_compare_ignoring_case_spaces_and_dashes() {
        assert_eq!(normalise_user_code("wdjb-mjht"), "WDJBMJHT");
        assert_eq!(normalise_user_code(" WDJB MJHT "), "WDJBMJHT");
        assert_eq!(normalise_user_code("x1d9seet"), "X1D9SEET");
    }
}
