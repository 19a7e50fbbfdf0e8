"""The Temporal integration against a real Temporal dev server and a real
Warden (see harness.py): allow, deny, two-reviewer approval, rejection,
a Warden restart during a review, a worker killed mid-activity,
continue-as-new, the evidence verified offline, and Temporal's ids in
Warden's audit events."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from conftest import Peers, worker_for
from harness import HERE, wait_for

pytestmark = pytest.mark.asyncio

from warden.temporal import DECISIONS_QUERY, DENIED, MEMO_KEY, REJECTED  # noqa: E402


def wid(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


async def apoll(what: str, probe, timeout: float = 60.0, every: float = 0.1):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = await probe() if asyncio.iscoroutinefunction(probe) else probe()
            if last:
                return last
        except Exception as e:  # noqa: BLE001
            last = e
        await asyncio.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {last!r}")


async def scheduled_activities(client: Client, workflow_id: str, run_id: str | None = None) -> list[dict]:
    """Temporal's own record of the activities it scheduled."""
    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    out = []
    for e in history.events:
        if e.HasField("activity_task_scheduled_event_attributes"):
            a = e.activity_task_scheduled_event_attributes
            out.append({"activity_id": a.activity_id, "activity_type": a.activity_type.name,
                        "headers": set(a.header.fields.keys())})
    return out


def execution_of(p: Peers, execution_id: str) -> dict:
    return p.warden.ok("GET", f"/v0/executions/{execution_id}")


def decision_index_in_history(p: Peers, execution_id: str, decision_id: str) -> int:
    for h in p.warden.ok("GET", f"/v0/executions/{execution_id}/history")["entries"]:
        if h["kind"] == "decision" and decision_id in json.dumps(h["payload"]):
            return h["ledger_index"]
    raise AssertionError(f"decision {decision_id} not in the history of {execution_id}")


def waiting_review(p: Peers, execution_id: str) -> dict | None:
    doc = p.warden.ok("GET", "/v0/approvals", token=p.alice)
    for w in doc["waiting"]:
        if w["execution_id"] == execution_id:
            return w
    return None


def review(p: Peers, token: str, pending: dict, decision: str, reason: str) -> dict:
    return p.warden.ok("POST", f"/v0/executions/{pending['execution_id']}/approvals", {
        "step_id": pending["step"]["id"], "decision": decision, "reason": reason,
        "args_hash": pending["step"]["args_hash"]}, token=token)


async def memo_of(client: Client, workflow_id: str) -> dict:
    desc = await client.get_workflow_handle(workflow_id).describe()
    return await desc.memo_value(MEMO_KEY)


async def execution_id_of(client: Client, workflow_id: str) -> str:
    async def probe():
        try:
            return (await memo_of(client, workflow_id)).get("execution_id")
        except KeyError:
            return None
    return await apoll("the workflow's Warden execution in its memo", probe, timeout=30)


# --------------------------------------------------------------------------


async def test_allow_runs_the_activity_and_records_everything(peers: Peers):
    tq = peers.queue("allow")
    async with worker_for(peers, tq) as client:
        w = wid("allow")
        result = await client.execute_workflow(
            "ToolsWorkflow", [{"activity": "kb.search", "arg": {"q": "refund policy"}}], id=w, task_queue=tq)
        assert result[0]["hits"] == ["doc about refund policy"]

        memo = await memo_of(client, w)
        (decision,) = memo["decisions"]
        assert decision["outcome"] == "allow" and decision["decision_id"].startswith("dec_")
        assert isinstance(decision["ledger_index"], int)
        queried = await client.get_workflow_handle(w).query(DECISIONS_QUERY)
        full = queried["decisions"][0]
        assert full["receipt"]["index"] == decision["ledger_index"], full
        assert full["receipt"]["entry_hash"] and full["receipt"]["checkpoint"]
        assert decision["ledger_index"] == decision_index_in_history(peers, memo["execution_id"], decision["decision_id"])

        # Warden: one execution, completed, its one step succeeded with the output.
        ex = execution_of(peers, memo["execution_id"])
        assert ex["state"] == "completed", ex
        assert ex["labels"]["temporal.workflow_id"] == w
        (step,) = ex["steps"]
        assert step["tool"] == "kb.search" and step["state"] == "succeeded"
        assert step["result"]["hits"] == ["doc about refund policy"]
        assert step["decision_id"] == decision["decision_id"]
        assert step["arguments"]["q"] == "refund policy"
        assert step["arguments"]["temporal"]["workflow_id"] == w

        # Temporal's ids in Warden's audit events, and Warden's in Temporal's headers.
        (sched,) = await scheduled_activities(client, w)
        assert sched["activity_type"] == "kb.search" and "warden" in sched["headers"]
        assert decision["activity_id"] == sched["activity_id"]
        events = [e["event"] for e in peers.warden.audit_events() if e["event"].get("workflow_id") == w]
        actions = {e["action"]: e for e in events}
        assert {"workflow.started", "activity.started", "activity.completed", "workflow.completed"} <= set(actions)
        for a in ("activity.started", "activity.completed"):
            assert actions[a]["activity_id"] == sched["activity_id"], actions[a]
            assert actions[a]["attributes"]["warden.step_id"] == step["id"]
            assert actions[a]["attributes"]["warden.decision_id"] == decision["decision_id"]
        run_id = (await client.get_workflow_handle(w).describe()).run_id
        assert actions["workflow.started"]["attributes"]["temporal.run_id"] == run_id


