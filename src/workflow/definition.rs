//! Workflow definitions (`apiVersion: agentrc.workflow/v0.1`, `kind:
//! AgentWorkflow`): the typed form, the faults a definition can have, and
//! [`parse`], which reads YAML or JSON and returns either a valid
//! definition or every fault found.
//!
//! Reading goes in three steps: the document (YAML, or JSON when the first
//! non-blank byte is `{`, for JSON's line/column errors; duplicate keys and
//! non-finite numbers are syntax errors), then its shape (`decode`: unknown
//! and missing fields, types, paths, comparisons, versions), then what the
//! typed definition means ([`validate`]: names, ranges, error names,
//! transitions, reachability, termination, limits).
//!
//! Invariants: no IO. A [`Definition`] returned by [`parse`] has no fault;
//! faults come out in a deterministic order (document walk, states by name,
//! then structural faults); field names are camelCase, as in the seed, and
//! serializing a definition gives a document that parses back to an equal
//! definition.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, FixedOffset};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::choice::Rule;
use super::path::{OptionalPath, Path};
use super::{decode, validation};
use crate::skill::SkillVersion;

pub const API_VERSION: &str = "agentrc.workflow/v0.1";
pub const KIND: &str = "AgentWorkflow";
/// The largest document accepted.
pub const MAX_DEFINITION_BYTES: usize = 1 << 20;
/// States in all, branches included.
pub const MAX_STATES: usize = 1000;
/// How deep `Parallel` states nest (a `Parallel` of the top level is 1).
pub const MAX_PARALLEL_DEPTH: usize = 8;
/// The longest `timeoutSeconds`, `seconds` and `intervalSeconds` (as ASL).
pub const MAX_SECONDS: u64 = 99_999_999;
/// The longest retry delay, `maxDelaySeconds` included (as ASL: 366 days).
pub const MAX_DELAY_SECONDS: u64 = 31_622_400;
/// The most attempts a retrier may allow (as ASL).
pub const MAX_ATTEMPTS: u32 = 99_999_999;
/// The longest `metadata.name`.
pub const MAX_NAME_LEN: usize = 128;
/// The most reviewers a `HumanReview` state may require.
pub const MAX_REVIEWERS: u32 = 100;
/// The longest state name, in characters.
pub const MAX_STATE_NAME_LEN: usize = 128;
/// The longest `metadata.description`, `prompt` and `cause`, in characters.
pub const MAX_TEXT_LEN: usize = 4096;
/// A `HumanReview` state's default `timeoutSeconds`: one day.
pub const DEFAULT_REVIEW_TIMEOUT_SECONDS: u64 = 86_400;

/// The stable codes of [`DefinitionError`].
pub mod code {
    /// Not YAML or JSON; the message has the line and column.
    pub const INVALID_SYNTAX: &str = "invalid_syntax";
    /// Larger than [`super::MAX_DEFINITION_BYTES`].
    pub const TOO_LARGE: &str = "too_large";
    pub const UNSUPPORTED_API_VERSION: &str = "unsupported_api_version";
    pub const UNSUPPORTED_KIND: &str = "unsupported_kind";
    /// `metadata.name`, or a state's name.
    pub const INVALID_NAME: &str = "invalid_name";
    pub const UNKNOWN_FIELD: &str = "unknown_field";
    pub const MISSING_FIELD: &str = "missing_field";
    /// The wrong type, or out of range.
    pub const INVALID_VALUE: &str = "invalid_value";
    pub const UNKNOWN_STATE_TYPE: &str = "unknown_state_type";
    pub const UNKNOWN_START_STATE: &str = "unknown_start_state";
    pub const UNKNOWN_NEXT: &str = "unknown_next";
    pub const UNREACHABLE_STATE: &str = "unreachable_state";
    /// At a machine (`spec`, a branch): no end is reachable from `startAt`;
    /// at a state: no end is reachable from it.
    pub const NO_TERMINAL_STATE: &str = "no_terminal_state";
    pub const NEXT_AND_END: &str = "next_and_end";
    pub const NO_NEXT: &str = "no_next";
    pub const INVALID_PATH: &str = "invalid_path";
    pub const INVALID_COMPARISON: &str = "invalid_comparison";
    pub const INVALID_ERROR_NAME: &str = "invalid_error_name";
    pub const STATES_ALL_NOT_LAST: &str = "states_all_not_last";
    pub const INVALID_RETRY: &str = "invalid_retry";
    pub const INVALID_SKILL_VERSION: &str = "invalid_skill_version";
    /// More than [`super::MAX_STATES`] states, or `Parallel` nested deeper
    /// than [`super::MAX_PARALLEL_DEPTH`].
    pub const TOO_MANY_STATES: &str = "too_many_states";

