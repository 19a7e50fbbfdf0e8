//! Reading an uploaded OPA bundle into a validated, not yet compiled, form.
//!
//! Order of checks: archive safety (sizes, ratio, paths, entry types), the
//! signature (over every file, before anything in them is trusted), the
//! manifest, the data documents, then the roots. Compilation follows in
//! [`super::compiled`].

use serde::Deserialize;

use super::archive::{self, ArchiveFile};
use super::signature::{self, VerificationKey, VerifiedSignature};
use super::{Error, compiled::DataPath};

/// The `.manifest` of a bundle.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Manifest {
    #[serde(default)]
    pub revision: String,
    /// Missing roots mean the whole data tree, as in OPA.
    #[serde(default)]
    pub roots: Option<Vec<String>>,
    #[serde(default)]
    pub rego_version: Option<i64>,
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
}

#[derive(Debug, Clone)]
pub struct Module {
    pub path: String,
    /// The text as uploaded, with each template string (`$"…{x}…"`) made
    /// the call OPA's compiler makes of it (`super::template_strings`):
    /// what every check and the compiler read. Lines are unchanged.
    pub source: String,
}

/// A bundle that passed every check short of compiling.
#[derive(Debug, Clone)]
pub struct ParsedBundle {
    /// blake3 of the uploaded bytes, lower-case hex.
    pub digest: String,
    pub size_bytes: usize,
    pub manifest: Manifest,
    /// Roots as path components; `[[]]` (one empty root) covers everything.
    pub roots: Vec<Vec<String>>,
    pub modules: Vec<Module>,
    /// The merged data document.
    pub data: serde_json::Value,
    pub signature: Option<VerifiedSignature>,
}

impl ParsedBundle {
    /// A bundle of these Rego modules (path, source) and nothing else,
    /// unsigned: what the checks made at upload are tested on.
    #[cfg(test)]
    pub(crate) fn of_modules(files: &[(&str, &str)]) -> ParsedBundle {
        ParsedBundle {
            digest: String::new(),
            size_bytes: files.iter().map(|(_, s)| s.len()).sum(),
            manifest: Manifest {
                revision: "1".into(),
                roots: None,
                rego_version: None,
                metadata: None,
            },
            roots: vec![vec![]],
            modules: files
                .iter()
                .map(|(path, source)| Module {
                    path: path.to_string(),
                    source: super::template_strings::desugar(path, source)
                        .expect("the template strings read")
                        .unwrap_or_else(|| source.to_string()),
                })
                .collect(),
            data: serde_json::json!({}),
            signature: None,
        }
    }

    /// Roots in their `/`-separated form.
    pub fn roots_text(&self) -> Vec<String> {
        self.roots.iter().map(|r| r.join("/")).collect()
    }
}

/// What the caller requires of signatures.
pub struct SignaturePolicy<'a> {
    pub keys: &'a [VerificationKey],
    pub required: bool,
    /// When false, an existing `.signatures.json` is not checked (used when
    /// re-reading a version that was verified at upload).
    pub verify: bool,
}

impl SignaturePolicy<'static> {
    /// Signatures neither required nor checked: a version verified when it
    /// was uploaded, read again, or a bundle a local tool only compiles.
    pub const UNCHECKED: SignaturePolicy<'static> = SignaturePolicy {
        keys: &[],
        required: false,
        verify: false,
    };
}

pub const SIGNATURES_FILE: &str = ".signatures.json";
pub const MANIFEST_FILE: &str = ".manifest";

