//! Typed configuration: defaults, then a TOML file, then `WARDEN_*`
//! environment variables, then command-line flags (each overriding the last).
//!
//! Environment variables map onto the file's keys: `WARDEN_LISTEN` sets
//! `listen`, and a double underscore descends into a table, so
//! `WARDEN_LIMITS__MAX_BODY_BYTES=2097152` sets `[limits] max_body_bytes`.
//! Values are parsed as TOML scalars when they parse, else taken as strings.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// Environment variables that are read directly, not as configuration keys.
const RESERVED_ENV: &[&str] = &[
    "WARDEN_CONFIG",
    "WARDEN_BOOTSTRAP_TOKEN",
    "WARDEN_LOG",
    "WARDEN_URL",
    "WARDEN_TOKEN",
];

/// The top-level configuration keys. `WARDEN_<KEY>` variables for other keys
/// are left to other tools, unless they use the nested `__` form, which is
/// only meant for this file (so a typo there is an error, not silence).
const KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "database_url",
    "max_connections",
    "store_wait_ms",
    "limits",
    "policy",
    "auth",
    "log",
    "ledger",
    "sinks",
    "tenant_sinks",
    "sink_secrets",
    "kernel",
    "workflow",
    "console",
    "mcp",
    "shutdown_grace_secs",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP API listens on.
    pub listen: SocketAddr,
    /// Directory for the embedded database and the signing keys.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; defaults to `sqlite://<data_dir>/warden.db`.
    pub database_url: Option<String>,
    /// Largest connection pool to the database.
    pub max_connections: u32,
    /// Longest a request (or background pass) waits for a PostgreSQL
    /// connection, in milliseconds; past it, it answers 503
    /// `store_unavailable` with `Retry-After` instead of holding on while
    /// the database is away.
    pub store_wait_ms: u64,
    pub limits: Limits,
    pub policy: PolicyConfig,
    pub auth: AuthConfig,
    pub log: LogConfig,
    pub ledger: LedgerConfig,
    /// Audit sinks for every tenant's events, `[[sinks]]` tables.
    pub sinks: Vec<SinkConfig>,
    pub tenant_sinks: TenantSinksConfig,
    pub sink_secrets: SinkSecretsConfig,
    pub kernel: KernelConfig,
    pub workflow: WorkflowConfig,
    pub console: ConsoleConfig,
    pub mcp: McpConfig,
    /// Seconds given to in-flight requests after SIGTERM or Ctrl-C.
    pub shutdown_grace_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest JSON request body, in bytes.
    pub max_body_bytes: usize,
    /// Deepest nesting accepted in a JSON request body.
    pub max_json_depth: usize,
    /// Largest bundle upload (compressed), in bytes.
    pub max_bundle_bytes: usize,
    /// Largest bundle once decompressed, in bytes.
    pub max_bundle_uncompressed_bytes: u64,
    /// Largest ratio of decompressed to compressed bundle size.
    pub max_bundle_ratio: u64,
    /// Most files in one bundle.
    pub max_bundle_files: usize,
    /// Longest a request may take, in milliseconds; past it the answer is
    /// 503 `request_timeout`. Agent and runner streams and ledger exports
    /// are exempt (they are meant to last).
    pub request_timeout_ms: u64,
    /// Most recorded decisions one `POST /v1/impact` call scans
    /// (`max_scan`, and its default); page with `after` for more.
    pub max_impact_scan: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Longest one policy evaluation may run, in milliseconds.
    pub eval_timeout_ms: u64,
    /// Ceiling on the heap used while policies evaluate, in bytes; an
    /// evaluation that would pass it fails with `policy_memory_exceeded`.
    pub max_memory_bytes: u64,
    /// How often, in milliseconds, active bundle versions are re-read from the
    /// store (so that several instances sharing PostgreSQL converge).
    pub refresh_interval_ms: u64,
    /// Longest the Rego tests of one uploaded bundle may run, all together,
    /// in milliseconds; tests not run in time count as failed.
    pub test_timeout_ms: u64,
    /// Evaluations running at once (off the async workers), all tenants
    /// together; 0 means twice the cores, at least 4.
    pub eval_threads: usize,
    /// Evaluations running at once for one tenant; 0 means as many as there
    /// are cores. A tenant with slow policies holds at most this many.
    pub eval_per_tenant: usize,
    /// Longest a decision waits for an evaluation slot, in milliseconds,
    /// before it is refused with `policy_busy` (503).
    pub eval_queue_ms: u64,
    /// An evaluation this long, in milliseconds, makes its tenant heavy:
    /// its evaluations then run on threads that get the CPU only when no
    /// other work wants it, until one of them is quick again (0: never).
    pub heavy_eval_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// How long a verified token is trusted without asking the store again,
    /// in milliseconds (at most [`MAX_CACHE_TTL_MS`]). Revocation is
    /// immediate on the instance that revoked; other instances see it
    /// within this time, and close the token's open streams by then too.
    pub cache_ttl_ms: u64,
}

/// The longest `auth.cache_ttl_ms`: how long, at most, another instance
/// honours a revoked token.
pub const MAX_CACHE_TTL_MS: u64 = 60_000;

/// The web console at `/ui` (`docs/console.md`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// How long a console session lasts after sign-in, in seconds (300 to
    /// 86,400); never past its token's own expiry.
    pub session_ttl_secs: u64,
    /// Mark the session cookie `Secure` (sent over HTTPS only). Set it when
    /// Warden is reached over TLS; it is also set for a request that came
    /// through a proxy saying `X-Forwarded-Proto: https`.
    pub secure_cookie: bool,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            session_ttl_secs: 8 * 3600,
            secure_cookie: false,
        }
    }
}

