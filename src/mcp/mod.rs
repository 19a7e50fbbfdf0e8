//! The MCP gateway (docs/mcp.md): agents reach the tools of the upstream
//! MCP servers their tenant registered through Warden, and every call is
//! decided by the tenant's gateway policy on its exact arguments, reviewed
//! by people when the policy says so, and recorded in the ledger before
//! anything is answered.
//!
//! - this file: the gateway, its sessions, the upstream registry and the
//!   pinned tool definitions;
//! - [`calls`]: one `tools/call`, from decision to upstream and back;
//! - [`upstream`]: Warden as an MCP client of the upstreams;
//! - [`obligations`]: what the policy asks of an allowed result.
//!
//! Invariants: nothing reaches an upstream before its decision is durable;
//! a review's approval forwards one call, once; the identity of every act
//! is the authenticated token's (its agent is one the token is bound to).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Mutex;
use warden_sinks::egress::Egress;

use crate::auth::{Principal, new_id};
use crate::clock::{Clock, rfc3339_ms};
use crate::config::McpConfig;
use crate::evidence::canonical;
use crate::kernel::Kernel;
use crate::ledger::{AppendError, Ledger, Record};
use crate::policy::PolicyService;
use crate::secrets::Keyring;
use crate::store::{Change, McpWrite, Store, StoreError, ToolPinRow, UpstreamRow};

pub mod calls;
pub mod obligations;
mod stdio;
pub mod upstream;

use upstream::{Target, Upstreams};

/// The separator of an upstream's name and its tool's (or prompt's) in the
/// names agents see.
pub const SEP: &str = "__";

/// How an upstream's resource URI is shown to agents: `mcp+<upstream>:<uri>`.
pub const RESOURCE_SCHEME: &str = "mcp+";

/// How an upstream run over stdio is stored in place of a URL: `stdio:<name>`.
pub const STDIO_PREFIX: &str = "stdio:";

/// Why a gateway operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error("{0}")]
    Invalid(String),
    #[error("this tenant has no MCP upstream named {0:?}; see GET /v1/mcp/upstreams")]
    UnknownUpstream(String),
    #[error("upstream {0:?} has no pinned tool named {1:?}; list its tools first")]
    UnknownTool(String, String),
    #[error(transparent)]
    Append(#[from] AppendError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An MCP session: opened by `initialize`, bound to the token and agent
/// that opened it.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub tenant_id: String,
    pub token_id: String,
    pub agent_id: String,
    pub protocol_version: String,
    pub client: Value,
    pub last_seen: i64,
}

/// A tool of an upstream as the gateway shows and decides it.
#[derive(Debug, Clone)]
pub struct Tool {
    pub upstream: String,
    /// The upstream's own name for it.
    pub name: String,
    /// The definition as the upstream last gave it.
    pub definition: Value,
    pub pin: ToolPinRow,
}

impl Tool {
    /// `<upstream>__<tool>`, the name agents see.
    pub fn public_name(&self) -> String {
        format!("{}{SEP}{}", self.upstream, self.name)
    }
}

pub struct Gateway {
    pub store: Store,
    ledger: Ledger,
    policy: Arc<PolicyService>,
    kernel: Arc<Kernel>,
    clock: Clock,
    pub cfg: McpConfig,
    keyring: Option<Arc<Keyring>>,
    upstreams: Upstreams,
    sessions: std::sync::Mutex<HashMap<String, Session>>,
    /// Tools by `<tenant>/<upstream>`, with when they were listed (ms).
    tools: Mutex<HashMap<String, (i64, Vec<Tool>)>>,
}

/// The definition fields a pin covers: what the agent and the policy rely on.
fn definition_of(tool: &Value) -> Value {
    let mut d = serde_json::Map::new();
    for key in [
        "name",
        "title",
        "description",
        "inputSchema",
        "outputSchema",
        "annotations",
    ] {
        if let Some(v) = tool.get(key) {
            d.insert(key.into(), v.clone());
        }
    }
    Value::Object(d)
}

pub fn hash_of(v: &Value) -> String {
    blake3::hash(&canonical::to_vec(v)).to_hex().to_string()
}

