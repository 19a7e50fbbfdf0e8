//! Evaluating recorded decisions again: replay (one decision, against the
//! exact bundle version it was made with) and impact analysis (every
//! recorded decision in a window, against a candidate revision).
//!
//! Both read decisions back from the ledger ([`crate::ledger::read`]) and
//! evaluate them with the decision's own input, data path and time
//! ([`PolicyService::reevaluate`]); neither writes anything. HTTP only
//! extracts the request and maps [`ReplayError`] to a problem.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::decision::{BundleId, RecordedDecision};
use super::{Error, PolicyService};
use crate::ledger::read::{self, ReadError, Stored};
use crate::store::Store;

/// Ledger entry kind of a decision.
const DECISION: &str = "decision";

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("no decision {0:?} in this tenant's log")]
    UnknownDecision(String),
    #[error("the stored bundle {name}@{revision} has digest {stored}, but the decision was made with {recorded}")]
    DigestMismatch {
        name: String,
        revision: String,
        stored: String,
        recorded: String,
    },
    #[error("filter.{field}: {why}; use RFC 3339, e.g. 2026-11-01T00:00:00Z")]
    InvalidFilter { field: &'static str, why: String },
    #[error(
        "max_scan is {asked}; one call scans at most {cap} decisions (limits.max_impact_scan): ask for at most that, \
         and page on with `after` (each answer's next_after)"
    )]
    MaxScanTooLarge { asked: u64, cap: u64 },
    #[error(transparent)]
    Policy(#[from] Error),
    #[error(transparent)]
    Read(#[from] ReadError),
}

impl From<crate::store::StoreError> for ReplayError {
    fn from(e: crate::store::StoreError) -> Self {
        ReplayError::Read(e.into())
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Outcome {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Value)]
    pub result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow: Option<bool>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Difference {
    /// JSON Pointer into the result (`""` is the whole result).
    pub pointer: String,
    #[schema(value_type = Option<Object>)]
    pub recorded: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub replayed: Option<Value>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReplayView {
    pub decision_id: String,
    /// The decision's entry in the ledger.
    pub ledger_index: u64,
    /// The pinned bundle version it was evaluated against again.
    pub bundle: BundleId,
    /// True when the replayed result equals the recorded one exactly.
    #[serde(rename = "match")]
    pub matches: bool,
    pub recorded: Outcome,
    pub replayed: Outcome,
    pub differences: Vec<Difference>,
}

fn decision_of(stored: Stored) -> Result<RecordedDecision, ReadError> {
    stored.into_payload("decision record")
}

/// Evaluates decision `decision_id` of the tenant again, against the bundle
/// version it was made with, and says where the results differ.
pub async fn replay(
    policy: &PolicyService,
    store: &Store,
    tenant_id: &str,
    decision_id: &str,
) -> Result<ReplayView, ReplayError> {
    let stored = read::entry_about(store, tenant_id, DECISION, decision_id)
        .await?
        .ok_or_else(|| ReplayError::UnknownDecision(decision_id.to_string()))?;
    let ledger_index = stored.row.index;
    let rec = decision_of(stored)?;
    let again = policy
        .reevaluate(tenant_id, &rec.bundle.name, &rec.bundle.revision, &rec)
        .await?;
    if again.bundle.digest != rec.bundle.digest {
        return Err(ReplayError::DigestMismatch {
            name: rec.bundle.name,
            revision: rec.bundle.revision,
            stored: again.bundle.digest,
            recorded: rec.bundle.digest,
        });
    }
    let mut differences = Vec::new();
    diff("", rec.result.as_ref(), again.result.as_ref(), &mut differences);
    Ok(ReplayView {
        decision_id: rec.decision_id,
        ledger_index,
        bundle: again.bundle,
        matches: differences.is_empty(),
        recorded: Outcome {
            result: rec.result,
            allow: rec.allow,
        },
        replayed: Outcome {
            result: again.result,
            allow: again.allow,
        },
        differences,
    })
}

/// The places where two JSON values differ, as JSON Pointers.
fn diff(pointer: &str, a: Option<&Value>, b: Option<&Value>, out: &mut Vec<Difference>) {
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = format!("{pointer}/{}", k.replace('~', "~0").replace('/', "~1"));
                diff(&p, x.get(k), y.get(k), out);
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) if x.len() == y.len() => {
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                diff(&format!("{pointer}/{i}"), Some(u), Some(v), out);
            }
        }
        (x, y) if x == y => {}
        (x, y) => out.push(Difference {
            pointer: pointer.to_string(),
            recorded: x.cloned(),
            replayed: y.cloned(),
        }),
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImpactRequest {
    /// The bundle whose candidate revision is analysed.
    pub bundle: String,
    /// Any uploaded revision, active or not.
    pub revision: String,
    #[serde(default)]
    pub filter: ImpactFilter,
    /// Most changed decisions listed (default 1,000); counts cover all.
    #[serde(default)]
    pub limit: Option<usize>,
    /// Resume after this ledger index (a previous answer's `next_after`).
    #[serde(default)]
    pub after: Option<u64>,
    /// Scan at most this many recorded decisions in this call: at most,
    /// and by default, `limits.max_impact_scan` (10,000); `next_after` then
    /// says where to resume. Lets a client page through a long history
    /// and show progress.
    #[serde(default)]
    pub max_scan: Option<u64>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImpactFilter {
    /// Decisions recorded at or after this RFC 3339 time.
    pub from: Option<String>,
    /// Decisions recorded before this RFC 3339 time.
    pub to: Option<String>,
    /// Only decisions on this path (`/`- or `.`-separated).
    pub path: Option<String>,
    /// Only decisions whose context has these members with these values.
    #[schema(value_type = Option<Object>)]
    pub context: Option<serde_json::Map<String, Value>>,
}

#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct ChangeCounts {
    pub total: u64,
    pub allow_to_deny: u64,
    pub deny_to_allow: u64,
    /// Results that changed without `allow` flipping.
    pub other: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChangedDecision {
    pub decision_id: String,
    pub ledger_index: u64,
    pub timestamp: String,
    pub path: String,
    /// `allow_to_deny`, `deny_to_allow` or `other`.
    pub change: &'static str,
    #[schema(value_type = Option<Object>)]
    pub context: Option<serde_json::Map<String, Value>>,
    pub recorded: Outcome,
    pub candidate: Outcome,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ImpactView {
    pub bundle: BundleId,
    /// Decisions that matched the filter and were evaluated again.
    pub considered: u64,
    pub unchanged: u64,
    pub changed: ChangeCounts,
    /// Decisions the candidate could not evaluate (its error is listed).
    pub failed: u64,
    /// Decisions that matched the filter on paths outside the candidate's
    /// roots (another bundle's): it would not answer them, so they cannot
    /// change; not counted in `considered`.
    pub not_served: u64,
    /// Distinct `context.workflow_id` values among the changed decisions.
    pub workflows: Vec<String>,
    pub decisions: Vec<ChangedDecision>,
    /// Set when more changed decisions exist than `limit` listed.
    pub truncated: bool,
    /// The last ledger index examined.
    pub scanned_to: Option<u64>,
    /// Present when `max_scan` stopped the scan: pass it as `after`.
    pub next_after: Option<u64>,
}

fn parse_time(field: &'static str, v: &Option<String>) -> Result<Option<i64>, ReplayError> {
    v.as_deref()
        .map(|t| {
            chrono::DateTime::parse_from_rfc3339(t)
                .map(|d| d.timestamp_millis())
                .map_err(|e| ReplayError::InvalidFilter {
                    field,
                    why: e.to_string(),
                })
        })
        .transpose()
}

/// Evaluates the tenant's recorded decisions that match `req.filter` again
/// with the candidate revision, and counts and lists those that change.
/// One call scans at most `cap` decisions (`limits.max_impact_scan`).
pub async fn impact(
    policy: &PolicyService,
    store: &Store,
    tenant_id: &str,
    req: ImpactRequest,
    cap: u64,
) -> Result<ImpactView, ReplayError> {
    if let Some(asked) = req.max_scan
        && asked > cap
    {
        return Err(ReplayError::MaxScanTooLarge { asked, cap });
    }
    let from = parse_time("from", &req.filter.from)?.unwrap_or(i64::MIN);
    let to = parse_time("to", &req.filter.to)?.unwrap_or(i64::MAX);
    let path = req
        .filter
        .path
        .as_deref()
        .map(super::compiled::DataPath::parse)
        .transpose()?
        .map(|p| p.to_slash());
    let limit = req.limit.unwrap_or(1_000);
    // Checks the candidate exists (and compiles) before reading history.
    let candidate = policy.version(tenant_id, &req.bundle, &req.revision).await?;
    let roots: Vec<Vec<String>> = candidate
        .roots
        .iter()
        .map(|r| {
            let t = r.trim_matches('/');
            t.split('/').filter(|c| !c.is_empty()).map(str::to_string).collect()
        })
        .collect();
    let mut view = ImpactView {
        bundle: BundleId {
            name: candidate.name.clone(),
            revision: candidate.revision.clone(),
            digest: candidate.digest.clone(),
        },
        considered: 0,
        unchanged: 0,
        changed: ChangeCounts::default(),
        failed: 0,
        not_served: 0,
        workflows: Vec::new(),
        decisions: Vec::new(),
        truncated: false,
        scanned_to: None,
        next_after: None,
    };
    let mut workflows = BTreeSet::new();
    let mut after = req.after;
    let mut budget = req.max_scan.unwrap_or(cap);
    loop {
        // Entry timestamps are append times, a few ms after the decision's.
        let page = budget.min(1_000) as u32;
        if page == 0 {
            view.next_after = after;
            break;
        }
        let entries = read::entries_of_kind(store, tenant_id, DECISION, (from, to), after, page).await?;
        if entries.is_empty() {
            break;
        }
        let read = entries.len() as u32;
        for stored in entries {
            let index = stored.row.index;
            after = Some(index);
            view.scanned_to = Some(index);
            budget -= 1;
            let rec = decision_of(stored)?;
            if path.as_ref().is_some_and(|p| *p != rec.path) {
                continue;
            }
            if let Some(want) = &req.filter.context {
                let ctx = rec.context.as_ref();
                if !want.iter().all(|(k, v)| ctx.and_then(|c| c.get(k)) == Some(v)) {
                    continue;
                }
            }
            let served = super::compiled::DataPath::parse(&rec.path).is_ok_and(|p| roots.iter().any(|r| p.within(r)));
            if !served {
                view.not_served += 1;
                continue;
            }
            view.considered += 1;
            let again = match policy.reevaluate(tenant_id, &req.bundle, &req.revision, &rec).await {
                Ok(a) => a,
                Err(Error::UnknownRulePath(_) | Error::PolicyEval(_)) => {
                    view.failed += 1;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            if again.result == rec.result {
                view.unchanged += 1;
                continue;
            }
            let change = match (rec.allow, again.allow) {
                (Some(true), Some(false)) => "allow_to_deny",
                (Some(false), Some(true)) => "deny_to_allow",
                _ => "other",
            };
            view.changed.total += 1;
            match change {
                "allow_to_deny" => view.changed.allow_to_deny += 1,
                "deny_to_allow" => view.changed.deny_to_allow += 1,
                _ => view.changed.other += 1,
            }
            if let Some(Value::String(w)) = rec.context.as_ref().and_then(|c| c.get("workflow_id")) {
                workflows.insert(w.clone());
            }
            if view.decisions.len() < limit {
                view.decisions.push(ChangedDecision {
                    decision_id: rec.decision_id,
                    ledger_index: index,
                    timestamp: rec.timestamp,
                    path: rec.path,
                    change,
                    context: rec.context,
                    recorded: Outcome {
                        result: rec.result,
                        allow: rec.allow,
                    },
                    candidate: Outcome {
                        result: again.result,
                        allow: again.allow,
                    },
                });
            } else {
                view.truncated = true;
            }
        }
        if read < page {
            break;
        }
        tokio::task::yield_now().await;
    }
    view.workflows = workflows.into_iter().collect();
    Ok(view)
}