pub fn digest(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// Checks and splits an uploaded bundle.
pub fn parse(bytes: &[u8], limits: &archive::Limits, sig: SignaturePolicy<'_>) -> Result<ParsedBundle, Error> {
    let files = archive::read(bytes, limits).map_err(Error::Archive)?;

    let (signatures, files): (Vec<ArchiveFile>, Vec<ArchiveFile>) =
        files.into_iter().partition(|f| f.path == SIGNATURES_FILE);
    let signature = match (signatures.first(), sig.verify) {
        (Some(s), true) => {
            let listed: Vec<(String, Vec<u8>)> = files.iter().map(|f| (f.path.clone(), f.bytes.clone())).collect();
            Some(signature::verify(&s.bytes, &listed, sig.keys).map_err(Error::Signature)?)
        }
        (None, _) if sig.required => return Err(Error::SignatureRequired),
        _ => None,
    };

    let manifest: Manifest = match files.iter().find(|f| f.path == MANIFEST_FILE) {
        Some(f) => serde_json::from_slice(&f.bytes)
            .map_err(|e| Error::ManifestInvalid(format!(".manifest is not valid JSON: {e}")))?,
        None => {
            return Err(Error::ManifestInvalid(
                "the bundle has no .manifest; add one with a \"revision\" (warden bundle build writes it)".into(),
            ));
        }
    };
    validate_revision(&manifest.revision)?;
    if let Some(v) = manifest.rego_version
        && v != 0
        && v != 1
    {
        return Err(Error::ManifestInvalid(format!(
            "rego_version {v} is not supported; use 0 or 1"
        )));
    }
    let roots: Vec<Vec<String>> = match &manifest.roots {
        None => vec![vec![]],
        Some(r) if r.is_empty() => vec![vec![]],
        Some(r) => r
            .iter()
            .map(|root| {
                let t = root.trim_matches('/');
                if t.is_empty() {
                    Ok(vec![])
                } else if t.split('/').any(str::is_empty) {
                    Err(Error::ManifestInvalid(format!(
                        "root {root:?} has an empty path segment"
                    )))
                } else {
                    Ok(t.split('/').map(str::to_string).collect())
                }
            })
            .collect::<Result<_, _>>()?,
    };
    for (i, a) in roots.iter().enumerate() {
        for b in &roots[i + 1..] {
            if a.starts_with(b) || b.starts_with(a) {
                return Err(Error::ManifestInvalid(format!(
                    "roots {:?} and {:?} overlap within the manifest",
                    a.join("/"),
                    b.join("/")
                )));
            }
        }
    }

    let mut modules = Vec::new();
    let mut data = serde_json::Value::Object(Default::default());
    for f in &files {
        let name = f.path.rsplit('/').next().unwrap_or(&f.path);
        let dir: Vec<String> = match f.path.rfind('/') {
            Some(i) => f.path[..i].split('/').map(str::to_string).collect(),
            None => vec![],
        };
        if f.path.ends_with(".rego") {
            let source = String::from_utf8(f.bytes.clone())
                .map_err(|_| Error::RegoCompile(format!("{}: not UTF-8 text", f.path)))?;
            let source = super::template_strings::desugar(&f.path, &source)
                .map_err(Error::RegoCompile)?
                .unwrap_or(source);
            modules.push(Module {
                path: f.path.clone(),
                source,
            });
        } else if name == "data.json" {
            let v: serde_json::Value =
                serde_json::from_slice(&f.bytes).map_err(|e| Error::DataInvalid(format!("{}: {e}", f.path)))?;
            merge_at(&mut data, &dir, v, &f.path)?;
        } else if name == "data.yaml" || name == "data.yml" {
            let text =
                std::str::from_utf8(&f.bytes).map_err(|_| Error::DataInvalid(format!("{}: not UTF-8 text", f.path)))?;
            let v = regorus::Value::from_yaml_str(text).map_err(|e| Error::DataInvalid(format!("{}: {e}", f.path)))?;
            let v: serde_json::Value =
                serde_json::from_str(&v.to_json_str().map_err(|e| Error::DataInvalid(e.to_string()))?)
                    .map_err(|e| Error::DataInvalid(format!("{}: {e}", f.path)))?;
            merge_at(&mut data, &dir, v, &f.path)?;
        } else if f.path.ends_with(".wasm") {
            return Err(Error::BundleUnsupported(format!(
                "{} is a Wasm module; Warden evaluates Rego source, so build the bundle without --target wasm",
                f.path
            )));
        }
        // Other files (READMEs, tests data) are carried but not interpreted.
    }

    // Every package inside the roots.
    for m in &modules {
        let pkg =
            package_of(&m.source).ok_or_else(|| Error::RegoCompile(format!("{}: no package declaration", m.path)))?;
        let path = DataPath(pkg);
        if !roots.iter().any(|r| path.within(r)) {
            return Err(Error::OutsideRoots(format!(
                "package {} in {} is outside the bundle's roots {:?}; add its path to .manifest roots or move the package",
                path.0.join("."),
                m.path,
                roots.iter().map(|r| r.join("/")).collect::<Vec<_>>()
            )));
        }
    }
    // Every data document inside the roots.
    check_data_roots(&data, &mut Vec::new(), &roots)?;

    Ok(ParsedBundle {
        digest: digest(bytes),
        size_bytes: bytes.len(),
        manifest,
        roots,
        modules,
        data,
        signature,
    })
}

/// A revision names a version in URLs and evidence: keep it printable.
pub fn validate_revision(revision: &str) -> Result<(), Error> {
    if revision.is_empty() {
        return Err(Error::ManifestInvalid(
            ".manifest has no \"revision\"; every version needs one (e.g. a date or a commit id)".into(),
        ));
    }
    if revision.len() > 128
        || !revision
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '+'))
    {
        return Err(Error::ManifestInvalid(format!(
            "revision {revision:?} must be 1 to 128 characters of letters, digits and . _ - : +"
        )));
    }
    Ok(())
}

