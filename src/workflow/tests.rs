//! Definitions end to end: the seed, every state type, every fault code
//! (with where it is reported), and round trips.

use serde_json::{Value, json};

use super::definition::MAX_DEFINITION_BYTES;
use super::*;
use crate::skill::SkillVersion;

const SEED: &str = r#"
apiVersion: agentrc.workflow/v0.1
kind: AgentWorkflow
metadata:
  name: claims-review-flow
spec:
  startAt: Triage
  states:
    Triage:
      type: Task
      agent: ghcr.io/bank/claims-triage@sha256:...
      inputPath: $.claim
      resultPath: $.triage
      timeoutSeconds: 120
      retry:
        - errorEquals: [Runner.Timeout, Tool.TemporaryFailure]
          intervalSeconds: 2
          maxAttempts: 3
          backoffRate: 2.0
      catch:
        - errorEquals: [States.ALL]
          resultPath: $.error
          next: HumanReview
      next: RiskChoice
    RiskChoice:
      type: Choice
      choices:
        - variable: $.triage.risk
          stringEquals: high
          next: HumanReview
        - variable: $.triage.risk
          stringEquals: low
          next: AutoApprove
      default: HumanReview
    HumanReview:
      type: Task
      agent: ghcr.io/bank/human-review-assistant@sha256:...
      end: true
    AutoApprove:
      type: Task
      agent: ghcr.io/bank/approval-agent@sha256:...
      end: true
"#;

const SEED_JSON: &str = r#"{
  "apiVersion": "agentrc.workflow/v0.1",
  "kind": "AgentWorkflow",
  "metadata": {"name": "claims-review-flow"},
  "spec": {
    "startAt": "Triage",
    "states": {
      "Triage": {
        "type": "Task",
        "agent": "ghcr.io/bank/claims-triage@sha256:...",
        "inputPath": "$.claim",
        "resultPath": "$.triage",
        "timeoutSeconds": 120,
        "retry": [{"errorEquals": ["Runner.Timeout", "Tool.TemporaryFailure"], "intervalSeconds": 2,
                   "maxAttempts": 3, "backoffRate": 2.0}],
        "catch": [{"errorEquals": ["States.ALL"], "resultPath": "$.error", "next": "HumanReview"}],
        "next": "RiskChoice"
      },
      "RiskChoice": {
        "type": "Choice",
        "choices": [
          {"variable": "$.triage.risk", "stringEquals": "high", "next": "HumanReview"},
          {"variable": "$.triage.risk", "stringEquals": "low", "next": "AutoApprove"}
        ],
        "default": "HumanReview"
      },
      "HumanReview": {"type": "Task", "agent": "ghcr.io/bank/human-review-assistant@sha256:...", "end": true},
      "AutoApprove": {"type": "Task", "agent": "ghcr.io/bank/approval-agent@sha256:...", "end": true}
    }
  }
}"#;

fn p(s: &str) -> Path {
    Path::parse(s).unwrap()
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// A workflow whose `spec.states` is `states`, starting at `A`.
fn workflow(states: Value) -> Value {
    json!({
        "apiVersion": "agentrc.workflow/v0.1",
        "kind": "AgentWorkflow",
        "metadata": {"name": "t"},
        "spec": {"startAt": "A", "states": states}
    })
}

/// `(code, at)` of every fault.
fn faults(document: &Value) -> Vec<(&'static str, String)> {
    match from_value(document) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.into_iter().map(|e| (e.code, e.at)).collect(),
    }
}

fn one(code: &'static str, at: &str) -> Vec<(&'static str, String)> {
    vec![(code, at.to_owned())]
}

