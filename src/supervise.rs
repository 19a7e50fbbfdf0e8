//! Supervision of background tasks: the ledger writer, the workflow
//! engine, the kernel's timers, the policy refresher, the audit fan-out and
//! each sink's delivery.
//!
//! [`spawn`] runs a task and watches it. A task that ends as asked (it
//! returns `Ok`) is done; one that fails (returns an error or panics) is
//! logged, counted (`warden_task_restarts_total{task}`), marked down, and
//! started again after a back-off (100 ms, doubling to 30 s; back to
//! 100 ms once a run lasted a minute). A restarted task is down until it
//! says it works again ([`TaskCtx::up`], after its first good pass), so
//! `/health/ready` names it while it is down: an essential task down makes
//! the instance not ready; a sink's delivery down is reported but does not
//! (one tenant's sink must not take the instance out of service).
//!
//! Invariant: no task is restarted once stopping was asked for, and a
//! restart never runs two copies of one task at once (the supervisor
//! awaits the failed one first).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::metrics::{Metrics, TaskLabels};

/// The first back-off after a failure.
pub const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// The longest back-off.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A run that lasted this long resets the back-off.
const HEALTHY_AFTER: Duration = Duration::from_secs(60);

/// One supervised task, as readiness reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct TaskDown {
    /// `ledger_writer`, `workflow_engine`, `kernel_timers`, `kernel_wakes`,
    /// `policy_refresh`, `audit_fanout` or `sink_delivery`.
    pub task: String,
    /// Whether the instance is not ready while it is down.
    pub essential: bool,
    /// Restarts of tasks of this name since this instance started.
    pub restarts: u64,
    /// Why it cannot do its work, for a task that runs but whose writes
    /// fail (the ledger writer while its store refuses commits): `disk_full`,
    /// `busy`, `unreachable`, `read_only`, `constraint`, `conflict`,
    /// `corrupt`, `io` or `other`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// The store's last error, with that cause.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Since when, in Unix milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<i64>,
    /// Batches that failed since then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_batches: Option<u64>,
    /// When the last write failed (a batch, or the idle writer's probe),
    /// in Unix milliseconds: the store still refused then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_attempt_ms: Option<i64>,
}

impl TaskDown {
    pub fn failed(name: &str, essential: bool, restarts: u64) -> Self {
        TaskDown {
            task: name.to_string(),
            essential,
            restarts,
            cause: None,
            error: None,
            since_ms: None,
            failed_batches: None,
            last_attempt_ms: None,
        }
    }
}

struct Entry {
    name: &'static str,
    essential: bool,
    /// Why it is down, while it is.
    down: Option<String>,
}

/// Every supervised task of this instance and whether it is up.
pub struct Tasks {
    next: AtomicU64,
    entries: Mutex<BTreeMap<u64, Entry>>,
    restarts: Mutex<BTreeMap<&'static str, u64>>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Tasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tasks").field("down", &self.down()).finish()
    }
}

impl Tasks {
    pub fn new(metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Tasks {
            next: AtomicU64::new(0),
            entries: Mutex::default(),
            restarts: Mutex::default(),
            metrics,
        })
    }

    /// The tasks down now, one line per name (several sinks' deliveries
    /// are one `sink_delivery`).
    pub fn down(&self) -> Vec<TaskDown> {
        let entries = self.entries.lock().expect("tasks lock");
        let restarts = self.restarts.lock().expect("tasks lock");
        let mut out: BTreeMap<&'static str, TaskDown> = BTreeMap::new();
        for e in entries.values().filter(|e| e.down.is_some()) {
            out.entry(e.name)
                .or_insert_with(|| TaskDown::failed(e.name, e.essential, restarts.get(e.name).copied().unwrap_or(0)));
        }
        out.into_values().collect()
    }

    /// Restarts of tasks called `name` so far.
    pub fn restarts(&self, name: &str) -> u64 {
        self.restarts
            .lock()
            .expect("tasks lock")
            .get(name)
            .copied()
            .unwrap_or(0)
    }

    fn register(&self, name: &'static str, essential: bool) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.entries.lock().expect("tasks lock").insert(
            id,
            Entry {
                name,
                essential,
                down: None,
            },
        );
        self.gauge(name);
        id
    }

    fn set_down(&self, id: u64, why: Option<String>) {
        let name = {
            let mut entries = self.entries.lock().expect("tasks lock");
            let Some(e) = entries.get_mut(&id) else {
                return;
            };
            if e.down.is_none() && why.is_none() {
                return;
            }
            e.down = why;
            e.name
        };
        self.gauge(name);
    }

    fn failed(&self, id: u64, name: &'static str, why: String) {
        *self.restarts.lock().expect("tasks lock").entry(name).or_default() += 1;
        self.metrics
            .task_restarts
            .get_or_create(&TaskLabels { task: name })
            .inc();
        self.set_down(id, Some(why));
    }

    fn forget(&self, id: u64) {
        let name = self.entries.lock().expect("tasks lock").remove(&id).map(|e| e.name);
        if let Some(name) = name {
            self.gauge(name);
        }
    }

    fn gauge(&self, name: &'static str) {
        let down = self
            .entries
            .lock()
            .expect("tasks lock")
            .values()
            .filter(|e| e.name == name && e.down.is_some())
            .count();
        self.metrics
            .tasks_down
            .get_or_create(&TaskLabels { task: name })
            .set(down as i64);
    }
}

/// What a supervised task is handed at every start.
#[derive(Clone)]
pub struct TaskCtx {
    tasks: Arc<Tasks>,
    id: u64,
    /// How many times this task has been started before (0 the first time).
    pub restarts: u64,
}

