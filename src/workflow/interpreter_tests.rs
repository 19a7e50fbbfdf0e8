//! The interpreter on its own: every state type, retries, catchers,
//! time-outs, branches, and a long run whose position stays bounded.

use serde_json::{Value, json};

use super::data::DataLimits;
use super::definition::Definition;
use super::interpreter::{self, Effect, Event, Inputs, Outcome, Phase, Position, Status};

fn def(start: &str, states: Value) -> Definition {
    super::from_value(&json!({
        "apiVersion": "agentrc.workflow/v0.1",
        "kind": "AgentWorkflow",
        "metadata": {"name": "t"},
        "spec": {"startAt": start, "states": states},
    }))
    .unwrap_or_else(|e| panic!("{e:?}"))
}

/// A run under test: its position, the time, and ids handed out in order.
struct Harness {
    d: Definition,
    pos: Position,
    now: i64,
    ids: u32,
    limits: DataLimits,
}

impl Harness {
    fn new(d: Definition, input: Value) -> Self {
        let pos = interpreter::start(&d, input, 1_000);
        Harness {
            d,
            pos,
            now: 1_000,
            ids: 0,
            limits: DataLimits::default(),
        }
    }

    fn go(&mut self, event: Event) -> Vec<Effect> {
        let mut ids = self.ids;
        let mut new_id = || {
            ids += 1;
            format!("exe_{ids}")
        };
        // Jitter draws the top of its range, so delays are exact.
        let mut random = |n: u64| n;
        let (effects, more) = interpreter::advance(
            &self.d,
            &mut self.pos,
            event,
            Inputs {
                now: self.now,
                new_id: &mut new_id,
                random: &mut random,
                budget: 10_000,
                limits: self.limits,
            },
        );
        self.ids = ids;
        assert!(!more, "nothing here needs more than one call");
        effects
    }

    fn timers(&mut self) -> Vec<Effect> {
        self.go(Event::Timers)
    }

    fn ok(&mut self, execution: &str, result: Value) -> Vec<Effect> {
        self.go(Event::Ended {
            execution: execution.into(),
            outcome: Outcome::Succeeded(result),
        })
    }

    fn err(&mut self, execution: &str, error: &str) -> Vec<Effect> {
        self.go(Event::Ended {
            execution: execution.into(),
            outcome: Outcome::Failed {
                error: error.into(),
                cause: format!("{error} happened"),
            },
        })
    }

    fn status(&self) -> Status {
        interpreter::status(&self.pos)
    }
}

/// The executions started, as (id, state, input).
fn started(effects: &[Effect]) -> Vec<(String, String, Value)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Task {
                execution,
                state,
                input,
                ..
            }
            | Effect::Review {
                execution,
                state,
                input,
                ..
            } => Some((execution.clone(), state.clone(), input.clone())),
            _ => None,
        })
        .collect()
}

fn cancelled(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Cancel { execution, .. } => Some(execution.clone()),
            _ => None,
        })
        .collect()
}

fn kinds(effects: &[Effect]) -> Vec<&'static str> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Record { kind, .. } => Some(*kind),
            _ => None,
        })
        .collect()
}

#[test]
fn pass_and_succeed_apply_paths_in_asl_order() {
    let d = def(
        "P",
        json!({
            "P": {"type": "Pass", "inputPath": "$.a", "parameters": {"x.$": "$.b", "k": 1},
                  "resultPath": "$.p", "outputPath": "$.p", "next": "S"},
            "S": {"type": "Succeed", "outputPath": "$.x"}
        }),
    );
    let mut h = Harness::new(d, json!({"a": {"b": "hello"}}));
    let effects = h.timers();
    assert_eq!(h.status(), Status::Succeeded(json!("hello")));
    assert_eq!(
        kinds(&effects),
        [
            "workflow.state.entered",
            "workflow.state.exited",
            "workflow.state.entered",
            "workflow.state.exited"
        ]
    );
    assert_eq!(h.pos.transitions, 2);
}

