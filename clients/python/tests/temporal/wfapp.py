"""The workflows and activities the Temporal tests run (imported by the
in-process workers and by worker_main.py, the worker run as a process)."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity, workflow
from temporalio.common import RetryPolicy


@activity.defn(name="kb.search")
async def kb_search(query: dict) -> dict:
    return {"hits": [f"doc about {query.get('q')}"], "attempt": activity.info().attempt}


@activity.defn(name="payments.refund")
async def payments_refund(req: dict) -> dict:
    return {"refund": f"R-{req.get('amount')}", "attempt": activity.info().attempt}


@activity.defn(name="shell.exec")
async def shell_exec(req: dict) -> dict:
    raise AssertionError("shell.exec must never run: policy denies it")


@activity.defn(name="kb.read")
async def kb_read(req: dict) -> dict:
    """Slow on its first attempt (so a test can stop the worker while it
    runs); writes a marker per attempt in `req["markers"]`."""
    info = activity.info()
    markers = Path(req["markers"])
    markers.mkdir(parents=True, exist_ok=True)
    (markers / f"attempt-{info.attempt}-{os.getpid()}").write_text(info.activity_id)
    if info.attempt == 1:
        for _ in range(int(req.get("seconds", 60) * 10)):
            activity.heartbeat()
            await asyncio.sleep(0.1)
    return {"read": req.get("doc"), "attempt": info.attempt, "pid": os.getpid()}


@activity.defn(name="kb.flaky_get")
async def kb_flaky_get(req: dict) -> dict:
    info = activity.info()
    if info.attempt < int(req.get("fail_times", 1)) + 1:
        raise RuntimeError(f"transient failure on attempt {info.attempt}")
    return {"ok": True, "attempt": info.attempt}


ACTIVITIES = [kb_search, payments_refund, shell_exec, kb_read, kb_flaky_get]


@workflow.defn(name="ToolsWorkflow")
class ToolsWorkflow:
    """Runs each call in order: [{"activity": name, "arg": {...}}]."""

    @workflow.run
    async def run(self, calls: list[dict]) -> list[Any]:
        out = []
        for c in calls:
            out.append(await workflow.execute_activity(
                c["activity"], c.get("arg", {}),
                start_to_close_timeout=timedelta(seconds=c.get("timeout", 30)),
                heartbeat_timeout=timedelta(seconds=c["heartbeat"]) if c.get("heartbeat") else None,
                retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=5),
            ))
        return out


@workflow.defn(name="LoopWorkflow")
class LoopWorkflow:
    """Calls kb.search `rounds` times, continuing as new every `per_run`."""

    @workflow.run
    async def run(self, state: dict) -> dict:
        done = state.get("done", 0)
        while done < state["rounds"]:
            if done > 0 and done % state["per_run"] == 0 and not state.get("just_continued"):
                workflow.continue_as_new({**state, "done": done, "just_continued": True})
            state["just_continued"] = False
            await workflow.execute_activity("kb.search", {"q": f"round {done}"},
                                            start_to_close_timeout=timedelta(seconds=30))
            done += 1
        return {"done": done}


WORKFLOWS = [ToolsWorkflow, LoopWorkflow]
