//! The workflow engine: runs definitions on the kernel. The only part of
//! [`crate::workflow`] with IO.
//!
//! A run's row holds its pinned definition version, its pinned skills and
//! its [`Position`]. Every move of a run is one change handed to the
//! ledger writer ([`Ledger::append_with`]): the run's new row (conditional
//! on the version it was read at), the kernel executions its `Task` and
//! `HumanReview` states start ([`Kernel::spawn`]), the ended executions it
//! took in, and the `workflow.*` entries recording it — all in one
//! transaction, so no crash leaves a run waiting for an execution that
//! does not exist, or an ended execution taken in twice.
//!
//! What moves a run: starting it; an execution it started ending (the
//! kernel wakes the engine; the store's inbox of ended, unsettled
//! executions is the durable record, read again at every pass, so a
//! restart misses nothing); a timer (`Wait`, retry back-off, `Parallel`
//! and workflow time-outs), found through the runs' `wake_at` (one indexed
//! query for the earliest; ten thousand sleeping runs cost nothing until
//! one is due); cancellation.
//!
//! Bounds (`[workflow]`): a run's input, every state's input and output
//! ([`super::data`]), and the run's stored position, in bytes and nesting;
//! a run past one fails with `States.DataLimitExceeded`. One move writes
//! about `move_bytes` of entries at most (then goes on at the next pass).
//!
//! Failures: a run that cannot move for a reason that will not go away (its
//! stored position or data cannot be read, its definition version is gone,
//! its move is refused by the ledger) is failed, with a `workflow.run.failed`
//! entry saying why, and its live executions cancelled: never retried for
//! ever. A pass whose moves failed for a passing reason (the store or the
//! ledger busy or away) backs off (100 ms doubling to 5 s); a pass that
//! cannot read what is due ends the task, which its supervisor restarts.
//! What is due is read per tenant, round robin, so one tenant's backlog
//! never fills a pass.
//!
//! Invariants: a run is moved by one task at a time per instance (striped
//! locks), and by one instance at a time (conditional writes); the
//! identity recorded for a start or a cancellation is the caller's token,
//! for everything else `system`; a run's memory is its position, bounded
//! whatever its length.

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::{Mutex, Notify, watch};

use super::data::{self, DataLimits};
use super::definition::{Definition, State};
use super::error_names::{self, DATA_LIMIT_EXCEEDED, RESULT_SCHEMA_MISMATCH, RUNTIME, TASK_FAILED, TIMEOUT};
use super::interpreter::{self, Effect, Event, Inputs, Outcome, Phase, Position, Status, Thread};
use crate::auth::{Principal, new_id};
use crate::clock::{Clock, rfc3339_ms};
use crate::kernel::Kernel;
use crate::kernel::{Gate, Spawn, record_of};
use crate::ledger::{AppendError, Ledger, Receipt, Record};
use crate::model::kernel::{ExecState, ExecutionRow};
use crate::store::{Change, Store, StoreError, WorkflowRunRow};

/// States entered per move at most; a longer synchronous stretch (a loop
/// of `Pass` and `Choice`) goes on at the next pass, right away.
const BUDGET: usize = 1000;
/// Runs and inbox items read per pass, and at most per tenant.
const PAGE: i64 = 500;
const PER_TENANT: i64 = 50;
/// A pass whose moves failed for a passing reason waits at least this
/// long before the next, doubling up to [`MAX_PASS_BACKOFF`].
const MIN_PASS_BACKOFF: Duration = Duration::from_millis(100);
const MAX_PASS_BACKOFF: Duration = Duration::from_secs(5);
/// Alone on the store, the engine sleeps at most this long with nothing
/// due (a safety net: it is woken by every start and every ended
/// execution). With other instances, it looks every second.
const IDLE_ALONE: Duration = Duration::from_secs(30);
const IDLE_SHARED: Duration = Duration::from_secs(1);
/// Definitions kept parsed.
const CACHE: usize = 256;

const SYSTEM: &str = "system";

