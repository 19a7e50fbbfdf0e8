//! The live executions and steps this instance committed last, and the
//! tools each tenant's runners declared, read back without the store while
//! this instance is the only one using it.
//!
//! Every kernel operation reads the execution it acts on (and the step it
//! reports on, and whether its tool is a runner's) before building its
//! edit: three to seven reads an execution, each a hop to SQLite's worker
//! thread or a PostgreSQL round trip, where the writes of a whole batch are
//! a handful of statements. Alone, an instance wrote every live row itself,
//! so the row it committed last is the row the store holds.
//!
//! Why it stays exact:
//!
//! - Rows are remembered only after their commit, and only a newer version
//!   replaces an older one. An ended execution (and a finished step) is
//!   forgotten: nothing moves it again, and a read of it goes to the store.
//! - The writes stay conditional on the version (the state, for a step)
//!   each edit was read at. A remembered row that another writer moved
//!   since (an instance that started and has not been noticed yet) makes
//!   the commit fail with `concurrent_change`, and the row is forgotten:
//!   the caller's retry reads the store. Nothing stale is ever written.
//!   An operation that read a remembered row and was refused so is made
//!   once more, from the store ([`fresh_if_stale`]): the caller sees what
//!   a read of the store would have given it, never a refusal it would
//!   not have had otherwise.
//! - While other live instances share the store (`Kernel::has_peers`),
//!   nothing is read from here, and everything is forgotten when they
//!   appear. Declared tools, which no version guards, are also read again
//!   after [`TOOLS_TTL`].
//! - Bounded: at most [`MAX_EXECUTIONS`] executions, [`MAX_STEPS`] steps and
//!   [`MAX_BYTES`] of their inputs, outputs, arguments and results, which
//!   callers choose (an orchestrator creating executions with the largest
//!   inputs a request may carry fills the bytes, not the memory); past
//!   that, rows are not remembered and reads go to the store.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::error::{KernelError, Result};
use crate::model::kernel::{ExecutionRow, StepRow};
use crate::store::StoreError;

tokio::task_local! {
    /// Whether the operation running read a remembered row.
    static USED: Cell<bool>;
}

/// Notes that the operation running read a remembered row.
pub(super) fn used() {
    let _ = USED.try_with(|u| u.set(true));
}

/// Runs `op`, and once more when it read a remembered row and its commit
/// was refused as a concurrent change (the row was stale: the failed commit
/// forgot it, so the second run reads the store). A refusal of an operation
/// that read only the store is a real race, answered as such.
pub(super) async fn fresh_if_stale<T, F, Fut>(op: F) -> Result<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let (first, used) = USED
        .scope(Cell::new(false), async {
            let r = op().await;
            (r, USED.with(Cell::get))
        })
        .await;
    match first {
        Err(KernelError::Store(StoreError::Changed(_))) if used => op().await,
        r => r,
    }
}

/// Live executions remembered at most (about 1 KB each without inputs).
pub(super) const MAX_EXECUTIONS: usize = 100_000;
/// Unfinished steps remembered at most.
pub(super) const MAX_STEPS: usize = 100_000;
/// Bytes of remembered rows at most, as [`size_of`] counts them.
pub(super) const MAX_BYTES: usize = 64 << 20;
/// How long a tenant's declared tools are trusted without reading them.
pub(super) const TOOLS_TTL: Duration = Duration::from_secs(1);

/// A tenant's runners' tools: name → idempotent (false when any runner
/// declared it not to be).
pub type DeclaredTools = Arc<HashMap<String, bool>>;

#[derive(Default)]
pub(super) struct RowCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    executions: HashMap<String, ExecutionRow>,
    steps: HashMap<String, StepRow>,
    /// What [`size_of`] counts of the rows remembered.
    bytes: usize,
    tools: HashMap<String, (Instant, DeclaredTools)>,
    /// Moves on each time declared tools are forgotten: a read that began
    /// before is not remembered.
    tools_epoch: u64,
}

impl RowCache {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere while holding it leaves only whole rows behind.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn execution(&self, id: &str) -> Option<ExecutionRow> {
        self.inner().executions.get(id).cloned()
    }

    pub(super) fn step(&self, id: &str) -> Option<StepRow> {
        self.inner().steps.get(id).cloned()
    }