fn message(document: &Value) -> String {
    from_value(document)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_seed_parses() {
    let d = parse(SEED.as_bytes()).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(d.api_version, "agentrc.workflow/v0.1");
    assert_eq!(d.kind, "AgentWorkflow");
    assert_eq!(d.metadata.name, "claims-review-flow");
    assert_eq!(d.spec.start_at, "Triage");
    assert_eq!(
        d.spec.states.keys().collect::<Vec<_>>(),
        ["AutoApprove", "HumanReview", "RiskChoice", "Triage"]
    );
    let State::Task(triage) = &d.spec.states["Triage"] else {
        panic!("Triage is a Task")
    };
    assert_eq!(triage.agent, "ghcr.io/bank/claims-triage@sha256:...");
    assert_eq!(triage.input_path, OptionalPath::Path(p("$.claim")));
    assert_eq!(triage.result_path, OptionalPath::Path(p("$.triage")));
    assert_eq!(triage.output_path, OptionalPath::Absent);
    assert_eq!(triage.timeout_seconds, Some(120));
    assert_eq!(
        triage.retry,
        vec![Retrier {
            error_equals: names(&["Runner.Timeout", "Tool.TemporaryFailure"]),
            interval_seconds: 2,
            max_attempts: 3,
            backoff_rate: 2.0,
            max_delay_seconds: None,
            jitter_strategy: JitterStrategy::None,
        }]
    );
    assert_eq!(
        triage.catch,
        vec![Catcher {
            error_equals: names(&["States.ALL"]),
            result_path: OptionalPath::Path(p("$.error")),
            next: "HumanReview".into()
        }]
    );
    assert_eq!(triage.transition, Transition::Next("RiskChoice".into()));
    let State::Choice(choice) = &d.spec.states["RiskChoice"] else {
        panic!("RiskChoice is a Choice")
    };
    assert_eq!(choice.choices.len(), 2);
    assert_eq!(
        choice.choices[1].rule,
        Rule::Test {
            variable: p("$.triage.risk"),
            test: Test::String(Cmp::Equals, Operand::Value("low".into()))
        }
    );
    assert_eq!(choice.default.as_deref(), Some("HumanReview"));
    assert_eq!(choose(choice, &json!({"triage": {"risk": "low"}})), Some("AutoApprove"));
    assert_eq!(
        choose(choice, &json!({"triage": {"risk": "high"}})),
        Some("HumanReview")
    );
    assert_eq!(choose(choice, &json!({"triage": {}})), Some("HumanReview"));
    assert!(d.spec.states["HumanReview"].is_terminal());
    assert!(!d.spec.states["Triage"].is_terminal());
}

#[test]
fn the_seed_parses_as_json_too() {
    let yaml = parse(SEED.as_bytes()).unwrap();
    let json = parse(SEED_JSON.as_bytes()).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(json, yaml);
    // Through serde as well.
    let via_serde: Definition = serde_json::from_str(SEED_JSON).unwrap();
    assert_eq!(via_serde, yaml);
    // With a byte-order mark and leading blanks.
    let mut bom = b"\xEF\xBB\xBF \n".to_vec();
    bom.extend_from_slice(SEED_JSON.as_bytes());
    assert_eq!(parse(&bom).unwrap(), yaml);
}

#[test]
fn serializing_round_trips() {
    for d in [parse(SEED.as_bytes()).unwrap(), parse(EVERY_TYPE.as_bytes()).unwrap()] {
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(from_value(&json).unwrap(), d, "{json:#}");
        let yaml = yaml_serde::to_string(&d).unwrap();
        assert_eq!(parse(yaml.as_bytes()).unwrap(), d, "{yaml}");
    }
    let json = serde_json::to_value(parse(SEED.as_bytes()).unwrap()).unwrap();
    assert_eq!(
        json["spec"]["states"]["Triage"]["retry"][0],
        json!({"errorEquals": ["Runner.Timeout", "Tool.TemporaryFailure"], "intervalSeconds": 2, "maxAttempts": 3,
               "backoffRate": 2.0, "jitterStrategy": "NONE"})
    );
    assert_eq!(
        json["spec"]["states"]["HumanReview"],
        json!({"type": "Task", "agent": "ghcr.io/bank/human-review-assistant@sha256:...", "end": true})
    );
    assert_eq!(
        json["spec"]["states"]["RiskChoice"]["choices"][0],
        json!({"variable": "$.triage.risk", "stringEquals": "high", "next": "HumanReview"})
    );
}

const EVERY_TYPE: &str = r#"
apiVersion: agentrc.workflow/v0.1
kind: AgentWorkflow
metadata:
  name: every-type-2
  description: One of each.
spec:
  startAt: Prepare
  timeoutSeconds: 3600
  states:
    Prepare:
      type: Pass
      inputPath: null
      result: {limit: 100}
      resultPath: $.config
      next: Work
    Work:
      type: Task
      agent: ghcr.io/bank/worker@sha256:abc
      skill: {id: claims.summarize, version: ^1.2}
      parameters:
        claimId.$: $.id
        mode: fast
      inputPath: $.claim
      resultPath: null
      outputPath: $
      retry:
        - errorEquals: [States.TaskFailed]
          maxDelaySeconds: 30
          jitterStrategy: FULL
      catch:
        - errorEquals: [States.Timeout]
          resultPath: $.why
          next: Failed
      next: Fan
    Fan:
      type: Parallel
      resultPath: $.branches
      timeoutSeconds: 600
      branches:
        - startAt: Sleep
          states:
            Sleep: {type: Wait, seconds: 5, next: Until}
            Until: {type: Wait, timestamp: "2030-01-01T00:00:00Z", next: ByPath}
            ByPath: {type: Wait, secondsPath: $.delay, next: AtPath}
            AtPath: {type: Wait, timestampPath: $.when, end: true}
        - startAt: Done
          states:
            Done: {type: Succeed, outputPath: $.x}
      next: Review
    Review:
      type: HumanReview
      reviewers: 2
      prompt: Approve the payout?
      resultPath: $.verdict
      catch:
        - errorEquals: [States.Rejected]
          next: Failed
      next: Route
    Route:
      type: Choice
      inputPath: $.verdict
      choices:
        - and:
            - variable: $.approved
              booleanEquals: true
            - not: {variable: $.reason, isPresent: true}
          next: Succeeded
        - variable: $.count
          numericLessThanPath: $.limit
          next: Succeeded
      default: Failed
    Succeeded: {type: Succeed}
    Failed: {type: Fail, error: Claims.Rejected, cause: The payout was not approved.}
"#;

#[test]
fn every_state_type_parses() {
    let d = parse(EVERY_TYPE.as_bytes()).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(d.metadata.description.as_deref(), Some("One of each."));
    assert_eq!(d.spec.timeout_seconds, Some(3600));
    let s = &d.spec.states;
    let State::Pass(pass) = &s["Prepare"] else { panic!() };
    assert_eq!(pass.result, Some(json!({"limit": 100})));
    assert_eq!(pass.result_path, OptionalPath::Path(p("$.config")));
    assert_eq!(pass.input_path, OptionalPath::Null);

    let State::Task(work) = &s["Work"] else { panic!() };
    let skill = work.skill.as_ref().unwrap();
    assert_eq!(skill.id, "claims.summarize");
    assert_eq!(skill.version.to_string(), "^1.2");
    assert!(skill.version.matches(&semver::Version::new(1, 9, 0)));
    assert!(!skill.version.matches(&semver::Version::new(2, 0, 0)));
    assert_eq!(work.parameters, Some(json!({"claimId.$": "$.id", "mode": "fast"})));
    assert_eq!(work.input_path, OptionalPath::Path(p("$.claim")));
    assert_eq!(work.result_path, OptionalPath::Null);
    assert_eq!(work.output_path, OptionalPath::Path(Path::root()));
    assert_eq!(
        work.retry,
        vec![Retrier {
            error_equals: names(&["States.TaskFailed"]),
            max_delay_seconds: Some(30),
            jitter_strategy: JitterStrategy::Full,
            ..Retrier::default()
        }]
    );
    assert_eq!(work.retry[0].interval_seconds, 1);
    assert_eq!(work.retry[0].max_attempts, 3);
    assert_eq!(work.retry[0].backoff_rate, 2.0);
    assert_eq!(work.catch[0].next, "Failed");

    let State::Parallel(fan) = &s["Fan"] else { panic!() };
    assert_eq!(fan.branches.len(), 2);
    assert_eq!(fan.timeout_seconds, Some(600));
    let waits: Vec<&WaitFor> = ["Sleep", "Until", "ByPath", "AtPath"]
        .iter()
        .map(|n| match &fan.branches[0].states[*n] {
            State::Wait(w) => &w.wait,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(waits[0], &WaitFor::Seconds(5));
    let WaitFor::Timestamp(t) = waits[1] else { panic!() };
    assert_eq!(t.as_str(), "2030-01-01T00:00:00Z");
    assert_eq!(waits[2], &WaitFor::SecondsPath(p("$.delay")));
    assert_eq!(waits[3], &WaitFor::TimestampPath(p("$.when")));
    let State::Succeed(done) = &fan.branches[1].states["Done"] else {
        panic!()
    };
    assert_eq!(done.output_path, OptionalPath::Path(p("$.x")));

    let State::HumanReview(review) = &s["Review"] else {
        panic!()
    };
    assert_eq!(review.reviewers, 2);
    assert_eq!(review.timeout_seconds, 86_400);
    assert_eq!(review.prompt.as_deref(), Some("Approve the payout?"));
    assert_eq!(review.result_path, OptionalPath::Path(p("$.verdict")));

    let State::Choice(route) = &s["Route"] else { panic!() };
    assert_eq!(choose(route, &json!({"approved": true})), Some("Succeeded"));
    assert_eq!(choose(route, &json!({"approved": true, "reason": "x"})), Some("Failed"));
    assert_eq!(
        choose(route, &json!({"approved": false, "count": 1, "limit": 2})),
        Some("Succeeded")
    );
    assert_eq!(
        choose(route, &json!({"approved": false, "count": 3, "limit": 2})),
        Some("Failed")
    );

    let State::Fail(failed) = &s["Failed"] else { panic!() };
    assert_eq!(failed.error, "Claims.Rejected");
    assert_eq!(failed.cause.as_deref(), Some("The payout was not approved."));
    assert_eq!(validate(&d), Vec::new());
}

#[test]
fn defaults_and_the_verdict() {
    let d = from_value(&workflow(json!({"A": {"type": "HumanReview", "end": true}}))).unwrap();
    let State::HumanReview(h) = &d.spec.states["A"] else {
        panic!()
    };
    assert_eq!((h.reviewers, h.timeout_seconds, h.prompt.as_deref()), (1, 86_400, None));
    let verdict = ReviewVerdict {
        approved: false,
        reviewers: vec!["ann".into()],
        reason: Some("no".into()),
    };
    let v = serde_json::to_value(&verdict).unwrap();
    assert_eq!(v, json!({"approved": false, "reviewers": ["ann"], "reason": "no"}));
    assert_eq!(
        apply_result(json!({"c": 1}), v, Some(&p("$.verdict"))).unwrap()["verdict"]["approved"],
        json!(false)
    );
}

#[test]
fn syntax_errors_have_line_and_column() {
    let e = parse(b"{\n  \"apiVersion\": \"x\",\n  \"kind\": ,\n}").unwrap_err();
    assert_eq!((e.len(), e[0].code, e[0].at.as_str()), (1, code::INVALID_SYNTAX, ""));
    assert!(
        e[0].message.starts_with("JSON syntax error at line 3, column 11: "),
        "{}",
        e[0].message
    );

    let e = parse(b"apiVersion: x\nkind: [a, b\n").unwrap_err();
    assert_eq!((e.len(), e[0].code), (1, code::INVALID_SYNTAX));
    assert!(
        e[0].message
            .starts_with("YAML syntax error at line 3, column 1: did not find expected ',' or ']', while"),
        "{}",
        e[0].message
    );

    // Duplicate keys are refused in both.
    let e = parse(b"spec:\n  states:\n    A: {}\n    A: {}\n").unwrap_err();
    assert_eq!(e[0].code, code::INVALID_SYNTAX);
    assert!(e[0].message.contains("duplicate key `A`"), "{}", e[0].message);
    let e = parse(br#"{"kind": "a", "kind": "b"}"#).unwrap_err();
    assert!(e[0].message.contains("duplicate key `kind`"), "{}", e[0].message);
    assert!(e[0].message.contains("line 1, column"), "{}", e[0].message);

    for empty in [&b""[..], b"  \n"] {
        let e = parse(empty).unwrap_err();
        assert_eq!(
            (e[0].code, e[0].message.as_str()),
            (code::INVALID_SYNTAX, "the definition is empty")
        );
    }
    let e = parse(b"- a\n- b\n").unwrap_err();
    assert_eq!((e[0].code, e[0].at.as_str()), (code::INVALID_VALUE, ""));
}

#[test]
fn too_large() {
    let big = vec![b' '; MAX_DEFINITION_BYTES + 1];
    let e = parse(&big).unwrap_err();
    assert_eq!((e.len(), e[0].code, e[0].at.as_str()), (1, code::TOO_LARGE, ""));
}

#[test]
fn document_level_faults() {
    let mut d = workflow(json!({"A": {"type": "Succeed"}}));
    d["apiVersion"] = json!("agentrc.workflow/v2");
    assert_eq!(faults(&d), one(code::UNSUPPORTED_API_VERSION, "apiVersion"));

    let mut d = workflow(json!({"A": {"type": "Succeed"}}));
    d["kind"] = json!("Workflow");
    assert_eq!(faults(&d), one(code::UNSUPPORTED_KIND, "kind"));

    for bad in ["Claims", "1claims", "claims_flow", "", &"a".repeat(129)] {
        let mut d = workflow(json!({"A": {"type": "Succeed"}}));
        d["metadata"]["name"] = json!(bad);
        assert_eq!(faults(&d), one(code::INVALID_NAME, "metadata.name"), "{bad}");
    }
    let mut d = workflow(json!({"A": {"type": "Succeed"}}));
    d["metadata"]["name"] = json!("a".repeat(128));
    assert_eq!(faults(&d), vec![]);

    let mut d = workflow(json!({"A": {"type": "Succeed"}}));
    d["extra"] = json!(1);
    d["metadata"]["labels"] = json!({});
    assert_eq!(
        faults(&d),
        vec![
            (code::UNKNOWN_FIELD, "extra".into()),
            (code::UNKNOWN_FIELD, "metadata.labels".into())
        ]
    );
    assert!(
        message(&d)
            .contains("unknown field `extra` in the definition; expected one of: apiVersion, kind, metadata, spec")
    );

    let mut d = workflow(json!({"A": {"type": "Succeed"}}));
    d.as_object_mut().unwrap().remove("spec");
    d.as_object_mut().unwrap().remove("kind");
    assert_eq!(
        faults(&d),
        vec![
            (code::MISSING_FIELD, "kind".into()),
            (code::MISSING_FIELD, "spec".into())
        ]
    );

    let mut d = workflow(json!({"A": {"type": "Succeed"}}));
    d["metadata"] = json!({"description": "no name"});
    assert_eq!(faults(&d), one(code::MISSING_FIELD, "metadata.name"));

    let mut d = workflow(json!({"A": {"type": "Succeed"}}));
    d["metadata"] = json!("claims");
    assert_eq!(faults(&d), one(code::INVALID_VALUE, "metadata"));

    let mut d = workflow(json!({"A": {"type": "Succeed"}}));
    d["spec"]["timeoutSeconds"] = json!(0);
    assert_eq!(faults(&d), one(code::INVALID_VALUE, "spec.timeoutSeconds"));
}

#[test]
fn state_shape_faults() {
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"A": {"type": "Succeed", "foo": 1}}),
            code::UNKNOWN_FIELD,
            "spec.states.A.foo",
        ),
        (
            json!({"A": {"type": "Succeed", "next": "A"}}),
            code::UNKNOWN_FIELD,
            "spec.states.A.next",
        ),
        (
            json!({"A": {"type": "Task", "end": true}}),
            code::MISSING_FIELD,
            "spec.states.A.agent",
        ),
        (
            json!({"A": {"agent": "x", "end": true}}),
            code::MISSING_FIELD,
            "spec.states.A.type",
        ),
        (
            json!({"A": {"type": "Map", "end": true}}),
            code::UNKNOWN_STATE_TYPE,
            "spec.states.A.type",
        ),
        (
            json!({"A": {"type": 3}}),
            code::UNKNOWN_STATE_TYPE,
            "spec.states.A.type",
        ),
        (json!({"A": "Succeed"}), code::INVALID_VALUE, "spec.states.A"),
        (
            json!({"A": {"type": "Task", "agent": "x", "timeoutSeconds": -1, "end": true}}),
            code::INVALID_VALUE,
            "spec.states.A.timeoutSeconds",
        ),
        (
            json!({"A": {"type": "Task", "agent": "x", "timeoutSeconds": 1.5, "end": true}}),
            code::INVALID_VALUE,
            "spec.states.A.timeoutSeconds",
        ),
        (
            json!({"A": {"type": "Task", "agent": "has space", "end": true}}),
            code::INVALID_VALUE,
            "spec.states.A.agent",
        ),
        (
            json!({"A": {"type": "Task", "agent": "x", "parameters": [1], "end": true}}),
            code::INVALID_VALUE,
            "spec.states.A.parameters",
        ),
        (
            json!({"A": {"type": "Task", "agent": "x", "parameters": {"a.$": "$..x"}, "end": true}}),
            code::INVALID_PATH,
            "spec.states.A.parameters.a.$",
        ),
        (
            json!({"A": {"type": "Pass", "parameters": {"a": {"b.$": 7}}, "end": true}}),
            code::INVALID_PATH,
            "spec.states.A.parameters.a.b.$",
        ),
        (
            json!({"A": {"type": "Pass", "parameters": {"a": 1, "a.$": "$"}, "end": true}}),
            code::INVALID_VALUE,
            "spec.states.A.parameters.a.$",
        ),
        (
            json!({"A": {"type": "Pass", "end": "yes"}}),
            code::INVALID_VALUE,
            "spec.states.A.end",
        ),
        (
            json!({"A": {"type": "Pass", "next": 1}}),
            code::INVALID_VALUE,
            "spec.states.A.next",
        ),
        (
            json!({"A": {"type": "Pass", "next": "B", "end": true}, "B": {"type": "Succeed"}}),
            code::NEXT_AND_END,
            "spec.states.A",
        ),
        (json!({"A": {"type": "Pass"}}), code::NO_NEXT, "spec.states.A"),
        (
            json!({"A": {"type": "Pass", "end": false}}),
            code::NO_NEXT,
            "spec.states.A",
        ),
        (
            json!({"A": {"type": "Pass", "inputPath": "$..a", "end": true}}),
            code::INVALID_PATH,
            "spec.states.A.inputPath",
        ),
        (
            json!({"A": {"type": "Pass", "resultPath": "$.a[*]", "end": true}}),
            code::INVALID_PATH,
            "spec.states.A.resultPath",
        ),
        (
            json!({"A": {"type": "Pass", "outputPath": 3, "end": true}}),
            code::INVALID_PATH,
            "spec.states.A.outputPath",
        ),
        (
            json!({"A": {"type": "Wait", "end": true}}),
            code::MISSING_FIELD,
            "spec.states.A",
        ),
        (
            json!({"A": {"type": "Wait", "seconds": 1, "timestamp": "2030-01-01T00:00:00Z", "end": true}}),
            code::INVALID_VALUE,
            "spec.states.A",
        ),
        (
            json!({"A": {"type": "Wait", "seconds": -1, "end": true}}),
            code::INVALID_VALUE,
            "spec.states.A.seconds",
        ),
        (
            json!({"A": {"type": "Wait", "seconds": 100_000_000, "end": true}}),
            code::INVALID_VALUE,
            "spec.states.A.seconds",
        ),
        (
            json!({"A": {"type": "Wait", "timestamp": "2030-01-01 00:00:00Z", "end": true}}),
            code::INVALID_VALUE,
            "spec.states.A.timestamp",
        ),
        (
            json!({"A": {"type": "Wait", "secondsPath": "x", "end": true}}),
            code::INVALID_PATH,
            "spec.states.A.secondsPath",
        ),
        (
            json!({"A": {"type": "HumanReview", "reviewers": 0, "end": true}}),
            code::INVALID_VALUE,
            "spec.states.A.reviewers",
        ),
        (
            json!({"A": {"type": "HumanReview", "retry": [], "end": true}}),
            code::UNKNOWN_FIELD,
            "spec.states.A.retry",
        ),
        (
            json!({"A": {"type": "Fail"}}),
            code::MISSING_FIELD,
            "spec.states.A.error",
        ),
        (
            json!({"A": {"type": "Fail", "error": "States.ALL"}}),
            code::INVALID_ERROR_NAME,
            "spec.states.A.error",
        ),
        (
            json!({"A": {"type": "Fail", "error": "States.Nope"}}),
            code::INVALID_ERROR_NAME,
            "spec.states.A.error",
        ),
        (
            json!({"A": {"type": "Parallel", "branches": [], "end": true}}),
            code::INVALID_VALUE,
            "spec.states.A.branches",
        ),
        (
            json!({"A": {"type": "Parallel", "end": true}}),
            code::MISSING_FIELD,
            "spec.states.A.branches",
        ),
        (
            json!({"A": {"type": "Parallel", "branches": [{"startAt": "X"}], "end": true}}),
            code::MISSING_FIELD,
            "spec.states.A.branches[0].states",
        ),
        (
            json!({"A": {"type": "Parallel", "branches": [7], "end": true}}),
            code::INVALID_VALUE,
            "spec.states.A.branches[0]",
        ),
        (
            json!({"A": {"type": "Choice", "choices": [], "default": "B"}, "B": {"type": "Succeed"}}),
            code::INVALID_VALUE,
            "spec.states.A.choices",
        ),
        (
            json!({"A": {"type": "Choice", "default": "B"}, "B": {"type": "Succeed"}}),
            code::MISSING_FIELD,
            "spec.states.A.choices",
        ),
        (
            json!({"A": {"type": "Choice", "choices": [{"variable": "$.a", "isNull": true}], "default": "B"}, "B": {"type": "Succeed"}}),
            code::MISSING_FIELD,
            "spec.states.A.choices[0].next",
        ),
        (
            json!({"A": {"type": "Choice", "choices": [{"variable": "$.a", "isNull": true, "next": "B"}], "end": true}, "B": {"type": "Succeed"}}),
            code::UNKNOWN_FIELD,
            "spec.states.A.end",
        ),
        (
            json!({"A": {"type": "Task", "agent": "x", "skill": {"id": "s", "version": "latest"}, "end": true}}),
            code::INVALID_SKILL_VERSION,
            "spec.states.A.skill.version",
        ),
        (
            json!({"A": {"type": "Task", "agent": "x", "skill": {"id": "s"}, "end": true}}),
            code::MISSING_FIELD,
            "spec.states.A.skill.version",
        ),
        (
            json!({"A": {"type": "Task", "agent": "x", "skill": {"id": "", "version": "1.0.0"}, "end": true}}),
            code::INVALID_VALUE,
            "spec.states.A.skill.id",
        ),
    ];
    for (states, code, at) in cases {
        let document = workflow(states.clone());
        assert_eq!(faults(&document), one(code, at), "{states}\n{}", message(&document));
    }
}

