//! Where a bundle may be read otherwise than OPA reads it: upload notices.
//!
//! Compliance teams write and test their Rego with OPA. Whatever Warden would
//! treat differently from OPA, or from the conventions of OPA users, is found
//! here when a bundle is uploaded and reported with its file and line, so that
//! nobody learns of it from a decision. `docs/rego-compatibility.md` lists
//! every notice code.

use serde::{Deserialize, Serialize};

use super::bundle::ParsedBundle;
use super::rego_scan;

/// Every builtin of OPA 1.x (`tests/opa/builtins.json` has them with their
/// categories; a test keeps the two lists equal).
pub const OPA_BUILTINS: &[&str] = &[
    "abs",
    "all",
    "and",
    "any",
    "array.concat",
    "array.flatten",
    "array.reverse",
    "array.slice",
    "assign",
    "base64.decode",
    "base64.encode",
    "base64.is_valid",
    "base64url.decode",
    "base64url.encode",
    "base64url.encode_no_pad",
    "bits.and",
    "bits.lsh",
    "bits.negate",
    "bits.or",
    "bits.rsh",
    "bits.xor",
    "cast_array",
    "cast_boolean",
    "cast_null",
    "cast_object",
    "cast_set",
    "cast_string",
    "ceil",
    "concat",
    "contains",
    "count",
    "crypto.hmac.equal",
    "crypto.hmac.md5",
    "crypto.hmac.sha1",
    "crypto.hmac.sha256",
    "crypto.hmac.sha512",
    "crypto.md5",
    "crypto.parse_private_keys",
    "crypto.sha1",
    "crypto.sha256",
    "crypto.x509.parse_and_verify_certificates",
    "crypto.x509.parse_and_verify_certificates_with_options",
    "crypto.x509.parse_certificate_request",
    "crypto.x509.parse_certificates",
    "crypto.x509.parse_keypair",
    "crypto.x509.parse_rsa_private_key",
    "div",
    "endswith",
    "eq",
    "equal",
    "floor",
    "format_int",
    "glob.match",
    "glob.quote_meta",
    "graph.reachable",
    "graph.reachable_paths",
    "graphql.is_valid",
    "graphql.parse",
    "graphql.parse_and_verify",
    "graphql.parse_query",
    "graphql.parse_schema",
    "graphql.schema_is_valid",
    "gt",
    "gte",
    "hex.decode",
    "hex.encode",
    "http.send",
    "indexof",
    "indexof_n",
    "internal.member_2",
    "internal.member_3",
    "internal.print",
    "internal.template_string",
    "internal.test_case",
    "intersection",
    "io.jwt.decode",
    "io.jwt.decode_verify",
    "io.jwt.encode_sign",
    "io.jwt.encode_sign_raw",
    "io.jwt.verify_eddsa",
    "io.jwt.verify_es256",
    "io.jwt.verify_es384",
    "io.jwt.verify_es512",
    "io.jwt.verify_hs256",
    "io.jwt.verify_hs384",
    "io.jwt.verify_hs512",
    "io.jwt.verify_ps256",
    "io.jwt.verify_ps384",
    "io.jwt.verify_ps512",
    "io.jwt.verify_rs256",
    "io.jwt.verify_rs384",
    "io.jwt.verify_rs512",
    "is_array",
    "is_boolean",
    "is_null",
    "is_number",
    "is_object",
    "is_set",
    "is_string",
    "json.filter",
    "json.is_valid",
    "json.marshal",
    "json.marshal_with_options",
    "json.match_schema",
    "json.patch",
    "json.remove",
    "json.unmarshal",
    "json.verify_schema",
    "lower",
    "lt",
    "lte",
    "max",
    "min",
    "minus",
    "mul",
    "neq",
    "net.cidr_contains",
    "net.cidr_contains_matches",
    "net.cidr_expand",
    "net.cidr_intersects",
    "net.cidr_is_valid",
    "net.cidr_merge",
    "net.cidr_overlap",
    "net.lookup_ip_addr",
    "numbers.range",
    "numbers.range_step",
    "object.filter",
    "object.get",
    "object.keys",
    "object.remove",
    "object.subset",
    "object.union",
    "object.union_n",
    "opa.runtime",
    "or",
    "plus",
    "print",
    "product",
    "providers.aws.sign_req",
    "rand.intn",
    "re_match",
    "regex.find_all_string_submatch_n",
    "regex.find_n",
    "regex.globs_match",
    "regex.is_valid",
    "regex.match",
    "regex.replace",
    "regex.split",
    "regex.template_match",
    "rego.metadata.chain",
    "rego.metadata.rule",
    "rego.parse_module",
    "rem",
    "replace",
    "round",
    "semver.compare",
    "semver.is_valid",
    "set_diff",
    "sort",
    "split",
    "sprintf",
    "startswith",
    "strings.any_prefix_match",
    "strings.any_suffix_match",
    "strings.count",
    "strings.render_template",
    "strings.replace_n",
    "strings.reverse",
    "strings.split_n",
    "substring",
    "sum",
    "time.add_date",
    "time.clock",
    "time.date",
    "time.diff",
    "time.format",
    "time.now_ns",
    "time.parse_duration_ns",
    "time.parse_ns",
    "time.parse_rfc3339_ns",
    "time.weekday",
    "to_number",
    "trace",
    "trim",
    "trim_left",
    "trim_prefix",
    "trim_right",
    "trim_space",
    "trim_suffix",
    "type_name",
    "union",
    "units.parse",
    "units.parse_bytes",
    "upper",
    "uri.is_valid",
    "uri.parse",
    "urlquery.decode",
    "urlquery.decode_object",
    "urlquery.encode",
    "urlquery.encode_object",
    "uuid.parse",
    "uuid.rfc4122",
    "walk",
    "yaml.is_valid",
    "yaml.marshal",
    "yaml.unmarshal",
];

