//! Offline verification, from the log's public key alone: of an export (see
//! [`super::export`]) and of one receipt.
//!
//! # An export
//!
//! [`verify_export`] reads the file once and fails at the first problem, in
//! file order:
//!
//! - the header: the format, `from ≤ to`, a frontier of one peak per one bit
//!   of `from`, `prev` all zeros when `from` is 0 (and equal to the last peak,
//!   the leaf of entry `from - 1`, when `from` is odd);
//! - each entry: its bytes are the canonical encoding of an entry, its index
//!   is the next one (a deleted entry leaves a gap, swapped entries are out of
//!   sequence), its `prev` is the hash of the entry before it (the header's
//!   `prev` for the first), and it lies within `[from, to)`;
//! - each checkpoint: its origin is the header's `log`, its size is the number
//!   of entries before it, its root is the root recomputed from the header's
//!   frontier and the entries, and it is signed as the key rules below say;
//! - at the end: `to - from` entries were read, the last one is covered by a
//!   checkpoint, and every key that signed a checkpoint is trusted.
//!
//! Successive checkpoints are consistent by construction: every root is
//! recomputed from one sequence of leaves (the header's frontier, then each
//! entry's hash in order), so each checkpoint's tree is a prefix of the next
//! one's, and no consistency proof is needed inside an export. The frontier
//! itself is authenticated by the first checkpoint's root. When `from` is even
//! the header's `prev` is not part of the tree; it is then pinned by entry
//! `from`'s own `prev`, which is.
//!
//! # Keys
//!
//! Signatures are checked against the keys the header lists plus the trusted
//! keys; a signature line by a key in neither is ignored (C2SP), and a known
//! key's signature that fails is an error. The log's signing key is the first
//! key that signed the first checkpoint, until a [`KEY_ROTATE`] entry at
//! index `i` names it as `previous`; the first checkpoint after `i` must then
//! be signed by both `previous` and `next`, and every later one by `next`. A
//! key is trusted if it was given, or linked to a trusted key by a rotation
//! (either way: the new key signed checkpoints covering the rotation, and the
//! old key cosigned one). Trust is decided at the end, since a later rotation
//! can link a key.
//!
//! # Speed
//!
//! Lines are read in chunks into one reused buffer. Within a chunk, the
//! canonical check, hashing and signature verification run on up to
//! [`MAX_WORKERS`] threads; then the checks that depend on order (sequence,
//! chain, tree, keys) run over the chunk in order, so the problem reported is
//! still the first one in the file.

use std::io::BufRead;

use serde::Serialize;

use super::checkpoint::{self, Checkpoint, CheckpointError, NoteVerifier};
use super::entry::{Entry, EntryError, GENESIS_PREV};
use super::export::{self, FORMAT, Header, KEY_ROTATE, KeyRotation, LineKind};
use super::merkle::{self, Frontier, Hash};
use super::receipt::Receipt;

/// Lines read, then checked, at a time.
const CHUNK_LINES: usize = 4096;
/// Threads that parse and hash a chunk (bounded by the machine's cores).
pub const MAX_WORKERS: usize = 2;
/// Below this many lines a chunk is parsed on the calling thread.
const PARALLEL_MIN_LINES: usize = 256;

/// What a verified export contains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub log: String,
    pub from: u64,
    pub to: u64,
    pub entries: u64,
    pub checkpoints: u64,
    /// Hex root of the tree of size `to`, which the last checkpoint signs.
    pub root: String,
    /// Verifier key texts of the keys that signed checkpoints, in order of
    /// first use.
    pub keys_used: Vec<String>,
}

/// The first problem found. `index` is the entry index for entry problems,
/// the tree size for checkpoint problems; `line` is the 1-based line of the
/// export (0 for receipts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyError {
    pub index: Option<u64>,
    pub line: u64,
    pub kind: ErrorKind,
}

impl VerifyError {
    pub fn index(&self) -> Option<u64> {
        self.index
    }

    fn new(index: Option<u64>, line: u64, kind: ErrorKind) -> Self {
        Self { index, line, kind }
    }
}

/// What a [`VerifyError`] is about; decides how it is introduced.
enum Subject {
    Line,
    Header,
    Entry,
    Checkpoint,
    End,
    Receipt,
}

impl std::fmt::Display for VerifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (line, kind) = (self.line, &self.kind);
        let index = self.index.map_or_else(|| "?".to_string(), |i| i.to_string());
        match kind.subject() {
            Subject::Line => write!(f, "line {line}: {kind}"),
            Subject::Header => write!(f, "header: {kind}"),
            Subject::Entry => write!(f, "entry {index} (line {line}): {kind}"),
            Subject::Checkpoint => write!(f, "checkpoint at size {index} (line {line}): {kind}"),
            Subject::End => write!(f, "{kind}"),
            Subject::Receipt => write!(f, "receipt for entry {index}: {kind}"),
        }
    }
}

impl std::error::Error for VerifyError {}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    // Reading.
    #[error("cannot read the export: {0}")]
    Io(String),
    #[error("the export is empty")]
    Empty,
    #[error("does not end with a newline (truncated file?)")]
    MissingNewline,
    #[error("neither an entry nor a checkpoint")]
    UnknownLine,

    // The header.
    #[error("{0}")]
    Header(String),

    // Entries.
    #[error("not an entry: {0}")]
    MalformedEntry(String),
    #[error("not the canonical encoding of an entry")]
    NotCanonical,
    #[error("out of sequence: entry {found} is where entry {expected} belongs (entries deleted or reordered)")]
    OutOfSequence { expected: u64, found: u64 },
    #[error("prev does not match the hash of entry {previous} (entry {previous} or the chain was altered)")]
    BrokenChain { previous: u64 },
    #[error("prev does not match the header's prev, the hash of entry {previous}")]
    PrevNotHeader { previous: u64 },
    #[error("prev of entry 0 is not 64 zeros")]
    PrevNotGenesis,
    #[error("beyond the export's range, which ends before entry {to}")]
    BeyondRange { to: u64 },
    #[error("invalid key rotation: {0}")]
    BadRotation(String),
    #[error("key rotation from {previous}, but the log's signing key is {current}")]
    RotationFromOtherKey { previous: String, current: String },
    #[error("key rotation before the rotation at entry {pending} was covered by a checkpoint")]
    RotationPending { pending: u64 },

    // Checkpoints.
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(String),
    #[error("signature by {0} does not verify")]
    BadSignature(String),
    #[error("not signed by any known key")]
    NoKnownSignature,
    #[error("origin {found:?} is not the log's origin {expected:?}")]
    WrongOrigin { found: String, expected: String },
    #[error("placed where the tree has {position} entries")]
    WrongPosition { position: u64 },
    #[error("root does not match the entries ({})", suspects(*since, *size, *first))]
    RootMismatch { since: u64, size: u64, first: bool },
    #[error("differs from the checkpoint of the same size before it")]
    ConflictingCheckpoint,
    #[error("not signed by the log's signing key {key}{}", if *known { "" } else { " (a key neither in the header nor trusted)" })]
    NotSignedByCurrent { key: String, known: bool },
    #[error("signed by the retired key {retired}, not by the log's signing key {current}")]
    SignedByRetired { retired: String, current: String },
    #[error("first checkpoint after the key rotation at entry {at}: not signed by both {previous} and {next}")]
    NotCosigned { at: u64, previous: String, next: String },
    #[error("signed by {key}, which is neither a trusted key nor linked to one by a key rotation")]
    UntrustedKey { key: String },

    // The end of the file.
    #[error("the export ends before entry {next}, but its header says it runs to {to}")]
    MissingEntries { next: u64, to: u64 },
    #[error("entries after size {size} are not covered by a signed checkpoint")]
    Uncovered { size: u64 },
    #[error("no signed checkpoint covers the header's tree of size {size}")]
    NoCheckpoint { size: u64 },

    // Receipts.
    #[error("checkpoint: {0}")]
    ReceiptCheckpoint(String),
    #[error("checkpoint origin {found:?} is not the receipt's log {expected:?}")]
    ReceiptWrongLog { found: String, expected: String },
    #[error("checkpoint size {found} is not the receipt's tree size {expected}")]
    ReceiptWrongSize { found: u64, expected: u64 },
    #[error("{0}")]
    ReceiptMalformed(String),
    #[error("the inclusion proof does not lead from the entry hash to the checkpoint's root")]
    NotIncluded,
    #[error("the entry's bytes do not hash to the receipt's entry hash")]
    EntryHashMismatch,
    #[error("the entry's bytes are not an entry: {0}")]
    ReceiptEntry(String),
    #[error("the entry's bytes are entry {found}")]
    EntryIndexMismatch { found: u64 },
}

