//! The kernel's background pass: step deadlines, review expiry, retry
//! back-offs, dispatch to runners, execution and agent time-outs,
//! assignment of waiting executions to agent streams, and the end of
//! streams whose token was revoked elsewhere or expired. Everything due is
//! read from the store, so a restart loses no timer.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::Kernel;

/// How often old stream messages are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// How often an instance says it is alive; one silent for
/// [`SILENT_AFTER_MS`] gives its agents' executions back.
const BEAT_EVERY: Duration = Duration::from_secs(5);
const SILENT_AFTER_MS: i64 = 30_000;

/// Runs until `stop` turns true.
pub async fn run(kernel: Arc<Kernel>, mut stop: watch::Receiver<bool>) {
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
        if let Err(e) = kernel.tick().await {
            tracing::warn!(error = %e, "kernel: a timer pass failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = kernel.due.notified() => {}
            _ = stop.changed() => return,
        }
    }
}
