//! Agent and runner streams: executions given to an agent stream and taken
//! back when it goes (or its instance goes silent), runners taking jobs,
//! and streams whose token was revoked or expired closed.

use std::sync::Arc;

use serde_json::json;
use tokio::sync::Notify;

use super::edit::*;
use super::error::*;
use super::hub::Conn;
use super::{Kernel, SYSTEM};
use crate::auth::{Principal, new_id};
use crate::clock::rfc3339_ms;
use crate::metrics::KindLabels;
use crate::model::kernel::*;

/// Gives the execution to an agent stream (pending → running), or back to
/// it (blocked, its agent had gone).
pub(super) fn assign(edit: &mut Edit, conn: &Conn) -> Result<()> {
    let payload = json!({"conn": conn.id, "agent_token": conn.token_id, "subject": conn.subject});
    if edit.exec.state == ExecState::Pending {
        edit.move_exec(ExecState::Running, "kernel.execution.assigned", &conn.actor, payload)?;
    } else {
        edit.record("kernel.execution.assigned", &conn.actor, payload);
    }
    edit.exec.conn = Some(conn.id.clone());
    edit.exec.agent_token = Some(conn.token_id.clone());
    if !edit.exec.agent_subjects.contains(&conn.subject) {
        edit.exec.agent_subjects.push(conn.subject.clone());
    }
    edit.exec.agent_lost_at = None;
    let data = json!({"execution_id": edit.exec.id, "agent_id": edit.exec.agent_id, "state": edit.exec.state.as_str(),
        "input": edit.exec.input, "labels": edit.exec.labels, "deadline_at": rfc3339_ms(edit.exec.deadline_at)});
    let mut data = data;
    if let Some(context) = &edit.exec.context {
        // A workflow run's execution: its run, state and pinned skill.
        data["context"] = context.clone();
    }
    let agent = edit.agent();
    edit.push(agent, "execution.assigned", data);
    Ok(())
}

/// The execution's agent stream is gone: running → pending; a blocked one
/// keeps waiting, with the time its agent left.
pub(super) fn release(edit: &mut Edit, actor: &str, why: &str) -> Result<()> {
    if edit.exec.state == ExecState::Running {
        edit.move_exec(
            ExecState::Pending,
            "kernel.execution.released",
            actor,
            json!({"reason": why}),
        )?;
        edit.exec.agent_lost_at = None;
    } else {
        edit.record(
            "kernel.execution.released",
            actor,
            json!({"reason": why, "state": edit.exec.state.as_str()}),
        );
        edit.exec.agent_lost_at = Some(edit.now);
    }
    edit.exec.conn = None;
    edit.exec.agent_token = None;
    Ok(())
}

impl Kernel {
    pub fn new_conn(&self, who: &Principal, name: String, recipient: String) -> Conn {
        Conn {
            id: format!("{}/{}", self.instance, new_id("con", self.clock.now_ms())),
            tenant_id: who.tenant_id.clone(),
            name,
            token_id: who.token_id.clone(),
            subject: who.subject.clone(),
            expires_at: who.expires_at,
            actor: who.actor(),
            recipient,
            wake: Arc::new(Notify::new()),
            inbox: Arc::default(),
            closed: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            tools: Vec::new(),
        }
    }

    /// An agent stream opened: it takes its agent's unassigned executions.
    /// Refused when its tenant holds `max_streams_per_tenant` here already.
    pub async fn agent_connected(&self, conn: Conn) -> Result<()> {
        self.hub
            .add_agent(conn.clone(), self.cfg.max_streams_per_tenant)
            .map_err(|e| KernelError::TooManyStreams(e.0))?;
        self.metrics
            .kernel_streams
            .get_or_create(&KindLabels { kind: "agent" })
            .inc();
        if let Err(e) = self.assign_waiting(Some((&conn.tenant_id, &conn.name))).await {
            // The stream is not served: it must not hold a slot.
            self.hub.remove(&conn);
            self.metrics
                .kernel_streams
                .get_or_create(&KindLabels { kind: "agent" })
                .dec();
            return Err(e);
        }
        Ok(())
    }

    /// Closes this token's open streams on this instance (it was revoked);
    /// returns how many.
    pub fn close_streams_of(&self, token_id: &str) -> usize {
        self.hub.close_token(token_id)
    }

    /// Closes the open streams whose token expired or was revoked (on any
    /// instance: the store says which are still honoured); returns how many.
    pub async fn close_dead_streams(&self) -> Result<usize> {
        let tokens = self.hub.tokens();
        if tokens.is_empty() {
            return Ok(0);
        }
        let now = self.clock.now_ms();
        let live = self.store.live_tokens(&tokens, now).await?;
        // Only the tokens asked about: a stream opened meanwhile is not judged.
        let dead = tokens.into_iter().filter(|t| !live.contains(t)).collect();
        Ok(self.hub.close_dead(now, &dead))
    }

