//! Every bundle shipped under `policies/` passes its own Rego tests, run the
//! way `warden bundle test DIR` runs them: the directory is built into a
//! bundle (its `.manifest` revision, or `test` without one), parsed and
//! validated (roots included), compiled, and its `test_` rules evaluated.

use std::time::Duration;

use warden::policy::archive::Limits;
use warden::policy::bundle::{self, MANIFEST_FILE, SignaturePolicy};
use warden::policy::compiled::CompiledPolicy;

use crate::common::repo_path;

/// The bundle directories: every directory of `policies/` holding `.rego` files.
fn shipped_bundles() -> Vec<std::path::PathBuf> {
    let mut dirs: Vec<_> = std::fs::read_dir(repo_path("policies"))
        .expect("read policies/")
        .map(|e| e.expect("policies/ entry").path())
        .filter(|p| p.is_dir())
        .filter(|p| {
            std::fs::read_dir(p)
                .expect("read a bundle directory")
                .any(|e| e.expect("bundle entry").path().extension().is_some_and(|x| x == "rego"))
        })
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn shipped_policies_pass_their_rego_tests() {
    let dirs = shipped_bundles();
    let names: Vec<String> = dirs
        .iter()
        .map(|d| d.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in ["commissioning", "kernel", "mcp-gateway", "rbac"] {
        assert!(
            names.iter().any(|n| n == expected),
            "policies/{expected} is not among the bundles found: {names:?}"
        );
    }

    // The CLI's default budget for a whole test run.
    let budget = Duration::from_secs(10);
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let revision = if dir.join(MANIFEST_FILE).exists() {
            None
        } else {
            Some("test")
        };
        let bytes = warden::cli::bundle::build(dir, revision, &[])
            .unwrap_or_else(|e| panic!("policies/{name}: cannot build the bundle: {e:#}"));
        let parsed = bundle::parse(&bytes, &Limits::default(), SignaturePolicy::UNCHECKED)
            .unwrap_or_else(|e| panic!("policies/{name}: the bundle is refused: {e}"));
        let policy = CompiledPolicy::compile(&parsed, budget)
            .unwrap_or_else(|e| panic!("policies/{name}: the Rego does not compile: {e}"));
        let results = policy.run_tests(budget);
        assert!(!results.is_empty(), "policies/{name} has no Rego tests (test_ rules)");
        let failures: Vec<String> = results
            .iter()
            .filter(|r| !r.passed)
            .map(|r| {
                format!(
                    "{}.{}: {}",
                    r.package.replace('/', "."),
                    r.name,
                    r.error.as_deref().unwrap_or("failed")
                )
            })
            .collect();
        assert!(
            failures.is_empty(),
            "policies/{name}: {} of {} Rego tests failed:\n{}",
            failures.len(),
            results.len(),
            failures.join("\n")
        );
    }
}
