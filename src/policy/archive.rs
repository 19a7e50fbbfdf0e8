//! Reading and writing OPA bundle archives.
//!
//! An OPA bundle is a gzipped tarball as written by `opa build` (Go's
//! `archive/tar` and `compress/gzip`): regular-file entries whose names carry
//! a leading `/`, `/data.json` first, then the policies (`/x/policy.rego`),
//! `/.signatures.json` and `/.manifest` last; USTAR headers with uid/gid 0,
//! empty user and group names, an mtime of 0 and mode 0600 (this module
//! writes 0644; readers ignore it); names over 100 bytes split into the USTAR
//! prefix field, or carried in a PAX `path` record when they cannot be split
//! or are not ASCII; no directory entries; and the end-of-archive marker (two
//! zero blocks) inside a single gzip member.
//!
//! [`read`] treats its input as hostile. It never panics and never holds more
//! than the configured [`Limits`] in memory:
//!
//! * the compressed size is checked before anything is decompressed;
//! * every decompressed byte (tar headers, padding, extension records, file
//!   contents and anything after the end-of-archive marker) passes through a
//!   metering reader that stops as soon as the decompressed total exceeds
//!   [`Limits::max_uncompressed_bytes`], or as soon as it exceeds
//!   [`Limits::max_ratio`] times the compressed size;
//! * the ratio check only applies once more than
//!   [`RATIO_CHECK_THRESHOLD_BYTES`] (1 MiB) have been decompressed, so tiny
//!   bundles, whose tar headers and padding compress extremely well, are never
//!   mistaken for bombs;
//! * a file's declared size is checked against [`Limits::max_file_bytes`] and
//!   the remaining decompression budget before its contents are read, and its
//!   contents are then read incrementally, never beyond the declared size;
//! * the gzip stream is read to its end, so a truncated upload or a bad
//!   checksum is reported even when the tar end marker came through intact.

use std::cell::Cell;
use std::collections::HashSet;
use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use tar::{Archive, Builder, EntryType, Header};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// The ratio check of [`Limits::max_ratio`] only applies once more than this
/// many bytes have been decompressed.
pub const RATIO_CHECK_THRESHOLD_BYTES: u64 = MIB;

/// Longest entry path accepted, in bytes (the Linux `PATH_MAX`).
pub const MAX_PATH_BYTES: usize = 4096;

/// At most this much is reserved up front for a file's contents; the buffer
/// then grows with the bytes actually read.
const INITIAL_FILE_CAPACITY: u64 = 64 * KIB;

/// Paths and details quoted in error messages are cut to this many characters.
const MAX_REPORTED_CHARS: usize = 256;

/// Length of the USTAR `name` field.
const USTAR_NAME_LEN: usize = 100;
/// Length of the USTAR `prefix` field.
const USTAR_PREFIX_LEN: usize = 155;

const FILE_MODE: u32 = 0o644;

/// Caps applied by [`read`] to an uploaded bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted upload (the gzipped bytes).
    pub max_compressed_bytes: u64,
    /// Largest accepted decompressed size, counting tar headers and padding.
    pub max_uncompressed_bytes: u64,
    /// Largest accepted ratio of decompressed to compressed bytes, applied
    /// once more than [`RATIO_CHECK_THRESHOLD_BYTES`] have been decompressed.
    pub max_ratio: u64,
    /// Largest accepted number of tar entries (files and directories).
    pub max_files: usize,
    /// Largest accepted size of a single file.
    pub max_file_bytes: u64,
}

impl Default for Limits {
    /// 8 MiB compressed, 64 MiB decompressed, ratio 100, 10 000 entries and
    /// 16 MiB per file.
    fn default() -> Self {
        Limits {
            max_compressed_bytes: 8 * MIB,
            max_uncompressed_bytes: 64 * MIB,
            max_ratio: 100,
            max_files: 10_000,
            max_file_bytes: 16 * MIB,
        }
    }
}

/// One regular file of a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveFile {
    /// Relative, `/`-separated path inside the bundle, e.g. `x/policy.rego`.
    pub path: String,
    pub bytes: Vec<u8>,
}

/// What exceeded a size limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Oversized {
    /// The uploaded (gzipped) bundle.
    CompressedBundle,
    /// The bundle after decompression.
    DecompressedBundle,
    /// One file of the bundle.
    File { path: String },
}

impl fmt::Display for Oversized {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Oversized::CompressedBundle => f.write_str("the compressed bundle"),
            Oversized::DecompressedBundle => f.write_str("the decompressed bundle"),
            Oversized::File { path } => write!(f, "the file {path:?}"),
        }
    }
}

/// Why an uploaded bundle was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArchiveError {
    #[error(
        "{what} is larger than the limit of {}; remove unneeded files or data, or split the policy into several bundles",
        human_size(*limit)
    )]
    TooLarge { what: Oversized, limit: u64 },

    #[error(
        "the bundle expands to more than {max_ratio} times its compressed size of {compressed_bytes} bytes, which looks like a decompression bomb; remove padding or repetitive filler data and rebuild it with `opa build`"
    )]
    DecompressionBomb { max_ratio: u64, compressed_bytes: u64 },

    #[error("the bundle is not a valid gzipped tar archive ({detail}); upload the .tar.gz file written by `opa build`")]
    Corrupt { detail: String },

    #[error(
        "the bundle entry {path:?} has an unsafe path: it {reason}; store every file under a relative path inside the bundle, such as \"x/policy.rego\""
    )]
    UnsafePath { path: String, reason: &'static str },

    #[error(
        "the bundle entry {path:?} is a {kind}; bundles may only contain regular files and directories, so replace it with a copy of the file or remove it"
    )]
    UnsupportedEntry { path: String, kind: &'static str },

    #[error("the bundle contains {path:?} more than once; keep a single copy of each file")]
    DuplicatePath { path: String },

    #[error("the bundle has more than {limit} entries; remove unneeded files or split the policy into several bundles")]
    TooManyFiles { limit: usize },
}

impl ArchiveError {
    /// Stable machine-readable code for API responses.
    pub fn code(&self) -> &'static str {
        match self {
            ArchiveError::TooLarge { .. } => "bundle_too_large",
            ArchiveError::DecompressionBomb { .. } => "bundle_decompression_bomb",
            ArchiveError::Corrupt { .. } => "bundle_corrupt",
            ArchiveError::UnsafePath { .. } => "bundle_unsafe_path",
            ArchiveError::UnsupportedEntry { .. } => "bundle_unsupported_entry",
            ArchiveError::DuplicatePath { .. } => "bundle_duplicate_path",
            ArchiveError::TooManyFiles { .. } => "bundle_too_many_files",
        }
    }
}