/// Builtins OPA has and Warden refuses, with the reason.
const REFUSED: &[(&str, &str)] = &[
    (
        "http.send",
        "it reaches the network: a decision must replay from its record alone, and a policy must not be a way past the tenant's egress policy",
    ),
    (
        "net.lookup_ip_addr",
        "it asks DNS: a decision must replay from its record alone",
    ),
    (
        "opa.runtime",
        "it describes the running OPA process, which Warden is not",
    ),
];

/// Builtins OPA 1.x has deprecated: it refuses a Rego v1 module calling one
/// (`rego_type_error: deprecated built-in function`), and so does Warden.
const DEPRECATED: &[&str] = &[
    "all",
    "any",
    "cast_array",
    "cast_boolean",
    "cast_null",
    "cast_object",
    "cast_set",
    "cast_string",
    "net.cidr_overlap",
    "re_match",
    "set_diff",
];

/// A call to a builtin Warden does not evaluate as OPA does: the upload
/// is refused with `unsupported_builtin`, naming it, its file and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    pub builtin: String,
    pub file: String,
    pub line: usize,
    pub reason: String,
}

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: {} is not available: {}",
            self.file, self.line, self.builtin, self.reason
        )
    }
}

/// Why Warden does not evaluate this OPA builtin, if it does not.
fn unsupported(name: &str, available: &dyn Fn(&str) -> bool) -> Option<String> {
    if let Some((_, why)) = REFUSED.iter().find(|(n, _)| *n == name) {
        return Some((*why).to_string());
    }
    if name.starts_with("internal.") || available(name) {
        return None;
    }
    if DEPRECATED.contains(&name) {
        return Some(
            "it is deprecated, and OPA 1.x refuses calls to it too (docs/rego-compatibility.md lists every builtin)"
                .to_string(),
        );
    }
    Some("Warden does not implement it yet (docs/rego-compatibility.md lists every builtin)".to_string())
}

/// The first call in the bundle to an OPA builtin that Warden refuses or
/// lacks, found in the source (outside strings and comments), so a call on
/// a path no upload-time evaluation reaches is refused too.
pub fn first_unsupported_call(bundle: &ParsedBundle, available: &dyn Fn(&str) -> bool) -> Option<Unsupported> {
    for m in &bundle.modules {
        for (name, line) in calls(&m.source) {
            if !OPA_BUILTINS.contains(&name.as_str()) {
                continue;
            }
            if let Some(reason) = unsupported(&name, available) {
                return Some(Unsupported {
                    builtin: name,
                    file: m.path.clone(),
                    line,
                    reason,
                });
            }
        }
    }
    None
}

/// Dotted names followed by `(`, with their lines, outside strings and
/// comments (`a.b(` but not `x.a.b(` or `"a.b("`).
fn calls(source: &str) -> Vec<(String, usize)> {
    let bytes = source.as_bytes();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'\n' => {
                line += 1;
                i += 1;
            }
            b'#' => i = rego_scan::comment_end(bytes, i),
            b'"' | b'`' => {
                let end = rego_scan::string_end(bytes, i).unwrap_or(bytes.len());
                line += bytes[i..end].iter().filter(|b| **b == b'\n').count();
                i = end;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'.') {
                    i += 1;
                }
                let preceded = start > 0 && bytes[start - 1] == b'.';
                let mut j = i;
                while j < bytes.len() && (bytes[j] == b' ' || bytes[j] == b'\t') {
                    j += 1;
                }
                if !preceded && j < bytes.len() && bytes[j] == b'(' {
                    out.push((source[start..i].to_string(), line));
                }
            }
            _ => i += 1,
        }
    }
    out
}

