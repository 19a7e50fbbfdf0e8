//! Warden as an MCP client of an upstream server (streamable HTTP): the
//! `initialize` handshake once per upstream, then JSON-RPC requests whose
//! answers come as JSON or as an SSE stream; a session the upstream lost
//! (404) is opened again once. Every connection is held to the egress
//! policy.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Mutex;
use warden_sinks::egress::Egress;

/// The protocol revision Warden asks its upstreams for.
pub const UPSTREAM_PROTOCOL: &str = "2025-06-18";

/// Why an upstream gave no result.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    /// No connection, refused by the egress policy, or an HTTP error.
    #[error("{0}")]
    Unreachable(String),
    #[error("the upstream did not answer within {0} s")]
    Timeout(u64),
    /// It answered with a JSON-RPC error.
    #[error("the upstream answered error {code}: {message}")]
    Rpc { code: i64, message: String },
    /// It answered something that is not MCP.
    #[error("the upstream's answer is not MCP: {0}")]
    Protocol(String),
}

impl UpstreamError {
    /// The status recorded in `mcp.call.completed`.
    pub fn status(&self) -> &'static str {
        match self {
            UpstreamError::Unreachable(_) => "unreachable",
            UpstreamError::Timeout(_) => "timeout",
            UpstreamError::Rpc { .. } | UpstreamError::Protocol(_) => "protocol_error",
        }
    }
}

/// Where and how to reach one upstream.
#[derive(Debug, Clone)]
pub struct Target {
    /// `<tenant>/<name>/<version>`: a replaced upstream gets a new session.
    pub key: String,
    pub url: String,
    pub bearer: Option<String>,
    /// A process Warden runs instead of a URL.
    pub stdio: Option<crate::config::StdioUpstream>,
}

/// The MCP sessions Warden holds with upstreams.
pub struct Upstreams {
    http: reqwest::Client,
    egress: Arc<Egress>,
    timeout: Duration,
    max_bytes: usize,
    /// Session id (None: the upstream keeps none) by target key.
    sessions: Mutex<HashMap<String, Option<String>>>,
    /// The stdio upstreams running, by target key.
    processes: Mutex<HashMap<String, Arc<super::stdio::Process>>>,
}

