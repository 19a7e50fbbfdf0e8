//! The one error type of the HTTP edge: an RFC 9457 problem document with a
//! stable `code`. Only this module knows status codes.
//!
//! Internal and database errors are logged in full and answered with a
//! generic message: their text never reaches the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::policy;
use crate::store::StoreError;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProblemBody {
    /// `urn:warden:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// Stable machine-readable code; see docs/errors in the README.
    pub code: String,
    /// What went wrong and what to do about it.
    pub detail: String,
    /// Every fault, when a request has several (e.g. audit events: each
    /// event's position, field and reason).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub errors: Option<serde_json::Value>,
    /// Where in the request body the fault is: a JSON Pointer (RFC 6901),
    /// `""` for the whole body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
}

#[derive(Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub retry_after: Option<u32>,
    pub errors: Option<serde_json::Value>,
    pub pointer: Option<String>,
}

impl Problem {
    /// A document refused for every fault found in it (422): the problem's
    /// code is the first fault's, `errors` lists them all as `{code, at,
    /// message}`. `what` names the document ("the workflow definition").
    pub fn faults<'a>(what: &str, faults: impl IntoIterator<Item = (&'static str, &'a str, &'a str)>) -> Self {
        let faults: Vec<(&'static str, &str, &str)> = faults.into_iter().collect();
        let Some(&(code, at, message)) = faults.first() else {
            return Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                format!("{what} is invalid"),
            );
        };
        let at = if at.is_empty() {
            String::new()
        } else {
            format!("{at}: ")
        };
        let detail = match faults.len() {
            1 => format!("{what} is invalid: {at}{message}"),
            n => format!("{what} has {n} faults (all in `errors`); the first: {at}{message}"),
        };
        let mut p = Problem::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail);
        p.errors = Some(
            faults
                .iter()
                .map(|(code, at, message)| serde_json::json!({"code": code, "at": at, "message": message}))
                .collect(),
        );
        p
    }

    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            retry_after: None,
            errors: None,
            pointer: None,
        }
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn not_found(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, detail)
    }

    pub fn internal(context: &str, err: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %err, context, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an internal error occurred; it has been logged",
        )
    }

    pub fn body(&self) -> ProblemBody {
        ProblemBody {
            kind: format!("urn:warden:problem:{}", self.code),
            title: self.status.canonical_reason().unwrap_or("Error").to_string(),
            status: self.status.as_u16(),
            code: self.code.to_string(),
            detail: self.detail.clone(),
            errors: self.errors.clone(),
            pointer: self.pointer.clone(),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        let mut res = (self.status, body).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"warden\""),
            );
        }
        if let Some(secs) = self.retry_after {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

/// A request body refused by [`crate::strict_json::check`]: 400 with the
/// fault's code and its JSON Pointer.
impl From<crate::strict_json::Fault> for Problem {
    fn from(f: crate::strict_json::Fault) -> Self {
        let mut p = Problem::bad_request(f.kind.code(), format!("the request body is refused: {f}"));
        p.pointer = Some(f.pointer);
        p
    }
}

impl From<crate::ledger::AppendError> for Problem {
    fn from(e: crate::ledger::AppendError) -> Self {
        use crate::ledger::AppendError as A;
        let status = match e {
            A::Changed(_) | A::Conflict(_) => StatusCode::CONFLICT,
            A::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            A::TooDeep { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            A::Overloaded(_) | A::Unavailable(_) | A::Closed => StatusCode::SERVICE_UNAVAILABLE,
        };
        let transient = e.is_transient();
        let mut p = Problem::new(status, e.code(), e.to_string());
        if transient {
            p.retry_after = Some(1);
        }
        p
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => {
                Problem::new(StatusCode::CONFLICT, "conflict", format!("{what} already exists"))
            }
            StoreError::Changed(what) => {
                let mut p = Problem::new(
                    StatusCode::CONFLICT,
                    "concurrent_change",
                    format!("the {what} changed while this request was handled; read it again and retry"),
                );
                p.retry_after = Some(1);
                p
            }
            StoreError::Corrupt(_) => Problem::internal("store", &e),
            StoreError::Database(_) | StoreError::Sqlite(_) | StoreError::Migrate(_) => {
                tracing::error!(error = %e, "store unavailable");
                let mut p = Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "the store did not answer; retry shortly",
                );
                p.retry_after = Some(1);
                p
            }
        }
    }
}