async def test_deny_fails_the_workflow_without_running_the_activity(peers: Peers):
    tq = peers.queue("deny")
    async with worker_for(peers, tq) as client:
        w = wid("deny")
        with pytest.raises(WorkflowFailureError) as info:
            await client.execute_workflow(
                "ToolsWorkflow", [{"activity": "shell.exec", "arg": {"cmd": "rm -rf /"}}], id=w, task_queue=tq)
        err = info.value.cause
        assert isinstance(err, ApplicationError), err
        assert err.type == DENIED and err.non_retryable
        detail = err.details[0]
        assert detail["decision_id"].startswith("dec_")
        assert any("shell and process execution are never allowed" in r for r in detail["reasons"]), detail
        assert isinstance(detail["ledger_index"], int)
        # The denial's receipt proves its decision's entry, offline.
        from warden import verify as wv
        verifiers = [k["verifier"] for k in peers.warden.ok("GET", "/v1/ledger/keys")]
        assert detail["receipt"]["index"] == detail["ledger_index"]
        wv.verify_receipt(detail["receipt"], verifiers)
        # Never scheduled in Temporal.
        assert await scheduled_activities(client, w) == []
        # The denial is Warden's recorded decision, and it replays identically.
        replay = peers.warden.ok("POST", f"/v1/decisions/{detail['decision_id']}/replay")
        assert replay.get("match") is True, replay
        ex = execution_of(peers, detail["execution_id"])
        assert ex["state"] == "failed" and ex["steps"] == [], ex
        events = [e["event"] for e in peers.warden.audit_events() if e["event"].get("workflow_id") == w]
        assert "workflow.failed" in {e["action"] for e in events}


async def test_approval_by_two_reviewers_then_the_activity_runs(peers: Peers):
    tq = peers.queue("approve")
    async with worker_for(peers, tq) as client:
        w = wid("approve")
        handle = await client.start_workflow(
            "ToolsWorkflow", [{"activity": "payments.refund",
                               "arg": {"amount": 1500, "currency": "EUR", "customer": {"id": "c1"}}}],
            id=w, task_queue=tq)
        exe = await execution_id_of(client, w)
        pending = await apoll("the review in /v0/approvals", lambda: waiting_review(peers, exe))
        assert pending["step"]["review"]["reviewers_required"] == 2
        assert any("two reviewers" in r for r in pending["step"]["reasons"])
        review(peers, peers.alice, pending, "approve", "claim checked")
        # One approval is not enough: still waiting, nothing scheduled.
        await asyncio.sleep(0)  # no wait needed for a negative check of Warden's state:
        assert waiting_review(peers, exe)["step"]["review"]["approvals"] == 1
        assert await scheduled_activities(client, w) == []
        review(peers, peers.bob, pending, "approve", "amount matches the invoice")
        result = await asyncio.wait_for(handle.result(), 60)
        assert result[0]["refund"] == "R-1500"
        ex = execution_of(peers, exe)
        assert ex["state"] == "completed"
        (step,) = ex["steps"]
        assert step["state"] == "succeeded" and step["review"]["state"] == "approved"
        assert step["review"]["approvals"] == 2
        (decision,) = (await handle.query(DECISIONS_QUERY))["decisions"]
        assert decision["outcome"] == "require_approval"
        assert decision["receipt"]["index"] == decision_index_in_history(peers, exe, decision["decision_id"])