impl Upstreams {
    pub fn new(egress: Arc<Egress>, timeout: Duration, max_bytes: usize) -> Self {
        Upstreams {
            http: warden_sinks::egress::http_client(timeout, Some(&egress)),
            egress,
            timeout,
            max_bytes,
            sessions: Mutex::new(HashMap::new()),
            processes: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `url` may be registered: http(s), and allowed by the egress
    /// policy as far as can be told without resolving it.
    pub fn check_url(&self, url: &str) -> Result<(), String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("url {url:?} is not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("url {url:?} must be http or https"));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err("url must not hold credentials; give bearer_token instead".into());
        }
        self.egress.check_url(url).map_err(|e| format!("url {url:?}: {e}"))
    }

    /// Forgets the session with an upstream (replaced or deleted).
    pub async fn forget(&self, key_prefix: &str) {
        self.sessions.lock().await.retain(|k, _| !k.starts_with(key_prefix));
        self.processes.lock().await.retain(|k, _| !k.starts_with(key_prefix));
    }

    /// Sends `method` with `params` and returns its result.
    pub async fn request(&self, t: &Target, method: &str, params: Value) -> Result<Value, UpstreamError> {
        if let Some(spec) = &t.stdio {
            for _ in 0..2 {
                let proc = self.process(&t.key, spec).await?;
                match proc.request(method, params.clone(), self.timeout).await {
                    Err(UpstreamError::Unreachable(_)) if !proc.is_alive() => {
                        // It exited: start it again, once.
                        self.processes.lock().await.remove(&t.key);
                    }
                    answer => return answer,
                }
            }
            return Err(UpstreamError::Unreachable(format!(
                "stdio upstream {:?} keeps exiting",
                spec.name
            )));
        }
        let session = self.session(t).await?;
        match self.rpc(t, session.as_deref(), method, &params).await {
            Err(Lost) => {
                // The upstream forgot the session (restarted): open another, once.
                self.sessions.lock().await.remove(&t.key);
                let session = self.session(t).await?;
                self.rpc(t, session.as_deref(), method, &params)
                    .await
                    .map_err(|Lost| UpstreamError::Protocol("the upstream lost its new session at once".into()))?
            }
            Ok(r) => r,
        }
    }

    async fn process(
        &self,
        key: &str,
        spec: &crate::config::StdioUpstream,
    ) -> Result<Arc<super::stdio::Process>, UpstreamError> {
        let mut procs = self.processes.lock().await;
        if let Some(p) = procs.get(key).filter(|p| p.is_alive()) {
            return Ok(p.clone());
        }
        let p = super::stdio::Process::start(spec, self.timeout, self.max_bytes).await?;
        procs.insert(key.to_string(), p.clone());
        Ok(p)
    }

    async fn session(&self, t: &Target) -> Result<Option<String>, UpstreamError> {
        if let Some(s) = self.sessions.lock().await.get(&t.key) {
            return Ok(s.clone());
        }
        let params = json!({"protocolVersion": UPSTREAM_PROTOCOL, "capabilities": {},
            "clientInfo": {"name": "warden-gateway", "version": env!("CARGO_PKG_VERSION")}});
        let (answer, session) = self.post(t, None, &message(1, "initialize", &params)).await?;
        rpc_result(answer?)?;
        // The handshake ends with `notifications/initialized` (answered 202).
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let _ = self.post(t, session.as_deref(), &note).await?;
        self.sessions.lock().await.insert(t.key.clone(), session.clone());
        Ok(session)
    }

    async fn rpc(
        &self,
        t: &Target,
        session: Option<&str>,
        method: &str,
        params: &Value,
    ) -> Result<Result<Value, UpstreamError>, Lost> {
        match self.post(t, session, &message(2, method, params)).await {
            Err(UpstreamError::Unreachable(m)) if session.is_some() && m.starts_with(LOST) => Err(Lost),
            Err(e) => Ok(Err(e)),
            Ok((answer, _)) => Ok(answer.and_then(rpc_result)),
        }
    }

    /// POSTs one message; for a request, its answer (JSON or the SSE event
    /// that answers it), and the session id the upstream set.
    async fn post(
        &self,
        t: &Target,
        session: Option<&str>,
        body: &Value,
    ) -> Result<(Result<Value, UpstreamError>, Option<String>), UpstreamError> {
        self.egress
            .check_url(&t.url)
            .map_err(|e| UpstreamError::Unreachable(e.to_string()))?;
        let mut req = self
            .http
            .post(&t.url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("mcp-protocol-version", UPSTREAM_PROTOCOL)
            .body(body.to_string());
        if let Some(s) = session {
            req = req.header("mcp-session-id", s);
        }
        if let Some(token) = &t.bearer {
            req = req.bearer_auth(token);
        }
        let secs = self.timeout.as_secs();
        let mut res = req.send().await.map_err(|e| {
            if e.is_timeout() {
                UpstreamError::Timeout(secs)
            } else {
                UpstreamError::Unreachable(warden_sinks::egress::unreachable_reason(
                    "upstream",
                    &e,
                    Some(&self.egress),
                ))
            }
        })?;
        let status = res.status();
        let new_session = res
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| session.map(str::to_string));
        if status == reqwest::StatusCode::NOT_FOUND && session.is_some() {
            return Err(UpstreamError::Unreachable(format!("{LOST} (404)")));
        }
        if !status.is_success() {
            return Err(UpstreamError::Unreachable(format!(
                "the upstream answered HTTP {status}"
            )));
        }
        if body.get("id").is_none() {
            return Ok((Ok(Value::Null), new_session));
        }
        let sse = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("text/event-stream"));
        // A JSON answer is kept whole; an event stream is read event by
        // event. Either counts against `max_bytes`.
        let mut buf: Vec<u8> = Vec::new();
        let mut read = 0usize;
        let mut events = SseReader::default();
        loop {
            let chunk = res.chunk().await.map_err(|e| {
                if e.is_timeout() {
                    UpstreamError::Timeout(secs)
                } else {
                    UpstreamError::Unreachable(format!("the upstream's answer broke off: {e}"))
                }
            })?;
            let Some(chunk) = chunk else { break };
            read += chunk.len();
            if read > self.max_bytes {
                return Ok((
                    Err(UpstreamError::Protocol(format!(
                        "the answer is larger than mcp.max_upstream_bytes ({})",
                        self.max_bytes
                    ))),
                    new_session,
                ));
            }
            if sse {
                for data in events.feed(&chunk) {
                    if let Ok(v) = serde_json::from_str::<Value>(&data)
                        && v.get("id") == body.get("id")
                        && (v.get("result").is_some() || v.get("error").is_some())
                    {
                        return Ok((Ok(v), new_session));
                    }
                }
            } else {
                buf.extend_from_slice(&chunk);
            }
        }
        if sse {
            return Ok((
                Err(UpstreamError::Protocol(
                    "the event stream ended without an answer".into(),
                )),
                new_session,
            ));
        }
        let v = serde_json::from_slice::<Value>(&buf).map_err(|e| UpstreamError::Protocol(format!("not JSON: {e}")));
        Ok((v, new_session))
    }
}

