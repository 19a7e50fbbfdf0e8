"""The workflow side: one Warden execution per workflow run, a check before
every activity, reviews waited for with durable timers.

Runs inside workflow code, so it does no I/O and nothing random or timed
outside Temporal's API: every call to Warden is a local activity whose
result Temporal records in the history (and replays from it).
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError
from temporalio.worker import (
    ExecuteWorkflowInput,
    StartActivityInput,
    WorkflowInboundInterceptor,
    WorkflowOutboundInterceptor,
)

from ._common import (
    CHECK,
    DECISIONS_QUERY,
    DENIED,
    END_EXECUTION,
    ENDED,
    EXPIRED,
    HEADER,
    MEMO_KEY,
    REJECTED,
    REPORT_STEP,
    REVIEW_SIGNAL,
    REVIEW_STATE,
    START_EXECUTION,
    WorkflowSettings,
)

_NON_RETRYABLE = [ENDED, "WardenConfigError"]
_MAX_JSON = 64 * 1024


def _to_json(values: Any) -> Any:
    """Converts workflow values to JSON with the workflow's own payload
    converter (deterministic; what Temporal itself would store)."""
    conv = workflow.payload_converter()
    out = []
    for p in conv.to_payloads(list(values)):
        enc = p.metadata.get("encoding", b"").decode()
        if enc in ("json/plain", "json/protobuf"):
            out.append(json.loads(p.data.decode() or "null"))
        elif enc == "binary/null":
            out.append(None)
        else:
            out.append({"encoding": enc, "bytes": len(p.data)})
    return out


def _bounded(value: Any) -> Any:
    text = json.dumps(value, separators=(",", ":"), default=str)
    if len(text) > _MAX_JSON:
        return {"truncated": True, "json_bytes": len(text)}
    return value


class _Run:
    """The Warden state of one workflow run (rebuilt by replay)."""

    def __init__(self, settings: WorkflowSettings) -> None:
        self.settings = settings
        self.active = False
        self.execution_id: str | None = None
        self.segment = 0
        self.execution_ended = False
        self.executions: list[str] = []
        self.decisions: list[dict] = []
        self.hints: set[str] = set()
        self.counter = 0
        self.lock = asyncio.Lock()

    def la_options(self) -> dict:
        s = self.settings
        return {
            "start_to_close_timeout": s.call_timeout,
            "schedule_to_close_timeout": s.unavailable_for,
            "retry_policy": RetryPolicy(
                initial_interval=timedelta(milliseconds=300),
                backoff_coefficient=2.0,
                maximum_interval=timedelta(seconds=10),
                non_retryable_error_types=_NON_RETRYABLE,
            ),
        }

    def temporal(self) -> dict:
        info = workflow.info()
        return {
            "namespace": info.namespace,
            "workflow_type": info.workflow_type,
            "workflow_id": info.workflow_id,
            "run_id": info.run_id,
            "task_queue": info.task_queue,
            "attempt": info.attempt,
            "continued_from_run_id": info.continued_run_id,
            "parent_workflow_id": info.parent.workflow_id if info.parent else None,
        }

    async def start_execution(self, args: Any) -> None:
        self.segment += 1
        req = {"temporal": self.temporal(), "args": args, "segment": self.segment,
               "previous_execution_id": self.execution_id}
        res = await workflow.execute_local_activity(START_EXECUTION, req, **self.la_options())
        self.execution_id = res["execution_id"]
        self.execution_ended = False
        self.executions.append(self.execution_id)
        self.upsert_memo()

    def upsert_memo(self) -> None:
        keep = self.settings.memo_decisions
        workflow.upsert_memo({MEMO_KEY: {
            "execution_id": self.execution_id,
            "executions": self.executions,
            "decisions_total": len(self.decisions),
            "decisions": [
                {k: d.get(k) for k in ("activity_id", "activity_type", "outcome", "decision_id",
                                       "ledger_index", "step_id", "execution_id")}
                for d in self.decisions[-keep:]
            ],
        }})

    def query(self) -> dict:
        return {"execution_id": self.execution_id, "executions": self.executions, "decisions": self.decisions}


def workflow_interceptor_class(settings: WorkflowSettings) -> type[WorkflowInboundInterceptor]:
    """The workflow interceptor class, bound to these settings."""

    class WardenWorkflowInbound(WorkflowInboundInterceptor):
        def init(self, outbound: WorkflowOutboundInterceptor) -> None:
            self._run = _Run(settings)
            super().init(_WardenWorkflowOutbound(outbound, self._run))

        async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
            run = self._run
            if not settings.checks_workflow(workflow.info().workflow_type):
                return await super().execute_workflow(input)
            run.active = True
            workflow.set_query_handler(DECISIONS_QUERY, run.query)

            def hint(payload: Any = None) -> None:
                if isinstance(payload, dict) and payload.get("step_id"):
                    run.hints.add(str(payload["step_id"]))

            workflow.set_signal_handler(REVIEW_SIGNAL, hint)
            await run.start_execution(_bounded(_to_json(input.args)))
            try:
                result = await super().execute_workflow(input)
            except workflow.ContinueAsNewError:
                await _end(run, "continued_as_new", None)
                raise
            except asyncio.CancelledError:
                await _end(run, "cancelled", {"reason": "the workflow was cancelled"})
                raise
            except FailureError as e:
                await _end(run, "failed", _failure(e))
                raise
            await _end(run, "completed", _bounded(_to_json([result])[0]))
            return result

    return WardenWorkflowInbound


def _failure(e: BaseException) -> dict:
    out: dict[str, Any] = {"message": str(e)[:2000], "type": type(e).__name__}
    if isinstance(e, ApplicationError):
        out["type"] = e.type or "ApplicationError"
        out["non_retryable"] = e.non_retryable
    cause = e.__cause__
    if cause is not None:
        out["cause"] = _failure(cause)
    return out


async def _end(run: _Run, outcome: str, detail: Any) -> None:
    if run.execution_id is None or run.execution_ended:
        return
    req = {"temporal": run.temporal(), "execution_id": run.execution_id, "outcome": outcome, "detail": detail}
    # Once only, even if a second cancellation interrupts the wait; shielded:
    # a cancelled workflow still closes its execution.
    run.execution_ended = True
    await asyncio.shield(workflow.execute_local_activity(END_EXECUTION, req, **run.la_options()))


class _WardenWorkflowOutbound(WorkflowOutboundInterceptor):
    def __init__(self, next: WorkflowOutboundInterceptor, run: _Run) -> None:
        super().__init__(next)
        self._run = run

    def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle:
        run = self._run
        if not run.active or not run.settings.checks_activity(input.activity):
            return super().start_activity(input)
        run.counter += 1
        if input.activity_id is None:
            input.activity_id = f"{input.activity}-{run.counter}"
        return asyncio.get_running_loop().create_task(self._guarded(input))  # type: ignore[return-value]

    async def _guarded(self, input: StartActivityInput) -> Any:
        run = self._run
        # The kernel runs one step of an execution at a time.
        async with run.lock:
            if run.execution_id is None or run.execution_ended:
                await run.start_execution(None)
            check = await self._check(input)
            step_id = check.get("step_id")
            if check["outcome"] == "require_approval":
                check = await self._await_review(input, check)
                step_id = check.get("step_id")
            headers = dict(input.headers or {})
            headers[HEADER] = workflow.payload_converter().to_payload({
                "execution_id": check["execution_id"],
                "step_id": step_id,
                "decision_id": check.get("decision_id"),
                "review": check.get("review_outcome"),
            })
            input.headers = headers
            handle = super().start_activity(input)
            try:
                return await handle
            except ActivityError as e:
                if step_id:
                    res = await workflow.execute_local_activity(REPORT_STEP, {
                        "temporal": run.temporal(), "execution_id": check["execution_id"],
                        "step_id": step_id, "activity_id": input.activity_id,
                        "activity_type": input.activity, "error": _failure(e),
                    }, **run.la_options())
                    if res.get("execution_ended"):
                        run.execution_ended = True
                raise

    async def _check(self, input: StartActivityInput) -> dict:
        run = self._run
        timeout = input.schedule_to_close_timeout
        if timeout is None and input.start_to_close_timeout is not None:
            attempts = input.retry_policy.maximum_attempts if input.retry_policy else 0
            timeout = input.start_to_close_timeout * max(attempts or 3, 1)
        req = {
            "temporal": {**run.temporal(), "activity_type": input.activity, "activity_id": input.activity_id,
                         "activity_task_queue": input.task_queue or workflow.info().task_queue, "attempt": 1},
            "execution_id": run.execution_id,
            "activity_type": input.activity,
            "args": _bounded(_to_json(input.args)),
            "timeout_seconds": int(timeout.total_seconds() + 0.999) if timeout else None,
        }
        res = await workflow.execute_local_activity(CHECK, req, **run.la_options())
        if res.get("execution_ended"):
            # The execution ended under us (a failed step, an expiry): a new
            # one carries the run on, and this call is decided there.
            run.execution_ended = True
            await run.start_execution(None)
            req["execution_id"] = run.execution_id
            res = await workflow.execute_local_activity(CHECK, req, **run.la_options())
        entry = {"activity_id": input.activity_id, "activity_type": input.activity, **res}
        run.decisions.append(entry)
        run.upsert_memo()
        if res["outcome"] == "deny":
            raise ApplicationError(
                f"Warden denied activity {input.activity} ({input.activity_id}): " + "; ".join(res.get("reasons") or []),
                {"decision_id": res.get("decision_id"), "reasons": res.get("reasons"),
                 "execution_id": res.get("execution_id"), "ledger_index": res.get("ledger_index"),
                 "receipt": res.get("receipt"), "activity_id": input.activity_id, "activity_type": input.activity},
                type=DENIED,
                non_retryable=True,
            )
        return res

    async def _await_review(self, input: StartActivityInput, check: dict) -> dict:
        run = self._run
        step_id = check["step_id"]
        delay = run.settings.poll_first
        while True:
            try:
                await workflow.wait_condition(lambda: step_id in run.hints, timeout=delay)
            except asyncio.TimeoutError:
                pass
            run.hints.discard(step_id)
            state = await workflow.execute_local_activity(REVIEW_STATE, {
                "temporal": run.temporal(), "execution_id": check["execution_id"], "step_id": step_id,
            }, **run.la_options())
            verdict = state["review"]
            if verdict == "approved":
                return {**check, "review_outcome": "approved", "reviewers": state.get("reviewers")}
            details = {"decision_id": check.get("decision_id"), "step_id": step_id,
                       "execution_id": check["execution_id"], "reasons": check.get("reasons"),
                       "reviewers": state.get("reviewers"), "activity_id": input.activity_id,
                       "activity_type": input.activity}
            if verdict == "rejected":
                why = "; ".join(f"{r.get('subject') or r.get('reviewer')}: {r.get('reason')}"
                                for r in state.get("reviewers") or [] if not r.get("approve"))
                raise ApplicationError(f"Warden review rejected {input.activity}: {why}", details,
                                       type=REJECTED, non_retryable=True)
            if verdict in ("expired", "ended"):
                run.execution_ended = state.get("execution_ended", verdict == "ended") or run.execution_ended
                raise ApplicationError(
                    f"Warden review of {input.activity} ended without approval ({state.get('why') or verdict})",
                    details, type=EXPIRED if verdict == "expired" else ENDED, non_retryable=True)
            # Still waiting: back off, never past the review's expiry.
            delay = min(delay * 2, run.settings.poll_max)
            left = state.get("expires_in_ms")
            if left is not None:
                delay = min(delay, timedelta(milliseconds=max(int(left), 0) + 500))