async def test_rejection_fails_with_the_reviewers_reasons(peers: Peers):
    tq = peers.queue("reject")
    async with worker_for(peers, tq) as client:
        w = wid("reject")
        handle = await client.start_workflow(
            "ToolsWorkflow", [{"activity": "payments.refund",
                               "arg": {"amount": 500, "currency": "EUR", "customer": {"id": "c2"}}}],
            id=w, task_queue=tq)
        exe = await execution_id_of(client, w)
        pending = await apoll("the review", lambda: waiting_review(peers, exe))
        review(peers, peers.alice, pending, "reject", "customer already refunded")
        with pytest.raises(WorkflowFailureError) as info:
            await asyncio.wait_for(handle.result(), 60)
        err = info.value.cause
        assert isinstance(err, ApplicationError) and err.type == REJECTED and err.non_retryable
        assert "customer already refunded" in str(err)
        assert err.details[0]["reviewers"][0]["reason"] == "customer already refunded"
        assert await scheduled_activities(client, w) == []


async def test_warden_restart_while_a_review_waits(own_warden: Peers):
    p = own_warden
    tq = p.queue("restart")
    async with worker_for(p, tq) as client:
        w = wid("wrestart")
        handle = await client.start_workflow(
            "ToolsWorkflow", [{"activity": "payments.refund",
                               "arg": {"amount": 2500, "currency": "EUR", "customer": {"id": "c3"}}}],
            id=w, task_queue=tq)
        exe = await execution_id_of(client, w)
        pending = await apoll("the review", lambda: waiting_review(p, exe))
        p.warden.stop()
        # The workflow keeps waiting (its review polls fail and retry).
        await asyncio.sleep(1.5)
        assert (await handle.describe()).status.name == "RUNNING"
        p.warden.start()
        # The worker's stream comes back and takes the execution again.
        pending = await apoll("the review after the restart", lambda: waiting_review(p, exe))
        review(p, p.alice, pending, "approve", "ok after restart")
        review(p, p.bob, pending, "approve", "ok too")
        result = await asyncio.wait_for(handle.result(), 90)
        assert result[0]["refund"] == "R-2500"
        ex = execution_of(p, exe)
        history = [(h["kind"], h["payload"].get("conn") or h["payload"].get("reason") or h["payload"].get("to"))
                   for h in p.warden.ok("GET", f"/v0/executions/{exe}/history")["entries"]]
        assert ex["state"] == "completed", "\n".join(map(str, history))
        assert ex["steps"][0]["state"] == "succeeded"


