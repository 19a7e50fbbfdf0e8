//! Composition root: builds the state from configuration, bootstraps an
//! empty store, runs the server and its background tasks, and shuts down in
//! order.
//!
//! Shutdown order: stop accepting connections → let in-flight requests finish
//! (up to `shutdown_grace_secs`; open agent and runner streams end at once,
//! each told to reconnect) → stop background tasks → close the store.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use ed25519_dalek::SigningKey;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::auth::{Role, RoleSet, hash_token, mint_token, new_id};
use crate::clock::Clock;
use crate::config::Config;
use crate::evidence::checkpoint::NoteSigner;
use crate::http::tokens::TokenCache;
use crate::http::{self, AppState};
use crate::ledger::writer::LedgerOptions;
use crate::ledger::{Ledger, Record};
use crate::metrics::Metrics;
use crate::policy::PolicyService;
use crate::policy::archive;
use crate::policy::service::PolicyLimits;
use crate::store::{AdminWrite, Change, Store, TenantRow, TokenRow};
use crate::supervise;

/// What start-up did about the first admin token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bootstrap {
    /// The store already had tenants.
    Existing,
    /// A token was minted; it must be shown to the operator once.
    Minted(String),
    /// The token given in `WARDEN_BOOTSTRAP_TOKEN` was installed.
    FromEnvironment,
}

/// Builds the application state: store, keys, policies, bootstrap.
pub async fn build(
    config: Config,
    clock: Clock,
    bootstrap_token: Option<String>,
) -> anyhow::Result<(AppState, Bootstrap)> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let url = config.database_url();
    let store = Store::connect_waiting(
        &url,
        config.max_connections,
        Duration::from_millis(config.store_wait_ms),
    )
    .await
    .with_context(|| format!("cannot open the store at {}", redact(&url)))?;
    // Tenants' sink secrets: every one readable, and under the current key,
    // before anything starts.
    let keyring = Arc::new(crate::secrets::Keyring::load(&config.sink_secrets, &config.data_dir)?);
    crate::fanout::reseal_tenant_sinks(&store, &keyring).await?;
    let keyring_for_mcp = keyring.clone();
    let (key, _) = crate::keys::load_or_create_server_key(&config.data_dir)?;
    let key = finish_key_rotation(&config, &store, key).await?;
    let metrics = Arc::new(Metrics::new());
    let tasks = crate::supervise::Tasks::new(metrics.clone());
    let ledger = Ledger::start(
        store.clone(),
        clock.clone(),
        key,
        LedgerOptions {
            name: config.ledger.name.clone(),
            queue_depth: config.ledger.queue_depth,
            max_batch: config.ledger.max_batch,
            max_payload_bytes: config.ledger.max_payload_bytes,
            tasks: Some(tasks.clone()),
        },
        metrics.clone(),
    )
    .await?;

    // The ceiling is process-wide: regorus checks it while evaluating.
    regorus::set_global_memory_limit(Some(config.policy.max_memory_bytes));

    let bootstrap = bootstrap(&store, &clock, &ledger, bootstrap_token).await?;
    let fanout = crate::fanout::Fanout::with_policy(
        &config.sinks,
        crate::fanout::TenantPolicy::new(&config.tenant_sinks, keyring.clone())?,
    )?;
    let limits = PolicyLimits {
        archive: archive::Limits {
            max_compressed_bytes: config.limits.max_bundle_bytes as u64,
            max_uncompressed_bytes: config.limits.max_bundle_uncompressed_bytes,
            max_ratio: config.limits.max_bundle_ratio,
            max_files: config.limits.max_bundle_files,
            max_file_bytes: config.limits.max_bundle_uncompressed_bytes,
        },
        eval_timeout: Duration::from_millis(config.policy.eval_timeout_ms),
        test_timeout: Duration::from_millis(config.policy.test_timeout_ms),
        gate: crate::policy::gate::GateLimits::for_machine(
            config.policy.eval_threads,
            config.policy.eval_per_tenant,
            Duration::from_millis(config.policy.eval_queue_ms),
            Duration::from_millis(config.policy.heavy_eval_ms),
        ),
    };
    let policy = Arc::new(PolicyService::new(
        store.clone(),
        ledger.clone(),
        clock.clone(),
        limits,
        metrics.clone(),
    ));
    let tokens = Arc::new(TokenCache::new(config.auth.cache_ttl_ms, clock.clone()));
    let sessions = Arc::new(crate::console::session::SessionCache::new(
        config.auth.cache_ttl_ms,
        clock.clone(),
    ));
    let kernel = Arc::new(
        crate::kernel::Kernel::new(
            store.clone(),
            ledger.clone(),
            policy.clone(),
            clock.clone(),
            metrics.clone(),
            config.kernel.clone(),
            crate::fanout::instance_id(&config.data_dir)?,
        )
        // Streams close within the cache's time of a revocation elsewhere.
        .with_token_check(Duration::from_millis(config.auth.cache_ttl_ms.max(100))),
    );
    let workflows = Arc::new(crate::workflow::conductor::Conductor::new(
        store.clone(),
        ledger.clone(),
        kernel.clone(),
        clock.clone(),
        metrics.clone(),
        config.workflow.clone(),
    ));
    let mcp = Arc::new(crate::mcp::Gateway::new(
        store.clone(),
        ledger.clone(),
        policy.clone(),
        kernel.clone(),
        clock.clone(),
        config.mcp.clone(),
        Some(keyring_for_mcp),
    )?);
    let state = AppState {
        config: Arc::new(config),
        store,
        policy,
        tokens,
        sessions,
        metrics,
        clock,
        ledger,
        fanout,
        kernel,
        workflows,
        mcp,
        ready: Arc::new(AtomicBool::new(false)),
        tasks,
    };
    Ok((state, bootstrap))
}