#[derive(Debug, thiserror::Error)]
pub enum ConductorError {
    #[error("no workflow {0} in this tenant; upload it with PUT /v1/workflows/{0}")]
    UnknownWorkflow(String),
    #[error("workflow {name} has no version {version}")]
    UnknownVersion { name: String, version: i64 },
    #[error("no workflow run {0} in this tenant")]
    UnknownRun(String),
    #[error("run {id} is {status}; only a running run can be cancelled")]
    NotRunning { id: String, status: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Skill(String),
    #[error("{0}")]
    InputTooLarge(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ledger(#[from] AppendError),
    #[error(transparent)]
    Kernel(#[from] crate::kernel::KernelError),
}

impl ConductorError {
    pub fn code(&self) -> &'static str {
        match self {
            ConductorError::UnknownWorkflow(_) => "unknown_workflow",
            ConductorError::UnknownVersion { .. } => "unknown_workflow_version",
            ConductorError::UnknownRun(_) => "unknown_run",
            ConductorError::NotRunning { .. } => "run_not_running",
            ConductorError::Invalid(_) => "invalid_run",
            ConductorError::Skill(_) => "no_matching_skill",
            ConductorError::InputTooLarge(_) => "run_input_too_large",
            ConductorError::Store(_) => "store",
            ConductorError::Ledger(e) => e.code(),
            ConductorError::Kernel(e) => e.code(),
        }
    }
}

type Result<T> = std::result::Result<T, ConductorError>;

impl ConductorError {
    /// Whether moving the run again may succeed: the store or the ledger
    /// was busy or away, or another instance moved it first. Anything else
    /// would fail the same way at every pass.
    fn is_transient(&self) -> bool {
        match self {
            ConductorError::Store(
                StoreError::Database(_) | StoreError::Sqlite(_) | StoreError::Changed(_) | StoreError::Conflict(_),
            ) => true,
            ConductorError::Ledger(e) => e.is_transient(),
            ConductorError::Kernel(crate::kernel::KernelError::Store(
                StoreError::Database(_) | StoreError::Sqlite(_) | StoreError::Changed(_) | StoreError::Conflict(_),
            )) => true,
            ConductorError::Kernel(crate::kernel::KernelError::Ledger(e)) => e.is_transient(),
            _ => false,
        }
    }
}

/// `POST /v1/workflows/{name}/runs`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRun {
    #[serde(default)]
    #[schema(value_type = Object)]
    pub input: Value,
    /// The definition version to run; the latest when absent.
    #[serde(default)]
    pub version: Option<i64>,
    /// The organisation (team) the run acts for: the permission policy's
    /// organisation level.
    #[serde(default)]
    pub organisation: Option<String>,
    /// Where scoped skills are looked up.
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default)]
    pub team: Option<String>,
    /// Labels every execution of the run carries (the kernel policy sees them).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub labels: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RunView {
    pub id: String,
    pub workflow: String,
    pub version: i64,
    pub digest: String,
    /// `running`, `succeeded`, `failed` or `cancelled`.
    pub status: String,
    #[schema(value_type = Object)]
    pub input: Value,
    /// The output (succeeded) or `{error, cause}` (failed, cancelled).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub output: Option<Value>,
    /// Organisation, project, team, labels, pinned skills.
    #[schema(value_type = Object)]
    pub context: Value,
    /// Where each thread is: `[{state, phase, execution?, until?}]`,
    /// branches as `branches`.
    #[schema(value_type = Object)]
    pub position: Value,
    /// The last transitions (the ledger has them all).
    #[schema(value_type = Vec<Object>)]
    pub recent: Vec<Value>,
    pub transitions: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wake_at: Option<String>,
    pub initiator: String,
    pub created_at: String,
    pub updated_at: String,
    /// The ledger receipts of this request's change (start, cancel).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub receipts: Vec<Receipt>,
}

/// (tenant, workflow name, version): what parsed definitions and their
/// digests are cached by.
type VersionKey = (String, String, i64);

pub struct Conductor {
    store: Store,
    ledger: Ledger,
    kernel: Arc<Kernel>,
    clock: Clock,
    metrics: Arc<crate::metrics::Metrics>,
    definitions: StdMutex<HashMap<VersionKey, (Arc<Definition>, String)>>,
    locks: Vec<Mutex<()>>,
    limits: DataLimits,
    /// A run's stored position: most bytes, deepest nesting.
    max_position: (usize, usize),
    /// Wakes the background pass (a run was started or moved here).
    pub wake: Notify,
}

impl Conductor {
    pub fn new(
        store: Store,
        ledger: Ledger,
        kernel: Arc<Kernel>,
        clock: Clock,
        metrics: Arc<crate::metrics::Metrics>,
        bounds: crate::config::WorkflowConfig,
    ) -> Self {
        Conductor {
            store,
            ledger,
            kernel,
            clock,
            metrics,
            definitions: StdMutex::new(HashMap::new()),
            locks: (0..64).map(|_| Mutex::new(())).collect(),
            limits: DataLimits::of(&bounds),
            max_position: (bounds.max_position_bytes, bounds.max_position_depth),
            wake: Notify::new(),
        }
    }

    /// Whether a position stays within `max_position_bytes` and
    /// `max_position_depth`; why not, when it does not.
    fn check_position(&self, position: &Position) -> std::result::Result<(), String> {
        let value = serde_json::to_value(position).map_err(|e| e.to_string())?;
        let (bytes, depth) = self.max_position;
        data::measure(&value, bytes, depth).map(|_| ()).map_err(|e| {
            format!("the run's position is {e} (the [workflow] limits max_position_bytes and max_position_depth)")
        })
    }

    fn lock_of(&self, run_id: &str) -> &Mutex<()> {
        let h = blake3::hash(run_id.as_bytes());
        &self.locks[h.as_bytes()[0] as usize % self.locks.len()]
    }

