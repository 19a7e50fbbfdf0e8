//! Decision latency without HTTP: Warden's own path (parse the request,
//! resolve the active version, evaluate with captured builtins, extract
//! allow/reasons, serialise the response) against bare regorus evaluating
//! the same rule of the same policy with the same input. Two policies: the
//! commissioning routing policy (`rule`, `package`), and the shipped
//! kernel policy answering an `invoke_tool` call (`kernel`: thirteen rules
//! as data, their tool globs checked and matched at every call), also
//! compiled for regorus's virtual machine (`bare_rvm/kernel`), which Warden
//! does not use yet.
//!
//! A second group, `regorus_constructs`, prices what such a policy is made
//! of in regorus's interpreter: a loop iteration, a local variable, a
//! reference to another rule, a builtin call, a user function call.
//!
//! Run: `cargo bench --bench decision`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use warden::auth::{Principal, Role};
use warden::clock::Clock;
use warden::config::Config;
use warden::policy::DecisionRequest;

const INPUT: &str = r#"{"procore":{"punch_items_open_bess":[]},"protection_settings_schedule":{"trip_voltage":{"expected":480,"tolerance":5},"trip_delay_ms":{"expected":200,"tolerance":10}},"test_results":[{"parameter":"trip_voltage","value":483},{"parameter":"trip_delay_ms","value":205}]}"#;

fn policy_source() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/policies/commissioning/routing.rego"
    ))
    .unwrap()
}

/// An `invoke_tool` call as the kernel asks its policy about it.
const KERNEL_INPUT: &str = r#"{"execution":{"id":"exe_1","agent_id":"a0","labels":{},"initiator":"token-name:bench"},"agent":{"id":"a0"},"agent_id":"a0","tool":{"name":"kb.search","idempotent":true,"remote":false},"arguments":{"query":"refund policy","limit":5},"labels":{},"caller":{"token_id":"tok_1","token_name":"a","tenant_id":"ten_1","subject":"token-name:a","roles":["agent"]},"workflow":null,"skill":null,"organisation":null}"#;

