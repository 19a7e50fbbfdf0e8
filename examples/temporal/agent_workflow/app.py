"""Seed 004's shared agent workflow on Temporal, governed by Warden.

A plan step (the model: a scripted planner here, so the example runs
offline) proposes tool calls; each tool call is an activity, and Warden's
kernel policy (the shipped `policies/kernel/` rules) decides it before it
is scheduled: read-only tools run, a large refund waits for two
reviewers (as long as the policy allows: 24 h, on Warden's clock, without
holding a worker), a shell command is refused. Long runs continue as new
every STEPS_PER_RUN steps; each run is its own Warden execution, linked
by the Temporal workflow id.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

STEPS_PER_RUN = 2


@dataclass
class AgentInput:
    task: str
    refund_amount: int = 150
    max_steps: int = 10


@dataclass
class AgentState:
    input: AgentInput
    messages: list[dict] = field(default_factory=list)
    step: int = 0


@activity.defn(name="llm.plan")
async def plan(messages: list[dict], amount: int) -> dict:
    """The model's next move (scripted: look the claim up and search the
    knowledge base, then refund, then answer)."""
    done = [m["name"] for m in messages if m.get("role") == "tool"]
    if "claims.get_claim" not in done:
        return {"tool_calls": [
            {"id": "c1", "name": "claims.get_claim", "arguments": {"claim_id": "C-1"}},
            {"id": "c2", "name": "kb.search", "arguments": {"q": "refund policy for water damage"}},
        ]}
    if "payments.refund" not in done:
        return {"tool_calls": [{"id": "c3", "name": "payments.refund", "arguments": {
            "amount": amount, "currency": "EUR", "customer": {"id": "cust-7"}}}]}
    return {"content": f"Refunded {amount} EUR for claim C-1.", "tool_calls": []}


@activity.defn(name="claims.get_claim")
async def get_claim(arguments: dict) -> dict:
    return {"claim_id": arguments["claim_id"], "status": "open", "customer": "cust-7"}


@activity.defn(name="kb.search")
async def kb_search(arguments: dict) -> dict:
    return {"hits": ["Refunds up to 200 EUR need no review; 1000 EUR and more need two."]}


@activity.defn(name="payments.refund")
async def refund(arguments: dict) -> dict:
    return {"refund_id": f"R-{arguments['amount']}", "status": "sent"}


@activity.defn(name="shell.exec")
async def shell(arguments: dict) -> dict:
    raise RuntimeError("never reached: the kernel policy denies shell.*")


ACTIVITIES = [plan, get_claim, kb_search, refund, shell]


@workflow.defn(name="PlatformAgentWorkflow")
class PlatformAgentWorkflow:
    @workflow.run
    async def run(self, state: AgentState) -> str:
        inp = state.input
        if state.step == 0 and not state.messages:
            state.messages = [{"role": "user", "content": inp.task}]
        while state.step < inp.max_steps:
            if state.step > 0 and state.step % STEPS_PER_RUN == 0 and not state.messages[-1].get("continued"):
                state.messages[-1]["continued"] = True
                workflow.continue_as_new(state)
            reply = await workflow.execute_activity(
                "llm.plan", args=[state.messages, inp.refund_amount],
                start_to_close_timeout=timedelta(minutes=5),
                retry_policy=RetryPolicy(initial_interval=timedelta(seconds=2), maximum_attempts=10))
            state.step += 1
            if not reply.get("tool_calls"):
                return reply["content"]
            # Tool calls at once (Warden takes them one after another: the
            # kernel runs one step of an execution at a time).
            results = await asyncio.gather(*[
                workflow.execute_activity(tc["name"], tc["arguments"], start_to_close_timeout=timedelta(minutes=2),
                                          retry_policy=RetryPolicy(maximum_attempts=3))
                for tc in reply["tool_calls"]], return_exceptions=True)
            for tc, result in zip(reply["tool_calls"], results):
                if isinstance(result, ApplicationError) and result.type and result.type.startswith("Warden"):
                    # Denied, rejected or expired: tell the model, do not retry.
                    result = {"refused": result.type, "reasons": (result.details or [{}])[0].get("reasons")}
                elif isinstance(result, (ActivityError, BaseException)):
                    raise result
                state.messages.append({"role": "tool", "name": tc["name"], "tool_call_id": tc["id"],
                                       "content": result})
        raise ApplicationError(f"no answer after {inp.max_steps} steps", non_retryable=True)
