//! The outbox's payloads inside the shared framing (`store/frame.rs`): log entries and the log
//! header, delivered marks, dead letters. Pure: bytes in, values out, no I/O.
//!
//! Every payload starts with a kind byte. Numbers are little-endian; strings carry their length
//! (u16 for names, u32 for JSON and error text). A payload decodes completely or not at all.
//!
//! ```text
//! log  "SFPO"  H: id u64, generation u64, next seq u64, delivered u64     (first frame)
//!              E: seq u64, queued_at u64, target, json                    (one per record)
//! mark "SFPM"  H: generation u64                                          (first frame)
//!              S: low u64, count u32, count x (seq u64, outcome u8)       (one per settle)
//! dead "SFPD"  D: seq u64, queued_at u64, at u64, target, error, json     (one per letter)
//! target: 1 object(u16 str) field(u16 str) = upsert | 2 object(u16 str) = event
//! ```
//!
//! Frame flags: [`CONTINUED`] on every frame of one push but its last, so a push cut short by a
//! power cut is dropped whole (`scan.rs`). The frame's u32 seq field holds the low bits of the
//! entry's seq, for people reading a hex dump; nothing relies on it.

use alloc::string::String;
use alloc::vec::Vec;

use crate::store::frame;

pub const LOG_MAGIC: [u8; 4] = *b"SFPO";
pub const MARK_MAGIC: [u8; 4] = *b"SFPM";
pub const DEAD_MAGIC: [u8; 4] = *b"SFPD";
pub const VERSION: u8 = 1;
/// More frames of the same push follow.
pub const CONTINUED: u8 = 1;
/// The largest record JSON any outbox accepts (`Limits::max_record` is at most this).
pub const MAX_RECORD_LIMIT: usize = 1024 * 1024;
/// Room for the names and a dead letter's error text beside the largest record.
pub const MAX_PAYLOAD: usize = MAX_RECORD_LIMIT + 64 * 1024;
/// A dead letter keeps at most this much of the server's error text.
pub const MAX_ERROR: usize = 8 * 1024;
/// An sObject or field name longer than this is not a Salesforce name.
pub const MAX_NAME: usize = 255;

/// Where a record goes. Debug shows only names (an sObject and a field), never record data:
/// the settings that carry a target (`send`'s options) are Debug.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Upsert into `object` by the external-id field `field`.
    Upsert {
        /// The sObject.
        object: String,
        /// Its external id field.
        field: String,
    },
    /// A platform event (`…__e`): insert only.
    Event {
        /// The platform event.
        object: String,
    },
}

impl Target {
    /// The sObject or platform event's API name.
    pub fn object(&self) -> &str {
        match self {
            Target::Upsert { object, .. } | Target::Event { object } => object,
        }
    }
}

/// One queued record as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub queued_at: u64,
    pub target: Target,
    pub json: String,
}

/// The log's first frame.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct LogHeader {
    pub id: u64,
    pub generation: u64,
    pub next_seq: u64,
    /// Delivered before this generation (the marks of earlier generations, folded in).
    pub delivered: u64,
}

/// A delivered mark frame: every log seq below `low` is settled, and so are `seqs`.
#[derive(Clone, PartialEq, Eq)]
pub struct Settled {
    pub low: u64,
    /// (seq, dead?)
    pub seqs: Vec<(u64, bool)>,
}

/// A dead letter as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct Dead {
    pub entry: Entry,
    pub error: String,
    pub at: u64,
}

/// A log frame's payload.
pub enum LogItem {
    Header(LogHeader),
    Entry(Entry),
}

/// A mark frame's payload.
pub enum MarkItem {
    Header(u64),
    Settled(Settled),
}

/// Why a payload does not decode (its frame's checksum matched: a bug or a newer writer).
pub struct BadPayload;

fn frame(out: &mut Vec<u8>, magic: &[u8; 4], flags: u8, seq: u64, payload: &[u8]) {
    frame::encode(out, magic, VERSION, flags, seq as u32, payload);
}

fn put_str16(p: &mut Vec<u8>, s: &str) {
    // Names are checked against MAX_NAME before they get here.
    p.extend_from_slice(&(s.len() as u16).to_le_bytes());
    p.extend_from_slice(s.as_bytes());
}

fn put_str32(p: &mut Vec<u8>, s: &str) {
    p.extend_from_slice(&(s.len() as u32).to_le_bytes());
    p.extend_from_slice(s.as_bytes());
}

fn put_target(p: &mut Vec<u8>, t: &Target) {
    match t {
        Target::Upsert { object, field } => {
            p.push(1);
            put_str16(p, object);
            put_str16(p, field);
        }
        Target::Event { object } => {
            p.push(2);
            put_str16(p, object);
        }
    }
}

fn entry_payload(p: &mut Vec<u8>, e: &Entry) {
    p.extend_from_slice(&e.seq.to_le_bytes());
    p.extend_from_slice(&e.queued_at.to_le_bytes());
    put_target(p, &e.target);
    put_str32(p, &e.json);
}