/// The MCP gateway (`/mcp`, docs/mcp.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct McpConfig {
    /// The gateway policy's document for `tools/call` (and resource and
    /// prompt reads), as a data path.
    pub decision_path: String,
    /// The document answering which tools an agent sees in `tools/list`.
    pub visible_path: String,
    /// Networks (CIDR) besides public addresses that upstreams may be
    /// reached at, e.g. `["10.0.0.0/8"]`.
    pub allow_networks: Vec<String>,
    /// Host names upstreams may be reached at whatever they resolve to.
    pub allow_hosts: Vec<String>,
    /// Longest an upstream may take to answer one request, in seconds.
    pub upstream_timeout_secs: u64,
    /// Longest one `tools/call` holds its request open waiting for a
    /// review, in seconds; the client then calls again with the same
    /// arguments to go on waiting.
    pub approval_wait_secs: u64,
    /// How often a waiting call sends `notifications/progress`, in ms.
    pub progress_interval_ms: u64,
    /// Most open MCP sessions per token.
    pub max_sessions_per_token: usize,
    /// A session unused this long ends, in seconds.
    pub session_idle_secs: u64,
    /// Largest upstream answer read, in bytes.
    pub max_upstream_bytes: usize,
    /// How long a tool list is reused for calls before the upstream is
    /// asked again (a `tools/list` from an agent always asks), in seconds.
    pub tools_ttl_secs: u64,
    /// Upstreams Warden may run as local processes over stdio (`[[mcp.stdio]]`):
    /// a tenant admin registers one by its `name`, only if its tenant is listed.
    pub stdio: Vec<StdioUpstream>,
}

/// A local MCP server the operator allows Warden to run (stdio transport).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StdioUpstream {
    /// What tenant admins register it as (`{"stdio": "<name>"}`).
    pub name: String,
    /// The program, and its arguments.
    pub command: String,
    #[serde(default)]
    pub args: Vec<String>,
    /// Its whole environment (Warden's own is not passed on).
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
    /// The tenant ids that may register it; `["*"]` for every tenant.
    pub tenants: Vec<String>,
}

impl StdioUpstream {
    pub fn allows(&self, tenant_id: &str) -> bool {
        self.tenants.iter().any(|t| t == "*" || t == tenant_id)
    }
}

impl Default for McpConfig {
    fn default() -> Self {
        Self {
            decision_path: "warden/mcp/decision".into(),
            visible_path: "warden/mcp/visible".into(),
            allow_networks: Vec::new(),
            allow_hosts: Vec::new(),
            upstream_timeout_secs: 60,
            approval_wait_secs: 300,
            progress_interval_ms: 5_000,
            max_sessions_per_token: 64,
            session_idle_secs: 3_600,
            max_upstream_bytes: 4 * 1024 * 1024,
            tools_ttl_secs: 30,
            stdio: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `json` (default) or `text`.
    pub format: String,
    /// A tracing filter such as `info` or `warden=debug,tower_http=info`.
    pub level: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LedgerConfig {
    /// Names this deployment in checkpoints: each tenant's log is
    /// `<name>/log/<tenant id>`, and the signing key is called `<name>`.
    /// Changing it later starts new key and log names; set it once.
    pub name: String,
    /// Appends waiting for the writer before new ones are refused with 503
    /// `ledger_overloaded`.
    pub queue_depth: usize,
    /// Most entries one group commit writes.
    pub max_batch: usize,
    /// The largest payload one ledger entry may hold, in bytes; a bigger
    /// one is refused (`ledger_entry_too_large`) before anything is written.
    pub max_payload_bytes: usize,
}

/// Bounds on the data of workflow runs (`[workflow]`). A run that passes
/// one fails with `States.DataLimitExceeded`; it is never retried or caught.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkflowConfig {
    /// The largest input or output of one state (and a run's input), in
    /// bytes of compact JSON.
    pub max_data_bytes: usize,
    /// The deepest nesting of arrays and objects in a state's input or
    /// output.
    pub max_data_depth: usize,
    /// The largest stored position of a run (every running thread's input,
    /// a `Wait`'s input, the recent transitions), in bytes.
    pub max_position_bytes: usize,
    /// The deepest nesting of a run's stored position.
    pub max_position_depth: usize,
    /// The bytes of ledger entries one move of a run writes before the rest
    /// of its synchronous stretch waits for the next move.
    pub move_bytes: usize,
}

/// The deepest nesting the store's JSON reader accepts (serde_json's limit
/// is 128 levels), which a run's position must stay within.
pub const MAX_READABLE_DEPTH: usize = 120;

impl Default for WorkflowConfig {
    fn default() -> Self {
        Self {
            max_data_bytes: 256 * 1024,
            max_data_depth: 64,
            max_position_bytes: 2 * 1024 * 1024,
            max_position_depth: 100,
            move_bytes: 4 * 1024 * 1024,
        }
    }
}

/// What tenants' own sinks (created through the API) may do
/// (`[tenant_sinks]`). Sinks of the configuration file are the operator's
/// and none of this applies to them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenantSinksConfig {
    /// Most sinks one tenant may have; one more is refused with 409
    /// `too_many_sinks`.
    pub max_per_tenant: usize,
    /// Networks (CIDRs, e.g. `10.20.0.0/16`) tenants' sinks may reach
    /// besides public addresses. Empty: public addresses only.
    pub allow_networks: Vec<String>,
    /// Host names tenants' sinks may reach whatever they resolve to: exact
    /// names, or `*.example.com` for any name under example.com.
    pub allow_hosts: Vec<String>,
    /// Whether a tenant's CloudWatch Logs sink may set `endpoint` (it is
    /// then held to the egress policy like any URL).
    pub allow_cloudwatch_endpoint: bool,
    /// Kafka properties a tenant's sink may set besides the built-in list
    /// (`warden::fanout::TENANT_KAFKA_PROPERTIES`).
    pub kafka_properties: Vec<String>,
}

impl Default for TenantSinksConfig {
    fn default() -> Self {
        Self {
            max_per_tenant: 20,
            allow_networks: Vec::new(),
            allow_hosts: Vec::new(),
            allow_cloudwatch_endpoint: false,
            kafka_properties: Vec::new(),
        }
    }
}

/// The keys that encrypt tenants' sink secrets in the database
/// (`[sink_secrets]`); see docs/security.md for rotation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SinkSecretsConfig {
    /// The id of the key new secrets are encrypted under (letters, digits
    /// and `-`, lowercase). Its key is taken from `keys`, else from the file
    /// `<data_dir>/keys/sink-secrets.<id>.key`, which is created on first
    /// start.
    pub current: String,
    /// Ids of older keys still accepted for reading (from `keys` or their
    /// files); at start-up every secret under one of them is encrypted again
    /// under `current`.
    pub accept: Vec<String>,
    /// Key material by id: 32 bytes, base64 (e.g. from the environment,
    /// `WARDEN_SINK_SECRETS__KEYS__K2=…`).
    pub keys: std::collections::BTreeMap<String, KeyMaterial>,
}