    /// Notes rows just committed: the execution at its new version and the
    /// steps as written. Ended ones are forgotten.
    pub(super) fn committed<'a>(&self, exec: &ExecutionRow, steps: impl IntoIterator<Item = &'a StepRow>) {
        let mut inner = self.inner();
        let inner = &mut *inner;
        if exec.state.is_terminal() {
            inner.forget_execution(&exec.id);
        } else if inner.executions.get(&exec.id).is_none_or(|e| e.version < exec.version) {
            inner.forget_execution(&exec.id);
            let size = exec_size(exec);
            if inner.executions.len() < MAX_EXECUTIONS && inner.bytes + size <= MAX_BYTES {
                inner.bytes += size;
                inner.executions.insert(exec.id.clone(), exec.clone());
            }
        }
        for s in steps {
            inner.forget_step(&s.id);
            let size = step_size(s);
            if !s.state.is_terminal()
                && !exec.state.is_terminal()
                && inner.steps.len() < MAX_STEPS
                && inner.bytes + size <= MAX_BYTES
            {
                inner.bytes += size;
                inner.steps.insert(s.id.clone(), s.clone());
            }
        }
    }

    /// Forgets an execution and the given steps (a commit of theirs failed:
    /// what is remembered may be stale).
    pub(super) fn forget<'a>(&self, execution_id: &str, steps: impl IntoIterator<Item = &'a str>) {
        let mut inner = self.inner();
        inner.forget_execution(execution_id);
        for s in steps {
            inner.forget_step(s);
        }
    }

    pub(super) fn tools(&self, tenant_id: &str) -> Option<DeclaredTools> {
        let inner = self.inner();
        let (at, tools) = inner.tools.get(tenant_id)?;
        (at.elapsed() < TOOLS_TTL).then(|| tools.clone())
    }

    /// Where declared tools stand: take it before reading them.
    pub(super) fn tools_epoch(&self) -> u64 {
        self.inner().tools_epoch
    }

    /// Notes a tenant's tools, read from `at` on (the time the read began)
    /// with the [`Self::tools_epoch`] taken then; a read that a declaration
    /// overtook is not remembered.
    pub(super) fn put_tools(&self, tenant_id: &str, tools: DeclaredTools, at: Instant, epoch: u64) {
        let mut inner = self.inner();
        if inner.tools_epoch == epoch {
            inner.tools.insert(tenant_id.to_string(), (at, tools));
        }
    }

    pub(super) fn forget_tools(&self, tenant_id: &str) {
        let mut inner = self.inner();
        inner.tools_epoch += 1;
        inner.tools.remove(tenant_id);
    }

    /// Forgets everything (other instances now share the store).
    pub(super) fn clear(&self) {
        let mut inner = self.inner();
        inner.executions = HashMap::new();
        inner.steps = HashMap::new();
        inner.bytes = 0;
        inner.tools = HashMap::new();
        inner.tools_epoch += 1;
    }

    #[cfg(test)]
    fn sizes(&self) -> (usize, usize, usize) {
        let inner = self.inner();
        (inner.executions.len(), inner.steps.len(), inner.bytes)
    }
}

impl Inner {
    fn forget_execution(&mut self, id: &str) {
        if let Some(e) = self.executions.remove(id) {
            self.bytes -= exec_size(&e);
        }
    }

    fn forget_step(&mut self, id: &str) {
        if let Some(s) = self.steps.remove(id) {
            self.bytes -= step_size(&s);
        }
    }
}

/// About what a row holds in memory: its caller-chosen documents by
/// [`size_of`], and a fixed part for the rest.
fn exec_size(e: &ExecutionRow) -> usize {
    let labels: usize = e.labels.iter().map(|(k, v)| k.len() + size_of(v)).sum();
    1024 + size_of(&e.input) + labels + e.output.as_ref().map_or(0, size_of) + e.context.as_ref().map_or(0, size_of)
}

fn step_size(s: &StepRow) -> usize {
    1024 + size_of(&s.arguments) + s.result.as_ref().map_or(0, size_of) + s.error.as_ref().map_or(0, size_of)
}