/// An upstream's name: 1 to 32 lowercase letters, digits or `-`.
pub fn check_upstream_name(name: &str) -> Result<(), McpError> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(McpError::Invalid(format!(
            "upstream name {name:?} must be 1 to 32 lowercase letters, digits or '-'"
        )))
    }
}

impl Gateway {
    pub fn new(
        store: Store,
        ledger: Ledger,
        policy: Arc<PolicyService>,
        kernel: Arc<Kernel>,
        clock: Clock,
        cfg: McpConfig,
        keyring: Option<Arc<Keyring>>,
    ) -> anyhow::Result<Self> {
        let egress = Egress::new(&cfg.allow_networks, &cfg.allow_hosts).map_err(|e| anyhow::anyhow!("mcp: {e}"))?;
        let upstreams = Upstreams::new(
            Arc::new(egress),
            Duration::from_secs(cfg.upstream_timeout_secs),
            cfg.max_upstream_bytes,
        );
        Ok(Gateway {
            store,
            ledger,
            policy,
            kernel,
            clock,
            cfg,
            keyring,
            upstreams,
            sessions: std::sync::Mutex::new(HashMap::new()),
            tools: Mutex::new(HashMap::new()),
        })
    }

    // ---- sessions ----

    /// Opens a session for `who` acting as `agent_id`; None when the token
    /// holds `max_sessions_per_token` live sessions already.
    pub fn open_session(&self, who: &Principal, agent_id: &str, version: &str, client: Value) -> Option<Session> {
        let now = self.clock.now_ms();
        let idle = (self.cfg.session_idle_secs as i64) * 1000;
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.retain(|_, s| now - s.last_seen < idle);
        let held = sessions.values().filter(|s| s.token_id == who.token_id).count();
        if held >= self.cfg.max_sessions_per_token {
            return None;
        }
        let mut random = [0u8; 24];
        getrandom::fill(&mut random).expect("operating system random source");
        let s = Session {
            id: format!("mcs_{}", hex::encode(random)),
            tenant_id: who.tenant_id.clone(),
            token_id: who.token_id.clone(),
            agent_id: agent_id.to_string(),
            protocol_version: version.to_string(),
            client,
            last_seen: now,
        };
        sessions.insert(s.id.clone(), s.clone());
        Some(s)
    }

    /// The session `id` if `who`, acting as `agent_id`, opened it and it is
    /// still live; refreshes its idle time.
    pub fn session(&self, id: &str, who: &Principal, agent_id: &str) -> Option<Session> {
        let now = self.clock.now_ms();
        let idle = (self.cfg.session_idle_secs as i64) * 1000;
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let s = sessions.get_mut(id)?;
        if s.token_id != who.token_id || s.agent_id != agent_id || now - s.last_seen >= idle {
            return None;
        }
        s.last_seen = now;
        Some(s.clone())
    }

    pub fn end_session(&self, id: &str, who: &Principal) -> bool {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        match sessions.get(id) {
            Some(s) if s.token_id == who.token_id => sessions.remove(id).is_some(),
            _ => false,
        }
    }

    // ---- upstreams ----

    pub fn check_url(&self, url: &str) -> Result<(), McpError> {
        self.upstreams.check_url(url).map_err(McpError::Invalid)
    }

    /// The operator's stdio upstream `name`, if it allows it to `tenant_id`.
    fn stdio_spec(&self, tenant_id: &str, name: &str) -> Result<crate::config::StdioUpstream, McpError> {
        match self.cfg.stdio.iter().find(|s| s.name == name) {
            Some(s) if s.allows(tenant_id) => Ok(s.clone()),
            _ => Err(McpError::Invalid(format!(
                "stdio upstream {name:?} is not one the operator allows this tenant ([[mcp.stdio]])"
            ))),
        }
    }