fn human_size(bytes: u64) -> String {
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// Cuts `text` to [`MAX_REPORTED_CHARS`] characters for error messages.
fn clip(text: &str) -> String {
    match text.char_indices().nth(MAX_REPORTED_CHARS) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

fn reported_path(raw: &[u8]) -> String {
    clip(&String::from_utf8_lossy(raw))
}

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

/// Reads an uploaded bundle.
///
/// Returns the regular files in tar order, with paths normalised: a single
/// leading "/" (which `opa build` writes: entries look like "/data.json",
/// "/.manifest", "/x/policy.rego") and leading "./" are removed; the result is
/// a relative path with "/" separators. Empty and "." path segments are
/// dropped, directories are skipped, and a PAX global header (metadata, not a
/// file) is ignored. Every entry, directories included, counts towards
/// [`Limits::max_files`].
pub fn read(gz: &[u8], limits: &Limits) -> Result<Vec<ArchiveFile>, ArchiveError> {
    read_metered(gz, limits, &Meter::default())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trip {
    Uncompressed,
    Ratio,
}

/// Running total of decompressed bytes, and which limit stopped the stream.
#[derive(Debug, Default)]
struct Meter {
    decompressed: Cell<u64>,
    tripped: Cell<Option<Trip>>,
}

/// Counts the bytes coming out of the decompressor and fails as soon as one
/// of the caps is passed; it never reads more than one byte past a cap.
struct MeteredReader<'m, R> {
    inner: R,
    meter: &'m Meter,
    max_total: u64,
    max_by_ratio: u64,
}

impl<R: Read> Read for MeteredReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.meter.tripped.get().is_some() {
            return Err(limit_reached());
        }
        let total = self.meter.decompressed.get();
        let cap = self.max_total.min(self.max_by_ratio);
        let allowed = cap.saturating_sub(total).saturating_add(1);
        let want = buf.len().min(usize::try_from(allowed).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        let total = total.saturating_add(n as u64);
        self.meter.decompressed.set(total);
        if total > self.max_total {
            self.meter.tripped.set(Some(Trip::Uncompressed));
            return Err(limit_reached());
        }
        if total > self.max_by_ratio {
            self.meter.tripped.set(Some(Trip::Ratio));
            return Err(limit_reached());
        }
        Ok(n)
    }
}

fn limit_reached() -> io::Error {
    io::Error::other("bundle size limit reached")
}

/// Turns an I/O error from the decompressor or the tar parser into the
/// uploader-facing error: a tripped limit if the meter stopped the stream,
/// corruption otherwise.
struct Classifier<'a> {
    meter: &'a Meter,
    limits: &'a Limits,
    compressed: u64,
}

impl Classifier<'_> {
    fn error(&self, err: io::Error) -> ArchiveError {
        match self.meter.tripped.get() {
            Some(Trip::Uncompressed) => ArchiveError::TooLarge {
                what: Oversized::DecompressedBundle,
                limit: self.limits.max_uncompressed_bytes,
            },
            Some(Trip::Ratio) => ArchiveError::DecompressionBomb {
                max_ratio: self.limits.max_ratio,
                compressed_bytes: self.compressed,
            },
            None => ArchiveError::Corrupt {
                detail: clip(&err.to_string()),
            },
        }
    }
}

fn read_metered(gz: &[u8], limits: &Limits, meter: &Meter) -> Result<Vec<ArchiveFile>, ArchiveError> {
    let compressed = gz.len() as u64;
    if compressed > limits.max_compressed_bytes {
        return Err(ArchiveError::TooLarge {
            what: Oversized::CompressedBundle,
            limit: limits.max_compressed_bytes,
        });
    }
    if !gz.starts_with(&[0x1f, 0x8b]) {
        return Err(ArchiveError::Corrupt {
            detail: "the data is not gzip-compressed".to_owned(),
        });
    }

    let classify = Classifier {
        meter,
        limits,
        compressed,
    };
    let reader = MeteredReader {
        // Multi-member like Go's gzip reader, so trailing members are read
        // (and metered) rather than silently ignored.
        inner: MultiGzDecoder::new(gz),
        meter,
        max_total: limits.max_uncompressed_bytes,
        max_by_ratio: limits
            .max_ratio
            .saturating_mul(compressed)
            .max(RATIO_CHECK_THRESHOLD_BYTES),
    };
    let mut archive = Archive::new(reader);
    let mut files = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut entry_count: usize = 0;

    for entry in archive.entries().map_err(|e| classify.error(e))? {
        let mut entry = entry.map_err(|e| classify.error(e))?;
        entry_count += 1;
        if entry_count > limits.max_files {
            return Err(ArchiveError::TooManyFiles {
                limit: limits.max_files,
            });
        }

        let entry_type = entry.header().entry_type();
        if entry_type == EntryType::XGlobalHeader {
            continue;
        }
        let raw_path = entry.path_bytes().into_owned();
        // As in Go's reader, an old-style regular entry (type byte NUL) whose
        // name ends in "/" is a directory.
        let is_dir = entry_type.is_dir() || (entry.header().as_old().linkflag[0] == 0 && raw_path.ends_with(b"/"));
        let Some(path) = normalise_path(&raw_path, is_dir)? else {
            continue;
        };
        if is_dir {
            continue;
        }
        if !entry_type.is_file() {
            return Err(ArchiveError::UnsupportedEntry {
                path: clip(&path),
                kind: entry_kind(entry_type),
            });
        }
        if seen.contains(&path) {
            return Err(ArchiveError::DuplicatePath { path: clip(&path) });
        }

        let declared = entry.size();
        if declared > limits.max_file_bytes {
            return Err(ArchiveError::TooLarge {
                what: Oversized::File { path: clip(&path) },
                limit: limits.max_file_bytes,
            });
        }
        if meter.decompressed.get().saturating_add(declared) > limits.max_uncompressed_bytes {
            return Err(ArchiveError::TooLarge {
                what: Oversized::DecompressedBundle,
                limit: limits.max_uncompressed_bytes,
            });
        }

        let capacity = usize::try_from(declared.min(INITIAL_FILE_CAPACITY)).unwrap_or(0);
        let mut bytes = Vec::with_capacity(capacity);
        (&mut entry)
            .take(limits.max_file_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| classify.error(e))?;
        let actual = bytes.len() as u64;
        if actual > limits.max_file_bytes {
            return Err(ArchiveError::TooLarge {
                what: Oversized::File { path: clip(&path) },
                limit: limits.max_file_bytes,
            });
        }
        if actual != declared {
            return Err(ArchiveError::Corrupt {
                detail: format!("the file {:?} ends after {actual} of its {declared} bytes", clip(&path)),
            });
        }

        seen.insert(path.clone());
        files.push(ArchiveFile { path, bytes });
    }

    // Read the rest of the stream: the tar padding, the gzip trailer (whose
    // checksum and length are verified only there) and anything appended
    // after the end-of-archive marker, all still metered.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(|e| classify.error(e))?;

    Ok(files)
}

