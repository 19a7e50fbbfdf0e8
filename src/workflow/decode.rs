//! Reading a definition: the document (YAML or JSON) into a JSON value, and
//! that value into the typed [`Definition`], reporting every shape fault:
//! unknown fields (every mapping is closed), missing fields, wrong types,
//! paths, comparisons, skill versions, `next`/`end`.
//!
//! Invariants: no IO, no panics. Decoding never stops at a fault: what
//! cannot be read is replaced by a placeholder and reported, so that
//! validation still sees the rest. Two things tell validation what to leave
//! alone: `broken` (locations that could not be read at all; nothing under
//! them is reported again) and `omitted` (per machine, the states whose type
//! could not be read: they exist as transition targets, and the machine's
//! reachability is not judged).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::choice::{Operand, Rule, Test, TestKey, TestKind, parse_key};
use super::definition::{
    Branch, Catcher, ChoiceRule, ChoiceState, DEFAULT_REVIEW_TIMEOUT_SECONDS, Definition, DefinitionError, FailState,
    HumanReviewState, JitterStrategy, MAX_DEFINITION_BYTES, Metadata, ParallelState, PassState, Retrier, Skill, Spec,
    State, SucceedState, TaskState, Timestamp, Transition, WaitFor, WaitState, code,
};
use super::path::{OptionalPath, Path, kind_of};
use crate::document::{Unreadable, read_strict};
use crate::skill::SkillVersion;

/// Per machine (`spec`, `spec.states.P.branches[0]`), the states that could
/// not be read.
pub(crate) type Omitted = BTreeMap<String, BTreeSet<String>>;

pub(crate) struct Decoded {
    pub definition: Definition,
    pub errors: Vec<DefinitionError>,
    pub omitted: Omitted,
    pub broken: Vec<String>,
}

const TIMESTAMP_EXAMPLE: &str = "2024-01-31T12:00:00Z";

/// The definition as a JSON value ([`read_strict`]).
pub(crate) fn read_document(bytes: &[u8]) -> Result<Value, DefinitionError> {
    read_strict(bytes, MAX_DEFINITION_BYTES, "the definition").map_err(|e| match e {
        Unreadable::TooLarge(m) => DefinitionError::new(code::TOO_LARGE, "", m),
        Unreadable::Syntax(m) => DefinitionError::new(code::INVALID_SYNTAX, "", m),
    })
}

fn child(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_owned()
    } else {
        format!("{at}.{key}")
    }
}