/// One finding about a module of an uploaded bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Notice {
    /// Stable code, e.g. `test_rule_outside_test_file`.
    pub code: String,
    /// The module's path inside the bundle.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    pub message: String,
}

/// True when the module is a test file by OPA users' convention: its file
/// name ends in `_test.rego`. Only such files' `test_` rules are tests.
pub fn is_test_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.ends_with("_test.rego")
}

/// Everything worth telling the uploader about the bundle's modules: test
/// rules outside test files, and every place Warden may evaluate otherwise
/// than OPA ([`differences`]).
pub fn notices(bundle: &ParsedBundle) -> Vec<Notice> {
    let mut out = test_rule_notices(bundle);
    out.extend(differences(bundle));
    out
}

fn test_rule_notices(bundle: &ParsedBundle) -> Vec<Notice> {
    let mut out = Vec::new();
    for m in &bundle.modules {
        if is_test_file(&m.path) {
            continue;
        }
        for (name, line) in rego_scan::rules(&m.source) {
            if name.starts_with("test_") {
                out.push(Notice {
                    code: "test_rule_outside_test_file".into(),
                    file: m.path.clone(),
                    line,
                    message: format!(
                        "rule {name} starts with test_ but {} is not a *_test.rego file: it is served as an ordinary rule and not run as a test; move it to a file named *_test.rego to make it a test",
                        m.path
                    ),
                });
            }
        }
    }
    out
}

/// How a tenant takes a bundle that Warden may evaluate otherwise than
/// OPA: `warn` (the default) stores it and lists each place as an upload
/// notice; `refuse` refuses the upload with 422 `rego_difference`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnDifference {
    #[default]
    Warn,
    Refuse,
}

impl OnDifference {
    pub fn as_str(self) -> &'static str {
        match self {
            OnDifference::Warn => "warn",
            OnDifference::Refuse => "refuse",
        }
    }

    /// The stored text; anything unknown reads as the default.
    pub fn parse(text: &str) -> Self {
        if text == "refuse" {
            OnDifference::Refuse
        } else {
            OnDifference::Warn
        }
    }
}

/// Every place in the bundle that Warden may evaluate otherwise than OPA
/// (`docs/rego-compatibility.md`, "Known differences"), as notices: number
/// literals past what a double holds (`inexact_number`), quotients that
/// may have no finite decimal (`inexact_quotient`), and `schemas`
/// annotations in a bundle that reads its annotations, whose types OPA
/// checks `input` against when compiling and Warden does not
/// (`schema_annotation`). A module that does not parse has none (its
/// compilation reports why).
pub fn differences(bundle: &ParsedBundle) -> Vec<Notice> {
    let rego_v1 = bundle.manifest.rego_version != Some(0);
    let mut out = Vec::new();
    let surveys: Vec<_> = bundle
        .modules
        .iter()
        .map(|m| super::rewrite::survey(&m.path, &m.source, rego_v1))
        .collect();
    let reads_annotations = surveys.iter().flatten().any(|s| {
        s.calls
            .iter()
            .any(|(name, _, _)| matches!(name.as_str(), "rego.metadata.rule" | "rego.metadata.chain"))
    });
    for (m, survey) in bundle.modules.iter().zip(surveys) {
        if reads_annotations {
            for line in super::metadata::schema_annotation_lines(&m.source) {
                out.push(Notice {
                    code: "schema_annotation".into(),
                    file: m.path.clone(),
                    line: line as usize,
                    message: "a schemas annotation: OPA checks the types of input and data against it when it \
                              compiles a bundle that reads its annotations, and refuses a module that uses them \
                              otherwise; Warden does not check them"
                        .into(),
                });
            }
        }
        let Ok(survey) = survey else {
            continue;
        };
        let notice = |code: &str, line: u32, message: String| Notice {
            code: code.into(),
            file: m.path.clone(),
            line: line as usize,
            message,
        };
        for line in &survey.inexact_quotients {
            out.push(notice(
                "inexact_quotient",
                *line,
                "a quotient that may have no finite decimal (a divisor other than a literal of factors 2 and 5, such as 100): Warden holds it as the nearest double, OPA with about 20 significant digits (1 / 3 is 0.3333333333333333 and 0.33333333333333333334), so results built on it may differ past the 16th digit".into(),
            ));
        }
        for (text, line) in &survey.inexact_numbers {
            out.push(notice(
                "inexact_number",
                *line,
                format!(
                    "the number {text} has more digits or range than Warden computes with (a 64-bit integer, or a double: about 15 significant digits); OPA keeps every digit, so results built on it may differ"
                ),
            ));
        }
    }
    out.sort_by(|a, b| (&a.file, a.line, &a.code).cmp(&(&b.file, b.line, &b.code)));
    out
}