#[test]
fn choice_takes_the_first_match_then_the_default_and_fails_without_one() {
    let states = json!({
        "C": {"type": "Choice", "choices": [
            {"variable": "$.n", "numericGreaterThan": 10, "next": "Big"},
            {"and": [{"variable": "$.s", "stringEquals": "x"}, {"not": {"variable": "$.b", "booleanEquals": true}}],
             "next": "X"}
        ], "default": "Other"},
        "Big": {"type": "Pass", "result": "big", "end": true},
        "X": {"type": "Pass", "result": "x", "end": true},
        "Other": {"type": "Pass", "result": "other", "end": true}
    });
    for (input, out) in [
        (json!({"n": 11}), "big"),
        (json!({"n": 1, "s": "x", "b": false}), "x"),
        (json!({"n": 1, "s": "x", "b": true}), "other"),
    ] {
        let mut h = Harness::new(def("C", states.clone()), input);
        h.timers();
        assert_eq!(h.status(), Status::Succeeded(json!(out)));
    }
    let d = def(
        "C",
        json!({
            "C": {"type": "Choice", "choices": [{"variable": "$.n", "numericEquals": 1, "next": "E"}]},
            "E": {"type": "Succeed"}
        }),
    );
    let mut h = Harness::new(d, json!({"n": 2}));
    h.timers();
    assert!(matches!(h.status(), Status::Failed { error, .. } if error == "States.NoChoiceMatched"));
}

#[test]
fn fail_ends_the_run_with_its_error_and_cause() {
    let d = def(
        "F",
        json!({"F": {"type": "Fail", "error": "Claim.Invalid", "cause": "no policy number"}}),
    );
    let mut h = Harness::new(d, json!({}));
    h.timers();
    assert_eq!(
        h.status(),
        Status::Failed {
            error: "Claim.Invalid".into(),
            cause: "no policy number".into()
        }
    );
}

#[test]
fn a_task_starts_one_execution_and_its_result_goes_to_result_path() {
    let d = def(
        "T",
        json!({
            "T": {"type": "Task", "agent": "triage", "inputPath": "$.claim", "resultPath": "$.triage",
                  "timeoutSeconds": 120, "next": "S"},
            "S": {"type": "Succeed"}
        }),
    );
    let mut h = Harness::new(d, json!({"claim": {"id": 7}}));
    let effects = h.timers();
    assert_eq!(started(&effects), [("exe_1".into(), "T".into(), json!({"id": 7}))]);
    let Effect::Task { task, .. } = &effects[1] else {
        panic!("{effects:?}")
    };
    assert_eq!((task.agent.as_str(), task.timeout_seconds), ("triage", Some(120)));
    // Another execution ending is nothing to this run.
    assert!(h.ok("exe_9", json!(1)).is_empty());
    h.ok("exe_1", json!({"risk": "low"}));
    assert_eq!(
        h.status(),
        Status::Succeeded(json!({"claim": {"id": 7}, "triage": {"risk": "low"}}))
    );
}

const RETRYING: &str = r#"{
  "T": {"type": "Task", "agent": "a", "retry": [
          {"errorEquals": ["Tool.TemporaryFailure"], "intervalSeconds": 2, "maxAttempts": 2, "backoffRate": 3.0}],
        "catch": [{"errorEquals": ["States.ALL"], "resultPath": "$.error", "next": "Recover"}],
        "next": "Done"},
  "Recover": {"type": "Pass", "end": true},
  "Done": {"type": "Succeed"}
}"#;

#[test]
fn a_retried_task_backs_off_then_succeeds() {
    let d = def("T", serde_json::from_str(RETRYING).unwrap());
    let mut h = Harness::new(d, json!({"k": 1}));
    h.timers();
    let e = h.err("exe_1", "Tool.TemporaryFailure");
    assert_eq!(kinds(&e), ["workflow.state.retrying"]);
    assert_eq!(interpreter::next_wake(&h.pos), Some(h.now + 2_000));
    h.now += 1_999;
    assert!(started(&h.timers()).is_empty(), "not before the back-off");
    h.now += 1;
    let e = h.timers();
    assert_eq!(started(&e), [("exe_2".into(), "T".into(), json!({"k": 1}))]);
    h.ok("exe_2", json!({"ok": true}));
    assert_eq!(h.status(), Status::Succeeded(json!({"ok": true})));
}

