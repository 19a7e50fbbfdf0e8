"""Runs the agent example: `python run.py worker` (keep it running),
`python run.py start [AMOUNT]`, `python run.py approve WORKFLOW_ID`
(once per reviewer token), `python run.py result WORKFLOW_ID`.

Environment: TEMPORAL_ADDRESS (default 127.0.0.1:7233), WARDEN_URL
(default http://127.0.0.1:8181), WARDEN_ORCH_TOKEN, WARDEN_AGENT_TOKEN
(bound to the agent id `claims-agent`), WARDEN_REVIEWER_TOKEN.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

from temporalio.client import Client
from temporalio.worker import Worker

from app import ACTIVITIES, AgentInput, AgentState, PlatformAgentWorkflow
from warden.temporal import WardenPlugin, WardenSettings, WorkflowSettings

TASK_QUEUE = "claims-agent"


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        sys.exit(f"set {name}")
    return value


async def main(argv: list[str]) -> None:
    client = await Client.connect(env("TEMPORAL_ADDRESS", "127.0.0.1:7233"))
    url = env("WARDEN_URL", "http://127.0.0.1:8181")
    cmd = argv[0] if argv else "worker"
    if cmd == "worker":
        plugin = WardenPlugin(WardenSettings(
            url=url, orchestrator_token=env("WARDEN_ORCH_TOKEN"), agent_token=env("WARDEN_AGENT_TOKEN"),
            agent_id="claims-agent", labels={"env": "prod", "team": "claims"},
            # The planner calls the model only; every tool call is decided.
            workflow=WorkflowSettings(activities=lambda name: name != "llm.plan")))
        worker = Worker(client, task_queue=TASK_QUEUE, workflows=[PlatformAgentWorkflow], activities=ACTIVITIES,
                        plugins=[plugin])
        print(f"worker on task queue {TASK_QUEUE}", flush=True)
        await worker.run()
    elif cmd == "start":
        amount = int(argv[1]) if len(argv) > 1 else 150
        wid = f"agent-{uuid.uuid4().hex[:8]}"
        await client.start_workflow(PlatformAgentWorkflow.run, AgentState(AgentInput(
            task="Handle claim C-1: refund the customer if the policy allows.", refund_amount=amount)),
            id=wid, task_queue=TASK_QUEUE)
        print(wid)
    elif cmd == "approve":
        import warden
        memo = await (await client.get_workflow_handle(argv[1]).describe()).memo_value("warden")
        async with warden.AsyncClient(url, env("WARDEN_REVIEWER_TOKEN")) as w:
            for item in await w.approvals():
                if item["execution_id"] == memo["execution_id"]:
                    step = item["step"]
                    await w.review(item["execution_id"], step["id"], "approve", "claim checked", step["args_hash"])
                    print("approved", step["id"], step["tool"], step["arguments"].get("amount"))
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
