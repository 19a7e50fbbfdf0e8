//! Ledger entries and their bytes: the only code that decides what is
//! hashed.
//!
//! An entry's bytes are the canonical JSON (see [`super::canonical`]) of
//! `{"actor", "index", "kind", "payload", "prev", "ts"}`: its position in the
//! log, the time it was appended (milliseconds since the Unix epoch, UTC),
//! what it records (`decision`, `bundle.upload`, `token.create`, …), the
//! authenticated actor, the payload, and `prev`, the hex hash of the entry
//! before it (64 zeros for entry 0). The entry hash is its Merkle leaf hash,
//! `blake3(0x00 ‖ bytes)`, so one hash both chains the entries and places
//! them in the tree.
//!
//! Limits: a payload nests at most [`MAX_PAYLOAD_DEPTH`] levels. The writer
//! refuses a deeper one at append ([`payload_depth`]), and every reader
//! ([`Entry::from_bytes`], [`Entry::head`]: the store's readers, export,
//! `verify`, `fsck`, the audit fan-out) checks the same limit first, so the
//! ledger never holds an entry it cannot read back, and a reader names the
//! limit rather than calling such an entry tampered. The limit sits well
//! inside the nesting every JSON parser here accepts (serde_json: 127
//! levels), leaving room for the envelopes a sink wraps events in.
//!
//! Invariant: no IO.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::canonical;
use super::merkle::{self, Hash};

/// `prev` of the first entry.
pub const GENESIS_PREV: Hash = Hash::from_bytes([0; 32]);

/// The deepest nesting of arrays and objects an entry's payload may have
/// (`{}` and `[]` are one level, a scalar none). The entry object itself
/// adds one.
pub const MAX_PAYLOAD_DEPTH: usize = 100;

/// The nesting depth of the JSON text `bytes` (arrays and objects; a
/// scalar is 0), found in one pass without parsing. Brackets inside
/// strings do not count. Stops counting past `stop` (returns `stop + 1`).
pub fn nesting(bytes: &[u8], stop: usize) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    max = depth;
                    if max > stop {
                        return stop + 1;
                    }
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// The nesting depth of a payload (canonical JSON bytes), or `Err(depth)`
/// when it passes [`MAX_PAYLOAD_DEPTH`]: what the writer checks at append.
pub fn payload_depth(payload: &[u8]) -> Result<usize, usize> {
    match nesting(payload, MAX_PAYLOAD_DEPTH) {
        d if d > MAX_PAYLOAD_DEPTH => Err(d),
        d => Ok(d),
    }
}

/// The check every reader makes before parsing entry bytes: the entry
/// object and a payload within [`MAX_PAYLOAD_DEPTH`].
fn check_depth(bytes: &[u8]) -> Result<(), EntryError> {
    if nesting(bytes, MAX_PAYLOAD_DEPTH + 1) > MAX_PAYLOAD_DEPTH + 1 {
        return Err(EntryError::TooDeep { max: MAX_PAYLOAD_DEPTH });
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub index: u64,
    pub ts: i64,
    pub kind: String,
    pub actor: String,
    pub payload: Value,
    #[serde(with = "hex_hash")]
    pub prev: Hash,
}

/// An entry's fields, its payload left as raw JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryHead<'a> {
    pub index: u64,
    pub ts: i64,
    #[serde(borrow)]
    pub kind: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub actor: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub payload: &'a serde_json::value::RawValue,
    #[serde(with = "hex_hash")]
    pub prev: Hash,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EntryError {
    #[error("entry {index}: not the canonical encoding of an entry")]
    NotCanonical { index: u64 },
    #[error("entry bytes are not an entry: {0}")]
    Malformed(String),
    #[error("entry {index}: index out of sequence (expected {expected})")]
    OutOfSequence { index: u64, expected: u64 },
    #[error("entry {index}: prev does not match the hash of entry {}", index.saturating_sub(1))]
    BrokenChain { index: u64 },
    /// Nested deeper than any entry the writer accepts.
    #[error("its payload nests deeper than {max} levels, the ledger's limit (the writer refuses such entries)")]
    TooDeep { max: usize },
}

impl Entry {
    /// The bytes that are hashed.
    pub fn to_bytes(&self) -> Vec<u8> {
        canonical::to_vec(&json!({
            "actor": self.actor,
            "index": self.index,
            "kind": self.kind,
            "payload": self.payload,
            "prev": self.prev.to_hex().to_string(),
            "ts": self.ts,
        }))
    }

    /// The bytes of an entry whose payload is already canonical JSON:
    /// byte for byte what [`Entry::to_bytes`] gives for the same entry, built
    /// without re-encoding the payload (members in canonical order: actor,
    /// index, kind, payload, prev, ts).
    pub fn encode(index: u64, ts: i64, kind: &str, actor: &str, payload: &[u8], prev: &Hash) -> Vec<u8> {
        let mut out = Vec::with_capacity(payload.len() + actor.len() + kind.len() + 140);
        out.extend_from_slice(b"{\"actor\":");
        canonical::write_string(actor, &mut out);
        out.extend_from_slice(b",\"index\":");
        out.extend_from_slice(index.to_string().as_bytes());
        out.extend_from_slice(b",\"kind\":");
        canonical::write_string(kind, &mut out);
        out.extend_from_slice(b",\"payload\":");
        out.extend_from_slice(payload);
        out.extend_from_slice(b",\"prev\":\"");
        out.extend_from_slice(prev.to_hex().as_bytes());
        out.extend_from_slice(b"\",\"ts\":");
        out.extend_from_slice(ts.to_string().as_bytes());
        out.push(b'}');
        out
    }

    /// Parses entry bytes, refusing any that are not exactly the canonical
    /// encoding (so one entry has one byte string, and one hash).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EntryError> {
        check_depth(bytes)?;
        let entry: Entry = serde_json::from_slice(bytes).map_err(|e| EntryError::Malformed(e.to_string()))?;
        if !canonical::is_canonical(bytes) {
            return Err(EntryError::NotCanonical { index: entry.index });
        }
        Ok(entry)
    }

    /// What a verifier needs of entry bytes (index, kind, prev, the payload
    /// unparsed), with the same checks as [`Entry::from_bytes`] but without
    /// building the payload: the fast path of offline verification.
    pub fn head(bytes: &[u8]) -> Result<EntryHead<'_>, EntryError> {
        check_depth(bytes)?;
        let head: EntryHead = serde_json::from_slice(bytes).map_err(|e| EntryError::Malformed(e.to_string()))?;
        if !canonical::is_canonical(bytes) {
            return Err(EntryError::NotCanonical { index: head.index });
        }
        Ok(head)
    }

    pub fn hash(&self) -> Hash {
        merkle::leaf_hash(&self.to_bytes())
    }
}

