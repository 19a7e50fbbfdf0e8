//! The export file: a stretch of a log, with the checkpoints that sign it,
//! that an auditor verifies offline with [`super::verify::verify_export`].
//!
//! NDJSON, UTF-8, every line ending in `\n`:
//!
//! 1. a header, [`Header`]: the log's origin, the range `[from, to)`, the
//!    hash of entry `from - 1` (`prev`, 64 zeros when `from` is 0), the
//!    peaks of the Merkle tree of the first `from` entries (`frontier`, the
//!    hashes of `range_nodes(0, from)`, largest first, so that verification
//!    can start mid-log), and every signing key the log has used;
//! 2. for each index `from..to`, the entry's exact bytes (canonical JSON
//!    never holds a raw newline, and an entry's first member is `actor`, so
//!    an entry line always begins with `{"actor":`);
//! 3. checkpoint lines, `{"checkpoint":"<signed note>"}`, right after the
//!    header (size `from`) or after the line of entry `i` (size `i + 1`);
//!    normally one per batch, and one covering the last entry.
//!
//! Key rotations are entries of kind [`KEY_ROTATE`] whose payload is a
//! [`KeyRotation`].
//!
//! Invariant: no IO; this module only writes and reads lines.

use serde::{Deserialize, Serialize};

use super::merkle::{Frontier, Hash};

/// The header's `format`.
pub const FORMAT: &str = "warden-ledger-export/1";

/// The kind of the entry that records a change of the log's signing key.
pub const KEY_ROTATE: &str = "ledger.key.rotate";

const ENTRY_PREFIX: &[u8] = br#"{"actor":"#;
const CHECKPOINT_PREFIX: &[u8] = br#"{"checkpoint":"#;

/// Line 1 of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Always [`FORMAT`].
    pub format: String,
    /// The log's origin, as in its checkpoints.
    pub log: String,
    /// The first exported index.
    pub from: u64,
    /// One past the last exported index.
    pub to: u64,
    /// The hash of entry `from - 1`; 64 zeros when `from` is 0.
    #[serde(with = "super::entry::hex_hash")]
    pub prev: Hash,
    /// The peaks of the tree of the first `from` entries, largest first.
    #[serde(with = "hex_hashes")]
    pub frontier: Vec<Hash>,
    /// Every ledger signing key the server knows, current and retired.
    pub keys: Vec<KeyInfo>,
    /// When the export was made, milliseconds since the Unix epoch.
    pub exported_at: i64,
}

/// A signing key, as listed in the header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyInfo {
    /// The verifier key text, `name+hexid+base64key`.
    pub verifier: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

/// The payload of a [`KEY_ROTATE`] entry: verifier key texts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRotation {
    pub previous: String,
    pub next: String,
}

impl Header {
    /// The header of an export of `[frontier.size(), to)`, where `prev` is
    /// the hash of the entry before the first exported one.
    pub fn new(log: &str, frontier: &Frontier, prev: Hash, to: u64, keys: Vec<KeyInfo>, exported_at: i64) -> Self {
        Header {
            format: FORMAT.to_string(),
            log: log.to_string(),
            from: frontier.size(),
            to,
            prev,
            frontier: frontier.peaks().to_vec(),
            keys,
            exported_at,
        }
    }

    /// Parses line 1 (without its newline). Checks the JSON shape only; the
    /// verifier checks the values.
    pub fn parse(line: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(line)
    }
}

/// The header line, newline included.
pub fn header_line(header: &Header) -> Vec<u8> {
    let mut line = serde_json::to_vec(header).expect("a header always serialises");
    line.push(b'\n');
    line
}

/// The line of a signed checkpoint note, newline included.
pub fn checkpoint_line(note: &str) -> Vec<u8> {
    #[derive(Serialize)]
    struct Line<'a> {
        checkpoint: &'a str,
    }
    let mut line = serde_json::to_vec(&Line { checkpoint: note }).expect("a string always serialises");
    line.push(b'\n');
    line
}