    /// Every code.
    pub const ALL: &[&str] = &[
        INVALID_SYNTAX,
        TOO_LARGE,
        UNSUPPORTED_API_VERSION,
        UNSUPPORTED_KIND,
        INVALID_NAME,
        UNKNOWN_FIELD,
        MISSING_FIELD,
        INVALID_VALUE,
        UNKNOWN_STATE_TYPE,
        UNKNOWN_START_STATE,
        UNKNOWN_NEXT,
        UNREACHABLE_STATE,
        NO_TERMINAL_STATE,
        NEXT_AND_END,
        NO_NEXT,
        INVALID_PATH,
        INVALID_COMPARISON,
        INVALID_ERROR_NAME,
        STATES_ALL_NOT_LAST,
        INVALID_RETRY,
        INVALID_SKILL_VERSION,
        TOO_MANY_STATES,
    ];
}

/// One fault of a definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DefinitionError {
    /// One of [`code`].
    pub code: &'static str,
    /// Where: `spec.states.Triage.retry[0].backoffRate`; empty for the
    /// whole document.
    pub at: String,
    /// What is wrong and what to do about it.
    pub message: String,
}

impl DefinitionError {
    pub fn new(code: &'static str, at: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code,
            at: at.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for DefinitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.at.is_empty() {
            write!(f, "{} ({})", self.message, self.code)
        } else {
            write!(f, "{}: {} ({})", self.at, self.message, self.code)
        }
    }
}

impl std::error::Error for DefinitionError {}

/// A workflow definition.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Definition {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub spec: Spec,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Metadata {
    /// 1 to 128 of `[a-z0-9-]`, starting with a letter.
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The top-level state machine.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    pub start_at: String,
    pub states: BTreeMap<String, State>,
    /// The whole workflow's time-out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
}

/// A branch of a `Parallel` state: a state machine of its own, whose
/// transitions stay within it.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Branch {
    pub start_at: String,
    pub states: BTreeMap<String, State>,
}

/// A state, by its `type`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type")]
pub enum State {
    Task(TaskState),
    Choice(ChoiceState),
    Parallel(ParallelState),
    Wait(WaitState),
    HumanReview(HumanReviewState),
    Pass(PassState),
    Succeed(SucceedState),
    Fail(FailState),
}

/// Where a state goes when it is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    Next(String),
    /// `end: true`: the machine (workflow or branch) ends here.
    End,
}

/// Runs an agent.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskState {
    /// The agent's image reference.
    pub agent: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skill: Option<Skill>,
    /// An object; see [`super::parameters`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    #[serde(skip_serializing_if = "OptionalPath::is_absent")]
    pub input_path: OptionalPath,
    #[serde(skip_serializing_if = "OptionalPath::is_absent")]
    pub result_path: OptionalPath,
    #[serde(skip_serializing_if = "OptionalPath::is_absent")]
    pub output_path: OptionalPath,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub retry: Vec<Retrier>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub catch: Vec<Catcher>,
    #[serde(flatten)]
    pub transition: Transition,
}

/// The skill a task's agent is asked for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skill {
    pub id: String,
    pub version: SkillVersion,
}

/// Branches on the input.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChoiceState {
    pub choices: Vec<ChoiceRule>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(skip_serializing_if = "OptionalPath::is_absent")]
    pub input_path: OptionalPath,
    #[serde(skip_serializing_if = "OptionalPath::is_absent")]
    pub output_path: OptionalPath,
}

/// A top-level choice rule: a rule, and where to go when it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct ChoiceRule {
    pub rule: Rule,
    pub next: String,
}

/// Runs its branches on the same input; its result is the array of the
/// branches' outputs, in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ParallelState {
    pub branches: Vec<Branch>,
    #[serde(skip_serializing_if = "OptionalPath::is_absent")]
    pub input_path: OptionalPath,
    #[serde(skip_serializing_if = "OptionalPath::is_absent")]
    pub result_path: OptionalPath,
    #[serde(skip_serializing_if = "OptionalPath::is_absent")]
    pub output_path: OptionalPath,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub retry: Vec<Retrier>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub catch: Vec<Catcher>,
    #[serde(flatten)]
    pub transition: Transition,
}

/// Waits, then passes its input on.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitState {
    #[serde(flatten)]
    pub wait: WaitFor,
    #[serde(skip_serializing_if = "OptionalPath::is_absent")]
    pub input_path: OptionalPath,
    #[serde(skip_serializing_if = "OptionalPath::is_absent")]
    pub output_path: OptionalPath,
    #[serde(flatten)]
    pub transition: Transition,
}

