from __future__ import annotations

import faulthandler
import secrets
import sys
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import AsyncIterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import REPO, TemporalServer, WardenServer  # noqa: E402


@dataclass
class Peers:
    temporal: TemporalServer
    warden: WardenServer
    orchestrator: str
    agent: str
    alice: str
    bob: str

    def queue(self, name: str) -> str:
        return f"tq-{name}-{secrets.token_hex(3)}"


def provision(warden: WardenServer) -> dict[str, str]:
    warden.push_bundle(REPO / "policies" / "kernel", "kernel", "1")
    return {
        "orchestrator": warden.mint("temporal-orchestrator", ["orchestrator"], subject="svc:temporal-orchestrator"),
        "agent": warden.mint("temporal-worker", ["agent"], agent_ids=["tq-*", "claims-agent"],
                             subject="svc:temporal-worker"),
        "alice": warden.mint("alice", ["reviewer"], subject="alice@bank.example"),
        "bob": warden.mint("bob", ["reviewer"], subject="bob@bank.example"),
    }


@pytest.fixture(autouse=True)
def hang_guard():
    """A test stuck for 5 minutes ends the run loudly, with every thread's
    stack, instead of hanging it."""
    faulthandler.dump_traceback_later(300, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture(scope="session")
def temporal_server() -> TemporalServer:
    server = TemporalServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def peers(temporal_server: TemporalServer) -> Peers:
    warden = WardenServer()
    tokens = provision(warden)
    yield Peers(temporal_server, warden, **tokens)
    warden.close()


@pytest.fixture
def own_warden(temporal_server: TemporalServer) -> Peers:
    """A Warden of the test's own (it restarts it)."""
    warden = WardenServer()
    tokens = provision(warden)
    yield Peers(temporal_server, warden, **tokens)
    warden.close()


def settings_for(p: Peers, **more):
    from warden.temporal import WardenSettings, WorkflowSettings

    return WardenSettings(
        url=p.warden.url, orchestrator_token=p.orchestrator, agent_token=p.agent,
        workflow=WorkflowSettings(poll_first=timedelta(milliseconds=300), poll_max=timedelta(seconds=2)),
        **more,
    )


@asynccontextmanager
async def worker_for(p: Peers, task_queue: str, **more) -> AsyncIterator[object]:
    from temporalio.client import Client
    from temporalio.worker import Worker

    from warden.temporal import WardenPlugin
    from wfapp import ACTIVITIES, WORKFLOWS

    client = await Client.connect(p.temporal.address)
    plugin = WardenPlugin(settings_for(p, **more))
    worker = Worker(client, task_queue=task_queue, workflows=WORKFLOWS, activities=ACTIVITIES, plugins=[plugin])
    async with worker:
        yield client