/// The line of an entry: its exact bytes and a newline.
pub fn entry_line(bytes: &[u8]) -> Vec<u8> {
    debug_assert!(!bytes.contains(&b'\n'), "canonical entry bytes hold no raw newline");
    let mut line = Vec::with_capacity(bytes.len() + 1);
    line.extend_from_slice(bytes);
    line.push(b'\n');
    line
}

/// What a line after the header holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    Entry,
    Checkpoint,
}

/// Classifies a line after the header (without its newline) by its first
/// bytes; None for anything else. Cheap: the line is not parsed.
pub fn line_kind(line: &[u8]) -> Option<LineKind> {
    if line.starts_with(ENTRY_PREFIX) {
        Some(LineKind::Entry)
    } else if line.starts_with(CHECKPOINT_PREFIX) {
        Some(LineKind::Checkpoint)
    } else {
        None
    }
}

/// The signed note of a checkpoint line (without its newline).
pub fn checkpoint_note(line: &[u8]) -> Result<String, serde_json::Error> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Line {
        checkpoint: String,
    }
    serde_json::from_slice::<Line>(line).map(|l| l.checkpoint)
}

mod hex_hashes {
    use super::Hash;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(hs: &[Hash], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(hs.iter().map(|h| h.to_hex().to_string()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Hash>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|text| Hash::from_hex(text).map_err(serde::de::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::merkle::leaf_hash;

    #[test]
    fn header_round_trips_and_is_one_line() {
        let mut frontier = Frontier::default();
        for i in 0..5u8 {
            frontier.push(leaf_hash(&[i]));
        }
        let header = Header::new(
            "warden.example/log/acme",
            &frontier,
            leaf_hash(&[4]),
            9,
            vec![KeyInfo {
                verifier: "k+00000000+AQ".into(),
                created_at: 1,
                retired_at: None,
            }],
            2,
        );
        let line = header_line(&header);
        assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
        assert!(line.ends_with(b"\n"));
        let text = std::str::from_utf8(&line).unwrap();
        assert!(text.starts_with(
            r#"{"format":"warden-ledger-export/1","log":"warden.example/log/acme","from":5,"to":9,"prev":""#
        ));
        assert!(text.contains(&format!(
            r#""frontier":["{}","{}"]"#,
            frontier.peaks()[0].to_hex(),
            frontier.peaks()[1].to_hex()
        )));
        assert!(text.contains(r#""retired_at":null"#));
        assert_eq!(Header::parse(&line[..line.len() - 1]).unwrap(), header);
        // Unknown members and bad hashes are refused.
        let extra = text.trim_end().replacen('{', r#"{"extra":1,"#, 1);
        assert!(Header::parse(extra.as_bytes()).is_err());
        let short = text.replacen(&header.prev.to_hex().to_string(), "00", 1);
        assert!(Header::parse(short.trim_end().as_bytes()).is_err());
    }

    #[test]
    fn lines_are_classified_and_notes_survive_escaping() {
        let note = "warden.example/log/acme\n5\nrxNJufX5oaagQE3qNtzJSZvLJcmtwRK3zJqTyuQfMmI=\n\n\u{2014} warden.example/log/acme 9BX3\n";
        let line = checkpoint_line(note);
        assert!(line.ends_with(b"\n"));
        assert_eq!(
            line.iter().filter(|b| **b == b'\n').count(),
            1,
            "the note's newlines are escaped"
        );
        let body = &line[..line.len() - 1];
        assert_eq!(line_kind(body), Some(LineKind::Checkpoint));
        assert_eq!(checkpoint_note(body).unwrap(), note);
        assert!(checkpoint_note(br#"{"checkpoint":"x","size":5}"#).is_err());

        let entry = br#"{"actor":"system","index":0,"kind":"decision","payload":{},"prev":"00","ts":1}"#;
        assert_eq!(entry_line(entry), [&entry[..], b"\n"].concat());
        assert_eq!(line_kind(entry), Some(LineKind::Entry));
        assert_eq!(line_kind(b""), None);
        assert_eq!(line_kind(br#"{ "actor":"system"}"#), None);
        assert_eq!(line_kind(br#"{"format":"warden-ledger-export/1"}"#), None);
    }
}
