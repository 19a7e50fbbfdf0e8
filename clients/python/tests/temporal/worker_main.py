"""A worker as its own process (the worker-restart test kills it):
configured by environment, prints `ready` once it polls."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from temporalio.client import Client  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

from warden.temporal import WardenPlugin, WardenSettings, WorkflowSettings  # noqa: E402
from wfapp import ACTIVITIES, WORKFLOWS  # noqa: E402


async def main() -> None:
    env = os.environ
    client = await Client.connect(env["TEMPORAL_ADDRESS"])
    settings = WardenSettings(
        url=env["WARDEN_URL"], orchestrator_token=env["WARDEN_ORCH_TOKEN"], agent_token=env["WARDEN_AGENT_TOKEN"],
        agent_id=env.get("WARDEN_AGENT_ID") or None,
        workflow=WorkflowSettings(poll_first=timedelta(milliseconds=500), poll_max=timedelta(seconds=2)),
    )
    plugin = WardenPlugin(settings)
    worker = Worker(client, task_queue=env["TASK_QUEUE"], workflows=WORKFLOWS, activities=ACTIVITIES,
                    plugins=[plugin], graceful_shutdown_timeout=timedelta(seconds=0))
    async with worker:
        print("ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