    fn target(&self, u: &UpstreamRow) -> Result<Target, McpError> {
        let bearer = match (&u.secret, &self.keyring) {
            (None, _) => None,
            (Some(sealed), Some(k)) => {
                Some(k.open(sealed, &secret_context(&u.tenant_id, &u.name)).map_err(|e| {
                    McpError::Invalid(format!("upstream {:?}: its token cannot be opened: {e}", u.name))
                })?)
            }
            (Some(_), None) => {
                return Err(McpError::Invalid(format!(
                    "upstream {:?} has a token but no secrets key is configured",
                    u.name
                )));
            }
        };
        Ok(Target {
            key: format!("{}/{}/{}", u.tenant_id, u.name, u.version),
            url: u.url.clone(),
            bearer,
            stdio: match u.url.strip_prefix(STDIO_PREFIX) {
                Some(name) => Some(self.stdio_spec(&u.tenant_id, name)?),
                None => None,
            },
        })
    }

    /// Registers or replaces an upstream (`mcp.upstream.put`).
    pub async fn put_upstream(
        &self,
        who: &Principal,
        name: &str,
        url: &str,
        bearer: Option<&str>,
    ) -> Result<UpstreamRow, McpError> {
        check_upstream_name(name)?;
        match url.strip_prefix(STDIO_PREFIX) {
            Some(stdio) => {
                self.stdio_spec(&who.tenant_id, stdio)?;
                if bearer.is_some() {
                    return Err(McpError::Invalid("a stdio upstream takes no bearer_token".into()));
                }
            }
            None => self.check_url(url)?,
        }
        let secret = match (bearer, &self.keyring) {
            (None, _) => None,
            (Some(t), _) if t.is_empty() || t.len() > 4096 => {
                return Err(McpError::Invalid("bearer_token must be 1 to 4096 bytes".into()));
            }
            (Some(t), Some(k)) => Some(k.seal(t, &secret_context(&who.tenant_id, name))),
            (Some(_), None) => {
                return Err(McpError::Invalid(
                    "no secrets key is configured to seal bearer_token".into(),
                ));
            }
        };
        let now = self.clock.now_ms();
        for _ in 0..3 {
            let existing = self.store.mcp_upstream(&who.tenant_id, name).await?;
            let row = UpstreamRow {
                tenant_id: who.tenant_id.clone(),
                name: name.to_string(),
                url: url.to_string(),
                secret: secret.clone(),
                version: existing.as_ref().map_or(1, |e| e.version + 1),
                created_at: existing.as_ref().map_or(now, |e| e.created_at),
                updated_at: now,
            };
            let payload = json!({"upstream": name, "url": url, "version": row.version,
                "has_token": row.secret.is_some()});
            let record = Record::new(&who.tenant_id, "mcp.upstream.put", &who.actor(), &payload).about(name);
            let change = Change {
                mcp: vec![McpWrite::PutUpstream(row.clone())],
                ..Change::default()
            };
            match self.ledger.append_with(vec![record], change).await {
                Ok(_) => {
                    self.forget(&who.tenant_id, name).await;
                    return Ok(row);
                }
                Err(AppendError::Changed(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(McpError::Append(AppendError::Changed("MCP upstream")))
    }

    /// Removes an upstream and its pins (`mcp.upstream.delete`); false when
    /// the tenant has none of that name.
    pub async fn delete_upstream(&self, who: &Principal, name: &str) -> Result<bool, McpError> {
        if self.store.mcp_upstream(&who.tenant_id, name).await?.is_none() {
            return Ok(false);
        }
        let record = Record::new(
            &who.tenant_id,
            "mcp.upstream.delete",
            &who.actor(),
            &json!({"upstream": name}),
        )
        .about(name);
        let change = Change {
            mcp: vec![McpWrite::DeleteUpstream {
                tenant_id: who.tenant_id.clone(),
                name: name.to_string(),
            }],
            ..Change::default()
        };
        self.ledger.append_with(vec![record], change).await?;
        self.forget(&who.tenant_id, name).await;
        Ok(true)
    }

    async fn forget(&self, tenant_id: &str, name: &str) {
        self.tools.lock().await.remove(&format!("{tenant_id}/{name}"));
        self.upstreams.forget(&format!("{tenant_id}/{name}/")).await;
    }

    /// Accepts a changed tool definition as its new pin (`mcp.tool.accepted`).
    pub async fn accept_tool(&self, who: &Principal, upstream: &str, tool: &str) -> Result<ToolPinRow, McpError> {
        let pins = self.store.mcp_tools(&who.tenant_id, upstream).await?;
        let Some(mut pin) = pins.into_iter().find(|p| p.name == tool) else {
            return Err(McpError::UnknownTool(upstream.into(), tool.into()));
        };
        let previous = pin.pinned_hash.clone();
        pin.pinned = pin.current.clone();
        pin.pinned_hash = pin.current_hash.clone();
        pin.pinned_at = self.clock.now_ms();
        pin.changed_at = None;
        let payload = self.tool_payload(upstream, tool, &pin, Some(&previous));
        let record = Record::new(&who.tenant_id, "mcp.tool.accepted", &who.actor(), &payload)
            .about(format!("{upstream}{SEP}{tool}"));
        let change = Change {
            mcp: vec![McpWrite::Tool(pin.clone())],
            ..Change::default()
        };
        self.ledger.append_with(vec![record], change).await?;
        self.tools.lock().await.remove(&format!("{}/{upstream}", who.tenant_id));
        Ok(pin)
    }

    fn tool_payload(&self, upstream: &str, tool: &str, pin: &ToolPinRow, previous: Option<&str>) -> Value {
        let now = self.clock.now_ms();
        let mut p = json!({"call_id": new_id("mcp", now), "seq": 0, "at": rfc3339_ms(now),
            "upstream": upstream, "tool": format!("{upstream}{SEP}{tool}"),
            "pinned_hash": pin.pinned_hash, "definition_hash": pin.current_hash});
        if let Some(prev) = previous {
            p["previous_hash"] = prev.into();
        }
        p
    }

    /// Every registered upstream's resources (`resources/list`), resource
    /// templates (`resources/templates/list`) or prompts (`prompts/list`),
    /// each named as agents see it. An upstream that serves none, or cannot
    /// be reached, adds nothing.
    pub async fn list_all(&self, who: &Principal, method: &str) -> Result<Vec<Value>, McpError> {
        let (key, field) = match method {
            "resources/list" => ("resources", "uri"),
            "resources/templates/list" => ("resourceTemplates", "uriTemplate"),
            _ => ("prompts", "name"),
        };
        let mut out = Vec::new();
        for u in self.store.mcp_upstreams(&who.tenant_id).await? {
            // One the operator no longer allows, or whose token no longer opens, adds nothing.
            let Ok(target) = self.target(&u) else {
                continue;
            };
            let mut cursor: Option<String> = None;
            for _ in 0..20 {
                let params = cursor.as_ref().map_or_else(|| json!({}), |c| json!({"cursor": c}));
                let Ok(page) = self.upstreams.request(&target, method, params).await else {
                    break;
                };
                for mut item in page.get(key).and_then(Value::as_array).cloned().unwrap_or_default() {
                    let Some(name) = item.get(field).and_then(Value::as_str) else {
                        continue;
                    };
                    let shown = if field == "name" {
                        format!("{}{SEP}{name}", u.name)
                    } else {
                        format!("{RESOURCE_SCHEME}{}:{name}", u.name)
                    };
                    item[field] = shown.into();
                    out.push(item);
                }
                cursor = page.get("nextCursor").and_then(Value::as_str).map(str::to_string);
                if cursor.is_none() {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// The tools of `upstream` as last seen (their pins' current
    /// definitions), without asking it.
    pub async fn pinned_tools(&self, u: &UpstreamRow) -> Result<Vec<Tool>, McpError> {
        let pins = self.store.mcp_tools(&u.tenant_id, &u.name).await?;
        Ok(pins
            .into_iter()
            .map(|pin| Tool {
                upstream: u.name.clone(),
                name: pin.name.clone(),
                definition: serde_json::from_str(&pin.current).unwrap_or(Value::Null),
                pin,
            })
            .collect())
    }

    /// The tools of `upstream`: listed from it when `fresh` or when the last
    /// list is older than `mcp.tools_ttl_secs`, with their pins. A new tool
    /// is pinned (`mcp.tool.pinned`); a definition unlike the last one seen
    /// is recorded (`mcp.tool.changed`) and shown as changed until accepted.
    pub async fn tools_of(&self, u: &UpstreamRow, fresh: bool) -> Result<Vec<Tool>, ToolsError> {
        let key = format!("{}/{}", u.tenant_id, u.name);
        let now = self.clock.now_ms();
        if !fresh
            && let Some((at, tools)) = self.tools.lock().await.get(&key)
            && now - at < (self.cfg.tools_ttl_secs as i64) * 1000
        {
            return Ok(tools.clone());
        }
        let target = self
            .target(u)
            .map_err(|e| ToolsError::Upstream(upstream::UpstreamError::Unreachable(e.to_string())))?;
        let mut listed = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..20 {
            let params = match &cursor {
                Some(c) => json!({"cursor": c}),
                None => json!({}),
            };
            let page = self
                .upstreams
                .request(&target, "tools/list", params)
                .await
                .map_err(ToolsError::Upstream)?;
            if let Some(tools) = page.get("tools").and_then(Value::as_array) {
                listed.extend(tools.iter().cloned());
            }
            cursor = page.get("nextCursor").and_then(Value::as_str).map(str::to_string);
            if cursor.is_none() {
                break;
            }
        }
        let pins: HashMap<String, ToolPinRow> = self
            .store
            .mcp_tools(&u.tenant_id, &u.name)
            .await
            .map_err(|e| ToolsError::Gateway(e.into()))?
            .into_iter()
            .map(|p| (p.name.clone(), p))
            .collect();
        let mut tools = Vec::new();
        let mut records = Vec::new();
        let mut writes = Vec::new();
        for def in listed {
            let Some(name) = def.get("name").and_then(Value::as_str).map(str::to_string) else {
                continue;
            };
            if name.is_empty() || name.len() > 128 {
                continue;
            }
            let definition = definition_of(&def);
            let hash = hash_of(&definition);
            let text = definition.to_string();
            let pin = match pins.get(&name) {
                None => {
                    let pin = ToolPinRow {
                        tenant_id: u.tenant_id.clone(),
                        upstream: u.name.clone(),
                        name: name.clone(),
                        pinned_hash: hash.clone(),
                        pinned: text.clone(),
                        current_hash: hash,
                        current: text,
                        pinned_at: now,
                        changed_at: None,
                    };
                    let payload = self.tool_payload(&u.name, &name, &pin, None);
                    records.push(Record::new(&u.tenant_id, "mcp.tool.pinned", "system", &payload));
                    writes.push(McpWrite::Tool(pin.clone()));
                    pin
                }
                Some(p) if p.current_hash != hash => {
                    let mut pin = p.clone();
                    let previous = pin.current_hash.clone();
                    pin.current_hash = hash;
                    pin.current = text;
                    pin.changed_at = if pin.changed() { Some(now) } else { None };
                    let mut payload = self.tool_payload(&u.name, &name, &pin, Some(&previous));
                    payload["definition"] = definition.clone();
                    records.push(Record::new(&u.tenant_id, "mcp.tool.changed", "system", &payload));
                    writes.push(McpWrite::Tool(pin.clone()));
                    pin
                }
                Some(p) => p.clone(),
            };
            tools.push(Tool {
                upstream: u.name.clone(),
                name,
                definition,
                pin,
            });
        }
        if !records.is_empty() {
            let change = Change {
                mcp: writes,
                ..Change::default()
            };
            self.ledger
                .append_with(records, change)
                .await
                .map_err(|e| ToolsError::Gateway(e.into()))?;
        }
        self.tools.lock().await.insert(key, (now, tools.clone()));
        Ok(tools)
    }
}

/// Why an upstream's tools could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum ToolsError {
    #[error(transparent)]
    Upstream(upstream::UpstreamError),
    #[error(transparent)]
    Gateway(McpError),
}

fn secret_context(tenant_id: &str, upstream: &str) -> String {
    format!("mcp-upstream/{tenant_id}/{upstream}/bearer_token")
}
