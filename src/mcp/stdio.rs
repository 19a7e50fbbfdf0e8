//! Upstreams run by Warden as local processes speaking MCP over stdio
//! (newline-delimited JSON-RPC), only those the operator lists in
//! `[[mcp.stdio]]`, each for the tenants the operator names. One process
//! per tenant's upstream, started on first use and again if it exits; it
//! gets only the environment the operator set (none of Warden's).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::upstream::{UPSTREAM_PROTOCOL, UpstreamError, rpc_result};
use crate::config::StdioUpstream;

type Pending = Arc<Mutex<HashMap<i64, oneshot::Sender<Value>>>>;

/// One running upstream process.
pub struct Process {
    child: Mutex<Child>,
    stdin: Arc<Mutex<ChildStdin>>,
    pending: Pending,
    next: AtomicI64,
    alive: Arc<AtomicBool>,
}

impl Drop for Process {
    fn drop(&mut self) {
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Process {
    /// Starts `spec` and performs the `initialize` handshake.
    pub async fn start(
        spec: &StdioUpstream,
        timeout: Duration,
        max_bytes: usize,
    ) -> Result<Arc<Process>, UpstreamError> {
        let mut cmd = Command::new(&spec.command);
        cmd.args(&spec.args)
            .env_clear()
            .envs(&spec.env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd
            .spawn()
            .map_err(|e| UpstreamError::Unreachable(format!("stdio upstream {:?} did not start: {e}", spec.name)))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(UpstreamError::Unreachable("stdio upstream without pipes".into()));
        };
        let pending: Pending = Arc::default();
        let alive = Arc::new(AtomicBool::new(true));
        let (p, a) = (pending.clone(), alive.clone());
        std::thread::Builder::new()
            .name("mcp-stdio".into())
            .spawn(move || {
                let mut reader = BufReader::new(stdout);
                let mut line = String::new();
                loop {
                    line.clear();
                    match reader.by_ref().take(max_bytes as u64 + 1).read_line(&mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(n) if n > max_bytes => break,
                        Ok(_) => {}
                    }
                    let Ok(msg) = serde_json::from_str::<Value>(line.trim()) else {
                        continue;
                    };
                    // Answers only: its requests and notifications are not served.
                    if let Some(id) = msg.get("id").and_then(Value::as_i64)
                        && (msg.get("result").is_some() || msg.get("error").is_some())
                        && let Some(tx) = p.lock().unwrap_or_else(|e| e.into_inner()).remove(&id)
                    {
                        let _ = tx.send(msg);
                    }
                }
                a.store(false, Ordering::SeqCst);
                p.lock().unwrap_or_else(|e| e.into_inner()).clear();
            })
            .map_err(|e| UpstreamError::Unreachable(format!("no reader thread: {e}")))?;
        let proc = Arc::new(Process {
            child: Mutex::new(child),
            stdin: Arc::new(Mutex::new(stdin)),
            pending,
            next: AtomicI64::new(1),
            alive,
        });
        let params = json!({"protocolVersion": UPSTREAM_PROTOCOL, "capabilities": {},
            "clientInfo": {"name": "warden-gateway", "version": env!("CARGO_PKG_VERSION")}});
        proc.request("initialize", params, timeout).await?;
        proc.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await?;
        Ok(proc)
    }

    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    async fn send(&self, msg: Value) -> Result<(), UpstreamError> {
        let stdin = self.stdin.clone();
        let mut line = msg.to_string();
        line.push('\n');
        tokio::task::spawn_blocking(move || {
            let mut w = stdin.lock().unwrap_or_else(|p| p.into_inner());
            w.write_all(line.as_bytes()).and_then(|()| w.flush())
        })
        .await
        .map_err(|e| UpstreamError::Unreachable(e.to_string()))?
        .map_err(|e| UpstreamError::Unreachable(format!("the stdio upstream's input is closed: {e}")))
    }

    /// Sends a request and waits for its answer.
    pub async fn request(&self, method: &str, params: Value, timeout: Duration) -> Result<Value, UpstreamError> {
        if !self.is_alive() {
            return Err(UpstreamError::Unreachable("the stdio upstream exited".into()));
        }
        let id = self.next.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).insert(id, tx);
        let sent = self
            .send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        if let Err(e) = sent {
            self.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            return Err(e);
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => rpc_result(answer),
            Ok(Err(_)) => Err(UpstreamError::Unreachable("the stdio upstream exited".into())),
            Err(_) => {
                self.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                Err(UpstreamError::Timeout(timeout.as_secs()))
            }
        }
    }
}
