"""Against a real Warden binary (see conftest.py): decisions on a pushed
bundle, OPA's data API, audit events, errors, the kernel with two
reviewers over the agent stream, and the ledger export verified by this
package and by `warden verify`, both refusing the same tampered byte."""

from __future__ import annotations

import asyncio
import json
import queue
import re
import secrets
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from ledgerkit import REPO_ROOT
from wardenproc import WardenServer

import warden
from warden import Event, verify

pytestmark = pytest.mark.integration

DEADLINE = 30.0

DENY_INPUT = {
    "procore": {"punch_items_open_bess": [{"id": 41}]},
    "protection_settings_schedule": {"trip_voltage": {"expected": 480, "tolerance": 5}},
    "test_results": [{"parameter": "trip_voltage", "value": 470}],
}
ALLOW_INPUT = {
    "procore": {"punch_items_open_bess": []},
    "protection_settings_schedule": {"trip_voltage": {"expected": 480, "tolerance": 5}},
    "test_results": [{"parameter": "trip_voltage", "value": 482}],
}


@pytest.fixture(scope="module")
def bundles(warden_server: WardenServer) -> dict[str, Any]:
    """The commissioning and kernel bundles, built here and pushed."""
    with warden.Client(warden_server.url, warden_server.token) as admin:
        out = {}
        for name in ("commissioning", "kernel"):
            data = warden.build_bundle_dir(REPO_ROOT / "policies" / name, revision="1")
            out[name] = admin.push_bundle(data, name, activate=True)
            assert out[name]["tests_passed"] is True, out[name]["tests"]
        return out


class StreamReader:
    """Reads a stream on a thread so the test can wait with a deadline."""

    def __init__(self, stream: warden.EventStream) -> None:
        self.stream = stream
        self.events: queue.Queue[Event | BaseException] = queue.Queue()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for e in self.stream:
                self.events.put(e)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            self.events.put(exc)

    def next(self, event_type: str, timeout: float = DEADLINE) -> Event:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {event_type} event within {timeout} s")
            try:
                item = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if isinstance(item, BaseException):
                raise item
            if item.event == event_type:
                return item

    def close(self) -> None:
        self.stream.close()


def mint(admin: warden.Client, url: str, name: str, roles: list[str], **kw: Any) -> warden.Client:
    tok = admin.create_token(name, roles, **kw)
    assert tok["token"].startswith("wdn_")
    client = warden.Client(url, tok["token"])
    # The token reads back as minted.
    me = client.whoami()
    assert (me["token_id"], me["name"], sorted(me["roles"])) == (tok["id"], name, sorted(roles)), me
    return client


# ---- decisions -------------------------------------------------------------------


def test_decide_allow_and_deny(admin: warden.Client, bundles: dict[str, Any]) -> None:
    deny = admin.decide("agento/commissioning/routing", DENY_INPUT, context={"workflow_id": "wf-17402"})
    assert deny.allow is False
    assert deny.reasons == ["punch items still open", "test result outside tolerance"]
    assert deny.bundle["name"] == "commissioning" and deny.bundle["revision"] == "1"
    assert deny.bundle["digest"] == bundles["commissioning"]["digest"]
    assert deny.context == {"workflow_id": "wf-17402"}
    allow = admin.decide("agento/commissioning/routing/allow", ALLOW_INPUT)
    assert allow.allow is True and allow.result is True and allow.reasons == []
    keys = admin.ledger_keys()
    for d in (deny, allow):
        report = verify.verify_receipt(d.raw, keys)
        assert report.index == d.receipt["index"]  # type: ignore[index]
        # the entry's exact bytes, fetched and checked against the receipt
        entry = admin.ledger_entry(report.index, tree_size=report.tree_size)
        assert verify.verify_receipt(d.raw, keys, entry=entry["bytes"]).entry_checked
    replay = admin.replay(deny.decision_id)
    assert replay["match"] is True and replay["differences"] == []