impl From<crate::kernel::KernelError> for Problem {
    fn from(e: crate::kernel::KernelError) -> Self {
        use crate::kernel::KernelError as K;
        let status = match &e {
            K::Store(_) | K::Ledger(_) => {
                return match e {
                    K::Store(s) => s.into(),
                    K::Ledger(l) => l.into(),
                    _ => unreachable!("matched above"),
                };
            }
            K::UnknownExecution(_) | K::UnknownStep(_) => StatusCode::NOT_FOUND,
            K::Invalid(_) => StatusCode::BAD_REQUEST,
            K::Denied { .. }
            | K::NotAReviewer(_)
            | K::ByInitiator(_)
            | K::ByActor(_)
            | K::NotBound { .. }
            | K::JobNotYours(_)
            | K::RunnerOwned(_) => StatusCode::FORBIDDEN,
            K::TooManyStreams(_) => StatusCode::TOO_MANY_REQUESTS,
            K::IllegalTransition { .. }
            | K::NotAssigned(_)
            | K::StepNotYours { .. }
            | K::NoReview(_)
            | K::ArgumentsMismatch { .. }
            | K::ApprovalReused(_)
            | K::ApprovalExpired(_)
            | K::ApprovalClosed { .. } => StatusCode::CONFLICT,
        };
        let mut p = Problem::new(status, e.code(), e.to_string());
        if let K::Denied {
            decision_id,
            reasons,
            receipt,
            ..
        } = &e
        {
            p.errors = Some(
                reasons
                    .iter()
                    .map(|r| serde_json::json!({"decision_id": decision_id, "reason": r, "receipt": receipt}))
                    .collect(),
            );
        }
        if let K::TooManyStreams(_) = e {
            p.retry_after = Some(5);
        }
        p
    }
}

impl From<crate::workflow::conductor::ConductorError> for Problem {
    fn from(e: crate::workflow::conductor::ConductorError) -> Self {
        use crate::workflow::conductor::ConductorError as E;
        let status = match &e {
            E::Store(_) | E::Ledger(_) | E::Kernel(_) => {
                return match e {
                    E::Store(s) => s.into(),
                    E::Ledger(l) => l.into(),
                    E::Kernel(k) => k.into(),
                    _ => unreachable!("matched above"),
                };
            }
            E::UnknownWorkflow(_) | E::UnknownVersion { .. } | E::UnknownRun(_) => StatusCode::NOT_FOUND,
            E::Skill(_) => StatusCode::UNPROCESSABLE_ENTITY,
            E::InputTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            E::Invalid(_) => StatusCode::BAD_REQUEST,
            E::NotRunning { .. } => StatusCode::CONFLICT,
        };
        Problem::new(status, e.code(), e.to_string())
    }
}

impl From<crate::skill::registry::RegisterError> for Problem {
    fn from(e: crate::skill::registry::RegisterError) -> Self {
        use crate::skill::registry::RegisterError as E;
        let detail = e.to_string();
        match e {
            E::Invalid(faults) => Problem::faults(
                "the skill manifest",
                faults.iter().map(|f| (f.code, f.at.as_str(), f.message.as_str())),
            ),
            E::IdMismatch { .. } => Problem::bad_request("skill_id_mismatch", detail),
            E::VersionMismatch { .. } => Problem::bad_request("skill_version_mismatch", detail),
            E::Exists { .. } => Problem::new(StatusCode::CONFLICT, "skill_version_exists", detail),
            E::Append(e) => e.into(),
            E::Store(e) => e.into(),
        }
    }
}

