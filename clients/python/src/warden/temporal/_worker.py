"""The worker side: the local activities that talk to Warden, the activity
interceptor that reports each activity's end as its step's result and
records audit events, and the agent stream the worker keeps open."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError as TemporalCancelledError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
    WorkflowInterceptorClassInput,
    WorkflowInboundInterceptor,
)

from ._common import (
    CHECK,
    END_EXECUTION,
    HEADER,
    OWN_ACTIVITIES,
    REPORT_STEP,
    REVIEW_SIGNAL,
    REVIEW_STATE,
    START_EXECUTION,
    WorkflowSettings,
    agent_id_of,
    tool_name_of,
)
from ._http import WardenHTTP, WardenHTTPError
from ._workflow import workflow_interceptor_class

log = logging.getLogger("warden.temporal")

_MAX_JSON = 64 * 1024


@dataclass
class WardenSettings:
    """How a worker reaches Warden and what it tells it.

    ``url``: Warden's base URL. ``orchestrator_token``: starts and cancels
    the executions (role ``orchestrator``). ``agent_token``: holds the agent
    stream and sends intents and step results (role ``agent``, bound to
    ``agent_id``). ``agent_id``: the kernel agent the worker acts as
    (default: the task queue's name).
    """

    url: str
    orchestrator_token: str
    agent_token: str
    agent_id: str | None = None
    # Labels of every execution (the kernel policy's `labels` rules), or a
    # function of the run's Temporal context returning them.
    labels: Mapping[str, Any] | Callable[[dict], Mapping[str, Any]] | None = None
    # What the user adds to every check's arguments: a function of the call
    # (`{"activity_type", "args", "temporal"}`) returning a dict, merged
    # under `context` (runs in the worker, outside workflow code).
    context: Callable[[dict], Mapping[str, Any]] | None = None
    # Tool name for an activity type (default: the type, in the kernel's
    # alphabet).
    tool_name: Callable[[str], str] | None = None
    # Whether an activity type may run twice (the kernel records it).
    idempotent: Callable[[str], bool] | None = None
    # Execution time-out asked of Warden (None: Warden's maximum).
    execution_timeout_seconds: int | None = None
    # Audit events for activities and workflows (False: decisions and step
    # results only).
    audit: bool = True
    # How long a step result is retried while Warden cannot answer before
    # the activity attempt fails (and Temporal retries it).
    report_for: float = 120.0
    http_timeout: float = 10.0
    transport: httpx.AsyncBaseTransport | None = None
    workflow: WorkflowSettings = field(default_factory=WorkflowSettings)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_id(*parts: Any) -> str:
    """A stable event id for a fact (a retried submission is recorded
    once): never of the forms Warden reserves for its own events."""
    h = hashlib.blake2b("\x1f".join(str(p) for p in parts).encode(), digest_size=16).hexdigest()
    return "evt_tmp" + h


def _json_value(value: Any) -> Any:
    try:
        conv = activity.payload_converter()
    except RuntimeError:
        import temporalio.converter
        conv = temporalio.converter.default().payload_converter
    try:
        p = conv.to_payloads([value])[0]
    except Exception:  # noqa: BLE001 - anything the converter refuses is described, not sent
        return {"unconvertible": type(value).__name__}
    enc = p.metadata.get("encoding", b"").decode()
    if enc in ("json/plain", "json/protobuf"):
        out = json.loads(p.data.decode() or "null")
    elif enc == "binary/null":
        out = None
    else:
        out = {"encoding": enc, "bytes": len(p.data)}
    text = json.dumps(out, separators=(",", ":"), default=str)
    if len(text) > _MAX_JSON:
        return {"truncated": True, "json_bytes": len(text)}
    return out


def _error_of(e: BaseException) -> dict:
    out: dict[str, Any] = {"type": type(e).__name__, "message": str(e)[:2000]}
    if isinstance(e, ApplicationError):
        out["type"] = e.type or "ApplicationError"
        out["non_retryable"] = e.non_retryable
    return out


class WardenRuntime:
    """The worker's connection to Warden: the clients, the local
    activities, the interceptor and the agent stream."""

    def __init__(self, settings: WardenSettings, *, task_queue: str, client: Any = None) -> None:
        self.settings = settings
        self.task_queue = task_queue
        self.agent_id = settings.agent_id or agent_id_of(task_queue)
        self.client = client
        self.orchestrator = WardenHTTP(settings.url, settings.orchestrator_token, timeout=settings.http_timeout,
                                       transport=settings.transport)
        self.agent = WardenHTTP(settings.url, settings.agent_token, timeout=settings.http_timeout,
                                transport=settings.transport)
        # Executions this process knows of → their workflow (for signals).
        self.runs: dict[str, tuple[str, str]] = {}
        # Steps waiting for review here.
        self.watched: dict[str, str] = {}
        self.stream_connected = asyncio.Event()
        self.stream_events = 0

    # -- pieces the plugin installs ----------------------------------------

    def activities(self) -> list[Callable]:
        return [self.start_execution, self.check, self.review_state, self.report_step, self.end_execution]

    def interceptor(self) -> "WardenInterceptor":
        return WardenInterceptor(self)

    # -- audit ------------------------------------------------------------

    async def audit(self, events: list[dict]) -> None:
        if not self.settings.audit or not events:
            return
        for e in events:
            e.setdefault("agent_id", self.agent_id)
        try:
            await _retrying(lambda: self.agent.audit_batch(events), self.settings.report_for)
        except WardenHTTPError as e:
            # Event ids name the fact (workflow, run, activity, attempt,
            # what happened): a conflict is the same fact recorded by an
            # earlier try of this call, with another timestamp.
            if e.code != "event_id_conflict":
                raise

    def _labels(self, temporal: dict) -> dict:
        labels: dict[str, Any] = {}
        extra = self.settings.labels
        if callable(extra):
            extra = extra(temporal)
        labels.update(extra or {})
        labels.update({
            "temporal.namespace": temporal["namespace"],
            "temporal.workflow_type": temporal["workflow_type"],
            "temporal.workflow_id": temporal["workflow_id"],
            "temporal.run_id": temporal["run_id"],
            "temporal.task_queue": temporal["task_queue"],
        })
        return labels

    # -- local activities -------------------------------------------------

    @activity.defn(name=START_EXECUTION)
    async def start_execution(self, req: dict) -> dict:
        t = req["temporal"]
        labels = self._labels(t)
        if req.get("segment", 1) > 1:
            labels["temporal.segment"] = req["segment"]
        body_input = {"temporal": t, "args": req.get("args"), "previous_execution_id": req.get("previous_execution_id")}
        try:
            ex = await self.orchestrator.create_execution(self.agent_id, body_input, labels,
                                                          self.settings.execution_timeout_seconds)
        except WardenHTTPError as e:
            raise _as_activity_error(e)
        self.runs[ex["id"]] = (t["workflow_id"], t["run_id"])
        # The worker's stream takes it at once when it is open; otherwise
        # wait (a stream reconnecting, another worker's stream taking it).
        deadline = time.monotonic() + 20
        while ex["state"] == "pending" and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            ex = await self.agent.execution(ex["id"])
        if ex["state"] == "pending":
            log.warning("warden execution %s not yet taken by an agent stream of %s", ex["id"], self.agent_id)
        if req.get("segment", 1) == 1:
            await self.audit([{
                "event_id": event_id("wf-start", t["workflow_id"], t["run_id"]),
                "timestamp": _now(), "workflow_id": t["workflow_id"], "action": "workflow.started",
                "result": "success",
                "attributes": _attrs(t, execution_id=ex["id"]),
            }])
        return {"execution_id": ex["id"], "state": ex["state"]}

    @activity.defn(name=CHECK)
    async def check(self, req: dict) -> dict:
        t = req["temporal"]
        execution_id = req["execution_id"]
        self.runs[execution_id] = (t["workflow_id"], t["run_id"])
        activity_type = req["activity_type"]
        args = req.get("args") or []
        arguments: dict[str, Any] = {}
        if len(args) == 1 and isinstance(args[0], dict):
            arguments.update(args[0])
        else:
            arguments["args"] = args
        arguments["temporal"] = {k: t.get(k) for k in (
            "namespace", "workflow_type", "workflow_id", "run_id", "activity_type", "activity_id",
            "activity_task_queue", "attempt")}
        if self.settings.context is not None:
            extra = self.settings.context({"activity_type": activity_type, "args": args, "temporal": t})
            if extra:
                arguments["context"] = dict(extra)
        tool = (self.settings.tool_name or tool_name_of)(activity_type)
        idem = self.settings.idempotent(activity_type) if self.settings.idempotent else True
        timeout = req.get("timeout_seconds")
        try:
            ans = await self.agent.intent(
                execution_id, "invoke_tool", tool=tool, arguments=arguments, remote=False, idempotent=idem,
                timeout_seconds=timeout, retry={"max_attempts": 1},
            )
        except WardenHTTPError as e:
            if e.code == "intent_denied":
                errs = e.problem.get("errors") or []
                decision_id = next((x.get("decision_id") for x in errs if x.get("decision_id")), None)
                reasons = [x.get("reason") for x in errs if x.get("reason")] or [e.problem.get("detail", "denied")]
                # The denial carries its decision's receipt.
                receipt = next((x.get("receipt") for x in errs if x.get("receipt")), None)
                return {"outcome": "deny", "execution_id": execution_id, "decision_id": decision_id,
                        "reasons": reasons, "tool": tool, "receipt": receipt,
                        "ledger_index": receipt.get("index") if receipt else None}
            if e.status in (404, 409):
                ex = await self.agent.execution(execution_id)
                if ex["state"] in ("completed", "failed", "cancelled"):
                    return {"outcome": "ended", "execution_ended": True, "execution_id": execution_id}
                # A retry of a check whose answer was lost: the step exists.
                found = _step_of_activity(ex, t.get("activity_id"))
                if found is not None:
                    return await self._recovered(execution_id, tool, found)
            raise _as_activity_error(e)
        step = ans.get("step") or {}
        receipts = ans.get("receipts") or []
        # The kernel policy's decision, as the answer names it.
        receipt = ans.get("decision_receipt")
        index = receipt.get("index") if receipt else None
        out = {
            "outcome": ans["outcome"], "execution_id": execution_id, "decision_id": ans.get("decision_id"),
            "reasons": ans.get("reasons") or [], "tool": tool, "step_id": step.get("id"),
            "args_hash": step.get("args_hash"), "ledger_index": index, "receipt": receipt,
            "ledger_indexes": [r.get("index") for r in receipts],
        }
        if ans["outcome"] == "require_approval":
            self.watched[step["id"]] = execution_id
            out["review"] = step.get("review")
        return out

    async def _recovered(self, execution_id: str, tool: str, step: dict) -> dict:
        index = await self._decision_index(execution_id, step.get("decision_id"))
        review = step.get("review")
        outcome = "require_approval" if review else "allow"
        if review and review.get("state") == "waiting":
            self.watched[step["id"]] = execution_id
        return {"outcome": outcome, "execution_id": execution_id, "decision_id": step.get("decision_id"),
                "reasons": step.get("reasons") or [], "tool": tool, "step_id": step["id"],
                "args_hash": step.get("args_hash"), "ledger_index": index, "receipt": None,
                "ledger_indexes": [], "review": review, "recovered": True}

    async def _decision_index(self, execution_id: str, decision_id: str | None) -> int | None:
        """The ledger index of a decision, from the execution's history."""
        if decision_id is None:
            return None
        for h in reversed(await self.agent.execution_history(execution_id)):
            if h.get("kind") == "decision" and _payload_decision_id(h.get("payload")) == decision_id:
                return h.get("ledger_index")
        return None

    @activity.defn(name=REVIEW_STATE)
    async def review_state(self, req: dict) -> dict:
        t = req["temporal"]
        execution_id, step_id = req["execution_id"], req["step_id"]
        self.runs[execution_id] = (t["workflow_id"], t["run_id"])
        self.watched[step_id] = execution_id
        try:
            ex = await self.agent.execution(execution_id)
        except WardenHTTPError as e:
            raise _as_activity_error(e)
        step = next((s for s in ex.get("steps") or [] if s.get("id") == step_id), None)
        ended = ex["state"] in ("completed", "failed", "cancelled")
        if step is None:
            return {"review": "ended", "execution_ended": ended, "why": f"step {step_id} is not in execution {execution_id}"}
        review = step.get("review") or {}
        state = review.get("state")
        out: dict[str, Any] = {"review": state, "approvals": review.get("approvals"),
                               "reviewers_required": review.get("reviewers_required"),
                               "on_expiry": review.get("on_expiry"), "expires_at": review.get("expires_at"),
                               "execution_state": ex["state"], "execution_ended": ended}
        if state == "waiting":
            if ended:
                out["review"] = "ended"
                out["why"] = f"execution {execution_id} is {ex['state']}"
            elif review.get("expires_at"):
                exp = datetime.fromisoformat(review["expires_at"].replace("Z", "+00:00"))
                out["expires_in_ms"] = int((exp - datetime.now(timezone.utc)).total_seconds() * 1000)
        if state in ("approved", "rejected") or out["review"] != "waiting":
            self.watched.pop(step_id, None)
            out["reviewers"] = await self._verdicts(execution_id, step_id)
            if out["review"] in ("rejected", "expired", "ended"):
                await self.audit([{
                    "event_id": event_id("review", t["workflow_id"], t["run_id"], step_id, out["review"]),
                    "timestamp": _now(), "workflow_id": t["workflow_id"], "action": f"activity.review_{out['review']}",
                    "result": "denied" if out["review"] == "rejected" else "failure",
                    "attributes": _attrs(t, execution_id=execution_id, step_id=step_id),
                }])
        return out

    async def _verdicts(self, execution_id: str, step_id: str) -> list[dict]:
        out = []
        for h in await self.agent.execution_history(execution_id):
            p = h.get("payload") or {}
            if h.get("kind") == "kernel.approval.recorded" and p.get("step_id") == step_id:
                out.append({"reviewer": h.get("actor"), "subject": p.get("subject"), "approve": p.get("approve"),
                            "reason": p.get("reason"), "at": h.get("at"), "ledger_index": h.get("ledger_index")})
        return out

    @activity.defn(name=REPORT_STEP)
    async def report_step(self, req: dict) -> dict:
        """The workflow saw its activity fail (a time-out, a cancel, retries
        exhausted): the step fails, unless it already ended."""
        t = req["temporal"]
        try:
            await self.agent.step_result(req["step_id"], "failed", error=req.get("error"), retryable=False)
        except WardenHTTPError as e:
            if e.status not in (404, 409) or e.retryable:
                raise _as_activity_error(e)
        ex = await self.agent.execution(req["execution_id"])
        await self.audit([{
            "event_id": event_id("act-failed-wf", t["workflow_id"], t["run_id"], req.get("activity_id")),
            "timestamp": _now(), "workflow_id": t["workflow_id"], "activity_id": req.get("activity_id"),
            "action": "activity.failed", "result": "failure",
            "attributes": _attrs(t, execution_id=req["execution_id"], step_id=req["step_id"],
                                 activity_type=req.get("activity_type"), seen_by="workflow"),
        }])
        return {"execution_state": ex["state"], "execution_ended": ex["state"] in ("completed", "failed", "cancelled")}

    @activity.defn(name=END_EXECUTION)
    async def end_execution(self, req: dict) -> dict:
        t = req["temporal"]
        execution_id, outcome, detail = req["execution_id"], req["outcome"], req.get("detail")
        ex = await self.agent.execution(execution_id)
        if ex["state"] not in ("completed", "failed", "cancelled"):
            try:
                if outcome == "completed":
                    await self.agent.intent(execution_id, "complete", output={"result": detail})
                elif outcome == "continued_as_new":
                    await self.agent.intent(execution_id, "complete", output={"continued_as_new": True})
                elif outcome == "failed":
                    await self.agent.intent(execution_id, "fail", error=detail)
                else:
                    await self.orchestrator.cancel_execution(execution_id, "the Temporal workflow was cancelled")
            except WardenHTTPError as e:
                if e.status != 409 or e.retryable:
                    raise _as_activity_error(e)
                # Not running (a step still open, its stream away): cancel.
                await self.orchestrator.cancel_execution(
                    execution_id, f"the Temporal workflow run ended ({outcome}) while the execution was {e.code}")
        self.runs.pop(execution_id, None)
        action = {"completed": "workflow.completed", "failed": "workflow.failed", "cancelled": "workflow.cancelled",
                  "continued_as_new": "workflow.continued_as_new"}[outcome]
        result = {"completed": "success", "continued_as_new": "success", "failed": "failure",
                  "cancelled": "failure"}[outcome]
        await self.audit([{
            "event_id": event_id("wf-end", t["workflow_id"], t["run_id"], execution_id),
            "timestamp": _now(), "workflow_id": t["workflow_id"], "action": action, "result": result,
            "attributes": _attrs(t, execution_id=execution_id),
        }])
        ex = await self.agent.execution(execution_id)
        return {"execution_state": ex["state"]}

    # -- the agent stream -------------------------------------------------

    async def keep_stream(self, stop: asyncio.Event) -> None:
        """Holds the agent stream open (reconnecting with Last-Event-ID)
        and wakes the workflows whose reviews moved."""
        last: str | None = None
        while not stop.is_set():
            try:
                async for ev in self.agent.agent_stream(self.agent_id, last_event_id=last, stop=stop,
                                                         on_open=self.stream_connected.set):
                    self.stream_connected.set()
                    self.stream_events += 1
                    last = ev.id or last
                    if stop.is_set():
                        return
                    await self._on_event(ev)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - the stream must outlive any one fault
                log.warning("warden agent stream failed (%s); reopening", e)
                await asyncio.sleep(1)

    async def _on_event(self, ev: Any) -> None:
        data = ev.data if isinstance(ev.data, dict) else {}
        execution_id = data.get("execution_id")
        step_id = data.get("step_id")
        if ev.event == "execution.assigned":
            labels = data.get("labels") or {}
            if labels.get("temporal.workflow_id"):
                self.runs[execution_id] = (labels["temporal.workflow_id"], labels.get("temporal.run_id"))
            return
        woken = [s for s, e in self.watched.items() if (step_id and s == step_id) or
                 (step_id is None and e == execution_id and ev.event.startswith("execution."))]
        if not woken or self.client is None or execution_id not in self.runs:
            return
        workflow_id, run_id = self.runs[execution_id]
        for s in woken:
            try:
                await self.client.get_workflow_handle(workflow_id, run_id=run_id).signal(REVIEW_SIGNAL, {"step_id": s})
            except Exception as e:  # noqa: BLE001 - a hint: the workflow polls anyway
                log.info("could not signal %s: %s", workflow_id, e)

    async def aclose(self) -> None:
        await self.orchestrator.aclose()
        await self.agent.aclose()


def _payload_decision_id(p: Any) -> str | None:
    if not isinstance(p, dict):
        return None
    if p.get("decision_id"):
        return p["decision_id"]
    inner = p.get("decision")
    return inner.get("decision_id") if isinstance(inner, dict) else None


def _step_of_activity(ex: dict, activity_id: str | None) -> dict | None:
    if activity_id is None:
        return None
    for s in reversed(ex.get("steps") or []):
        temporal = (s.get("arguments") or {}).get("temporal") or {}
        if temporal.get("activity_id") == activity_id and temporal.get("run_id"):
            return s
    return None


def _attrs(t: Mapping[str, Any], **more: Any) -> dict:
    out = {
        "temporal.namespace": t.get("namespace"),
        "temporal.workflow_type": t.get("workflow_type"),
        "temporal.run_id": t.get("run_id"),
        "temporal.task_queue": t.get("task_queue"),
    }
    for k, v in more.items():
        out[f"warden.{k}" if k in ("execution_id", "step_id", "decision_id") else f"temporal.{k}"] = v
    return {k: v for k, v in out.items() if v is not None and isinstance(v, (str, int, float, bool))}


def _as_activity_error(e: WardenHTTPError) -> BaseException:
    if e.retryable or e.code in ("not_assigned",):
        return e
    if e.code in ("illegal_transition", "concurrent_change"):
        return e
    return ApplicationError(str(e), {"status": e.status, "code": e.code, "problem": e.problem},
                            type="WardenRefused", non_retryable=e.status in (400, 401, 403, 404, 422))


async def _retrying(call: Callable[[], Any], for_seconds: float) -> Any:
    deadline = time.monotonic() + for_seconds
    delay = 0.2
    while True:
        try:
            return await call()
        except (httpx.TransportError, WardenHTTPError) as e:
            if isinstance(e, WardenHTTPError) and not e.retryable:
                raise
            if time.monotonic() + delay > deadline:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


class WardenInterceptor(Interceptor):
    """The worker interceptor: the workflow side (checks before
    activities) and the activity side (step results, audit events)."""

    def __init__(self, runtime: WardenRuntime) -> None:
        self.runtime = runtime
        self._wf_class = workflow_interceptor_class(runtime.settings.workflow)

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _WardenActivityInbound(next, self.runtime)

    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor] | None:
        return self._wf_class


