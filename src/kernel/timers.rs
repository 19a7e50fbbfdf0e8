//! The kernel's background pass: step deadlines, review expiry, retry
//! back-offs, dispatch to runners, execution and agent time-outs,
//! assignment of waiting executions to agent streams, and the end of
//! streams whose token was revoked elsewhere or expired. Everything due is
//! read from the store, so a restart loses no timer.
//!
//! What is due is read per tenant, at most a share each, round robin
//! (`Store::kernel_due_steps`, `kernel_due_executions`, `kernel_unassigned`):
//! one tenant's backlog or slow policy never keeps another's work waiting
//! for more than its own share of a pass.
//!
//! A pass that fails (the store did not answer) ends the task; its
//! supervisor ([`crate::supervise`]) restarts it with back-off, and
//! readiness names `kernel_timers` until a pass succeeds again.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use serde_json::json;

use super::edit::Edit;
use super::error::Result;
use super::streams::*;
use super::{Kernel, KernelError, SYSTEM};
use crate::clock::rfc3339_ms;
use crate::model::kernel::*;
use crate::store::StoreError;
use crate::supervise::TaskCtx;

/// How often old stream messages are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// How often an instance says it is alive; one silent for
/// [`SILENT_AFTER_MS`] gives its agents' executions back.
const BEAT_EVERY: Duration = Duration::from_secs(5);
const SILENT_AFTER_MS: i64 = 30_000;

/// Runs until `stop` turns true, or a pass fails.
pub async fn run(kernel: Arc<Kernel>, mut stop: watch::Receiver<bool>, ctx: TaskCtx) -> anyhow::Result<()> {
    if let Err(e) = kernel.release_stale_streams().await {
        tracing::warn!(error = %e, "kernel: releasing the previous run's streams failed");
    }
    let every = Duration::from_millis(kernel.cfg.tick_ms.max(10));
    let mut pruned: Option<tokio::time::Instant> = None;
    let mut beat: Option<tokio::time::Instant> = None;
    let mut tokens_checked = tokio::time::Instant::now();
    loop {
        if tokens_checked.elapsed() >= kernel.token_check {
            tokens_checked = tokio::time::Instant::now();
            match kernel.close_dead_streams().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(streams = n, "kernel: closed streams whose token was revoked or expired"),
                Err(e) => tracing::warn!(error = %e, "kernel: checking the tokens of open streams failed"),
            }
        }
        if beat.is_none_or(|t| t.elapsed() >= BEAT_EVERY) {
            beat = Some(tokio::time::Instant::now());
            if let Err(e) = kernel.watch_instances(SILENT_AFTER_MS).await {
                tracing::warn!(error = %e, "kernel: watching other instances failed");
            }
        }
        if pruned.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
            pruned = Some(tokio::time::Instant::now());
            let before = kernel.clock.now_ms() - (kernel.cfg.stream_retention_secs as i64) * 1000;
            match kernel.store.kernel_prune_pushes(before).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(messages = n, "kernel: pruned old stream messages"),
                Err(e) => tracing::warn!(error = %e, "kernel: pruning old stream messages failed"),
            }
        }
        match kernel.tick().await {
            Ok(_) => ctx.up(),
            // Another instance moved an execution first: a race, not a fault.
            Err(KernelError::Store(StoreError::Changed(_))) => ctx.up(),
            // The ledger is busy (its queue full) or away for a moment: the
            // next pass tries again; the store itself still answers.
            Err(KernelError::Ledger(e)) if e.is_transient() => {
                tracing::warn!(error = %e, "kernel: a timer pass could not commit; trying again at the next");
            }
            Err(e) => anyhow::bail!("a timer pass failed: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = kernel.due.notified() => {}
            _ = stop.changed() => return Ok(()),
        }
    }
}

impl Kernel {
    /// One pass over what is due. Returns how many things moved.
    pub async fn tick(&self) -> Result<usize> {
        let now = self.clock.now_ms();
        let mut moved = 0;
        for s in self.store.kernel_due_steps(now, 500).await? {
            match self.step_due(&s.execution_id, &s.id).await {
                Ok(true) => moved += 1,
                Ok(false) => {}
                Err(KernelError::Store(StoreError::Changed(_))) => {}
                Err(e) => tracing::warn!(step = %s.id, error = %e, "kernel: a due step could not move"),
            }
        }
        let lost_before = now - (self.cfg.agent_timeout_secs as i64) * 1000;
        for e in self.store.kernel_due_executions(now, lost_before, 500).await? {
            match self.execution_due(&e.id).await {
                Ok(true) => moved += 1,
                Ok(false) => {}
                Err(KernelError::Store(StoreError::Changed(_))) => {}
                Err(err) => tracing::warn!(execution = %e.id, error = %err, "kernel: a due execution could not move"),
            }
        }
        self.assign_waiting(None).await?;
        Ok(moved)
    }