#[test]
fn invalid_state_names() {
    let d = workflow(json!({"A": {"type": "Pass", "next": "B\u{1}"}, "B\u{1}": {"type": "Succeed"}}));
    assert_eq!(faults(&d), one(code::INVALID_NAME, "spec.states.B\u{1}"));
    let long = "S".repeat(129);
    let d = workflow(json!({"A": {"type": "Pass", "next": long.clone()}, long.clone(): {"type": "Succeed"}}));
    assert_eq!(faults(&d), one(code::INVALID_NAME, &format!("spec.states.{long}")));
}

#[test]
fn skill_versions() {
    for (text, exact) in [
        ("1.2.3", true),
        ("1.2.3-rc.1", true),
        ("^1.2", false),
        (">=1, <2", false),
        ("*", false),
        ("~1", false),
    ] {
        let v = SkillVersion::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(matches!(v, SkillVersion::Exact(_)), exact, "{text}");
    }
    assert!(
        SkillVersion::parse("1.2.3")
            .unwrap()
            .matches(&semver::Version::new(1, 2, 3))
    );
    assert!(
        !SkillVersion::parse("1.2.3")
            .unwrap()
            .matches(&semver::Version::new(1, 2, 4))
    );
    for bad in ["latest", "v1", "", "1.2.3.4", "^x"] {
        assert!(SkillVersion::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn transition_faults() {
    // A `next` to nowhere: named, with the state it is in.
    let d = workflow(json!({"A": {"type": "Pass", "next": "Nope"}}));
    assert_eq!(faults(&d), one(code::UNKNOWN_NEXT, "spec.states.A.next"));
    assert!(message(&d).contains("state `A` goes to `Nope`, which is not a state of the workflow"));

    let d = workflow(json!({
        "A": {"type": "Choice", "choices": [{"variable": "$.x", "isNull": true, "next": "X"}], "default": "Y"},
        "B": {"type": "Task", "agent": "a", "catch": [{"errorEquals": ["States.ALL"], "next": "Z"}], "end": true}
    }));
    assert_eq!(
        faults(&d),
        vec![
            (code::UNKNOWN_NEXT, "spec.states.A.choices[0].next".into()),
            (code::UNKNOWN_NEXT, "spec.states.A.default".into()),
            (code::UNKNOWN_NEXT, "spec.states.B.catch[0].next".into()),
            (code::UNREACHABLE_STATE, "spec.states.B".into()),
        ]
    );

    let mut d = workflow(json!({"A": {"type": "Succeed"}}));
    d["spec"]["startAt"] = json!("Start");
    assert_eq!(faults(&d), one(code::UNKNOWN_START_STATE, "spec.startAt"));

    // A state's own fault does not hide that it is unreachable.
    let d = workflow(json!({"A": {"type": "Succeed"}, "B": {"type": "Pass"}}));
    assert_eq!(
        faults(&d),
        vec![
            (code::NO_NEXT, "spec.states.B".into()),
            (code::UNREACHABLE_STATE, "spec.states.B".into())
        ]
    );

    let d = workflow(json!({"A": {"type": "Succeed"}, "B": {"type": "Pass", "next": "C"}, "C": {"type": "Succeed"}}));
    assert_eq!(
        faults(&d),
        vec![
            (code::UNREACHABLE_STATE, "spec.states.B".into()),
            (code::UNREACHABLE_STATE, "spec.states.C".into())
        ]
    );

    // Reachable only through a catcher, a choice and a default: fine.
    let d = workflow(json!({
        "A": {"type": "Task", "agent": "a", "catch": [{"errorEquals": ["States.ALL"], "next": "C"}], "next": "B"},
        "B": {"type": "Choice", "choices": [{"variable": "$.x", "isNull": true, "next": "D"}], "default": "E"},
        "C": {"type": "Fail", "error": "E"},
        "D": {"type": "Succeed"},
        "E": {"type": "Succeed"}
    }));
    assert_eq!(faults(&d), vec![]);

    // No end at all.
    let d = workflow(json!({"A": {"type": "Pass", "next": "B"}, "B": {"type": "Wait", "seconds": 1, "next": "A"}}));
    assert_eq!(faults(&d), one(code::NO_TERMINAL_STATE, "spec"));

    // An end, and a loop that never leaves.
    let d = workflow(json!({
        "A": {"type": "Choice", "choices": [{"variable": "$.x", "isNull": true, "next": "B"}], "default": "C"},
        "B": {"type": "Succeed"},
        "C": {"type": "Pass", "next": "D"},
        "D": {"type": "Pass", "next": "C"}
    }));
    assert_eq!(
        faults(&d),
        vec![
            (code::NO_TERMINAL_STATE, "spec.states.C".into()),
            (code::NO_TERMINAL_STATE, "spec.states.D".into())
        ]
    );

    // A loop with a way out is fine.
    let d = workflow(json!({
        "A": {"type": "Wait", "seconds": 10, "next": "B"},
        "B": {"type": "Choice", "choices": [{"variable": "$.done", "booleanEquals": true, "next": "C"}], "default": "A"},
        "C": {"type": "Succeed"}
    }));
    assert_eq!(faults(&d), vec![]);
}

#[test]
fn faults_inside_a_parallel_branch() {
    let d = workflow(json!({
        "A": {
            "type": "Parallel",
            "branches": [
                {"startAt": "X", "states": {"X": {"type": "Pass", "next": "Out"}, "Y": {"type": "Succeed"}}},
                {"startAt": "Nope", "states": {"Z": {"type": "Succeed"}}},
                {"startAt": "L", "states": {"L": {"type": "Pass", "next": "L"}}}
            ],
            "next": "Out"
        },
        "Out": {"type": "Succeed"}
    }));
    assert_eq!(
        faults(&d),
        vec![
            (code::UNKNOWN_NEXT, "spec.states.A.branches[0].states.X.next".into()),
            (code::UNREACHABLE_STATE, "spec.states.A.branches[0].states.Y".into()),
            (code::UNKNOWN_START_STATE, "spec.states.A.branches[1].startAt".into()),
            (code::NO_TERMINAL_STATE, "spec.states.A.branches[2]".into()),
        ]
    );
    let m = message(&d);
    assert!(
        m.contains("state `X` goes to `Out`, which is not a state of this branch: a branch's states go only"),
        "{m}"
    );
}

#[test]
fn choice_rule_faults() {
    let state = |rule: Value| {
        workflow(json!({"A": {"type": "Choice", "choices": [rule], "default": "B"}, "B": {"type": "Succeed"}}))
    };
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"variable": "$.a", "next": "B"}),
            code::INVALID_COMPARISON,
            "spec.states.A.choices[0]",
        ),
        (
            json!({"variable": "$.a", "stringEquals": "x", "numericEquals": 1, "next": "B"}),
            code::INVALID_COMPARISON,
            "spec.states.A.choices[0]",
        ),
        (
            json!({"variable": "$.a", "stringEquals": "x", "and": [], "next": "B"}),
            code::INVALID_COMPARISON,
            "spec.states.A.choices[0]",
        ),
        (
            json!({"variable": "$.a", "stringEquals": 5, "next": "B"}),
            code::INVALID_COMPARISON,
            "spec.states.A.choices[0].stringEquals",
        ),
        (
            json!({"variable": "$.a", "numericEquals": "5", "next": "B"}),
            code::INVALID_COMPARISON,
            "spec.states.A.choices[0].numericEquals",
        ),
        (
            json!({"variable": "$.a", "booleanEquals": "true", "next": "B"}),
            code::INVALID_COMPARISON,
            "spec.states.A.choices[0].booleanEquals",
        ),
        (
            json!({"variable": "$.a", "timestampEquals": "yesterday", "next": "B"}),
            code::INVALID_COMPARISON,
            "spec.states.A.choices[0].timestampEquals",
        ),
        (
            json!({"variable": "$.a", "isPresent": "yes", "next": "B"}),
            code::INVALID_COMPARISON,
            "spec.states.A.choices[0].isPresent",
        ),
        (
            json!({"variable": "$.a", "stringMatches": "a\\b", "next": "B"}),
            code::INVALID_COMPARISON,
            "spec.states.A.choices[0].stringMatches",
        ),
        (
            json!({"variable": "$.a", "numericLessThanPath": "limit", "next": "B"}),
            code::INVALID_PATH,
            "spec.states.A.choices[0].numericLessThanPath",
        ),
        (
            json!({"variable": "a", "isNull": true, "next": "B"}),
            code::INVALID_PATH,
            "spec.states.A.choices[0].variable",
        ),
        (
            json!({"isNull": true, "next": "B"}),
            code::MISSING_FIELD,
            "spec.states.A.choices[0].variable",
        ),
        (
            json!({"variable": "$.a", "isNull": true, "colour": "red", "next": "B"}),
            code::UNKNOWN_FIELD,
            "spec.states.A.choices[0].colour",
        ),
        (
            json!({"and": [], "next": "B"}),
            code::INVALID_VALUE,
            "spec.states.A.choices[0].and",
        ),
        (
            json!({"or": {"variable": "$.a", "isNull": true}, "next": "B"}),
            code::INVALID_VALUE,
            "spec.states.A.choices[0].or",
        ),
        (
            json!({"and": [{"variable": "$.a", "isNull": true}], "variable": "$.a", "next": "B"}),
            code::INVALID_COMPARISON,
            "spec.states.A.choices[0].variable",
        ),
        (
            json!({"not": {"variable": "$.a", "isNull": true, "next": "B"}, "next": "B"}),
            code::UNKNOWN_FIELD,
            "spec.states.A.choices[0].not.next",
        ),
        (
            json!({"or": [{"variable": "$.a", "isNull": true}, {"not": {"variable": "$.a", "stringEquals": 1}}], "next": "B"}),
            code::INVALID_COMPARISON,
            "spec.states.A.choices[0].or[1].not.stringEquals",
        ),
        (
            json!({"not": "x", "next": "B"}),
            code::INVALID_VALUE,
            "spec.states.A.choices[0].not",
        ),
    ];
    for (rule, code, at) in cases {
        let document = state(rule.clone());
        assert_eq!(faults(&document), one(code, at), "{rule}\n{}", message(&document));
    }
    // No `stringMatchesPath` in ASL: an unknown field, and no comparison left.
    let document = state(json!({"variable": "$.a", "stringMatchesPath": "$.b", "next": "B"}));
    assert_eq!(
        faults(&document),
        vec![
            (code::UNKNOWN_FIELD, "spec.states.A.choices[0].stringMatchesPath".into()),
            (code::INVALID_COMPARISON, "spec.states.A.choices[0]".into()),
        ]
    );
}