impl Default for SinkSecretsConfig {
    fn default() -> Self {
        Self {
            current: "k1".into(),
            accept: Vec::new(),
            keys: Default::default(),
        }
    }
}

/// Key material: never shown in debug output.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct KeyMaterial(pub String);

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

/// The execution kernel's defaults (`[kernel]`); an execution or an intent
/// may ask for less time, never more.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KernelConfig {
    /// The rule every `invoke_tool` intent is decided by, in the tenant's
    /// active bundles (`policies/kernel/` ships one).
    pub policy_path: String,
    /// The permission rule (`policies/rbac/`: platform, organisation and
    /// workflow levels, each only narrowing) every `invoke_tool` intent must
    /// pass first, when a tenant's active bundle serves it.
    pub permission_path: String,
    /// An execution's time-out, unless it asks for less.
    pub execution_timeout_secs: u64,
    /// A step's time-out once it may start, unless the intent asks for less.
    pub step_timeout_secs: u64,
    /// How long a blocked execution waits for its agent to reconnect
    /// before it fails.
    pub agent_timeout_secs: u64,
    /// Attempts of a step whose failures are retryable, unless the intent
    /// asks for fewer.
    pub max_attempts: u32,
    /// Back-off before the second attempt; doubled for each next one.
    pub retry_backoff_ms: u64,
    /// Longest back-off between two attempts.
    pub max_backoff_ms: u64,
    /// How long a review waits when the policy does not say.
    pub approval_timeout_secs: u64,
    /// How often the kernel looks for what is due (time-outs, retries,
    /// dispatches), in milliseconds.
    pub tick_ms: u64,
    /// How long messages for agent and runner streams are kept for clients
    /// resuming with `Last-Event-ID`.
    pub stream_retention_secs: u64,
    /// The most state transitions a workflow run may make; past it the run
    /// fails with `States.Runtime` (a loop that never ends).
    pub workflow_max_transitions: u64,
    /// The most agent and runner streams one tenant may hold open on one
    /// instance; past it a new stream is refused (429 `too_many_streams`).
    pub max_streams_per_tenant: usize,
    /// While other instances share the store, how often an open stream
    /// reads the store for messages they committed, in milliseconds (plus
    /// up to a quarter of it, spread). On PostgreSQL their notices wake it
    /// sooner; the poll covers a notice lost.
    pub stream_poll_ms: u64,
}

impl Default for KernelConfig {
    fn default() -> Self {
        Self {
            policy_path: "warden/kernel/decision".into(),
            permission_path: "warden/rbac/decision".into(),
            execution_timeout_secs: 24 * 3600,
            step_timeout_secs: 300,
            agent_timeout_secs: 60,
            max_attempts: 3,
            retry_backoff_ms: 1_000,
            max_backoff_ms: 300_000,
            approval_timeout_secs: 24 * 3600,
            tick_ms: 250,
            stream_retention_secs: 7 * 86400,
            workflow_max_transitions: 1_000_000,
            max_streams_per_tenant: 1_000,
            stream_poll_ms: 1_000,
        }
    }
}