class _WardenActivityInbound(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, runtime: WardenRuntime) -> None:
        super().__init__(next)
        self.rt = runtime

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        if info.is_local or info.activity_type in OWN_ACTIVITIES:
            return await self.next.execute_activity(input)
        header = (input.headers or {}).get(HEADER)
        if header is None:
            return await self.next.execute_activity(input)
        ctx = activity.payload_converter().from_payload(header)
        rt = self.rt
        t = {"namespace": info.namespace, "workflow_type": info.workflow_type, "workflow_id": info.workflow_id,
             "run_id": info.workflow_run_id, "task_queue": info.task_queue}
        step_id = ctx.get("step_id")
        attrs = _attrs(t, execution_id=ctx.get("execution_id"), step_id=step_id, decision_id=ctx.get("decision_id"),
                       activity_type=info.activity_type, attempt=info.attempt, review=ctx.get("review"))
        base = {"workflow_id": info.workflow_id, "activity_id": info.activity_id}
        key = (info.workflow_id, info.workflow_run_id, info.activity_id, info.attempt)
        started = time.monotonic()
        # Recorded while the activity runs; awaited before its result is
        # reported, so the start is in the ledger before the end.
        start_event = asyncio.ensure_future(rt.audit([{
            **base, "event_id": event_id("act-start", *key), "timestamp": _now(),
            "action": "activity.started" if info.attempt == 1 else "activity.retried",
            "result": "pending", "attributes": attrs,
        }]))
        try:
            result = await self.next.execute_activity(input)
        except (asyncio.CancelledError, TemporalCancelledError):
            if activity.is_worker_shutdown():
                # The worker stops: Temporal gives the activity to another
                # worker, and the step stays open for it.
                await _quietly(start_event)
                await _quietly(rt.audit([{**base, "event_id": event_id("act-int", *key), "timestamp": _now(),
                                          "action": "activity.interrupted", "result": "error",
                                          "attributes": attrs}]))
            raise
        except BaseException as e:
            latency = int((time.monotonic() - started) * 1000)
            final = _final(e, info)
            tasks = [_after(start_event, rt.audit([{**base, "event_id": event_id("act-fail", *key), "timestamp": _now(),
                                "action": "activity.failed" if final else "activity.attempt_failed",
                                "result": "failure" if final else "error", "latency_ms": latency,
                                "attributes": {**attrs, "temporal.error_type": _error_of(e)["type"],
                                               "temporal.will_retry": not final}}]))]
            if final and step_id:
                error = _error_of(e)
                tasks.append(_retrying(lambda: rt.agent.step_result(step_id, "failed", error=error,
                                                                    retryable=False), rt.settings.report_for))
            await _quietly(asyncio.gather(*tasks))
            raise
        latency = int((time.monotonic() - started) * 1000)
        tasks = [_after(start_event, rt.audit([{**base, "event_id": event_id("act-done", *key), "timestamp": _now(),
                                                "action": "activity.completed", "result": "success",
                                                "latency_ms": latency, "attributes": attrs}]))]
        if step_id:
            tasks.append(_retrying(lambda: rt.agent.step_result(step_id, "succeeded", output=_json_value(result)),
                                   rt.settings.report_for))
        outcome = await asyncio.gather(*tasks, return_exceptions=True)
        for o in outcome:
            if isinstance(o, WardenHTTPError) and o.status == 409 and not o.retryable:
                # The step ended already (a report of an earlier attempt
                # that looked lost, or its deadline passed in Warden).
                log.warning("warden step %s: %s", step_id, o)
            elif isinstance(o, BaseException):
                raise ApplicationError(f"the activity ran but Warden could not record its result: {o}",
                                       type="WardenUnavailable") from o
        return result


def _final(e: BaseException, info: activity.Info) -> bool:
    if isinstance(e, ApplicationError) and e.non_retryable:
        return True
    policy = info.retry_policy
    if policy is not None:
        kind = e.type if isinstance(e, ApplicationError) and e.type else type(e).__name__
        if kind in (policy.non_retryable_error_types or []):
            return True
        if policy.maximum_attempts and info.attempt >= policy.maximum_attempts:
            return True
    return False


async def _after(first: Any, then: Any) -> Any:
    """Awaits `first` (quietly), then `then`: the start event lands in the
    ledger before the end event, while the step result goes in parallel."""
    await _quietly(first)
    return await then


async def _quietly(aw: Any) -> None:
    try:
        await aw
    except Exception as e:  # noqa: BLE001 - reporting must not hide the activity's own error
        log.warning("warden report failed: %s", e)