    pub(super) async fn step_due(&self, execution_id: &str, step_id: &str) -> Result<bool> {
        let _g = self.lock_of(execution_id).lock().await;
        let Some(step) = self.store.kernel_step(step_id).await? else {
            return Ok(false);
        };
        let Some(exec) = self.store.kernel_execution(execution_id).await? else {
            return Ok(false);
        };
        if step.state.is_terminal() || exec.state.is_terminal() {
            return Ok(false);
        }
        let now = self.clock.now_ms();
        let mut edit = Edit::of(exec, now);
        if step.review == Some(ReviewState::Waiting) {
            if step.review_expires_at.is_none_or(|t| t > now) {
                return Ok(false);
            }
            let mut s = step.clone();
            s.review = Some(ReviewState::Expired);
            edit.put_step(s.clone(), Some(step.state));
            edit.record(
                "kernel.approval.expired",
                SYSTEM,
                json!({"step_id": s.id, "on_expiry": s.on_expiry.as_str()}),
            );
            let s = edit.move_step(
                &s,
                StepState::Cancelled,
                "kernel.step.cancelled",
                SYSTEM,
                json!({"reason": "the review expired"}),
            )?;
            match s.on_expiry {
                OnExpiry::Fail => {
                    self.end(
                        &mut edit,
                        ExecState::Failed,
                        SYSTEM,
                        json!({"reason": "the review expired", "step_id": s.id, "timed_out": true}),
                    )
                    .await?;
                }
                OnExpiry::Continue => {
                    edit.move_exec(
                        ExecState::Running,
                        "kernel.execution.resumed",
                        SYSTEM,
                        json!({"step_id": s.id, "reason": "review expired"}),
                    )?;
                    let data = json!({"execution_id": edit.exec.id, "step_id": s.id, "state": "cancelled",
                        "review": "expired", "execution_state": "running"});
                    let agent = edit.agent();
                    edit.push(agent, "step.result", data);
                    if edit.exec.conn.is_none() {
                        release(&mut edit, SYSTEM, "no agent stream holds it")?;
                    }
                }
            }
        } else if step.deadline_at.is_some_and(|t| t <= now) {
            let s = edit.move_step(
                &step,
                StepState::TimedOut,
                "kernel.step.timed_out",
                SYSTEM,
                json!({"deadline_at": step.deadline_at.map(rfc3339_ms)}),
            )?;
            if let (true, Some(runner)) = (step.state != StepState::Pending, &step.runner_id) {
                let r = runner_recipient(&edit.exec.tenant_id, runner);
                edit.push(
                    r,
                    "job.cancelled",
                    json!({"step_id": s.id, "execution_id": edit.exec.id, "reason": "timed out",
                        "idempotency_key": s.idempotency_key}),
                );
            }
            // Whether a timed-out call ran is unknown: only an idempotent
            // tool is tried again.
            self.after_failure(&mut edit, &s, s.idempotent, SYSTEM)?;
        } else if step.state == StepState::Pending {
            let s = self.dispatch(&mut edit, &step, SYSTEM)?;
            if edit.steps.is_empty() {
                return Ok(false);
            }
            self.commit(edit).await?;
            return Ok(s.state != StepState::Pending);
        } else {
            return Ok(false);
        }
        self.commit(edit).await?;
        Ok(true)
    }

    pub(super) async fn execution_due(&self, id: &str) -> Result<bool> {
        let _g = self.lock_of(id).lock().await;
        let Some(exec) = self.store.kernel_execution(id).await? else {
            return Ok(false);
        };
        let now = self.clock.now_ms();
        let lost_before = now - (self.cfg.agent_timeout_secs as i64) * 1000;
        let mut edit = Edit::of(exec.clone(), now);
        if exec.state.is_terminal() {
            return Ok(false);
        } else if exec.deadline_at <= now {
            let to = if exec.state == ExecState::Pending {
                ExecState::Cancelled
            } else {
                ExecState::Failed
            };
            self.end(
                &mut edit,
                to,
                SYSTEM,
                json!({"reason": "the execution timed out", "deadline_at": rfc3339_ms(exec.deadline_at),
                    "timed_out": true}),
            )
            .await?;
        } else if exec.state == ExecState::Blocked
            && exec.waiting_on != Some(WaitingOn::Approval)
            && exec.agent_lost_at.is_some_and(|t| t <= lost_before)
        {
            // Nothing is asked of the agent while people review: its clock
            // runs again from the end of the review.
            self.end(
                &mut edit,
                ExecState::Failed,
                SYSTEM,
                json!({"reason": "its agent did not come back in time",
                    "agent_timeout_secs": self.cfg.agent_timeout_secs}),
            )
            .await?;
        } else if exec.state == ExecState::Blocked
            && exec.waiting_on == Some(WaitingOn::Signal)
            && exec.wake_at.is_some_and(|t| t <= now)
        {
            edit.move_exec(
                ExecState::Running,
                "kernel.execution.resumed",
                SYSTEM,
                json!({"reason": "its wait ended"}),
            )?;
            let data = json!({"execution_id": id, "reason": "timer"});
            let agent = edit.agent();
            edit.push(agent, "execution.resumed", data);
            if edit.exec.conn.is_none() {
                release(&mut edit, SYSTEM, "no agent stream holds it")?;
            }
        } else {
            return Ok(false);
        }
        self.commit(edit).await?;
        Ok(true)
    }
}