    /// A definition version, parsed once: a run's every move asks for its
    /// pinned version, and a cached one costs no query.
    async fn definition(
        &self,
        tenant_id: &str,
        name: &str,
        version: Option<i64>,
    ) -> Result<(Arc<Definition>, i64, String)> {
        let version = match version {
            Some(v) => v,
            None => self
                .store
                .workflow_latest_version(tenant_id, name)
                .await?
                .ok_or_else(|| ConductorError::UnknownWorkflow(name.to_string()))?,
        };
        let key = (tenant_id.to_string(), name.to_string(), version);
        if let Some((d, digest)) = self.definitions.lock().expect("definitions lock").get(&key) {
            return Ok((d.clone(), version, digest.clone()));
        }
        let row = self
            .store
            .workflow_version(tenant_id, name, version)
            .await?
            .ok_or_else(|| ConductorError::UnknownVersion {
                name: name.to_string(),
                version,
            })?;
        let parsed: Definition = serde_json::from_str(&row.definition)
            .map_err(|e| StoreError::Corrupt(format!("workflow {name} version {version}: {e}")))?;
        let parsed = Arc::new(parsed);
        let mut cache = self.definitions.lock().expect("definitions lock");
        if cache.len() >= CACHE {
            cache.clear();
        }
        cache.insert(key, (parsed.clone(), row.digest.clone()));
        Ok((parsed, version, row.digest))
    }

    // ------------------------------------------------------------ requests

    /// Starts a run of the latest (or the given) version, pinning it and
    /// the skill versions its tasks ask for.
    pub async fn start(&self, who: &Principal, name: &str, req: StartRun) -> Result<RunView> {
        for (field, v) in [
            ("organisation", &req.organisation),
            ("project", &req.project),
            ("team", &req.team),
        ] {
            if let Some(v) = v
                && (v.is_empty() || v.len() > 128 || v.chars().any(char::is_control))
            {
                return Err(ConductorError::Invalid(format!(
                    "{field} must be 1 to 128 characters without control characters"
                )));
            }
        }
        if let Err(e) = data::check(&req.input, &self.limits) {
            return Err(ConductorError::InputTooLarge(format!(
                "the run's input is {e} (the [workflow] limits max_data_bytes and max_data_depth)"
            )));
        }
        let (definition, version, digest) = self.definition(&who.tenant_id, name, req.version).await?;
        let now = self.clock.now_ms();
        let skills = self.pin_skills(who, &definition, &req).await?;
        let context = json!({"organisation": req.organisation, "project": req.project, "team": req.team,
            "labels": req.labels, "skills": skills});
        let position = interpreter::start(&definition, req.input.clone(), now);
        let mut run = WorkflowRunRow {
            id: new_id("run", now),
            tenant_id: who.tenant_id.clone(),
            workflow: name.to_string(),
            version,
            digest: digest.clone(),
            status: "running".into(),
            input: req.input,
            output: None,
            context,
            position: Value::Null,
            initiator: who.actor(),
            initiator_token: who.token_id.clone(),
            initiator_subject: who.subject.clone(),
            wake_at: None,
            transitions: 0,
            version_no: 0,
            created_at: now,
            updated_at: now,
            fault: None,
        };
        let started = RunRecord::new(
            "workflow.run.started",
            who.actor(),
            json!({"run_id": run.id, "workflow": name, "version": version, "digest": digest,
                "input": run.input, "context": run.context, "subject": who.subject}),
        );
        let _g = self.lock_of(&run.id).lock().await;
        let receipts = self
            .move_run(
                &definition,
                &mut run,
                None,
                position,
                Event::Timers,
                vec![started],
                None,
            )
            .await?;
        // The engine learns of a run that now sleeps (its timer may come
        // before the one the engine waits for); a run that ended, or waits
        // for an execution (whose end wakes the engine), needs nothing.
        if run.wake_at.is_some() {
            self.wake.notify_one();
        }
        Ok(view(&run, receipts))
    }

    pub async fn get(&self, who: &Principal, id: &str) -> Result<RunView> {
        Ok(view(&self.load(&who.tenant_id, id).await?, Vec::new()))
    }

    pub async fn list(&self, who: &Principal, workflow: Option<&str>, limit: i64) -> Result<Vec<RunView>> {
        Ok(self
            .store
            .workflow_runs(&who.tenant_id, workflow, limit.clamp(1, 1000))
            .await?
            .iter()
            .map(|r| view(r, Vec::new()))
            .collect())
    }

    async fn load(&self, tenant_id: &str, id: &str) -> Result<WorkflowRunRow> {
        match self.store.workflow_run(id).await? {
            Some(r) if r.tenant_id == tenant_id => Ok(r),
            _ => Err(ConductorError::UnknownRun(id.to_string())),
        }
    }