def test_decide_pinned_and_exact_integers(admin: warden.Client, bundles: dict[str, Any]) -> None:
    big = {**ALLOW_INPUT, "ns": 18446744073709551615}
    d = admin.decide("agento/commissioning/routing", big, bundle="commissioning", revision="1")
    assert d.allow is True
    entry = admin.ledger_entry(d.receipt["index"])  # type: ignore[index]
    assert b"18446744073709551615" in entry["bytes"].encode()


def test_opa_data_api(admin: warden.Client, bundles: dict[str, Any]) -> None:
    out = admin.data("agento/commissioning/routing/allow", ALLOW_INPUT)
    assert out["result"] is True and out["decision_id"].startswith("dec_")
    out = admin.data("agento/commissioning/routing", DENY_INPUT)
    assert out["result"]["allow"] is False
    undefined = admin.data("agento/commissioning/routing/no_such_rule", DENY_INPUT)
    assert "result" not in undefined and "decision_id" in undefined


def test_impact_and_bundle_listing(admin: warden.Client, bundles: dict[str, Any]) -> None:
    names = {b["name"]: b for b in admin.list_bundles()}
    assert names["commissioning"]["active_revision"] == "1"
    report = admin.impact("commissioning", "1", filter={"path": "agento/commissioning/routing"})
    assert isinstance(report, dict)


# ---- audit -----------------------------------------------------------------------------


def test_audit_event_and_batch(admin: warden.Client) -> None:
    event_id = f"evt_Py{secrets.token_hex(8)}"
    event = {
        "event_id": event_id,
        "timestamp": "2026-11-22T00:41:51Z",
        "workflow_id": "wf-17402",
        "agent_id": "claims-agent",
        "action": "document_read",
        "resource": {"connector": "procore", "document_id": "doc-1"},
        "result": "success",
        "latency_ms": 12,
    }
    one = admin.audit(event)
    assert (one["accepted"], one["duplicates"]) == (1, 0)
    assert one["events"][0]["event_id"] == event_id
    keys = admin.verifier_keys()
    verify.verify_receipt(one["events"][0], keys)
    again = admin.audit(event)
    assert (again["accepted"], again["duplicates"]) == (0, 1)
    assert again["events"][0]["receipt"]["index"] == one["events"][0]["receipt"]["index"]
    batch = admin.audit_batch(
        [
            {"timestamp": "2026-11-22T00:41:52Z", "action": "tool.invoke", "result": "allowed"},
            {"timestamp": "2026-11-22T00:41:53Z", "action": "tool.invoke", "result": "denied"},
        ]
    )
    assert batch["accepted"] == 2 and len(batch["events"]) == 2
    for e in batch["events"]:
        verify.verify_receipt(e, keys)


# ---- errors ----------------------------------------------------------------------------


def test_errors_carry_the_problem_code(warden_server: WardenServer, admin: warden.Client) -> None:
    with warden.Client(warden_server.url, "wdn_not-a-real-token") as bad:
        with pytest.raises(warden.AuthError) as e401:
            bad.list_bundles()
    assert e401.value.status == 401 and e401.value.code == "invalid_token"
    assert e401.value.problem["type"] == "urn:warden:problem:invalid_token"

    with pytest.raises(warden.BadRequest) as e400:
        admin.decide("agento/commissioning/routing", {"f": 123456789012345678901234567890})
    assert (e400.value.status, e400.value.code, e400.value.pointer) == (400, "number_out_of_range", "/input/f")

    with pytest.raises(warden.NotFound) as e404:
        admin.get_bundle("no-such-bundle")
    assert e404.value.code == "unknown_bundle"

    with pytest.raises(warden.Unprocessable) as e422:
        admin.audit({"timestamp": "yesterday", "action": "Bad Action", "result": "maybe"})
    assert e422.value.code == "invalid_event"
    assert {err["field"] for err in e422.value.errors} >= {"/action", "/result", "/timestamp"}

    with pytest.raises(warden.Unprocessable) as compile_error:
        admin.push_bundle(
            warden.build_bundle({"x/broken.rego": "package x\nallow if {\n"}, revision="1", roots=["x"]), "broken"
        )
    assert compile_error.value.code == "rego_compile_error"

    with pytest.raises(warden.AuthError) as e403:
        auditor = mint(admin, warden_server.url, f"auditor-{secrets.token_hex(3)}", ["auditor"])
        with auditor:
            auditor.decide("agento/commissioning/routing", {})
    assert e403.value.status == 403 and e403.value.code == "forbidden"


