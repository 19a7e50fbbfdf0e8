//! The decision request and the decision record.
//!
//! A [`Decision`] holds everything needed to defend it later: who asked
//! (from the token, never the body), the exact input, the path, the exact
//! bundle version (name, revision, digest), the captured values of
//! non-deterministic builtins, and the result. The response is this record
//! minus the input.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::compiled::Captured;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// Rule or package path, `/`- or `.`-separated, e.g. `agento/commissioning/routing`.
    pub path: String,
    /// The input document; absent means `input` is undefined in the policy
    /// (`null` is the value null, as in OPA).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Value)]
    pub input: Option<Box<RawValue>>,
    /// Pin a bundle (and optionally a revision) instead of the active version.
    #[serde(default)]
    pub bundle: Option<BundlePin>,
    /// Caller context kept with the decision (e.g. workflow_id); not seen by the policy.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub context: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A member that is present is kept as sent, `null` included (serde would
/// read `null` as absent, and the evidence would lose it).
pub fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(d).map(Some)
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BundlePin {
    pub name: String,
    /// Omit to use the bundle's active revision.
    #[serde(default)]
    pub revision: Option<String>,
}

/// The exact bundle version that answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BundleId {
    pub name: String,
    pub revision: String,
    /// blake3 of the bundle's bytes, hex.
    pub digest: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Timing {
    /// Time spent in policy evaluation, microseconds.
    pub eval_us: f64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Decision {
    pub decision_id: String,
    /// RFC 3339, UTC.
    pub timestamp: String,
    /// The path as evaluated, `/`-separated.
    pub path: String,
    /// The policy's result; absent when undefined.
    #[serde(skip_serializing_if = "is_undefined")]
    #[schema(value_type = Value)]
    pub result: regorus::Value,
    /// Set when the result is, or contains, a boolean `allow`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow: Option<bool>,
    /// Set when the result contains `reason` or `reasons`, sorted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasons: Option<Vec<String>>,
    pub bundle: BundleId,
    /// Values of non-deterministic builtins used, fixed for replay.
    pub captured: Captured,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub context: Option<serde_json::Map<String, serde_json::Value>>,
    pub timing: Timing,
    /// Who asked: the authenticated token.
    pub caller: String,
    #[serde(skip)]
    pub tenant_id: String,
    /// The input exactly as received.
    #[serde(skip)]
    pub input: Option<Box<RawValue>>,
    /// Where the decision is in the evidence ledger, with the proof.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt: Option<crate::ledger::Receipt>,
}

impl Decision {
    /// The ledger record of the decision, appended before it is answered:
    /// its evidence, by the caller, about its id (so replay finds it).
    pub fn record(&self) -> crate::ledger::Record {
        crate::ledger::Record::new(&self.tenant_id, "decision", &self.caller, &self.evidence()).about(&self.decision_id)
    }

    /// The ledger payload: everything needed to defend and replay the
    /// decision (the caller is the entry's actor).
    pub fn evidence(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("decision_id".into(), self.decision_id.clone().into());
        m.insert("timestamp".into(), self.timestamp.clone().into());
        m.insert("path".into(), self.path.clone().into());
        if let Some(raw) = &self.input {
            // Already parsed once as JSON, so this cannot fail.
            m.insert(
                "input".into(),
                serde_json::from_str(raw.get()).unwrap_or(serde_json::Value::Null),
            );
        }
        if !is_undefined(&self.result) {
            m.insert(
                "result".into(),
                serde_json::to_value(&self.result).unwrap_or(serde_json::Value::Null),
            );
        }
        if let Some(a) = self.allow {
            m.insert("allow".into(), a.into());
        }
        if let Some(r) = &self.reasons {
            m.insert("reasons".into(), r.clone().into());
        }
        m.insert("bundle".into(), serde_json::to_value(&self.bundle).unwrap_or_default());
        m.insert(
            "captured".into(),
            serde_json::to_value(&self.captured).unwrap_or_default(),
        );
        if let Some(c) = &self.context {
            m.insert("context".into(), serde_json::Value::Object(c.clone()));
        }
        serde_json::Value::Object(m)
    }
}

/// A decision as the ledger holds it.
#[derive(Debug, Clone, Deserialize)]
pub struct RecordedDecision {
    pub decision_id: String,
    pub timestamp: String,
    pub path: String,
    #[serde(default)]
    pub input: Option<serde_json::Value>,
    #[serde(default)]
    pub result: Option<serde_json::Value>,
    #[serde(default)]
    pub allow: Option<bool>,
    pub bundle: BundleId,
    pub captured: Captured,
    #[serde(default)]
    pub context: Option<serde_json::Map<String, serde_json::Value>>,
}

fn is_undefined(v: &regorus::Value) -> bool {
    matches!(v, regorus::Value::Undefined)
}

/// `allow`: the result itself when boolean, or its boolean `allow` member.
pub fn extract_allow(result: &regorus::Value) -> Option<bool> {
    match result {
        regorus::Value::Bool(b) => Some(*b),
        regorus::Value::Object(o) => match o.get(&regorus::Value::from("allow")) {
            Some(regorus::Value::Bool(b)) => Some(*b),
            _ => None,
        },
        _ => None,
    }
}

/// `reasons`: from a `reason` or `reasons` member that is a set or array of
/// strings, a single string, or an object whose keys are the reasons (what
/// `reason["…"] if { … }` yields under rego.v1).
pub fn extract_reasons(result: &regorus::Value) -> Option<Vec<String>> {
    let regorus::Value::Object(o) = result else {
        return None;
    };
    let mut found = None;
    for key in ["reasons", "reason"] {
        if let Some(v) = o.get(&regorus::Value::from(key)) {
            found = Some(v);
            break;
        }
    }
    let mut out: Vec<String> = match found? {
        regorus::Value::Set(s) => s.iter().map(text).collect(),
        regorus::Value::Array(a) => a.iter().map(text).collect(),
        regorus::Value::Object(m) => m.keys().map(text).collect(),
        regorus::Value::String(s) => vec![s.to_string()],
        _ => return None,
    };
    out.sort();
    out.dedup();
    Some(out)
}

fn text(v: &regorus::Value) -> String {
    match v {
        regorus::Value::String(s) => s.to_string(),
        other => other.to_json_str().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(json: &str) -> regorus::Value {
        regorus::Value::from_json_str(json).unwrap()
    }

    #[test]
    fn allow_from_boolean_result_or_member() {
        assert_eq!(extract_allow(&v("true")), Some(true));
        assert_eq!(extract_allow(&v(r#"{"allow": false, "x": 1}"#)), Some(false));
        assert_eq!(extract_allow(&v(r#"{"allow": "yes"}"#)), None);
        assert_eq!(extract_allow(&v("3")), None);
    }

    #[test]
    fn reasons_from_sets_arrays_and_object_keys() {
        assert_eq!(
            extract_reasons(&v(r#"{"reason": {"b": true, "a": true}}"#)),
            Some(vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!(
            extract_reasons(&v(r#"{"reasons": ["x", "x"]}"#)),
            Some(vec!["x".to_string()])
        );
        assert_eq!(extract_reasons(&v(r#"{"allow": true}"#)), None);
    }
}