#[test]
fn error_handling_faults() {
    let task = |retry: Value, catch: Value| {
        workflow(json!({
            "A": {"type": "Task", "agent": "a", "retry": retry, "catch": catch, "end": true},
            "B": {"type": "Pass", "next": "A"}
        }))
    };
    let catch_b = json!([{"errorEquals": ["States.ALL"], "next": "B"}]);
    let cases: Vec<(Value, Value, &str, &str)> = vec![
        (
            json!([{"errorEquals": ["States.Bogus"]}]),
            catch_b.clone(),
            code::INVALID_ERROR_NAME,
            "spec.states.A.retry[0].errorEquals[0]",
        ),
        (
            json!([{"errorEquals": ["has space"]}]),
            catch_b.clone(),
            code::INVALID_ERROR_NAME,
            "spec.states.A.retry[0].errorEquals[0]",
        ),
        (
            json!([]),
            json!([{"errorEquals": ["States.DataLimitExceeded"], "next": "B"}]),
            code::INVALID_ERROR_NAME,
            "spec.states.A.catch[0].errorEquals[0]",
        ),
        (
            json!([{"errorEquals": ["States.ALL", "X"]}]),
            catch_b.clone(),
            code::INVALID_ERROR_NAME,
            "spec.states.A.retry[0].errorEquals",
        ),
        (
            json!([{"errorEquals": ["States.ALL"]}, {"errorEquals": ["X"]}]),
            catch_b.clone(),
            code::STATES_ALL_NOT_LAST,
            "spec.states.A.retry[0].errorEquals",
        ),
        (
            json!([]),
            json!([{"errorEquals": ["States.ALL"], "next": "B"}, {"errorEquals": ["X"], "next": "B"}]),
            code::STATES_ALL_NOT_LAST,
            "spec.states.A.catch[0].errorEquals",
        ),
        (
            json!([{"errorEquals": []}]),
            catch_b.clone(),
            code::INVALID_RETRY,
            "spec.states.A.retry[0].errorEquals",
        ),
        (
            json!([{}]),
            catch_b.clone(),
            code::MISSING_FIELD,
            "spec.states.A.retry[0].errorEquals",
        ),
        (
            json!([{"errorEquals": "X"}]),
            catch_b.clone(),
            code::INVALID_RETRY,
            "spec.states.A.retry[0].errorEquals",
        ),
        (
            json!([{"errorEquals": ["X"], "intervalSeconds": 0}]),
            catch_b.clone(),
            code::INVALID_RETRY,
            "spec.states.A.retry[0].intervalSeconds",
        ),
        (
            json!([{"errorEquals": ["X"], "maxAttempts": -1}]),
            catch_b.clone(),
            code::INVALID_RETRY,
            "spec.states.A.retry[0].maxAttempts",
        ),
        (
            json!([{"errorEquals": ["X"], "maxAttempts": 100_000_000}]),
            catch_b.clone(),
            code::INVALID_RETRY,
            "spec.states.A.retry[0].maxAttempts",
        ),
        (
            json!([{"errorEquals": ["X"], "backoffRate": 0.5}]),
            catch_b.clone(),
            code::INVALID_RETRY,
            "spec.states.A.retry[0].backoffRate",
        ),
        (
            json!([{"errorEquals": ["X"], "backoffRate": "2"}]),
            catch_b.clone(),
            code::INVALID_RETRY,
            "spec.states.A.retry[0].backoffRate",
        ),
        (
            json!([{"errorEquals": ["X"], "maxDelaySeconds": 0}]),
            catch_b.clone(),
            code::INVALID_RETRY,
            "spec.states.A.retry[0].maxDelaySeconds",
        ),
        (
            json!([{"errorEquals": ["X"], "jitterStrategy": "SOME"}]),
            catch_b.clone(),
            code::INVALID_RETRY,
            "spec.states.A.retry[0].jitterStrategy",
        ),
        (
            json!([{"errorEquals": ["X"], "foo": 1}]),
            catch_b.clone(),
            code::UNKNOWN_FIELD,
            "spec.states.A.retry[0].foo",
        ),
        (json!({}), catch_b.clone(), code::INVALID_RETRY, "spec.states.A.retry"),
        (
            json!([]),
            json!([{"errorEquals": [], "next": "B"}]),
            code::INVALID_VALUE,
            "spec.states.A.catch[0].errorEquals",
        ),
        (
            json!([]),
            json!([{"errorEquals": ["X"], "next": "B", "resultPath": "$["}]),
            code::INVALID_PATH,
            "spec.states.A.catch[0].resultPath",
        ),
        (
            json!([]),
            json!([{"errorEquals": ["X"], "next": "B"}, {"errorEquals": ["X"]}]),
            code::MISSING_FIELD,
            "spec.states.A.catch[1].next",
        ),
        (
            json!([]),
            json!([{"errorEquals": ["X"], "next": "Nope"}, {"errorEquals": ["Y"], "next": "B"}]),
            code::UNKNOWN_NEXT,
            "spec.states.A.catch[0].next",
        ),
    ];
    for (retry, catch, code, at) in cases {
        let document = task(retry.clone(), catch.clone());
        assert_eq!(
            faults(&document),
            one(code, at),
            "{retry} {catch}\n{}",
            message(&document)
        );
    }
}