impl ErrorKind {
    fn subject(&self) -> Subject {
        use ErrorKind::*;
        match self {
            Io(_) | Empty | MissingNewline | UnknownLine => Subject::Line,
            Header(_) => Subject::Header,
            MalformedEntry(_)
            | NotCanonical
            | OutOfSequence { .. }
            | BrokenChain { .. }
            | PrevNotHeader { .. }
            | PrevNotGenesis
            | BeyondRange { .. }
            | BadRotation(_)
            | RotationFromOtherKey { .. }
            | RotationPending { .. } => Subject::Entry,
            MalformedCheckpoint(_)
            | BadSignature(_)
            | NoKnownSignature
            | WrongOrigin { .. }
            | WrongPosition { .. }
            | RootMismatch { .. }
            | ConflictingCheckpoint
            | NotSignedByCurrent { .. }
            | SignedByRetired { .. }
            | NotCosigned { .. }
            | UntrustedKey { .. } => Subject::Checkpoint,
            MissingEntries { .. } | Uncovered { .. } | NoCheckpoint { .. } => Subject::End,
            ReceiptCheckpoint(_)
            | ReceiptWrongLog { .. }
            | ReceiptWrongSize { .. }
            | ReceiptMalformed(_)
            | NotIncluded
            | EntryHashMismatch
            | ReceiptEntry(_)
            | EntryIndexMismatch { .. } => Subject::Receipt,
        }
    }
}

/// Which leaves a root mismatch implicates: those since the last verified
/// checkpoint (or, before the first, since the header's frontier).
fn suspects(since: u64, size: u64, first: bool) -> String {
    if size == since {
        return "the header's frontier or the checkpoint was altered".into();
    }
    let range = if size == since + 1 {
        format!("entry {since}")
    } else {
        format!("one of entries {since} to {}", size - 1)
    };
    let frontier = if first && since > 0 {
        ", the header's frontier"
    } else {
        ""
    };
    format!("{range}{frontier} or the checkpoint was altered")
}

/// `name+keyid`: names a key briefly and unambiguously in messages (rotated
/// keys usually keep their name).
fn label(key: &NoteVerifier) -> String {
    format!("{}+{}", key.name, hex::encode(key.key_id()))
}

/// Verifies an export read from `reader` (see the module documentation),
/// calling `progress` with the bytes consumed so far after the header and
/// after each chunk of lines.
pub fn verify_export<R: BufRead>(
    mut reader: R,
    trusted: &[NoteVerifier],
    progress: &mut dyn FnMut(u64),
) -> Result<Report, VerifyError> {
    let mut consumed = 0u64;
    let mut chunk = Chunk::default();
    let header = read_header(&mut reader, &mut chunk.buf, &mut consumed)?;
    progress(consumed);
    let keys = known_keys(&header, trusted)?;
    let mut state = State::new(header, &keys);
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_WORKERS));
    let mut next_line = 2;
    loop {
        let stop = chunk.read(&mut reader, &mut next_line, &mut consumed);
        let parsed = parse_chunk(&chunk, &keys, workers);
        // A part stops after its first failure, which is then reported before
        // any line of the following parts is looked at.
        for ((_, _, kind), (line, parsed)) in chunk.lines.iter().zip((chunk.first_line..).zip(parsed)) {
            match (kind, parsed) {
                (_, Err(e)) => return Err(state.parse_error(line, e)),
                (LineKind::Entry, Ok(Parsed::Entry(entry))) => state.entry(line, entry)?,
                (LineKind::Checkpoint, Ok(Parsed::Checkpoint(cp))) => state.checkpoint(line, cp)?,
                _ => unreachable!("lines are parsed as what they were classified as"),
            }
        }
        progress(consumed);
        match stop {
            Stop::Full => continue,
            Stop::Eof => return state.finish(next_line, trusted),
            Stop::Failed(e) => return Err(e),
        }
    }
}

fn read_header<R: BufRead>(reader: &mut R, buf: &mut Vec<u8>, consumed: &mut u64) -> Result<Header, VerifyError> {
    let header_error = |msg: String| VerifyError::new(None, 1, ErrorKind::Header(msg));
    let n = reader
        .read_until(b'\n', buf)
        .map_err(|e| VerifyError::new(None, 1, ErrorKind::Io(e.to_string())))?;
    *consumed += n as u64;
    match buf.pop() {
        None => return Err(VerifyError::new(None, 1, ErrorKind::Empty)),
        Some(b'\n') => {}
        Some(_) => return Err(VerifyError::new(None, 1, ErrorKind::MissingNewline)),
    }
    let header = Header::parse(buf).map_err(|e| header_error(format!("not an export header: {e}")))?;
    if header.format != FORMAT {
        return Err(header_error(format!("format {:?} is not {FORMAT:?}", header.format)));
    }
    if header.log.is_empty() {
        return Err(header_error("log is empty".into()));
    }
    if header.from > header.to {
        return Err(header_error(format!("from {} is after to {}", header.from, header.to)));
    }
    let peaks = header.from.count_ones() as usize;
    if header.frontier.len() != peaks {
        return Err(header_error(format!(
            "frontier has {} peaks, but a tree of {} entries has {peaks}",
            header.frontier.len(),
            header.from
        )));
    }
    if header.from == 0 && header.prev != GENESIS_PREV {
        return Err(header_error("prev must be 64 zeros when from is 0".into()));
    }
    // An odd-sized tree's last peak is its last leaf: entry from - 1.
    if header.from % 2 == 1 && header.frontier.last() != Some(&header.prev) {
        return Err(header_error(format!(
            "prev is not the frontier's last leaf, the hash of entry {}",
            header.from - 1
        )));
    }
    Ok(header)
}

