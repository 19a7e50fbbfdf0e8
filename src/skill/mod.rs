//! Skills (seed 000): versioned units of agent behaviour, each a manifest
//! (`id`, semver `version`, `description`, `allowed_connectors`,
//! `prompt_template`, optional `output_schema`, `rbac_scope`, and
//! `visibility`), registered per tenant. A version is immutable; workflows
//! pin one at run start ([`registry::resolve`]).
//!
//! [`parse`] reads a manifest (JSON when its first non-blank byte is `{`,
//! YAML otherwise; duplicate keys are syntax errors) and reports every fault
//! in one pass, each a [`SkillError`] with a stable `code`, where it is
//! (`at`) and what to do (`message`). [`validate_output`] checks an agent's
//! output against a version's schema (compiled once per schema digest);
//! [`visible`] says whether a version may be used by a project or team.
//!
//! Invariants: no IO (an output schema's `$ref` to anything outside the
//! schema is refused, never fetched). A [`SkillManifest`] from [`parse`]
//! has no fault, and [`digest`] of equal manifests is equal whatever the
//! format they were written in.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex};

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::document::{Unreadable, read_strict};
use crate::evidence::canonical;

pub mod registry;
#[cfg(test)]
mod tests;

/// The largest manifest accepted, in bytes.
pub const MAX_MANIFEST_BYTES: usize = 256 * 1024;
/// The longest `prompt_template`, in bytes.
pub const MAX_PROMPT_TEMPLATE_BYTES: usize = 64 * 1024;
/// The largest `output_schema`, in bytes of its canonical JSON.
pub const MAX_OUTPUT_SCHEMA_BYTES: usize = 64 * 1024;
/// How deep `output_schema` may nest (objects and arrays).
pub const MAX_OUTPUT_SCHEMA_DEPTH: usize = 32;
/// The longest `description`, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 4096;
/// The most `allowed_connectors`.
pub const MAX_CONNECTORS: usize = 100;
/// The most projects, and the most teams, a scoped skill may list.
pub const MAX_SCOPE_ENTRIES: usize = 100;
/// The longest skill id.
pub const MAX_SKILL_ID_LEN: usize = 128;
/// The longest connector name.
pub const MAX_CONNECTOR_LEN: usize = 64;
/// The longest project or team name.
pub const MAX_AUDIENCE_LEN: usize = 128;
/// The longest `rbac_scope`.
pub const MAX_SCOPE_LEN: usize = 255;
/// The most segments of an `rbac_scope`.
pub const MAX_SCOPE_SEGMENTS: usize = 16;
/// The longest `version`.
pub const MAX_VERSION_LEN: usize = 64;
/// The most faults reported for one manifest.
pub const MAX_ERRORS: usize = 100;
/// The most violations [`validate_output`] reports.
pub const MAX_OUTPUT_VIOLATIONS: usize = 32;
/// How many compiled output schemas are kept.
pub const SCHEMA_CACHE_ENTRIES: usize = 256;

/// The fields of a manifest.
const FIELDS: &[&str] = &[
    "id",
    "version",
    "description",
    "allowed_connectors",
    "prompt_template",
    "output_schema",
    "rbac_scope",
    "visibility",
];

/// Which versions of a skill a workflow's `Task` may pin: an exact version
/// (`1.2.3`) or a semver requirement (`^1.2`, `>=1, <2`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkillVersion {
    Exact(semver::Version),
    Req(semver::VersionReq),
}

impl SkillVersion {
    /// An exact version if `text` is one, else a requirement.
    pub fn parse(text: &str) -> Result<Self, semver::Error> {
        match semver::Version::parse(text) {
            Ok(v) => Ok(SkillVersion::Exact(v)),
            Err(_) => semver::VersionReq::parse(text).map(SkillVersion::Req),
        }
    }

    pub fn matches(&self, version: &semver::Version) -> bool {
        match self {
            SkillVersion::Exact(v) => v == version,
            SkillVersion::Req(r) => r.matches(version),
        }
    }
}

impl fmt::Display for SkillVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkillVersion::Exact(v) => v.fmt(f),
            SkillVersion::Req(r) => r.fmt(f),
        }
    }
}