impl From<crate::workflow::upload::UploadError> for Problem {
    fn from(e: crate::workflow::upload::UploadError) -> Self {
        use crate::workflow::upload::UploadError as E;
        let detail = e.to_string();
        match e {
            E::Invalid(faults) => Problem::faults(
                "the workflow definition",
                faults.iter().map(|f| (f.code, f.at.as_str(), f.message.as_str())),
            ),
            E::NameMismatch { .. } => Problem::bad_request("workflow_name_mismatch", detail),
            E::Append(e) => e.into(),
            E::Store(e) => e.into(),
        }
    }
}

impl From<crate::policy::replay::ReplayError> for Problem {
    fn from(e: crate::policy::replay::ReplayError) -> Self {
        use crate::policy::replay::ReplayError as E;
        let detail = e.to_string();
        match e {
            E::UnknownDecision(_) => Problem::not_found("unknown_decision", detail),
            E::DigestMismatch { .. } => Problem::new(StatusCode::CONFLICT, "bundle_digest_mismatch", detail),
            E::InvalidFilter { .. } => Problem::bad_request("invalid_filter", detail),
            E::MaxScanTooLarge { .. } => Problem::bad_request("max_scan_too_large", detail),
            E::Policy(e) => e.into(),
            E::Read(e) => e.into(),
        }
    }
}

impl From<crate::fanout::PutSinkError> for Problem {
    fn from(e: crate::fanout::PutSinkError) -> Self {
        use crate::fanout::PutSinkError as E;
        match e {
            E::TooMany(_) => Problem::new(StatusCode::CONFLICT, "too_many_sinks", e.to_string()),
            E::Append(a) => a.into(),
            E::Store(s) => s.into(),
        }
    }
}

impl From<crate::ledger::read::ReadError> for Problem {
    fn from(e: crate::ledger::read::ReadError) -> Self {
        use crate::ledger::read::ReadError;
        match e {
            ReadError::Store(s) => s.into(),
            ReadError::Missing { .. } | ReadError::Unreadable { .. } => {
                tracing::error!(error = %e, "ledger store inconsistent");
                Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "ledger_inconsistent", e.to_string())
            }
        }
    }
}

impl From<policy::Error> for Problem {
    fn from(e: policy::Error) -> Self {
        use policy::Error as E;
        let status = match e {
            E::Store(s) => return s.into(),
            E::Ledger(a) => return a.into(),
            E::Internal(_) | E::Corrupt(_) => return Problem::internal("policy", &e),
            E::PolicyBusy(_) => {
                let mut p = Problem::new(StatusCode::SERVICE_UNAVAILABLE, e.code(), e.to_string());
                p.retry_after = Some(1);
                return p;
            }
            E::Archive(ref a) if a.code() == "bundle_too_large" => StatusCode::PAYLOAD_TOO_LARGE,
            E::InvalidBundleName(_) | E::InvalidPath(_) => StatusCode::BAD_REQUEST,
            E::Archive(_)
            | E::Signature(_)
            | E::SignatureRequired
            | E::UnsignedVersion(_)
            | E::ManifestInvalid(_)
            | E::RegoCompile(_)
            | E::UnsupportedBuiltin(_)
            | E::RegoDifference(_)
            | E::DataInvalid(_)
            | E::BundleUnsupported(_)
            | E::OutsideRoots(_)
            | E::PolicyTimeout(_)
            | E::PolicyMemory(_)
            | E::PolicyEval(_) => StatusCode::UNPROCESSABLE_ENTITY,
            E::RootOverlap { .. } | E::RevisionExists { .. } | E::TestsFailed(_) | E::NothingToRollBack(_) => {
                StatusCode::CONFLICT
            }
            E::UnknownBundle(_) | E::UnknownRevision { .. } | E::NoBundleForPath(_) | E::UnknownRulePath(_) => {
                StatusCode::NOT_FOUND
            }
        };
        Problem::new(status, e.code(), e.to_string())
    }
}
