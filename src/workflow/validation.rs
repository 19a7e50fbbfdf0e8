//! What a typed definition means: names, ranges, error names, `parameters`
//! templates, transitions, reachability, termination and limits, for the
//! workflow and, the same way, for every branch of every `Parallel` state.
//!
//! Invariants: no IO; every fault is reported (none stops the walk); states
//! are visited by name, so the order of faults is deterministic. A branch is
//! a machine of its own: its transitions must stay within it. A machine with
//! states that could not be read (`omitted`) still has its transitions
//! checked, but not its reachability or termination; one with a transition
//! to no state is not judged on termination (the unknown target is the
//! fault reported).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::choice::{Rule, Test, check_pattern};
use super::decode::Omitted;
use super::definition::{
    API_VERSION, Catcher, Definition, DefinitionError, KIND, MAX_ATTEMPTS, MAX_DELAY_SECONDS, MAX_NAME_LEN,
    MAX_PARALLEL_DEPTH, MAX_REVIEWERS, MAX_SECONDS, MAX_STATE_NAME_LEN, MAX_STATES, MAX_TEXT_LEN, Retrier, State,
    WaitFor, code,
};
use super::{error_names, parameters};

pub(crate) fn check(definition: &Definition, omitted: &Omitted) -> Vec<DefinitionError> {
    let mut v = Validator {
        errors: Vec::new(),
        omitted,
        states: 0,
    };
    if definition.api_version != API_VERSION {
        v.fault(
            code::UNSUPPORTED_API_VERSION,
            "apiVersion",
            format!("`{}` is not supported: use `{API_VERSION}`", definition.api_version),
        );
    }
    if definition.kind != KIND {
        v.fault(
            code::UNSUPPORTED_KIND,
            "kind",
            format!("`{}` is not supported: use `{KIND}`", definition.kind),
        );
    }
    if let Err(why) = check_workflow_name(&definition.metadata.name) {
        v.fault(code::INVALID_NAME, "metadata.name", why);
    }
    if let Some(d) = &definition.metadata.description {
        v.text("metadata.description", d);
    }
    v.timeout("spec.timeoutSeconds", definition.spec.timeout_seconds);
    v.machine("spec", &definition.spec.start_at, &definition.spec.states, 0);
    if v.states > MAX_STATES {
        v.fault(
            code::TOO_MANY_STATES,
            "spec.states",
            format!(
                "the workflow has {} states, branches included; the most is {MAX_STATES}",
                v.states
            ),
        );
    }
    v.errors
}

/// `metadata.name`: 1 to 128 of `[a-z0-9-]`, starting with a letter.
pub(crate) fn check_workflow_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(format!("a workflow name has 1 to {MAX_NAME_LEN} characters"));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(format!("`{name}` must start with a lowercase letter"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "`{name}` has `{c}`: a workflow name has only lowercase letters, digits and `-`"
        ));
    }
    Ok(())
}