#[test]
fn retries_exhausted_go_to_the_catcher_with_the_error_output() {
    let d = def("T", serde_json::from_str(RETRYING).unwrap());
    let mut h = Harness::new(d, json!({"k": 1}));
    h.timers();
    h.err("exe_1", "Tool.TemporaryFailure");
    h.now += 2_000;
    h.timers();
    h.err("exe_2", "Tool.TemporaryFailure");
    // Second retry: 2 s × 3.
    assert_eq!(interpreter::next_wake(&h.pos), Some(h.now + 6_000));
    h.now += 6_000;
    h.timers();
    let e = h.err("exe_3", "Tool.TemporaryFailure");
    assert_eq!(
        kinds(&e),
        [
            "workflow.state.caught",
            "workflow.state.exited",
            "workflow.state.entered",
            "workflow.state.exited"
        ]
    );
    assert_eq!(
        h.status(),
        Status::Succeeded(json!({"k": 1, "error": {"error": "Tool.TemporaryFailure",
            "cause": "Tool.TemporaryFailure happened"}}))
    );
}

#[test]
fn an_error_no_retrier_takes_is_caught_at_once() {
    let d = def("T", serde_json::from_str(RETRYING).unwrap());
    let mut h = Harness::new(d, json!({}));
    h.timers();
    h.err("exe_1", "States.Timeout");
    assert!(matches!(h.status(), Status::Succeeded(v) if v["error"]["error"] == "States.Timeout"));
}

#[test]
fn an_uncaught_error_fails_the_run() {
    let d = def("T", json!({"T": {"type": "Task", "agent": "a", "end": true}}));
    let mut h = Harness::new(d, json!({}));
    h.timers();
    let e = h.err("exe_1", "States.TaskFailed");
    assert_eq!(kinds(&e), ["workflow.state.failed"]);
    assert!(matches!(h.status(), Status::Failed { error, .. } if error == "States.TaskFailed"));
}

#[test]
fn wait_for_seconds_and_until_a_timestamp_from_the_input() {
    let d = def(
        "W",
        json!({
            "W": {"type": "Wait", "seconds": 5, "next": "W2"},
            "W2": {"type": "Wait", "timestampPath": "$.at", "outputPath": "$.keep", "end": true}
        }),
    );
    let mut h = Harness::new(d, json!({"at": "1970-01-01T00:00:10Z", "keep": 3}));
    h.timers();
    assert_eq!(interpreter::next_wake(&h.pos), Some(6_000));
    h.now = 5_999;
    h.timers();
    assert!(matches!(h.pos.root.phase, Phase::Waiting { .. }));
    h.now = 6_000;
    h.timers();
    assert_eq!(
        (h.pos.root.state.as_str(), interpreter::next_wake(&h.pos)),
        ("W2", Some(10_000))
    );
    h.now = 10_000;
    h.timers();
    assert_eq!(h.status(), Status::Succeeded(json!(3)));
}

const PARALLEL: &str = r#"{
  "P": {"type": "Parallel", "resultPath": "$.results", "branches": [
          {"startAt": "A", "states": {"A": {"type": "Task", "agent": "a", "end": true}}},
          {"startAt": "B", "states": {
              "B": {"type": "Task", "agent": "b", "next": "B2"},
              "B2": {"type": "Pass", "result": "b2", "end": true}}}
        ],
        "catch": [{"errorEquals": ["States.BranchFailed"], "resultPath": "$.failure", "next": "Failed"}],
        "next": "Done"},
  "Failed": {"type": "Pass", "end": true},
  "Done": {"type": "Succeed"}
}"#;

#[test]
fn parallel_branches_give_an_array_in_branch_order() {
    let d = def("P", serde_json::from_str(PARALLEL).unwrap());
    let mut h = Harness::new(d, json!({"x": 1}));
    let e = h.timers();
    assert_eq!(
        started(&e),
        [
            ("exe_1".into(), "A".into(), json!({"x": 1})),
            ("exe_2".into(), "B".into(), json!({"x": 1}))
        ]
    );
    h.ok("exe_2", json!("b"));
    assert_eq!(h.status(), Status::Running);
    h.ok("exe_1", json!("a"));
    assert_eq!(h.status(), Status::Succeeded(json!({"x": 1, "results": ["a", "b2"]})));
}

