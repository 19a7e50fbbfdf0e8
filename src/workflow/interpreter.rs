//! The interpreter: where a run is ([`Position`]) and what moves it
//! ([`advance`]). Pure: it reads no clock, store or kernel. The engine
//! passes the time, fresh ids and random numbers in, delivers what the
//! kernel reported ([`Event`]), and carries out the [`Effect`]s returned:
//! executions to start or cancel, and entries for the ledger.
//!
//! A run is a tree of threads: the top-level machine's, and below a
//! `Parallel` state one per branch. A thread is in one [`Phase`]: ready to
//! run its state, waiting for a kernel execution (`Task`, `HumanReview`), a
//! timer (`Wait`, a retry's back-off, a `Parallel` time-out), its branches,
//! or ended. ASL order for one state: `inputPath`, `parameters`, the work,
//! `resultPath` (combining the result with the state's raw input),
//! `outputPath`, then `next` or the end.
//!
//! Errors: a `Task`'s agent names its error (`Tool.TemporaryFailure`);
//! the interpreter raises `States.*` itself (see [`super::error_names`]).
//! A failed `Parallel` branch fails its state with the branch's own error;
//! `States.BranchFailed` in `errorEquals` matches any error from a branch.
//! Retriers count per retrier and are reset when a state is left.
//!
//! Data is bounded ([`DataLimits`]): a state's input (checked when it is
//! entered), the input it gives an execution, and its output (checked
//! when it is left) stay within `max_bytes` and `max_depth`, or the thread
//! fails with `States.DataLimitExceeded`, which no retrier or catcher takes
//! (a branch failing with it fails its `Parallel` state with it, and so the
//! run). Oversized data is never recorded: the failure's entry names the
//! bound, not the data. One call writes at most about `move_bytes` of
//! entries; the rest waits for the next call, like the state budget.
//!
//! Invariants: the position's size depends on the definition and the data,
//! never on how many transitions the run has made (the ledger keeps the
//! history; [`Position::recent`] is a bounded window of it). The same
//! position, event and inputs give the same result.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::data::{self, DataLimits};
use super::definition::{Definition, State, TaskState, Transition, WaitFor};
use super::error_names::{
    BRANCH_FAILED, DATA_LIMIT_EXCEEDED, NO_CHOICE_MATCHED, PARAMETER_PATH_FAILURE, RESULT_PATH_MATCH_FAILURE, RUNTIME,
    TIMEOUT,
};
use super::path::{OptionalPath, PathError, apply_input_path, apply_output_path, apply_result_path};
use super::{apply_parameters, choose, retry};

/// How many recent transitions a run's position keeps.
pub const RECENT: usize = 32;

/// Where a run is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Position {
    pub root: Thread,
    /// The run's deadline (`spec.timeoutSeconds`), epoch ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<i64>,
    /// Executions no thread waits for any more; cancelled by the engine and
    /// dropped once they have ended.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub abandoned: Vec<String>,
    /// The last [`RECENT`] transitions (kind, state, at): the run's working
    /// history. Everything is in the ledger.
    #[serde(default)]
    pub recent: Vec<Value>,
    /// How many transitions the run has made.
    #[serde(default)]
    pub transitions: u64,
    /// How many ledger entries the run has made (numbering them).
    #[serde(default)]
    pub entries: u64,
}

/// One machine's thread of control.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thread {
    /// The state it is in (of its own machine).
    pub state: String,
    /// That state's raw input.
    pub input: Value,
    /// Retries made by each retrier of the state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retries: Vec<u32>,
    pub phase: Phase,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// About to run its state.
    Ready,
    /// Waiting for a kernel execution (a `Task` or `HumanReview`).
    Execution { execution: String },
    /// A `Wait` state, until epoch ms; `effective` is its input after
    /// `inputPath`.
    Waiting { until: i64, effective: Value },
    /// A retry's back-off: the state runs again at `until`.
    Retrying { until: i64 },
    /// A `Parallel` state's branches, in order.
    Branches {
        branches: Vec<Thread>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deadline: Option<i64>,
    },
    /// The machine ended with this output.
    Succeeded { output: Value },
    /// The machine ended with an error.
    Failed { error: String, cause: String },
}