    /// Assigns unassigned executions to agent streams of this instance
    /// (only those of one agent, when given).
    pub async fn assign_waiting(&self, only: Option<(&str, &str)>) -> Result<()> {
        for e in self.unassigned(only).await? {
            if only.is_some_and(|(t, a)| e.tenant_id != t || e.agent_id != a) {
                continue;
            }
            let Some(conn) = self.hub.agent(&e.tenant_id, &e.agent_id) else {
                continue;
            };
            let _g = self.lock_of(&e.id).lock().await;
            let Some(exec) = self.store.kernel_execution(&e.id).await? else {
                continue;
            };
            let unassigned =
                exec.state == ExecState::Pending || (exec.state == ExecState::Blocked && exec.conn.is_none());
            if !unassigned {
                continue;
            }
            let mut edit = Edit::of(exec, self.clock.now_ms());
            assign(&mut edit, &conn)?;
            // Local steps that waited for their agent go to it now.
            if edit.exec.state == ExecState::Blocked {
                for s in self.store.kernel_steps_of(&edit.exec.id).await? {
                    let ready = s.state == StepState::Pending
                        && !s.remote
                        && matches!(s.review, None | Some(ReviewState::Approved))
                        && s.not_before.is_none_or(|t| t <= edit.now);
                    if ready {
                        self.dispatch(&mut edit, &s, SYSTEM)?;
                    }
                }
            }
            self.commit(edit).await?;
        }
        Ok(())
    }

    /// What waits for an agent stream: one agent's oldest, or every
    /// agent's share, tenant by tenant, round robin (one agent's backlog,
    /// however long, never hides another's executions).
    pub(super) async fn unassigned(&self, only: Option<(&str, &str)>) -> Result<Vec<ExecutionRow>> {
        Ok(match only {
            Some((tenant, agent)) => self.store.kernel_unassigned_of(tenant, agent, 1000).await?,
            None => self.store.kernel_unassigned(1000).await?,
        })
    }

    /// An agent stream closed: its running executions go back to pending;
    /// its blocked ones wait for the agent (up to `agent_timeout_secs`).
    pub async fn agent_disconnected(&self, conn: &Conn) -> Result<()> {
        self.hub.remove(conn);
        self.metrics
            .kernel_streams
            .get_or_create(&KindLabels { kind: "agent" })
            .dec();
        self.release_conn(&conn.id, "its agent stream closed").await?;
        self.due.notify_one();
        // The agent may have reconnected to another instance.
        self.due_elsewhere();
        Ok(())
    }

    pub(super) async fn release_conn(&self, conn: &str, why: &str) -> Result<()> {
        for e in self.store.kernel_executions_of_conn(conn).await? {
            let _g = self.lock_of(&e.id).lock().await;
            let Some(exec) = self.store.kernel_execution(&e.id).await? else {
                continue;
            };
            if exec.conn.as_deref() != Some(conn) {
                continue;
            }
            let mut edit = Edit::of(exec, self.clock.now_ms());
            release(&mut edit, SYSTEM, why)?;
            self.commit(edit).await?;
        }
        Ok(())
    }

    /// At start-up: streams of this instance's previous run are gone.
    pub async fn release_stale_streams(&self) -> Result<()> {
        self.release_instance(&self.instance, "the instance holding its agent stream restarted")
            .await
    }

    /// Gives back the executions held by streams of `instance` that are not
    /// open here.
    pub(super) async fn release_instance(&self, instance: &str, why: &str) -> Result<()> {
        for conn in self.store.kernel_held_by_instance(&format!("{instance}/")).await? {
            if !self.hub.has_agent_conn(&conn) {
                self.release_conn(&conn, why).await?;
            }
        }
        Ok(())
    }

    /// Whether other live instances share the store.
    pub fn has_peers(&self) -> bool {
        self.peers.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Beats for this instance, and gives back the executions of instances
    /// silent for longer than `silent_ms` (they stopped without restarting).
    pub async fn watch_instances(&self, silent_ms: i64) -> Result<usize> {
        let now = self.clock.now_ms();
        self.store.kernel_heartbeat(&self.instance, now).await?;
        let live = self.store.kernel_live_instances(now - silent_ms).await?;
        let peers = live.iter().any(|i| *i != self.instance);
        if peers || self.has_peers() {
            // What this instance remembers may be moved by them now, or
            // was while they were here.
            self.cache.clear();
        }
        self.peers.store(peers, std::sync::atomic::Ordering::Relaxed);
        let silent = self.store.kernel_silent_instances(now - silent_ms).await?;
        for other in &silent {
            if *other == self.instance {
                continue;
            }
            self.release_instance(other, "the instance holding its agent stream stopped")
                .await?;
            self.store.kernel_forget_instance(other, now - silent_ms).await?;
        }
        Ok(silent.len())
    }

    /// A runner stream opened: record its tools (they belong to its token:
    /// refused when another live token declared this runner's), then
    /// dispatch what waits.
    pub async fn runner_connected(&self, conn: Conn) -> Result<()> {
        let now = self.clock.now_ms();
        let owned = self
            .store
            .kernel_put_runner(&conn.tenant_id, &conn.name, &conn.token_id, &conn.tools, now)
            .await?;
        self.cache.forget_tools(&conn.tenant_id);
        if !owned {
            return Err(KernelError::RunnerOwned(conn.name));
        }
        self.hub
            .add_runner(conn, self.cfg.max_streams_per_tenant)
            .map_err(|e| KernelError::TooManyStreams(e.0))?;
        self.metrics
            .kernel_streams
            .get_or_create(&KindLabels { kind: "runner" })
            .inc();
        self.due.notify_one();
        Ok(())
    }

    pub fn runner_disconnected(&self, conn: &Conn) {
        self.hub.remove(conn);
        self.metrics
            .kernel_streams
            .get_or_create(&KindLabels { kind: "runner" })
            .dec();
    }
}