fn quoted(names: &[&str]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

/// The typed definition and every shape fault; `Err` only when the document
/// is not a mapping at all.
pub(crate) fn decode(document: &Value) -> Result<Decoded, Vec<DefinitionError>> {
    let Value::Object(root) = document else {
        return Err(vec![DefinitionError::new(
            code::INVALID_VALUE,
            "",
            format!(
                "a definition is a mapping with `apiVersion`, `kind`, `metadata` and `spec`, not {}",
                kind_of(document)
            ),
        )]);
    };
    let mut d = Decoder::default();
    let definition = d.definition(root);
    Ok(Decoded {
        definition,
        errors: d.errors,
        omitted: d.omitted,
        broken: d.broken,
    })
}

/// One choice rule with its `next` (for tests and tools).
#[cfg(test)]
pub(crate) fn decode_rule(value: &Value) -> Result<Rule, Vec<DefinitionError>> {
    let mut d = Decoder::default();
    let (rule, _) = d.rule(value, "rule", false);
    if d.errors.is_empty() { Ok(rule) } else { Err(d.errors) }
}

#[derive(Default)]
struct Decoder {
    errors: Vec<DefinitionError>,
    omitted: Omitted,
    broken: Vec<String>,
}

const TASK_FIELDS: &[&str] = &[
    "type",
    "agent",
    "skill",
    "parameters",
    "inputPath",
    "resultPath",
    "outputPath",
    "timeoutSeconds",
    "retry",
    "catch",
    "next",
    "end",
];
const CHOICE_FIELDS: &[&str] = &["type", "choices", "default", "inputPath", "outputPath"];
const PARALLEL_FIELDS: &[&str] = &[
    "type",
    "branches",
    "inputPath",
    "resultPath",
    "outputPath",
    "timeoutSeconds",
    "retry",
    "catch",
    "next",
    "end",
];
const WAIT_FIELDS: &[&str] = &[
    "type",
    "seconds",
    "timestamp",
    "secondsPath",
    "timestampPath",
    "inputPath",
    "outputPath",
    "next",
    "end",
];
const WAIT_FOR: &[&str] = &["seconds", "timestamp", "secondsPath", "timestampPath"];
const HUMAN_REVIEW_FIELDS: &[&str] = &[
    "type",
    "reviewers",
    "timeoutSeconds",
    "prompt",
    "inputPath",
    "resultPath",
    "outputPath",
    "catch",
    "next",
    "end",
];
const PASS_FIELDS: &[&str] = &[
    "type",
    "result",
    "parameters",
    "inputPath",
    "resultPath",
    "outputPath",
    "next",
    "end",
];
const SUCCEED_FIELDS: &[&str] = &["type", "inputPath", "outputPath"];
const FAIL_FIELDS: &[&str] = &["type", "error", "cause"];
const STATE_TYPES: &[&str] = &[
    "Task",
    "Choice",
    "Parallel",
    "Wait",
    "HumanReview",
    "Pass",
    "Succeed",
    "Fail",
];
const RETRIER_FIELDS: &[&str] = &[
    "errorEquals",
    "intervalSeconds",
    "maxAttempts",
    "backoffRate",
    "maxDelaySeconds",
    "jitterStrategy",
];
const CATCHER_FIELDS: &[&str] = &["errorEquals", "resultPath", "next"];

impl Decoder {
    fn fault(&mut self, code: &'static str, at: impl Into<String>, message: impl Into<String>) {
        self.errors.push(DefinitionError::new(code, at, message));
    }

    /// `value` as a mapping; otherwise a fault, and `at` is broken.
    fn object<'v>(&mut self, value: &'v Value, at: &str, what: &str) -> Option<&'v Map<String, Value>> {
        match value {
            Value::Object(map) => Some(map),
            other => {
                self.fault(
                    code::INVALID_VALUE,
                    at,
                    format!("{what} is a mapping, not {}", kind_of(other)),
                );
                self.broken.push(at.to_owned());
                None
            }
        }
    }

    /// A fault for every key of `map` not in `allowed`.
    fn fields(&mut self, map: &Map<String, Value>, at: &str, what: &str, allowed: &[&str]) {
        let mut keys: Vec<&String> = map.keys().collect();
        keys.sort();
        for key in keys {
            if !allowed.contains(&key.as_str()) {
                self.fault(
                    code::UNKNOWN_FIELD,
                    child(at, key),
                    format!(
                        "unknown field `{key}` in {what}; expected one of: {}",
                        allowed.join(", ")
                    ),
                );
            }
        }
    }

    fn required<'v>(&mut self, map: &'v Map<String, Value>, at: &str, key: &str) -> Option<&'v Value> {
        let value = map.get(key);
        if value.is_none() {
            self.fault(code::MISSING_FIELD, child(at, key), format!("`{key}` is required"));
        }
        value
    }

    fn string(&mut self, value: &Value, at: &str) -> Option<String> {
        match value {
            Value::String(s) => Some(s.clone()),
            other => {
                self.fault(
                    code::INVALID_VALUE,
                    at,
                    format!("expected a string, not {}", kind_of(other)),
                );
                None
            }
        }
    }

    fn req_string(&mut self, map: &Map<String, Value>, at: &str, key: &str) -> Option<String> {
        let value = self.required(map, at, key)?;
        self.string(value, &child(at, key))
    }

    fn opt_string(&mut self, map: &Map<String, Value>, at: &str, key: &str) -> Option<String> {
        let value = map.get(key)?;
        self.string(value, &child(at, key))
    }

    fn bool(&mut self, value: &Value, at: &str) -> Option<bool> {
        match value {
            Value::Bool(b) => Some(*b),
            other => {
                self.fault(
                    code::INVALID_VALUE,
                    at,
                    format!("expected true or false, not {}", kind_of(other)),
                );
                None
            }
        }
    }

    fn uint(&mut self, value: &Value, at: &str, code: &'static str) -> Option<u64> {
        let message = match value {
            Value::Number(n) => match n.as_u64() {
                Some(v) => return Some(v),
                None if n.as_i64().is_some() => format!("{n} is negative: expected a whole number ≥ 0"),
                None => format!("{n} is not a whole number"),
            },
            other => format!("expected a whole number, not {}", kind_of(other)),
        };
        self.fault(code, at, message);
        None
    }

    fn opt_uint(&mut self, map: &Map<String, Value>, at: &str, key: &str, code: &'static str) -> Option<u64> {
        let value = map.get(key)?;
        self.uint(value, &child(at, key), code)
    }

    /// A list under `key`, if there is one.
    fn list<'v>(
        &mut self,
        map: &'v Map<String, Value>,
        at: &str,
        key: &str,
        code: &'static str,
    ) -> Option<&'v [Value]> {
        match map.get(key)? {
            Value::Array(items) => Some(items),
            other => {
                let here = child(at, key);
                self.fault(code, &here, format!("`{key}` is a list, not {}", kind_of(other)));
                self.broken.push(here);
                None
            }
        }
    }

    fn path(&mut self, value: &Value, at: &str) -> Option<Path> {
        match value {
            Value::String(text) => match Path::parse(text) {
                Ok(p) => Some(p),
                Err(e) => {
                    self.fault(code::INVALID_PATH, at, format!("`{text}` is not a valid path: {e}"));
                    None
                }
            },
            other => {
                self.fault(
                    code::INVALID_PATH,
                    at,
                    format!("a path is a string such as `$.claim.id`, not {}", kind_of(other)),
                );
                None
            }
        }
    }

    /// Absent, `null`, or a path. A bad path is reported and read as absent.
    fn optional_path(&mut self, map: &Map<String, Value>, at: &str, key: &str) -> OptionalPath {
        match map.get(key) {
            None => OptionalPath::Absent,
            Some(Value::Null) => OptionalPath::Null,
            Some(value) => self
                .path(value, &child(at, key))
                .map_or(OptionalPath::Absent, OptionalPath::Path),
        }
    }

    fn template(&mut self, map: &Map<String, Value>, at: &str, key: &str) -> Option<Value> {
        match map.get(key)? {
            value @ Value::Object(_) => Some(value.clone()),
            other => {
                self.fault(
                    code::INVALID_VALUE,
                    child(at, key),
                    format!("`{key}` is a mapping, not {}", kind_of(other)),
                );
                None
            }
        }
    }

    fn definition(&mut self, root: &Map<String, Value>) -> Definition {
        self.fields(root, "", "the definition", &["apiVersion", "kind", "metadata", "spec"]);
        let api_version = self.req_string(root, "", "apiVersion").unwrap_or_default();
        let kind = self.req_string(root, "", "kind").unwrap_or_default();
        let metadata = match self.required(root, "", "metadata") {
            Some(value) => self.metadata(value),
            None => {
                self.broken.push("metadata".into());
                Metadata::default()
            }
        };
        let spec = match self.required(root, "", "spec") {
            Some(value) => self.spec(value),
            None => {
                self.broken.push("spec".into());
                Spec::default()
            }
        };
        Definition {
            api_version,
            kind,
            metadata,
            spec,
        }
    }

    fn metadata(&mut self, value: &Value) -> Metadata {
        let at = "metadata";
        let Some(map) = self.object(value, at, "`metadata`") else {
            return Metadata::default();
        };
        self.fields(map, at, "`metadata`", &["name", "description"]);
        Metadata {
            name: self.req_string(map, at, "name").unwrap_or_default(),
            description: self.opt_string(map, at, "description"),
        }
    }

    fn spec(&mut self, value: &Value) -> Spec {
        let at = "spec";
        let Some(map) = self.object(value, at, "`spec`") else {
            return Spec::default();
        };
        self.fields(map, at, "`spec`", &["startAt", "states", "timeoutSeconds"]);
        let (start_at, states) = self.machine(map, at);
        let timeout_seconds = self.opt_uint(map, at, "timeoutSeconds", code::INVALID_VALUE);
        Spec {
            start_at,
            states,
            timeout_seconds,
        }
    }

    /// `startAt` and `states` of the workflow or a branch.
    fn machine(&mut self, map: &Map<String, Value>, at: &str) -> (String, BTreeMap<String, State>) {
        let start_at = self.req_string(map, at, "startAt").unwrap_or_default();
        let mut states = BTreeMap::new();
        let table = match self.required(map, at, "states") {
            Some(value) => self.object(value, &child(at, "states"), "`states`"),
            None => None,
        };
        let Some(table) = table else {
            // Without its states, nothing about this machine can be judged.
            self.broken.push(at.to_owned());
            return (start_at, states);
        };
        let mut names: Vec<&String> = table.keys().collect();
        names.sort();
        for name in names {
            let here = child(&child(at, "states"), name);
            match self.state(&table[name.as_str()], &here) {
                Some(state) => {
                    states.insert(name.clone(), state);
                }
                None => {
                    self.omitted.entry(at.to_owned()).or_default().insert(name.clone());
                }
            }
        }
        (start_at, states)
    }

    fn state(&mut self, value: &Value, at: &str) -> Option<State> {
        let map = self.object(value, at, "a state")?;
        let type_at = child(at, "type");
        let type_name = match map.get("type") {
            None => {
                self.fault(
                    code::MISSING_FIELD,
                    &type_at,
                    format!("a state needs a `type`: one of {}", STATE_TYPES.join(", ")),
                );
                self.broken.push(at.to_owned());
                return None;
            }
            Some(Value::String(t)) => t.as_str(),
            Some(other) => {
                self.fault(
                    code::UNKNOWN_STATE_TYPE,
                    &type_at,
                    format!(
                        "a state's `type` is one of {}, not {}",
                        STATE_TYPES.join(", "),
                        kind_of(other)
                    ),
                );
                self.broken.push(at.to_owned());
                return None;
            }
        };
        let state = match type_name {
            "Task" => State::Task(self.task(map, at)),
            "Choice" => State::Choice(self.choice(map, at)),
            "Parallel" => State::Parallel(self.parallel(map, at)),
            "Wait" => State::Wait(self.wait(map, at)),
            "HumanReview" => State::HumanReview(self.human_review(map, at)),
            "Pass" => State::Pass(self.pass(map, at)),
            "Succeed" => {
                self.fields(map, at, "a Succeed state", SUCCEED_FIELDS);
                State::Succeed(SucceedState {
                    input_path: self.optional_path(map, at, "inputPath"),
                    output_path: self.optional_path(map, at, "outputPath"),
                })
            }
            "Fail" => {
                self.fields(map, at, "a Fail state", FAIL_FIELDS);
                State::Fail(FailState {
                    error: self.req_string(map, at, "error").unwrap_or_default(),
                    cause: self.opt_string(map, at, "cause"),
                })
            }
            other => {
                self.fault(
                    code::UNKNOWN_STATE_TYPE,
                    &type_at,
                    format!("`{other}` is not a state type: use one of {}", STATE_TYPES.join(", ")),
                );
                self.broken.push(at.to_owned());
                return None;
            }
        };
        Some(state)
    }

    fn transition(&mut self, map: &Map<String, Value>, at: &str, type_name: &str) -> Transition {
        let next = match map.get("next") {
            Some(v) => self.string(v, &child(at, "next")),
            None => None,
        };
        let end = match map.get("end") {
            Some(v) => self.bool(v, &child(at, "end")),
            None => None,
        };
        match (next, end) {
            (Some(next), Some(true)) => {
                self.fault(code::NEXT_AND_END, at, "both `next` and `end: true` are set: keep one");
                Transition::Next(next)
            }
            (Some(next), _) => Transition::Next(next),
            (None, Some(true)) => Transition::End,
            (None, _) => {
                let unreadable = map.contains_key("next") || map.get("end").is_some_and(|v| !v.is_boolean());
                if !unreadable {
                    self.fault(
                        code::NO_NEXT,
                        at,
                        format!("a {type_name} state needs `next: <state>` or `end: true`"),
                    );
                }
                Transition::End
            }
        }
    }

    fn task(&mut self, map: &Map<String, Value>, at: &str) -> TaskState {
        self.fields(map, at, "a Task state", TASK_FIELDS);
        TaskState {
            agent: self.req_string(map, at, "agent").unwrap_or_default(),
            skill: map.get("skill").and_then(|v| self.skill(v, &child(at, "skill"))),
            parameters: self.template(map, at, "parameters"),
            input_path: self.optional_path(map, at, "inputPath"),
            result_path: self.optional_path(map, at, "resultPath"),
            output_path: self.optional_path(map, at, "outputPath"),
            timeout_seconds: self.opt_uint(map, at, "timeoutSeconds", code::INVALID_VALUE),
            retry: self.retriers(map, at),
            catch: self.catchers(map, at),
            transition: self.transition(map, at, "Task"),
        }
    }

    fn skill(&mut self, value: &Value, at: &str) -> Option<Skill> {
        let map = self.object(value, at, "`skill`")?;
        self.fields(map, at, "`skill`", &["id", "version"]);
        let id = self.req_string(map, at, "id");
        let text = self.req_string(map, at, "version")?;
        let version = match SkillVersion::parse(&text) {
            Ok(v) => v,
            Err(e) => {
                self.fault(
                    code::INVALID_SKILL_VERSION,
                    child(at, "version"),
                    format!("`{text}` is neither a version (`1.2.3`) nor a version requirement (`^1.2`): {e}"),
                );
                return None;
            }
        };
        Some(Skill { id: id?, version })
    }

    fn error_equals(&mut self, map: &Map<String, Value>, at: &str, code: &'static str) -> Vec<String> {
        let key = "errorEquals";
        if self.required(map, at, key).is_none() {
            return Vec::new();
        }
        let Some(items) = self.list(map, at, key, code) else {
            return Vec::new();
        };
        let here = child(at, key);
        let mut names = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::String(s) => names.push(s.clone()),
                other => self.fault(
                    code,
                    format!("{here}[{i}]"),
                    format!("an error name is a string, not {}", kind_of(other)),
                ),
            }
        }
        names
    }

    fn retriers(&mut self, map: &Map<String, Value>, at: &str) -> Vec<Retrier> {
        let Some(items) = self.list(map, at, "retry", code::INVALID_RETRY) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let here = format!("{at}.retry[{i}]");
            let Some(r) = self.object(item, &here, "a retrier") else {
                continue;
            };
            self.fields(r, &here, "a retrier", RETRIER_FIELDS);
            let mut retrier = Retrier {
                error_equals: self.error_equals(r, &here, code::INVALID_RETRY),
                ..Retrier::default()
            };
            if let Some(n) = self.opt_uint(r, &here, "intervalSeconds", code::INVALID_RETRY) {
                retrier.interval_seconds = n;
            }
            if let Some(n) = self.opt_uint(r, &here, "maxAttempts", code::INVALID_RETRY) {
                retrier.max_attempts = u32::try_from(n).unwrap_or(u32::MAX);
            }
            match r.get("backoffRate") {
                None => {}
                Some(Value::Number(n)) => retrier.backoff_rate = n.as_f64().unwrap_or(f64::INFINITY),
                Some(other) => self.fault(
                    code::INVALID_RETRY,
                    format!("{here}.backoffRate"),
                    format!("`backoffRate` is a number ≥ 1.0, not {}", kind_of(other)),
                ),
            }
            retrier.max_delay_seconds = self.opt_uint(r, &here, "maxDelaySeconds", code::INVALID_RETRY);
            match r.get("jitterStrategy") {
                None => {}
                Some(Value::String(s)) if s == "FULL" => retrier.jitter_strategy = JitterStrategy::Full,
                Some(Value::String(s)) if s == "NONE" => retrier.jitter_strategy = JitterStrategy::None,
                Some(other) => self.fault(
                    code::INVALID_RETRY,
                    format!("{here}.jitterStrategy"),
                    format!("`jitterStrategy` is `FULL` or `NONE`, not {other}"),
                ),
            }
            out.push(retrier);
        }
        out
    }

    fn catchers(&mut self, map: &Map<String, Value>, at: &str) -> Vec<Catcher> {
        let Some(items) = self.list(map, at, "catch", code::INVALID_VALUE) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let here = format!("{at}.catch[{i}]");
            let Some(c) = self.object(item, &here, "a catcher") else {
                continue;
            };
            self.fields(c, &here, "a catcher", CATCHER_FIELDS);
            out.push(Catcher {
                error_equals: self.error_equals(c, &here, code::INVALID_VALUE),
                result_path: self.optional_path(c, &here, "resultPath"),
                next: self.req_string(c, &here, "next").unwrap_or_default(),
            });
        }
        out
    }

    fn choice(&mut self, map: &Map<String, Value>, at: &str) -> ChoiceState {
        self.fields(map, at, "a Choice state", CHOICE_FIELDS);
        let mut choices = Vec::new();
        if self.required(map, at, "choices").is_some()
            && let Some(items) = self.list(map, at, "choices", code::INVALID_VALUE)
        {
            for (i, item) in items.iter().enumerate() {
                let (rule, next) = self.rule(item, &format!("{at}.choices[{i}]"), true);
                choices.push(ChoiceRule {
                    rule,
                    next: next.unwrap_or_default(),
                });
            }
        }
        ChoiceState {
            choices,
            default: self.opt_string(map, at, "default"),
            input_path: self.optional_path(map, at, "inputPath"),
            output_path: self.optional_path(map, at, "outputPath"),
        }
    }

    /// A rule and, at the top level, its `next`. A rule that cannot be read
    /// is reported and replaced by a placeholder.
    fn rule(&mut self, value: &Value, at: &str, top_level: bool) -> (Rule, Option<String>) {
        let placeholder = Rule::Test {
            variable: Path::root(),
            test: Test::IsPresent(true),
        };
        let Some(map) = self.object(value, at, "a choice rule") else {
            return (placeholder, None);
        };
        let next = if top_level {
            self.req_string(map, at, "next")
        } else {
            None
        };
        let mut keys: Vec<&String> = map.keys().collect();
        keys.sort();
        let combinators: Vec<&str> = ["and", "or", "not"]
            .into_iter()
            .filter(|k| map.contains_key(*k))
            .collect();
        let mut tests: Vec<(&str, TestKey)> = Vec::new();
        for key in keys {
            let key = key.as_str();
            if let Some(test) = parse_key(key) {
                tests.push((key, test));
            } else if key == "next" && !top_level {
                self.fault(
                    code::UNKNOWN_FIELD,
                    child(at, key),
                    "a nested rule has no `next`: only the rules directly under `choices` have one",
                );
            } else if !(key == "variable" || key == "next" || combinators.contains(&key)) {
                self.fault(
                    code::UNKNOWN_FIELD,
                    child(at, key),
                    format!(
                        "unknown field `{key}` in a choice rule; expected `variable` and one comparison \
                         (stringEquals, numericLessThan, isPresent, …), or one of `and`, `or`, `not`{}",
                        if top_level { ", and `next`" } else { "" }
                    ),
                );
            }
        }
        let mut found: Vec<&str> = combinators.clone();
        found.extend(tests.iter().map(|(k, _)| *k));
        if found.len() != 1 {
            let message = if found.is_empty() {
                "a choice rule needs `variable` and exactly one comparison (stringEquals, numericLessThan, \
                 isPresent, …), or one of `and`, `or`, `not`"
                    .to_owned()
            } else {
                format!(
                    "a choice rule has exactly one comparison or combinator; this one has {}",
                    quoted(&found)
                )
            };
            self.fault(code::INVALID_COMPARISON, at, message);
            return (placeholder, next);
        }
        let rule = if let Some(&combinator) = combinators.first() {
            if map.contains_key("variable") {
                self.fault(
                    code::INVALID_COMPARISON,
                    child(at, "variable"),
                    format!("`variable` has no place beside `{combinator}`: the rules within have their own"),
                );
            }
            let here = child(at, combinator);
            let operand = &map[combinator];
            if combinator == "not" {
                Rule::Not(Box::new(self.rule(operand, &here, false).0))
            } else {
                let rules = match operand {
                    Value::Array(items) => items
                        .iter()
                        .enumerate()
                        .map(|(i, item)| self.rule(item, &format!("{here}[{i}]"), false).0)
                        .collect(),
                    other => {
                        self.fault(
                            code::INVALID_VALUE,
                            &here,
                            format!("`{combinator}` takes a list of rules, not {}", kind_of(other)),
                        );
                        self.broken.push(here.clone());
                        Vec::new()
                    }
                };
                if combinator == "and" {
                    Rule::And(rules)
                } else {
                    Rule::Or(rules)
                }
            }
        } else {
            let (key, test) = tests[0];
            let variable = match map.get("variable") {
                Some(v) => self.path(v, &child(at, "variable")),
                None => {
                    self.fault(
                        code::MISSING_FIELD,
                        child(at, "variable"),
                        format!("`{key}` needs `variable`: the path of what it compares"),
                    );
                    None
                }
            };
            let test = self.test(test, key, &map[key], &child(at, key));
            match (variable, test) {
                (Some(variable), Some(test)) => Rule::Test { variable, test },
                _ => placeholder,
            }
        };
        (rule, next)
    }

    fn literal<T>(
        &mut self,
        value: &Value,
        at: &str,
        key: &str,
        expected: &str,
        read: impl Fn(&Value) -> Option<T>,
    ) -> Option<T> {
        if let Some(v) = read(value) {
            return Some(v);
        }
        let message = match value {
            Value::String(s) => format!("`{key}` compares with {expected}; `{s}` is not one"),
            other => format!("`{key}` compares with {expected}, not {}", kind_of(other)),
        };
        self.fault(code::INVALID_COMPARISON, at, message);
        None
    }

    fn operand<T>(
        &mut self,
        value: &Value,
        at: &str,
        key: TestKey,
        name: &str,
        expected: &str,
        read: impl Fn(&Value) -> Option<T>,
    ) -> Option<Operand<T>> {
        if key.path {
            self.path(value, at).map(Operand::Path)
        } else {
            self.literal(value, at, name, expected, read).map(Operand::Value)
        }
    }

    fn test(&mut self, key: TestKey, name: &str, value: &Value, at: &str) -> Option<Test> {
        let string = |v: &Value| v.as_str().map(str::to_owned);
        let flag = |v: &Value| v.as_bool();
        let timestamp_expected = format!("an RFC 3339 timestamp such as {TIMESTAMP_EXAMPLE}");
        Some(match key.kind {
            TestKind::String => Test::String(key.cmp, self.operand(value, at, key, name, "a string", string)?),
            TestKind::Numeric => Test::Numeric(
                key.cmp,
                self.operand(value, at, key, name, "a number", |v| v.as_number().cloned())?,
            ),
            TestKind::Boolean => Test::Boolean(self.operand(value, at, key, name, "true or false", flag)?),
            TestKind::Timestamp => Test::Timestamp(
                key.cmp,
                self.operand(value, at, key, name, &timestamp_expected, |v| {
                    v.as_str().and_then(Timestamp::parse)
                })?,
            ),
            TestKind::StringMatches => {
                Test::StringMatches(self.literal(value, at, name, "a pattern string", string)?)
            }
            TestKind::IsPresent => Test::IsPresent(self.literal(value, at, name, "true or false", flag)?),
            TestKind::IsNull => Test::IsNull(self.literal(value, at, name, "true or false", flag)?),
            TestKind::IsString => Test::IsString(self.literal(value, at, name, "true or false", flag)?),
            TestKind::IsNumeric => Test::IsNumeric(self.literal(value, at, name, "true or false", flag)?),
            TestKind::IsBoolean => Test::IsBoolean(self.literal(value, at, name, "true or false", flag)?),
            TestKind::IsTimestamp => Test::IsTimestamp(self.literal(value, at, name, "true or false", flag)?),
        })
    }

    fn parallel(&mut self, map: &Map<String, Value>, at: &str) -> ParallelState {
        self.fields(map, at, "a Parallel state", PARALLEL_FIELDS);
        let mut branches = Vec::new();
        if self.required(map, at, "branches").is_some()
            && let Some(items) = self.list(map, at, "branches", code::INVALID_VALUE)
        {
            for (i, item) in items.iter().enumerate() {
                let here = format!("{at}.branches[{i}]");
                let Some(b) = self.object(item, &here, "a branch") else {
                    branches.push(Branch::default());
                    continue;
                };
                self.fields(b, &here, "a branch", &["startAt", "states"]);
                let (start_at, states) = self.machine(b, &here);
                branches.push(Branch { start_at, states });
            }
        }
        ParallelState {
            branches,
            input_path: self.optional_path(map, at, "inputPath"),
            result_path: self.optional_path(map, at, "resultPath"),
            output_path: self.optional_path(map, at, "outputPath"),
            timeout_seconds: self.opt_uint(map, at, "timeoutSeconds", code::INVALID_VALUE),
            retry: self.retriers(map, at),
            catch: self.catchers(map, at),
            transition: self.transition(map, at, "Parallel"),
        }
    }

    fn wait(&mut self, map: &Map<String, Value>, at: &str) -> WaitState {
        self.fields(map, at, "a Wait state", WAIT_FIELDS);
        let given: Vec<&str> = WAIT_FOR.iter().copied().filter(|k| map.contains_key(*k)).collect();
        let wait = match given.as_slice() {
            [] => {
                self.fault(
                    code::MISSING_FIELD,
                    at,
                    format!("a Wait state needs exactly one of {}", quoted(WAIT_FOR)),
                );
                None
            }
            [key] => {
                let here = child(at, key);
                let value = &map[*key];
                match *key {
                    "seconds" => self.uint(value, &here, code::INVALID_VALUE).map(WaitFor::Seconds),
                    "timestamp" => match value.as_str().and_then(Timestamp::parse) {
                        Some(t) => Some(WaitFor::Timestamp(t)),
                        None => {
                            self.fault(
                                code::INVALID_VALUE,
                                &here,
                                format!(
                                    "`timestamp` is an RFC 3339 timestamp such as {TIMESTAMP_EXAMPLE}, not {value}"
                                ),
                            );
                            None
                        }
                    },
                    "secondsPath" => self.path(value, &here).map(WaitFor::SecondsPath),
                    _ => self.path(value, &here).map(WaitFor::TimestampPath),
                }
            }
            several => {
                self.fault(
                    code::INVALID_VALUE,
                    at,
                    format!(
                        "a Wait state has exactly one of {}; this one has {}",
                        quoted(WAIT_FOR),
                        quoted(several)
                    ),
                );
                None
            }
        };
        WaitState {
            wait: wait.unwrap_or(WaitFor::Seconds(0)),
            input_path: self.optional_path(map, at, "inputPath"),
            output_path: self.optional_path(map, at, "outputPath"),
            transition: self.transition(map, at, "Wait"),
        }
    }

    fn human_review(&mut self, map: &Map<String, Value>, at: &str) -> HumanReviewState {
        self.fields(map, at, "a HumanReview state", HUMAN_REVIEW_FIELDS);
        HumanReviewState {
            reviewers: self
                .opt_uint(map, at, "reviewers", code::INVALID_VALUE)
                .map_or(1, |n| u32::try_from(n).unwrap_or(u32::MAX)),
            timeout_seconds: self
                .opt_uint(map, at, "timeoutSeconds", code::INVALID_VALUE)
                .unwrap_or(DEFAULT_REVIEW_TIMEOUT_SECONDS),
            prompt: self.opt_string(map, at, "prompt"),
            input_path: self.optional_path(map, at, "inputPath"),
            result_path: self.optional_path(map, at, "resultPath"),
            output_path: self.optional_path(map, at, "outputPath"),
            catch: self.catchers(map, at),
            transition: self.transition(map, at, "HumanReview"),
        }
    }

    fn pass(&mut self, map: &Map<String, Value>, at: &str) -> PassState {
        self.fields(map, at, "a Pass state", PASS_FIELDS);
        PassState {
            result: map.get("result").cloned(),
            parameters: self.template(map, at, "parameters"),
            input_path: self.optional_path(map, at, "inputPath"),
            result_path: self.optional_path(map, at, "resultPath"),
            output_path: self.optional_path(map, at, "outputPath"),
            transition: self.transition(map, at, "Pass"),
        }
    }
}