/// What the kernel reports to a run.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// An execution the run started has ended.
    Ended { execution: String, outcome: Outcome },
    /// Time has passed: fire what is due.
    Timers,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Succeeded(Value),
    Failed { error: String, cause: String },
}

/// What the engine must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Start a kernel execution with this id, for a `Task`.
    Task {
        execution: String,
        state: String,
        task: Box<TaskState>,
        input: Value,
    },
    /// Start a review gate with this id, for a `HumanReview`.
    Review {
        execution: String,
        state: String,
        reviewers: u32,
        timeout_seconds: u64,
        prompt: Option<String>,
        input: Value,
    },
    /// Cancel an execution no thread waits for any more.
    Cancel { execution: String, reason: String },
    /// A ledger entry of the run: `workflow.state.*`.
    Record { kind: &'static str, payload: Value },
}

/// The run's status, read off its position.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Running,
    Succeeded(Value),
    Failed { error: String, cause: String },
}

/// What the engine passes in.
pub struct Inputs<'a> {
    pub now: i64,
    /// A fresh execution id.
    pub new_id: &'a mut dyn FnMut() -> String,
    /// A uniform integer in `0..=n` (retry jitter).
    pub random: &'a mut dyn FnMut(u64) -> u64,
    /// The most states entered in this call; the rest wait for the next
    /// (a loop of `Pass` and `Choice` states cannot hold the engine).
    pub budget: usize,
    /// Bounds on the data, and on the bytes of entries of this call.
    pub limits: DataLimits,
}

/// A run starting with `input`.
pub fn start(definition: &Definition, input: Value, now: i64) -> Position {
    Position {
        root: Thread::ready(definition.spec.start_at.clone(), input),
        deadline: definition.spec.timeout_seconds.map(|s| now + secs_ms(s)),
        abandoned: Vec::new(),
        recent: Vec::new(),
        transitions: 0,
        entries: 0,
    }
}

/// Delivers `event` and runs the run as far as it goes without waiting.
/// Returns the effects, in order, and whether states are left ready (the
/// budget ran out: call again).
pub fn advance(
    definition: &Definition,
    position: &mut Position,
    event: Event,
    inputs: Inputs<'_>,
) -> (Vec<Effect>, bool) {
    let mut run = Run {
        now: inputs.now,
        new_id: inputs.new_id,
        random: inputs.random,
        budget: inputs.budget,
        limits: inputs.limits,
        spent: 0,
        more: false,
        effects: Vec::new(),
        transitions: 0,
    };
    let states = &definition.spec.states;
    if !matches!(status(position), Status::Running) {
        if let Event::Ended { execution, .. } = &event {
            position.abandoned.retain(|e| e != execution);
        }
        return (Vec::new(), false);
    }
    match event {
        Event::Ended { execution, outcome } => {
            if !run.deliver(&mut position.root, states, &execution, outcome) {
                position.abandoned.retain(|e| *e != execution);
            }
        }
        Event::Timers => {
            if position.deadline.is_some_and(|d| d <= run.now) {
                let mut ids = Vec::new();
                executions_of(&position.root, &mut ids);
                for execution in ids {
                    run.cancel(execution, "the workflow timed out");
                }
                run.record(
                    "workflow.run.timed_out",
                    json!({"state": position.root.state, "deadline_at": position.deadline}),
                );
                position.root.phase = Phase::Failed {
                    error: TIMEOUT.into(),
                    cause: "the workflow ran past its timeoutSeconds".into(),
                };
            } else {
                run.fire(&mut position.root, states);
            }
        }
    }
    run.drive(&mut position.root, states);
    for e in &run.effects {
        match e {
            Effect::Cancel { execution, .. } => position.abandoned.push(execution.clone()),
            Effect::Record { kind, payload } => {
                position
                    .recent
                    .push(json!({"kind": kind, "state": payload.get("state"), "at": run.now}));
            }
            _ => {}
        }
    }
    if position.recent.len() > RECENT {
        let cut = position.recent.len() - RECENT;
        position.recent.drain(..cut);
    }
    position.transitions += run.transitions;
    (run.effects, run.more)
}