    /// Cancels a running run and every execution it waits for.
    pub async fn cancel(&self, who: &Principal, id: &str, reason: Option<String>) -> Result<RunView> {
        let _g = self.lock_of(id).lock().await;
        let mut run = self.load(&who.tenant_id, id).await?;
        if run.status != "running" {
            return Err(ConductorError::NotRunning {
                id: id.to_string(),
                status: run.status,
            });
        }
        let reason = reason.unwrap_or_else(|| "cancelled on request".into());
        let (mut position, unreadable) = match position_of(&run) {
            Ok(p) => (p, false),
            Err(_) => (self.stub_position(&run).await?, true),
        };
        let mut effects = interpreter::cancel(&mut position, &reason);
        if unreadable {
            for execution in self.store.workflow_live_executions(&run.id).await? {
                effects.push(Effect::Cancel {
                    execution,
                    reason: reason.clone(),
                });
            }
        }
        let now = self.clock.now_ms();
        run.status = "cancelled".into();
        run.output = Some(json!({"error": "Workflow.Cancelled", "cause": reason}));
        let record = RunRecord::new(
            "workflow.run.cancelled",
            who.actor(),
            json!({"run_id": run.id, "workflow": run.workflow, "version": run.version, "reason": reason,
                "subject": who.subject}),
        );
        let cancels: Vec<String> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::Cancel { execution, .. } => Some(execution.clone()),
                _ => None,
            })
            .collect();
        let expected = Some(run.version_no);
        let m = Move {
            position,
            now,
            records: vec![record],
            spawned: Vec::new(),
            settled: Vec::new(),
            more: false,
        };
        let receipts = self.commit(&mut run, expected, m).await?;
        for execution in cancels {
            if let Err(e) = self.kernel.cancel_for_run(&execution, &reason).await {
                tracing::warn!(run = %run.id, %execution, error = %e, "workflow: cancelling an execution failed");
            }
        }
        Ok(view(&run, receipts))
    }

    // ------------------------------------------------------------ moves

    /// Moves a run already stored: an ended execution, or its timers.
    async fn step(&self, run_id: &str, ended: Option<&str>) -> Result<bool> {
        let _g = self.lock_of(run_id).lock().await;
        let Some(mut run) = self.store.workflow_run(run_id).await? else {
            if let Some(execution) = ended {
                self.settle_only(execution).await?;
            }
            return Ok(false);
        };
        let exec = match ended {
            Some(id) => match self.store.kernel_execution(id).await? {
                Some(e) if e.state.is_terminal() => Some(e),
                _ => return Ok(false),
            },
            None => None,
        };
        if run.status != "running" && exec.is_none() {
            return Ok(false);
        }
        let position = match position_of(&run) {
            Ok(p) => p,
            Err(why) if run.status == "running" => {
                let cause = format!("{why}; the run is failed rather than retried");
                self.fail(&mut run, RUNTIME, &cause, ended).await?;
                return Ok(true);
            }
            // An ended run: the execution is taken in, nothing else moves.
            Err(_) => {
                if let Some(execution) = ended {
                    self.settle_only(execution).await?;
                }
                return Ok(true);
            }
        };
        let (definition, _, _) = self
            .definition(&run.tenant_id, &run.workflow, Some(run.version))
            .await?;
        let event = match &exec {
            Some(e) => Event::Ended {
                execution: e.id.clone(),
                outcome: outcome_of(e, &run.context),
            },
            None => Event::Timers,
        };
        let expected = Some(run.version_no);
        self.move_run(&definition, &mut run, expected, position, event, Vec::new(), ended)
            .await?;
        Ok(true)
    }

    /// Advances a run by one event and commits the move.
    #[allow(clippy::too_many_arguments)]
    async fn move_run(
        &self,
        definition: &Definition,
        run: &mut WorkflowRunRow,
        expected: Option<i64>,
        mut position: Position,
        event: Event,
        mut records: Vec<RunRecord>,
        settled: Option<&str>,
    ) -> Result<Vec<Receipt>> {
        let now = self.clock.now_ms();
        let (mut effects, mut more) = if run.status == "running" {
            let mut new_id = || new_id("exe", now);
            let mut random = |n: u64| random_upto(n);
            interpreter::advance(
                definition,
                &mut position,
                event,
                Inputs {
                    now,
                    new_id: &mut new_id,
                    random: &mut random,
                    budget: BUDGET,
                    limits: self.limits,
                },
            )
        } else {
            // An execution of an ended run: taken in, nothing moves.
            (Vec::new(), false)
        };
        let limit = self.kernel.cfg.workflow_max_transitions;
        if run.status == "running"
            && matches!(interpreter::status(&position), Status::Running)
            && position.transitions > limit
        {
            let cause = format!(
                "the run made more than {limit} state transitions (kernel.workflow_max_transitions): \
                 a loop that never ends?"
            );
            effects.extend(interpreter::abort(&mut position, RUNTIME, &cause));
            more = false;
        }
        if run.status == "running"
            && matches!(interpreter::status(&position), Status::Running)
            && let Err(why) = self.check_position(&position)
        {
            effects.extend(interpreter::abort(&mut position, DATA_LIMIT_EXCEEDED, &why));
            position.root.input = Value::Null;
            position.root.retries.clear();
            more = false;
        }
        let mut spawned = Vec::new();
        let mut cancels = Vec::new();
        for effect in effects {
            match effect {
                Effect::Record { kind, mut payload } => {
                    payload["run_id"] = run.id.clone().into();
                    payload["workflow"] = run.workflow.clone().into();
                    payload["version"] = run.version.into();
                    records.push(RunRecord::new(kind, SYSTEM, payload));
                }
                Effect::Task {
                    execution,
                    state,
                    task,
                    input,
                } => {
                    // The policy sees what the skill may do, not its schema.
                    let mut skill = run.context["skills"].get(&state).cloned().unwrap_or(Value::Null);
                    if let Some(s) = skill.as_object_mut() {
                        s.remove("output_schema");
                    }
                    spawned.push(self.kernel.spawn(Spawn {
                        agent_id: task.agent.clone(),
                        timeout_secs: task.timeout_seconds,
                        ..spawn_for(run, execution, state, input, now, skill)
                    })?);
                }
                Effect::Review {
                    execution,
                    state,
                    reviewers,
                    timeout_seconds,
                    prompt,
                    input,
                } => {
                    spawned.push(self.kernel.spawn(Spawn {
                        review: Some(Gate {
                            reviewers,
                            timeout_secs: timeout_seconds,
                            prompt,
                        }),
                        ..spawn_for(run, execution, state, input, now, Value::Null)
                    })?);
                }
                Effect::Cancel { execution, reason } => cancels.push((execution, reason)),
            }
        }
        if run.status == "running" {
            match interpreter::status(&position) {
                Status::Running => {}
                Status::Succeeded(output) => {
                    run.status = "succeeded".into();
                    records.push(RunRecord::new(
                        "workflow.run.succeeded",
                        SYSTEM,
                        json!({"run_id": run.id, "workflow": run.workflow, "version": run.version,
                                "output": output, "transitions": position.transitions}),
                    ));
                    run.output = Some(output);
                }
                Status::Failed { error, cause } => {
                    run.status = "failed".into();
                    let output = json!({"error": error, "cause": cause});
                    records.push(RunRecord::new(
                        "workflow.run.failed",
                        SYSTEM,
                        json!({"run_id": run.id, "workflow": run.workflow, "version": run.version,
                                "error": error, "cause": cause, "transitions": position.transitions}),
                    ));
                    run.output = Some(output);
                }
            }
        }
        let settled: Vec<String> = settled.map(str::to_string).into_iter().collect();
        let m = Move {
            position,
            now,
            records,
            spawned,
            settled,
            more,
        };
        let receipts = self.commit(run, expected, m).await?;
        for (execution, reason) in cancels {
            if let Err(e) = self.kernel.cancel_for_run(&execution, &reason).await {
                tracing::warn!(run = %run.id, %execution, error = %e, "workflow: cancelling an execution failed");
            }
        }
        Ok(receipts)
    }

    /// One transaction: the run's row, the executions it starts, the ended
    /// ones it took in, and the entries recording all of it.
    async fn commit(&self, run: &mut WorkflowRunRow, expected: Option<i64>, m: Move) -> Result<Vec<Receipt>> {
        let Move {
            position,
            now,
            records,
            spawned,
            settled,
            more,
        } = m;
        run.wake_at = if run.status != "running" {
            None
        } else if more {
            Some(now)
        } else {
            interpreter::next_wake(&position)
        };
        let mut position = position;
        let at = rfc3339_ms(now);
        let run_kinds: Vec<&'static str> = records.iter().map(|r| r.kind).collect();
        let records: Vec<Record> = records
            .into_iter()
            .map(|mut r| {
                position.entries += 1;
                r.payload["seq"] = position.entries.into();
                r.payload["at"] = at.clone().into();
                Record::new(&run.tenant_id, r.kind, &r.actor, &r.payload).about(run.id.clone())
            })
            .collect();
        run.transitions = position.transitions as i64;
        run.position = serde_json::to_value(&position).map_err(|e| StoreError::Corrupt(format!("position: {e}")))?;
        run.version_no += 1;
        run.updated_at = now;
        let mut change = Change {
            run: Some((run.clone(), expected)),
            settled,
            ..Change::default()
        };
        let mut recipients = Vec::new();
        // Started where its agent has no stream: another instance may hold it.
        let unassigned = spawned.iter().any(|s| s.exec.state == ExecState::Pending);
        for s in spawned {
            recipients.extend(s.pushes.iter().map(|p| p.recipient.clone()));
            change.executions.push((s.exec, None));
            change.steps.extend(s.steps.into_iter().map(|st| (st, None)));
            change.history.extend(s.history);
            change.pushes.extend(s.pushes);
        }
        // The kernel's history rows first: the writer gives them their
        // entries' indexes in this order.
        let mut all: Vec<Record> = change.history.iter().map(record_of).collect();
        let kinds: Vec<&'static str> = change.history.iter().map(|h| h.kind).collect();
        all.extend(records);
        let receipts = match self.ledger.append_with(all, change).await {
            Ok(r) => r,
            Err(AppendError::Changed(what)) => {
                run.version_no -= 1;
                return Err(ConductorError::Store(StoreError::Changed(what)));
            }
            Err(e) => {
                run.version_no -= 1;
                return Err(e.into());
            }
        };
        self.kernel.count_transitions(kinds);
        for kind in run_kinds {
            self.metrics
                .workflow_entries
                .get_or_create(&crate::metrics::KindLabels { kind })
                .inc();
        }
        self.kernel.after_commit(&recipients, false);
        if unassigned {
            self.kernel.due_elsewhere();
        }
        if more {
            self.wake.notify_one();
        }
        Ok(receipts)
    }

    /// Fails a running run that cannot move (its stored data cannot be
    /// read, its definition is gone, its move was refused), with a
    /// `workflow.run.failed` entry saying why; cancels its live executions
    /// (found in the store: its position may be unreadable) and takes in
    /// `ended`. The caller holds the run's lock.
    async fn fail(&self, run: &mut WorkflowRunRow, error: &str, cause: &str, ended: Option<&str>) -> Result<()> {
        tracing::error!(run = %run.id, error, cause, "workflow: failing a run that cannot move");
        let mut position = self.stub_position(run).await?;
        position.root.phase = Phase::Failed {
            error: error.into(),
            cause: cause.into(),
        };
        let cancels = self.store.workflow_live_executions(&run.id).await?;
        position.abandoned = cancels.clone();
        run.status = "failed".into();
        run.output = Some(json!({"error": error, "cause": cause}));
        let record = RunRecord::new(
            "workflow.run.failed",
            SYSTEM,
            json!({"run_id": run.id, "workflow": run.workflow, "version": run.version,
                "error": error, "cause": cause, "transitions": run.transitions}),
        );
        let expected = Some(run.version_no);
        let m = Move {
            position,
            now: self.clock.now_ms(),
            records: vec![record],
            spawned: Vec::new(),
            settled: ended.map(str::to_string).into_iter().collect(),
            more: false,
        };
        self.commit(run, expected, m).await?;
        for execution in cancels {
            if let Err(e) = self.kernel.cancel_for_run(&execution, cause).await {
                tracing::warn!(run = %run.id, %execution, error = %e, "workflow: cancelling an execution failed");
            }
        }
        Ok(())
    }

    /// The run's position, or when it cannot be read a stand-in holding
    /// only what numbers the run's entries (how many it has made, counted
    /// in the ledger) and its transitions.
    async fn stub_position(&self, run: &WorkflowRunRow) -> Result<Position> {
        if let Ok(p) = position_of(run) {
            return Ok(p);
        }
        let entries = self.store.ledger_count_about(&run.tenant_id, &run.id).await?;
        Ok(Position {
            root: Thread {
                state: String::new(),
                input: Value::Null,
                retries: Vec::new(),
                phase: Phase::Failed {
                    error: RUNTIME.into(),
                    cause: String::new(),
                },
            },
            deadline: None,
            abandoned: Vec::new(),
            recent: Vec::new(),
            transitions: run.transitions.max(0) as u64,
            entries,
        })
    }

    /// Marks an ended execution taken in when its run is gone.
    async fn settle_only(&self, execution: &str) -> Result<()> {
        let change = Change {
            settled: vec![execution.to_string()],
            ..Change::default()
        };
        self.ledger.append_with(Vec::new(), change).await?;
        Ok(())
    }

    /// Pins, for every `Task` with a skill, the version it will run: the
    /// highest the task's version or requirement allows that is visible to
    /// the run's project or team. A version published later is for later
    /// runs; this one keeps what it pinned.
    async fn pin_skills(&self, who: &Principal, definition: &Definition, req: &StartRun) -> Result<Value> {
        let mut out = Map::new();
        for (state, skill) in tasks_with_skills(&definition.spec.states) {
            let row = crate::skill::registry::resolve(
                    &self.store,
                    &who.tenant_id,
                    &skill.id,
                    &skill.version,
                    req.project.as_deref(),
                    req.team.as_deref(),
                )
                .await?
                .ok_or_else(|| {
                    ConductorError::Skill(format!(
                        "state {state} asks for skill {} {}, and no registered version of it matches that is \
                         visible to project {:?} and team {:?}; register one with PUT /v1/skills/{}/versions/{{version}}",
                        skill.id,
                        skill.version,
                        req.project.as_deref().unwrap_or("-"),
                        req.team.as_deref().unwrap_or("-"),
                        skill.id
                    ))
                })?;
            let manifest = crate::skill::registry::manifest_of(&row)?;
            out.insert(
                state,
                json!({"id": manifest.id, "version": manifest.version, "digest": row.digest,
                    "allowed_connectors": manifest.allowed_connectors, "rbac_scope": manifest.rbac_scope,
                    "output_schema": manifest.output_schema}),
            );
        }
        Ok(Value::Object(out))
    }

    // ------------------------------------------------------------ the pass

    /// One pass: every ended execution in the inbox, every run due (each
    /// tenant's share, round robin). Returns the runs moved and the moves
    /// that failed for a passing reason (to be tried again).
    pub async fn tick(&self) -> Result<(usize, usize)> {
        let mut moved = 0;
        let mut failed = 0;
        for (run, execution) in self.store.workflow_inbox(PER_TENANT, PAGE).await? {
            match self.step(&run, Some(&execution)).await {
                Ok(true) => moved += 1,
                Ok(false) => {}
                Err(ConductorError::Store(StoreError::Changed(_))) => {}
                Err(e) => {
                    tracing::warn!(%run, %execution, error = %e, "workflow: an ended execution could not be taken in");
                    failed += self.poisoned(&run, Some(&execution), e).await;
                }
            }
        }
        let now = self.clock.now_ms();
        for run in self.store.workflow_runs_due(now, PER_TENANT, PAGE).await? {
            match self.step(&run, None).await {
                Ok(true) => moved += 1,
                Ok(false) => {}
                Err(ConductorError::Store(StoreError::Changed(_))) => {}
                Err(e) => {
                    tracing::warn!(%run, error = %e, "workflow: a due run could not move");
                    failed += self.poisoned(&run, None, e).await;
                }
            }
        }
        Ok((moved, failed))
    }

    /// A move failed: one that will fail the same way at every pass fails
    /// the run (0 returned); a passing failure is counted (1) for the pass
    /// to back off.
    async fn poisoned(&self, run_id: &str, ended: Option<&str>, e: ConductorError) -> usize {
        if e.is_transient() {
            return 1;
        }
        let _g = self.lock_of(run_id).lock().await;
        let outcome = match self.store.workflow_run(run_id).await {
            Ok(Some(mut run)) if run.status == "running" => {
                let (error, cause) = match &e {
                    ConductorError::Ledger(AppendError::TooLarge { .. } | AppendError::TooDeep { .. }) => (
                        DATA_LIMIT_EXCEEDED,
                        format!("the run's next move was refused by the ledger: {e}"),
                    ),
                    _ => (
                        RUNTIME,
                        format!("the run cannot move: {e}; it is failed rather than retried"),
                    ),
                };
                self.fail(&mut run, error, &cause, ended).await
            }
            Ok(_) => match ended {
                Some(execution) => self.settle_only(execution).await,
                None => Ok(()),
            },
            Err(e) => Err(e.into()),
        };
        match outcome {
            Ok(()) => 0,
            Err(e) => {
                tracing::warn!(run = %run_id, error = %e, "workflow: failing a run that cannot move failed");
                1
            }
        }
    }

    /// Runs until `stop` turns true, or a pass cannot read what is due.
    pub async fn run(
        self: Arc<Self>,
        mut stop: watch::Receiver<bool>,
        ctx: crate::supervise::TaskCtx,
    ) -> anyhow::Result<()> {
        let mut backoff: Option<Duration> = None;
        loop {
            let (_, failed) = self
                .tick()
                .await
                .map_err(|e| anyhow::anyhow!("a workflow pass failed: {e}"))?;
            let idle = if self.kernel.has_peers() {
                IDLE_SHARED
            } else {
                IDLE_ALONE
            };
            let next = self
                .store
                .workflow_next_wake()
                .await
                .map_err(|e| anyhow::anyhow!("reading the next workflow timer failed: {e}"))?;
            ctx.up();
            let mut sleep = match next {
                Some(at) => Duration::from_millis((at - self.clock.now_ms()).max(0) as u64).min(idle),
                None => idle,
            };
            // Moves that failed for a passing reason are tried again, but
            // not at once: the next pass waits, longer each time.
            backoff = if failed > 0 {
                Some(backoff.map_or(MIN_PASS_BACKOFF, |b| (b * 2).min(MAX_PASS_BACKOFF)))
            } else {
                None
            };
            if let Some(b) = backoff {
                sleep = sleep.max(b);
            }
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = self.kernel.run_ended.notified(), if backoff.is_none() => {}
                _ = self.wake.notified(), if backoff.is_none() => {}
                _ = stop.changed() => return Ok(()),
            }
        }
    }
}