#[test]
fn too_many_states() {
    let mut states = serde_json::Map::new();
    states.insert("A".into(), json!({"type": "Pass", "next": "S0"}));
    for i in 0..1000 {
        let next = if i == 999 {
            json!({"type": "Succeed"})
        } else {
            json!({"type": "Pass", "next": format!("S{}", i + 1)})
        };
        states.insert(format!("S{i}"), next);
    }
    assert_eq!(
        faults(&workflow(Value::Object(states.clone()))),
        one(code::TOO_MANY_STATES, "spec.states")
    );
    states.remove("S999");
    states.insert("S998".into(), json!({"type": "Succeed"}));
    assert_eq!(faults(&workflow(Value::Object(states))), vec![]);

    // Parallel states nest 8 deep, not 9.
    fn nested(levels: usize) -> Value {
        let inner = if levels == 1 {
            json!({"type": "Succeed"})
        } else {
            nested(levels - 1)
        };
        json!({"type": "Parallel", "branches": [{"startAt": "In", "states": {"In": inner}}], "end": true})
    }
    assert_eq!(faults(&workflow(json!({"A": nested(8)}))), vec![]);
    let ninth = format!("spec.states.A{}", ".branches[0].states.In".repeat(8));
    assert_eq!(
        faults(&workflow(json!({"A": nested(9)}))),
        one(code::TOO_MANY_STATES, &ninth)
    );
}

