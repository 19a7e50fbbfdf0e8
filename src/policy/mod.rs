//! The policy decision point: OPA bundles in, decisions out.
//!
//! - [`archive`]: the gzipped tar, read defensively and written reproducibly.
//! - [`signature`]: OPA's JWT bundle signatures (`.signatures.json`).
//! - [`bundle`]: manifest, roots, data; a [`bundle::ParsedBundle`].
//! - [`engine`]: compiling with regorus, evaluating, capturing
//!   non-deterministic builtins, running Rego tests.
//! - [`gate`]: where evaluations run (the blocking pool, a share per tenant).
//! - [`service`]: versions, activation, the compiled-policy cache, decisions.
//!
//! Invariant: no HTTP here; errors carry stable codes and the HTTP edge maps
//! them to statuses.

pub mod archive;
pub(crate) mod builtins;
pub mod bundle;
mod call_syntax;
pub mod compat;
pub mod compiled;
pub mod decision;
mod declared_types;
pub mod gate;
mod literal_types;
mod metadata;
mod recursion;
pub mod rego_scan;
pub mod replay;
pub mod rewrite;
pub mod service;
mod shadowing;
pub mod signature;
mod template_strings;
mod undefined_refs;

pub use decision::{Decision, DecisionRequest};
pub use service::PolicyService;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Archive(archive::ArchiveError),
    #[error(transparent)]
    Signature(signature::SignatureError),
    #[error(
        "this tenant requires signed bundles and the bundle has no .signatures.json; sign it with `warden bundle sign` or `opa sign`"
    )]
    SignatureRequired,
    #[error("revision {0} is not signed and this tenant requires signed bundles; upload a signed revision")]
    UnsignedVersion(String),
    #[error("{0}")]
    ManifestInvalid(String),
    #[error("{0}")]
    RegoCompile(String),
    /// A call to an OPA builtin Warden refuses or lacks, with its place.
    #[error("{0}")]
    UnsupportedBuiltin(String),
    /// Places Warden may evaluate otherwise than OPA, in a tenant that
    /// refuses them.
    #[error(
        "this tenant refuses bundles that Warden may evaluate otherwise than OPA (settings: rego_differences = refuse): {0}"
    )]
    RegoDifference(String),
    #[error("{0}")]
    DataInvalid(String),
    #[error("{0}")]
    BundleUnsupported(String),
    #[error("{0}")]
    OutsideRoots(String),
    #[error("root {root:?} overlaps root {other_root:?} of bundle {other:?}; each path belongs to one bundle")]
    RootOverlap {
        root: String,
        other: String,
        other_root: String,
    },
    #[error(
        "bundle name {0:?} must be 1 to 64 characters of lower-case letters, digits, '.', '_' and '-', starting with a letter or digit"
    )]
    InvalidBundleName(String),
    #[error(
        "revision {revision} of bundle {name} already exists with different content (digest {digest}); versions are immutable, so upload under a new revision"
    )]
    RevisionExists {
        name: String,
        revision: String,
        digest: String,
    },
    #[error("no bundle named {0:?}")]
    UnknownBundle(String),
    #[error("bundle {name:?} has no revision {revision:?}")]
    UnknownRevision { name: String, revision: String },
    #[error("revision {0} failed its Rego tests; fix the policy, or activate with \"force\": true to override")]
    TestsFailed(String),
    #[error("bundle {0:?} has no earlier active revision to roll back to")]
    NothingToRollBack(String),
    #[error("{0}")]
    InvalidPath(String),
    #[error("no active bundle covers path {0:?}; activate a bundle whose roots include it, or pin one with \"bundle\"")]
    NoBundleForPath(String),
    #[error("path {0:?} names no package, rule or data document in the bundle")]
    UnknownRulePath(String),
    #[error("policy evaluation exceeded its time limit ({0}); the policy must finish within policy.eval_timeout_ms")]
    PolicyTimeout(String),
    #[error("policy evaluation exceeded the memory limit ({0} bytes)")]
    PolicyMemory(u64),
    #[error("policy evaluation failed: {0}")]
    PolicyEval(String),
    #[error(
        "every policy evaluation slot this tenant may use stayed busy for {0} ms; retry shortly (policy.eval_per_tenant, policy.eval_queue_ms)"
    )]
    PolicyBusy(u64),
    #[error("the stored bundle {0} does not match its digest; the store was altered")]
    Corrupt(String),
    #[error("internal error: {0}")]
    Internal(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The entry recording an upload or activation could not be appended
    /// (nothing of it was stored).
    #[error(transparent)]
    Ledger(#[from] crate::ledger::AppendError),
}

impl Error {
    /// The stable, machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Archive(e) => e.code(),
            Error::Signature(e) => e.code(),
            Error::SignatureRequired | Error::UnsignedVersion(_) => "signature_required",
            Error::ManifestInvalid(_) => "manifest_invalid",
            Error::RegoCompile(_) => "rego_compile_error",
            Error::UnsupportedBuiltin(_) => "unsupported_builtin",
            Error::RegoDifference(_) => "rego_difference",
            Error::DataInvalid(_) => "bundle_data_invalid",
            Error::BundleUnsupported(_) => "bundle_unsupported",
            Error::OutsideRoots(_) => "bundle_outside_roots",
            Error::RootOverlap { .. } => "bundle_root_overlap",
            Error::InvalidBundleName(_) => "invalid_bundle_name",
            Error::RevisionExists { .. } => "revision_exists",
            Error::UnknownBundle(_) => "unknown_bundle",
            Error::UnknownRevision { .. } => "unknown_revision",
            Error::TestsFailed(_) => "bundle_tests_failed",
            Error::NothingToRollBack(_) => "nothing_to_roll_back",
            Error::InvalidPath(_) => "invalid_path",
            Error::NoBundleForPath(_) => "no_bundle_for_path",
            Error::UnknownRulePath(_) => "unknown_rule_path",
            Error::PolicyTimeout(_) => "policy_timeout",
            Error::PolicyMemory(_) => "policy_memory_exceeded",
            Error::PolicyEval(_) => "policy_eval_error",
            Error::PolicyBusy(_) => "policy_busy",
            Error::Corrupt(_) => "bundle_corrupt_in_store",
            Error::Internal(_) => "internal",
            Error::Store(StoreError::Conflict(_)) => "conflict",
            Error::Store(_) => "store_unavailable",
            Error::Ledger(e) => e.code(),
        }
    }
}