/// The first call to a builtin with another number of arguments than it
/// takes (or one more, OPA's form with the result as last argument), as
/// OPA refuses the module: `p.rego:3: concat takes 2 arguments, not 1`.
/// Names the bundle defines itself are its own functions, not builtins.
pub fn first_arity_mismatch(bundle: &ParsedBundle, arity: &dyn Fn(&str) -> Option<usize>) -> Option<String> {
    let rego_v1 = bundle.manifest.rego_version != Some(0);
    let own: std::collections::HashSet<String> = bundle
        .modules
        .iter()
        .flat_map(|m| rego_scan::rule_names(&m.source))
        .collect();
    for m in &bundle.modules {
        let Ok(survey) = super::rewrite::survey(&m.path, &m.source, rego_v1) else {
            continue;
        };
        for (name, given, line) in &survey.calls {
            let last = name.rsplit('.').next().unwrap_or(name);
            if own.contains(name) || own.contains(last) {
                continue;
            }
            let Some(takes) = arity(name) else { continue };
            if *given != takes && *given != takes + 1 {
                let s = if takes == 1 { "" } else { "s" };
                return Some(format!(
                    "{}:{line}: {name} takes {takes} argument{s}, not {given} (OPA refuses this module too)",
                    m.path
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_found_outside_strings_and_comments() {
        let src = "package p\n# http.send(x)\nx := \"http.send(\"\ny := http.send({})\nz := data.http.send(1)\n";
        assert_eq!(
            calls(src),
            vec![("http.send".to_string(), 4), ("data.http.send".to_string(), 5)]
        );
    }

    #[test]
    fn only_files_named_like_tests_hold_tests() {
        assert!(is_test_file("policies/routing_test.rego"));
        assert!(is_test_file("routing_test.rego"));
        assert!(!is_test_file("routing.rego"));
        assert!(!is_test_file("test_routing.rego"));
        assert!(!is_test_file("routing_test.rego/x.rego"));
    }

    fn bundle(source: &str) -> ParsedBundle {
        ParsedBundle::of_modules(&[("p.rego", source)])
    }

    #[test]
    fn differences_are_found_with_their_lines() {
        let b = bundle(
            "package p\n\nbig := 123456789012345678901234567890\nadmin := \"admin\" in input.roles\nallow if \"x\" in input.roles\n# METADATA\n# schemas:\n#   - input: {\"type\": \"object\"}\ncfg := rego.metadata.rule()\nsum := 0.1 + 0.2\n",
        );
        let codes: Vec<(String, usize)> = differences(&b).into_iter().map(|n| (n.code, n.line)).collect();
        assert_eq!(
            codes,
            vec![("inexact_number".to_string(), 3), ("schema_annotation".to_string(), 6)]
        );
        assert!(differences(&bundle("package p\n\nallow if input.user == \"x\"\n")).is_empty());
        // Annotations nothing reads are not read by OPA either.
        assert!(
            differences(&bundle(
                "package p\n\n# METADATA\n# schemas:\n#   - input: {\"type\": \"object\"}\nallow if input.ok\n"
            ))
            .is_empty()
        );
    }

    #[test]
    fn a_builtin_called_with_the_wrong_number_of_arguments_is_found() {
        let arity = |name: &str| match name {
            "concat" => Some(2),
            "count" => Some(1),
            _ => None,
        };
        assert_eq!(
            first_arity_mismatch(&bundle("package p\n\nx := count([1])\ny := concat(\",\")\n"), &arity).as_deref(),
            Some("p.rego:4: concat takes 2 arguments, not 1 (OPA refuses this module too)")
        );
        // The output form `count(x, n)` is OPA's too; a bundle's own `concat` is its own.
        assert_eq!(
            first_arity_mismatch(&bundle("package p\n\nx if count([1], n)\n"), &arity),
            None
        );
        assert_eq!(
            first_arity_mismatch(&bundle("package p\n\nconcat(a) := a\ny := concat(1)\n"), &arity),
            None
        );
    }
}