/// One audit sink (`[[sinks]]`), delivering every tenant's events.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SinkConfig {
    /// Standard Webhooks v1, one event per request.
    Webhook {
        /// Names the sink in `/v1/sinks`, metrics and its cursor; keep it stable.
        name: String,
        url: String,
        /// `whsec_<base64>`; several during a rotation, newest first.
        secrets: Vec<String>,
        /// Requests in flight at most (a workflow's events still go one
        /// after another, in order).
        #[serde(default = "default_webhook_concurrency")]
        concurrency: usize,
        #[serde(default)]
        filter: SinkFilter,
        /// JSON Pointers of fields replaced by `"***"` before delivery.
        #[serde(default)]
        mask: Vec<String>,
        #[serde(default = "default_timeout_ms")]
        timeout_ms: u64,
    },
    /// Datadog Logs intake (API v2), gzip, up to 1,000 events per request.
    Datadog {
        name: String,
        /// The intake of your Datadog site.
        #[serde(default = "default_datadog_url")]
        url: String,
        api_key: String,
        #[serde(default = "default_service")]
        service: String,
        #[serde(default = "default_service")]
        ddsource: String,
        #[serde(default)]
        hostname: String,
        /// `key:value` tags.
        #[serde(default)]
        ddtags: Vec<String>,
        #[serde(default)]
        filter: SinkFilter,
        #[serde(default)]
        mask: Vec<String>,
        #[serde(default = "default_timeout_ms")]
        timeout_ms: u64,
    },
    /// Splunk HTTP Event Collector, with indexer acknowledgement if the
    /// token has it enabled.
    SplunkHec {
        name: String,
        /// e.g. `https://splunk.example:8088`.
        url: String,
        token: String,
        #[serde(default = "default_sourcetype")]
        sourcetype: String,
        #[serde(default = "default_service")]
        source: String,
        /// Empty: the token's default index.
        #[serde(default)]
        index: String,
        #[serde(default)]
        host: String,
        /// Indexer acknowledgement: poll ackIds, count a batch only once indexed.
        #[serde(default)]
        ack: bool,
        #[serde(default = "default_ack_timeout_ms")]
        ack_timeout_ms: u64,
        /// HEC's max_content_length.
        #[serde(default = "default_hec_max_bytes")]
        max_bytes: usize,
        #[serde(default)]
        filter: SinkFilter,
        #[serde(default)]
        mask: Vec<String>,
        #[serde(default = "default_timeout_ms")]
        timeout_ms: u64,
    },
    /// CloudWatch Logs, through the AWS SDK: the group and stream are
    /// created when missing.
    CloudwatchLogs {
        name: String,
        /// e.g. `eu-west-1`.
        region: String,
        /// Another endpoint than the region's (a VPC endpoint, a test peer).
        #[serde(default)]
        endpoint: Option<String>,
        log_group: String,
        log_stream: String,
        /// Static keys; without them the AWS default credential chain
        /// (environment, profile, web identity, instance role) applies.
        #[serde(default)]
        access_key_id: Option<String>,
        #[serde(default)]
        secret_access_key: Option<String>,
        #[serde(default)]
        filter: SinkFilter,
        #[serde(default)]
        mask: Vec<String>,
        #[serde(default = "default_timeout_ms")]
        timeout_ms: u64,
    },
    /// A Kafka topic, through librdkafka: idempotent, `acks=all`, keyed by
    /// workflow id.
    Kafka {
        name: String,
        /// `bootstrap.servers`: `host:port[,host:port…]`.
        brokers: String,
        topic: String,
        /// Further librdkafka settings (`security.protocol`, `sasl.*`,
        /// `ssl.*`, `message.max.bytes`, …); the delivery-safety settings
        /// cannot be changed.
        #[serde(default)]
        properties: std::collections::BTreeMap<String, String>,
        #[serde(default)]
        filter: SinkFilter,
        #[serde(default)]
        mask: Vec<String>,
        /// The longest one batch waits for the brokers before the attempt
        /// counts as failed (its records stay queued and are not produced
        /// twice); a broker away for longer shows in `last_error`.
        #[serde(default = "default_kafka_timeout_ms")]
        timeout_ms: u64,
    },
}

fn default_sourcetype() -> String {
    "warden:audit".into()
}

fn default_ack_timeout_ms() -> u64 {
    60_000
}

fn default_hec_max_bytes() -> usize {
    1_000_000
}

fn default_datadog_url() -> String {
    "https://http-intake.logs.datadoghq.com".into()
}

fn default_service() -> String {
    "warden".into()
}

fn default_webhook_concurrency() -> usize {
    16
}

fn default_kafka_timeout_ms() -> u64 {
    30_000
}

fn default_timeout_ms() -> u64 {
    10_000
}

impl SinkConfig {
    pub fn name(&self) -> &str {
        match self {
            SinkConfig::Webhook { name, .. }
            | SinkConfig::Datadog { name, .. }
            | SinkConfig::SplunkHec { name, .. }
            | SinkConfig::CloudwatchLogs { name, .. }
            | SinkConfig::Kafka { name, .. } => name,
        }
    }

    pub fn filter(&self) -> &SinkFilter {
        match self {
            SinkConfig::Webhook { filter, .. }
            | SinkConfig::Datadog { filter, .. }
            | SinkConfig::SplunkHec { filter, .. }
            | SinkConfig::CloudwatchLogs { filter, .. }
            | SinkConfig::Kafka { filter, .. } => filter,
        }
    }

    pub fn mask(&self) -> &[String] {
        match self {
            SinkConfig::Webhook { mask, .. }
            | SinkConfig::Datadog { mask, .. }
            | SinkConfig::SplunkHec { mask, .. }
            | SinkConfig::CloudwatchLogs { mask, .. }
            | SinkConfig::Kafka { mask, .. } => mask,
        }
    }
}

/// What every sink's configuration must satisfy, wherever it comes from.
pub fn check_sink(sink: &SinkConfig) -> anyhow::Result<()> {
    let name = sink.name();
    if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        bail!("name {name:?} must be 1 to 64 letters, digits, '-' or '_'");
    }
    if let Some(s) = sink
        .filter()
        .sources
        .iter()
        .find(|s| !matches!(s.as_str(), "events" | "decisions"))
    {
        bail!("{name}.filter.sources: {s:?} is not \"events\" or \"decisions\"");
    }
    if let Some(p) = sink.mask().iter().find(|p| !p.starts_with('/')) {
        bail!("{name}.mask: {p:?} is not a JSON Pointer (it must start with '/')");
    }
    match sink {
        SinkConfig::Webhook { url, .. } | SinkConfig::Datadog { url, .. } | SinkConfig::SplunkHec { url, .. } => {
            check_http_url(url).map_err(|e| anyhow::anyhow!("{name}.url: {e}"))?;
        }
        SinkConfig::CloudwatchLogs { endpoint, region, .. } => {
            if let Some(endpoint) = endpoint {
                check_http_url(endpoint).map_err(|e| anyhow::anyhow!("{name}.endpoint: {e}"))?;
            }
            let ok = !region.is_empty()
                && region.len() <= 32
                && region
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !ok {
                bail!("{name}.region: {region:?} is not an AWS region name (e.g. eu-west-1)");
            }
        }
        SinkConfig::Kafka { brokers, .. } => {
            warden_sinks::kafka::parse_brokers(brokers).map_err(|e| anyhow::anyhow!("{name}.brokers: {e}"))?;
        }
    }
    Ok(())
}

