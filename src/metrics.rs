//! Prometheus metrics, rendered in the OpenMetrics text format at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: &'static str,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InFlightLabels {
    pub method: &'static str,
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkLabels {
    pub sink: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CauseLabels {
    /// As `StoreError::cause` names it: `disk_full`, `busy`, `unreachable`, …
    pub cause: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TaskLabels {
    pub task: &'static str,
}

pub struct Metrics {
    registry: Registry,
    /// Background tasks restarted after a failure (`crate::supervise`).
    pub task_restarts: Family<TaskLabels, Counter>,
    /// Background tasks down now (failed, not yet working again).
    pub tasks_down: Family<TaskLabels, prometheus_client::metrics::gauge::Gauge>,
    /// Requests answered `request_timeout` (past `limits.request_timeout_ms`).
    pub request_timeouts: Counter,
    pub kernel_transitions: Family<KindLabels, Counter>,
    pub kernel_streams: Family<KindLabels, prometheus_client::metrics::gauge::Gauge>,
    pub workflow_entries: Family<KindLabels, Counter>,
    pub http_duration: Family<RouteLabels, Histogram>,
    /// Requests being answered now, by method and matched route.
    pub http_in_flight: Family<InFlightLabels, prometheus_client::metrics::gauge::Gauge>,
    pub decisions: Family<OutcomeLabels, Counter>,
    pub eval_seconds: Histogram,
    pub bundle_activations: Counter,
    pub ledger_appends: Counter,
    /// Ledger batches that failed, by cause.
    pub ledger_failed: Family<CauseLabels, Counter>,
    pub ledger_batch_entries: Histogram,
    pub ledger_commit_seconds: Histogram,
    /// Ledger batches written a second time, by reason: `log_head_moved`
    /// (another instance extended one of the batch's logs since this
    /// writer last did), `stale_change` (a state change no longer held:
    /// the batch again, each change isolated) or `aborted_by_the_database`
    /// (PostgreSQL broke a deadlock or a serialization failure).
    pub ledger_retries: Family<ReasonLabels, Counter>,
    /// State changes refused at commit, by the code their caller got:
    /// `concurrent_change` (a row moved since it was read) or `conflict`
    /// (it exists already).
    pub ledger_changes_refused: Family<ReasonLabels, Counter>,
    /// The ledger writer's time, by what it was doing: `begin` (a
    /// connection and its transaction), `changes` (the batch's state
    /// changes), `entries` (chaining, signing, and writing entries, tree
    /// nodes, checkpoints and heads), `history` (kernel history rows),
    /// `commit` (the durable commit).
    pub ledger_writer_seconds: Family<PhaseLabels, Counter<f64, AtomicU64>>,
    pub sink_delivered: Family<SinkLabels, Counter>,
    pub sink_dead_lettered: Family<SinkLabels, Counter>,
    pub sink_errors: Family<SinkLabels, Counter>,
    /// Ledger entries not yet delivered or passed over, all tenants.
    pub sink_lag: Family<SinkLabels, prometheus_client::metrics::gauge::Gauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn latency_buckets() -> impl Iterator<Item = f64> {
    // 10 µs … ~5 s, ×2.5 per bucket.
    prometheus_client::metrics::histogram::exponential_buckets(0.000_01, 2.5, 15)
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("warden");
        let task_restarts = Family::<TaskLabels, Counter>::default();
        registry.register(
            "task_restarts",
            "Background tasks (ledger writer, workflow engine, kernel timers, policy refresh, audit fan-out, sink delivery) restarted after failing",
            task_restarts.clone(),
        );
        let tasks_down = Family::<TaskLabels, prometheus_client::metrics::gauge::Gauge>::default();
        registry.register(
            "tasks_down",
            "Background tasks down now: failed and not yet working again",
            tasks_down.clone(),
        );
        let request_timeouts = Counter::default();
        registry.register(
            "request_timeouts",
            "Requests answered request_timeout after limits.request_timeout_ms",
            request_timeouts.clone(),
        );
        let kernel_transitions = Family::<KindLabels, Counter>::default();
        registry.register(
            "kernel_transitions",
            "Kernel history entries (transitions, decisions, verdicts) by kind",
            kernel_transitions.clone(),
        );
        let kernel_streams = Family::<KindLabels, prometheus_client::metrics::gauge::Gauge>::default();
        registry.register(
            "kernel_streams",
            "Agent and runner streams open on this instance",
            kernel_streams.clone(),
        );
        let workflow_entries = Family::<KindLabels, Counter>::default();
        registry.register(
            "workflow_entries",
            "Workflow run ledger entries by kind (runs started and ended, states entered, retries, catches)",
            workflow_entries.clone(),
        );
        let http_duration =
            Family::<RouteLabels, Histogram>::new_with_constructor(|| Histogram::new(latency_buckets()));
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by method, matched route and status",
            http_duration.clone(),
        );
        let http_in_flight = Family::<InFlightLabels, prometheus_client::metrics::gauge::Gauge>::default();
        registry.register(
            "http_requests_in_flight",
            "HTTP requests being answered now, by method and matched route",
            http_in_flight.clone(),
        );
        let decisions = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "decisions",
            "Decisions by outcome (allow, deny, other, undefined, unknown_path, error)",
            decisions.clone(),
        );
        let eval_seconds = Histogram::new(latency_buckets());
        registry.register(
            "policy_eval_duration_seconds",
            "Time spent evaluating policies",
            eval_seconds.clone(),
        );
        let bundle_activations = Counter::default();
        registry.register(
            "bundle_activations",
            "Bundle versions activated or rolled back to",
            bundle_activations.clone(),
        );
        let ledger_appends = Counter::default();
        registry.register(
            "ledger_appends",
            "Entries made durable in the evidence ledger",
            ledger_appends.clone(),
        );
        let ledger_failed = Family::<CauseLabels, Counter>::default();
        registry.register(
            "ledger_failed_batches",
            "Ledger batches that failed, by cause (none of their entries was acknowledged)",
            ledger_failed.clone(),
        );
        let ledger_batch_entries =
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(1.0, 2.0, 13));
        registry.register(
            "ledger_batch_entries",
            "Entries per group commit",
            ledger_batch_entries.clone(),
        );
        let ledger_commit_seconds = Histogram::new(latency_buckets());
        registry.register(
            "ledger_commit_duration_seconds",
            "Time to build, sign and durably commit one ledger batch",
            ledger_commit_seconds.clone(),
        );
        let ledger_retries = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "ledger_batch_retries",
            "Ledger batches written again: log_head_moved (another instance extended one of its logs), stale_change (a state change no longer held; each change isolated), aborted_by_the_database (a deadlock or serialization failure)",
            ledger_retries.clone(),
        );
        let ledger_changes_refused = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "ledger_changes_refused",
            "State changes refused at commit, by the code their caller got (concurrent_change, conflict)",
            ledger_changes_refused.clone(),
        );
        let ledger_writer_seconds = Family::<PhaseLabels, Counter<f64, AtomicU64>>::default();
        registry.register(
            "ledger_writer_seconds",
            "The ledger writer's time by phase: begin, changes, entries, history, commit",
            ledger_writer_seconds.clone(),
        );
        let sink_delivered = Family::<SinkLabels, Counter>::default();
        registry.register(
            "sink_delivered_events",
            "Audit events a sink's peer acknowledged",
            sink_delivered.clone(),
        );
        let sink_dead_lettered = Family::<SinkLabels, Counter>::default();
        registry.register(
            "sink_dead_lettered_events",
            "Audit events a sink could never deliver (see GET /v1/sinks)",
            sink_dead_lettered.clone(),
        );
        let sink_errors = Family::<SinkLabels, Counter>::default();
        registry.register(
            "sink_errors",
            "Failed delivery attempts (each retried or dead-lettered)",
            sink_errors.clone(),
        );
        let sink_lag = Family::<SinkLabels, prometheus_client::metrics::gauge::Gauge>::default();
        registry.register(
            "sink_lag_entries",
            "Ledger entries a sink has not delivered or passed over yet, all tenants",
            sink_lag.clone(),
        );
        Self {
            registry,
            task_restarts,
            tasks_down,
            request_timeouts,
            kernel_transitions,
            kernel_streams,
            workflow_entries,
            http_duration,
            http_in_flight,
            decisions,
            eval_seconds,
            bundle_activations,
            ledger_appends,
            ledger_failed,
            ledger_batch_entries,
            ledger_commit_seconds,
            ledger_retries,
            ledger_changes_refused,
            ledger_writer_seconds,
            sink_delivered,
            sink_dead_lettered,
            sink_errors,
            sink_lag,
        }
    }

    /// Counts the time since `since` to the writer's `phase`.
    pub fn ledger_writer_phase(&self, phase: &'static str, since: std::time::Instant) {
        self.ledger_writer_seconds
            .get_or_create(&PhaseLabels { phase })
            .inc_by(since.elapsed().as_secs_f64());
    }

    pub fn ledger_batch(&self, entries: usize, took: std::time::Duration) {
        self.ledger_appends.inc_by(entries as u64);
        self.ledger_batch_entries.observe(entries as f64);
        self.ledger_commit_seconds.observe(took.as_secs_f64());
    }

    pub fn ledger_retry(&self, reason: &'static str) {
        self.ledger_retries.get_or_create(&ReasonLabels { reason }).inc();
    }

    pub fn change_refused(&self, reason: &'static str) {
        self.ledger_changes_refused
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    pub fn decision(&self, outcome: &'static str) {
        self.decisions.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    /// [`Metrics::render`] as one tenant (not the platform) may see it:
    /// the series labelled with a sink keep only this tenant's own sinks
    /// (`sink="<tenant id>/<name>"`); every other series has no tenant in
    /// its labels and is kept.
    pub fn render_for_tenant(&self, tenant_id: &str) -> String {
        let own = format!("sink=\"{tenant_id}/");
        let mut out = String::new();
        for line in self.render().lines() {
            let labelled = !line.starts_with('#') && line.contains("sink=\"");
            if !labelled || line.contains(&own) {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