impl Serialize for SkillVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The stable codes of [`SkillError`].
pub mod code {
    /// Not JSON or YAML; the message has the line and column. Also an
    /// empty document.
    pub const INVALID_SYNTAX: &str = "invalid_syntax";
    pub const UNKNOWN_FIELD: &str = "unknown_field";
    pub const MISSING_FIELD: &str = "missing_field";
    /// The wrong type, or an empty text.
    pub const INVALID_VALUE: &str = "invalid_value";
    /// `id`: 1 to 128 of `[a-z0-9_.-]`, starting with a letter.
    pub const INVALID_SKILL_ID: &str = "invalid_skill_id";
    /// `version`: strict semver (`1.2.3`, `1.2.3-rc.1`), no build metadata.
    pub const INVALID_VERSION: &str = "invalid_version";
    /// An entry of `allowed_connectors`.
    pub const INVALID_CONNECTOR: &str = "invalid_connector";
    /// `rbac_scope`: dotted lowercase names.
    pub const INVALID_SCOPE: &str = "invalid_scope";
    /// `output_schema` is not an object, or does not compile.
    pub const INVALID_OUTPUT_SCHEMA: &str = "invalid_output_schema";
    /// `visibility`: `published`, or `scoped` with projects and/or teams.
    pub const INVALID_VISIBILITY: &str = "invalid_visibility";
    /// The manifest, a text, a list or the schema is over its limit.
    pub const TOO_LARGE: &str = "too_large";

    /// Every code.
    pub const ALL: &[&str] = &[
        INVALID_SYNTAX,
        UNKNOWN_FIELD,
        MISSING_FIELD,
        INVALID_VALUE,
        INVALID_SKILL_ID,
        INVALID_VERSION,
        INVALID_CONNECTOR,
        INVALID_SCOPE,
        INVALID_OUTPUT_SCHEMA,
        INVALID_VISIBILITY,
        TOO_LARGE,
    ];
}

/// One fault of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkillError {
    /// One of [`code`].
    pub code: &'static str,
    /// Where: `allowed_connectors[2]`, `visibility.scoped.teams[0]`; empty
    /// for the whole document.
    pub at: String,
    /// What is wrong and what to do about it.
    pub message: String,
}

impl SkillError {
    pub fn new(code: &'static str, at: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code,
            at: at.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for SkillError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.at.is_empty() {
            write!(f, "{} ({})", self.message, self.code)
        } else {
            write!(f, "{}: {} ({})", self.at, self.message, self.code)
        }
    }
}

impl std::error::Error for SkillError {}

/// A skill version's manifest. Field names are snake_case, as in seed 000.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkillManifest {
    /// 1 to 128 of `[a-z0-9_.-]`, starting with a letter.
    pub id: String,
    /// Strict semver, without build metadata.
    pub version: String,
    pub description: String,
    /// The connectors the skill's agent may use (names, each once).
    #[serde(default)]
    pub allowed_connectors: Vec<String>,
    pub prompt_template: String,
    /// A JSON Schema (an object) the skill's output must satisfy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    /// A dotted name: `engineering.commissioning`.
    pub rbac_scope: String,
    pub visibility: Visibility,
}

/// Who may use a skill version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Every workflow of the tenant: `visibility: published`.
    Published,
    /// Only executions of a listed project or of a listed team:
    /// `visibility: {scoped: {projects: [..], teams: [..]}}`.
    Scoped(Audience),
}

/// The projects and teams of a scoped skill; at least one in all.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Audience {
    #[serde(default)]
    pub projects: Vec<String>,
    #[serde(default)]
    pub teams: Vec<String>,
}

impl SkillManifest {
    /// The version, parsed. `None` only for a manifest built in code with
    /// an invalid version.
    pub fn semver(&self) -> Option<semver::Version> {
        parse_version(&self.version).ok()
    }

    /// The canonical JSON form (RFC 8785) that [`digest`] hashes.
    pub fn canonical_json(&self) -> Vec<u8> {
        canonical::to_vec(&serde_json::to_value(self).unwrap_or_default())
    }
}

/// The digest of a version: blake3 of the manifest's canonical JSON, hex.
pub fn digest(manifest: &SkillManifest) -> String {
    blake3::hash(&manifest.canonical_json()).to_hex().to_string()
}

/// Whether a version may be used by an execution of `project` and `team`:
/// a published skill by every one, a scoped skill when the project is one
/// of its projects or the team one of its teams.
pub fn visible(manifest: &SkillManifest, project: Option<&str>, team: Option<&str>) -> bool {
    match &manifest.visibility {
        Visibility::Published => true,
        Visibility::Scoped(a) => {
            project.is_some_and(|p| a.projects.iter().any(|x| x == p))
                || team.is_some_and(|t| a.teams.iter().any(|x| x == t))
        }
    }
}