#[test]
fn a_failing_branch_cancels_the_others_and_the_parallel_state_catches_it() {
    let d = def("P", serde_json::from_str(PARALLEL).unwrap());
    let mut h = Harness::new(d, json!({"x": 1}));
    h.timers();
    let e = h.err("exe_2", "Tool.Broken");
    assert_eq!(cancelled(&e), ["exe_1"]);
    assert_eq!(h.pos.abandoned, ["exe_1"]);
    assert_eq!(
        h.status(),
        Status::Succeeded(json!({"x": 1, "failure": {"error": "Tool.Broken", "cause": "Tool.Broken happened"}}))
    );
    // The cancelled branch's end is taken in and forgotten.
    assert!(h.ok("exe_1", json!("late")).is_empty());
    assert!(h.pos.abandoned.is_empty());
}

#[test]
fn a_parallel_state_times_out() {
    let mut states: Value = serde_json::from_str(PARALLEL).unwrap();
    states["P"]["timeoutSeconds"] = json!(30);
    states["P"]["catch"] = json!([{"errorEquals": ["States.Timeout"], "next": "Failed"}]);
    let mut h = Harness::new(def("P", states), json!({}));
    h.timers();
    assert_eq!(interpreter::next_wake(&h.pos), Some(31_000));
    h.now = 31_000;
    let e = h.timers();
    assert_eq!(cancelled(&e), ["exe_1", "exe_2"]);
    assert!(matches!(h.status(), Status::Succeeded(v) if v["error"] == "States.Timeout"));
}

#[test]
fn a_human_review_starts_a_gate_and_a_rejection_is_caught() {
    let d = def(
        "R",
        json!({
            "R": {"type": "HumanReview", "reviewers": 2, "timeoutSeconds": 60, "prompt": "pay out?",
                  "resultPath": "$.review",
                  "catch": [{"errorEquals": ["States.Rejected"], "next": "No"}], "next": "Yes"},
            "Yes": {"type": "Succeed"},
            "No": {"type": "Fail", "error": "Claim.Rejected"}
        }),
    );
    let mut h = Harness::new(d.clone(), json!({"amount": 10}));
    let e = h.timers();
    match &e[1] {
        Effect::Review {
            reviewers,
            timeout_seconds,
            prompt,
            input,
            ..
        } => assert_eq!(
            (*reviewers, *timeout_seconds, prompt.as_deref(), input),
            (2, 60, Some("pay out?"), &json!({"amount": 10}))
        ),
        other => panic!("{other:?}"),
    }
    h.err("exe_1", "States.Rejected");
    assert!(matches!(h.status(), Status::Failed { error, .. } if error == "Claim.Rejected"));

    let mut h = Harness::new(d, json!({"amount": 10}));
    h.timers();
    h.ok("exe_1", json!({"approved": true, "reviewers": ["r1", "r2"]}));
    assert_eq!(
        h.status(),
        Status::Succeeded(json!({"amount": 10, "review": {"approved": true, "reviewers": ["r1", "r2"]}}))
    );
}

#[test]
fn the_workflow_times_out_and_cancels_what_it_waits_for() {
    let mut d = def("T", json!({"T": {"type": "Task", "agent": "a", "end": true}}));
    d.spec.timeout_seconds = Some(10);
    let mut h = Harness::new(d, json!({}));
    h.timers();
    assert_eq!(interpreter::next_wake(&h.pos), Some(11_000));
    h.now = 11_000;
    let e = h.timers();
    assert_eq!(cancelled(&e), ["exe_1"]);
    assert!(matches!(h.status(), Status::Failed { error, .. } if error == "States.Timeout"));
    assert_eq!(interpreter::next_wake(&h.pos), None);
}

#[test]
fn a_path_that_selects_nothing_is_a_runtime_error_and_catchable() {
    let d = def(
        "T",
        json!({
            "T": {"type": "Task", "agent": "a", "parameters": {"id.$": "$.missing"},
                  "catch": [{"errorEquals": ["States.ParameterPathFailure"], "next": "E"}], "end": true},
            "E": {"type": "Succeed"}
        }),
    );
    let mut h = Harness::new(d, json!({}));
    let e = h.timers();
    assert!(started(&e).is_empty());
    assert!(matches!(h.status(), Status::Succeeded(v) if v["error"] == "States.ParameterPathFailure"));
}

