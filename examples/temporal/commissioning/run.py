"""Runs the commissioning example: `python run.py worker` (keep it
running), `python run.py start PROJECT [--blocked]`, `python run.py fix
WORKFLOW_ID`, `python run.py approve WORKFLOW_ID` (as a reviewer).

Environment: TEMPORAL_ADDRESS (default 127.0.0.1:7233), WARDEN_URL
(default http://127.0.0.1:8181), WARDEN_ORCH_TOKEN, WARDEN_AGENT_TOKEN,
WARDEN_REVIEWER_TOKEN.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

from temporalio.client import Client
from temporalio.worker import Worker

from app import ACTIVITIES, CommissioningInput, CommissioningWorkflow
from warden.temporal import WardenPlugin, WardenSettings

TASK_QUEUE = "commissioning"


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        sys.exit(f"set {name}")
    return value


async def main(argv: list[str]) -> None:
    os.environ.setdefault("WARDEN_URL", "http://127.0.0.1:8181")
    client = await Client.connect(env("TEMPORAL_ADDRESS", "127.0.0.1:7233"))
    cmd = argv[0] if argv else "worker"
    if cmd == "worker":
        plugin = WardenPlugin(WardenSettings(
            url=env("WARDEN_URL"), orchestrator_token=env("WARDEN_ORCH_TOKEN"),
            agent_token=env("WARDEN_AGENT_TOKEN"), labels={"env": "prod", "team": "commissioning"}))
        worker = Worker(client, task_queue=TASK_QUEUE, workflows=[CommissioningWorkflow], activities=ACTIVITIES,
                        plugins=[plugin])
        print(f"worker on task queue {TASK_QUEUE}, Warden agent {TASK_QUEUE}", flush=True)
        await worker.run()
    elif cmd == "start":
        project = argv[1] if len(argv) > 1 else "bess-17402"
        blocked = "--blocked" in argv
        inp = CommissioningInput(project_id=project, punch_items_open=[{"id": 41}] if blocked else [])
        wid = f"commissioning-{project}-{uuid.uuid4().hex[:6]}"
        await client.start_workflow(CommissioningWorkflow.run, inp, id=wid, task_queue=TASK_QUEUE)
        print(wid)
    elif cmd == "fix":
        await client.get_workflow_handle(argv[1]).signal(CommissioningWorkflow.engineer_reviewed,
                                                         {"punch_items_open": []})
    elif cmd == "approve":
        import warden
        async with warden.AsyncClient(env("WARDEN_URL"), env("WARDEN_REVIEWER_TOKEN")) as w:
            memo = await (await client.get_workflow_handle(argv[1]).describe()).memo_value("warden")
            for item in await w.approvals():
                if item["execution_id"] in memo["executions"]:
                    step = item["step"]
                    await w.review(item["execution_id"], step["id"], "approve", "report checked", step["args_hash"])
                    print("approved", step["id"], step["tool"])
    elif cmd == "result":
        print(await client.get_workflow_handle(argv[1]).result())
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
    # Leave at once: the Temporal SDK's runtime threads may still call into
    # Python while the interpreter finalizes, which can abort a short command.
    sys.stdout.flush()
    os._exit(0)
