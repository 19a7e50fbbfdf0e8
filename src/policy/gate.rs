//! Where policies evaluate: off the async workers, a bounded number at a
//! time, and a bounded number per tenant.
//!
//! Parsing an input and evaluating Rego are CPU work that a hostile input
//! or a heavy policy can stretch. Run on the async workers, one such
//! evaluation holds a worker that `/health`, streams and every other tenant
//! need. Here each evaluation runs on tokio's blocking pool, holding one of
//! `threads` permits and one of its tenant's `per_tenant` permits (both
//! taken in arrival order, both released only when the evaluation has
//! really ended, even if its caller went away). A tenant can therefore
//! occupy at most `per_tenant` evaluation threads, and the others keep
//! theirs. A caller waits at most `queue_wait` for its permits, then gets
//! `policy_busy` (503, retry shortly) rather than a request that never
//! answers.
//!
//! Threads bound how many evaluations a tenant runs, not how much CPU they
//! burn: a policy that spins until its time limit holds its cores for all
//! of it. So a tenant whose last evaluation took `slow` or longer is
//! *heavy*: its evaluations run on a few threads of their own scheduled
//! with Linux's `SCHED_IDLE` policy, which get the CPU only when no
//! ordinary thread wants it. Alone, a heavy tenant runs as fast as before;
//! beside others, it yields to them. Its next evaluation that takes less
//! than `slow` makes it ordinary again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use super::Error;

/// Sizes of the gate.
#[derive(Debug, Clone, Copy)]
pub struct GateLimits {
    /// Evaluations running at once, all tenants together.
    pub threads: usize,
    /// Evaluations running at once for one tenant.
    pub per_tenant: usize,
    /// Longest a caller waits for its turn.
    pub queue_wait: Duration,
    /// An evaluation this long makes its tenant heavy (zero: never).
    pub slow: Duration,
}

impl GateLimits {
    /// The defaults for this machine: twice the cores overall (at least
    /// four), and each tenant at most as many as there are cores, so one
    /// tenant alone can use every core and never every thread.
    pub fn for_machine(threads: usize, per_tenant: usize, queue_wait: Duration, slow: Duration) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = if threads == 0 { (2 * cores).max(4) } else { threads };
        let per_tenant = if per_tenant == 0 { cores } else { per_tenant };
        Self {
            threads,
            per_tenant: per_tenant.clamp(1, threads),
            queue_wait,
            slow,
        }
    }
}

pub struct EvalGate {
    limits: GateLimits,
    all: Arc<Semaphore>,
    tenants: Mutex<HashMap<String, Tenant>>,
    /// Where heavy tenants' evaluations run.
    idle: IdlePool,
}

struct Tenant {
    permits: Arc<Semaphore>,
    /// Its last evaluation took `slow` or longer.
    heavy: bool,
}

type Job = Box<dyn FnOnce() + Send>;

/// Threads that run only when the CPU is otherwise idle (`SCHED_IDLE`),
/// as many as the gate's threads, started with the gate.
struct IdlePool {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl IdlePool {
    fn start(threads: usize) -> Self {
        let (jobs, rx) = std::sync::mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("warden-eval-idle-{n}"))
                .spawn(move || {
                    demote_this_thread();
                    loop {
                        let job = rx.lock().expect("idle pool queue").recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start an idle evaluation thread");
            }
        }
        Self { jobs }
    }
}

/// Schedules the calling thread with `SCHED_IDLE`; where that is refused
/// (or not Linux), the thread keeps its ordinary policy and says so once.
fn demote_this_thread() {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::unix::{
            NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy, thread_native_id,
        };
        let policy = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
        // SCHED_IDLE has one static priority, the minimum.
        let priority = thread_priority::ThreadPriority::Min;
        if let Err(e) = set_thread_priority_and_policy(thread_native_id(), priority, policy) {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| tracing::warn!(error = ?e, "heavy tenants' evaluations run at ordinary priority: SCHED_IDLE was refused"));
        }
    }
}