/// Cancels a run: every execution it waits for, and the run fails.
pub fn cancel(position: &mut Position, reason: &str) -> Vec<Effect> {
    abort(position, "Workflow.Cancelled", reason)
}

/// Ends a run with `error`, cancelling every execution it waits for.
pub fn abort(position: &mut Position, error: &str, cause: &str) -> Vec<Effect> {
    let reason = cause;
    let mut ids = Vec::new();
    executions_of(&position.root, &mut ids);
    let effects: Vec<Effect> = ids
        .into_iter()
        .map(|execution| Effect::Cancel {
            execution,
            reason: reason.to_string(),
        })
        .collect();
    for e in &effects {
        if let Effect::Cancel { execution, .. } = e {
            position.abandoned.push(execution.clone());
        }
    }
    position.root.phase = Phase::Failed {
        error: error.into(),
        cause: cause.to_string(),
    };
    effects
}

/// Whether the run is still going, and how it ended.
pub fn status(position: &Position) -> Status {
    match &position.root.phase {
        Phase::Succeeded { output } => Status::Succeeded(output.clone()),
        Phase::Failed { error, cause } => Status::Failed {
            error: error.clone(),
            cause: cause.clone(),
        },
        _ => Status::Running,
    }
}

/// The earliest timer of a running run (epoch ms), if any.
pub fn next_wake(position: &Position) -> Option<i64> {
    if !matches!(status(position), Status::Running) {
        return None;
    }
    let mut at = position.deadline;
    wakes(&position.root, &mut at);
    at
}

/// Every execution a running thread waits for.
pub fn executions_of(thread: &Thread, out: &mut Vec<String>) {
    match &thread.phase {
        Phase::Execution { execution } => out.push(execution.clone()),
        Phase::Branches { branches, .. } => branches.iter().for_each(|b| executions_of(b, out)),
        _ => {}
    }
}

fn wakes(thread: &Thread, at: &mut Option<i64>) {
    let mut take = |t: i64| *at = Some(at.map_or(t, |a| a.min(t)));
    match &thread.phase {
        Phase::Waiting { until, .. } | Phase::Retrying { until } => take(*until),
        Phase::Branches { branches, deadline } => {
            if let Some(d) = deadline {
                take(*d);
            }
            branches.iter().for_each(|b| wakes(b, at));
        }
        _ => {}
    }
}

fn secs_ms(s: u64) -> i64 {
    (s.min(i64::MAX as u64 / 1000) as i64) * 1000
}

impl Thread {
    fn ready(state: String, input: Value) -> Self {
        Thread {
            state,
            input,
            retries: Vec::new(),
            phase: Phase::Ready,
        }
    }

    fn ended(&self) -> bool {
        matches!(self.phase, Phase::Succeeded { .. } | Phase::Failed { .. })
    }
}

type States = BTreeMap<String, State>;

struct Run<'a> {
    now: i64,
    new_id: &'a mut dyn FnMut() -> String,
    random: &'a mut dyn FnMut(u64) -> u64,
    budget: usize,
    limits: DataLimits,
    /// Bytes of the entries recorded so far in this call.
    spent: usize,
    more: bool,
    effects: Vec<Effect>,
    transitions: u64,
}

/// A state failed: the error name and its cause.
struct Raised {
    error: String,
    cause: String,
}

impl Raised {
    fn new(error: &str, cause: impl Into<String>) -> Self {
        Raised {
            error: error.into(),
            cause: cause.into(),
        }
    }