# ---- the MCP gateway's registry -----------------------------------------------------------


def test_mcp_upstream_registry(warden_server: WardenServer, admin: warden.Client) -> None:
    name = f"tools-{secrets.token_hex(3)}"
    made = admin.put_mcp_upstream(name, url="https://tools.example.com/mcp", bearer_token="upstream-secret")
    assert (made["name"], made["version"], made["has_token"]) == (name, 1, True)
    assert "upstream-secret" not in json.dumps(made)
    again = admin.put_mcp_upstream(name, url="https://tools2.example.com/mcp")
    assert (again["version"], again["has_token"]) == (2, False)
    assert {u["name"]: u["url"] for u in admin.mcp_upstreams()}[name] == "https://tools2.example.com/mcp"
    # Nothing listed from it yet: no pins, and none to accept.
    assert admin.mcp_upstream_tools(name) == []
    with pytest.raises(warden.NotFound) as unknown:
        admin.accept_mcp_tool(name, "lookup")
    assert unknown.value.code == "unknown_tool"
    # A loopback address is not public: refused unless the operator allows it.
    with pytest.raises(warden.BadRequest) as refused:
        admin.put_mcp_upstream(name, url="http://127.0.0.1:9/mcp")
    assert refused.value.code == "invalid_upstream"

    async def from_async() -> list[dict[str, Any]]:
        async with warden.AsyncClient(warden_server.url, warden_server.token) as a:
            await a.delete_mcp_upstream(name)
            return await a.mcp_upstreams()

    assert name not in {u["name"] for u in asyncio.run(from_async())}
    with pytest.raises(warden.NotFound) as gone:
        admin.mcp_upstream_tools(name)
    assert gone.value.code == "unknown_upstream"


# ---- the kernel --------------------------------------------------------------------------


def test_kernel_flow_with_two_reviewers(warden_server: WardenServer, admin: warden.Client, bundles: dict[str, Any]) -> None:
    url = warden_server.url
    suffix = secrets.token_hex(3)
    agent_id = f"claims-agent-{suffix}"
    orch = mint(admin, url, f"orch-{suffix}", ["orchestrator"])
    agent = mint(admin, url, agent_id, ["agent"], agent_ids=[agent_id])
    alice = mint(admin, url, f"alice-{suffix}", ["reviewer"], subject=f"alice-{suffix}@bank.example")
    bob = mint(admin, url, f"bob-{suffix}", ["reviewer"], subject=f"bob-{suffix}@bank.example")

    reader = StreamReader(agent.agent_stream(agent_id).open())
    try:
        created = orch.create_execution(agent_id, {"claim": "C-1"}, labels={"env": "prod", "team": "claims"})
        exe = created["id"]
        assigned = reader.next("execution.assigned")
        assert assigned.json()["execution_id"] == exe and assigned.id is not None

        with pytest.raises(warden.IntentDenied) as denied:
            agent.intent(exe, "invoke_tool", tool="shell.exec", arguments={"cmd": "ls"}, remote=False)
        assert denied.value.code == "intent_denied" and denied.value.status == 403
        assert denied.value.decision_id and any("shell-denied" in r for r in denied.value.reasons)

        answer = agent.intent(
            exe,
            "invoke_tool",
            tool="payments.refund",
            remote=False,
            arguments={"amount": 1500, "currency": "EUR", "customer": {"id": "c1"}},
        )
        assert (answer["outcome"], answer["state"]) == ("require_approval", "blocked")
        step = answer["step"]
        assert any("two reviewers" in r for r in answer["reasons"])

        waiting = [w for w in alice.approvals() if w["execution_id"] == exe]
        assert len(waiting) == 1 and waiting[0]["step"]["args_hash"] == step["args_hash"]

        with pytest.raises(warden.Conflict) as mismatch:
            alice.review(exe, step["id"], "approve", "claim checked", "0" * 64)
        assert mismatch.value.code == "approval_arguments_mismatch"

        first = alice.review(exe, step["id"], "approve", "claim checked", step["args_hash"])
        assert first["review"]["approvals"] == 1
        with pytest.raises(warden.Conflict) as reused:
            alice.review(exe, step["id"], "approve", "again", step["args_hash"])
        assert reused.value.code == "approval_reused"
        bob.review(exe, step["id"], "approve", "second pair of eyes", step["args_hash"])

        assigned_step = reader.next("step.assigned")
        assert assigned_step.json()["step_id"] == step["id"]
        agent.step_result(step["id"], "succeeded", output={"refund": "R-9"})
        result = reader.next("step.result")
        assert result.json()["state"] == "succeeded"
        done = agent.intent(exe, "complete", output={"refunded": True})
        assert done["state"] == "completed"
        assert orch.execution(exe)["state"] == "completed"

        history = admin.execution_history(exe)
        kinds = [h["kind"] for h in history["entries"]]
        assert kinds[0] == "kernel.execution.created" and all(isinstance(h["ledger_index"], int) for h in history["entries"])
        # every receipt the kernel gave verifies offline
        keys = admin.verifier_keys()
        for r in done["receipts"]:
            verify.verify_receipt(r, keys)
    finally:
        reader.close()
        for c in (orch, agent, alice, bob):
            c.close()