fn entry_kind(entry_type: EntryType) -> &'static str {
    match entry_type {
        EntryType::Symlink => "symbolic link",
        EntryType::Link => "hard link",
        EntryType::Char => "character device",
        EntryType::Block => "block device",
        EntryType::Fifo => "named pipe (fifo)",
        EntryType::Continuous => "contiguous file",
        EntryType::GNUSparse => "sparse file",
        EntryType::GNULongName | EntryType::GNULongLink => "dangling GNU long-name header",
        EntryType::XHeader => "dangling PAX extended header",
        _ => "entry of unknown type",
    }
}

fn unsafe_path(raw: &[u8], reason: &'static str) -> ArchiveError {
    ArchiveError::UnsafePath {
        path: reported_path(raw),
        reason,
    }
}

/// Validates an entry path and returns its normal form: no leading "/" (one is
/// allowed, as `opa build` writes it) or "./", no empty or "." segments, "/"
/// separators. Returns `None` for the archive root directory ("./", "/").
fn normalise_path(raw: &[u8], is_dir: bool) -> Result<Option<String>, ArchiveError> {
    if raw.len() > MAX_PATH_BYTES {
        return Err(unsafe_path(raw, "is longer than 4096 bytes"));
    }
    if raw.contains(&0) {
        return Err(unsafe_path(raw, "contains a NUL byte"));
    }
    let Ok(text) = std::str::from_utf8(raw) else {
        return Err(unsafe_path(raw, "is not valid UTF-8"));
    };
    if text.contains('\\') {
        return Err(unsafe_path(raw, "contains a backslash"));
    }

    let mut rest = text.strip_prefix('/').unwrap_or(text);
    while let Some(stripped) = rest.strip_prefix("./") {
        rest = stripped;
    }
    if rest.starts_with('/') {
        return Err(unsafe_path(raw, "is absolute"));
    }
    let first = rest.as_bytes();
    if first.len() >= 2 && first[0].is_ascii_alphabetic() && first[1] == b':' {
        return Err(unsafe_path(raw, "starts with a Windows drive letter"));
    }

    let mut segments = Vec::new();
    for segment in rest.split('/') {
        match segment {
            "" | "." => {}
            ".." => return Err(unsafe_path(raw, "contains a \"..\" segment")),
            _ => segments.push(segment),
        }
    }
    if segments.is_empty() {
        if is_dir {
            return Ok(None);
        }
        return Err(unsafe_path(raw, "is empty"));
    }
    Ok(Some(segments.join("/")))
}

// ---------------------------------------------------------------------------
// Collecting a bundle directory
// ---------------------------------------------------------------------------

/// Collects the bundle files under `dir`: `*.rego`, `data.json`, `data.yaml`/`data.yml` at any depth, and `.manifest` and `.signatures.json` at the top; skips other files and hidden directories; paths relative, "/"-separated, sorted.
///
/// Symbolic links to files are followed; symbolic links to directories are
/// not descended into, so link cycles cannot trap the walk. A matching file
/// whose path is not valid UTF-8 is an `InvalidData` error.
pub fn collect_dir(dir: &Path) -> io::Result<Vec<ArchiveFile>> {
    let mut files = Vec::new();
    collect_into(dir, Path::new(""), &mut files)?;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

fn collect_into(dir: &Path, rel: &Path, out: &mut Vec<ArchiveFile>) -> io::Result<()> {
    let top = rel.as_os_str().is_empty();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name_bytes = name.as_encoded_bytes();
        let full = entry.path();
        let rel_path: PathBuf = rel.join(&name);

        let file_type = entry.file_type()?;
        let (is_dir, is_file) = if file_type.is_symlink() {
            match fs::metadata(&full) {
                Ok(meta) => (false, meta.is_file()),
                Err(_) => (false, false),
            }
        } else {
            (file_type.is_dir(), file_type.is_file())
        };

        if is_dir {
            if !name_bytes.starts_with(b".") {
                collect_into(&full, &rel_path, out)?;
            }
            continue;
        }
        if !is_file || !is_bundle_file(name_bytes, top) {
            continue;
        }

        let Some(path) = rel_path.to_str() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bundle file path {rel_path:?} is not valid UTF-8"),
            ));
        };
        let path = path.replace(std::path::MAIN_SEPARATOR, "/");
        out.push(ArchiveFile {
            path,
            bytes: fs::read(&full)?,
        });
    }
    Ok(())
}

fn is_bundle_file(name: &[u8], top: bool) -> bool {
    name.ends_with(b".rego")
        || matches!(name, b"data.json" | b"data.yaml" | b"data.yml")
        || (top && matches!(name, b".manifest" | b".signatures.json"))
}

// ---------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------

/// Writes files as a gzipped tar the way `opa build` lays it out (entry names with a leading "/", regular files mode 0644, mtime 0, uid/gid 0, empty user/group names), in the order given; deterministic output.
///
/// Headers are USTAR, like Go's `archive/tar` writes them: a name longer than
/// 100 bytes is split into the USTAR prefix and name fields where possible,
/// otherwise (and for non-ASCII names) it is carried in a PAX `path` record.
/// Paths must already be in the normal form [`read`] returns, and unique;
/// anything else is an `InvalidInput` error, so whatever this writes, [`read`]
/// accepts (within its size limits).
pub fn write(files: &[ArchiveFile]) -> io::Result<Vec<u8>> {
    let mut seen: HashSet<&str> = HashSet::with_capacity(files.len());
    let mut builder = Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    for file in files {
        match normalise_path(file.path.as_bytes(), false) {
            Ok(Some(normal)) if normal == file.path => {}
            Ok(_) => {
                return Err(invalid_input(format!(
                    "bundle file path {:?} is not in normal form; use a relative \"/\"-separated path such as \"x/policy.rego\"",
                    clip(&file.path)
                )));
            }
            Err(err) => return Err(invalid_input(err.to_string())),
        }
        if !seen.insert(file.path.as_str()) {
            return Err(invalid_input(format!(
                "bundle file {:?} is listed more than once",
                clip(&file.path)
            )));
        }
        append_file(&mut builder, &format!("/{}", file.path), &file.bytes)?;
    }
    builder.into_inner()?.finish()
}

