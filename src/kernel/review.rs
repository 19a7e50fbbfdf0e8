//! Human review: the steps waiting for reviewers, and a reviewer's
//! verdict (the same person never counts twice; the arguments approved are
//! the arguments run).

use serde_json::json;

use super::edit::*;
use super::error::*;
use super::gates::*;
use super::requests::*;
use super::streams::*;
use super::views::*;
use super::{Kernel, SYSTEM};
use crate::auth::{Action, Principal, Role};
use crate::model::kernel::*;

impl Kernel {
    pub async fn pending_reviews(&self, who: &Principal) -> Result<Vec<PendingReview>> {
        let now = self.clock.now_ms();
        let mut out = Vec::new();
        for s in self.store.kernel_waiting_reviews(&who.tenant_id, 1000).await? {
            if s.review_expires_at.is_some_and(|t| t <= now) {
                continue;
            }
            let Some(exec) = self.store.kernel_execution(&s.execution_id).await? else {
                continue;
            };
            let (approved_by, approved_subjects): (Vec<String>, Vec<String>) = self
                .store
                .kernel_approvals_of(&s.id)
                .await?
                .into_iter()
                .filter(|a| a.approve)
                .map(|a| (a.reviewer, a.subject))
                .unzip();
            out.push(PendingReview {
                execution_id: exec.id,
                workflow_run: exec.workflow_run,
                agent_id: exec.agent_id,
                initiator: exec.initiator,
                step: StepView::of(&s, approved_by.len()),
                approved_by,
                approved_subjects,
            });
        }
        Ok(out)
    }

    pub async fn review(&self, who: &Principal, execution_id: &str, req: ReviewRequest) -> Result<StepView> {
        super::cache::fresh_if_stale(|| self.review_once(who, execution_id, req.clone())).await
    }

    async fn review_once(&self, who: &Principal, execution_id: &str, req: ReviewRequest) -> Result<StepView> {
        if !who.roles.contains(Role::Reviewer) {
            return Err(KernelError::NotAReviewer(who.roles.to_csv()));
        }
        let _g = self.lock_of(execution_id).lock().await;
        let exec = self.load(&who.tenant_id, execution_id).await?;
        let step = self.step_of(&exec, &req.step_id).await?;
        let now = self.clock.now_ms();
        let Some(review) = step.review else {
            return Err(KernelError::NoReview(step.id));
        };
        if exec.initiator_token == who.token_id || exec.initiator_subject == who.subject {
            return Err(KernelError::ByInitiator(exec.id));
        }
        // Whoever runs it, ran it, or may act as its agent: never its reviewer.
        let actor_of_it = exec.agent_token.as_deref() == Some(who.token_id.as_str())
            || exec.agent_subjects.contains(&who.subject)
            || (who.may(Action::ActAsAgent) && who.is_agent(&exec.agent_id));
        if actor_of_it {
            return Err(KernelError::ByActor(exec.id));
        }
        let verdicts = self.store.kernel_approvals_of(&step.id).await?;
        if verdicts
            .iter()
            .any(|a| a.reviewer_token == who.token_id || a.subject == who.subject)
        {
            return Err(KernelError::ApprovalReused(step.id));
        }
        let expired = review == ReviewState::Expired
            || (review == ReviewState::Waiting && step.review_expires_at.is_some_and(|t| t <= now));
        if expired {
            return Err(KernelError::ApprovalExpired(step.id));
        }
        if review != ReviewState::Waiting {
            return Err(KernelError::ApprovalClosed {
                step: step.id,
                state: review.to_string(),
            });
        }
        if req.args_hash != step.args_hash {
            return Err(KernelError::ArgumentsMismatch {
                given: req.args_hash,
                expected: step.args_hash,
            });
        }
        let actor = who.actor();
        let approve = req.decision == Verdict::Approve;
        let mut edit = Edit::of(exec, now).by(who);
        edit.approval = Some(ApprovalRow {
            step_id: step.id.clone(),
            tenant_id: who.tenant_id.clone(),
            reviewer_token: who.token_id.clone(),
            reviewer: actor.clone(),
            subject: who.subject.clone(),
            approve,
            reason: req.reason.clone(),
            args_hash: req.args_hash.clone(),
            at: now,
        });
        edit.record(
            "kernel.approval.recorded",
            &actor,
            json!({"step_id": step.id, "approve": approve, "reason": req.reason, "args_hash": req.args_hash}),
        );
        let approvals = verdicts.iter().filter(|a| a.approve).count() + approve as usize;
        if is_gate(&edit.exec, &step) && (!approve || approvals as i64 >= step.review_needed) {
            let mut approvers: Vec<(String, String)> = verdicts
                .iter()
                .filter(|a| a.approve)
                .map(|a| (a.reviewer.clone(), a.subject.clone()))
                .collect();
            if approve {
                approvers.push((actor.clone(), who.subject.clone()));
            }
            let s = self
                .close_gate(&mut edit, &step, approvers, &actor, &req.reason)
                .await?;
            self.commit(edit).await?;
            return Ok(StepView::of(&s, approvals));
        }
        let mut s = step.clone();
        if !approve {
            s.review = Some(ReviewState::Rejected);
            edit.put_step(s.clone(), Some(step.state));
            edit.record(
                "kernel.approval.rejected",
                &actor,
                json!({"step_id": s.id, "reason": req.reason}),
            );
            s = edit.move_step(
                &s,
                StepState::Cancelled,
                "kernel.step.cancelled",
                &actor,
                json!({"reason": "rejected by a reviewer"}),
            )?;
            edit.move_exec(
                ExecState::Running,
                "kernel.execution.resumed",
                &actor,
                json!({"step_id": s.id, "reason": "review rejected"}),
            )?;
            let data = json!({"execution_id": edit.exec.id, "step_id": s.id, "state": "cancelled",
                "review": "rejected", "reason": req.reason, "execution_state": "running"});
            let agent = edit.agent();
            edit.push(agent, "step.result", data);
            if edit.exec.conn.is_none() {
                release(&mut edit, SYSTEM, "no agent stream holds it")?;
            }
        } else if approvals as i64 >= step.review_needed {
            s.review = Some(ReviewState::Approved);
            edit.put_step(s.clone(), Some(step.state));
            edit.record(
                "kernel.approval.granted",
                &actor,
                json!({"step_id": s.id, "approvals": approvals, "reviewers_required": step.review_needed}),
            );
            edit.exec.waiting_on = Some(WaitingOn::Step);
            if edit.exec.conn.is_none() {
                // The agent left during the review: its time-out counts
                // from now, not from when it left.
                edit.exec.agent_lost_at = Some(edit.now);
            }
            s = self.dispatch(&mut edit, &s, &actor)?;
        }
        self.commit(edit).await?;
        Ok(StepView::of(&s, approvals))
    }
}
