"""The worker plugin: installs the local activities and the interceptor,
lets ``warden`` through Temporal's sandbox, and keeps the agent stream
open while the worker runs."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Awaitable, Callable

import temporalio.worker
from temporalio.worker import Replayer, ReplayerConfig, Worker, WorkerConfig
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from ._worker import WardenInterceptor, WardenRuntime, WardenSettings

log = logging.getLogger("warden.temporal")


class WardenPlugin(temporalio.worker.Plugin):
    """``Worker(client, task_queue=…, workflows=…, activities=…,
    plugins=[WardenPlugin(WardenSettings(…))])``.

    Every workflow run of the worker becomes a Warden execution of the
    agent ``settings.agent_id`` (default: the task queue), every activity
    is decided by the tenant's kernel policy before it is scheduled, and
    the worker holds that agent's stream while it runs.
    """

    def __init__(self, settings: WardenSettings, *, stream_wait: float = 10.0) -> None:
        self.settings = settings
        self.stream_wait = stream_wait
        # One runtime per worker (the same plugin may serve several).
        self.runtimes: dict[str, WardenRuntime] = {}
        self.runtime: WardenRuntime | None = None

    def name(self) -> str:
        return "warden.temporal"

    def configure_worker(self, config: WorkerConfig) -> WorkerConfig:
        rt = WardenRuntime(self.settings, task_queue=config["task_queue"], client=config.get("client"))
        self.runtime = rt
        self.runtimes[config["task_queue"]] = rt
        config["activities"] = [*(config.get("activities") or []), *rt.activities()]
        config["interceptors"] = [*(config.get("interceptors") or []), WardenInterceptor(rt)]
        runner = config.get("workflow_runner")
        if runner is None or isinstance(runner, SandboxedWorkflowRunner):
            runner = runner or SandboxedWorkflowRunner()
            config["workflow_runner"] = dataclasses.replace(
                runner, restrictions=runner.restrictions.with_passthrough_modules("warden"))
        return config

    async def run_worker(self, worker: Worker, next: Callable[[Worker], Awaitable[None]]) -> None:
        rt = self.runtimes.get(worker.task_queue) or self.runtime
        assert rt is not None, "configure_worker was not called"
        async with hold_stream(rt, wait=self.stream_wait):
            await next(worker)

    def configure_replayer(self, config: ReplayerConfig) -> ReplayerConfig:
        # Replaying needs the same workflow interceptor (its local
        # activities' results come from the history).
        rt = WardenRuntime(self.settings, task_queue="replay")
        config["interceptors"] = [*(config.get("interceptors") or []), WardenInterceptor(rt)]
        runner = config.get("workflow_runner")
        if runner is None or isinstance(runner, SandboxedWorkflowRunner):
            runner = runner or SandboxedWorkflowRunner()
            config["workflow_runner"] = dataclasses.replace(
                runner, restrictions=runner.restrictions.with_passthrough_modules("warden"))
        return config

    def run_replayer(self, replayer: Replayer, histories: Any, next: Any) -> Any:
        return next(replayer, histories)


@asynccontextmanager
async def hold_stream(runtime: WardenRuntime, *, wait: float = 10.0) -> AsyncIterator[WardenRuntime]:
    """Holds the runtime's agent stream open for the block (waiting up to
    ``wait`` seconds for it to connect first)."""
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.keep_stream(stop), name="warden-agent-stream")
    try:
        try:
            await asyncio.wait_for(_connected(runtime), timeout=wait)
        except asyncio.TimeoutError:
            log.warning("warden agent stream of %s not connected after %.0fs; starting anyway",
                        runtime.agent_id, wait)
        yield runtime
    finally:
        stop.set()
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, Exception):  # noqa: BLE001
            pass
        await runtime.aclose()


async def _connected(runtime: WardenRuntime) -> None:
    await runtime.stream_connected.wait()
