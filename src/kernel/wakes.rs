//! Wake-ups across instances. A stream reads its messages from the store,
//! so a message another instance committed reaches it at its next poll
//! (every second or so while other instances are alive). On PostgreSQL the
//! instances also tell each other: after a commit that pushed to streams,
//! the committing instance sends the recipients' names on the database's
//! NOTIFY channel (what was committed meanwhile goes in one notice), and
//! each instance listens and wakes its own streams of those recipients.
//!
//! An execution created (by a request or a workflow run) or given back
//! where its agent has no stream asks the other instances for a timer pass,
//! which assigns it to the agent's stream wherever it is, instead of at
//! their next tick.
//!
//! An instance that starts sends a notice naming no recipient, so the others
//! notify its streams at once instead of from their next beat.
//!
//! A notice is a hint, never the message: one lost (the connection dropped,
//! the task restarting, the outbox full) costs a stream only the wait for
//! its next poll, and a listener that reconnects wakes every stream, which
//! then reads what it missed.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, watch};

use super::Kernel;
use crate::store::{MAX_WAKE_PAYLOAD, StoreError, WakeListener};
use crate::supervise::TaskCtx;

/// The line of a notice that asks for a timer pass rather than naming a
/// recipient (recipients are `kind/tenant/name`).
const DUE: &str = "due";

/// Recipients waiting to be sent at most; past it they are dropped (their
/// streams poll).
const OUTBOX_LIMIT: usize = 10_000;

/// Recipients of this instance's commits, waiting for the task to send them.
#[derive(Default)]
pub(super) struct Outbox {
    /// Whether the task runs (PostgreSQL): else nothing is kept.
    open: AtomicBool,
    pending: Mutex<Vec<String>>,
    ready: Notify,
}

impl Outbox {
    pub(super) fn add(&self, recipients: &[String]) {
        if recipients.is_empty() || !self.open.load(Ordering::Relaxed) {
            return;
        }
        let mut pending = self.pending.lock().expect("outbox lock");
        if pending.len() + recipients.len() <= OUTBOX_LIMIT {
            pending.extend_from_slice(recipients);
        }
        drop(pending);
        self.ready.notify_one();
    }

    /// Asks the other instances for a timer pass now (an execution waits
    /// for an agent stream that may be on one of them).
    pub(super) fn add_due(&self) {
        self.add(&[DUE.to_string()]);
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.pending.lock().expect("outbox lock"))
    }
}

/// The notices for `recipients` (each once), from instance `from`: its id
/// on the first line, then a recipient a line, each notice under
/// PostgreSQL's payload limit.
pub fn payloads(from: &str, recipients: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut current = from.to_string();
    for r in &recipients {
        // A recipient is `kind/tenant/name`: no line breaks, bounded names.
        if r.contains('\n') || !seen.insert(r.as_str()) {
            continue;
        }
        if current.len() + 1 + r.len() >= MAX_WAKE_PAYLOAD && current.len() > from.len() {
            out.push(std::mem::replace(&mut current, from.to_string()));
        }
        current.push('\n');
        current.push_str(r);
    }
    if current.len() > from.len() {
        out.push(current);
    }
    out
}

impl Kernel {
    /// Wakes this instance's streams named in another instance's notice.
    fn woken_by(&self, payload: &str) {
        let mut lines = payload.lines();
        if lines.next() == Some(self.instance.as_str()) {
            return;
        }
        // Another instance is alive: this one's commits wake its streams
        // from now on, without waiting for the next beat to see it.
        self.peers.store(true, Ordering::Relaxed);
        for line in lines {
            if line == DUE {
                self.due.notify_one();
            } else {
                self.hub.wake(line);
            }
        }
    }
}

/// Sends this instance's notices and wakes its streams on the others', until
/// `stop`. Ends at once on SQLite. Fails (and is restarted) when the store
/// does not answer.
pub async fn run(kernel: Arc<Kernel>, mut stop: watch::Receiver<bool>, ctx: TaskCtx) -> anyhow::Result<()> {
    let Some(mut listener) = kernel.store.listen_wakes().await? else {
        return Ok(());
    };
    kernel.outbox.open.store(true, Ordering::Relaxed);
    // Nobody listened for a moment: every stream reads what it missed, and
    // the timers look for executions to assign.
    kernel.hub.wake_all();
    kernel.due.notify_one();
    // A notice naming no recipient: the others know at once that this
    // instance is alive (its streams need their notices).
    kernel.store.notify_wakes(&kernel.instance).await?;
    ctx.up();
    let outcome = tokio::select! {
        Err(e) = send(&kernel) => Err(anyhow::anyhow!("sending wake-ups failed: {e}")),
        Err(e) = receive(&kernel, &mut listener) => Err(anyhow::anyhow!("listening for wake-ups failed: {e}")),
        _ = stop.wait_for(|s| *s) => Ok(()),
    };
    if outcome.is_ok() {
        // Stopping: nothing will send what is kept. A task that failed
        // keeps the outbox for the one that replaces it.
        kernel.outbox.open.store(false, Ordering::Relaxed);
        kernel.outbox.take();
    }
    outcome
}

/// Sends what the outbox holds each time it is told to; ends only failing.
async fn send(kernel: &Kernel) -> Result<Infallible, StoreError> {
    loop {
        kernel.outbox.ready.notified().await;
        for payload in payloads(&kernel.instance, kernel.outbox.take()) {
            kernel.store.notify_wakes(&payload).await?;
        }
    }
}

/// Wakes this instance's streams on each notice; all of them when the
/// connection was lost. Ends only failing.
async fn receive(kernel: &Kernel, listener: &mut WakeListener) -> Result<Infallible, StoreError> {
    loop {
        match listener.next().await? {
            Some(payload) => kernel.woken_by(&payload),
            None => {
                tracing::warn!("kernel: the wake-up channel's connection was lost; listening again");
                kernel.hub.wake_all();
                kernel.due.notify_one();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_name_each_recipient_once_and_stay_under_the_payload_limit() {
        let recipients: Vec<String> = (0..2_000)
            .map(|i| format!("agent/ten_{}/claims-agent-{i}", i % 3))
            .chain(["agent/ten_1/claims-agent-7".to_string(), "bad\nline".to_string()])
            .collect();
        let notices = payloads("inst-a", recipients);
        assert!(notices.len() > 1, "2,000 recipients need several notices");
        let mut named = Vec::new();
        for n in &notices {
            assert!(n.len() < MAX_WAKE_PAYLOAD, "{} bytes", n.len());
            let mut lines = n.lines();
            assert_eq!(lines.next(), Some("inst-a"));
            named.extend(lines.map(str::to_string));
        }
        assert_eq!(named.len(), 2_000, "each once, the one with a line break left out");
        assert_eq!(named.iter().collect::<HashSet<_>>().len(), 2_000);
        assert!(payloads("inst-a", Vec::new()).is_empty());
    }
}