    fn path(e: PathError, in_parameters: bool) -> Self {
        let error = match &e {
            PathError::ResultPathMismatch { .. } => RESULT_PATH_MATCH_FAILURE,
            _ if in_parameters => PARAMETER_PATH_FAILURE,
            _ => RUNTIME,
        };
        Raised::new(error, e.to_string())
    }
}

impl Run<'_> {
    fn record(&mut self, kind: &'static str, payload: Value) {
        self.spent = self.spent.saturating_add(data::size_of(&payload));
        self.effects.push(Effect::Record { kind, payload });
    }

    /// The thread's data passed a bound: it fails for good, and neither
    /// the data nor the state's input is kept or recorded.
    fn data_limit(&mut self, t: &mut Thread, what: &str, e: data::Exceeded) {
        let cause = format!(
            "{what} of state {} is {e} (the [workflow] limits max_data_bytes and max_data_depth)",
            t.state
        );
        self.record(
            "workflow.state.failed",
            json!({"state": t.state, "error": DATA_LIMIT_EXCEEDED, "cause": cause}),
        );
        t.input = Value::Null;
        t.phase = Phase::Failed {
            error: DATA_LIMIT_EXCEEDED.into(),
            cause,
        };
    }

    fn cancel(&mut self, execution: String, reason: &str) {
        self.effects.push(Effect::Cancel {
            execution,
            reason: reason.into(),
        });
    }

    /// Runs every ready thread of the tree as far as it goes.
    fn drive(&mut self, t: &mut Thread, states: &States) {
        loop {
            match &mut t.phase {
                Phase::Ready => {
                    if self.budget == 0 || self.spent >= self.limits.move_bytes {
                        self.more = true;
                        return;
                    }
                    self.budget -= 1;
                    self.enter(t, states);
                }
                Phase::Branches { branches, .. } => {
                    let Some(State::Parallel(p)) = states.get(&t.state) else {
                        return;
                    };
                    for (b, def) in branches.iter_mut().zip(&p.branches) {
                        self.drive(b, &def.states);
                    }
                    if let Some(i) = branches.iter().position(|b| matches!(b.phase, Phase::Failed { .. })) {
                        let Phase::Failed { error, cause } = branches[i].phase.clone() else {
                            unreachable!("the branch failed")
                        };
                        let mut ids = Vec::new();
                        branches.iter().for_each(|b| executions_of(b, &mut ids));
                        for id in ids {
                            self.cancel(id, "another branch of its Parallel state failed");
                        }
                        self.record(
                            "workflow.branch.failed",
                            json!({"state": t.state, "branch": i, "error": error, "cause": cause}),
                        );
                        self.raise(t, states, Raised { error, cause }, true);
                    } else if branches.iter().all(Thread::ended) {
                        let results: Vec<Value> = branches
                            .iter()
                            .map(|b| match &b.phase {
                                Phase::Succeeded { output } => output.clone(),
                                _ => Value::Null,
                            })
                            .collect();
                        self.finish(t, states, Value::Array(results));
                    } else {
                        return;
                    }
                }
                _ => return,
            }
        }
    }

    /// Runs a ready thread's state.
    fn enter(&mut self, t: &mut Thread, states: &States) {
        let Some(state) = states.get(&t.state) else {
            t.phase = Phase::Failed {
                error: RUNTIME.into(),
                cause: format!("no state {}", t.state),
            };
            return;
        };
        self.transitions += 1;
        if let Err(e) = data::check(&t.input, &self.limits) {
            return self.data_limit(t, "the input", e);
        }
        self.record(
            "workflow.state.entered",
            json!({"state": t.state, "type": state.type_name(), "input": t.input}),
        );
        let effective = match apply_input_path(&t.input, input_path(state)) {
            Ok(v) => v,
            Err(e) => return self.raise(t, states, Raised::path(e, false), false),
        };
        match state {
            State::Pass(p) => {
                let effective = match &p.parameters {
                    Some(tpl) => match apply_parameters(tpl, &effective) {
                        Ok(v) => v,
                        Err(e) => return self.raise(t, states, Raised::path(e, true), false),
                    },
                    None => effective,
                };
                let result = p.result.clone().unwrap_or(effective);
                self.finish(t, states, result);
            }
            State::Choice(c) => match choose(c, &effective) {
                Some(next) => {
                    let next = next.to_string();
                    match apply_output_path(&effective, &c.output_path) {
                        Ok(out) => self.go(t, &next, out),
                        Err(e) => self.raise(t, states, Raised::path(e, false), false),
                    }
                }
                None => self.raise(
                    t,
                    states,
                    Raised::new(NO_CHOICE_MATCHED, "no choice rule matched and the state has no default"),
                    false,
                ),
            },
            State::Succeed(s) => match apply_output_path(&effective, &s.output_path) {
                Ok(output) => self.succeed(t, output),
                Err(e) => self.raise(t, states, Raised::path(e, false), false),
            },
            State::Fail(f) => {
                let cause = f.cause.clone().unwrap_or_default();
                self.record(
                    "workflow.state.failed",
                    json!({"state": t.state, "error": f.error, "cause": cause}),
                );
                t.phase = Phase::Failed {
                    error: f.error.clone(),
                    cause,
                };
            }
            State::Wait(w) => {
                let until = match &w.wait {
                    WaitFor::Seconds(s) => Ok(self.now + secs_ms(*s)),
                    WaitFor::Timestamp(ts) => Ok(ts.instant().timestamp_millis()),
                    WaitFor::SecondsPath(p) => match p.get(&effective).and_then(Value::as_u64) {
                        Some(s) => Ok(self.now + secs_ms(s)),
                        None => Err(Raised::new(
                            RUNTIME,
                            format!("secondsPath `{p}` does not select a non-negative integer"),
                        )),
                    },
                    WaitFor::TimestampPath(p) => {
                        match p
                            .get(&effective)
                            .and_then(Value::as_str)
                            .and_then(super::Timestamp::parse)
                        {
                            Some(ts) => Ok(ts.instant().timestamp_millis()),
                            None => Err(Raised::new(
                                RUNTIME,
                                format!("timestampPath `{p}` does not select an RFC 3339 timestamp"),
                            )),
                        }
                    }
                };
                match until {
                    Ok(until) => t.phase = Phase::Waiting { until, effective },
                    Err(raised) => self.raise(t, states, raised, false),
                }
            }
            State::Task(task) => {
                let effective = match &task.parameters {
                    Some(tpl) => match apply_parameters(tpl, &effective) {
                        Ok(v) => v,
                        Err(e) => return self.raise(t, states, Raised::path(e, true), false),
                    },
                    None => effective,
                };
                match data::check(&effective, &self.limits) {
                    // The execution's creation records its input too.
                    Ok(size) => self.spent = self.spent.saturating_add(size.bytes),
                    Err(e) => return self.data_limit(t, "the input its execution would get", e),
                }
                let execution = (self.new_id)();
                self.effects.push(Effect::Task {
                    execution: execution.clone(),
                    state: t.state.clone(),
                    task: Box::new(task.clone()),
                    input: effective,
                });
                t.phase = Phase::Execution { execution };
            }
            State::HumanReview(h) => {
                let execution = (self.new_id)();
                self.effects.push(Effect::Review {
                    execution: execution.clone(),
                    state: t.state.clone(),
                    reviewers: h.reviewers,
                    timeout_seconds: h.timeout_seconds,
                    prompt: h.prompt.clone(),
                    input: effective,
                });
                t.phase = Phase::Execution { execution };
            }
            State::Parallel(p) => {
                let branches = p
                    .branches
                    .iter()
                    .map(|b| Thread::ready(b.start_at.clone(), effective.clone()))
                    .collect();
                t.phase = Phase::Branches {
                    branches,
                    deadline: p.timeout_seconds.map(|s| self.now + secs_ms(s)),
                };
            }
        }
    }

    /// Takes an ended execution to the thread waiting for it; false when
    /// no thread waits for it.
    fn deliver(&mut self, t: &mut Thread, states: &States, execution: &str, outcome: Outcome) -> bool {
        match &mut t.phase {
            Phase::Execution { execution: e } if e == execution => {
                match outcome {
                    Outcome::Succeeded(result) => self.finish(t, states, result),
                    Outcome::Failed { error, cause } => self.raise(t, states, Raised { error, cause }, false),
                }
                true
            }
            Phase::Branches { branches, .. } => {
                let Some(State::Parallel(p)) = states.get(&t.state) else {
                    return false;
                };
                for (b, def) in branches.iter_mut().zip(&p.branches) {
                    if self.deliver(b, &def.states, execution, outcome.clone()) {
                        return true;
                    }
                }
                false
            }
            _ => false,
        }
    }

    /// Fires the timers that are due.
    fn fire(&mut self, t: &mut Thread, states: &States) {
        let now = self.now;
        match &mut t.phase {
            Phase::Waiting { until, effective } if *until <= now => {
                let effective = std::mem::take(effective);
                let out = match states.get(&t.state) {
                    Some(State::Wait(w)) => apply_output_path(&effective, &w.output_path),
                    _ => Ok(effective),
                };
                match out {
                    Ok(out) => self.transition(t, states, out),
                    Err(e) => self.raise(t, states, Raised::path(e, false), false),
                }
            }
            Phase::Retrying { until } if *until <= now => t.phase = Phase::Ready,
            Phase::Branches { branches, deadline } => {
                if deadline.is_some_and(|d| d <= now) {
                    let mut ids = Vec::new();
                    branches.iter().for_each(|b| executions_of(b, &mut ids));
                    for id in ids {
                        self.cancel(id, "its Parallel state timed out");
                    }
                    let raised = Raised::new(TIMEOUT, "the Parallel state ran past its timeoutSeconds");
                    self.raise(t, states, raised, false);
                    return;
                }
                let Some(State::Parallel(p)) = states.get(&t.state) else {
                    return;
                };
                for (b, def) in branches.iter_mut().zip(&p.branches) {
                    self.fire(b, &def.states);
                }
            }
            _ => {}
        }
    }

    /// The state's work gave `result`: `resultPath`, `outputPath`, then on.
    fn finish(&mut self, t: &mut Thread, states: &States, result: Value) {
        let Some(state) = states.get(&t.state) else {
            return;
        };
        let combined = match result_path(state) {
            Some(rp) => apply_result_path(t.input.clone(), result, rp),
            None => Ok(result),
        };
        let out = combined.and_then(|c| apply_output_path(&c, output_path(state)));
        match out {
            Ok(out) => self.transition(t, states, out),
            Err(e) => self.raise(t, states, Raised::path(e, false), false),
        }
    }

    /// Leaves the state with `output`: to its `next`, or the machine ends.
    fn transition(&mut self, t: &mut Thread, states: &States, output: Value) {
        match states.get(&t.state).and_then(State::transition) {
            Some(Transition::Next(next)) => {
                let next = next.clone();
                self.go(t, &next, output);
            }
            _ => self.succeed(t, output),
        }
    }

    /// The machine ends with `output`.
    fn succeed(&mut self, t: &mut Thread, output: Value) {
        if let Err(e) = data::check(&output, &self.limits) {
            return self.data_limit(t, "the output", e);
        }
        self.record("workflow.state.exited", json!({"state": t.state, "output": output}));
        t.phase = Phase::Succeeded { output };
    }

    fn go(&mut self, t: &mut Thread, next: &str, output: Value) {
        if let Err(e) = data::check(&output, &self.limits) {
            return self.data_limit(t, "the output", e);
        }
        self.record(
            "workflow.state.exited",
            json!({"state": t.state, "next": next, "output": output}),
        );
        *t = Thread::ready(next.to_string(), output);
    }

    /// The state raised an error: retry it, catch it, or the machine fails.
    fn raise(&mut self, t: &mut Thread, states: &States, raised: Raised, from_branch: bool) {
        let Raised { error, cause } = raised;
        if error == DATA_LIMIT_EXCEEDED {
            // Terminal: the run fails, whatever the state's retriers and
            // catchers say (a branch's fails its Parallel state too).
            self.record(
                "workflow.state.failed",
                json!({"state": t.state, "error": error, "cause": cause}),
            );
            t.input = Value::Null;
            t.phase = Phase::Failed { error, cause };
            return;
        }
        let matches = |names: &[String]| {
            retry::matches(names, &error) || (from_branch && names.iter().any(|n| n == BRANCH_FAILED))
        };
        let Some(state) = states.get(&t.state) else {
            t.phase = Phase::Failed { error, cause };
            return;
        };
        let retriers = state.retry();
        if let Some((i, r)) = retriers.iter().enumerate().find(|(_, r)| matches(&r.error_equals)) {
            t.retries.resize(retriers.len(), 0);
            if retry::may_retry(r, t.retries[i]) {
                t.retries[i] += 1;
                let attempt = t.retries[i];
                let delay = retry::delay(r, attempt, &mut *self.random).as_millis() as i64;
                self.record(
                    "workflow.state.retrying",
                    json!({"state": t.state, "error": error, "cause": cause, "retry": attempt,
                        "retrier": i, "delay_ms": delay}),
                );
                t.phase = Phase::Retrying {
                    until: self.now + delay,
                };
                return;
            }
        }
        if let Some(c) = state.catch().iter().find(|c| matches(&c.error_equals)) {
            let error_output = json!({"error": error, "cause": cause});
            match apply_result_path(t.input.clone(), error_output, &c.result_path) {
                Ok(out) => {
                    self.record(
                        "workflow.state.caught",
                        json!({"state": t.state, "error": error, "cause": cause, "next": c.next}),
                    );
                    let next = c.next.clone();
                    self.go(t, &next, out);
                }
                Err(e) => {
                    let r = Raised::path(e, false);
                    self.record(
                        "workflow.state.failed",
                        json!({"state": t.state, "error": r.error, "cause": r.cause}),
                    );
                    t.phase = Phase::Failed {
                        error: r.error,
                        cause: r.cause,
                    };
                }
            }
            return;
        }
        self.record(
            "workflow.state.failed",
            json!({"state": t.state, "error": error, "cause": cause}),
        );
        t.phase = Phase::Failed { error, cause };
    }
}