/// Appends the log's header frame.
pub fn encode_header(out: &mut Vec<u8>, h: &LogHeader) {
    let mut p = Vec::with_capacity(33);
    p.push(b'H');
    for n in [h.id, h.generation, h.next_seq, h.delivered] {
        p.extend_from_slice(&n.to_le_bytes());
    }
    frame(out, &LOG_MAGIC, 0, 0, &p);
}

/// Appends one entry frame; `continued`: more of the same push follow.
pub fn encode_entry(out: &mut Vec<u8>, e: &Entry, continued: bool) {
    let mut p = Vec::with_capacity(40 + e.json.len());
    p.push(b'E');
    entry_payload(&mut p, e);
    frame(
        out,
        &LOG_MAGIC,
        if continued { CONTINUED } else { 0 },
        e.seq,
        &p,
    );
}

/// The bytes [`encode_entry`] writes for `e`.
pub fn entry_len(e: &Entry) -> usize {
    let names = match &e.target {
        Target::Upsert { object, field } => 4 + object.len() + field.len(),
        Target::Event { object } => 2 + object.len(),
    };
    frame::HEADER_LEN + 1 + 16 + 1 + names + 4 + e.json.len() + frame::CRC_LEN
}

/// The bytes [`encode_mark_header`] writes.
pub const MARK_HEADER_LEN: usize = frame::HEADER_LEN + 9 + frame::CRC_LEN;

/// The bytes [`encode_settled`] writes for `n` seqs.
pub fn settled_len(n: usize) -> usize {
    frame::HEADER_LEN + 13 + 9 * n + frame::CRC_LEN
}

pub fn encode_mark_header(out: &mut Vec<u8>, generation: u64) {
    let mut p = Vec::with_capacity(9);
    p.push(b'H');
    p.extend_from_slice(&generation.to_le_bytes());
    frame(out, &MARK_MAGIC, 0, 0, &p);
}

pub fn encode_settled(out: &mut Vec<u8>, s: &Settled) {
    let mut p = Vec::with_capacity(13 + 9 * s.seqs.len());
    p.push(b'S');
    p.extend_from_slice(&s.low.to_le_bytes());
    p.extend_from_slice(&(s.seqs.len() as u32).to_le_bytes());
    for &(seq, dead) in &s.seqs {
        p.extend_from_slice(&seq.to_le_bytes());
        p.push(dead as u8);
    }
    frame(out, &MARK_MAGIC, 0, s.low, &p);
}

pub fn encode_dead(out: &mut Vec<u8>, d: &Dead) {
    let mut p = Vec::with_capacity(48 + d.error.len() + d.entry.json.len());
    p.push(b'D');
    p.extend_from_slice(&d.entry.seq.to_le_bytes());
    p.extend_from_slice(&d.entry.queued_at.to_le_bytes());
    p.extend_from_slice(&d.at.to_le_bytes());
    put_target(&mut p, &d.entry.target);
    put_str32(&mut p, &d.error);
    put_str32(&mut p, &d.entry.json);
    frame(out, &DEAD_MAGIC, 0, d.entry.seq, &p);
}

/// A cursor over a payload.
struct Cur<'a>(&'a [u8]);

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], BadPayload> {
        if self.0.len() < n {
            return Err(BadPayload);
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, BadPayload> {
        Ok(self.take(1)?[0])
    }
    fn u64(&mut self) -> Result<u64, BadPayload> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ]))
    }
    fn u32(&mut self) -> Result<u32, BadPayload> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn str_of(&mut self, n: usize) -> Result<String, BadPayload> {
        let b = self.take(n)?;
        core::str::from_utf8(b)
            .map(String::from)
            .map_err(|_| BadPayload)
    }
    fn str16(&mut self) -> Result<String, BadPayload> {
        let b = self.take(2)?;
        let n = u16::from_le_bytes([b[0], b[1]]) as usize;
        self.str_of(n)
    }
    fn str32(&mut self) -> Result<String, BadPayload> {
        let n = self.u32()? as usize;
        self.str_of(n)
    }
    fn target(&mut self) -> Result<Target, BadPayload> {
        match self.u8()? {
            1 => Ok(Target::Upsert {
                object: self.str16()?,
                field: self.str16()?,
            }),
            2 => Ok(Target::Event {
                object: self.str16()?,
            }),
            _ => Err(BadPayload),
        }
    }
    fn end<T>(&self, value: T) -> Result<T, BadPayload> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(BadPayload)
        }
    }
}

pub fn decode_log(payload: &[u8]) -> Result<LogItem, BadPayload> {
    let mut c = Cur(payload);
    match c.u8()? {
        b'H' => {
            let h = LogHeader {
                id: c.u64()?,
                generation: c.u64()?,
                next_seq: c.u64()?,
                delivered: c.u64()?,
            };
            c.end(LogItem::Header(h))
        }
        b'E' => {
            let e = Entry {
                seq: c.u64()?,
                queued_at: c.u64()?,
                target: c.target()?,
                json: c.str32()?,
            };
            c.end(LogItem::Entry(e))
        }
        _ => Err(BadPayload),
    }
}

