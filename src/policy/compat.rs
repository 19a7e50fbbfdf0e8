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

/// Everything worth telling the uploader about the bundle's modules.
pub fn notices(bundle: &ParsedBundle) -> Vec<Notice> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_named_like_tests_hold_tests() {
        assert!(is_test_file("policies/routing_test.rego"));
        assert!(is_test_file("routing_test.rego"));
        assert!(!is_test_file("routing.rego"));
        assert!(!is_test_file("test_routing.rego"));
        assert!(!is_test_file("routing_test.rego/x.rego"));
    }
}