def test_agent_stream_resumes_with_last_event_id(warden_server: WardenServer, admin: warden.Client, bundles: dict[str, Any]) -> None:
    url = warden_server.url
    agent_id = f"resume-agent-{secrets.token_hex(3)}"
    agent = mint(admin, url, agent_id, ["agent"], agent_ids=[agent_id])
    first = StreamReader(agent.agent_stream(agent_id).open())
    try:
        exe1 = admin.create_execution(agent_id, {"n": 1})["id"]
        e1 = first.next("execution.assigned")
        assert e1.json()["execution_id"] == exe1
    finally:
        first.close()
    # the stream is gone: its execution goes back to pending; a new one is created meanwhile
    exe2 = admin.create_execution(agent_id, {"n": 2})["id"]
    again = StreamReader(agent.agent_stream(agent_id, last_event_id=e1.id).open())
    try:
        seen: list[str] = []
        while exe2 not in seen:
            seen.append(again.next("execution.assigned").json()["execution_id"])
        # nothing older than Last-Event-ID was replayed
        assert again.stream.last_event_id is not None and int(again.stream.last_event_id) > int(e1.id or 0)
    finally:
        again.close()
        agent.close()
    # Both are listed, newest first, by agent; filters are checked by the server.
    listed = admin.executions(agent_id=agent_id)
    assert [e["id"] for e in listed] == [exe2, exe1] and all("steps" not in e for e in listed)
    assert [e["id"] for e in admin.executions(agent_id=agent_id, limit=1)] == [exe2]
    with pytest.raises(warden.BadRequest) as bad:
        admin.executions(state="sleeping")
    assert bad.value.code == "invalid_query"


def test_async_client_decides_and_streams(warden_server: WardenServer, admin: warden.Client, bundles: dict[str, Any]) -> None:
    url = warden_server.url
    agent_id = f"async-agent-{secrets.token_hex(3)}"
    tok = admin.create_token(agent_id, ["agent"], agent_ids=[agent_id])["token"]

    async def scenario() -> None:
        async with warden.AsyncClient(url, warden_server.token) as a_admin, warden.AsyncClient(url, tok) as a_agent:
            d = await a_admin.decide("agento/commissioning/routing", DENY_INPUT)
            assert d.allow is False
            stream = await a_agent.agent_stream(agent_id).open()
            try:
                created = await a_admin.create_execution(agent_id, {"async": True})

                async def first_assigned() -> Event:
                    async for e in stream:
                        if e.event == "execution.assigned":
                            return e
                    raise AssertionError("the stream ended")

                e = await asyncio.wait_for(first_assigned(), DEADLINE)
                assert e.json()["execution_id"] == created["id"]
            finally:
                await stream.aclose()
            with pytest.raises(warden.AuthError):
                async with warden.AsyncClient(url, "wdn_nope") as bad:
                    await bad.checkpoint()

    asyncio.run(scenario())