#[test]
fn cancelling_fails_the_run_and_cancels_its_executions() {
    let d = def("P", serde_json::from_str(PARALLEL).unwrap());
    let mut h = Harness::new(d, json!({}));
    h.timers();
    let e = interpreter::cancel(&mut h.pos, "no longer needed");
    assert_eq!(cancelled(&e), ["exe_1", "exe_2"]);
    assert!(matches!(h.status(), Status::Failed { error, .. } if error == "Workflow.Cancelled"));
    assert!(h.ok("exe_1", json!(1)).is_empty());
}

#[test]
fn a_synchronous_loop_yields_when_its_budget_is_spent() {
    // Pass and Choice only, forever: each call runs `budget` states.
    let d = def(
        "A",
        json!({
            "A": {"type": "Pass", "next": "B"},
            "B": {"type": "Choice", "choices": [{"variable": "$.stop", "isPresent": true, "next": "End"}],
                  "default": "A"},
            "End": {"type": "Succeed"}
        }),
    );
    let mut pos = interpreter::start(&d, json!({}), 0);
    let (_, more) = interpreter::advance(
        &d,
        &mut pos,
        Event::Timers,
        Inputs {
            now: 0,
            new_id: &mut || "x".into(),
            random: &mut |n| n,
            budget: 100,
            limits: DataLimits::default(),
        },
    );
    assert!(more);
    assert_eq!(pos.transitions, 100);
    assert!(
        matches!(pos.root.phase, Phase::Ready),
        "the rest waits for the next call"
    );
}

#[test]
fn a_long_run_keeps_a_bounded_position() {
    // A task loop of 100,000 iterations: the position after 100 and
    // after 100,000 has the same size.
    let d = def(
        "T",
        json!({
            "T": {"type": "Task", "agent": "a", "next": "C"},
            "C": {"type": "Choice", "choices": [{"variable": "$.n", "numericGreaterThanEquals": 100000,
                  "next": "End"}], "default": "T"},
            "End": {"type": "Succeed"}
        }),
    );
    let mut h = Harness::new(d, json!({"n": 0}));
    h.timers();
    let mut sizes = Vec::new();
    for n in 1..=100_000u32 {
        let id = format!("exe_{}", h.ids);
        h.ok(&id, json!({"n": n}));
        if n == 100 || n == 99_999 {
            sizes.push(serde_json::to_vec(&h.pos).unwrap().len());
        }
    }
    assert_eq!(h.status(), Status::Succeeded(json!({"n": 100000})));
    assert_eq!(h.pos.transitions, 200_001);
    assert_eq!(h.pos.recent.len(), interpreter::RECENT);
    // Ids grow by a few digits; nothing else does.
    assert!(sizes[1] <= sizes[0] + 64, "position grew: {sizes:?}");
}

#[test]
fn a_position_round_trips_through_json() {
    let d = def("P", serde_json::from_str(PARALLEL).unwrap());
    let mut h = Harness::new(d, json!({"x": 1}));
    h.timers();
    h.ok("exe_2", json!("b"));
    let text = serde_json::to_string(&h.pos).unwrap();
    let back: Position = serde_json::from_str(&text).unwrap();
    assert_eq!(back, h.pos);
}