impl EvalGate {
    pub fn new(limits: GateLimits) -> Self {
        Self {
            limits,
            all: Arc::new(Semaphore::new(limits.threads)),
            tenants: Mutex::new(HashMap::new()),
            idle: IdlePool::start(limits.threads),
        }
    }

    pub fn limits(&self) -> GateLimits {
        self.limits
    }

    /// The tenant's permits, and whether it is heavy.
    fn tenant(&self, tenant_id: &str) -> (Arc<Semaphore>, bool) {
        let mut tenants = self.tenants.lock().expect("gate lock");
        if let Some(t) = tenants.get(tenant_id) {
            return (t.permits.clone(), t.heavy);
        }
        let permits = Arc::new(Semaphore::new(self.limits.per_tenant));
        tenants.insert(
            tenant_id.to_string(),
            Tenant {
                permits: permits.clone(),
                heavy: false,
            },
        );
        (permits, false)
    }

    /// Whether this tenant is heavy now (its last evaluation was slow).
    pub fn is_heavy(&self, tenant_id: &str) -> bool {
        self.tenants
            .lock()
            .expect("gate lock")
            .get(tenant_id)
            .is_some_and(|t| t.heavy)
    }

    fn took(&self, tenant_id: &str, took: Duration) {
        if self.limits.slow.is_zero() {
            return;
        }
        if let Some(t) = self.tenants.lock().expect("gate lock").get_mut(tenant_id) {
            t.heavy = took >= self.limits.slow;
        }
    }