// ---- names ------------------------------------------------------------------

/// Checks a skill id: 1 to 128 of `[a-z0-9_.-]`, starting with a letter.
pub fn check_skill_id(id: &str) -> Result<(), String> {
    check_name(id, MAX_SKILL_ID_LEN, "a skill id")
}

fn check_name(name: &str, max: usize, what: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > max {
        return Err(format!(
            "{what} is 1 to {max} characters; this one has {}",
            name.chars().count()
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(format!("{what} starts with a lowercase letter: {name:?}"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-')))
    {
        return Err(format!(
            "{what} is made of a-z, 0-9, `_`, `.` and `-`; {c:?} is not allowed in {name:?}"
        ));
    }
    Ok(())
}

/// Parses a version: strict semver (three numbers, no leading zeros, an
/// optional pre-release), no build metadata (versions differing only in
/// it would rank equal), each number at most 2^63 - 1 (so the store can
/// order by them).
pub fn parse_version(text: &str) -> Result<semver::Version, String> {
    if text.len() > MAX_VERSION_LEN {
        return Err(format!("a version is at most {MAX_VERSION_LEN} characters"));
    }
    let v = semver::Version::parse(text)
        .map_err(|e| format!("{text:?} is not a semantic version (MAJOR.MINOR.PATCH, e.g. 1.2.0): {e}"))?;
    if !v.build.is_empty() {
        return Err(format!(
            "{text:?} has build metadata (`+{}`); versions that differ only in it rank equal, so it is not allowed",
            v.build
        ));
    }
    if [v.major, v.minor, v.patch].iter().any(|n| *n > i64::MAX as u64) {
        return Err(format!("{text:?} has a number larger than {}", i64::MAX));
    }
    Ok(v)
}

/// Checks an `rbac_scope`: dot-separated segments, each a lowercase letter
/// then `[a-z0-9_-]`; at most 255 characters and 16 segments.
pub fn check_scope(scope: &str) -> Result<(), String> {
    if scope.is_empty() || scope.len() > MAX_SCOPE_LEN {
        return Err(format!("an rbac_scope is 1 to {MAX_SCOPE_LEN} characters"));
    }
    let segments: Vec<&str> = scope.split('.').collect();
    if segments.len() > MAX_SCOPE_SEGMENTS {
        return Err(format!("an rbac_scope has at most {MAX_SCOPE_SEGMENTS} segments"));
    }
    for s in segments {
        let ok = s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'));
        if !ok {
            return Err(format!(
                "{scope:?} is not a dotted name (e.g. engineering.commissioning): each segment is a lowercase letter \
                 followed by a-z, 0-9, `_` or `-`"
            ));
        }
    }
    Ok(())
}

/// Checks a project or team name: 1 to 128 of `[A-Za-z0-9_.-]`, starting
/// with a letter or digit.
pub fn check_audience(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_AUDIENCE_LEN {
        return Err(format!("a project or team name is 1 to {MAX_AUDIENCE_LEN} characters"));
    }
    let ok = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a project or team name: a letter or digit, then letters, digits, `_`, `.` or `-`"
        ))
    }
}

// ---- reading ----------------------------------------------------------------

/// The manifest as a JSON value (JSON or YAML, read as workflow
/// definitions are).
fn read_document(bytes: &[u8]) -> Result<Value, SkillError> {
    read_strict(bytes, MAX_MANIFEST_BYTES, "the manifest").map_err(|e| match e {
        Unreadable::TooLarge(m) => SkillError::new(code::TOO_LARGE, "", m),
        Unreadable::Syntax(m) => SkillError::new(code::INVALID_SYNTAX, "", m),
    })
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Faults, in document order of the fields as listed in [`FIELDS`].
#[derive(Default)]
struct Faults(Vec<SkillError>);

impl Faults {
    fn push(&mut self, code: &'static str, at: impl Into<String>, message: impl Into<String>) {
        self.0.push(SkillError::new(code, at, message));
    }
}

fn quoted(names: &[&str]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

fn unknown_fields(map: &Map<String, Value>, prefix: &str, allowed: &[&str], faults: &mut Faults) {
    for key in map.keys() {
        if !allowed.contains(&key.as_str()) {
            let at = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            faults.push(
                code::UNKNOWN_FIELD,
                at,
                format!("unknown field `{key}`; the fields here are {}", quoted(allowed)),
            );
        }
    }
}

/// A required text field.
fn text<'a>(root: &'a Map<String, Value>, key: &str, faults: &mut Faults) -> Option<&'a str> {
    match root.get(key) {
        None => {
            faults.push(code::MISSING_FIELD, key, format!("`{key}` is required"));
            None
        }
        Some(Value::String(s)) => Some(s),
        Some(other) => {
            faults.push(
                code::INVALID_VALUE,
                key,
                format!("`{key}` is a string, not {}", kind_of(other)),
            );
            None
        }
    }
}

/// A list of strings; `None` (reported) when it is not one. Entries that
/// are not strings are reported with `code` and left out.
fn text_list(value: &Value, at: &str, code: &'static str, faults: &mut Faults) -> Option<Vec<(usize, String)>> {
    let Value::Array(items) = value else {
        faults.push(code, at, format!("a list of names, not {}", kind_of(value)));
        return None;
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::String(s) => out.push((i, s.clone())),
            other => faults.push(
                code,
                format!("{at}[{i}]"),
                format!("a name is a string, not {}", kind_of(other)),
            ),
        }
    }
    Some(out)
}

/// Checks every name of a list, and that none is listed twice.
fn names(
    list: &[(usize, String)],
    at: &str,
    code: &'static str,
    check: impl Fn(&str) -> Result<(), String>,
    faults: &mut Faults,
) {
    let mut seen = BTreeSet::new();
    for (i, name) in list {
        if let Err(m) = check(name) {
            faults.push(code, format!("{at}[{i}]"), m);
        } else if !seen.insert(name.as_str()) {
            faults.push(code, format!("{at}[{i}]"), format!("{name:?} is listed twice"));
        }
    }
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Refuses every reference outside the schema itself: a manifest never
/// makes Warden fetch anything.
struct NoRetrieval;

impl jsonschema::Retrieve for NoRetrieval {
    fn retrieve(&self, uri: &jsonschema::Uri<String>) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        Err(format!("{uri} is outside the schema; an output schema may only refer to itself").into())
    }
}

fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::options()
        .with_retriever(NoRetrieval)
        .build(schema)
        .map_err(|e| e.to_string())
}