fn kernel_policy() -> (String, String) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/kernel");
    (
        std::fs::read_to_string(format!("{dir}/tool.rego")).unwrap(),
        std::fs::read_to_string(format!("{dir}/data.json")).unwrap(),
    )
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("decision");

    // The shipped kernel policy (rules as data), as the kernel asks it
    // about each tool call.
    let (source, data) = kernel_policy();
    let mut kernel = regorus::Engine::new();
    kernel.add_policy("tool.rego".into(), source).unwrap();
    kernel.add_data(regorus::Value::from_json_str(&data).unwrap()).unwrap();
    group.bench_function("bare_regorus/kernel", |b| {
        b.iter(|| {
            kernel.set_input(regorus::Value::from_json_str(black_box(KERNEL_INPUT)).unwrap());
            black_box(kernel.eval_rule("data.warden.kernel.decision".to_string()).unwrap());
        })
    });

    // The same policy compiled for regorus's virtual machine (its RVM, which
    // Warden does not use yet): what a compiled form would take.
    let entry = "data.warden.kernel.decision";
    let compiled = kernel.compile_with_entrypoint(&entry.into()).unwrap();
    let program = regorus::languages::rego::compiler::Compiler::compile_from_policy(&compiled, &[entry]).unwrap();
    let mut vm = regorus::rvm::RegoVM::new();
    vm.load_program(program);
    vm.set_data(regorus::Value::from_json_str(&data).unwrap()).unwrap();
    kernel.set_input(regorus::Value::from_json_str(KERNEL_INPUT).unwrap());
    vm.set_input(regorus::Value::from_json_str(KERNEL_INPUT).unwrap());
    assert_eq!(
        vm.execute_entry_point_by_name(entry).unwrap(),
        kernel.eval_rule(entry.to_string()).unwrap(),
        "the RVM and the interpreter answer the kernel call differently"
    );
    group.bench_function("bare_rvm/kernel", |b| {
        b.iter(|| {
            vm.set_input(regorus::Value::from_json_str(black_box(KERNEL_INPUT)).unwrap());
            black_box(vm.execute_entry_point_by_name(entry).unwrap());
        })
    });

    // Bare regorus: one engine, compiled once, input parsed from JSON text.
    let mut engine = regorus::Engine::new();
    engine.add_policy("routing.rego".into(), policy_source()).unwrap();
    for (name, rule) in [
        ("rule", "data.agento.commissioning.routing.allow"),
        ("package", "data.agento.commissioning.routing"),
    ] {
        group.bench_function(format!("bare_regorus/{name}"), |b| {
            b.iter(|| {
                engine.set_input(regorus::Value::from_json_str(black_box(INPUT)).unwrap());
                if name == "rule" {
                    black_box(engine.eval_rule(rule.to_string()).unwrap());
                } else {
                    black_box(engine.eval_query(rule.to_string(), false).unwrap());
                }
            })
        });
    }

    // Warden: the service the HTTP handler calls, on an embedded store.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (state, principal) = rt.block_on(async {
        let mut config = Config::load(None, Vec::<(String, String)>::new()).unwrap();
        config.data_dir = dir.path().to_path_buf();
        let (state, _) = warden::app::build(config, Clock::system(), None).await.unwrap();
        let tenant = state.store.list_tenants().await.unwrap().remove(0);
        let principal = Principal {
            token_id: "tok_bench".into(),
            token_name: "bench".into(),
            tenant_id: tenant.id,
            tenant_name: tenant.name,
            platform: true,
            roles: [Role::Admin].into_iter().collect(),
            subject: "token-name:bench".into(),
            agent_ids: Default::default(),
            runner_ids: Default::default(),
            expires_at: None,
        };
        // The shipped bundles, built from `policies/<name>` and activated.
        for name in ["commissioning", "kernel"] {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("policies")
                .join(name);
            let bundle = warden::cli::bundle::build(&dir, Some("bench"), &[]).unwrap();
            state.policy.upload(&principal, name, bundle).await.unwrap();
            state.policy.activate(&principal, name, "bench", false).await.unwrap();
        }
        (state, principal)
    });
    for (name, path, input) in [
        ("rule", "agento/commissioning/routing/allow", INPUT),
        ("package", "agento/commissioning/routing", INPUT),
        ("kernel", "warden/kernel/decision", KERNEL_INPUT),
    ] {
        let body = format!(r#"{{"path":"{path}","input":{input},"context":{{"workflow_id":"wf-1"}}}}"#);
        group.bench_function(format!("warden/{name}"), |b| {
            b.iter(|| {
                let req: DecisionRequest = serde_json::from_str(black_box(&body)).unwrap();
                let decision = rt.block_on(state.policy.decide(&principal, req)).unwrap();
                black_box(serde_json::to_vec(&decision).unwrap());
            })
        });
    }
    group.finish();
}

/// What the interpreter charges for each construct a policy is made of:
/// each rule below runs one construct 100 times in a loop (`loop` alone is
/// the loop's own cost), so (rule − loop) / 100 is one construct's price.
const CONSTRUCTS: &str = r#"package m

items := numbers.range(1, 100)

one := 1

f(i) if i > 0

loop := count([1 | some i in items])

local := count([1 | k := one; some i in items; k == 1])

rule_reference := count([1 | some i in items; one == 1])

builtin_call := count([1 | some i in items; is_number(i)])

function_call := count([1 | some i in items; f(i)])
"#;

fn constructs(c: &mut Criterion) {
    let mut group = c.benchmark_group("regorus_constructs");
    let mut engine = regorus::Engine::new();
    engine.add_policy("m.rego".into(), CONSTRUCTS.to_string()).unwrap();
    for rule in ["loop", "local", "rule_reference", "builtin_call", "function_call"] {
        let path = format!("data.m.{rule}");
        assert_eq!(engine.eval_rule(path.clone()).unwrap(), regorus::Value::from(100u64));
        group.bench_function(rule, |b| b.iter(|| black_box(engine.eval_rule(path.clone()).unwrap())));
    }
    group.finish();
}

criterion_group!(benches, bench, constructs);
criterion_main!(benches);