/// A rotation that staged a new key file and then stopped: if the store
/// committed it, the new key takes over now; if not, the staged file goes.
async fn finish_key_rotation(config: &Config, store: &Store, key: SigningKey) -> anyhow::Result<SigningKey> {
    let Some(next) = crate::keys::staged_server_key(&config.data_dir)? else {
        return Ok(key);
    };
    let name = &config.ledger.name;
    let text = |k: &SigningKey| -> anyhow::Result<NoteSigner> {
        NoteSigner::new(name, k.clone()).map_err(|e| anyhow::anyhow!("ledger.name: {e}"))
    };
    let current = store.ledger_keys().await?.into_iter().find(|k| k.retired_at.is_none());
    if current.map(|k| k.verifier) == Some(text(&next)?.verifier().to_text()) {
        let retired = hex::encode(text(&key)?.verifier().key_id());
        crate::keys::promote_staged_server_key(&config.data_dir, &retired)?;
        tracing::info!("finished a ledger key rotation that was interrupted after it committed");
        Ok(next)
    } else {
        crate::keys::discard_staged_server_key(&config.data_dir)?;
        tracing::warn!("discarded a staged ledger key whose rotation never committed");
        Ok(key)
    }
}

/// Creates the platform tenant and its first admin token in an empty store,
/// and records both in the tenant's log.
async fn bootstrap(store: &Store, clock: &Clock, ledger: &Ledger, given: Option<String>) -> anyhow::Result<Bootstrap> {
    if store.tenant_count().await? > 0 {
        return Ok(Bootstrap::Existing);
    }
    let (secret, outcome) = match given {
        Some(t) => {
            if t.len() < 32 {
                anyhow::bail!("WARDEN_BOOTSTRAP_TOKEN must be at least 32 characters of high-entropy text");
            }
            (t, Bootstrap::FromEnvironment)
        }
        None => {
            let minted = mint_token();
            (minted.secret.clone(), Bootstrap::Minted(minted.secret))
        }
    };
    let now = clock.now_ms();
    let tenant = TenantRow {
        id: new_id("ten", now),
        name: "default".into(),
        platform: true,
        require_signatures: false,
        rego_differences: "warn".into(),
        created_at: now,
    };
    let token = TokenRow::new(
        new_id("tok", now),
        &tenant.id,
        "bootstrap-admin",
        [Role::Admin].into_iter().collect::<RoleSet>(),
        "bootstrap".into(),
        now,
    );
    // The platform tenant, its admin token and the entries recording them
    // commit together: a crash leaves either all of them or none.
    let created = json!({"tenant_id": tenant.id, "name": tenant.name, "platform": true});
    let minted =
        json!({"token_id": token.id, "name": token.name, "roles": token.roles.to_csv(), "tenant_id": tenant.id});
    let records = vec![
        Record::new(&tenant.id, "tenant.create", "system", &created).about(&tenant.id),
        Record::new(&tenant.id, "token.create", "system", &minted).about(&token.id),
    ];
    let write = AdminWrite::CreateTenant {
        tenant: tenant.clone(),
        admin: token.clone(),
        hash: hash_token(&secret),
    };
    ledger
        .append_with(
            records,
            Change {
                admin: Some(write),
                ..Change::default()
            },
        )
        .await?;
    tracing::info!(tenant = %tenant.id, token = %token.id, "bootstrapped the platform tenant and its admin token");
    Ok(outcome)
}