/// An absolute `http` or `https` URL with a host.
pub fn check_http_url(url: &str) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "only http and https URLs are accepted, not {}:",
            parsed.scheme()
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("{url:?} has no host"));
    }
    Ok(parsed)
}

/// Which events a sink receives; an empty list lets everything through.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SinkFilter {
    /// `events` (submitted audit events) and/or `decisions`.
    #[serde(default)]
    pub sources: Vec<String>,
    #[serde(default)]
    pub actions: Vec<String>,
    #[serde(default)]
    pub results: Vec<String>,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self {
            name: "warden.local".into(),
            queue_depth: 16_384,
            max_batch: 2_048,
            max_payload_bytes: 8 * 1024 * 1024,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8181".parse().expect("valid default address"),
            data_dir: PathBuf::from("./warden-data"),
            database_url: None,
            max_connections: 16,
            store_wait_ms: 2_000,
            limits: Limits::default(),
            policy: PolicyConfig::default(),
            auth: AuthConfig::default(),
            log: LogConfig::default(),
            ledger: LedgerConfig::default(),
            sinks: Vec::new(),
            tenant_sinks: TenantSinksConfig::default(),
            sink_secrets: SinkSecretsConfig::default(),
            kernel: KernelConfig::default(),
            workflow: WorkflowConfig::default(),
            console: ConsoleConfig::default(),
            mcp: McpConfig::default(),
            shutdown_grace_secs: 20,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            max_json_depth: 64,
            max_bundle_bytes: 8 * 1024 * 1024,
            max_bundle_uncompressed_bytes: 64 * 1024 * 1024,
            max_bundle_ratio: 100,
            max_bundle_files: 10_000,
            request_timeout_ms: 30_000,
            max_impact_scan: 10_000,
        }
    }
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            eval_timeout_ms: 250,
            max_memory_bytes: 2 * 1024 * 1024 * 1024,
            refresh_interval_ms: 2_000,
            test_timeout_ms: 10_000,
            eval_threads: 0,
            eval_per_tenant: 0,
            eval_queue_ms: 2_000,
            heavy_eval_ms: 10,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self { cache_ttl_ms: 5_000 }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: "json".into(),
            level: "info".into(),
        }
    }
}