#[test]
fn many_faults_at_once() {
    let d = json!({
        "apiVersion": "v9",
        "kind": "AgentWorkflow",
        "metadata": {"name": "Bad Name"},
        "spec": {
            "startAt": "A",
            "states": {
                "A": {"type": "Task", "next": "Missing", "bogus": 1},
                "B": {"type": "Wait", "seconds": 1},
                "C": {"type": "Teleport"}
            }
        }
    });
    assert_eq!(
        faults(&d),
        vec![
            (code::UNKNOWN_FIELD, "spec.states.A.bogus".into()),
            (code::MISSING_FIELD, "spec.states.A.agent".into()),
            (code::NO_NEXT, "spec.states.B".into()),
            (code::UNKNOWN_STATE_TYPE, "spec.states.C.type".into()),
            (code::UNSUPPORTED_API_VERSION, "apiVersion".into()),
            (code::INVALID_NAME, "metadata.name".into()),
            (code::UNKNOWN_NEXT, "spec.states.A.next".into()),
        ]
    );
    // Through `parse` too, and through serde as one message.
    let text = serde_json::to_string(&d).unwrap();
    assert_eq!(parse(text.as_bytes()).unwrap_err().len(), 7);
    let e = serde_json::from_str::<Definition>(&text).unwrap_err().to_string();
    assert!(
        e.contains("apiVersion: `v9` is not supported: use `agentrc.workflow/v0.1` (unsupported_api_version)"),
        "{e}"
    );
}