/// Reads the package path of a module (`package a.b.c` → `["a","b","c"]`).
/// The engine validates syntax later; this only needs the path.
fn package_of(source: &str) -> Option<Vec<String>> {
    for line in source.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let rest = line.strip_prefix("package")?;
        let rest = rest.split('#').next()?.trim();
        if rest.is_empty() {
            return None;
        }
        let mut parts = Vec::new();
        let mut current = String::new();
        let mut chars = rest.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '.' => parts.push(std::mem::take(&mut current)),
                '[' => {
                    if !current.is_empty() {
                        parts.push(std::mem::take(&mut current));
                    }
                    let mut quoted = String::new();
                    chars.next(); // opening quote
                    for c in chars.by_ref() {
                        if c == '"' {
                            break;
                        }
                        quoted.push(c);
                    }
                    chars.next(); // closing bracket
                    parts.push(quoted);
                    if chars.peek() == Some(&'.') {
                        chars.next();
                    }
                }
                c if c.is_whitespace() => break,
                c => current.push(c),
            }
        }
        if !current.is_empty() {
            parts.push(current);
        }
        return Some(parts);
    }
    None
}

fn merge_at(root: &mut serde_json::Value, dir: &[String], value: serde_json::Value, file: &str) -> Result<(), Error> {
    let mut node = root;
    for part in dir {
        let obj = node
            .as_object_mut()
            .ok_or_else(|| Error::DataInvalid(format!("{file}: data at {part:?} collides with a non-object value")))?;
        node = obj
            .entry(part.clone())
            .or_insert_with(|| serde_json::Value::Object(Default::default()));
    }
    match (node.as_object_mut(), value) {
        (Some(existing), serde_json::Value::Object(new)) => {
            for (k, v) in new {
                if existing.contains_key(&k) {
                    return Err(Error::DataInvalid(format!(
                        "{file}: key {k:?} is defined by more than one data file"
                    )));
                }
                existing.insert(k, v);
            }
            Ok(())
        }
        _ => Err(Error::DataInvalid(format!(
            "{file}: a data file must hold a JSON/YAML object"
        ))),
    }
}

fn check_data_roots(node: &serde_json::Value, path: &mut Vec<String>, roots: &[Vec<String>]) -> Result<(), Error> {
    if roots.iter().any(|r| path.starts_with(r)) {
        return Ok(());
    }
    match node.as_object() {
        // Above every root: descend.
        Some(obj) if roots.iter().any(|r| r.starts_with(path)) => {
            for (k, v) in obj {
                path.push(k.clone());
                check_data_roots(v, path, roots)?;
                path.pop();
            }
            Ok(())
        }
        _ => Err(Error::OutsideRoots(format!(
            "data at {:?} is outside the bundle's roots; add it to .manifest roots or move it",
            path.join("/")
        ))),
    }
}

/// Whether two sets of roots claim any common path.
pub fn roots_overlap(a: &[String], b: &[String]) -> Option<(String, String)> {
    let split = |s: &String| -> Vec<String> {
        let t = s.trim_matches('/');
        if t.is_empty() {
            vec![]
        } else {
            t.split('/').map(str::to_string).collect()
        }
    };
    for x in a {
        for y in b {
            let (px, py) = (split(x), split(y));
            if px.starts_with(&py) || py.starts_with(&px) {
                return Some((x.clone(), y.clone()));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_paths_are_read_with_brackets_and_comments() {
        assert_eq!(
            package_of("# c\npackage a.b.c\n"),
            Some(vec!["a".into(), "b".into(), "c".into()])
        );
        assert_eq!(
            package_of("package graph[\"1.0.0\"].x # note"),
            Some(vec!["graph".into(), "1.0.0".into(), "x".into()])
        );
        assert_eq!(package_of("allow := true"), None);
    }

    #[test]
    fn roots_overlap_segment_wise_not_by_string_prefix() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(roots_overlap(&s(&["a/b"]), &s(&["a"])).is_some());
        assert!(roots_overlap(&s(&["a/bc"]), &s(&["a/b"])).is_none());
        assert!(roots_overlap(&s(&[""]), &s(&["x"])).is_some());
    }

    #[test]
    fn data_outside_roots_is_refused_and_inside_accepted() {
        let roots = vec![vec!["acme".to_string(), "limits".to_string()]];
        let ok = serde_json::json!({"acme": {"limits": {"max": 3}}});
        assert!(check_data_roots(&ok, &mut vec![], &roots).is_ok());
        let bad = serde_json::json!({"acme": {"other": 1}});
        let err = check_data_roots(&bad, &mut vec![], &roots).unwrap_err();
        assert!(err.to_string().contains("acme/other"), "{err}");
    }

    #[test]
    fn revisions_must_be_printable() {
        assert!(validate_revision("2026-11-22.1").is_ok());
        assert!(validate_revision("").is_err());
        assert!(validate_revision("a b").is_err());
        assert!(validate_revision("../x").is_err());
    }
}