fn invalid_input(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

fn append_file<W: io::Write>(builder: &mut Builder<W>, name: &str, data: &[u8]) -> io::Result<()> {
    let mut header = ustar_header(EntryType::Regular, FILE_MODE, data.len() as u64);
    header.set_device_major(0)?;
    header.set_device_minor(0)?;
    if name.is_ascii() && name.len() <= USTAR_NAME_LEN {
        set_name_fields(&mut header, b"", name.as_bytes())?;
    } else if let Some((prefix, suffix)) = split_ustar_name(name) {
        set_name_fields(&mut header, prefix.as_bytes(), suffix.as_bytes())?;
    } else {
        let record = pax_record("path", name);
        let mut pax = ustar_header(EntryType::XHeader, 0, record.len() as u64);
        set_name_fields(&mut pax, b"", &ascii_truncated(&pax_header_name(name)))?;
        set_checksum(&mut pax);
        builder.append(&pax, record.as_slice())?;
        set_name_fields(&mut header, b"", &ascii_truncated(name))?;
    }
    set_checksum(&mut header);
    builder.append(&header, data)
}

fn ustar_header(entry_type: EntryType, mode: u32, size: u64) -> Header {
    let mut header = Header::new_ustar();
    header.set_entry_type(entry_type);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(size);
    header
}

/// Writes the header checksum as six octal digits, a NUL and a space, the
/// traditional layout Go's `archive/tar` (and GNU tar) use.
fn set_checksum(header: &mut Header) {
    let sum: u32 = header
        .as_bytes()
        .iter()
        .enumerate()
        .map(|(i, byte)| {
            if (148..156).contains(&i) {
                u32::from(b' ')
            } else {
                u32::from(*byte)
            }
        })
        .sum();
    let field = format!("{sum:06o}\0 ");
    header.as_old_mut().cksum.copy_from_slice(field.as_bytes());
}

fn set_name_fields(header: &mut Header, prefix: &[u8], name: &[u8]) -> io::Result<()> {
    let too_long = || invalid_input("tar entry name does not fit its header field".to_owned());
    let ustar = header.as_ustar_mut().ok_or_else(too_long)?;
    ustar
        .name
        .get_mut(..name.len())
        .ok_or_else(too_long)?
        .copy_from_slice(name);
    ustar
        .prefix
        .get_mut(..prefix.len())
        .ok_or_else(too_long)?
        .copy_from_slice(prefix);
    Ok(())
}

/// Splits an ASCII name longer than the USTAR name field at a "/" so that the
/// head fits the prefix field and the tail the name field.
fn split_ustar_name(name: &str) -> Option<(&str, &str)> {
    if name.len() <= USTAR_NAME_LEN || !name.is_ascii() {
        return None;
    }
    let search_end = name.len().min(USTAR_PREFIX_LEN + 1);
    let slash = name[..search_end].rfind('/')?;
    let (prefix, suffix) = (&name[..slash], &name[slash + 1..]);
    if slash == 0 || suffix.is_empty() || suffix.len() > USTAR_NAME_LEN {
        return None;
    }
    Some((prefix, suffix))
}

/// Name of the PAX extended header entry for `name`: "dir/PaxHeaders.0/file".
fn pax_header_name(name: &str) -> String {
    match name.rsplit_once('/') {
        Some((dir, file)) => format!("{dir}/PaxHeaders.0/{file}"),
        None => format!("PaxHeaders.0/{name}"),
    }
}

/// ASCII characters of `name`, cut to the USTAR name field.
fn ascii_truncated(name: &str) -> Vec<u8> {
    name.bytes().filter(u8::is_ascii).take(USTAR_NAME_LEN).collect()
}

/// One PAX record: "<length> <key>=<value>\n", the length counting itself.
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let base = key.len() + value.len() + 3;
    let mut total = base + decimal_digits(base);
    while base + decimal_digits(total) != total {
        total = base + decimal_digits(total);
    }
    format!("{total} {key}={value}\n").into_bytes()
}