#[test]
fn every_code_is_produced() {
    // One small bad definition per code: together they produce every code of
    // `code::ALL`, and nothing else.
    let ok = || workflow(json!({"A": {"type": "Succeed"}}));
    let with = |pointer: &str, value: Value| {
        let mut d = ok();
        *d.pointer_mut(pointer).unwrap() = value;
        serde_json::to_vec(&d).unwrap()
    };
    let states = |states: Value| serde_json::to_vec(&workflow(states)).unwrap();
    let task = |extra: Value| {
        let mut t = json!({"type": "Task", "agent": "a", "end": true});
        t.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        states(json!({"A": t}))
    };
    let mut chain = serde_json::Map::new();
    for i in 0..1001 {
        chain.insert(
            format!("S{i:04}"),
            json!({"type": "Pass", "next": format!("S{:04}", i + 1)}),
        );
    }
    chain.insert("S1001".into(), json!({"type": "Succeed"}));
    chain.insert("A".into(), json!({"type": "Pass", "next": "S0000"}));
    let documents: Vec<Vec<u8>> = vec![
        b"{,}".to_vec(),
        vec![b' '; MAX_DEFINITION_BYTES + 1],
        with("/apiVersion", json!("v2")),
        with("/kind", json!("Flow")),
        with("/metadata/name", json!("X")),
        with("/metadata", json!({"name": "t", "x": 1})),
        states(json!({"A": {"type": "Task", "end": true}})),
        task(json!({"timeoutSeconds": 0})),
        states(json!({"A": {"type": "Map"}})),
        with("/spec/startAt", json!("B")),
        states(json!({"A": {"type": "Pass", "next": "B"}})),
        states(json!({"A": {"type": "Succeed"}, "B": {"type": "Succeed"}})),
        states(json!({"A": {"type": "Pass", "next": "A"}})),
        states(json!({"A": {"type": "Pass", "next": "A", "end": true}})),
        states(json!({"A": {"type": "Pass"}})),
        task(json!({"inputPath": "$.a[-1]"})),
        states(
            json!({"A": {"type": "Choice", "choices": [{"variable": "$.a", "next": "B"}]}, "B": {"type": "Succeed"}}),
        ),
        task(json!({"retry": [{"errorEquals": ["States.Whatever"]}]})),
        task(json!({"retry": [{"errorEquals": ["States.ALL"]}, {"errorEquals": ["X"]}]})),
        task(json!({"retry": [{"errorEquals": ["X"], "backoffRate": 0.1}]})),
        task(json!({"skill": {"id": "s", "version": "newest"}})),
        states(Value::Object(chain)),
    ];
    let mut produced = std::collections::BTreeSet::new();
    for document in &documents {
        let errors = parse(document).expect_err(&String::from_utf8_lossy(&document[..document.len().min(200)]));
        produced.extend(errors.iter().map(|e| e.code));
    }
    let all: std::collections::BTreeSet<&str> = code::ALL.iter().copied().collect();
    assert_eq!(produced, all);
    assert_eq!(documents.len(), code::ALL.len());
}

