//! The edit builder: one operation's new rows (the execution, its steps, a
//! verdict), its history entries and the stream messages it sends, built in
//! memory and committed at once by `Kernel::commit` with the ledger records
//! of its history.

use serde_json::Value;

use super::error::*;
use crate::auth::Principal;
use crate::clock::rfc3339_ms;
use crate::ledger::{Receipt, Record};
use crate::model::kernel::*;

/// One atomic change of one execution.
pub(super) struct Edit {
    pub(super) exec: ExecutionRow,
    pub(super) expected: Option<i64>,
    pub(super) steps: Vec<(StepRow, Option<StepState>)>,
    pub(super) history: Vec<HistoryRow>,
    pub(super) pushes: Vec<PushRow>,
    pub(super) approval: Option<ApprovalRow>,
    pub(super) now: i64,
    /// The caller acting (its actor and subject): the entries it records
    /// name its subject.
    pub(super) by: Option<(String, String)>,
}

impl Edit {
    pub(super) fn of(exec: ExecutionRow, now: i64) -> Self {
        let expected = Some(exec.version);
        Edit {
            exec,
            expected,
            steps: Vec::new(),
            history: Vec::new(),
            pushes: Vec::new(),
            approval: None,
            now,
            by: None,
        }
    }

    /// The same edit, made by `who`.
    pub(super) fn by(mut self, who: &Principal) -> Self {
        self.by = Some((who.actor(), who.subject.clone()));
        self
    }

    pub(super) fn record(&mut self, kind: &'static str, actor: &str, mut payload: Value) {
        self.exec.seq += 1;
        if kind != "decision" {
            payload["agent_id"] = self.exec.agent_id.clone().into();
            if let Some((by, subject)) = &self.by
                && by == actor
            {
                payload["subject"] = subject.clone().into();
            }
        }
        self.history.push(HistoryRow {
            execution_id: self.exec.id.clone(),
            seq: self.exec.seq,
            tenant_id: self.exec.tenant_id.clone(),
            kind,
            actor: actor.to_string(),
            payload,
            at: self.now,
            ledger_index: None,
        });
    }

    pub(super) fn move_exec(
        &mut self,
        to: ExecState,
        kind: &'static str,
        actor: &str,
        mut payload: Value,
    ) -> Result<()> {
        let from = self.exec.state;
        if !from.may_become(to) {
            return Err(KernelError::IllegalTransition {
                what: "execution",
                id: self.exec.id.clone(),
                from: from.to_string(),
                to: to.to_string(),
            });
        }
        self.exec.state = to;
        if to != ExecState::Blocked {
            self.exec.waiting_on = None;
            self.exec.wake_at = None;
        }
        payload["from"] = from.as_str().into();
        payload["to"] = to.as_str().into();
        self.record(kind, actor, payload);
        Ok(())
    }

    /// The step as this edit has it (its latest form if already changed).
    pub(super) fn current(&self, step: &StepRow) -> StepRow {
        self.steps
            .iter()
            .find(|(s, _)| s.id == step.id)
            .map(|(s, _)| s.clone())
            .unwrap_or_else(|| step.clone())
    }

    pub(super) fn put_step(&mut self, step: StepRow, stored: Option<StepState>) {
        match self.steps.iter_mut().find(|(s, _)| s.id == step.id) {
            Some(slot) => slot.0 = step,
            None => self.steps.push((step, stored)),
        }
    }

    /// Moves a step, recording it; `stored` is the state the store holds.
    pub(super) fn move_step(
        &mut self,
        step: &StepRow,
        to: StepState,
        kind: &'static str,
        actor: &str,
        mut payload: Value,
    ) -> Result<StepRow> {
        let stored = self
            .steps
            .iter()
            .find(|(s, _)| s.id == step.id)
            .map(|(_, st)| *st)
            .unwrap_or(Some(step.state));
        let mut s = self.current(step);
        if !s.state.may_become(to) {
            return Err(KernelError::IllegalTransition {
                what: "step",
                id: s.id.clone(),
                from: s.state.to_string(),
                to: to.to_string(),
            });
        }
        payload["step_id"] = s.id.clone().into();
        payload["tool"] = s.tool.clone().into();
        payload["attempt"] = s.attempt.into();
        payload["from"] = s.state.as_str().into();
        payload["to"] = to.as_str().into();
        s.state = to;
        s.updated_at = self.now;
        self.record(kind, actor, payload);
        self.put_step(s.clone(), stored);
        Ok(s)
    }

    pub(super) fn push(&mut self, recipient: String, event: &'static str, data: Value) {
        self.pushes.push(PushRow {
            recipient,
            seq: 0,
            event,
            data,
            created_at: self.now,
        });
    }

    pub(super) fn agent(&self) -> String {
        agent_recipient(&self.exec.tenant_id, &self.exec.agent_id)
    }
}

/// What a committed edit produced.
pub(super) struct Committed {
    pub(super) exec: ExecutionRow,
    pub(super) receipts: Vec<Receipt>,
    /// The kind of the entry each receipt proves, in the same order.
    pub(super) kinds: Vec<&'static str>,
}

impl Committed {
    /// The receipt of the last policy decision this commit recorded (the
    /// kernel policy's; a permission policy's decision comes before it).
    pub(super) fn decision_receipt(&self) -> Option<Receipt> {
        let at = self.kinds.iter().rposition(|k| *k == "decision")?;
        self.receipts.get(at).cloned()
    }
}

pub fn record_of(h: &HistoryRow) -> Record {
    let payload = if h.kind == "decision" {
        h.payload.clone()
    } else {
        let mut p = h.payload.clone();
        p["execution_id"] = h.execution_id.clone().into();
        p["seq"] = h.seq.into();
        p["at"] = rfc3339_ms(h.at).into();
        p
    };
    let subject = match h.kind {
        "decision" => h.payload["decision_id"].as_str().unwrap_or(&h.execution_id).to_string(),
        _ => h.execution_id.clone(),
    };
    Record::new(&h.tenant_id, h.kind, &h.actor, &payload).about(subject)
}
