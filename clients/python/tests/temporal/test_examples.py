"""The examples under examples/temporal/ run as their READMEs say:
their run.py as a worker process, then start, approve, result."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Peers
from harness import HERE, REPO, TemporalServer, WardenServer, wait_for

EXAMPLES = REPO / "examples" / "temporal"


def run_py(example: Path, env: dict, *args: str) -> str:
    out = subprocess.run([sys.executable, "run.py", *args], cwd=example, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, f"run.py {' '.join(args)}: {out.stdout}\n{out.stderr}"
    return out.stdout.strip()


def example_env(temporal: TemporalServer, warden: WardenServer, orch: str, agent: str) -> dict:
    return {**os.environ, "TEMPORAL_ADDRESS": temporal.address, "WARDEN_URL": warden.url,
            "WARDEN_ORCH_TOKEN": orch, "WARDEN_AGENT_TOKEN": agent,
            "PYTHONPATH": os.pathsep.join([str(HERE.parents[1] / "src"), os.environ.get("PYTHONPATH", "")])}


class Worker:
    def __init__(self, example: Path, env: dict) -> None:
        self.proc = subprocess.Popen([sys.executable, "run.py", "worker"], cwd=example, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        line = self.proc.stdout.readline()
        assert line.startswith("worker on"), line + (self.proc.stdout.read() if self.proc.poll() is not None else "")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def waiting_for(warden: WardenServer, token: str, tool: str) -> list:
    return [w for w in warden.ok("GET", "/v0/approvals", token=token)["waiting"] if w["step"]["tool"] == tool]


def test_agent_workflow_example(peers: Peers):
    example = EXAMPLES / "agent_workflow"
    env = example_env(peers.temporal, peers.warden, peers.orchestrator, peers.agent)
    worker = Worker(example, env)
    try:
        wf = run_py(example, env, "start", "150")
        assert run_py(example, env, "result", wf) == "Refunded 150 EUR for claim C-1."
        wf = run_py(example, env, "start", "1500")
        wait_for("the refund's review", lambda: waiting_for(peers.warden, peers.alice, "payments.refund"))
        assert "approved" in run_py(example, {**env, "WARDEN_REVIEWER_TOKEN": peers.alice}, "approve", wf)
        assert "approved" in run_py(example, {**env, "WARDEN_REVIEWER_TOKEN": peers.bob}, "approve", wf)
        assert run_py(example, env, "result", wf) == "Refunded 1500 EUR for claim C-1."
        # Continued as new: two runs, each its own Warden execution.
        events = [e["event"] for e in peers.warden.audit_events() if e["event"].get("workflow_id") == wf]
        actions = [e["action"] for e in events if e["action"].startswith("workflow.")]
        assert actions.count("workflow.continued_as_new") >= 1 and actions[-1] == "workflow.completed", actions
    finally:
        worker.stop()


@pytest.fixture
def commissioning_warden(temporal_server: TemporalServer, tmp_path: Path):
    warden = WardenServer()
    try:
        kernel = tmp_path / "kernel"
        kernel.mkdir()
        shutil.copy(REPO / "policies" / "kernel" / "tool.rego", kernel / "tool.rego")
        shutil.copy(REPO / "policies" / "kernel" / ".manifest", kernel / ".manifest")
        shutil.copy(EXAMPLES / "commissioning" / "kernel-rules.json", kernel / "data.json")
        warden.push_bundle(kernel, "kernel", "commissioning-1")
        warden.push_bundle(REPO / "policies" / "commissioning", "commissioning", "2026.11.1")
        tokens = {
            "orch": warden.mint("temporal-orchestrator", ["orchestrator"], subject="svc:orchestrator"),
            "agent": warden.mint("commissioning", ["agent"], agent_ids=["commissioning"]),
            "lead": warden.mint("lead", ["reviewer"], subject="lead@agento.example"),
        }
        yield warden, tokens
    finally:
        warden.close()


def test_commissioning_example(temporal_server: TemporalServer, commissioning_warden):
    warden, tokens = commissioning_warden
    example = EXAMPLES / "commissioning"
    env = example_env(temporal_server, warden, tokens["orch"], tokens["agent"])
    worker = Worker(example, env)
    try:
        wf = run_py(example, env, "start", "bess-17402", "--blocked")

        def routing_refused():
            feed = [e["event"] for e in warden.audit_events()]
            return [e for e in feed if e["action"] == "policy.decision" and e.get("workflow_id") == wf
                    and e["result"] == "denied"]

        refused = wait_for("the routing policy's refusal", routing_refused)
        assert "punch items still open" in json.dumps(refused[0])
        run_py(example, env, "fix", wf)
        wait_for("the report's review", lambda: waiting_for(warden, tokens["lead"], "reports.route"))
        assert "reports.route" in run_py(example, {**env, "WARDEN_REVIEWER_TOKEN": tokens["lead"]}, "approve", wf)
        result = run_py(example, env, "result", wf)
        assert "'routed': True" in result and result.count("dec_") >= 2, result
    finally:
        worker.stop()
