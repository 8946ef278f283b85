//! The subject and issuer of a DER certificate, as `CN=…, O=…`, for the doctor's TLS check: a
//! proxy that inspects TLS shows up as a chain issued by its own CA, and naming that CA is what
//! tells the technician. Reads only as far as the names (RFC 5280 §4.1: tbsCertificate's
//! version, serial, signature algorithm, issuer, validity, subject); verifies nothing (rustls
//! does). Bad input gives `None`, never a panic.

/// One DER element: tag, contents, and what follows it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |a, &b| (a << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
/// id-at-commonName (2.5.4.3) and id-at-organizationName (2.5.4.10), DER-encoded.
const CN: &[u8] = &[0x55, 0x04, 0x03];
const O: &[u8] = &[0x55, 0x04, 0x0a];

/// `CN=…, O=…` of an X.501 Name (only those two attributes; others are skipped).
fn name(mut rdns: &[u8]) -> Option<String> {
    let mut parts = Vec::new();
    while !rdns.is_empty() {
        let (tag, set, rest) = element(rdns)?;
        rdns = rest;
        if tag != SET {
            return None;
        }
        let mut attrs = set;
        while !attrs.is_empty() {
            let (tag, attr, rest) = element(attrs)?;
            attrs = rest;
            if tag != SEQUENCE {
                return None;
            }
            let (tag, oid, value) = element(attr)?;
            if tag != OID {
                return None;
            }
            let (_, text, _) = element(value)?;
            let label = match oid {
                CN => "CN",
                O => "O",
                _ => continue,
            };
            let text: String = String::from_utf8_lossy(text)
                .chars()
                .filter(|c| !c.is_control())
                .collect();
            parts.push(format!("{label}={text}"));
        }
    }
    Some(if parts.is_empty() {
        "(no CN or O)".into()
    } else {
        parts.join(", ")
    })
}

/// (subject, issuer) of a DER certificate.
pub fn names(der: &[u8]) -> Option<(String, String)> {
    let (_, cert, _) = element(der).filter(|(t, ..)| *t == SEQUENCE)?;
    let (_, tbs, _) = element(cert).filter(|(t, ..)| *t == SEQUENCE)?;
    let mut rest = tbs;
    // [0] EXPLICIT version, when present.
    if rest.first() == Some(&0xa0) {
        rest = element(rest)?.2;
    }
    let (_, _serial, rest) = element(rest)?;
    let (_, _algorithm, rest) = element(rest)?;
    let (tag, issuer, rest) = element(rest)?;
    if tag != SEQUENCE {
        return None;
    }
    let (_, _validity, rest) = element(rest)?;
    let (tag, subject, _) = element(rest)?;
    if tag != SEQUENCE {
        return None;
    }
    Some((name(subject)?, name(issuer)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if body.len() < 0x80 {
            out.push(body.len() as u8);
        } else {
            out.extend([0x82, (body.len() >> 8) as u8, body.len() as u8]);
        }
        out.extend_from_slice(body);
        out
    }

    fn rdn(oid: &[u8], text: &str) -> Vec<u8> {
        let attr = [tlv(OID, oid), tlv(0x0c, text.as_bytes())].concat();
        tlv(SET, &tlv(SEQUENCE, &attr))
    }

    fn certificate(subject: &[u8], issuer: &[u8]) -> Vec<u8> {
        let tbs = [
            tlv(0xa0, &tlv(0x02, &[2])),
            tlv(0x02, &[1, 2, 3]),
            tlv(SEQUENCE, &tlv(OID, &[0x2a, 0x86, 0x48])),
            tlv(SEQUENCE, issuer),
            tlv(
                SEQUENCE,
                &[tlv(0x17, b"260101000000Z"), tlv(0x17, b"270101000000Z")].concat(),
            ),
            tlv(SEQUENCE, subject),
            tlv(SEQUENCE, &[0u8; 200]),
        ]
        .concat();
        tlv(
            SEQUENCE,
            &[tlv(SEQUENCE, &tbs), tlv(SEQUENCE, &[]), tlv(0x03, &[0])].concat(),
        )
    }

    #[test]
    fn reads_subject_and_issuer() {
        let subject = [
            rdn(&[0x55, 0x04, 0x06], "US"),
            rdn(CN, "login.salesforce.com"),
        ]
        .concat();
        let issuer = [rdn(O, "Corp Proxy"), rdn(CN, "Corp TLS Inspection CA")].concat();
        assert_eq!(
            names(&certificate(&subject, &issuer)),
            Some((
                "CN=login.salesforce.com".to_string(),
                "O=Corp Proxy, CN=Corp TLS Inspection CA".to_string()
            ))
        );
    }

    #[test]
    fn garbage_is_none_not_a_panic() {
        let good = certificate(&rdn(CN, "a"), &rdn(CN, "b"));
        for cut in 0..good.len() {
            let _ = names(&good[..cut]);
        }
        assert_eq!(names(&[]), None);
        assert_eq!(names(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
    }
}