fn check_output_schema(schema: &Value, faults: &mut Faults) {
    const AT: &str = "output_schema";
    if !schema.is_object() {
        faults.push(
            code::INVALID_OUTPUT_SCHEMA,
            AT,
            format!("an output schema is a JSON Schema object, not {}", kind_of(schema)),
        );
        return;
    }
    if depth(schema) > MAX_OUTPUT_SCHEMA_DEPTH {
        faults.push(
            code::TOO_LARGE,
            AT,
            format!("the output schema nests deeper than {MAX_OUTPUT_SCHEMA_DEPTH} levels"),
        );
        return;
    }
    let size = canonical::to_vec(schema).len();
    if size > MAX_OUTPUT_SCHEMA_BYTES {
        faults.push(
            code::TOO_LARGE,
            AT,
            format!("the output schema is {size} bytes (canonical JSON); the most is {MAX_OUTPUT_SCHEMA_BYTES}"),
        );
        return;
    }
    if let Err(m) = compile(schema) {
        faults.push(
            code::INVALID_OUTPUT_SCHEMA,
            AT,
            format!("the output schema does not compile: {m}"),
        );
    }
}

fn read_visibility(value: &Value, faults: &mut Faults) -> Option<Visibility> {
    const AT: &str = "visibility";
    let how = "`published`, or a mapping `scoped: {projects: [...], teams: [...]}`";
    match value {
        Value::String(s) if s == "published" => Some(Visibility::Published),
        Value::String(s) if s == "scoped" => {
            faults.push(
                code::INVALID_VISIBILITY,
                AT,
                "a scoped skill names its projects and/or teams: `scoped: {projects: [...], teams: [...]}`",
            );
            None
        }
        Value::Object(map) => {
            unknown_fields(map, AT, &["scoped"], faults);
            let Some(scoped) = map.get("scoped") else {
                faults.push(code::INVALID_VISIBILITY, AT, format!("visibility is {how}"));
                return None;
            };
            let at = "visibility.scoped";
            let Value::Object(scoped) = scoped else {
                faults.push(
                    code::INVALID_VISIBILITY,
                    at,
                    format!(
                        "`scoped` is a mapping with `projects` and/or `teams`, not {}",
                        kind_of(scoped)
                    ),
                );
                return None;
            };
            unknown_fields(scoped, at, &["projects", "teams"], faults);
            let before = faults.0.len();
            let mut audience = Audience::default();
            for (key, out) in [("projects", &mut audience.projects), ("teams", &mut audience.teams)] {
                let Some(v) = scoped.get(key) else { continue };
                let at = format!("{at}.{key}");
                let Some(list) = text_list(v, &at, code::INVALID_VISIBILITY, faults) else {
                    continue;
                };
                if list.len() > MAX_SCOPE_ENTRIES {
                    faults.push(
                        code::TOO_LARGE,
                        &at,
                        format!("{} {key} listed; the most is {MAX_SCOPE_ENTRIES}", list.len()),
                    );
                }
                names(&list, &at, code::INVALID_VISIBILITY, check_audience, faults);
                *out = list.into_iter().map(|(_, n)| n).collect();
            }
            if faults.0.len() > before {
                return None;
            }
            if audience.projects.is_empty() && audience.teams.is_empty() {
                faults.push(
                    code::INVALID_VISIBILITY,
                    at,
                    "a scoped skill names at least one project or team (or is `published`)",
                );
                return None;
            }
            Some(Visibility::Scoped(audience))
        }
        other => {
            faults.push(
                code::INVALID_VISIBILITY,
                AT,
                format!("visibility is {how}, not {}", describe(other)),
            );
            None
        }
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => kind_of(other).to_owned(),
    }
}