fn input_path(state: &State) -> &OptionalPath {
    static ABSENT: OptionalPath = OptionalPath::Absent;
    match state {
        State::Task(s) => &s.input_path,
        State::Choice(s) => &s.input_path,
        State::Parallel(s) => &s.input_path,
        State::Wait(s) => &s.input_path,
        State::HumanReview(s) => &s.input_path,
        State::Pass(s) => &s.input_path,
        State::Succeed(s) => &s.input_path,
        State::Fail(_) => &ABSENT,
    }
}

fn output_path(state: &State) -> &OptionalPath {
    static ABSENT: OptionalPath = OptionalPath::Absent;
    match state {
        State::Task(s) => &s.output_path,
        State::Choice(s) => &s.output_path,
        State::Parallel(s) => &s.output_path,
        State::Wait(s) => &s.output_path,
        State::HumanReview(s) => &s.output_path,
        State::Pass(s) => &s.output_path,
        State::Succeed(s) => &s.output_path,
        State::Fail(_) => &ABSENT,
    }
}

/// `resultPath`, for the states that produce a result.
fn result_path(state: &State) -> Option<&OptionalPath> {
    match state {
        State::Task(s) => Some(&s.result_path),
        State::Parallel(s) => Some(&s.result_path),
        State::HumanReview(s) => Some(&s.result_path),
        State::Pass(s) => Some(&s.result_path),
        _ => None,
    }
}