/// Checks indexes and the hash chain of consecutive entries starting at
/// `first_index`, whose predecessor hash is `prev`. Returns the last hash.
pub fn verify_chain<'a>(
    entries: impl IntoIterator<Item = &'a [u8]>,
    first_index: u64,
    mut prev: Hash,
) -> Result<Hash, EntryError> {
    for (expected, bytes) in (first_index..).zip(entries) {
        let e = Entry::from_bytes(bytes)?;
        if e.index != expected {
            return Err(EntryError::OutOfSequence {
                index: e.index,
                expected,
            });
        }
        if e.prev != prev {
            return Err(EntryError::BrokenChain { index: e.index });
        }
        prev = merkle::leaf_hash(bytes);
    }
    Ok(prev)
}

/// Serde for a hash as lower-case hex (entries and export headers).
pub(crate) mod hex_hash {
    use super::Hash;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(h: &Hash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&h.to_hex())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Hash, D::Error> {
        let text = String::deserialize(d)?;
        Hash::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, prev: Hash) -> Entry {
        Entry {
            index,
            ts: 1_795_308_111_311,
            kind: "decision".into(),
            actor: "token:tok_01 (ci)".into(),
            payload: json!({"allow": false, "now_ns": 1795308111311231335u64, "reasons": ["punch items still open"]}),
            prev,
        }
    }

    /// Bytes and hash computed independently (Python: sorted keys, compact
    /// separators, the `blake3` package).
    #[test]
    fn known_answer_bytes_and_hash() {
        let e = entry(0, GENESIS_PREV);
        let bytes = String::from_utf8(e.to_bytes()).unwrap();
        assert_eq!(
            bytes,
            r#"{"actor":"token:tok_01 (ci)","index":0,"kind":"decision","payload":{"allow":false,"now_ns":1795308111311231335,"reasons":["punch items still open"]},"prev":"0000000000000000000000000000000000000000000000000000000000000000","ts":1795308111311}"#
        );
        assert_eq!(e.hash().to_hex().as_str(), KNOWN_HASH);
    }

    #[test]
    fn encode_is_to_bytes() {
        let e = Entry {
            actor: "token:tok_\u{1}x \"q\" é".into(),
            kind: "bundle.upload".into(),
            ..entry(7, Hash::from_bytes([3; 32]))
        };
        let payload = canonical::to_vec(&e.payload);
        assert_eq!(
            Entry::encode(e.index, e.ts, &e.kind, &e.actor, &payload, &e.prev),
            e.to_bytes()
        );
    }

    #[test]
    fn head_reads_what_from_bytes_reads() {
        let e = entry(3, Hash::from_bytes([9; 32]));
        let bytes = e.to_bytes();
        let head = Entry::head(&bytes).unwrap();
        assert_eq!((head.index, head.ts, head.prev), (3, e.ts, e.prev));
        assert_eq!((&*head.kind, &*head.actor), ("decision", "token:tok_01 (ci)"));
        assert_eq!(serde_json::from_str::<Value>(head.payload.get()).unwrap(), e.payload);
        let spaced = String::from_utf8(bytes).unwrap().replacen(":", ": ", 1);
        assert_eq!(
            Entry::head(spaced.as_bytes()).unwrap_err(),
            EntryError::NotCanonical { index: 3 }
        );
        let extra = r#"{"actor":"a","extra":1,"index":0,"kind":"k","payload":{},"prev":"0000000000000000000000000000000000000000000000000000000000000000","ts":1}"#;
        assert!(matches!(Entry::head(extra.as_bytes()), Err(EntryError::Malformed(_))));
    }

