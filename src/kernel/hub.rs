//! The agent and runner streams connected to this instance, and the wake-up
//! of a stream when a message for it was committed.
//!
//! Messages themselves live in the store (`kernel_pushes`): a stream reads
//! what follows the last id it sent, so a client that reconnects with
//! `Last-Event-ID` misses nothing, and a message committed by another
//! instance reaches it at its next poll.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::store::DeclaredTool;

/// One open stream.
#[derive(Debug, Clone)]
pub struct Conn {
    pub id: String,
    pub tenant_id: String,
    /// The agent or runner id.
    pub name: String,
    pub token_id: String,
    pub actor: String,
    pub recipient: String,
    pub wake: Arc<Notify>,
    /// A runner's tools (empty for agents).
    pub tools: Vec<DeclaredTool>,
}

#[derive(Default)]
struct Inner {
    agents: HashMap<(String, String), Vec<Conn>>,
    runners: HashMap<(String, String), Vec<Conn>>,
    by_recipient: HashMap<String, Vec<Arc<Notify>>>,
}

#[derive(Default)]
pub struct Hub {
    inner: Mutex<Inner>,
    next: AtomicUsize,
}

impl Hub {
    pub fn add_agent(&self, conn: Conn) {
        let mut g = self.inner.lock().expect("hub lock");
        g.by_recipient
            .entry(conn.recipient.clone())
            .or_default()
            .push(conn.wake.clone());
        g.agents
            .entry((conn.tenant_id.clone(), conn.name.clone()))
            .or_default()
            .push(conn);
    }

    pub fn add_runner(&self, conn: Conn) {
        let mut g = self.inner.lock().expect("hub lock");
        g.by_recipient
            .entry(conn.recipient.clone())
            .or_default()
            .push(conn.wake.clone());
        g.runners
            .entry((conn.tenant_id.clone(), conn.name.clone()))
            .or_default()
            .push(conn);
    }

    /// Forgets a stream; true when it was the last one of its agent or runner.
    pub fn remove(&self, conn: &Conn) -> bool {
        let mut g = self.inner.lock().expect("hub lock");
        if let Some(list) = g.by_recipient.get_mut(&conn.recipient) {
            list.retain(|n| !Arc::ptr_eq(n, &conn.wake));
            if list.is_empty() {
                g.by_recipient.remove(&conn.recipient);
            }
        }
        let key = (conn.tenant_id.clone(), conn.name.clone());
        let map = if conn.recipient.starts_with("agent/") {
            &mut g.agents
        } else {
            &mut g.runners
        };
        let Some(list) = map.get_mut(&key) else {
            return true;
        };
        list.retain(|c| c.id != conn.id);
        let last = list.is_empty();
        if last {
            map.remove(&key);
        }
        last
    }

    /// Wakes every stream of this recipient on this instance.
    pub fn wake(&self, recipient: &str) {
        let g = self.inner.lock().expect("hub lock");
        if let Some(list) = g.by_recipient.get(recipient) {
            for n in list {
                n.notify_one();
            }
        }
    }

    /// A connected stream of this agent, if any.
    pub fn agent(&self, tenant_id: &str, agent_id: &str) -> Option<Conn> {
        let g = self.inner.lock().expect("hub lock");
        g.agents
            .get(&(tenant_id.to_string(), agent_id.to_string()))
            .and_then(|l| l.first().cloned())
    }

    pub fn has_agent_conn(&self, conn_id: &str) -> bool {
        let g = self.inner.lock().expect("hub lock");
        g.agents.values().flatten().any(|c| c.id == conn_id)
    }

    /// A connected runner serving `tool` in the tenant, taken in turn.
    pub fn runner_for(&self, tenant_id: &str, tool: &str) -> Option<Conn> {
        let g = self.inner.lock().expect("hub lock");
        let mut candidates: Vec<&Conn> = g
            .runners
            .iter()
            .filter(|((t, _), _)| t == tenant_id)
            .filter_map(|(_, l)| l.first())
            .filter(|c| c.tools.iter().any(|d| d.name == tool))
            .collect();
        if candidates.is_empty() {
            return None;
        }
        candidates.sort_by(|a, b| a.name.cmp(&b.name));
        let i = self.next.fetch_add(1, Ordering::Relaxed) % candidates.len();
        Some(candidates[i].clone())
    }

    pub fn counts(&self) -> (usize, usize) {
        let g = self.inner.lock().expect("hub lock");
        (
            g.agents.values().map(Vec::len).sum(),
            g.runners.values().map(Vec::len).sum(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(id: &str, name: &str, recipient: &str, tools: &[&str]) -> Conn {
        Conn {
            id: id.into(),
            tenant_id: "ten_1".into(),
            name: name.into(),
            token_id: "tok_1".into(),
            actor: "token:tok_1 (t)".into(),
            recipient: recipient.into(),
            wake: Arc::new(Notify::new()),
            tools: tools
                .iter()
                .map(|t| DeclaredTool {
                    name: t.to_string(),
                    idempotent: true,
                })
                .collect(),
        }
    }

    #[test]
    fn runners_serving_a_tool_are_taken_in_turn_and_forgotten_when_gone() {
        let hub = Hub::default();
        let a = conn("c1", "r-a", "runner/ten_1/r-a", &["fetch", "post"]);
        let b = conn("c2", "r-b", "runner/ten_1/r-b", &["fetch"]);
        hub.add_runner(a.clone());
        hub.add_runner(b.clone());
        let picks: Vec<String> = (0..4).map(|_| hub.runner_for("ten_1", "fetch").unwrap().name).collect();
        assert_eq!(picks.iter().filter(|n| *n == "r-a").count(), 2, "{picks:?}");
        assert_eq!(hub.runner_for("ten_1", "post").unwrap().name, "r-a");
        assert!(
            hub.runner_for("ten_2", "fetch").is_none(),
            "another tenant's runners never serve"
        );
        assert!(hub.remove(&a));
        assert!(hub.runner_for("ten_1", "post").is_none());
        assert_eq!(hub.counts(), (0, 1));
    }

    #[test]
    fn an_agent_with_two_streams_stays_until_the_last_closes() {
        let hub = Hub::default();
        let one = conn("c1", "claims", "agent/ten_1/claims", &[]);
        let two = conn("c2", "claims", "agent/ten_1/claims", &[]);
        hub.add_agent(one.clone());
        hub.add_agent(two.clone());
        assert!(!hub.remove(&one), "another stream of the agent is open");
        assert_eq!(hub.agent("ten_1", "claims").unwrap().id, "c2");
        assert!(hub.has_agent_conn("c2") && !hub.has_agent_conn("c1"));
        // Waking reaches the open stream (the permit is kept until it waits).
        hub.wake("agent/ten_1/claims");
        assert!(
            futures_util::FutureExt::now_or_never(two.wake.notified()).is_some(),
            "the wake-up is kept for the stream"
        );
        assert!(hub.remove(&two));
        assert!(hub.agent("ten_1", "claims").is_none());
    }
}