/// How long a `Wait` state waits: exactly one of these.
#[derive(Debug, Clone, PartialEq)]
pub enum WaitFor {
    Seconds(u64),
    Timestamp(Timestamp),
    /// A path to a non-negative integer in the input.
    SecondsPath(Path),
    /// A path to a timestamp in the input.
    TimestampPath(Path),
}

/// Waits for human approval. The verdict ([`ReviewVerdict`]) goes to
/// `resultPath`; a rejection raises `States.Rejected`, expiry
/// `States.Timeout`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HumanReviewState {
    /// How many approvals are needed (≥ 1).
    pub reviewers: u32,
    pub timeout_seconds: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(skip_serializing_if = "OptionalPath::is_absent")]
    pub input_path: OptionalPath,
    #[serde(skip_serializing_if = "OptionalPath::is_absent")]
    pub result_path: OptionalPath,
    #[serde(skip_serializing_if = "OptionalPath::is_absent")]
    pub output_path: OptionalPath,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub catch: Vec<Catcher>,
    #[serde(flatten)]
    pub transition: Transition,
}

/// What a `HumanReview` state puts at its `resultPath`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewVerdict {
    pub approved: bool,
    /// Who decided.
    pub reviewers: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
}

/// Passes its input (or `result`) on. With no `result`, the result is the
/// effective input (after `parameters`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PassState {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    #[serde(skip_serializing_if = "OptionalPath::is_absent")]
    pub input_path: OptionalPath,
    #[serde(skip_serializing_if = "OptionalPath::is_absent")]
    pub result_path: OptionalPath,
    #[serde(skip_serializing_if = "OptionalPath::is_absent")]
    pub output_path: OptionalPath,
    #[serde(flatten)]
    pub transition: Transition,
}

/// Ends the machine successfully.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SucceedState {
    #[serde(skip_serializing_if = "OptionalPath::is_absent")]
    pub input_path: OptionalPath,
    #[serde(skip_serializing_if = "OptionalPath::is_absent")]
    pub output_path: OptionalPath,
}

/// Ends the machine with an error.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct FailState {
    /// The error name raised (not `States.ALL`).
    pub error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

/// Retries a failed `Task` or `Parallel` state.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Retrier {
    pub error_equals: Vec<String>,
    pub interval_seconds: u64,
    /// Retries (not attempts) after the first try; 0 never retries.
    pub max_attempts: u32,
    pub backoff_rate: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_delay_seconds: Option<u64>,
    pub jitter_strategy: JitterStrategy,
}

impl Default for Retrier {
    /// The defaults of every field but `errorEquals`.
    fn default() -> Self {
        Self {
            error_equals: Vec::new(),
            interval_seconds: 1,
            max_attempts: 3,
            backoff_rate: 2.0,
            max_delay_seconds: None,
            jitter_strategy: JitterStrategy::None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum JitterStrategy {
    /// A delay drawn uniformly from `[0, delay]`.
    Full,
    #[default]
    None,
}

/// Sends a failed state's error to another state.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Catcher {
    pub error_equals: Vec<String>,
    /// Where the error output (`{error, cause}`) goes; absent is `$`.
    #[serde(skip_serializing_if = "OptionalPath::is_absent")]
    pub result_path: OptionalPath,
    pub next: String,
}

/// An RFC 3339 timestamp as ASL has them: an uppercase `T` between date and
/// time, and `Z` or a numeric offset. Keeps its text; compares as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timestamp {
    text: String,
    instant: DateTime<FixedOffset>,
}

impl Timestamp {
    pub fn parse(text: &str) -> Option<Self> {
        if text.as_bytes().get(10) != Some(&b'T') || text.ends_with('z') {
            return None;
        }
        let instant = DateTime::parse_from_rfc3339(text).ok()?;
        Some(Self {
            text: text.to_owned(),
            instant,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn instant(&self) -> DateTime<FixedOffset> {
        self.instant
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl Transition {
    pub fn next(&self) -> Option<&str> {
        match self {
            Transition::Next(n) => Some(n),
            Transition::End => None,
        }
    }
}

impl Serialize for Transition {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        match self {
            Transition::Next(n) => map.serialize_entry("next", n)?,
            Transition::End => map.serialize_entry("end", &true)?,
        }
        map.end()
    }
}

impl Serialize for WaitFor {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        match self {
            WaitFor::Seconds(n) => map.serialize_entry("seconds", n)?,
            WaitFor::Timestamp(t) => map.serialize_entry("timestamp", t)?,
            WaitFor::SecondsPath(p) => map.serialize_entry("secondsPath", p)?,
            WaitFor::TimestampPath(p) => map.serialize_entry("timestampPath", p)?,
        }
        map.end()
    }
}

impl Serialize for ChoiceRule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = self.rule.to_json();
        map.insert("next".into(), Value::String(self.next.clone()));
        map.serialize(s)
    }
}

impl State {
    /// The `type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            State::Task(_) => "Task",
            State::Choice(_) => "Choice",
            State::Parallel(_) => "Parallel",
            State::Wait(_) => "Wait",
            State::HumanReview(_) => "HumanReview",
            State::Pass(_) => "Pass",
            State::Succeed(_) => "Succeed",
            State::Fail(_) => "Fail",
        }
    }