/// The header's keys plus the trusted ones, each once.
fn known_keys(header: &Header, trusted: &[NoteVerifier]) -> Result<Vec<NoteVerifier>, VerifyError> {
    let mut keys: Vec<NoteVerifier> = Vec::new();
    for (i, info) in header.keys.iter().enumerate() {
        let key = NoteVerifier::parse(&info.verifier)
            .map_err(|e| VerifyError::new(None, 1, ErrorKind::Header(format!("key {i}: {e}"))))?;
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    for key in trusted {
        if !keys.contains(key) {
            keys.push(key.clone());
        }
    }
    Ok(keys)
}

/// Lines read from the export into one buffer that is reused.
#[derive(Default)]
struct Chunk {
    buf: Vec<u8>,
    /// `(start, end, kind)` of each line in `buf`, the newline excluded.
    lines: Vec<(usize, usize, LineKind)>,
    /// The line number of `lines[0]`.
    first_line: u64,
}

/// Why a chunk ended.
enum Stop {
    Full,
    Eof,
    /// A line that cannot be read or classified; reported once the lines
    /// before it are checked.
    Failed(VerifyError),
}

impl Chunk {
    fn read<R: BufRead>(&mut self, reader: &mut R, next_line: &mut u64, consumed: &mut u64) -> Stop {
        self.buf.clear();
        self.lines.clear();
        self.first_line = *next_line;
        while self.lines.len() < CHUNK_LINES {
            let start = self.buf.len();
            let fail = |kind| Stop::Failed(VerifyError::new(None, *next_line, kind));
            match reader.read_until(b'\n', &mut self.buf) {
                Ok(0) => return Stop::Eof,
                Ok(n) => *consumed += n as u64,
                Err(e) => return fail(ErrorKind::Io(e.to_string())),
            }
            if self.buf.last() != Some(&b'\n') {
                return fail(ErrorKind::MissingNewline);
            }
            let end = self.buf.len() - 1;
            let Some(kind) = export::line_kind(&self.buf[start..end]) else {
                return fail(ErrorKind::UnknownLine);
            };
            self.lines.push((start, end, kind));
            *next_line += 1;
        }
        Stop::Full
    }
}

/// What the order-independent work found in a line.
enum Parsed {
    Entry(ParsedEntry),
    Checkpoint(OpenedCheckpoint),
}

struct ParsedEntry {
    index: u64,
    prev: Hash,
    hash: Hash,
    /// For a key rotation entry, its `(previous, next)` keys, or why they
    /// are invalid (boxed: rotations are rare and keys are large).
    rotation: Option<Result<Box<(NoteVerifier, NoteVerifier)>, String>>,
}

struct OpenedCheckpoint {
    note: String,
    checkpoint: Checkpoint,
    /// Positions in the known keys of the keys whose signatures verified.
    signed: Vec<usize>,
}

enum ParseError {
    Entry(EntryError),
    Checkpoint(CheckpointError),
}

fn parse_chunk(chunk: &Chunk, keys: &[NoteVerifier], workers: usize) -> Vec<Result<Parsed, ParseError>> {
    let lines = &chunk.lines;
    if workers < 2 || lines.len() < PARALLEL_MIN_LINES {
        return parse_lines(&chunk.buf, lines, keys);
    }
    let mut parts = lines.chunks(lines.len().div_ceil(workers));
    let first = parts.next().unwrap_or_default();
    std::thread::scope(|s| {
        let others: Vec<_> = parts
            .map(|part| s.spawn(|| parse_lines(&chunk.buf, part, keys)))
            .collect();
        let mut out = parse_lines(&chunk.buf, first, keys);
        for handle in others {
            out.extend(handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
        }
        out
    })
}

/// Parses lines until the first that fails (included).
fn parse_lines(
    buf: &[u8],
    lines: &[(usize, usize, LineKind)],
    keys: &[NoteVerifier],
) -> Vec<Result<Parsed, ParseError>> {
    let mut out = Vec::with_capacity(lines.len());
    for &(start, end, kind) in lines {
        let line = &buf[start..end];
        let parsed = match kind {
            LineKind::Entry => parse_entry(line).map(Parsed::Entry),
            LineKind::Checkpoint => open_checkpoint(line, keys).map(Parsed::Checkpoint),
        };
        let failed = parsed.is_err();
        out.push(parsed);
        if failed {
            break;
        }
    }
    out
}

fn parse_entry(bytes: &[u8]) -> Result<ParsedEntry, ParseError> {
    let entry = Entry::head(bytes).map_err(ParseError::Entry)?;
    let rotation = (entry.kind == KEY_ROTATE)
        .then(|| rotation_keys(serde_json::from_str(entry.payload.get()).unwrap_or(serde_json::Value::Null)));
    Ok(ParsedEntry {
        index: entry.index,
        prev: entry.prev,
        hash: merkle::leaf_hash(bytes),
        rotation,
    })
}

fn rotation_keys(payload: serde_json::Value) -> Result<Box<(NoteVerifier, NoteVerifier)>, String> {
    let rotation: KeyRotation = serde_json::from_value(payload).map_err(|e| e.to_string())?;
    let previous = NoteVerifier::parse(&rotation.previous).map_err(|e| format!("previous: {e}"))?;
    let next = NoteVerifier::parse(&rotation.next).map_err(|e| format!("next: {e}"))?;
    if previous == next {
        return Err("previous and next are the same key".into());
    }
    Ok(Box::new((previous, next)))
}

fn open_checkpoint(line: &[u8], keys: &[NoteVerifier]) -> Result<OpenedCheckpoint, ParseError> {
    let note = export::checkpoint_note(line)
        .map_err(|e| ParseError::Checkpoint(CheckpointError::Malformed(format!("not a checkpoint line: {e}"))))?;
    let (checkpoint, signed) = checkpoint::open_all(&note, keys).map_err(ParseError::Checkpoint)?;
    Ok(OpenedCheckpoint {
        note,
        checkpoint,
        signed,
    })
}

/// A key rotation read but not yet covered by a checkpoint.
struct Rotation {
    at: u64,
    previous: NoteVerifier,
    next: NoteVerifier,
}

/// The order-dependent checks.
struct State<'k> {
    header: Header,
    keys: &'k [NoteVerifier],
    frontier: Frontier,
    /// The hash of the last entry read (the header's `prev` before any).
    last_hash: Hash,
    /// The size and note of the last checkpoint.
    last_checkpoint: Option<(u64, String)>,
    checkpoints: u64,
    /// The log's signing key, once known.
    current: Option<NoteVerifier>,
    pending: Option<Rotation>,
    /// `(previous, next)` of every rotation.
    links: Vec<(NoteVerifier, NoteVerifier)>,
    /// Keys (positions in `keys`) that signed checkpoints, with the size and
    /// line of the first checkpoint each signed.
    used: Vec<(usize, u64, u64)>,
}

impl<'k> State<'k> {
    fn new(header: Header, keys: &'k [NoteVerifier]) -> Self {
        let frontier = Frontier::from_peaks(header.from, header.frontier.clone())
            .expect("the header's frontier length was checked");
        Self {
            last_hash: header.prev,
            header,
            keys,
            frontier,
            last_checkpoint: None,
            checkpoints: 0,
            current: None,
            pending: None,
            links: Vec::new(),
            used: Vec::new(),
        }
    }

    fn parse_error(&self, line: u64, error: ParseError) -> VerifyError {
        let position = self.frontier.size();
        match error {
            ParseError::Entry(EntryError::NotCanonical { index }) => {
                VerifyError::new(Some(index), line, ErrorKind::NotCanonical)
            }
            ParseError::Entry(e) => {
                let msg = match e {
                    EntryError::Malformed(msg) => msg,
                    other => other.to_string(),
                };
                VerifyError::new(Some(position), line, ErrorKind::MalformedEntry(msg))
            }
            ParseError::Checkpoint(e) => {
                let kind = match e {
                    CheckpointError::Malformed(msg) => ErrorKind::MalformedCheckpoint(msg),
                    CheckpointError::BadSignature(name) => ErrorKind::BadSignature(name),
                    CheckpointError::UnknownKey => ErrorKind::NoKnownSignature,
                    CheckpointError::BadKey(msg) => ErrorKind::MalformedCheckpoint(msg),
                };
                VerifyError::new(Some(position), line, kind)
            }
        }
    }

    fn entry(&mut self, line: u64, entry: ParsedEntry) -> Result<(), VerifyError> {
        let expected = self.frontier.size();
        let err = |kind| VerifyError::new(Some(expected), line, kind);
        if expected == self.header.to {
            return Err(err(ErrorKind::BeyondRange { to: self.header.to }));
        }
        if entry.index != expected {
            return Err(err(ErrorKind::OutOfSequence {
                expected,
                found: entry.index,
            }));
        }
        if entry.prev != self.last_hash {
            return Err(err(if expected == 0 {
                ErrorKind::PrevNotGenesis
            } else if expected == self.header.from {
                ErrorKind::PrevNotHeader { previous: expected - 1 }
            } else {
                ErrorKind::BrokenChain { previous: expected - 1 }
            }));
        }
        self.last_hash = entry.hash;
        self.frontier.push(entry.hash);
        let Some(rotation) = entry.rotation else {
            return Ok(());
        };
        let (previous, next) = *rotation.map_err(|msg| err(ErrorKind::BadRotation(msg)))?;
        if let Some(pending) = &self.pending {
            return Err(err(ErrorKind::RotationPending { pending: pending.at }));
        }
        if let Some(current) = &self.current
            && *current != previous
        {
            return Err(err(ErrorKind::RotationFromOtherKey {
                previous: label(&previous),
                current: label(current),
            }));
        }
        self.links.push((previous.clone(), next.clone()));
        self.current = Some(next.clone());
        self.pending = Some(Rotation {
            at: expected,
            previous,
            next,
        });
        Ok(())
    }

    fn checkpoint(&mut self, line: u64, opened: OpenedCheckpoint) -> Result<(), VerifyError> {
        let OpenedCheckpoint {
            note,
            checkpoint,
            signed,
        } = opened;
        let position = self.frontier.size();
        let err = |kind| VerifyError::new(Some(checkpoint.size), line, kind);
        if let Some((size, last)) = &self.last_checkpoint
            && *size == position
        {
            return if *last == note {
                Ok(())
            } else {
                Err(err(ErrorKind::ConflictingCheckpoint))
            };
        }
        if checkpoint.origin != self.header.log {
            return Err(err(ErrorKind::WrongOrigin {
                found: checkpoint.origin.clone(),
                expected: self.header.log.clone(),
            }));
        }
        if checkpoint.size != position {
            return Err(err(ErrorKind::WrongPosition { position }));
        }
        if checkpoint.root != self.frontier.root() {
            let since = self.last_checkpoint.as_ref().map(|(size, _)| *size);
            return Err(err(ErrorKind::RootMismatch {
                since: since.unwrap_or(self.header.from),
                size: position,
                first: since.is_none(),
            }));
        }
        self.check_signers(&signed).map_err(err)?;
        for &key in &signed {
            if !self.used.iter().any(|(k, _, _)| *k == key) {
                self.used.push((key, position, line));
            }
        }
        self.last_checkpoint = Some((position, note));
        self.checkpoints += 1;
        Ok(())
    }

    /// The key rules: the signing key signs; a rotation's first checkpoint is
    /// cosigned by the old and the new key.
    fn check_signers(&mut self, signed: &[usize]) -> Result<(), ErrorKind> {
        let has = |key: &NoteVerifier| signed.iter().any(|&i| self.keys[i] == *key);
        if let Some(rotation) = &self.pending {
            if !(has(&rotation.previous) && has(&rotation.next)) {
                return Err(ErrorKind::NotCosigned {
                    at: rotation.at,
                    previous: label(&rotation.previous),
                    next: label(&rotation.next),
                });
            }
            self.pending = None;
            return Ok(());
        }
        match &self.current {
            Some(current) if !has(current) => {
                let retired = self.links.iter().map(|(previous, _)| previous).find(|key| has(key));
                Err(match retired {
                    Some(retired) => ErrorKind::SignedByRetired {
                        retired: label(retired),
                        current: label(current),
                    },
                    None => ErrorKind::NotSignedByCurrent {
                        key: label(current),
                        known: self.keys.contains(current),
                    },
                })
            }
            Some(_) => Ok(()),
            None => {
                self.current = Some(self.keys[signed[0]].clone());
                Ok(())
            }
        }
    }

    fn finish(self, next_line: u64, trusted: &[NoteVerifier]) -> Result<Report, VerifyError> {
        let size = self.frontier.size();
        let to = self.header.to;
        let at_end = |index, kind| Err(VerifyError::new(Some(index), next_line, kind));
        if size < to {
            return at_end(size, ErrorKind::MissingEntries { next: size, to });
        }
        match &self.last_checkpoint {
            Some((covered, _)) if *covered == size => {}
            _ if to == 0 => {}
            Some((covered, _)) => return at_end(*covered, ErrorKind::Uncovered { size: *covered }),
            None if self.header.from < to => {
                let from = self.header.from;
                return at_end(from, ErrorKind::Uncovered { size: from });
            }
            None => return at_end(size, ErrorKind::NoCheckpoint { size }),
        }
        // Trusted: given, or linked by a rotation to a trusted key.
        let mut trust: Vec<&NoteVerifier> = trusted.iter().collect();
        let mut grew = true;
        while grew {
            grew = false;
            for (previous, next) in &self.links {
                for (known, linked) in [(previous, next), (next, previous)] {
                    if trust.contains(&known) && !trust.contains(&linked) {
                        trust.push(linked);
                        grew = true;
                    }
                }
            }
        }
        for &(key, size, line) in &self.used {
            if !trust.contains(&&self.keys[key]) {
                return Err(VerifyError::new(
                    Some(size),
                    line,
                    ErrorKind::UntrustedKey {
                        key: self.keys[key].to_text(),
                    },
                ));
            }
        }
        Ok(Report {
            log: self.header.log,
            from: self.header.from,
            to,
            entries: to - self.header.from,
            checkpoints: self.checkpoints,
            root: self.frontier.root().to_hex().to_string(),
            keys_used: self.used.iter().map(|&(key, _, _)| self.keys[key].to_text()).collect(),
        })
    }
}

/// Verifies a receipt offline: its checkpoint is signed by one of `trusted`
/// and names the receipt's log and tree size, and the inclusion proof leads
/// from the entry hash at the receipt's index to the checkpoint's root. With
/// the entry's bytes, also that they are that entry. Returns the checkpoint.
pub fn verify_receipt(
    receipt: &Receipt,
    trusted: &[NoteVerifier],
    entry_bytes: Option<&[u8]>,
) -> Result<Checkpoint, VerifyError> {
    let err = |kind| VerifyError::new(Some(receipt.index), 0, kind);
    let (checkpoint, _) = checkpoint::open_all(&receipt.checkpoint, trusted)
        .map_err(|e| err(ErrorKind::ReceiptCheckpoint(e.to_string())))?;
    if checkpoint.origin != receipt.log {
        return Err(err(ErrorKind::ReceiptWrongLog {
            found: checkpoint.origin,
            expected: receipt.log.clone(),
        }));
    }
    if checkpoint.size != receipt.tree_size {
        return Err(err(ErrorKind::ReceiptWrongSize {
            found: checkpoint.size,
            expected: receipt.tree_size,
        }));
    }
    let leaf = Hash::from_hex(&receipt.entry_hash)
        .map_err(|_| err(ErrorKind::ReceiptMalformed("entry_hash is not a hex hash".into())))?;
    let proof = receipt
        .inclusion
        .iter()
        .enumerate()
        .map(|(i, h)| {
            Hash::from_hex(h).map_err(|_| err(ErrorKind::ReceiptMalformed(format!("inclusion[{i}] is not a hex hash"))))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if !merkle::verify_inclusion(receipt.index, receipt.tree_size, &leaf, &proof, &checkpoint.root) {
        return Err(err(ErrorKind::NotIncluded));
    }
    if let Some(bytes) = entry_bytes {
        if merkle::leaf_hash(bytes) != leaf {
            return Err(err(ErrorKind::EntryHashMismatch));
        }
        let entry = Entry::from_bytes(bytes).map_err(|e| err(ErrorKind::ReceiptEntry(e.to_string())))?;
        if entry.index != receipt.index {
            return Err(err(ErrorKind::EntryIndexMismatch { found: entry.index }));
        }
    }
    Ok(checkpoint)
}

#[cfg(test)]
mod tests {

    use ed25519_dalek::SigningKey;
    use serde_json::{Value, json};

    use super::*;
    use crate::evidence::checkpoint::{NoteSigner, sign_with};
    use crate::evidence::export::{KeyInfo, checkpoint_line, entry_line, header_line};

    const LOG: &str = "warden.example/log/acme";

    /// A log key; rotated keys keep the log's name, as a server's would.
    fn key(seed: u8) -> NoteSigner {
        NoteSigner::new(LOG, SigningKey::from_bytes(&[seed; 32])).unwrap()
    }

    /// A decision payload; the entry around it is about 600 bytes.
    fn decision(index: u64) -> Value {
        json!({
            "bundle": {
                "digest": "sha256:9f2c4d1e7a8b3c5d6e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d",
                "name": "routing",
                "revision": "2026.03.1",
            },
            "captured": {"now_ns": 1_795_308_111_311_231_335u64 + index},
            "decision_id": format!("01HZX3K9Q8W7E6R5{index:010}"),
            "input": {
                "action": "invoke_tool",
                "resource": format!("s3://reports/q3/{index}.csv"),
                "tool": "s3.get_object",
                "user": {"id": "u-1001", "roles": ["analyst"]},
            },
            "path": "warden/routing/allow",
            "result": {"allow": !index.is_multiple_of(3), "reasons": ["tool not allowed"]},
        })
    }

    /// `n` chained entries: decisions, and key rotations `(index, from, to)`.
    fn entries(n: u64, rotations: &[(u64, &NoteSigner, &NoteSigner)]) -> Vec<Vec<u8>> {
        let mut prev = GENESIS_PREV;
        (0..n)
            .map(|index| {
                let (kind, payload) = match rotations.iter().find(|r| r.0 == index) {
                    Some((_, previous, next)) => (
                        KEY_ROTATE,
                        serde_json::to_value(KeyRotation {
                            previous: previous.verifier().to_text(),
                            next: next.verifier().to_text(),
                        })
                        .unwrap(),
                    ),
                    None => ("decision", decision(index)),
                };
                let bytes = Entry {
                    index,
                    ts: 1_795_308_111_311 + index as i64,
                    kind: kind.into(),
                    actor: "token:tok_01 (ci)".into(),
                    payload,
                    prev,
                }
                .to_bytes();
                prev = merkle::leaf_hash(&bytes);
                bytes
            })
            .collect()
    }

    fn leaves(entries: &[Vec<u8>]) -> Vec<Hash> {
        entries.iter().map(|e| merkle::leaf_hash(e)).collect()
    }

    /// An export of `entries[from..to]` listing `keys`, with a checkpoint
    /// after the header when `from > 0`, after every `every`-th entry and
    /// after the last, each signed by `sign`.
    fn export(
        entries: &[Vec<u8>],
        (from, to): (u64, u64),
        every: u64,
        keys: &[&NoteSigner],
        sign: &dyn Fn(&Checkpoint) -> String,
    ) -> Vec<u8> {
        let mut frontier = Frontier::default();
        for leaf in leaves(&entries[..from as usize]) {
            frontier.push(leaf);
        }
        let prev = from
            .checked_sub(1)
            .map_or(GENESIS_PREV, |i| merkle::leaf_hash(&entries[i as usize]));
        let keys = keys
            .iter()
            .map(|k| KeyInfo {
                verifier: k.verifier().to_text(),
                created_at: 1_795_000_000_000,
                retired_at: None,
            })
            .collect();
        let checkpoint = |frontier: &Frontier| {
            checkpoint_line(&sign(&Checkpoint {
                origin: LOG.into(),
                size: frontier.size(),
                root: frontier.root(),
            }))
        };
        let mut out = header_line(&Header::new(LOG, &frontier, prev, to, keys, 1_795_308_200_000));
        if from > 0 {
            out.extend(checkpoint(&frontier));
        }
        for i in from..to {
            let bytes = &entries[i as usize];
            frontier.push(merkle::leaf_hash(bytes));
            out.extend(entry_line(bytes));
            if (i + 1) % every == 0 || i + 1 == to {
                out.extend(checkpoint(&frontier));
            }
        }
        out
    }

    /// A whole log of `n` entries signed by `a`, checkpoints every 64.
    fn simple(n: u64, a: &NoteSigner) -> Vec<u8> {
        export(&entries(n, &[]), (0, n), 64, &[a], &|cp| a.sign(cp))
    }

    fn verify(export: &[u8], trusted: &[NoteVerifier]) -> Result<Report, VerifyError> {
        verify_export(export, trusted, &mut |_| {})
    }

    fn lines(export: &[u8]) -> Vec<Vec<u8>> {
        export.split_inclusive(|b| *b == b'\n').map(<[u8]>::to_vec).collect()
    }

    fn join(lines: &[Vec<u8>]) -> Vec<u8> {
        lines.concat()
    }

    /// The position in `lines` of entry `index`.
    fn line_of_entry(lines: &[Vec<u8>], index: u64) -> usize {
        lines
            .iter()
            .position(|l| {
                export::line_kind(l) == Some(LineKind::Entry)
                    && Entry::from_bytes(&l[..l.len() - 1]).unwrap().index == index
            })
            .unwrap()
    }

    /// The position in `lines` of the checkpoint of `size`.
    fn line_of_checkpoint(lines: &[Vec<u8>], size: u64) -> usize {
        lines
            .iter()
            .position(|l| {
                export::line_kind(l) == Some(LineKind::Checkpoint)
                    && export::checkpoint_note(&l[..l.len() - 1]).unwrap().split('\n').nth(1) == Some(&size.to_string())
            })
            .unwrap()
    }

    fn edit_payload(line: &[u8], payload: Value) -> Vec<u8> {
        let mut e = Entry::from_bytes(&line[..line.len() - 1]).unwrap();
        e.payload = payload;
        entry_line(&e.to_bytes())
    }

    #[test]
    fn a_valid_export_verifies_and_the_report_says_what_it_holds() {
        let a = key(1);
        // Several chunks, each parsed in parallel.
        let n = 5000;
        let entries = entries(n, &[]);
        let file = export(&entries, (0, n), 64, &[&a], &|cp| a.sign(cp));
        let mut seen = Vec::new();
        let report = verify_export(&file[..], &[a.verifier()], &mut |at| seen.push(at)).unwrap();
        assert_eq!(
            report,
            Report {
                log: LOG.into(),
                from: 0,
                to: n,
                entries: n,
                checkpoints: n.div_ceil(64),
                root: merkle::root(&leaves(&entries)).to_hex().to_string(),
                keys_used: vec![a.verifier().to_text()],
            }
        );
        assert!(seen.is_sorted() && seen.len() > 2, "{seen:?}");
        assert_eq!(
            seen.last(),
            Some(&(file.len() as u64)),
            "progress ends at the file's length"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["checkpoints"], 79);

        // Through a small-buffered reader too, and as an empty log.
        let small = std::io::BufReader::with_capacity(7, &file[..]);
        assert_eq!(verify_export(small, &[a.verifier()], &mut |_| {}).unwrap(), report);
        let empty = export(&[], (0, 0), 64, &[&a], &|cp| a.sign(cp));
        assert_eq!(verify(&empty, &[a.verifier()]).unwrap().entries, 0);
    }

    #[test]
    fn a_mid_log_export_verifies_from_the_header_frontier() {
        let a = key(1);
        let entries = entries(300, &[]);
        let root = merkle::root(&leaves(&entries)).to_hex().to_string();
        for from in [100, 101, 128, 300] {
            let file = export(&entries, (from, 300), 64, &[&a], &|cp| a.sign(cp));
            let report = verify(&file, &[a.verifier()]).unwrap();
            assert_eq!((report.from, report.to, report.entries), (from, 300, 300 - from));
            assert_eq!(report.root, root, "from {from}");
        }

        // The header's prev must be what entry `from` links to; for an odd
        // `from` it is also the frontier's last leaf.
        let other = merkle::leaf_hash(b"other").to_hex().to_string();
        let file = export(&entries, (100, 300), 64, &[&a], &|cp| a.sign(cp));
        let prev = merkle::leaf_hash(&entries[99]).to_hex().to_string();
        let forged = String::from_utf8(file.clone()).unwrap().replacen(&prev, &other, 1);
        let e = verify(forged.as_bytes(), &[a.verifier()]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::PrevNotHeader { previous: 99 });
        assert_eq!(
            e.to_string(),
            "entry 100 (line 3): prev does not match the header's prev, the hash of entry 99"
        );
        let file = export(&entries, (101, 300), 64, &[&a], &|cp| a.sign(cp));
        let prev = merkle::leaf_hash(&entries[100]).to_hex().to_string();
        let forged = String::from_utf8(file).unwrap().replacen(&prev, &other, 1);
        let e = verify(forged.as_bytes(), &[a.verifier()]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "header: prev is not the frontier's last leaf, the hash of entry 100"
        );

        // A forged frontier does not give the signed root.
        let file = export(&entries, (100, 300), 64, &[&a], &|cp| a.sign(cp));
        let peak = merkle::root(&leaves(&entries[..64])).to_hex().to_string();
        let forged = String::from_utf8(file).unwrap().replacen(&peak, &other, 1);
        let e = verify(forged.as_bytes(), &[a.verifier()]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "checkpoint at size 100 (line 2): root does not match the entries (the header's frontier or the checkpoint was altered)"
        );
    }

    /// An entry nested past the ledger's limit (which Warden's writer
    /// refuses), chained and signed as if it had been written: named as
    /// too deep, by index, never as tampered or not canonical.
    #[test]
    fn an_entry_past_the_nesting_limit_is_named_as_such() {
        let a = key(1);
        let mut log = entries(10, &[]);
        let mut prev = merkle::leaf_hash(&log[4]);
        for (i, bytes) in log.iter_mut().enumerate().skip(5) {
            let mut e = Entry::from_bytes(bytes).unwrap();
            if i == 5 {
                let mut deep = json!(1);
                for _ in 0..crate::evidence::entry::MAX_PAYLOAD_DEPTH + 1 {
                    deep = json!({"a": deep});
                }
                e.payload = deep;
            }
            e.prev = prev;
            *bytes = e.to_bytes();
            prev = merkle::leaf_hash(bytes);
        }
        let file = export(&log, (0, 10), 64, &[&a], &|cp| a.sign(cp));
        let e = verify(&file, &[a.verifier()]).unwrap_err();
        assert_eq!(e.index(), Some(5));
        assert!(
            e.to_string()
                .contains("nests deeper than 100 levels, the ledger's limit"),
            "{e}"
        );
        assert!(!matches!(
            e.kind,
            ErrorKind::NotCanonical | ErrorKind::BrokenChain { .. }
        ));
    }

    #[test]
    fn an_edited_payload_is_named_by_index() {
        let a = key(1);
        let file = simple(300, &a);
        let mut lines = lines(&file);
        let at = line_of_entry(&lines, 100);
        lines[at] = edit_payload(&lines[at], json!({"allow": true}));
        let e = verify(&join(&lines), &[a.verifier()]).unwrap_err();
        assert_eq!(e.index(), Some(101));
        assert_eq!(e.kind, ErrorKind::BrokenChain { previous: 100 });
        assert_eq!(e.line, at as u64 + 2);
        assert_eq!(
            e.to_string(),
            format!(
                "entry 101 (line {}): prev does not match the hash of entry 100 (entry 100 or the chain was altered)",
                at + 2
            )
        );

        // Edited just before a checkpoint, the root is what breaks first;
        // the error names the batch.
        let mut lines = self::lines(&file);
        let at = line_of_entry(&lines, 127);
        lines[at] = edit_payload(&lines[at], json!({"allow": true}));
        let e = verify(&join(&lines), &[a.verifier()]).unwrap_err();
        assert_eq!(e.index(), Some(128));
        assert_eq!(
            e.to_string(),
            format!(
                "checkpoint at size 128 (line {}): root does not match the entries (one of entries 64 to 127 or the checkpoint was altered)",
                at + 2
            )
        );

        // Re-chaining everything after the edit still breaks the root.
        let mut forged = entries(300, &[]);
        let mut e = Entry::from_bytes(&forged[100]).unwrap();
        e.payload = json!({"allow": true});
        forged[100] = e.to_bytes();
        for i in 101..300 {
            let mut e = Entry::from_bytes(&forged[i]).unwrap();
            e.prev = merkle::leaf_hash(&forged[i - 1]);
            forged[i] = e.to_bytes();
        }
        let mut lines = self::lines(&file);
        for (i, bytes) in forged.iter().enumerate().skip(100) {
            let at = line_of_entry(&lines, i as u64);
            lines[at] = entry_line(bytes);
        }
        let e = verify(&join(&lines), &[a.verifier()]).unwrap_err();
        assert_eq!(e.index(), Some(128));
        assert!(matches!(
            e.kind,
            ErrorKind::RootMismatch {
                since: 64,
                size: 128,
                ..
            }
        ));

        // Bytes that are not canonical are refused, named by index.
        let mut lines = self::lines(&file);
        let at = line_of_entry(&lines, 5);
        lines[at] = String::from_utf8(lines[at].clone())
            .unwrap()
            .replacen(r#""index":5"#, r#""index": 5"#, 1)
            .into_bytes();
        let e = verify(&join(&lines), &[a.verifier()]).unwrap_err();
        assert_eq!((e.index(), &e.kind), (Some(5), &ErrorKind::NotCanonical));
    }

    #[test]
    fn deleted_and_swapped_entries_are_named_by_index() {
        let a = key(1);
        let file = simple(300, &a);
        let mut deleted = lines(&file);
        deleted.remove(line_of_entry(&deleted, 100));
        let e = verify(&join(&deleted), &[a.verifier()]).unwrap_err();
        assert_eq!(e.index(), Some(100));
        assert_eq!(
            e.kind,
            ErrorKind::OutOfSequence {
                expected: 100,
                found: 101
            }
        );
        assert!(
            e.to_string().starts_with("entry 100 (line ")
                && e.to_string().ends_with(
                    "): out of sequence: entry 101 is where entry 100 belongs (entries deleted or reordered)"
                ),
            "{e}"
        );

        let mut swapped = lines(&file);
        let (i, j) = (line_of_entry(&swapped, 100), line_of_entry(&swapped, 101));
        swapped.swap(i, j);
        let e = verify(&join(&swapped), &[a.verifier()]).unwrap_err();
        assert_eq!(e.index(), Some(100));
        assert_eq!(
            e.kind,
            ErrorKind::OutOfSequence {
                expected: 100,
                found: 101
            }
        );

        // A checkpoint moved by one entry is at the wrong position.
        let mut moved = lines(&file);
        let at = line_of_checkpoint(&moved, 128);
        moved.swap(at, at - 1);
        let e = verify(&join(&moved), &[a.verifier()]).unwrap_err();
        assert_eq!(
            (e.index(), &e.kind),
            (Some(128), &ErrorKind::WrongPosition { position: 127 })
        );
    }

    #[test]
    fn the_first_problem_in_the_file_is_the_one_reported() {
        // 3000 entries: one chunk, parsed in parallel parts.
        let a = key(1);
        let file = simple(3000, &a);
        let mut lines = lines(&file);
        let late = line_of_entry(&lines, 2500);
        lines[late] = b"{\"actor\":\"not json\n".to_vec();
        let e = verify(&join(&lines), &[a.verifier()]).unwrap_err();
        assert_eq!(e.index(), Some(2500), "{e}");
        assert!(matches!(e.kind, ErrorKind::MalformedEntry(_)));
        let early = line_of_entry(&lines, 500);
        lines.remove(early);
        let e = verify(&join(&lines), &[a.verifier()]).unwrap_err();
        assert_eq!(e.index(), Some(500), "{e}");
        // A line that is neither entry nor checkpoint, after a problem.
        lines.insert(early + 10, b"hello\n".to_vec());
        assert_eq!(verify(&join(&lines), &[a.verifier()]).unwrap_err().index(), Some(500));
        let mut lines = self::lines(&file);
        lines.insert(10, b"hello\n".to_vec());
        assert_eq!(
            verify(&join(&lines), &[a.verifier()]).unwrap_err().to_string(),
            "line 11: neither an entry nor a checkpoint"
        );
    }

    #[test]
    fn checkpoints_with_a_bad_signature_root_or_origin_are_named_by_size() {
        let a = key(1);
        let entries = entries(300, &[]);
        let file = export(&entries, (0, 300), 64, &[&a], &|cp| a.sign(cp));

        // An altered signature.
        let mut lines = lines(&file);
        let at = line_of_checkpoint(&lines, 128);
        let note = export::checkpoint_note(&lines[at][..lines[at].len() - 1]).unwrap();
        let (head, sig) = note.trim_end().rsplit_once(' ').unwrap();
        let mut blob = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, sig).unwrap();
        blob[20] ^= 1;
        let forged = format!(
            "{head} {}\n",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, blob)
        );
        lines[at] = checkpoint_line(&forged);
        let e = verify(&join(&lines), &[a.verifier()]).unwrap_err();
        assert_eq!(e.index(), Some(128));
        assert_eq!(
            e.to_string(),
            format!(
                "checkpoint at size 128 (line {}): signature by {LOG} does not verify",
                at + 1
            )
        );

        // A validly signed checkpoint of another root.
        let wrong_root = |cp: &Checkpoint| {
            let mut cp = cp.clone();
            if cp.size == 192 {
                cp.root = merkle::leaf_hash(b"elsewhere");
            }
            a.sign(&cp)
        };
        let e = verify(&export(&entries, (0, 300), 64, &[&a], &wrong_root), &[a.verifier()]).unwrap_err();
        assert_eq!(e.index(), Some(192));
        assert!(
            e.to_string()
                .ends_with("root does not match the entries (one of entries 128 to 191 or the checkpoint was altered)"),
            "{e}"
        );

        // Another log's checkpoint.
        let wrong_origin = |cp: &Checkpoint| {
            a.sign(&Checkpoint {
                origin: "warden.example/log/other".into(),
                ..cp.clone()
            })
        };
        let e = verify(&export(&entries, (0, 300), 64, &[&a], &wrong_origin), &[a.verifier()]).unwrap_err();
        assert_eq!(e.index(), Some(64));
        assert_eq!(
            e.to_string(),
            format!(
                "checkpoint at size 64 (line 66): origin \"warden.example/log/other\" is not the log's origin \"{LOG}\""
            )
        );

        // The same checkpoint twice is fine; two different ones are not.
        let mut lines = self::lines(&file);
        let at = line_of_checkpoint(&lines, 64);
        lines.insert(at, lines[at].clone());
        assert_eq!(verify(&join(&lines), &[a.verifier()]).unwrap().checkpoints, 5);
        let b = key(2);
        lines[at + 1] = checkpoint_line(&sign_with(
            &[&a, &b],
            &Checkpoint {
                origin: LOG.into(),
                size: 64,
                root: merkle::root(&leaves(&entries[..64])),
            },
        ));
        let e = verify(&join(&lines), &[a.verifier()]).unwrap_err();
        assert_eq!((e.index(), &e.kind), (Some(64), &ErrorKind::ConflictingCheckpoint));
    }

    #[test]
    fn untrusted_and_unknown_keys_are_refused() {
        let (a, c) = (key(1), key(3));
        let file = simple(300, &a);
        let e = verify(&file, &[c.verifier()]).unwrap_err();
        assert_eq!(e.index(), Some(64), "the first checkpoint the key signed");
        assert_eq!(
            e.kind,
            ErrorKind::UntrustedKey {
                key: a.verifier().to_text()
            }
        );
        assert!(
            e.to_string()
                .contains("which is neither a trusted key nor linked to one by a key rotation")
        );
        assert!(verify(&file, &[]).is_err());

        // Signed by a key neither listed nor trusted: no known signature.
        let entries = entries(300, &[]);
        let file = export(&entries, (0, 300), 64, &[&a], &|cp| c.sign(cp));
        let e = verify(&file, &[a.verifier()]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "checkpoint at size 64 (line 66): not signed by any known key"
        );
        // A known key's signature beside the expected one: both must verify
        // and both must be trusted.
        let file = export(&entries, (0, 300), 64, &[&a, &c], &|cp| sign_with(&[&a, &c], cp));
        assert_eq!(verify(&file, &[a.verifier(), c.verifier()]).unwrap().keys_used.len(), 2);
        let e = verify(&file, &[a.verifier()]).unwrap_err();
        assert_eq!(
            e.kind,
            ErrorKind::UntrustedKey {
                key: c.verifier().to_text()
            }
        );
    }

    /// A log of 300 entries rotating from `a` to `b` at entry 150 (in the
    /// batch that the checkpoint of size 192 signs); `sign` decides each
    /// checkpoint's signers from its size.
    fn rotated(a: &NoteSigner, b: &NoteSigner, sign: &dyn Fn(u64) -> Vec<u8>) -> Vec<u8> {
        let keys = [a, b];
        let entries = entries(300, &[(150, a, b)]);
        export(&entries, (0, 300), 64, &[a, b], &|cp| {
            let signers: Vec<&NoteSigner> = sign(cp.size).into_iter().map(|i| keys[i as usize]).collect();
            sign_with(&signers, cp)
        })
    }

    /// The signers a server uses: `a` before, both for the rotation's
    /// checkpoint, then `b`.
    fn rotation_signers(size: u64) -> Vec<u8> {
        match size {
            ..=150 => vec![0],
            192 => vec![0, 1],
            _ => vec![1],
        }
    }

    #[test]
    fn a_rotation_links_old_and_new_keys() {
        let (a, b, c) = (key(1), key(2), key(3));
        let file = rotated(&a, &b, &rotation_signers);
        // Trusting only the new key verifies the whole log, old checkpoints
        // included; trusting only the old key verifies it too.
        for trusted in [b.verifier(), a.verifier()] {
            let report = verify(&file, std::slice::from_ref(&trusted)).unwrap();
            assert_eq!(report.entries, 300);
            assert_eq!(report.keys_used, [a.verifier().to_text(), b.verifier().to_text()]);
        }
        // Trusting an unrelated key does not.
        let e = verify(&file, &[c.verifier()]).unwrap_err();
        assert_eq!(
            e.kind,
            ErrorKind::UntrustedKey {
                key: a.verifier().to_text()
            }
        );

        // The new key need not be in the header when it is trusted.
        let entries = entries(300, &[(150, &a, &b)]);
        let keys = [&a, &b];
        let only_a = export(&entries, (0, 300), 64, &[&a], &|cp| {
            let signers: Vec<&NoteSigner> = rotation_signers(cp.size)
                .into_iter()
                .map(|i| keys[i as usize])
                .collect();
            sign_with(&signers, cp)
        });
        assert!(verify(&only_a, &[b.verifier()]).is_ok());
        let e = verify(&only_a, &[a.verifier()]).unwrap_err();
        assert_eq!(e.index(), Some(192));
        assert!(matches!(e.kind, ErrorKind::NotCosigned { at: 150, .. }), "{e}");
    }

    #[test]
    fn after_a_rotation_the_retired_key_alone_is_refused() {
        let (a, b) = (key(1), key(2));
        let stale = |size| if size == 256 { vec![0] } else { rotation_signers(size) };
        let e = verify(&rotated(&a, &b, &stale), &[b.verifier()]).unwrap_err();
        assert_eq!(e.index(), Some(256));
        assert_eq!(
            e.kind,
            ErrorKind::SignedByRetired {
                retired: label(&a.verifier()),
                current: label(&b.verifier()),
            }
        );
        assert!(
            e.to_string().contains(&format!(
                "signed by the retired key {}, not by the log's signing key",
                label(&a.verifier())
            )),
            "{e}"
        );
        // The new key before its rotation is refused too.
        let early = |size| if size == 128 { vec![1] } else { rotation_signers(size) };
        let e = verify(&rotated(&a, &b, &early), &[a.verifier()]).unwrap_err();
        assert_eq!(e.index(), Some(128));
        assert!(
            matches!(e.kind, ErrorKind::NotSignedByCurrent { known: true, .. }),
            "{e}"
        );
    }

    #[test]
    fn a_rotation_checkpoint_must_be_cosigned() {
        let (a, b) = (key(1), key(2));
        for alone in [0, 1] {
            let not_cosigned = |size| {
                if size == 192 {
                    vec![alone]
                } else {
                    rotation_signers(size)
                }
            };
            let e = verify(&rotated(&a, &b, &not_cosigned), &[a.verifier(), b.verifier()]).unwrap_err();
            assert_eq!(e.index(), Some(192));
            assert_eq!(
                e.to_string(),
                format!(
                    "checkpoint at size 192 (line {}): first checkpoint after the key rotation at entry 150: not signed by both {} and {}",
                    1 + 192 + 2 + 1, // header, entries, checkpoints 64 and 128, this one
                    label(&a.verifier()),
                    label(&b.verifier())
                )
            );
        }
        // A rotation must start from the log's signing key.
        let c = key(3);
        let entries = entries(300, &[(150, &c, &b)]);
        let keys = [&a, &b, &c];
        let file = export(&entries, (0, 300), 64, &[&a, &b, &c], &|cp| {
            let signers: Vec<&NoteSigner> = rotation_signers(cp.size)
                .into_iter()
                .map(|i| keys[i as usize])
                .collect();
            sign_with(&signers, cp)
        });
        let e = verify(&file, &[a.verifier()]).unwrap_err();
        assert_eq!(e.index(), Some(150));
        assert!(matches!(e.kind, ErrorKind::RotationFromOtherKey { .. }), "{e}");
    }

    #[test]
    fn a_truncated_export_fails() {
        let a = key(1);
        let file = simple(300, &a);
        let mut lines = lines(&file);
        lines.pop();
        let e = verify(&join(&lines), &[a.verifier()]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "entries after size 256 are not covered by a signed checkpoint"
        );
        assert_eq!(e.index(), Some(256));

        lines.truncate(line_of_entry(&lines, 200));
        let e = verify(&join(&lines), &[a.verifier()]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the export ends before entry 200, but its header says it runs to 300"
        );

        let cut = &file[..file.len() - 10];
        let e = verify(cut, &[a.verifier()]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::MissingNewline);
        assert_eq!(e.line, self::lines(&file).len() as u64);
        assert_eq!(verify(b"", &[a.verifier()]).unwrap_err().kind, ErrorKind::Empty);

        // More entries than the header says.
        let entries = entries(300, &[]);
        let mut lines = self::lines(&export(&entries, (0, 300), 64, &[&a], &|cp| a.sign(cp)));
        let mut header = Header::parse(&lines[0][..lines[0].len() - 1]).unwrap();
        header.to = 250;
        lines[0] = header_line(&header);
        let e = verify(&join(&lines), &[a.verifier()]).unwrap_err();
        assert_eq!((e.index(), &e.kind), (Some(250), &ErrorKind::BeyondRange { to: 250 }));
    }

    #[test]
    fn a_malformed_header_is_refused() {
        let a = key(1);
        let file = simple(10, &a);
        let mut lines = lines(&file);
        let header = Header::parse(&lines[0][..lines[0].len() - 1]).unwrap();
        let check = |edit: &dyn Fn(&mut Header), want: &str| {
            let mut h = header.clone();
            edit(&mut h);
            let mut lines = lines.clone();
            lines[0] = header_line(&h);
            assert_eq!(verify(&join(&lines), &[a.verifier()]).unwrap_err().to_string(), want);
        };
        check(
            &|h| h.format = "warden-ledger-export/2".into(),
            "header: format \"warden-ledger-export/2\" is not \"warden-ledger-export/1\"",
        );
        check(&|h| h.from = 11, "header: from 11 is after to 10");
        check(
            &|h| h.frontier.push(GENESIS_PREV),
            "header: frontier has 1 peaks, but a tree of 0 entries has 0",
        );
        check(
            &|h| h.prev = merkle::leaf_hash(b"x"),
            "header: prev must be 64 zeros when from is 0",
        );
        check(
            &|h| h.keys[0].verifier = "nope".into(),
            "header: key 0: invalid verifier key: expected name+keyid+key",
        );
        lines[0] = b"{\"format\":\"warden-ledger-export/1\"}\n".to_vec();
        assert!(
            verify(&join(&lines), &[a.verifier()])
                .unwrap_err()
                .to_string()
                .starts_with("header: not an export header: missing field")
        );
    }

    /// The receipt of entry `index` under the checkpoint of `size`.
    fn receipt(entries: &[Vec<u8>], index: u64, size: u64, signer: &NoteSigner) -> Receipt {
        let leaves = leaves(&entries[..size as usize]);
        Receipt {
            log: LOG.into(),
            index,
            entry_hash: leaves[index as usize].to_hex().to_string(),
            tree_size: size,
            checkpoint: signer.sign(&Checkpoint {
                origin: LOG.into(),
                size,
                root: merkle::root(&leaves),
            }),
            inclusion: merkle::inclusion_proof(index as usize, &leaves)
                .unwrap()
                .iter()
                .map(|h| h.to_hex().to_string())
                .collect(),
        }
    }

    #[test]
    fn receipts_verify_and_tampering_is_named() {
        let a = key(1);
        let entries = entries(100, &[]);
        let good = receipt(&entries, 37, 64, &a);
        let trusted = [a.verifier()];
        let cp = verify_receipt(&good, &trusted, Some(&entries[37])).unwrap();
        assert_eq!((cp.size, cp.origin.as_str()), (64, LOG));
        assert!(verify_receipt(&good, &trusted, None).is_ok());

        let wrong_index = Receipt {
            index: 38,
            ..good.clone()
        };
        let e = verify_receipt(&wrong_index, &trusted, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "receipt for entry 38: the inclusion proof does not lead from the entry hash to the checkpoint's root"
        );

        let mut tampered = good.clone();
        tampered.inclusion[2] = merkle::leaf_hash(b"x").to_hex().to_string();
        assert_eq!(
            verify_receipt(&tampered, &trusted, None).unwrap_err().kind,
            ErrorKind::NotIncluded
        );

        let e = verify_receipt(&good, &trusted, Some(&entries[36])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "receipt for entry 37: the entry's bytes do not hash to the receipt's entry hash"
        );

        // A receipt for entry 36 handed entry 36's bytes... with index 37's
        // claim: the proof of 36 does not verify at 37.
        let other = receipt(&entries, 36, 64, &a);
        let swapped = Receipt { index: 37, ..other };
        assert_eq!(
            verify_receipt(&swapped, &trusted, Some(&entries[36])).unwrap_err().kind,
            ErrorKind::NotIncluded
        );

        let e = verify_receipt(&good, &[key(3).verifier()], None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "receipt for entry 37: checkpoint: checkpoint is not signed by any known key"
        );
        let e = verify_receipt(
            &Receipt {
                tree_size: 65,
                ..good.clone()
            },
            &trusted,
            None,
        )
        .unwrap_err();
        assert_eq!(
            e.kind,
            ErrorKind::ReceiptWrongSize {
                found: 64,
                expected: 65
            }
        );
        let e = verify_receipt(
            &Receipt {
                log: "other".into(),
                ..good
            },
            &trusted,
            None,
        )
        .unwrap_err();
        assert!(matches!(e.kind, ErrorKind::ReceiptWrongLog { .. }));
    }
}
