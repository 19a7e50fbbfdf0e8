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

use super::{Kernel, KernelError};
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