    /// `next`/`end`, for the states that have them (not `Choice`, `Succeed`,
    /// `Fail`).
    pub fn transition(&self) -> Option<&Transition> {
        match self {
            State::Task(s) => Some(&s.transition),
            State::Parallel(s) => Some(&s.transition),
            State::Wait(s) => Some(&s.transition),
            State::HumanReview(s) => Some(&s.transition),
            State::Pass(s) => Some(&s.transition),
            State::Choice(_) | State::Succeed(_) | State::Fail(_) => None,
        }
    }

    /// Whether the machine may end here: `end: true`, `Succeed`, `Fail`.
    pub fn is_terminal(&self) -> bool {
        matches!(self, State::Succeed(_) | State::Fail(_)) || self.transition() == Some(&Transition::End)
    }

    pub fn retry(&self) -> &[Retrier] {
        match self {
            State::Task(s) => &s.retry,
            State::Parallel(s) => &s.retry,
            _ => &[],
        }
    }

    pub fn catch(&self) -> &[Catcher] {
        match self {
            State::Task(s) => &s.catch,
            State::Parallel(s) => &s.catch,
            State::HumanReview(s) => &s.catch,
            _ => &[],
        }
    }

    /// Every state this one may go to, with where the definition says so
    /// (relative to the state: `next`, `choices[0].next`, `default`,
    /// `catch[1].next`), in that order.
    pub fn targets(&self) -> Vec<(&str, String)> {
        let mut out = Vec::new();
        if let Some(Transition::Next(n)) = self.transition() {
            out.push((n.as_str(), "next".to_owned()));
        }
        if let State::Choice(c) = self {
            for (i, rule) in c.choices.iter().enumerate() {
                out.push((rule.next.as_str(), format!("choices[{i}].next")));
            }
            if let Some(d) = &c.default {
                out.push((d.as_str(), "default".to_owned()));
            }
        }
        for (i, catcher) in self.catch().iter().enumerate() {
            out.push((catcher.next.as_str(), format!("catch[{i}].next")));
        }
        out
    }
}

/// Reads a definition from YAML or JSON and validates it.
pub fn parse(bytes: &[u8]) -> Result<Definition, Vec<DefinitionError>> {
    let document = decode::read_document(bytes).map_err(|e| vec![e])?;
    from_value(&document)
}

/// Validates a document already read (JSON values, as YAML would give).
pub fn from_value(document: &Value) -> Result<Definition, Vec<DefinitionError>> {
    let decoded = decode::decode(document)?;
    let mut errors = decoded.errors;
    // What the shape already reported, or could not read, is not reported
    // again from the placeholders standing in for it. Faults about a state
    // as a whole (reachability, termination, nesting) are not about a
    // placeholder, and stay.
    let about_a_state = [code::UNREACHABLE_STATE, code::NO_TERMINAL_STATE, code::TOO_MANY_STATES];
    let shadowed = |fault: &DefinitionError| {
        let at = fault.at.as_str();
        (errors.iter().any(|e| e.at == at) && !about_a_state.contains(&fault.code))
            || decoded.broken.iter().any(|b| {
                b.is_empty()
                    || at
                        .strip_prefix(b.as_str())
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
            })
    };
    let more: Vec<DefinitionError> = validation::check(&decoded.definition, &decoded.omitted)
        .into_iter()
        .filter(|e| !shadowed(e))
        .collect();
    errors.extend(more);
    if errors.is_empty() {
        Ok(decoded.definition)
    } else {
        Err(errors)
    }
}

/// Every fault of a typed definition (one built in code, say). [`parse`]
/// runs this.
pub fn validate(definition: &Definition) -> Vec<DefinitionError> {
    validation::check(definition, &Default::default())
}

impl<'de> Deserialize<'de> for Definition {
    /// Reads and validates, as [`from_value`]; the faults are joined in the
    /// error's message.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let document = crate::document::StrictValue::deserialize(d)?.0;
        from_value(&document).map_err(|errors| {
            let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
            serde::de::Error::custom(all.join("; "))
        })
    }
}