# ---- evidence: export, verify here and with the binary ---------------------------------------


def binary_verify(server: WardenServer, path: Path, keys: list[str]) -> tuple[bool, str]:
    args = ["verify", str(path)]
    for k in keys:
        args += ["--key", k]
    out = server.run(*args)
    return out.returncode == 0, out.stdout + out.stderr


def test_export_verified_by_python_and_by_warden(warden_server: WardenServer, admin: warden.Client, bundles: dict[str, Any], tmp_path: Path) -> None:
    admin.decide("agento/commissioning/routing", DENY_INPUT)
    keys = admin.verifier_keys()
    data = admin.export()
    path = tmp_path / "evidence.ndjson"
    assert admin.export_to(path) == len(data) or path.read_bytes()[:200] == data[:200]
    path.write_bytes(data)

    report = verify.verify_export(path, keys)
    header = json.loads(data.split(b"\n", 1)[0])
    assert (report.from_index, report.to_index) == (header["from"], header["to"])
    assert report.entries == header["to"] - header["from"] and report.kinds.get("decision", 0) >= 1
    assert report.root == admin.checkpoint()["root"] or report.tree_size < admin.checkpoint()["size"]
    ok, text = binary_verify(warden_server, path, keys)
    assert ok, text

    # a part of the log, from the middle: both accept it too
    mid = admin.export(from_index=report.entries // 2)
    part = tmp_path / "part.ndjson"
    part.write_bytes(mid)
    assert verify.verify_export(part, keys).from_index == report.entries // 2
    ok, text = binary_verify(warden_server, part, keys)
    assert ok, text

    # a wrong key: both refuse
    from ledgerkit import make_signer

    other = make_signer(42, "warden.local").verifier
    with pytest.raises(warden.VerificationError):
        verify.verify_export(path, other)
    ok, text = binary_verify(warden_server, path, [other])
    assert not ok, text

    # one byte flipped in a decision's payload: both refuse, naming the same entry
    lines = data.split(b"\n")
    n = next(i for i, line in enumerate(lines) if line.startswith(b'{"actor":') and b'"kind":"decision"' in line)
    at = lines[n].index(b'"decision_id":"dec_') + len(b'"decision_id":"dec_') + 3
    tampered_line = lines[n][:at] + bytes([lines[n][at] ^ 0x01]) + lines[n][at + 1 :]
    assert tampered_line != lines[n]
    lines[n] = tampered_line
    bad = tmp_path / "tampered.ndjson"
    bad.write_bytes(b"\n".join(lines))
    with pytest.raises(warden.VerificationError) as err:
        verify.verify_export(bad, keys)
    ok, text = binary_verify(warden_server, bad, keys)
    assert not ok, text
    mentioned = {int(m) for m in re.findall(r"entry (\d+)", text)}
    assert err.value.index in mentioned, (str(err.value), text)
    print(f"python: {err.value}\nwarden verify: {text.strip()}")

    # the Python command line says the same
    from warden.__main__ import main as cli

    assert cli(["verify", str(path), *sum((["--key", k] for k in keys), [])]) == 0
    assert cli(["verify", str(bad), *sum((["--key", k] for k in keys), [])]) == 1


def test_consistency_between_checkpoints(admin: warden.Client, bundles: dict[str, Any]) -> None:
    first = admin.checkpoint()
    admin.decide("agento/commissioning/routing", ALLOW_INPUT)
    second = admin.checkpoint()
    view = admin.consistency(first["size"], second["size"])
    a, b = verify.verify_consistency(view, admin.verifier_keys())
    assert (a.size, b.size) == (first["size"], second["size"])