impl TaskCtx {
    /// The task works (again): it is no longer reported down. Cheap; call
    /// it after every good pass.
    pub fn up(&self) {
        self.tasks.set_down(self.id, None);
    }
}

/// Runs `make(ctx)` as a task and supervises it: restarted with back-off
/// whenever it fails, until it ends as asked or `stop` turns true. The
/// handle ends when the task is done for good.
pub fn spawn<F, Fut>(
    tasks: &Arc<Tasks>,
    name: &'static str,
    essential: bool,
    stop: Option<watch::Receiver<bool>>,
    mut make: F,
) -> JoinHandle<()>
where
    F: FnMut(TaskCtx) -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let tasks = tasks.clone();
    let id = tasks.register(name, essential);
    tokio::spawn(async move {
        let mut stop = stop;
        let stopping = |stop: &Option<watch::Receiver<bool>>| stop.as_ref().is_some_and(|s| *s.borrow());
        let mut backoff = MIN_BACKOFF;
        let mut restarts = 0;
        loop {
            let ctx = TaskCtx {
                tasks: tasks.clone(),
                id,
                restarts,
            };
            let started = tokio::time::Instant::now();
            let why = match tokio::spawn(make(ctx)).await {
                Ok(Ok(())) => break,
                Ok(Err(e)) => format!("{e:#}"),
                Err(e) if e.is_panic() => format!("panicked: {}", panic_message(e.into_panic())),
                Err(_) => break,
            };
            if stopping(&stop) {
                tracing::warn!(task = name, error = %why, "background task failed while stopping");
                break;
            }
            if started.elapsed() >= HEALTHY_AFTER {
                backoff = MIN_BACKOFF;
            }
            tasks.failed(id, name, why.clone());
            tracing::error!(task = name, error = %why, restart_in_ms = backoff.as_millis() as u64,
                "background task failed; restarting it");
            let wait = tokio::time::sleep(backoff);
            match stop.as_mut() {
                Some(s) => {
                    tokio::select! {
                        _ = wait => {}
                        _ = s.wait_for(|v| *v) => break,
                    }
                }
                None => wait.await,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
            restarts += 1;
        }
        tasks.forget(id);
    })
}

/// The text a panic was raised with.
pub fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-text panic".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test]
    async fn a_failing_task_is_restarted_counted_and_down_until_it_works() {
        let metrics = Arc::new(Metrics::new());
        let tasks = Tasks::new(metrics.clone());
        let (stop_tx, stop_rx) = watch::channel(false);
        let runs = Arc::new(AtomicUsize::new(0));
        let (ok_tx, mut ok_rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
        let r = runs.clone();
        let handle = spawn(&tasks, "workflow_engine", true, Some(stop_rx.clone()), move |ctx| {
            let n = r.fetch_add(1, Ordering::SeqCst);
            let ok = ok_tx.clone();
            let mut stop = stop_rx.clone();
            async move {
                match n {
                    0 => anyhow::bail!("the store failed a pass"),
                    1 => panic!("a bug"),
                    _ => {
                        ctx.up();
                        let _ = ok.send(ctx.restarts as usize);
                        let _ = stop.wait_for(|s| *s).await;
                        Ok(())
                    }
                }
            }
        });
        // Down after the first failure, named, counted.
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(tasks.down(), vec![TaskDown::failed("workflow_engine", true, 1)]);
        assert!(
            metrics
                .render()
                .contains("warden_task_restarts_total{task=\"workflow_engine\"} 1")
        );
        // The panic is a failure too; the third start works and says so.
        assert_eq!(ok_rx.recv().await, Some(2));
        assert_eq!(tasks.restarts("workflow_engine"), 2);
        assert!(tasks.down().is_empty());
        assert!(
            metrics
                .render()
                .contains("warden_tasks_down{task=\"workflow_engine\"} 0")
        );
        stop_tx.send(true).unwrap();
        handle.await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 3, "not restarted once it ended as asked");
    }

    #[tokio::test]
    async fn back_off_doubles_and_stopping_ends_the_restarts() {
        let tasks = Tasks::new(Arc::new(Metrics::new()));
        let (stop_tx, stop_rx) = watch::channel(false);
        let starts = Arc::new(Mutex::new(Vec::new()));
        let s = starts.clone();
        let t0 = tokio::time::Instant::now();
        let handle = spawn(&tasks, "kernel_timers", true, Some(stop_rx), move |_| {
            s.lock().unwrap().push(t0.elapsed());
            async { anyhow::bail!("always") }
        });
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        let at: Vec<u128> = starts.lock().unwrap().iter().map(|d| d.as_millis()).collect();
        // Started at 0, then after 100, 200 and 400 ms of back-off.
        assert_eq!(at.len(), 4, "{at:?}");
        for (got, want) in at.iter().zip([0u128, 100, 300, 700]) {
            assert!(*got >= want && *got < want + 90, "{at:?}");
        }
        assert_eq!(tasks.down().len(), 1);
        stop_tx.send(true).unwrap();
        handle.await.unwrap();
        assert!(tasks.down().is_empty(), "a stopped task is forgotten");
    }

    #[tokio::test]
    async fn a_task_that_ends_as_asked_is_not_restarted() {
        let tasks = Tasks::new(Arc::new(Metrics::new()));
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        spawn(&tasks, "sink_delivery", false, None, move |_| {
            r.fetch_add(1, Ordering::SeqCst);
            async { Ok(()) }
        })
        .await
        .unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(tasks.restarts("sink_delivery"), 0);
    }
}