/// Reads a manifest from JSON or YAML and validates it: the manifest, or
/// every fault found.
pub fn parse(bytes: &[u8]) -> Result<SkillManifest, Vec<SkillError>> {
    let document = read_document(bytes).map_err(|e| vec![e])?;
    from_value(&document)
}

/// Validates a document already read (JSON values, as YAML would give).
pub fn from_value(document: &Value) -> Result<SkillManifest, Vec<SkillError>> {
    let Value::Object(root) = document else {
        return Err(vec![SkillError::new(
            code::INVALID_VALUE,
            "",
            format!(
                "a skill manifest is a mapping with {}, not {}",
                quoted(FIELDS),
                kind_of(document)
            ),
        )]);
    };
    let mut faults = Faults::default();
    unknown_fields(root, "", FIELDS, &mut faults);

    let id = text(root, "id", &mut faults).and_then(|id| match check_skill_id(id) {
        Ok(()) => Some(id.to_owned()),
        Err(m) => {
            faults.push(code::INVALID_SKILL_ID, "id", m);
            None
        }
    });
    let version = text(root, "version", &mut faults).and_then(|v| match parse_version(v) {
        Ok(_) => Some(v.to_owned()),
        Err(m) => {
            faults.push(code::INVALID_VERSION, "version", m);
            None
        }
    });
    let description = text(root, "description", &mut faults).and_then(|d| {
        if d.trim().is_empty() {
            faults.push(code::INVALID_VALUE, "description", "say what the skill does");
            None
        } else if d.chars().count() > MAX_DESCRIPTION_CHARS {
            faults.push(
                code::TOO_LARGE,
                "description",
                format!("the description is at most {MAX_DESCRIPTION_CHARS} characters"),
            );
            None
        } else {
            Some(d.to_owned())
        }
    });
    let connectors: Option<Vec<String>> = match root.get("allowed_connectors") {
        None => Some(Vec::new()),
        Some(v) => {
            let at = "allowed_connectors";
            let before = faults.0.len();
            match text_list(v, at, code::INVALID_VALUE, &mut faults) {
                None => None,
                Some(list) => {
                    if list.len() > MAX_CONNECTORS {
                        faults.push(
                            code::TOO_LARGE,
                            at,
                            format!("{} connectors listed; the most is {MAX_CONNECTORS}", list.len()),
                        );
                    }
                    let check = |n: &str| check_name(n, MAX_CONNECTOR_LEN, "a connector name");
                    names(&list, at, code::INVALID_CONNECTOR, check, &mut faults);
                    (faults.0.len() == before).then(|| list.into_iter().map(|(_, n)| n).collect())
                }
            }
        }
    };
    let prompt_template = text(root, "prompt_template", &mut faults).and_then(|p| {
        if p.trim().is_empty() {
            faults.push(code::INVALID_VALUE, "prompt_template", "the prompt template is empty");
            None
        } else if p.len() > MAX_PROMPT_TEMPLATE_BYTES {
            faults.push(
                code::TOO_LARGE,
                "prompt_template",
                format!(
                    "the prompt template is {} bytes; the most is {MAX_PROMPT_TEMPLATE_BYTES}",
                    p.len()
                ),
            );
            None
        } else {
            Some(p.to_owned())
        }
    });
    let output_schema = root.get("output_schema").map(|s| {
        check_output_schema(s, &mut faults);
        s.clone()
    });
    let rbac_scope = text(root, "rbac_scope", &mut faults).and_then(|s| match check_scope(s) {
        Ok(()) => Some(s.to_owned()),
        Err(m) => {
            faults.push(code::INVALID_SCOPE, "rbac_scope", m);
            None
        }
    });
    let visibility = match root.get("visibility") {
        None => {
            faults.push(
                code::MISSING_FIELD,
                "visibility",
                "`visibility` is required: `published`, or `scoped: {projects: [...], teams: [...]}`",
            );
            None
        }
        Some(v) => read_visibility(v, &mut faults),
    };

    let mut errors = faults.0;
    if !errors.is_empty() {
        if errors.len() > MAX_ERRORS {
            let more = errors.len() - MAX_ERRORS + 1;
            errors.truncate(MAX_ERRORS - 1);
            errors.push(SkillError::new(
                code::TOO_LARGE,
                "",
                format!("{more} more faults are not listed"),
            ));
        }
        return Err(errors);
    }
    match (
        id,
        version,
        description,
        connectors,
        prompt_template,
        rbac_scope,
        visibility,
    ) {
        (
            Some(id),
            Some(version),
            Some(description),
            Some(allowed_connectors),
            Some(prompt_template),
            Some(rbac_scope),
            Some(visibility),
        ) => Ok(SkillManifest {
            id,
            version,
            description,
            allowed_connectors,
            prompt_template,
            output_schema,
            rbac_scope,
            visibility,
        }),
        // Every `None` above pushed a fault.
        _ => Err(vec![SkillError::new(
            code::INVALID_VALUE,
            "",
            "the manifest could not be read",
        )]),
    }
}