pub fn decode_mark(payload: &[u8]) -> Result<MarkItem, BadPayload> {
    let mut c = Cur(payload);
    match c.u8()? {
        b'H' => {
            let g = c.u64()?;
            c.end(MarkItem::Header(g))
        }
        b'S' => {
            let low = c.u64()?;
            let n = c.u32()? as usize;
            // The count is bounded by the payload it claims, never trusted for an allocation.
            let mut seqs = Vec::with_capacity(n.min(c.0.len() / 9));
            for _ in 0..n {
                seqs.push((c.u64()?, c.u8()? != 0));
            }
            c.end(MarkItem::Settled(Settled { low, seqs }))
        }
        _ => Err(BadPayload),
    }
}

pub fn decode_dead(payload: &[u8]) -> Result<Dead, BadPayload> {
    let mut c = Cur(payload);
    if c.u8()? != b'D' {
        return Err(BadPayload);
    }
    let seq = c.u64()?;
    let queued_at = c.u64()?;
    let at = c.u64()?;
    let target = c.target()?;
    let error = c.str32()?;
    let json = c.str32()?;
    c.end(Dead {
        entry: Entry {
            seq,
            queued_at,
            target,
            json,
        },
        error,
        at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::frame::{HEADER_LEN, decode};

    fn payload(bytes: &[u8], magic: &[u8; 4]) -> Vec<u8> {
        let h = decode(bytes, magic, MAX_PAYLOAD, VERSION).ok().unwrap();
        bytes[HEADER_LEN..HEADER_LEN + h.len].to_vec()
    }

    #[test]
    fn every_payload_round_trips_and_entry_len_is_exact() {
        let e = Entry {
            seq: 1 << 40,
            queued_at: 1_700_000_000,
            target: Target::Upsert {
                object: "Reading__c".into(),
                field: "Key__c".into(),
            },
            json: r#"{"Key__c":"a","V__c":1}"#.into(),
        };
        let mut out = Vec::new();
        encode_entry(&mut out, &e, true);
        assert_eq!(out.len(), entry_len(&e));
        assert_eq!(out[5], CONTINUED);
        let Ok(LogItem::Entry(back)) = decode_log(&payload(&out, &LOG_MAGIC)) else {
            panic!("entry did not decode")
        };
        assert!(back == e);
        let ev = Entry {
            target: Target::Event {
                object: "Alarm__e".into(),
            },
            ..e.clone()
        };
        let mut out = Vec::new();
        encode_entry(&mut out, &ev, false);
        assert_eq!(out.len(), entry_len(&ev));

        let h = LogHeader {
            id: 0xABCD,
            generation: 3,
            next_seq: 99,
            delivered: 12,
        };
        let mut out = Vec::new();
        encode_header(&mut out, &h);
        assert_eq!(out.len(), 16 + 33 + 4, "state.rs reads this many bytes");
        assert!(matches!(decode_log(&payload(&out, &LOG_MAGIC)), Ok(LogItem::Header(x)) if x == h));

        let s = Settled {
            low: 5,
            seqs: vec![(5, false), (9, true)],
        };
        let mut out = Vec::new();
        encode_settled(&mut out, &s);
        assert_eq!(
            out.len(),
            settled_len(2),
            "settle.rs reserves this many bytes"
        );
        assert!(
            matches!(decode_mark(&payload(&out, &MARK_MAGIC)), Ok(MarkItem::Settled(x)) if x == s)
        );
        let mut out = Vec::new();
        encode_mark_header(&mut out, 7);
        assert_eq!(out.len(), MARK_HEADER_LEN);

        let d = Dead {
            entry: e,
            error: "INVALID_FIELD: No such column".into(),
            at: 1_700_000_100,
        };
        let mut out = Vec::new();
        encode_dead(&mut out, &d);
        assert!(matches!(decode_dead(&payload(&out, &DEAD_MAGIC)), Ok(x) if x == d));
    }

    #[test]
    fn short_or_foreign_payloads_are_refused_not_panicked_on() {
        let mut out = Vec::new();
        encode_settled(
            &mut out,
            &Settled {
                low: 1,
                seqs: vec![(1, false)],
            },
        );
        let p = payload(&out, &MARK_MAGIC);
        for len in 0..p.len() {
            assert!(decode_mark(&p[..len]).is_err(), "{len}");
        }
        assert!(decode_log(b"Zxxxx").is_err());
        assert!(decode_dead(b"").is_err());
        // A count that claims more than the payload holds.
        let mut lie = vec![b'S'];
        lie.extend_from_slice(&1u64.to_le_bytes());
        lie.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_mark(&lie).is_err());
    }
}