const LOST: &str = "the upstream does not know the session";

/// The upstream no longer knows the session.
struct Lost;

fn message(id: i64, method: &str, params: &Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

pub(super) fn rpc_result(v: Value) -> Result<Value, UpstreamError> {
    if let Some(e) = v.get("error") {
        return Err(UpstreamError::Rpc {
            code: e.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: e
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("no message")
                .chars()
                .take(500)
                .collect(),
        });
    }
    match v.get("result") {
        Some(r) => Ok(r.clone()),
        None => Err(UpstreamError::Protocol(
            "a JSON-RPC answer without result or error".into(),
        )),
    }
}

/// Splits an SSE byte stream into the data of its events.
#[derive(Default)]
struct SseReader {
    line: Vec<u8>,
    data: String,
}

impl SseReader {
    fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        for &b in bytes {
            if b != b'\n' {
                self.line.push(b);
                continue;
            }
            let mut line = std::mem::take(&mut self.line);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if line.is_empty() {
                if !self.data.is_empty() {
                    out.push(std::mem::take(&mut self.data));
                }
                continue;
            }
            let text = String::from_utf8_lossy(&line);
            if let Some(d) = text.strip_prefix("data:") {
                if !self.data.is_empty() {
                    self.data.push('\n');
                }
                self.data.push_str(d.strip_prefix(' ').unwrap_or(d));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_are_split_across_chunks_and_lines() {
        let mut r = SseReader::default();
        assert!(r.feed(b"event: message\r\ndata: {\"a\":").is_empty());
        let got = r.feed(b"1}\r\n\r\n: keep-alive\n\ndata: x\ndata: y\n\n");
        assert_eq!(got, vec!["{\"a\":1}".to_string(), "x\ny".to_string()]);
    }

    #[test]
    fn an_rpc_error_is_an_error_and_a_result_a_result() {
        let e = rpc_result(json!({"jsonrpc": "2.0", "id": 2, "error": {"code": -32602, "message": "bad"}}));
        assert!(matches!(e, Err(UpstreamError::Rpc { code: -32602, .. })));
        assert_eq!(
            rpc_result(json!({"id": 2, "result": {"x": 1}})).unwrap(),
            json!({"x": 1})
        );
        assert!(matches!(rpc_result(json!({"id": 2})), Err(UpstreamError::Protocol(_))));
    }
}