// ---- outputs ----------------------------------------------------------------

type Compiled = Arc<jsonschema::Validator>;

/// Compiled output schemas by the blake3 of their canonical JSON.
static SCHEMAS: LazyLock<Mutex<HashMap<[u8; 32], Compiled>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

fn compiled(schema: &Value) -> Result<Compiled, String> {
    let key = *blake3::hash(&canonical::to_vec(schema)).as_bytes();
    if let Some(v) = SCHEMAS.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(v.clone());
    }
    // Compiled outside the lock: another caller may compile the same schema
    // meanwhile, and one of the two is kept.
    let validator = Arc::new(compile(schema)?);
    let mut cache = SCHEMAS.lock().unwrap_or_else(|p| p.into_inner());
    if cache.len() >= SCHEMA_CACHE_ENTRIES
        && !cache.contains_key(&key)
        && let Some(evicted) = cache.keys().next().copied()
    {
        cache.remove(&evicted);
    }
    cache.insert(key, validator.clone());
    Ok(validator)
}

/// Checks a skill's output against its `output_schema`: every violation
/// (at most [`MAX_OUTPUT_VIOLATIONS`]) as `"<instance path>: <message>"`,
/// the path a JSON Pointer (`/items/0/name`), `(root)` for the whole
/// output. A schema that does not compile is one violation at `(schema)`.
pub fn validate_output(schema: &Value, output: &Value) -> Result<(), Vec<String>> {
    let validator = compiled(schema).map_err(|m| vec![format!("(schema): the output schema does not compile: {m}")])?;
    let violations: Vec<String> = validator
        .iter_errors(output)
        .take(MAX_OUTPUT_VIOLATIONS)
        .map(|e| {
            let path = e.instance_path().as_str();
            let path = if path.is_empty() { "(root)" } else { path };
            format!("{path}: {e}")
        })
        .collect();
    if violations.is_empty() { Ok(()) } else { Err(violations) }
}

/// How many compiled schemas are cached (for tests).
#[cfg(test)]
fn cached_schemas() -> usize {
    SCHEMAS.lock().unwrap_or_else(|p| p.into_inner()).len()
}