    /// A payload nested `depth` levels: `{"a":{"a":…{"a":1}…}}`.
    fn nested(depth: usize) -> Value {
        let mut v = json!(1);
        for _ in 0..depth {
            v = json!({"a": v});
        }
        v
    }

    #[test]
    fn nesting_counts_brackets_outside_strings() {
        assert_eq!(nesting(b"1", 10), 0);
        assert_eq!(nesting(b"[]", 10), 1);
        assert_eq!(nesting(br#"{"a":[1,{"b":[]}],"c":"[[[[\"{"}"#, 10), 4);
        assert_eq!(nesting(br#"[[[[[[]]]]]]"#, 3), 4, "stops past the limit");
        assert_eq!(
            payload_depth(&canonical::to_vec(&nested(MAX_PAYLOAD_DEPTH))),
            Ok(MAX_PAYLOAD_DEPTH)
        );
        assert!(payload_depth(&canonical::to_vec(&nested(MAX_PAYLOAD_DEPTH + 1))).is_err());
    }

    /// Whatever the writer accepts, every reader reads: the deepest payload
    /// allowed parses, fully and head only, and is canonical; one level more
    /// is named as too deep, not as malformed or tampered.
    #[test]
    fn the_deepest_payload_the_writer_accepts_reads_back() {
        let e = Entry {
            payload: nested(MAX_PAYLOAD_DEPTH),
            ..entry(0, GENESIS_PREV)
        };
        let bytes = Entry::encode(
            e.index,
            e.ts,
            &e.kind,
            &e.actor,
            &canonical::to_vec(&e.payload),
            &e.prev,
        );
        assert_eq!(Entry::from_bytes(&bytes).unwrap(), e);
        assert_eq!(Entry::head(&bytes).unwrap().index, 0);
        assert!(canonical::is_canonical(&bytes));
        let deeper = Entry {
            payload: nested(MAX_PAYLOAD_DEPTH + 1),
            ..e
        };
        let bytes = deeper.to_bytes();
        let err = EntryError::TooDeep { max: MAX_PAYLOAD_DEPTH };
        assert_eq!(Entry::from_bytes(&bytes).unwrap_err(), err);
        assert_eq!(Entry::head(&bytes).unwrap_err(), err);
        // What serde_json itself could not read at all is named the same way.
        assert_eq!(
            Entry::from_bytes(
                &Entry {
                    payload: nested(200),
                    ..entry(0, GENESIS_PREV)
                }
                .to_bytes()
            )
            .unwrap_err(),
            err
        );
    }

    const KNOWN_HASH: &str = "115c09d3a66c9d2b3b5292236141f4cbf473d74067b12fd7c8ea2d6b3f6eba17";

    #[test]
    fn chains_verify_and_any_edit_is_named() {
        let mut entries = Vec::new();
        let mut prev = GENESIS_PREV;
        for i in 0..5 {
            let e = entry(i, prev);
            prev = e.hash();
            entries.push(e.to_bytes());
        }
        let last = verify_chain(entries.iter().map(Vec::as_slice), 0, GENESIS_PREV).unwrap();
        assert_eq!(last, prev);

        // An edited payload breaks the link to the next entry.
        let mut edited = entries.clone();
        let mut e = Entry::from_bytes(&edited[2]).unwrap();
        e.payload = json!({"allow": true});
        edited[2] = e.to_bytes();
        assert_eq!(
            verify_chain(edited.iter().map(Vec::as_slice), 0, GENESIS_PREV),
            Err(EntryError::BrokenChain { index: 3 })
        );
        // A deleted entry and swapped entries are out of sequence.
        let mut deleted = entries.clone();
        deleted.remove(1);
        assert_eq!(
            verify_chain(deleted.iter().map(Vec::as_slice), 0, GENESIS_PREV),
            Err(EntryError::OutOfSequence { index: 2, expected: 1 })
        );
        let mut swapped = entries.clone();
        swapped.swap(3, 4);
        assert_eq!(
            verify_chain(swapped.iter().map(Vec::as_slice), 0, GENESIS_PREV),
            Err(EntryError::OutOfSequence { index: 4, expected: 3 })
        );
        // Re-encoded bytes (whitespace) are refused: one entry, one encoding.
        let spaced = String::from_utf8(entries[0].clone()).unwrap().replacen(":", ": ", 1);
        assert_eq!(
            Entry::from_bytes(spaced.as_bytes()),
            Err(EntryError::NotCanonical { index: 0 })
        );
    }
}