#[test]
fn validate_checks_hand_built_definitions() {
    let mut d = parse(SEED.as_bytes()).unwrap();
    assert_eq!(validate(&d), vec![]);
    let State::Task(t) = d.spec.states.get_mut("Triage").unwrap() else {
        panic!()
    };
    t.retry[0].backoff_rate = 0.0;
    t.transition = Transition::Next("Elsewhere".into());
    let got: Vec<(&str, String)> = validate(&d).into_iter().map(|e| (e.code, e.at)).collect();
    assert_eq!(
        got,
        vec![
            (code::INVALID_RETRY, "spec.states.Triage.retry[0].backoffRate".into()),
            (code::UNKNOWN_NEXT, "spec.states.Triage.next".into()),
            (code::UNREACHABLE_STATE, "spec.states.AutoApprove".into()),
            (code::UNREACHABLE_STATE, "spec.states.RiskChoice".into()),
        ]
    );
}

#[test]
fn a_state_runs_through_its_paths() {
    // What an interpreter does with a Task state: inputPath, parameters
    // (on the effective input), the work, resultPath (on the raw input),
    // outputPath; and on an error, retriers then catchers.
    let d = parse(EVERY_TYPE.as_bytes()).unwrap();
    let State::Task(work) = &d.spec.states["Work"] else {
        panic!()
    };
    let input = json!({"claim": {"id": "c-1"}});
    let effective = apply_input_path(&input, &work.input_path).unwrap();
    assert_eq!(effective, json!({"id": "c-1"}));
    let args = apply_parameters(work.parameters.as_ref().unwrap(), &effective).unwrap();
    assert_eq!(args, json!({"claimId": "c-1", "mode": "fast"}));
    let after = apply_result_path(input.clone(), json!({"summary": "ok"}), &work.result_path).unwrap();
    assert_eq!(after, input);
    assert_eq!(apply_output_path(&after, &work.output_path).unwrap(), input);
    let (i, r) = find_retrier(&work.retry, "Tool.TemporaryFailure").unwrap();
    assert_eq!(i, 0);
    assert!(may_retry(r, 2) && !may_retry(r, 3));
    assert_eq!(delay(r, 3, |n| n / 2), std::time::Duration::from_secs(2));
    assert_eq!(find_retrier(&work.retry, "States.Timeout"), None);
    assert_eq!(
        find_catcher(&work.catch, "States.Timeout").map(|c| c.next.as_str()),
        Some("Failed")
    );
}