/// One move of a run, to commit: its new position, the entries recording
/// it, the executions it starts, the ended one it took in, and whether
/// states are left ready (the budget ran out).
struct Move {
    position: Position,
    now: i64,
    records: Vec<RunRecord>,
    spawned: Vec<crate::kernel::Spawned>,
    settled: Vec<String>,
    more: bool,
}

/// A ledger entry about a run, numbered when committed.
struct RunRecord {
    kind: &'static str,
    actor: String,
    payload: Value,
}

impl RunRecord {
    fn new(kind: &'static str, actor: impl Into<String>, payload: Value) -> Self {
        RunRecord {
            kind,
            actor: actor.into(),
            payload,
        }
    }
}

/// What an ended execution means to the state waiting for it.
fn outcome_of(exec: &ExecutionRow, context: &Value) -> Outcome {
    if exec.state == ExecState::Completed {
        let output = exec.output.clone().unwrap_or(Value::Null);
        let state = exec
            .context
            .as_ref()
            .and_then(|c| c["workflow"]["state"].as_str())
            .unwrap_or_default();
        if let Some(schema) = context["skills"][state]["output_schema"].as_object()
            && let Err(faults) = crate::skill::validate_output(&Value::Object(schema.clone()), &output)
        {
            return Outcome::Failed {
                error: RESULT_SCHEMA_MISMATCH.into(),
                cause: format!(
                    "the output does not match the skill's output schema: {}",
                    faults.join("; ")
                ),
            };
        }
        return Outcome::Succeeded(output);
    }
    let error = exec.output.as_ref().map(|o| o["error"].clone()).unwrap_or(Value::Null);
    if error["timed_out"] == Value::Bool(true) {
        return Outcome::Failed {
            error: TIMEOUT.into(),
            cause: error["reason"].as_str().unwrap_or("timed out").to_string(),
        };
    }
    let named = match &error {
        Value::String(s) => Some(s.as_str()),
        Value::Object(o) => o.get("error").and_then(Value::as_str),
        _ => None,
    };
    let name = match named {
        // An agent cannot raise the terminal error: only the run's own data
        // can pass its bounds.
        Some(n) if error_names::check(n).is_ok() && n != error_names::ALL && n != DATA_LIMIT_EXCEEDED => n.to_string(),
        _ => TASK_FAILED.to_string(),
    };
    let cause = match &error {
        Value::Object(o) => o
            .get("cause")
            .or_else(|| o.get("reason"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| error.to_string()),
        Value::String(_) => String::new(),
        Value::Null => format!("the execution was {}", exec.state),
        other => other.to_string(),
    };
    Outcome::Failed { error: name, cause }
}

/// A kernel execution for `state` of the run: its labels, initiator and
/// policy context; the agent (or the review gate) is the caller's to set.
fn spawn_for(run: &WorkflowRunRow, execution: String, state: String, input: Value, now: i64, skill: Value) -> Spawn {
    Spawn {
        id: execution,
        now,
        tenant_id: run.tenant_id.clone(),
        run_id: run.id.clone(),
        labels: run_labels(run, &state),
        initiator: run.initiator.clone(),
        initiator_token: run.initiator_token.clone(),
        initiator_subject: run.initiator_subject.clone(),
        context: exec_context(run, &state, skill),
        state,
        agent_id: String::new(),
        input,
        timeout_secs: None,
        review: None,
    }
}

fn run_labels(run: &WorkflowRunRow, state: &str) -> Map<String, Value> {
    let mut labels = run.context["labels"].as_object().cloned().unwrap_or_default();
    labels.insert("workflow".into(), run.workflow.clone().into());
    labels.insert("workflow_state".into(), state.into());
    labels
}

/// What the kernel policy sees of the run, in every decision of the
/// execution.
fn exec_context(run: &WorkflowRunRow, state: &str, skill: Value) -> Value {
    json!({
        "workflow": {"name": run.workflow, "version": run.version, "run_id": run.id, "state": state},
        "skill": skill,
        "organisation": run.context["organisation"],
        "project": run.context["project"],
        "team": run.context["team"],
    })
}

/// Every `Task` state with a skill, branches included: (state, skill).
pub fn tasks_with_skills(states: &std::collections::BTreeMap<String, State>) -> Vec<(String, super::Skill)> {
    let mut out = Vec::new();
    for (name, state) in states {
        match state {
            State::Task(t) => {
                if let Some(s) = &t.skill {
                    out.push((name.clone(), s.clone()));
                }
            }
            State::Parallel(p) => {
                for b in &p.branches {
                    out.extend(tasks_with_skills(&b.states));
                }
            }
            _ => {}
        }
    }
    out
}

fn random_upto(n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("operating system random source");
    u64::from_le_bytes(b) % (n + 1)
}

/// A run's position as stored, or why it cannot be read.
fn position_of(run: &WorkflowRunRow) -> std::result::Result<Position, String> {
    if let Some(fault) = &run.fault
        && run.position.is_null()
    {
        return Err(fault.clone());
    }
    serde_json::from_value(run.position.clone()).map_err(|e| format!("the run's position cannot be read: {e}"))
}

fn view(run: &WorkflowRunRow, receipts: Vec<Receipt>) -> RunView {
    let position: Option<Position> = serde_json::from_value(run.position.clone()).ok();
    RunView {
        id: run.id.clone(),
        workflow: run.workflow.clone(),
        version: run.version,
        digest: run.digest.clone(),
        status: run.status.clone(),
        input: run.input.clone(),
        output: run.output.clone(),
        context: run.context.clone(),
        position: position.as_ref().map(|p| thread_view(&p.root)).unwrap_or(Value::Null),
        recent: position.map(|p| p.recent).unwrap_or_default(),
        transitions: run.transitions,
        wake_at: run.wake_at.map(rfc3339_ms),
        initiator: run.initiator.clone(),
        created_at: rfc3339_ms(run.created_at),
        updated_at: rfc3339_ms(run.updated_at),
        receipts,
    }
}

fn thread_view(t: &Thread) -> Value {
    let mut v = json!({"state": t.state});
    match &t.phase {
        Phase::Ready => v["phase"] = "ready".into(),
        Phase::Execution { execution } => {
            v["phase"] = "execution".into();
            v["execution"] = execution.clone().into();
        }
        Phase::Waiting { until, .. } => {
            v["phase"] = "waiting".into();
            v["until"] = rfc3339_ms(*until).into();
        }
        Phase::Retrying { until } => {
            v["phase"] = "retrying".into();
            v["until"] = rfc3339_ms(*until).into();
        }
        Phase::Branches { branches, .. } => {
            v["phase"] = "branches".into();
            v["branches"] = branches.iter().map(thread_view).collect();
        }
        Phase::Succeeded { .. } => v["phase"] = "succeeded".into(),
        Phase::Failed { error, .. } => {
            v["phase"] = "failed".into();
            v["error"] = error.clone().into();
        }
    }
    v
}