fn check_state_name(name: &str) -> Result<(), String> {
    let len = name.chars().count();
    if len == 0 || len > MAX_STATE_NAME_LEN {
        return Err(format!("a state name has 1 to {MAX_STATE_NAME_LEN} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(format!("state name {name:?} has control characters"));
    }
    Ok(())
}

/// Everything reachable from `from` by `next` (the starts included).
fn closure<'a, F>(from: impl IntoIterator<Item = &'a str>, next: F) -> BTreeSet<&'a str>
where
    F: Fn(&'a str) -> Vec<&'a str>,
{
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut queue: VecDeque<&str> = VecDeque::new();
    for name in from {
        if seen.insert(name) {
            queue.push_back(name);
        }
    }
    while let Some(name) = queue.pop_front() {
        for target in next(name) {
            if seen.insert(target) {
                queue.push_back(target);
            }
        }
    }
    seen
}

struct Validator<'a> {
    errors: Vec<DefinitionError>,
    omitted: &'a Omitted,
    /// States seen, in all machines.
    states: usize,
}

impl Validator<'_> {
    fn fault(&mut self, code: &'static str, at: impl Into<String>, message: impl Into<String>) {
        self.errors.push(DefinitionError::new(code, at, message));
    }

    fn text(&mut self, at: &str, text: &str) {
        if text.chars().count() > MAX_TEXT_LEN {
            self.fault(code::INVALID_VALUE, at, format!("at most {MAX_TEXT_LEN} characters"));
        }
    }

    fn timeout(&mut self, at: &str, seconds: Option<u64>) {
        if let Some(s) = seconds
            && !(1..=MAX_SECONDS).contains(&s)
        {
            self.fault(
                code::INVALID_VALUE,
                at,
                format!("{s} is out of range: from 1 to {MAX_SECONDS} seconds"),
            );
        }
    }

    /// The workflow (`at` = `spec`, depth 0) or a branch.
    fn machine(&mut self, at: &str, start_at: &str, states: &BTreeMap<String, State>, depth: usize) {
        self.states += states.len();
        let omitted = self.omitted.get(at);
        let complete = omitted.is_none_or(BTreeSet::is_empty);
        let exists = |name: &str| states.contains_key(name) || omitted.is_some_and(|o| o.contains(name));
        let what = if depth == 0 { "the workflow" } else { "this branch" };
        if states.is_empty() && complete {
            self.fault(
                code::INVALID_VALUE,
                format!("{at}.states"),
                format!("{what} has no states: add at least one"),
            );
        }
        if !exists(start_at) {
            self.fault(
                code::UNKNOWN_START_STATE,
                format!("{at}.startAt"),
                format!("`startAt` is `{start_at}`, which is not a state of {what}"),
            );
        }
        let mut dangling = false;
        for (name, state) in states {
            let here = format!("{at}.states.{name}");
            if let Err(why) = check_state_name(name) {
                self.fault(code::INVALID_NAME, &here, why);
            }
            self.state(&here, state, depth);
            for (target, field) in state.targets() {
                if !exists(target) {
                    dangling = true;
                    let hint = if depth == 0 {
                        ""
                    } else {
                        ": a branch's states go only to states of the same branch"
                    };
                    self.fault(
                        code::UNKNOWN_NEXT,
                        format!("{here}.{field}"),
                        format!("state `{name}` goes to `{target}`, which is not a state of {what}{hint}"),
                    );
                }
            }
        }
        if complete && states.contains_key(start_at) {
            self.graph(at, start_at, states, !dangling);
        }
    }

    /// Reachability from `startAt`, and (unless a transition goes nowhere,
    /// which may have been meant as an end) that every reachable state can
    /// end.
    fn graph(&mut self, at: &str, start_at: &str, states: &BTreeMap<String, State>, termination: bool) {
        // Each state's targets that are states of this machine.
        let edges: BTreeMap<&str, Vec<&str>> = states
            .iter()
            .map(|(name, state)| {
                let targets = state
                    .targets()
                    .into_iter()
                    .filter_map(|(t, _)| states.get_key_value(t).map(|(k, _)| k.as_str()))
                    .collect();
                (name.as_str(), targets)
            })
            .collect();
        let reachable = closure([start_at], |name| edges[name].clone());
        for name in states.keys() {
            if !reachable.contains(name.as_str()) {
                self.fault(
                    code::UNREACHABLE_STATE,
                    format!("{at}.states.{name}"),
                    format!(
                        "state `{name}` is not reachable from `startAt` (`{start_at}`) by any `next`, `default`, \
                         choice or catch: remove it, or go to it from another state"
                    ),
                );
            }
        }
        if !termination {
            return;
        }
        // The states from which an end can be reached: the ends, and
        // whatever goes to one of them, backwards.
        let mut sources: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (from, targets) in &edges {
            for to in targets {
                sources.entry(*to).or_default().push(*from);
            }
        }
        let ends = states.iter().filter(|(_, s)| s.is_terminal()).map(|(n, _)| n.as_str());
        let can_end = closure(ends, |name| sources.get(name).cloned().unwrap_or_default());
        if !can_end.contains(start_at) {
            self.fault(
                code::NO_TERMINAL_STATE,
                at,
                format!(
                    "no path from `startAt` (`{start_at}`) reaches an end: give a state `end: true`, or go to a \
                     Succeed or Fail state"
                ),
            );
            return;
        }
        for name in reachable {
            if !can_end.contains(name) {
                self.fault(
                    code::NO_TERMINAL_STATE,
                    format!("{at}.states.{name}"),
                    format!("no path from state `{name}` reaches an end (`end: true`, Succeed or Fail): it never ends"),
                );
            }
        }
    }

    fn state(&mut self, at: &str, state: &State, depth: usize) {
        match state {
            State::Task(t) => {
                // The agent's id on the kernel: its streams are named by it.
                if crate::model::kernel::agent_fault("agent", &t.agent).is_some() {
                    self.fault(
                        code::INVALID_VALUE,
                        format!("{at}.agent"),
                        "`agent` is the kernel id of the agent, such as an image reference \
                         `ghcr.io/org/agent@sha256:…`: 1 to 200 of letters, digits and . _ : - @ /, \
                         not starting with `warden.`",
                    );
                }
                if let Some(skill) = &t.skill
                    && (skill.id.is_empty() || skill.id.chars().any(|c| c.is_whitespace() || c.is_control()))
                {
                    self.fault(
                        code::INVALID_VALUE,
                        format!("{at}.skill.id"),
                        "a skill id is not empty, no spaces",
                    );
                }
                self.template(at, t.parameters.as_ref());
                self.timeout(&format!("{at}.timeoutSeconds"), t.timeout_seconds);
                self.retriers(at, &t.retry);
                self.catchers(at, &t.catch);
            }
            State::Choice(c) => {
                if c.choices.is_empty() {
                    self.fault(
                        code::INVALID_VALUE,
                        format!("{at}.choices"),
                        "a Choice state needs at least one rule",
                    );
                }
                for (i, choice) in c.choices.iter().enumerate() {
                    self.rule(&format!("{at}.choices[{i}]"), &choice.rule);
                }
            }
            State::Parallel(p) => {
                if p.branches.is_empty() {
                    self.fault(
                        code::INVALID_VALUE,
                        format!("{at}.branches"),
                        "a Parallel state needs at least one branch",
                    );
                }
                self.timeout(&format!("{at}.timeoutSeconds"), p.timeout_seconds);
                self.retriers(at, &p.retry);
                self.catchers(at, &p.catch);
                if depth + 1 > MAX_PARALLEL_DEPTH {
                    self.fault(
                        code::TOO_MANY_STATES,
                        at,
                        format!(
                            "Parallel states nest at most {MAX_PARALLEL_DEPTH} deep; this one is at depth {}",
                            depth + 1
                        ),
                    );
                    return;
                }
                for (i, branch) in p.branches.iter().enumerate() {
                    self.machine(
                        &format!("{at}.branches[{i}]"),
                        &branch.start_at,
                        &branch.states,
                        depth + 1,
                    );
                }
            }
            State::Wait(w) => {
                if let WaitFor::Seconds(s) = w.wait
                    && s > MAX_SECONDS
                {
                    self.fault(
                        code::INVALID_VALUE,
                        format!("{at}.seconds"),
                        format!("{s} is out of range: from 0 to {MAX_SECONDS}"),
                    );
                }
            }
            State::HumanReview(h) => {
                if !(1..=MAX_REVIEWERS).contains(&h.reviewers) {
                    self.fault(
                        code::INVALID_VALUE,
                        format!("{at}.reviewers"),
                        format!("{} is out of range: from 1 to {MAX_REVIEWERS} reviewers", h.reviewers),
                    );
                }
                self.timeout(&format!("{at}.timeoutSeconds"), Some(h.timeout_seconds));
                if let Some(p) = &h.prompt {
                    self.text(&format!("{at}.prompt"), p);
                }
                self.catchers(at, &h.catch);
            }
            State::Pass(p) => self.template(at, p.parameters.as_ref()),
            State::Succeed(_) => {}
            State::Fail(f) => {
                let here = format!("{at}.error");
                match error_names::check(&f.error) {
                    Err(why) => self.fault(code::INVALID_ERROR_NAME, here, why),
                    Ok(()) if f.error == error_names::ALL => {
                        self.fault(code::INVALID_ERROR_NAME, here, "a Fail state cannot raise `States.ALL`")
                    }
                    Ok(()) => {}
                }
                if let Some(c) = &f.cause {
                    self.text(&format!("{at}.cause"), c);
                }
            }
        }
    }

    fn template(&mut self, at: &str, template: Option<&serde_json::Value>) {
        let Some(template) = template else {
            return;
        };
        let here = format!("{at}.parameters");
        if !template.is_object() {
            self.fault(code::INVALID_VALUE, here, "`parameters` is a mapping");
            return;
        }
        for fault in parameters::check(template, &here) {
            let code = if fault.bad_path {
                code::INVALID_PATH
            } else {
                code::INVALID_VALUE
            };
            self.fault(code, fault.at, fault.message);
        }
    }

    fn rule(&mut self, at: &str, rule: &Rule) {
        match rule {
            Rule::And(rules) | Rule::Or(rules) => {
                let key = if matches!(rule, Rule::And(_)) { "and" } else { "or" };
                if rules.is_empty() {
                    self.fault(
                        code::INVALID_VALUE,
                        format!("{at}.{key}"),
                        format!("`{key}` needs at least one rule"),
                    );
                }
                for (i, r) in rules.iter().enumerate() {
                    self.rule(&format!("{at}.{key}[{i}]"), r);
                }
            }
            Rule::Not(r) => self.rule(&format!("{at}.not"), r),
            Rule::Test {
                test: Test::StringMatches(pattern),
                ..
            } => {
                if let Err(why) = check_pattern(pattern) {
                    self.fault(code::INVALID_COMPARISON, format!("{at}.stringMatches"), why);
                }
            }
            Rule::Test { .. } => {}
        }
    }

    /// The names of one `errorEquals`, and whether it has `States.ALL`.
    fn error_equals(&mut self, at: &str, names: &[String], empty_code: &'static str) -> bool {
        let here = format!("{at}.errorEquals");
        if names.is_empty() {
            self.fault(empty_code, &here, "`errorEquals` needs at least one error name");
        }
        for (i, name) in names.iter().enumerate() {
            if let Err(why) = error_names::check(name) {
                self.fault(code::INVALID_ERROR_NAME, format!("{here}[{i}]"), why);
            } else if name == error_names::DATA_LIMIT_EXCEEDED {
                self.fault(
                    code::INVALID_ERROR_NAME,
                    format!("{here}[{i}]"),
                    "`States.DataLimitExceeded` is terminal: the run fails, and no retrier or catcher takes it",
                );
            }
        }
        let has_all = names.iter().any(|n| n == error_names::ALL);
        if has_all && names.len() > 1 {
            self.fault(
                code::INVALID_ERROR_NAME,
                &here,
                "`States.ALL` must be alone in its `errorEquals`: it already matches every error",
            );
        }
        has_all
    }

    fn retriers(&mut self, at: &str, retry: &[Retrier]) {
        for (i, r) in retry.iter().enumerate() {
            let here = format!("{at}.retry[{i}]");
            if self.error_equals(&here, &r.error_equals, code::INVALID_RETRY) && i + 1 != retry.len() {
                self.fault(
                    code::STATES_ALL_NOT_LAST,
                    format!("{here}.errorEquals"),
                    "the retrier with `States.ALL` must be the last: the ones after it would never be used",
                );
            }
            if !(1..=MAX_SECONDS).contains(&r.interval_seconds) {
                self.fault(
                    code::INVALID_RETRY,
                    format!("{here}.intervalSeconds"),
                    format!("{} is out of range: from 1 to {MAX_SECONDS}", r.interval_seconds),
                );
            }
            if r.max_attempts > MAX_ATTEMPTS {
                self.fault(
                    code::INVALID_RETRY,
                    format!("{here}.maxAttempts"),
                    format!("{} is out of range: from 0 to {MAX_ATTEMPTS}", r.max_attempts),
                );
            }
            if !(r.backoff_rate.is_finite() && r.backoff_rate >= 1.0) {
                self.fault(
                    code::INVALID_RETRY,
                    format!("{here}.backoffRate"),
                    format!("{} is out of range: a number ≥ 1.0", r.backoff_rate),
                );
            }
            if let Some(m) = r.max_delay_seconds
                && !(1..=MAX_DELAY_SECONDS).contains(&m)
            {
                self.fault(
                    code::INVALID_RETRY,
                    format!("{here}.maxDelaySeconds"),
                    format!("{m} is out of range: from 1 to {MAX_DELAY_SECONDS}"),
                );
            }
        }
    }

    fn catchers(&mut self, at: &str, catch: &[Catcher]) {
        for (i, c) in catch.iter().enumerate() {
            let here = format!("{at}.catch[{i}]");
            if self.error_equals(&here, &c.error_equals, code::INVALID_VALUE) && i + 1 != catch.len() {
                self.fault(
                    code::STATES_ALL_NOT_LAST,
                    format!("{here}.errorEquals"),
                    "the catcher with `States.ALL` must be the last: the ones after it would never be used",
                );
            }
        }
    }
}