/// Serves on an already-bound listener until `shutdown` completes, then
/// drains. Tests bind port 0 and pass the listener in.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);

    // Load active bundles before reporting ready.
    match state.policy.refresh().await {
        Ok(n) => tracing::info!(active_bundles = n, "active bundles loaded"),
        Err(e) => tracing::error!(error = %e, "loading active bundles failed; retrying in the background"),
    }
    state.ready.store(true, Ordering::Release);
    // Every background task is supervised: one that fails is restarted
    // with back-off, counted, and named by /health/ready while it is down.
    let tasks = state.tasks.clone();
    let refresher = {
        let (state, stop) = (state.clone(), stop_rx.clone());
        supervise::spawn(&tasks, "policy_refresh", true, Some(stop_rx.clone()), move |ctx| {
            refresh_loop(state.clone(), stop.clone(), ctx)
        })
    };
    let timers = {
        let (kernel, stop) = (state.kernel.clone(), stop_rx.clone());
        supervise::spawn(&tasks, "kernel_timers", true, Some(stop_rx.clone()), move |ctx| {
            crate::kernel::timers::run(kernel.clone(), stop.clone(), ctx)
        })
    };
    // Other instances' commits wake this one's streams sooner than their
    // poll (PostgreSQL only; not essential: the poll still delivers).
    let wakes = (state.store.backend() == "postgres").then(|| {
        let (kernel, stop) = (state.kernel.clone(), stop_rx.clone());
        supervise::spawn(&tasks, "kernel_wakes", false, Some(stop_rx.clone()), move |ctx| {
            crate::kernel::wakes::run(kernel.clone(), stop.clone(), ctx)
        })
    });
    // The task keeps its published name (metrics, readiness).
    let conductor = {
        let (workflows, stop) = (state.workflows.clone(), stop_rx.clone());
        supervise::spawn(&tasks, "workflow_engine", true, Some(stop_rx.clone()), move |ctx| {
            workflows.clone().run(stop.clone(), ctx)
        })
    };
    let fanout = state.fanout.spawn_supervised(
        crate::fanout::instance_id(&state.config.data_dir)?,
        state.store.clone(),
        state.ledger.committed(),
        state.clock.clone(),
        state.metrics.clone(),
        stop_rx.clone(),
        &tasks,
    );

    let grace = Duration::from_secs(state.config.shutdown_grace_secs);
    let store = state.store.clone();
    let ledger = state.ledger.clone();
    let kernel = state.kernel.clone();
    let app = http::router(state);
    let (drain_tx, drain_rx) = tokio::sync::oneshot::channel::<()>();
    // Small writes go out at once: an event-stream answer is written in
    // two parts (head, then the event), and with Nagle's algorithm the
    // second waits for the client's delayed acknowledgement (about 40 ms).
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY could not be set on a connection");
        }
    });
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        // Open streams are not requests in flight: each is told to
        // reconnect (to another instance) and ends now, so the grace
        // period is left to requests that finish.
        let streams = kernel.hub.shut_down();
        tracing::info!(
            streams,
            "shutdown requested; streams closed, draining in-flight requests"
        );
        let _ = drain_tx.send(());
    });
    let server = tokio::spawn(async move { server.await });
    tokio::pin!(server);

    tokio::select! {
        res = &mut server => { res??; }
        _ = drain_rx => {
            match tokio::time::timeout(grace, &mut server).await {
                Ok(res) => { res??; }
                Err(_) => tracing::warn!(grace_secs = grace.as_secs(), "in-flight requests did not finish in time; closing"),
            }
        }
    }
    let _ = stop_tx.send(true);
    let _ = refresher.await;
    let _ = timers.await;
    let _ = conductor.await;
    if let Some(wakes) = wakes {
        // Its listener holds a connection the store's close waits for.
        let _ = wakes.await;
    }
    let _ = fanout.await;
    // Everything acknowledged is committed; what is queued is written now.
    ledger.stop().await;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Re-reads the active bundle versions every `policy.refresh_interval_ms`;
/// a refresh that fails ends the task (its supervisor restarts it).
async fn refresh_loop(state: AppState, mut stop: watch::Receiver<bool>, ctx: supervise::TaskCtx) -> anyhow::Result<()> {
    let every = Duration::from_millis(state.config.policy.refresh_interval_ms.max(100));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return Ok(()),
        }
        state
            .policy
            .refresh()
            .await
            .map_err(|e| anyhow::anyhow!("refreshing active bundles failed: {e}"))?;
        ctx.up();
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// A database URL with any password removed, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite://./x.db"), "sqlite://./x.db");
    }
}