/// `Pass` without `result` and `resultPath: $.a`, in a `Choice` loop: every
/// state nests the input one level deeper. The run fails with
/// `States.DataLimitExceeded` at the depth bound, and nothing deeper than
/// the bound is recorded or kept.
#[test]
fn self_nesting_data_fails_the_run_at_the_depth_bound() {
    let d = def(
        "A",
        json!({
            "A": {"type": "Pass", "resultPath": "$.a", "next": "B"},
            "B": {"type": "Choice", "choices": [{"variable": "$.stop", "isPresent": true, "next": "End"}],
                  "default": "A"},
            "End": {"type": "Succeed"}
        }),
    );
    let mut h = Harness::new(d, json!({"v": 1}));
    h.limits.max_depth = 16;
    let effects = h.timers();
    match h.status() {
        Status::Failed { error, cause } => {
            assert_eq!(error, "States.DataLimitExceeded");
            assert!(cause.contains("nested more than 16 levels"), "{cause}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.pos.root.input, Value::Null, "the oversized data is not kept");
    for e in &effects {
        if let Effect::Record { payload, .. } = e {
            let depth = super::data::measure(payload, usize::MAX, usize::MAX).unwrap().depth;
            assert!(depth <= 16 + 1, "a record nests {depth} levels");
        }
    }
    let (last_kind, last) = effects
        .iter()
        .rev()
        .find_map(|e| match e {
            Effect::Record { kind, payload } => Some((*kind, payload)),
            _ => None,
        })
        .unwrap();
    assert_eq!(last_kind, "workflow.state.failed");
    assert_eq!(last["error"], "States.DataLimitExceeded");
    assert!(h.pos.transitions < 40, "{}", h.pos.transitions);
}

/// An agent's result too large for `max_bytes`: the state fails with
/// `States.DataLimitExceeded`, retriers and catchers notwithstanding.
#[test]
fn an_oversized_result_fails_the_run_whatever_the_retriers() {
    let d = def(
        "T",
        json!({
            "T": {"type": "Task", "agent": "a", "resultPath": "$.r", "end": true,
                  "retry": [{"errorEquals": ["States.ALL"], "maxAttempts": 3}],
                  "catch": [{"errorEquals": ["States.ALL"], "next": "Caught"}]},
            "Caught": {"type": "Succeed"}
        }),
    );
    let mut h = Harness::new(d, json!({"claim": 1}));
    h.limits.max_bytes = 1_000;
    h.timers();
    let effects = h.ok("exe_1", json!({"blob": "x".repeat(2_000)}));
    assert!(matches!(h.status(), Status::Failed { error, .. } if error == "States.DataLimitExceeded"));
    assert!(
        effects.iter().all(|e| !matches!(e, Effect::Task { .. })),
        "not retried: {effects:?}"
    );
    // The same result within the bound succeeds.
    let d = h.d.clone();
    let mut h = Harness::new(d, json!({"claim": 1}));
    h.timers();
    h.ok("exe_1", json!({"blob": "x".repeat(2_000)}));
    assert!(matches!(h.status(), Status::Succeeded(_)));
}

/// A branch whose data passes the bound fails its Parallel state, and
/// the run, with the same error, even where the Parallel catches all.
#[test]
fn a_branch_past_the_bound_fails_the_run() {
    let d = def(
        "P",
        json!({
            "P": {"type": "Parallel", "end": true,
                  "catch": [{"errorEquals": ["States.ALL"], "next": "Caught"}],
                  "branches": [
                      {"startAt": "Grow", "states": {"Grow": {"type": "Pass",
                          "parameters": {"a.$": "$", "b.$": "$", "c.$": "$", "d.$": "$"}, "end": true}}},
                      {"startAt": "T", "states": {"T": {"type": "Task", "agent": "a", "end": true}}}
                  ]},
            "Caught": {"type": "Succeed"}
        }),
    );
    let mut h = Harness::new(d, json!({"blob": "x".repeat(300)}));
    h.limits.max_bytes = 1_000;
    let effects = h.timers();
    assert!(matches!(h.status(), Status::Failed { error, .. } if error == "States.DataLimitExceeded"));
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::Cancel { execution, .. } if execution == "exe_1")),
        "the other branch's execution is cancelled: {effects:?}"
    );
}

/// One call writes about `move_bytes` of entries at most: a loop over
/// big data yields long before its state budget.
#[test]
fn a_move_yields_when_its_bytes_are_spent() {
    let d = def(
        "A",
        json!({
            "A": {"type": "Pass", "next": "B"},
            "B": {"type": "Choice", "choices": [{"variable": "$.stop", "isPresent": true, "next": "End"}],
                  "default": "A"},
            "End": {"type": "Succeed"}
        }),
    );
    let mut pos = interpreter::start(&d, json!({"blob": "x".repeat(10_000)}), 0);
    let limits = DataLimits {
        move_bytes: 100_000,
        ..DataLimits::default()
    };
    let (effects, more) = interpreter::advance(
        &d,
        &mut pos,
        Event::Timers,
        Inputs {
            now: 0,
            new_id: &mut || "x".into(),
            random: &mut |n| n,
            budget: 1_000,
            limits,
        },
    );
    assert!(more);
    let written: usize = effects
        .iter()
        .map(|e| match e {
            Effect::Record { payload, .. } => serde_json::to_vec(payload).unwrap().len(),
            _ => 0,
        })
        .sum();
    assert!((100_000..130_000).contains(&written), "{written}");
    assert!(pos.transitions < 20, "{}", pos.transitions);
}