/// A JSON document's size in memory, about: its text and 32 bytes a value.
/// Iterative, since a document may nest as deep as its parser allowed.
fn size_of(v: &serde_json::Value) -> usize {
    use serde_json::Value;
    let mut total = 0;
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        total += 32;
        match v {
            Value::String(s) => total += s.len(),
            Value::Array(a) => stack.extend(a),
            Value::Object(o) => {
                for (k, v) in o {
                    total += k.len();
                    stack.push(v);
                }
            }
            _ => {}
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::kernel::{ExecState, StepState};

    fn exec(id: &str, version: i64, state: ExecState) -> ExecutionRow {
        let mut e = ExecutionRow::pending(
            id.into(),
            "t".into(),
            "a".into(),
            ("token:x".into(), "x".into(), "s".into()),
            1_000,
            0,
        );
        e.version = version;
        e.state = state;
        e
    }

    fn step(id: &str, execution_id: &str, state: StepState) -> StepRow {
        StepRow {
            id: id.into(),
            execution_id: execution_id.into(),
            tenant_id: "t".into(),
            tool: "tool".into(),
            arguments: serde_json::json!({}),
            args_hash: String::new(),
            attempt: 1,
            max_attempts: 1,
            backoff_ms: 0,
            state,
            remote: false,
            idempotent: true,
            idempotency_key: String::new(),
            runner_id: None,
            decision_id: None,
            timeout_ms: 1_000,
            deadline_at: None,
            not_before: None,
            review: None,
            review_needed: 0,
            review_expires_at: None,
            on_expiry: crate::model::kernel::OnExpiry::Fail,
            reasons: Vec::new(),
            result: None,
            error: None,
            created_at: 0,
            updated_at: 0,
            runner_token: None,
        }
    }

    #[test]
    fn only_a_newer_version_replaces_what_is_remembered() {
        let c = RowCache::default();
        c.committed(&exec("e", 3, ExecState::Running), []);
        c.committed(&exec("e", 2, ExecState::Blocked), []);
        assert_eq!(c.execution("e").unwrap().version, 3);
        c.committed(&exec("e", 4, ExecState::Blocked), []);
        assert_eq!(c.execution("e").unwrap().state, ExecState::Blocked);
    }

    #[test]
    fn ended_executions_and_finished_steps_are_forgotten() {
        let c = RowCache::default();
        let s = step("s", "e", StepState::Running);
        c.committed(&exec("e", 1, ExecState::Blocked), [&s]);
        assert!(c.step("s").is_some());
        let done = step("s", "e", StepState::Succeeded);
        c.committed(&exec("e", 2, ExecState::Running), [&done]);
        assert!(c.step("s").is_none(), "a finished step is read from the store");
        let other = step("s2", "e", StepState::Running);
        c.committed(&exec("e", 3, ExecState::Blocked), [&other]);
        c.committed(&exec("e", 4, ExecState::Cancelled), [&other]);
        assert!(c.execution("e").is_none() && c.step("s2").is_none());
        assert_eq!(c.sizes(), (0, 0, 0), "nothing counted for what is forgotten");
    }

    #[test]
    fn a_failed_commit_forgets_its_rows_and_peers_forget_all() {
        let c = RowCache::default();
        let s = step("s", "e", StepState::Running);
        c.committed(&exec("e", 1, ExecState::Blocked), [&s]);
        c.committed(&exec("f", 1, ExecState::Running), []);
        c.forget("e", ["s"]);
        assert!(c.execution("e").is_none() && c.step("s").is_none());
        assert!(c.execution("f").is_some());
        let epoch = c.tools_epoch();
        c.put_tools(
            "t",
            Arc::new(HashMap::from([("x".to_string(), true)])),
            Instant::now(),
            epoch,
        );
        assert!(c.tools("t").is_some());
        c.clear();
        assert!(c.execution("f").is_none() && c.tools("t").is_none());
    }

    #[test]
    fn declared_tools_are_trusted_for_a_second_at_most() {
        let c = RowCache::default();
        let read_at = Instant::now() - TOOLS_TTL;
        c.put_tools("t", Arc::new(HashMap::new()), read_at, c.tools_epoch());
        assert!(c.tools("t").is_none(), "tools read a second ago are read again");
        c.put_tools("t", Arc::new(HashMap::new()), Instant::now(), c.tools_epoch());
        assert!(c.tools("t").is_some());
        c.forget_tools("t");
        assert!(c.tools("t").is_none());
        // A read that began before a runner declared its tools is not kept.
        let epoch = c.tools_epoch();
        c.forget_tools("t");
        c.put_tools("t", Arc::new(HashMap::new()), Instant::now(), epoch);
        assert!(c.tools("t").is_none());
    }

    #[test]
    fn large_inputs_fill_the_byte_budget_not_the_memory() {
        let c = RowCache::default();
        let big = serde_json::Value::String("x".repeat(1 << 20));
        let mut remembered = 0;
        for i in 0..200 {
            let mut e = exec(&format!("e{i}"), 1, ExecState::Pending);
            e.input = serde_json::json!({"blob": big});
            c.committed(&e, []);
            remembered += c.execution(&format!("e{i}")).is_some() as usize;
        }
        assert!(
            (60..=64).contains(&remembered),
            "{remembered} inputs of 1 MiB remembered"
        );
        assert!(c.sizes().2 <= MAX_BYTES);
        // Forgetting one makes room for another.
        c.forget("e0", []);
        let mut e = exec("late", 1, ExecState::Pending);
        e.input = serde_json::json!({"blob": big});
        c.committed(&e, []);
        assert!(c.execution("late").is_some());
        // Replacing a row counts it once.
        let before = c.sizes().2;
        let mut newer = e.clone();
        newer.version = 2;
        c.committed(&newer, []);
        assert_eq!(c.sizes().2, before);
    }

    #[test]
    fn past_its_bound_nothing_new_is_remembered() {
        let c = RowCache::default();
        for i in 0..MAX_EXECUTIONS {
            c.committed(&exec(&format!("e{i}"), 1, ExecState::Running), []);
        }
        c.committed(&exec("late", 1, ExecState::Running), []);
        assert!(c.execution("late").is_none());
        c.committed(&exec("e0", 2, ExecState::Blocked), []);
        assert_eq!(c.execution("e0").unwrap().version, 2, "a remembered row still moves");
    }
}