impl Config {
    /// Loads the file (if any), then overlays `WARDEN_*` variables from `env`.
    pub fn load(file: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> anyhow::Result<Self> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                text.parse::<toml::Table>()
                    .with_context(|| format!("config file {} is not valid TOML", path.display()))?
            }
            None => toml::Table::new(),
        };
        for (key, value) in env {
            let Some(rest) = key.strip_prefix("WARDEN_") else {
                continue;
            };
            if RESERVED_ENV.contains(&key.as_str()) || rest.is_empty() {
                continue;
            }
            let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
            if path.len() == 1 && !KEYS.contains(&path[0].as_str()) {
                continue;
            }
            set_path(&mut table, &path, parse_scalar(&value)).with_context(|| format!("environment variable {key}"))?;
        }
        let config: Config = toml::Value::Table(table).try_into().context("invalid configuration")?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if !matches!(self.log.format.as_str(), "json" | "text") {
            bail!("log.format must be \"json\" or \"text\"");
        }
        if self.ledger.name.is_empty() || self.ledger.name.contains(|c: char| c.is_whitespace() || c == '+') {
            bail!("ledger.name must be non-empty, without spaces or '+' (it names the signing key)");
        }
        if self.ledger.queue_depth == 0 || self.ledger.max_batch == 0 {
            bail!("ledger.queue_depth and ledger.max_batch must be at least 1");
        }
        let mut names = std::collections::HashSet::new();
        for sink in &self.sinks {
            check_sink(sink).map_err(|e| anyhow::anyhow!("sinks: {e}"))?;
            if !names.insert(sink.name().to_string()) {
                bail!("sinks: two sinks are named {:?}", sink.name());
            }
        }
        let id_ok = |id: &str| {
            !id.is_empty()
                && id.len() <= 32
                && id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        for id in std::iter::once(&self.sink_secrets.current)
            .chain(&self.sink_secrets.accept)
            .chain(self.sink_secrets.keys.keys())
        {
            if !id_ok(id) {
                bail!("sink_secrets: key id {id:?} must be 1 to 32 lowercase letters, digits or '-'");
            }
        }
        warden_sinks::egress::Egress::new(&self.tenant_sinks.allow_networks, &self.tenant_sinks.allow_hosts)
            .map_err(|e| anyhow::anyhow!("tenant_sinks: {e}"))?;
        if self.limits.request_timeout_ms == 0 || self.limits.max_impact_scan == 0 {
            bail!("limits.request_timeout_ms and limits.max_impact_scan must be at least 1");
        }
        if self.ledger.max_payload_bytes < 64 * 1024 {
            bail!("ledger.max_payload_bytes must be at least 65536");
        }
        let w = &self.workflow;
        let entry_depth = crate::evidence::entry::MAX_PAYLOAD_DEPTH;
        if w.max_data_depth == 0 || w.max_data_depth + 10 > entry_depth {
            bail!(
                "workflow.max_data_depth must be between 1 and {} (a ledger entry nests at most {entry_depth} levels, and records a state's data inside its own)",
                entry_depth - 10
            );
        }
        if w.max_position_depth < w.max_data_depth + 4 || w.max_position_depth > MAX_READABLE_DEPTH {
            bail!(
                "workflow.max_position_depth must be between workflow.max_data_depth + 4 and {MAX_READABLE_DEPTH} (the deepest JSON the store reads back)"
            );
        }
        if w.max_data_bytes == 0 || w.max_data_bytes + 64 * 1024 > self.ledger.max_payload_bytes {
            bail!("workflow.max_data_bytes must be at least 1 and 64 KiB below ledger.max_payload_bytes");
        }
        if w.max_position_bytes < w.max_data_bytes + 16 * 1024 || w.move_bytes < w.max_data_bytes {
            bail!(
                "workflow.max_position_bytes must be at least workflow.max_data_bytes + 16 KiB, and workflow.move_bytes at least workflow.max_data_bytes"
            );
        }
        if self.max_connections == 0 {
            bail!("max_connections must be at least 1");
        }
        if self.store_wait_ms == 0 {
            bail!("store_wait_ms must be at least 1");
        }
        if self.policy.eval_timeout_ms == 0 {
            bail!("policy.eval_timeout_ms must be at least 1");
        }
        if self.policy.eval_queue_ms == 0 {
            bail!("policy.eval_queue_ms must be at least 1");
        }
        let entry_depth = crate::evidence::entry::MAX_PAYLOAD_DEPTH;
        if self.limits.max_json_depth == 0 || self.limits.max_json_depth + 10 > entry_depth {
            bail!(
                "limits.max_json_depth must be between 1 and {} (what a request holds is recorded inside a ledger entry, which nests at most {entry_depth} levels)",
                entry_depth - 10
            );
        }
        if self.auth.cache_ttl_ms > MAX_CACHE_TTL_MS {
            bail!(
                "auth.cache_ttl_ms must be at most {MAX_CACHE_TTL_MS}: another instance honours a revoked token (and keeps its streams open) for up to this long"
            );
        }
        let m = &self.mcp;
        if !(1..=3_600).contains(&m.upstream_timeout_secs) {
            bail!("mcp.upstream_timeout_secs must be between 1 and 3600");
        }
        if !(1..=3_600).contains(&m.approval_wait_secs) {
            bail!("mcp.approval_wait_secs must be between 1 and 3600");
        }
        if !(100..=60_000).contains(&m.progress_interval_ms) {
            bail!("mcp.progress_interval_ms must be between 100 and 60000");
        }
        if m.max_sessions_per_token == 0 || m.session_idle_secs == 0 || m.max_upstream_bytes < 1024 {
            bail!(
                "mcp.max_sessions_per_token and mcp.session_idle_secs must be positive, mcp.max_upstream_bytes at least 1024"
            );
        }
        warden_sinks::egress::Egress::new(&m.allow_networks, &m.allow_hosts)
            .map_err(|e| anyhow::anyhow!("mcp: {e}"))?;
        let mut names = std::collections::HashSet::new();
        for s in &m.stdio {
            let ok = !s.name.is_empty()
                && s.name.len() <= 32
                && s.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !ok || !names.insert(s.name.as_str()) {
                bail!(
                    "mcp.stdio: name {:?} must be unique, 1 to 32 lowercase letters, digits or '-'",
                    s.name
                );
            }
            if s.command.is_empty() || s.tenants.is_empty() {
                bail!(
                    "mcp.stdio {:?}: command and tenants (ids, or [\"*\"]) are required",
                    s.name
                );
            }
        }
        if !(300..=86_400).contains(&self.console.session_ttl_secs) {
            bail!("console.session_ttl_secs must be between 300 and 86400");
        }
        if !(50..=600_000).contains(&self.kernel.stream_poll_ms) {
            bail!("kernel.stream_poll_ms must be between 50 and 600000");
        }
        if self.kernel.max_streams_per_tenant == 0 {
            bail!("kernel.max_streams_per_tenant must be at least 1");
        }
        if let Some(url) = &self.database_url
            && !(url.starts_with("sqlite:") || url.starts_with("postgres:") || url.starts_with("postgresql:"))
        {
            bail!("database_url must start with sqlite: or postgres://");
        }
        if let Some(url) = &self.database_url
            && url.starts_with("sqlite:")
            && (url.contains(":memory:") || url.contains("mode=memory"))
        {
            bail!(
                "database_url names an in-memory SQLite database, which keeps nothing across a restart (and \
                 which each connection sees apart): name a file, e.g. sqlite://./warden-data/warden.db"
            );
        }
        Ok(())
    }

    /// The database URL in force: the configured one, or the embedded default.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("warden.db").display()),
        }
    }
}