    /// Runs `work` for `tenant_id` on the blocking pool once both permits
    /// are held.
    pub async fn run<T: Send + 'static>(
        &self,
        tenant_id: &str,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Error> {
        let (tenant, heavy) = self.tenant(tenant_id);
        let all = self.all.clone();
        let permits: (OwnedSemaphorePermit, OwnedSemaphorePermit) =
            match tokio::time::timeout(self.limits.queue_wait, async move {
                let mine = tenant.acquire_owned().await.expect("gate semaphores are never closed");
                let any = all.acquire_owned().await.expect("gate semaphores are never closed");
                (mine, any)
            })
            .await
            {
                Ok(p) => p,
                Err(_) => {
                    return Err(Error::PolicyBusy(self.limits.queue_wait.as_millis() as u64));
                }
            };
        // The work, timed where it runs; the permits go when it ends.
        let timed = move || {
            let started = Instant::now();
            let out = work();
            let took = started.elapsed();
            drop(permits);
            (out, took)
        };
        let outcome = if heavy {
            let (tx, rx) = oneshot::channel();
            let job: Job = Box::new(move || {
                let _ = tx.send(timed());
            });
            match self.idle.jobs.send(job) {
                Ok(()) => rx.await.map_err(|_| Error::Internal("policy evaluation failed".into())),
                Err(_) => Err(Error::Internal("the idle evaluation threads are gone".into())),
            }
        } else {
            tokio::task::spawn_blocking(timed)
                .await
                .map_err(|e| Error::Internal(format!("policy evaluation failed: {e}")))
        };
        let (out, took) = outcome?;
        self.took(tenant_id, took);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    fn gate(threads: usize, per_tenant: usize, wait_ms: u64) -> Arc<EvalGate> {
        Arc::new(EvalGate::new(GateLimits {
            threads,
            per_tenant,
            queue_wait: Duration::from_millis(wait_ms),
            slow: Duration::from_millis(20),
        }))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slow_evaluation_makes_its_tenant_heavy_until_a_quick_one() {
        let g = gate(4, 2, 5_000);
        g.run("t", || ()).await.unwrap();
        assert!(!g.is_heavy("t"));
        g.run("t", || std::thread::sleep(Duration::from_millis(40)))
            .await
            .unwrap();
        assert!(g.is_heavy("t"), "a 40 ms evaluation makes its tenant heavy");
        // Heavy tenants' evaluations still run, and answer, on the idle
        // threads; a quick one makes the tenant ordinary again.
        let (name, policy) = g
            .run("t", || {
                (
                    std::thread::current().name().map(str::to_string),
                    thread_priority::unix::thread_schedule_policy().ok(),
                )
            })
            .await
            .unwrap();
        assert!(name.is_some_and(|n| n.starts_with("warden-eval-idle-")));
        #[cfg(target_os = "linux")]
        assert_eq!(
            policy,
            Some(thread_priority::unix::ThreadSchedulePolicy::Normal(
                thread_priority::unix::NormalThreadSchedulePolicy::Idle
            )),
            "the idle threads are scheduled with SCHED_IDLE"
        );
        assert!(!g.is_heavy("t"));
        assert!(!g.is_heavy("other"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tenant_holding_its_share_leaves_the_rest_to_others() {
        let g = gate(4, 2, 5_000);
        let release = Arc::new(std::sync::Barrier::new(3));
        // Tenant a: two evaluations that block until released, and a third
        // that must wait for one of them.
        let mut stuck = Vec::new();
        for _ in 0..2 {
            let (g, r) = (g.clone(), release.clone());
            stuck.push(tokio::spawn(async move { g.run("a", move || r.wait()).await }));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let third = {
            let g = g.clone();
            tokio::spawn(async move { g.run("a", Instant::now).await })
        };
        // Tenant b is served at once, while a's third still waits.
        let started = Instant::now();
        g.run("b", || ()).await.unwrap();
        assert!(started.elapsed() < Duration::from_millis(500));
        assert!(!third.is_finished(), "tenant a ran past its share");
        let released_at = Instant::now();
        release.wait();
        for s in stuck {
            s.await.unwrap().unwrap();
        }
        let ran_at = third.await.unwrap().unwrap();
        assert!(ran_at >= released_at);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_caller_that_cannot_get_a_turn_is_refused_as_busy() {
        let g = gate(1, 1, 100);
        let release = Arc::new(std::sync::Barrier::new(2));
        let held = {
            let (g, r) = (g.clone(), release.clone());
            tokio::spawn(async move { g.run("a", move || r.wait()).await })
        };
        tokio::time::sleep(Duration::from_millis(30)).await;
        let err = g.run("b", || ()).await.unwrap_err();
        assert_eq!(err.code(), "policy_busy");
        release.wait();
        held.await.unwrap().unwrap();
        // Once freed, the next caller runs.
        g.run("b", || ()).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn permits_are_held_until_the_work_ends_even_if_the_caller_left() {
        let g = gate(1, 1, 2_000);
        let running = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let caller = {
            let (g, running) = (g.clone(), running.clone());
            tokio::spawn(async move {
                g.run("a", move || {
                    running.fetch_add(1, Ordering::SeqCst);
                    let _ = rx.recv();
                })
                .await
            })
        };
        while running.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        caller.abort();
        // The abandoned evaluation still runs: nobody else may start.
        let err = tokio::time::timeout(Duration::from_millis(300), g.run("b", || ())).await;
        assert!(
            matches!(err, Ok(Err(_)) | Err(_)),
            "a second evaluation started while one was running"
        );
        tx.send(()).unwrap();
        g.run("b", || ()).await.unwrap();
    }

    #[test]
    fn defaults_follow_the_machine() {
        let l = GateLimits::for_machine(0, 0, Duration::from_secs(1), Duration::from_millis(10));
        assert!(l.threads >= 4);
        assert!(l.per_tenant >= 1 && l.per_tenant <= l.threads);
        let l = GateLimits::for_machine(3, 9, Duration::from_secs(1), Duration::from_millis(10));
        assert_eq!((l.threads, l.per_tenant), (3, 3));
    }
}