def start_worker_process(p: Peers, tq: str) -> subprocess.Popen:
    env = {**os.environ, "TEMPORAL_ADDRESS": p.temporal.address, "TASK_QUEUE": tq, "WARDEN_URL": p.warden.url,
           "WARDEN_ORCH_TOKEN": p.orchestrator, "WARDEN_AGENT_TOKEN": p.agent,
           "PYTHONPATH": os.pathsep.join([str(HERE.parents[1] / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, str(HERE / "worker_main.py")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    line = proc.stdout.readline()
    assert line.strip() == "ready", f"worker did not start: {line}{proc.stdout.read() if proc.poll() is not None else ''}"
    return proc


async def test_worker_killed_mid_activity_retries_on_a_new_worker(peers: Peers, tmp_path: Path):
    tq = peers.queue("wkill")
    markers = tmp_path / "markers"
    first = start_worker_process(peers, tq)
    second = None
    try:
        client = await Client.connect(peers.temporal.address)
        w = wid("wkill")
        handle = await client.start_workflow(
            "ToolsWorkflow", [{"activity": "kb.read", "heartbeat": 2, "timeout": 120,
                               "arg": {"doc": "spec-7", "markers": str(markers), "seconds": 60}}],
            id=w, task_queue=tq)
        wait_for("the first attempt to run", lambda: list(markers.glob("attempt-1-*")), timeout=60)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        second = start_worker_process(peers, tq)
        result = await asyncio.wait_for(handle.result(), 90)
        assert result[0]["attempt"] == 2 and result[0]["pid"] == second.pid
        exe = (await memo_of(client, w))["execution_id"]
        ex = execution_of(peers, exe)
        # Consistent: completed, one step (both attempts), succeeded once.
        assert ex["state"] == "completed", ex
        (step,) = ex["steps"]
        assert step["state"] == "succeeded" and step["result"]["attempt"] == 2
        entries = peers.warden.ok("GET", f"/v0/executions/{exe}/history")["entries"]
        kinds = [h["kind"] for h in entries]
        assert kinds.count("kernel.step.succeeded") == 1
        assert "kernel.execution.released" in kinds  # the dead worker's stream gave it back
        assert all(h.get("ledger_index") is not None for h in entries)
        assert all(s["state"] in ("succeeded", "failed", "cancelled", "timed_out") for s in ex["steps"])
        events = [e["event"] for e in peers.warden.audit_events() if e["event"].get("workflow_id") == w]
        acts = [(e["action"], e["attributes"].get("temporal.attempt")) for e in events if e["action"].startswith("activity.")]
        assert ("activity.started", 1) in acts and ("activity.retried", 2) in acts and ("activity.completed", 2) in acts
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


async def test_retries_and_continue_as_new(peers: Peers):
    tq = peers.queue("can")
    async with worker_for(peers, tq) as client:
        w = wid("flaky")
        result = await client.execute_workflow(
            "ToolsWorkflow", [{"activity": "kb.flaky_get", "arg": {"fail_times": 2}}], id=w, task_queue=tq)
        assert result[0]["attempt"] == 3
        events = [e["event"] for e in peers.warden.audit_events() if e["event"].get("workflow_id") == w]
        assert [e["action"] for e in events if e["action"] == "activity.attempt_failed"] == ["activity.attempt_failed"] * 2

        w = wid("loop")
        result = await client.execute_workflow("LoopWorkflow", {"rounds": 5, "per_run": 2}, id=w, task_queue=tq)
        assert result == {"done": 5}
        executions = [e["event"] for e in peers.warden.audit_events()
                      if e["event"].get("workflow_id") == w and e["event"]["action"].startswith("workflow.")]
        actions = [e["action"] for e in executions]
        assert actions.count("workflow.continued_as_new") == 2 and actions.count("workflow.completed") == 1
        run_ids = {e["attributes"]["temporal.run_id"] for e in executions}
        assert len(run_ids) == 3
        memo = await memo_of(client, w)
        assert execution_of(peers, memo["execution_id"])["state"] == "completed"


async def test_evidence_verifies_offline(peers: Peers, tmp_path: Path):
    # Runs after the others in this file: their decisions are in the log.
    tq = peers.queue("evidence")
    async with worker_for(peers, tq) as client:
        w = wid("evidence")
        await client.execute_workflow("ToolsWorkflow", [{"activity": "kb.search", "arg": {"q": "x"}}],
                                      id=w, task_queue=tq)
        decision = (await client.get_workflow_handle(w).query(DECISIONS_QUERY))["decisions"][0]
    export = tmp_path / "evidence.ndjson"
    peers.warden.cli("export", "--out", str(export))
    verifiers = [k["verifier"] for k in peers.warden.ok("GET", "/v1/ledger/keys")]
    out = peers.warden.cli("verify", str(export), *[a for k in verifiers for a in ("--key", k)])
    assert out.returncode == 0

    from warden import verify as wv

    report = wv.verify_export(str(export), verifiers)
    lines = [x for x in export.read_bytes().splitlines(keepends=True) if x.strip()]
    entries = {}
    for raw in lines:
        obj = json.loads(raw)
        if isinstance(obj, dict) and isinstance(obj.get("index"), int) and "kind" in obj:
            entries[obj["index"]] = (obj, raw)
    assert report.entries == len(entries) > 0
    # The receipt kept in Temporal's history proves the decision's entry,
    # and that entry is the decision the activity was allowed by.
    entry, raw = entries[decision["ledger_index"]]
    assert decision["decision_id"] in json.dumps(entry)
    receipt = wv.verify_receipt(decision["receipt"], verifiers, entry=raw.rstrip(b"\n"))
    assert receipt.index == decision["ledger_index"] and receipt.entry_checked
    # The way back: the entry's input names the Temporal workflow and activity.
    text = json.dumps(entry)
    assert w in text and decision["activity_id"] in text


async def test_histories_replay_deterministically(peers: Peers):
    """The workflow side does no I/O: a run with a check, a review wait
    (timers, local activities, the review signal) and continue-as-new
    replays from its history alone."""
    from temporalio.worker import Replayer

    from conftest import settings_for
    from warden.temporal import WardenPlugin
    from wfapp import WORKFLOWS

    tq = peers.queue("replay")
    async with worker_for(peers, tq) as client:
        w = wid("replay")
        handle = await client.start_workflow(
            "ToolsWorkflow", [{"activity": "kb.search", "arg": {"q": "a"}},
                              {"activity": "payments.refund",
                               "arg": {"amount": 700, "currency": "EUR", "customer": {"id": "c9"}}}],
            id=w, task_queue=tq)
        exe = await execution_id_of(client, w)
        pending = await apoll("the review", lambda: waiting_review(peers, exe))
        review(peers, peers.alice, pending, "approve", "fine")
        await asyncio.wait_for(handle.result(), 60)
        loop = wid("replay-loop")
        await client.execute_workflow("LoopWorkflow", {"rounds": 3, "per_run": 2}, id=loop, task_queue=tq)
        histories = [await handle.fetch_history(), await client.get_workflow_handle(loop).fetch_history()]
    replayer = Replayer(workflows=WORKFLOWS, plugins=[WardenPlugin(settings_for(peers))])
    for h in histories:
        result = await replayer.replay_workflow(h, raise_on_replay_failure=True)
        assert result.replay_failure is None


async def test_cancelling_a_waiting_workflow_cancels_its_execution(peers: Peers):
    tq = peers.queue("cancel")
    async with worker_for(peers, tq) as client:
        w = wid("cancel")
        handle = await client.start_workflow(
            "ToolsWorkflow", [{"activity": "payments.refund",
                               "arg": {"amount": 5000, "currency": "EUR", "customer": {"id": "c5"}}}],
            id=w, task_queue=tq)
        exe = await execution_id_of(client, w)
        await apoll("the review", lambda: waiting_review(peers, exe))
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await asyncio.wait_for(handle.result(), 60)
        ex = await apoll("the execution cancelled", lambda: (e := execution_of(peers, exe))["state"] == "cancelled" and e)
        assert ex["steps"][0]["state"] == "cancelled"
        assert waiting_review(peers, exe) is None
        events = [e["event"]["action"] for e in peers.warden.audit_events() if e["event"].get("workflow_id") == w]
        assert "workflow.cancelled" in events


@pytest.fixture
def short_reviews(temporal_server, tmp_path: Path) -> Peers:
    """A Warden whose kernel rules expire reviews after 2 s: payments fail
    on expiry, email goes on (the rule's `on_expiry`)."""
    import shutil

    from conftest import REPO
    from harness import WardenServer

    warden = WardenServer()
    try:
        kernel = tmp_path / "kernel"
        kernel.mkdir()
        shutil.copy(REPO / "policies" / "kernel" / "tool.rego", kernel / "tool.rego")
        shutil.copy(REPO / "policies" / "kernel" / ".manifest", kernel / ".manifest")
        (kernel / "data.json").write_text(json.dumps({"warden": {"kernel": {"rules": [
            {"id": "refund-review", "tools": ["payments.refund"], "effect": "require_approval",
             "reason": "refunds need a reviewer", "approval": {"timeout_seconds": 2, "on_expiry": "fail"}},
            {"id": "search", "tools": ["kb.search"], "effect": "require_approval", "reason": "searches are reviewed",
             "approval": {"timeout_seconds": 2, "on_expiry": "continue"}},
        ]}}}))
        warden.push_bundle(kernel, "kernel", "short-1")
        yield Peers(temporal_server, warden,
                    orchestrator=warden.mint("orch", ["orchestrator"], subject="svc:orch"),
                    agent=warden.mint("worker", ["agent"], agent_ids=["tq-*"], subject="svc:worker"),
                    alice=warden.mint("alice", ["reviewer"], subject="alice@bank.example"),
                    bob=warden.mint("bob", ["reviewer"], subject="bob@bank.example"))
    finally:
        warden.close()


async def test_reviews_expire_on_wardens_clock(short_reviews: Peers):
    from warden.temporal import EXPIRED

    p = short_reviews
    tq = p.queue("expiry")
    async with worker_for(p, tq) as client:
        # on_expiry "fail": the workflow fails, non-retryable, nothing scheduled.
        w = wid("expire-fail")
        with pytest.raises(WorkflowFailureError) as info:
            await asyncio.wait_for(client.execute_workflow(
                "ToolsWorkflow", [{"activity": "payments.refund", "arg": {"amount": 10}}], id=w, task_queue=tq), 60)
        err = info.value.cause
        assert isinstance(err, ApplicationError) and err.type == EXPIRED and err.non_retryable, err
        assert await scheduled_activities(client, w) == []
        # on_expiry "continue": a call nobody approved never runs either;
        # the Warden execution goes on (a workflow may catch the error and
        # do something else), where "fail" ends it.
        w = wid("expire-continue")
        with pytest.raises(WorkflowFailureError) as info:
            await asyncio.wait_for(client.execute_workflow(
                "ToolsWorkflow", [{"activity": "kb.search", "arg": {"q": "late"}}], id=w, task_queue=tq), 60)
        err = info.value.cause
        assert isinstance(err, ApplicationError) and err.type == EXPIRED and err.non_retryable, err
        assert await scheduled_activities(client, w) == []
        actions = [e["event"]["action"] for e in p.warden.audit_events()
                   if e["event"].get("attributes", {}).get("temporal.workflow_id") == w
                   or e["event"].get("workflow_id") == w]
        assert "activity.started" not in actions, actions