fn parse_scalar(raw: &str) -> toml::Value {
    // `x = <raw>` parses integers, floats, booleans, arrays and quoted strings;
    // anything else is taken verbatim as a string.
    match format!("x = {raw}").parse::<toml::Table>() {
        Ok(mut t) => t.remove("x").unwrap_or_else(|| toml::Value::String(raw.into())),
        Err(_) => toml::Value::String(raw.into()),
    }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> anyhow::Result<()> {
    let (last, parents) = path.split_last().context("empty key")?;
    let mut current = table;
    for part in parents {
        let entry = current
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = match entry {
            toml::Value::Table(t) => t,
            _ => bail!("{part} is not a table"),
        };
    }
    current.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_listen_on_loopback_8181_with_embedded_sqlite() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8181");
        assert!(c.database_url().starts_with("sqlite://"));
        assert!(c.database_url().ends_with("warden.db"));
    }

    #[test]
    fn an_in_memory_sqlite_database_is_refused() {
        for url in ["sqlite::memory:", "sqlite://file:ledger?mode=memory&cache=shared"] {
            let e = Config::load(None, env(&[("WARDEN_DATABASE_URL", url)])).unwrap_err();
            assert!(e.to_string().contains("in-memory SQLite"), "{url}: {e}");
        }
        let c = Config::load(None, env(&[("WARDEN_DATABASE_URL", "sqlite://./data/warden.db")])).unwrap();
        assert_eq!(c.database_url(), "sqlite://./data/warden.db");
    }

    #[test]
    fn file_then_environment_override() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("warden.toml");
        std::fs::write(
            &path,
            "listen = \"0.0.0.0:9000\"\n[limits]\nmax_body_bytes = 10\nmax_json_depth = 5\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&path),
            env(&[
                ("WARDEN_LIMITS__MAX_BODY_BYTES", "2048"),
                ("WARDEN_LOG__FORMAT", "text"),
                ("WARDEN_BOOTSTRAP_TOKEN", "ignored-here"),
                ("OTHER", "x"),
                ("WARDEN_SOMETHING_ELSE", "for another tool"),
            ]),
        )
        .unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(c.limits.max_body_bytes, 2048);
        assert_eq!(c.limits.max_json_depth, 5);
        assert_eq!(c.log.format, "text");
    }

    #[test]
    fn sinks_are_tables_of_their_type() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.toml");
        let write = |text: &str| std::fs::write(&path, text).unwrap();
        write(
            "[[sinks]]\ntype = \"datadog\"\nname = \"dd\"\napi_key = \"k\"\nddtags = [\"env:prod\"]\n\
             [[sinks]]\ntype = \"webhook\"\nname = \"hook\"\nurl = \"https://x\"\nsecrets = [\"whsec_AAAA\"]\n\
             [sinks.filter]\nsources = [\"events\"]\n",
        );
        let c = Config::load(Some(&path), Vec::new()).unwrap();
        assert_eq!(c.sinks.len(), 2);
        assert!(matches!(&c.sinks[0], SinkConfig::Datadog { url, service, .. }
            if url == "https://http-intake.logs.datadoghq.com" && service == "warden"));
        assert_eq!(c.sinks[1].filter().sources, ["events"]);
        write(
            "[[sinks]]\ntype = \"webhook\"\nname = \"h\"\nurl = \"u\"\nsecrets = []\n[sinks.filter]\nsources = [\"all\"]\n",
        );
        assert!(
            Config::load(Some(&path), Vec::new())
                .unwrap_err()
                .to_string()
                .contains("sources")
        );
        write("[[sinks]]\ntype = \"splunk_hec\"\nname = \"s\"\nurl = \"https://s:8088\"\ntoken = \"t\"\nack = true\n");
        let c = Config::load(Some(&path), Vec::new()).unwrap();
        assert!(
            matches!(&c.sinks[0], SinkConfig::SplunkHec { ack: true, sourcetype, max_bytes: 1_000_000, .. } if sourcetype == "warden:audit")
        );
        write(
            "[[sinks]]\ntype = \"kafka\"\nname = \"k\"\nbrokers = \"b:9092\"\ntopic = \"audit\"\n\
             [sinks.properties]\n\"security.protocol\" = \"sasl_ssl\"\n\
             [[sinks]]\ntype = \"cloudwatch_logs\"\nname = \"cw\"\nregion = \"eu-west-1\"\n\
             log_group = \"/warden\"\nlog_stream = \"w1\"\n",
        );
        let c = Config::load(Some(&path), Vec::new()).unwrap();
        assert!(
            matches!(&c.sinks[0], SinkConfig::Kafka { properties, timeout_ms: 30_000, .. }
            if properties["security.protocol"] == "sasl_ssl")
        );
        assert!(matches!(
            &c.sinks[1],
            SinkConfig::CloudwatchLogs {
                endpoint: None,
                access_key_id: None,
                ..
            }
        ));
        write("[[sinks]]\ntype = \"carrier-pigeon\"\nname = \"p\"\n");
        assert!(Config::load(Some(&path), Vec::new()).is_err());
        write(
            "[[sinks]]\ntype = \"datadog\"\nname = \"a\"\napi_key = \"k\"\n[[sinks]]\ntype = \"datadog\"\nname = \"a\"\napi_key = \"k\"\n",
        );
        assert!(
            Config::load(Some(&path), Vec::new())
                .unwrap_err()
                .to_string()
                .contains("two sinks")
        );
    }

    #[test]
    fn the_mcp_gateway_is_configured_and_its_bounds_checked() {
        let c = Config::load(
            None,
            env(&[
                ("WARDEN_MCP__ALLOW_NETWORKS", "[\"10.0.0.0/8\"]"),
                ("WARDEN_MCP__APPROVAL_WAIT_SECS", "60"),
            ]),
        )
        .unwrap();
        assert_eq!(c.mcp.allow_networks, ["10.0.0.0/8"]);
        assert_eq!(c.mcp.approval_wait_secs, 60);
        assert_eq!(Config::default().mcp.decision_path, "warden/mcp/decision");
        for (key, value) in [
            ("WARDEN_MCP__ALLOW_NETWORKS", "[\"10.0.0.0/40\"]"),
            ("WARDEN_MCP__APPROVAL_WAIT_SECS", "0"),
            ("WARDEN_MCP__PROGRESS_INTERVAL_MS", "10"),
            ("WARDEN_MCP__MAX_SESSIONS_PER_TOKEN", "0"),
        ] {
            let err = Config::load(None, env(&[(key, value)])).unwrap_err();
            assert!(format!("{err:#}").contains("mcp"), "{key}: {err:#}");
        }
        let mut c = Config::default();
        let spec = StdioUpstream {
            name: "git".into(),
            command: "mcp-git".into(),
            args: Vec::new(),
            env: Default::default(),
            tenants: vec!["*".into()],
        };
        c.mcp.stdio = vec![spec.clone(), spec.clone()];
        assert!(c.validate().is_err(), "two stdio upstreams of one name");
        c.mcp.stdio = vec![StdioUpstream {
            tenants: Vec::new(),
            ..spec.clone()
        }];
        assert!(c.validate().is_err(), "a stdio upstream for no tenant");
        c.mcp.stdio = vec![spec];
        assert!(c.validate().is_ok());
        assert!(c.mcp.stdio[0].allows("ten_x"));
    }

    #[test]
    fn tenant_sinks_and_their_secret_keys_are_configured() {
        let c = Config::load(
            None,
            env(&[
                ("WARDEN_TENANT_SINKS__ALLOW_NETWORKS", "[\"10.20.0.0/16\"]"),
                ("WARDEN_TENANT_SINKS__MAX_PER_TENANT", "3"),
                ("WARDEN_SINK_SECRETS__CURRENT", "k2"),
                (
                    "WARDEN_SINK_SECRETS__KEYS__K2",
                    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                ),
            ]),
        )
        .unwrap();
        assert_eq!(c.tenant_sinks.allow_networks, ["10.20.0.0/16"]);
        assert_eq!(c.tenant_sinks.max_per_tenant, 3);
        assert_eq!(c.sink_secrets.current, "k2");
        assert!(c.sink_secrets.keys.contains_key("k2"));
        assert!(
            !format!("{c:?}").contains("AAAAAAAA"),
            "key material is never in debug output"
        );
        let defaults = Config::load(None, env(&[])).unwrap();
        assert_eq!(defaults.tenant_sinks.max_per_tenant, 20);
        assert!(defaults.tenant_sinks.allow_networks.is_empty() && !defaults.tenant_sinks.allow_cloudwatch_endpoint);
        assert_eq!(defaults.sink_secrets.current, "k1");
        let err = Config::load(
            None,
            env(&[("WARDEN_TENANT_SINKS__ALLOW_NETWORKS", "[\"10.0.0.0/40\"]")]),
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("tenant_sinks"), "{err:#}");
        let err = Config::load(None, env(&[("WARDEN_SINK_SECRETS__CURRENT", "K/2")])).unwrap_err();
        assert!(format!("{err:#}").contains("sink_secrets"), "{err:#}");
    }

    #[test]
    fn workflow_and_request_limits_have_defaults_and_bounds() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.workflow.max_data_bytes, 262_144);
        assert_eq!(c.workflow.max_data_depth, 64);
        assert_eq!(c.limits.request_timeout_ms, 30_000);
        assert_eq!(c.limits.max_impact_scan, 10_000);
        assert_eq!(c.ledger.max_payload_bytes, 8 * 1024 * 1024);
        let c = Config::load(None, env(&[("WARDEN_WORKFLOW__MAX_DATA_DEPTH", "8")])).unwrap();
        assert_eq!(c.workflow.max_data_depth, 8);
        for (k, v, needle) in [
            ("WARDEN_WORKFLOW__MAX_DATA_DEPTH", "95", "max_data_depth"),
            ("WARDEN_WORKFLOW__MAX_POSITION_DEPTH", "127", "max_position_depth"),
            ("WARDEN_WORKFLOW__MAX_DATA_BYTES", "9000000", "max_data_bytes"),
            ("WARDEN_LIMITS__REQUEST_TIMEOUT_MS", "0", "request_timeout_ms"),
        ] {
            let err = Config::load(None, env(&[(k, v)])).unwrap_err();
            assert!(format!("{err:#}").contains(needle), "{k}: {err:#}");
        }
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let err = Config::load(None, env(&[("WARDEN_LIMITZ__X", "1")])).unwrap_err();
        assert!(format!("{err:#}").contains("limitz"), "{err:#}");
        let err = Config::load(None, env(&[("WARDEN_LOG__FORMAT", "xml")])).unwrap_err();
        assert!(format!("{err:#}").contains("log.format"));
        let err = Config::load(None, env(&[("WARDEN_DATABASE_URL", "mysql://x")])).unwrap_err();
        assert!(format!("{err:#}").contains("database_url"));
        let err = Config::load(None, env(&[("WARDEN_AUTH__CACHE_TTL_MS", "60001")])).unwrap_err();
        assert!(
            format!("{err:#}").contains("auth.cache_ttl_ms must be at most 60000"),
            "{err:#}"
        );
        assert!(Config::load(None, env(&[("WARDEN_AUTH__CACHE_TTL_MS", "60000")])).is_ok());
        let err = Config::load(None, env(&[("WARDEN_KERNEL__MAX_STREAMS_PER_TENANT", "0")])).unwrap_err();
        assert!(format!("{err:#}").contains("max_streams_per_tenant"), "{err:#}");
        for poll in ["10", "600001"] {
            let err = Config::load(None, env(&[("WARDEN_KERNEL__STREAM_POLL_MS", poll)])).unwrap_err();
            assert!(format!("{err:#}").contains("kernel.stream_poll_ms"), "{err:#}");
        }
        assert!(Config::load(None, env(&[("WARDEN_KERNEL__STREAM_POLL_MS", "600000")])).is_ok());
    }
}