fn decimal_digits(mut n: usize) -> usize {
    let mut digits = 1;
    while n >= 10 {
        n /= 10;
        digits += 1;
    }
    digits
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Instant;

    // -- building test archives --------------------------------------------

    fn file(path: &str, bytes: &[u8]) -> ArchiveFile {
        ArchiveFile {
            path: path.to_owned(),
            bytes: bytes.to_vec(),
        }
    }

    /// A raw tar entry (header plus padded data) with the name bytes written
    /// straight into the header, so hostile names survive.
    fn raw_entry(name: &[u8], entry_type: EntryType, data: &[u8]) -> Vec<u8> {
        raw_entry_with_link(name, entry_type, data, b"")
    }

    fn raw_entry_with_link(name: &[u8], entry_type: EntryType, data: &[u8], link: &[u8]) -> Vec<u8> {
        let mut header = Header::new_gnu();
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        header.set_entry_type(entry_type);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_cksum();
        let mut out = header.as_bytes().to_vec();
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
        out
    }

    /// A pre-POSIX directory: type byte NUL and a name ending in "/".
    fn old_style_dir_entry(name: &[u8]) -> Vec<u8> {
        let mut header = Header::new_old();
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_mode(0o755);
        header.set_size(0);
        header.set_mtime(0);
        header.as_old_mut().linkflag = [0];
        header.set_cksum();
        header.as_bytes().to_vec()
    }

    /// A GNU long-name entry followed by the entry it names.
    fn gnu_long_name_entry(name: &[u8], data: &[u8]) -> Vec<u8> {
        let mut long = name.to_vec();
        long.push(0);
        let mut out = raw_entry(b"././@LongLink", EntryType::GNULongName, &long);
        out.extend(raw_entry(&name[..100], EntryType::Regular, data));
        out
    }

    fn tar_gz(entries: &[Vec<u8>]) -> Vec<u8> {
        let mut tar: Vec<u8> = entries.concat();
        tar.extend_from_slice(&[0; 1024]);
        gzip(&tar)
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    /// A gzipped tar holding one file of `size` zero bytes, streamed so the
    /// zeros never sit in memory; with `hidden` the zeros instead follow the
    /// end-of-archive marker of a bundle with one small file.
    fn zeros_bundle(size: u64, hidden: bool) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        if hidden {
            enc.write_all(&raw_entry(b"/x.rego", EntryType::Regular, b"package x\n"))
                .unwrap();
            enc.write_all(&[0; 1024]).unwrap();
        } else {
            let mut header = ustar_header(EntryType::Regular, 0o644, size);
            set_name_fields(&mut header, b"", b"/bomb.json").unwrap();
            set_checksum(&mut header);
            enc.write_all(header.as_bytes()).unwrap();
        }
        let chunk = vec![0u8; MIB as usize];
        let mut left = size;
        while left > 0 {
            let n = left.min(MIB);
            enc.write_all(&chunk[..n as usize]).unwrap();
            left -= n;
        }
        if !hidden {
            enc.write_all(&[0; 1024]).unwrap();
        }
        enc.finish().unwrap()
    }

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn bytes(&mut self, len: usize) -> Vec<u8> {
            (0..len).map(|_| self.next() as u8).collect()
        }
    }

    fn sample_bundle() -> Vec<ArchiveFile> {
        vec![
            file("data.json", b"{\"users\":[\"alice\"]}\n"),
            file("x/policy.rego", b"package x\n\nallow := true\n"),
            file(".manifest", b"{\"revision\":\"1\",\"roots\":[\"x\"]}\n"),
        ]
    }

    fn unsafe_reason(gz: &[u8]) -> &'static str {
        match read(gz, &Limits::default()) {
            Err(ArchiveError::UnsafePath { reason, .. }) => reason,
            other => panic!("expected UnsafePath, got {other:?}"),
        }
    }

    // -- writing -----------------------------------------------------------

    /// A bundle as `opa build` writes it, produced with Go's `archive/tar`
    /// and `compress/gzip` using OPA's header recipe (name "/" + path, mode
    /// 0600, regular file, size; everything else zero): "/data.json",
    /// "/x/policy.rego", "/.manifest".
    const GO_BUNDLE_MODE_0600: &str = concat!(
        "1f8b08000000000000ffecd64fce82301005f0aebf53901e80bef22924de668295d43f94d06a30c4",
        "bb9bb8d1c0828529c430bfcdb07bc3e2b5557b0a941ebdab4534009003af89f104f0fff10d01adb1",
        "d52241bc95deae3e502bf075d6f0e77e44fff85b7a05b620d5a9c69d6d794f5b53b9381993fdd7d9",
        "b0ff79c1fd9f4543e5892a93747c0cac924a2f54db83f1215ec664ff333dbeff37dcff39f4b23537",
        "ebadabe54e16925f038c31b612cf000000ffff4a95446d00100000",
    );

    /// The same files written by Go with mode 0644.
    const GO_BUNDLE_MODE_0644: &str = concat!(
        "1f8b08000000000000ffecd64d0e82301005e0ae3d05e901e82b1248bccd042ba93f94503418e2dd",
        "4ddc68ea828529c430df66d8bd61f1daaa3df5941ebd6b44340050e4f96b02082780edc73704b446",
        "a14582782bbd5d7d4f9dc0cf59e1cffd89f1b1597a05b62035a8d69d6d754f3b53bb381993fdd759",
        "d8ff12dcff59b4549da836c9c0c7c02aa9f4428d3d18dfc7cb98ec7fa6bfefff9cfb3f875176e666",
        "bd758ddcc952f26b8031c656e2190000ffff5c4600d900100000",
    );

    fn unhex(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    fn gunzip(gz: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        MultiGzDecoder::new(gz).read_to_end(&mut out).unwrap();
        out
    }

    fn go_bundle_files() -> Vec<ArchiveFile> {
        vec![
            file("data.json", b"{}\n"),
            file("x/policy.rego", b"package x\n"),
            file(".manifest", b"{\"revision\":\"7\"}\n"),
        ]
    }

    #[test]
    fn reads_a_bundle_written_like_opa_build() {
        let gz = unhex(GO_BUNDLE_MODE_0600);
        assert_eq!(read(&gz, &Limits::default()).unwrap(), go_bundle_files());
    }

    #[test]
    fn tar_stream_matches_go_archive_tar_byte_for_byte() {
        let ours = write(&go_bundle_files()).unwrap();
        assert_eq!(gunzip(&ours), gunzip(&unhex(GO_BUNDLE_MODE_0644)));
    }

    #[test]
    fn round_trip_returns_the_same_files_in_order() {
        let files = sample_bundle();
        let gz = write(&files).unwrap();
        assert_eq!(read(&gz, &Limits::default()).unwrap(), files);
    }

    #[test]
    fn write_is_deterministic() {
        let files = sample_bundle();
        assert_eq!(write(&files).unwrap(), write(&files).unwrap());
        assert_ne!(
            write(&files).unwrap(),
            write(&files[..2]).unwrap(),
            "different files must give different bytes"
        );
    }

    #[test]
    fn written_headers_look_like_opa_build() {
        let gz = write(&sample_bundle()).unwrap();
        assert_eq!(&gz[..4], &[0x1f, 0x8b, 8, 0], "plain gzip, no file name");
        assert_eq!(&gz[4..8], &[0, 0, 0, 0], "gzip mtime 0");
        let mut archive = Archive::new(MultiGzDecoder::new(gz.as_slice()));
        let mut names = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let header = entry.header();
            assert!(header.as_ustar().is_some(), "USTAR header");
            assert_eq!(header.entry_type(), EntryType::Regular);
            assert_eq!(header.mode().unwrap(), 0o644);
            assert_eq!(header.mtime().unwrap(), 0);
            assert_eq!(header.uid().unwrap(), 0);
            assert_eq!(header.gid().unwrap(), 0);
            assert_eq!(header.username_bytes(), Some(&b""[..]));
            assert_eq!(header.groupname_bytes(), Some(&b""[..]));
            names.push(String::from_utf8(entry.path_bytes().into_owned()).unwrap());
        }
        assert_eq!(names, ["/data.json", "/x/policy.rego", "/.manifest"]);
        // Two zero blocks close the tar, as Go's archive/tar writes it.
        let mut tar = Vec::new();
        MultiGzDecoder::new(gz.as_slice()).read_to_end(&mut tar).unwrap();
        assert!(tar.ends_with(&[0; 1024]));
        assert_eq!(tar.len() % 512, 0);
    }

    #[test]
    fn long_and_non_ascii_paths_round_trip() {
        let split = format!("{}/{}.rego", "d".repeat(90), "f".repeat(60));
        let one_long_segment = format!("x/{}.rego", "p".repeat(150));
        let very_long = format!("{}policy.rego", "deep/".repeat(60));
        let files = vec![
            file(&split, b"package a\n"),
            file(&one_long_segment, b"package b\n"),
            file(&very_long, b"package c\n"),
            file("règles/autorisation.rego", b"package d\n"),
        ];
        let gz = write(&files).unwrap();
        assert_eq!(read(&gz, &Limits::default()).unwrap(), files);
        assert_eq!(write(&files).unwrap(), gz);
    }

    #[test]
    fn write_refuses_paths_read_would_refuse() {
        for path in [
            "../x.rego",
            "/x.rego",
            "./x.rego",
            "a//b.rego",
            "",
            "a\\b.rego",
            "C:/x.rego",
        ] {
            let err = write(&[file(path, b"")]).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{path:?}");
        }
        let err = write(&[file("a.rego", b""), file("a.rego", b"")]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    // -- path handling -----------------------------------------------------

    #[test]
    fn leading_slash_and_dot_slash_are_normalised() {
        let gz = tar_gz(&[
            raw_entry(b"/x.rego", EntryType::Regular, b"package x\n"),
            raw_entry(b"./y.rego", EntryType::Regular, b"package y\n"),
            raw_entry(b"/./a/./b//data.json", EntryType::Regular, b"{}"),
        ]);
        let files = read(&gz, &Limits::default()).unwrap();
        let paths: Vec<_> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["x.rego", "y.rego", "a/b/data.json"]);
        assert_eq!(files[0].bytes, b"package x\n");
    }

    #[test]
    fn directories_are_skipped() {
        let gz = tar_gz(&[
            raw_entry(b"./", EntryType::Directory, b""),
            raw_entry(b"/", EntryType::Directory, b""),
            raw_entry(b"./x/", EntryType::Directory, b""),
            raw_entry(b"./x/p.rego", EntryType::Regular, b"package x\n"),
            old_style_dir_entry(b"old/"),
        ]);
        let files = read(&gz, &Limits::default()).unwrap();
        assert_eq!(files, vec![file("x/p.rego", b"package x\n")]);
    }

    #[test]
    fn dot_dot_is_refused() {
        for name in [&b"../evil.rego"[..], b"/../evil.rego", b"a/../../evil.rego", b"a/.."] {
            let gz = tar_gz(&[raw_entry(name, EntryType::Regular, b"x")]);
            let err = read(&gz, &Limits::default()).unwrap_err();
            assert_eq!(err.code(), "bundle_unsafe_path", "{name:?}");
            assert!(err.to_string().contains(".."), "{err}");
        }
        let gz = tar_gz(&[raw_entry(b"../up/", EntryType::Directory, b"")]);
        assert_eq!(unsafe_reason(&gz), "contains a \"..\" segment");
    }

    #[test]
    fn double_slash_absolute_path_is_refused() {
        let gz = tar_gz(&[raw_entry(b"//etc/passwd", EntryType::Regular, b"x")]);
        let err = read(&gz, &Limits::default()).unwrap_err();
        assert_eq!(
            err,
            ArchiveError::UnsafePath {
                path: "//etc/passwd".to_owned(),
                reason: "is absolute",
            }
        );
        assert!(err.to_string().contains("\"//etc/passwd\""), "{err}");
    }

    #[test]
    fn windows_backslash_empty_nul_and_non_utf8_paths_are_refused() {
        let cases: [(&[u8], &str); 5] = [
            (b"C:/Windows/x.rego", "starts with a Windows drive letter"),
            (b"/c:x.rego", "starts with a Windows drive letter"),
            (b"x\\..\\y.rego", "contains a backslash"),
            (b"/", "is empty"),
            (b"/\xff.rego", "is not valid UTF-8"),
        ];
        for (name, reason) in cases {
            let gz = tar_gz(&[raw_entry(name, EntryType::Regular, b"x")]);
            assert_eq!(unsafe_reason(&gz), reason, "{name:?}");
        }
        let mut with_nul = b"a\0b/".to_vec();
        with_nul.extend(b"c".repeat(120));
        let gz = tar_gz(&[gnu_long_name_entry(&with_nul, b"x")]);
        assert_eq!(unsafe_reason(&gz), "contains a NUL byte");
    }

    #[test]
    fn gnu_long_name_is_read_and_validated() {
        let long = format!("x/{}/policy.rego", "nested".repeat(30));
        let mut tar = Vec::new();
        {
            let mut builder = Builder::new(&mut tar);
            let mut header = Header::new_gnu();
            header.set_size(10);
            header.set_mode(0o644);
            header.set_entry_type(EntryType::Regular);
            builder.append_data(&mut header, &long, &b"package x\n"[..]).unwrap();
            builder.finish().unwrap();
        }
        assert!(
            tar.windows(13).any(|w| w == b"././@LongLink"),
            "the name must travel in a GNU long-name entry"
        );
        let files = read(&gzip(&tar), &Limits::default()).unwrap();
        assert_eq!(files, vec![file(&long, b"package x\n")]);

        let hostile = format!("{}/../../../../etc/cron.d/x", "a".repeat(120));
        let gz = tar_gz(&[gnu_long_name_entry(hostile.as_bytes(), b"x")]);
        assert_eq!(unsafe_reason(&gz), "contains a \"..\" segment");
    }

    #[test]
    fn overlong_path_is_refused_and_reported_briefly() {
        let long = format!("/{}.rego", "a/".repeat(3000));
        let gz = tar_gz(&[gnu_long_name_entry(long.as_bytes(), b"x")]);
        let err = read(&gz, &Limits::default()).unwrap_err();
        let ArchiveError::UnsafePath { path, reason } = &err else {
            panic!("expected UnsafePath, got {err:?}");
        };
        assert_eq!(*reason, "is longer than 4096 bytes");
        assert!(path.len() < 300, "reported path is clipped");
    }

    // -- entry types -------------------------------------------------------

    fn unsupported_kind(entry: Vec<u8>) -> (String, &'static str) {
        let gz = tar_gz(&[entry]);
        match read(&gz, &Limits::default()) {
            Err(ArchiveError::UnsupportedEntry { path, kind }) => (path, kind),
            other => panic!("expected UnsupportedEntry, got {other:?}"),
        }
    }

    #[test]
    fn symlink_is_refused() {
        let entry = raw_entry_with_link(b"/data.json", EntryType::Symlink, b"", b"/etc/passwd");
        assert_eq!(unsupported_kind(entry), ("data.json".to_owned(), "symbolic link"));
    }

    #[test]
    fn hard_link_is_refused() {
        let entry = raw_entry_with_link(b"/x.rego", EntryType::Link, b"", b"/etc/shadow");
        assert_eq!(unsupported_kind(entry), ("x.rego".to_owned(), "hard link"));
    }

    #[test]
    fn devices_and_fifos_are_refused() {
        let cases = [
            (EntryType::Char, "character device"),
            (EntryType::Block, "block device"),
            (EntryType::Fifo, "named pipe (fifo)"),
        ];
        for (entry_type, kind) in cases {
            let (path, got) = unsupported_kind(raw_entry(b"/dev/x", entry_type, b""));
            assert_eq!((path.as_str(), got), ("dev/x", kind));
        }
        let err = read(
            &tar_gz(&[raw_entry(b"/zero", EntryType::Char, b"")]),
            &Limits::default(),
        )
        .unwrap_err();
        assert_eq!(err.code(), "bundle_unsupported_entry");
        assert!(err.to_string().contains("character device"), "{err}");
    }

    #[test]
    fn pax_global_header_is_ignored() {
        let gz = tar_gz(&[
            raw_entry(
                b"pax_global_header",
                EntryType::XGlobalHeader,
                b"52 comment=0123456789012345678901234567890123456789\n",
            ),
            raw_entry(b"/x.rego", EntryType::Regular, b"package x\n"),
        ]);
        let files = read(&gz, &Limits::default()).unwrap();
        assert_eq!(files, vec![file("x.rego", b"package x\n")]);
    }

    #[test]
    fn duplicate_paths_are_refused() {
        let gz = tar_gz(&[
            raw_entry(b"/x.rego", EntryType::Regular, b"package x\n"),
            raw_entry(b"./x.rego", EntryType::Regular, b"package evil\n"),
        ]);
        let err = read(&gz, &Limits::default()).unwrap_err();
        assert_eq!(
            err,
            ArchiveError::DuplicatePath {
                path: "x.rego".to_owned()
            }
        );
        assert_eq!(err.code(), "bundle_duplicate_path");
    }

    // -- limits ------------------------------------------------------------

    #[test]
    fn too_many_files_is_refused() {
        let entries: Vec<_> = (0..6)
            .map(|i| raw_entry(format!("/p{i}.rego").as_bytes(), EntryType::Regular, b"x"))
            .collect();
        let gz = tar_gz(&entries);
        let limits = Limits {
            max_files: 5,
            ..Limits::default()
        };
        assert_eq!(read(&gz, &limits).unwrap_err(), ArchiveError::TooManyFiles { limit: 5 });
        assert_eq!(read(&gz, &Limits { max_files: 6, ..limits }).unwrap().len(), 6);
    }

    #[test]
    fn compressed_size_is_checked_first() {
        let gz = write(&sample_bundle()).unwrap();
        let limits = Limits {
            max_compressed_bytes: gz.len() as u64 - 1,
            ..Limits::default()
        };
        let err = read(&gz, &limits).unwrap_err();
        assert_eq!(
            err,
            ArchiveError::TooLarge {
                what: Oversized::CompressedBundle,
                limit: gz.len() as u64 - 1
            }
        );
        assert_eq!(err.code(), "bundle_too_large");
        // Checked before decompressing: garbage of the same size gets the same answer.
        assert_eq!(read(&vec![0u8; gz.len()], &limits).unwrap_err(), err);
    }

    #[test]
    fn file_over_max_file_bytes_is_refused() {
        let mut rng = XorShift(7);
        let gz = write(&[
            file("small.rego", b"package small\n"),
            file("big.json", &rng.bytes(2048)),
        ])
        .unwrap();
        let limits = Limits {
            max_file_bytes: 1024,
            ..Limits::default()
        };
        let err = read(&gz, &limits).unwrap_err();
        assert_eq!(
            err,
            ArchiveError::TooLarge {
                what: Oversized::File {
                    path: "big.json".to_owned()
                },
                limit: 1024
            }
        );
        assert!(err.to_string().contains("\"big.json\""), "{err}");
        assert!(err.to_string().contains("1 KiB"), "{err}");
    }

    #[test]
    fn total_over_max_uncompressed_is_refused() {
        let mut rng = XorShift(11);
        let files: Vec<_> = (0..3)
            .map(|i| file(&format!("d{i}/data.json"), &rng.bytes(400 * 1024)))
            .collect();
        let gz = write(&files).unwrap();
        let limits = Limits {
            max_uncompressed_bytes: MIB,
            max_file_bytes: MIB,
            ..Limits::default()
        };
        assert_eq!(
            read(&gz, &limits).unwrap_err(),
            ArchiveError::TooLarge {
                what: Oversized::DecompressedBundle,
                limit: MIB
            }
        );
        let limits = Limits {
            max_uncompressed_bytes: 2 * MIB,
            ..limits
        };
        assert_eq!(read(&gz, &limits).unwrap(), files);
    }

    #[test]
    fn data_hidden_after_the_archive_counts_towards_the_limits() {
        let mut rng = XorShift(13);
        let mut tar = raw_entry(b"/x.rego", EntryType::Regular, b"package x\n");
        tar.extend_from_slice(&[0; 1024]);
        tar.extend(rng.bytes(2 * MIB as usize));
        let limits = Limits {
            max_uncompressed_bytes: MIB,
            ..Limits::default()
        };
        let err = read(&gzip(&tar), &limits).unwrap_err();
        assert_eq!(
            err,
            ArchiveError::TooLarge {
                what: Oversized::DecompressedBundle,
                limit: MIB
            }
        );

        let gz = zeros_bundle(20 * MIB, true);
        let err = read(&gz, &Limits::default()).unwrap_err();
        assert_eq!(err.code(), "bundle_decompression_bomb");
    }

    #[test]
    fn decompression_bomb_is_refused_before_it_is_inflated() {
        let gz = zeros_bundle(50 * MIB, false);
        assert!(gz.len() < 200 * 1024, "bomb is {} bytes", gz.len());

        // Generous size limits, so only the ratio can catch it.
        let limits = Limits {
            max_uncompressed_bytes: 128 * MIB,
            max_file_bytes: 64 * MIB,
            ..Limits::default()
        };
        let meter = Meter::default();
        let started = Instant::now();
        let err = read_metered(&gz, &limits, &meter).unwrap_err();
        let elapsed = started.elapsed();
        assert_eq!(
            err,
            ArchiveError::DecompressionBomb {
                max_ratio: 100,
                compressed_bytes: gz.len() as u64
            }
        );
        assert_eq!(err.code(), "bundle_decompression_bomb");
        // Stopped one byte past max_ratio times the compressed size: far short
        // of the 50 MiB the file claims, so the file was never held whole.
        let stopped_at = meter.decompressed.get();
        assert_eq!(stopped_at, 100 * gz.len() as u64 + 1);
        assert!(stopped_at < 50 * MIB / 4);
        assert!(elapsed.as_secs() < 10, "took {elapsed:?}");

        // With the default limits its declared size alone gets it refused.
        let err = read(&gz, &Limits::default()).unwrap_err();
        assert_eq!(
            err,
            ArchiveError::TooLarge {
                what: Oversized::File {
                    path: "bomb.json".to_owned()
                },
                limit: 16 * MIB
            }
        );
    }

    #[test]
    fn small_bundles_are_not_mistaken_for_bombs() {
        // 512 KiB of spaces compresses far beyond 100:1 but stays under the
        // 1 MiB threshold of the ratio check.
        let files = vec![file("data.json", &vec![b' '; 512 * 1024])];
        let gz = write(&files).unwrap();
        assert!((512 * 1024) / gz.len() > 100);
        assert_eq!(read(&gz, &Limits::default()).unwrap(), files);
    }

    // -- corruption --------------------------------------------------------

    #[test]
    fn not_gzip_is_corrupt() {
        for input in [
            &b""[..],
            b"PK\x03\x04 this is a zip",
            b"\x1f",
            b"\x1f\x8b\x08\x00garbage",
        ] {
            let err = read(input, &Limits::default()).unwrap_err();
            assert_eq!(err.code(), "bundle_corrupt", "{input:?}");
        }
        // Valid gzip, but not a tar inside.
        let err = read(&gzip(&[b'x'; 2048]), &Limits::default()).unwrap_err();
        assert_eq!(err.code(), "bundle_corrupt");
        assert!(err.to_string().starts_with("the bundle is not a valid gzipped tar"));
    }

    #[test]
    fn truncated_archive_is_corrupt() {
        let mut rng = XorShift(3);
        let gz = write(&[file("data.json", &rng.bytes(4096)), file("a.rego", b"package a\n")]).unwrap();
        for cut in [gz.len() / 2, gz.len() - 20, gz.len() - 1] {
            let err = read(&gz[..cut], &Limits::default()).unwrap_err();
            assert_eq!(err.code(), "bundle_corrupt", "cut at {cut} of {}", gz.len());
        }
        // A damaged gzip trailer (CRC) is caught too.
        let mut bad_crc = gz.clone();
        let at = bad_crc.len() - 6;
        bad_crc[at] ^= 0xff;
        assert_eq!(read(&bad_crc, &Limits::default()).unwrap_err().code(), "bundle_corrupt");
    }

    #[test]
    fn file_shorter_than_declared_is_corrupt() {
        let mut entry = raw_entry(b"/x.rego", EntryType::Regular, &[b'a'; 600]);
        entry.truncate(512 + 100);
        let err = read(&gzip(&entry), &Limits::default()).unwrap_err();
        assert_eq!(err.code(), "bundle_corrupt");
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = XorShift(0x5eed_1234_abcd_ef01);
        let valid_tar = {
            let mut tar = Vec::new();
            MultiGzDecoder::new(write(&sample_bundle()).unwrap().as_slice())
                .read_to_end(&mut tar)
                .unwrap();
            tar
        };
        let limits = Limits::default();
        for round in 0..300 {
            let len = (rng.next() % 4096) as usize;
            let mut noise = rng.bytes(len);
            let _ = read(&noise, &limits);
            // Past the gzip magic check.
            if noise.len() >= 2 {
                noise[0] = 0x1f;
                noise[1] = 0x8b;
                let _ = read(&noise, &limits);
            }
            // Valid gzip around garbage, so the tar parser sees it.
            let _ = read(&gzip(&noise), &limits);
            // A real bundle with a few bytes flipped, so headers half-parse.
            let mut mutated = valid_tar.clone();
            for _ in 0..(1 + round % 8) {
                let at = (rng.next() as usize) % mutated.len();
                mutated[at] = rng.next() as u8;
            }
            if let Err(err) = read(&gzip(&mutated), &limits) {
                assert!(err.code().starts_with("bundle_"));
            }
        }
    }

    // -- errors ------------------------------------------------------------

    #[test]
    fn errors_have_stable_codes_and_lower_case_messages() {
        let cases = [
            (
                ArchiveError::TooLarge {
                    what: Oversized::DecompressedBundle,
                    limit: 64 * MIB,
                },
                "bundle_too_large",
            ),
            (
                ArchiveError::DecompressionBomb {
                    max_ratio: 100,
                    compressed_bytes: 1000,
                },
                "bundle_decompression_bomb",
            ),
            (ArchiveError::Corrupt { detail: "x".to_owned() }, "bundle_corrupt"),
            (
                ArchiveError::UnsafePath {
                    path: "../x".to_owned(),
                    reason: "is absolute",
                },
                "bundle_unsafe_path",
            ),
            (
                ArchiveError::UnsupportedEntry {
                    path: "x".to_owned(),
                    kind: "hard link",
                },
                "bundle_unsupported_entry",
            ),
            (
                ArchiveError::DuplicatePath { path: "x".to_owned() },
                "bundle_duplicate_path",
            ),
            (ArchiveError::TooManyFiles { limit: 10 }, "bundle_too_many_files"),
        ];
        for (err, code) in cases {
            assert_eq!(err.code(), code);
            let message = err.to_string();
            assert!(message.starts_with("the "), "{message}");
            assert!(message.contains("; "), "says what to fix: {message}");
        }
        assert_eq!(
            ArchiveError::TooLarge {
                what: Oversized::DecompressedBundle,
                limit: 64 * MIB
            }
            .to_string(),
            "the decompressed bundle is larger than the limit of 64 MiB; remove unneeded files or data, or split the policy into several bundles"
        );
    }

    // -- collect_dir -------------------------------------------------------

    #[test]
    fn collect_dir_picks_bundle_files_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let put = |rel: &str, body: &str| {
            let path = root.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, body).unwrap();
        };
        put("policy.rego", "package main\n");
        put("data.json", "{}");
        put(".manifest", "{\"roots\":[\"\"]}");
        put(".signatures.json", "{\"signatures\":[]}");
        put("README.md", "docs");
        put("notes.txt", "skip");
        put("x/y/authz.rego", "package x.y\n");
        put("x/data.yaml", "a: 1\n");
        put("x/data.yml", "b: 2\n");
        put("x/.manifest", "not at the top");
        put("x/other.json", "{}");
        put(".git/hooks/pre-commit.rego", "package hidden\n");
        put(".cache/data.json", "{}");
        put("x/.hidden/deep.rego", "package hidden\n");

        let files = collect_dir(root).unwrap();
        let paths: Vec<_> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                ".manifest",
                ".signatures.json",
                "data.json",
                "policy.rego",
                "x/data.yaml",
                "x/data.yml",
                "x/y/authz.rego",
            ]
        );
        assert_eq!(files[6].bytes, b"package x.y\n");

        // What is collected can be written and read back unchanged.
        let gz = write(&files).unwrap();
        assert_eq!(read(&gz, &Limits::default()).unwrap(), files);
    }
}
