"""The MCP gateway (docs/mcp.md) as an agent sees it: agents made with the
official MCP Python SDK connect to a real Warden's /mcp, in front of two
tool servers made with the same SDK (`bank` and `docs`, upstream.py), under
the sample gateway policy (policies/mcp-gateway). What each call did at the
tool server is read from the server's own count of the calls it ran."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest
from gatewaykit import (
    DEADLINE,
    TELLER,
    Connection,
    Gateway,
    await_for,
    call_entries,
    connect,
    find_review,
    json_text,
    mentions,
    refused_decision,
    text_of,
    unique_account,
    values_of,
    verdict,
    warden_meta,
)
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult
from upstream import INTERNAL_URI, INTRO_URI, LOOKUP_DESCRIPTION

import warden

pytestmark = pytest.mark.integration

MAX_TEXT_CHARS = 200


def reviewer_client(gw: Gateway, token: str) -> warden.AsyncClient:
    return warden.AsyncClient(gw.url, token)


def big_transfer(to: str) -> dict[str, Any]:
    """A transfer the sample policy holds for two reviewers (over 1000)."""
    return {"amount": 5000, "currency": "EUR", "to": to}


class Progress:
    """The `notifications/progress` a waiting call received."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, float | None, str | None]] = []

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.seen.append((progress, total, message))


def assert_denied(result: CallToolResult) -> dict[str, Any]:
    """A denial: a tool error whose text names the decision and its reasons."""
    meta = warden_meta(result)
    text = text_of(result)
    assert result.is_error is True, result
    assert meta.get("outcome") == "deny", meta
    assert meta.get("decision_id") and meta["decision_id"] in text, (meta, text)
    assert meta.get("reasons") and any(r in text for r in meta["reasons"]), (meta, text)
    return meta


# ---- tools/list ------------------------------------------------------------------------------


async def test_tools_list_shows_what_the_policy_lets_the_agent_see(gateway: Gateway) -> None:
    # A default SDK client (mode "auto": it probes server/discover, then falls back to initialize).
    async with connect(gateway.mcp_url, gateway.teller, mode="auto") as conn:
        listed = {t.name: t for t in (await conn.client.list_tools()).tools}
    assert {"bank__lookup", "bank__transfer", "docs__search"} <= set(listed), sorted(listed)
    assert "bank__close_account" not in listed, sorted(listed)
    # Definitions come through as the tool servers give them.
    assert listed["bank__lookup"].description == LOOKUP_DESCRIPTION
    assert set(listed["bank__transfer"].input_schema["properties"]) == {"amount", "currency", "to"}


# ---- allow, deny, obligations ------------------------------------------------------------


async def test_allowed_lookup_comes_back_redacted(gateway: Gateway) -> None:
    before = gateway.bank.calls("lookup")
    async with connect(gateway.mcp_url, gateway.teller) as conn:
        result = await conn.client.call_tool("bank__lookup", {"account": "acct-1"})
    assert result.is_error is False, result
    assert gateway.bank.calls("lookup") == before + 1

    for shown in (result.structured_content, json_text(result)):
        assert shown["owner"] == "Ada Lovelace" and shown["account"] == "acct-1", shown
        assert "ssn" not in shown, shown
        assert shown["card"] == {"expiry": "12/29"}, shown
    assert "4111111111111111" not in result.model_dump_json(by_alias=True)

    meta = warden_meta(result)
    assert meta["outcome"] == "allow" and meta["decision_id"] and meta["call_id"], meta


async def test_small_transfer_is_forwarded_once(gateway: Gateway) -> None:
    before = gateway.bank.calls("transfer")
    to = unique_account()
    async with connect(gateway.mcp_url, gateway.teller) as conn:
        result = await conn.client.call_tool("bank__transfer", {"amount": 50, "currency": "EUR", "to": to})
    assert result.is_error is False, result
    assert result.structured_content["to"] == to and result.structured_content["status"] == "done"
    assert gateway.bank.calls("transfer") == before + 1
    assert warden_meta(result)["outcome"] == "allow"


async def test_denied_calls_never_reach_the_tool_server(gateway: Gateway) -> None:
    transfers = gateway.bank.calls("transfer")
    closes = gateway.bank.calls("close_account")
    async with connect(gateway.mcp_url, gateway.teller) as conn:
        gbp = await conn.client.call_tool("bank__transfer", {"amount": 50, "currency": "GBP", "to": unique_account()})
        close = await conn.client.call_tool("bank__close_account", {"account": "acct-1"})
    assert_denied(gbp)
    assert_denied(close)
    assert gateway.bank.calls("transfer") == transfers
    assert gateway.bank.calls("close_account") == closes


async def test_long_text_is_cut_to_the_policys_limit(gateway: Gateway) -> None:
    async with connect(gateway.mcp_url, gateway.teller) as conn:
        result = await conn.client.call_tool("docs__search", {"query": "gateway"})
    assert result.is_error is False, result
    text = text_of(result)
    # The tool server answered 500 characters.
    assert text.startswith("Results for gateway: ") and len(text) <= MAX_TEXT_CHARS, (len(text), text)
    assert warden_meta(result)["outcome"] == "allow"


# ---- resources and prompts --------------------------------------------------------------------


async def test_resources_and_prompts_are_listed_under_their_upstream(gateway: Gateway) -> None:
    async with connect(gateway.mcp_url, gateway.teller) as conn:
        resources = {r.uri: r for r in (await conn.client.list_resources()).resources}
        prompts = {p.name: p for p in (await conn.client.list_prompts()).prompts}
    assert set(resources) == {f"mcp+docs:{INTRO_URI}", f"mcp+docs:{INTERNAL_URI}"}, sorted(resources)
    assert resources[f"mcp+docs:{INTRO_URI}"].mime_type == "text/plain"
    assert set(prompts) == {"docs__summarize", "docs__translate"}, sorted(prompts)
    assert [a.name for a in prompts["docs__summarize"].arguments or []] == ["topic"]


async def test_the_sample_policy_refuses_resource_reads_and_prompts(gateway: Gateway) -> None:
    # The sample policy decides tool calls only: anything else is a denial.
    reads, gets = gateway.docs.calls(f"read:{INTRO_URI}"), gateway.docs.calls("prompt:summarize")
    async with connect(gateway.mcp_url, gateway.teller) as conn:
        with pytest.raises(MCPError) as read:
            await conn.client.read_resource(f"mcp+docs:{INTRO_URI}")
        with pytest.raises(MCPError) as got:
            await conn.client.get_prompt("docs__summarize", {"topic": "reviews"})
        session = conn.session_id
    refused = {"resources/read": refused_decision(read.value), "prompts/get": refused_decision(got.value)}
    assert gateway.docs.calls(f"read:{INTRO_URI}") == reads
    assert gateway.docs.calls("prompt:summarize") == gets

    entries, _ = gateway.ledger()
    for method, decision_id in refused.items():
        decided = call_entries(entries, "mcp.call.decided", decision_id=decision_id)
        assert len(decided) == 1, (method, decision_id)
        payload = decided[0]["payload"]
        assert (payload["method"], payload["outcome"], payload["session_id"]) == (method, "deny", session), payload
        assert not call_entries(entries, "mcp.call.completed", call_id=payload["call_id"]), payload
    resource = call_entries(entries, "mcp.call.decided", decision_id=refused["resources/read"])[0]["payload"]
    prompt = call_entries(entries, "mcp.call.decided", decision_id=refused["prompts/get"])[0]["payload"]
    assert resource["resource"] == f"mcp+docs:{INTRO_URI}" and prompt["prompt"] == "docs__summarize", (resource, prompt)


# ---- reviews ------------------------------------------------------------------------------------


async def test_big_transfer_waits_for_two_reviewers_then_runs_once(gateway: Gateway) -> None:
    to = unique_account()
    before = gateway.bank.calls("transfer")
    progress = Progress()
    answer: dict[str, CallToolResult] = {}
    async with (
        reviewer_client(gateway, gateway.alice.token) as alice,
        reviewer_client(gateway, gateway.bob.token) as bob,
        reviewer_client(gateway, gateway.teller) as agent_itself,
        connect(gateway.mcp_url, gateway.teller) as conn,
    ):

        async def call() -> None:
            answer["result"] = await conn.client.call_tool(
                "bank__transfer", big_transfer(to), progress_callback=progress
            )

        with anyio.fail_after(DEADLINE * 2):
            async with anyio.create_task_group() as tg:
                tg.start_soon(call)
                review = await find_review(alice, to)
                assert review["agent_id"] == TELLER, review
                await await_for("progress while the call waits", lambda: progress.seen)

                with pytest.raises(warden.WardenError) as own:
                    await verdict(agent_itself, review, "approve", "my own call")
                assert own.value.status == 403, own.value

                await verdict(alice, review, "approve", "checked the payee")
                with pytest.raises(warden.WardenError) as twice:
                    await verdict(alice, review, "approve", "checked again")
                assert (twice.value.status, twice.value.code) == (409, "approval_reused"), twice.value
                # One approval is not enough: the call still waits, nothing ran.
                await anyio.sleep(0.5)
                assert "result" not in answer and gateway.bank.calls("transfer") == before

                await verdict(bob, review, "approve", "second pair of eyes")

    result = answer["result"]
    assert result.is_error is False, result
    assert result.structured_content["to"] == to and result.structured_content["status"] == "done", result
    assert gateway.bank.calls("transfer") == before + 1
    assert progress.seen, "no notifications/progress while the call waited"
    meta = warden_meta(result)
    assert meta["outcome"] == "require_approval", meta
    assert mentions(meta.get("review"), review["execution_id"]), meta


async def test_rejected_transfer_is_a_tool_error(gateway: Gateway) -> None:
    to = unique_account()
    before = gateway.bank.calls("transfer")
    answer: dict[str, CallToolResult] = {}
    async with (
        reviewer_client(gateway, gateway.alice.token) as alice,
        connect(gateway.mcp_url, gateway.teller) as conn,
    ):

        async def call() -> None:
            answer["result"] = await conn.client.call_tool("bank__transfer", big_transfer(to))

        with anyio.fail_after(DEADLINE * 2):
            async with anyio.create_task_group() as tg:
                tg.start_soon(call)
                review = await find_review(alice, to)
                await verdict(alice, review, "reject", "unknown payee")

    result = answer["result"]
    assert result.is_error is True, result
    assert gateway.bank.calls("transfer") == before
    assert mentions(warden_meta(result).get("review"), review["execution_id"])


async def test_disconnected_agent_comes_back_to_its_approved_review(gateway: Gateway) -> None:
    to = unique_account()
    before = gateway.bank.calls("transfer")
    async with (
        reviewer_client(gateway, gateway.alice.token) as alice,
        reviewer_client(gateway, gateway.bob.token) as bob,
    ):
        # The agent asks, then goes away while the call waits.
        with anyio.fail_after(DEADLINE * 2):
            async with connect(gateway.mcp_url, gateway.teller) as conn, anyio.create_task_group() as tg:
                tg.start_soon(_call_and_forget, conn, to)
                review = await find_review(alice, to)
                tg.cancel_scope.cancel()
        # The reviewers approve while no one waits.
        await verdict(alice, review, "approve", "checked the payee")
        await verdict(bob, review, "approve", "second pair of eyes")
        assert gateway.bank.calls("transfer") == before

        # A new session, the same call: forwarded now, once.
        async with connect(gateway.mcp_url, gateway.teller) as conn:
            with anyio.fail_after(DEADLINE):
                result = await conn.client.call_tool("bank__transfer", big_transfer(to))
            assert result.is_error is False, result
            assert result.structured_content["to"] == to
            assert gateway.bank.calls("transfer") == before + 1
            assert mentions(warden_meta(result).get("review"), review["execution_id"])

            # The approval was used: the same call again needs a new review.
            answer: dict[str, CallToolResult] = {}

            async def again() -> None:
                answer["result"] = await conn.client.call_tool("bank__transfer", big_transfer(to))

            with anyio.fail_after(DEADLINE * 2):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(again)
                    fresh = await find_review(alice, to, exclude=frozenset({review["execution_id"]}))
                    assert gateway.bank.calls("transfer") == before + 1
                    await verdict(alice, fresh, "reject", "already paid")
            assert answer["result"].is_error is True
    assert gateway.bank.calls("transfer") == before + 1


async def _call_and_forget(conn: Connection, to: str) -> None:
    await conn.client.call_tool("bank__transfer", big_transfer(to))


# ---- upstreams failing and changing ---------------------------------------------------------


async def test_unreachable_upstream_is_a_tool_error_on_record(gateway: Gateway) -> None:
    async with connect(gateway.mcp_url, gateway.teller) as conn:
        # The tool server answers, then goes away between two calls.
        first = await conn.client.call_tool("docs__search", {"query": "anything"})
        assert first.is_error is False, first
        gateway.docs.stop()
        try:
            result = await conn.client.call_tool("docs__search", {"query": "anything"})
        finally:
            gateway.docs.start()
    assert result.is_error is True, result
    meta = warden_meta(result)
    assert meta.get("upstream", {}).get("status") == "unreachable", meta

    entries, _ = gateway.ledger()
    completed = [e for e in entries if e["kind"] == "mcp.call.completed" and mentions(e["payload"], meta["call_id"])]
    assert len(completed) == 1, [e["kind"] for e in entries[-10:]]
    assert ("status", "unreachable") in set(values_of(completed[0]["payload"])), completed[0]


async def test_changed_definition_is_denied_until_an_admin_accepts_it(gateway: Gateway) -> None:
    lookups = gateway.bank.calls("lookup")
    async with connect(gateway.mcp_url, gateway.teller) as conn:
        await conn.client.list_tools()
        assert _changed(gateway.tool_pin("bank", "lookup")) is False
        gateway.bank.mutate(True)
        try:
            # The changed tool is hidden until an admin accepts it.
            assert "bank__lookup" not in await _names(conn)
            assert _changed(gateway.tool_pin("bank", "lookup")) is True

            denied = await conn.client.call_tool("bank__lookup", {"account": "acct-1"})
            meta = assert_denied(denied)
            assert any("chang" in r.lower() for r in meta["reasons"]), meta
            assert gateway.bank.calls("lookup") == lookups

            gateway.accept("bank", "lookup")
            assert _changed(gateway.tool_pin("bank", "lookup")) is False
            assert "bank__lookup" in await _names(conn)
            allowed = await conn.client.call_tool("bank__lookup", {"account": "acct-1"})
            assert allowed.is_error is False, allowed
            assert warden_meta(allowed)["outcome"] == "allow"
            assert gateway.bank.calls("lookup") == lookups + 1
        finally:
            # Back to the first definition, accepted again, for the other tests.
            gateway.bank.mutate(False)
            await conn.client.list_tools()
            if _changed(gateway.tool_pin("bank", "lookup")):
                gateway.accept("bank", "lookup")


async def _names(conn: Connection) -> set[str]:
    return {t.name for t in (await conn.client.list_tools()).tools}


def _changed(pin: dict[str, Any]) -> bool:
    if "changed" in pin:
        return bool(pin["changed"])
    return bool(pin["pinned_hash"] != pin["current_hash"])


# ---- who may connect ----------------------------------------------------------------------------


def initialize(gw: Gateway, token: str | None, query: str = "") -> httpx.Response:
    """A bare `initialize` POST to /mcp, to see the HTTP answer itself."""
    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "warden-mcp-tests", "version": "1.0.0"},
        },
    }
    return httpx.post(gw.mcp_url + query, json=body, headers=headers, timeout=DEADLINE)


def test_only_an_agent_token_bound_to_the_agent_connects(gateway: Gateway) -> None:
    ok = initialize(gateway, gateway.teller, "?agent_id=teller")
    assert ok.status_code == 200, (ok.status_code, ok.text)

    not_bound = initialize(gateway, gateway.other, "?agent_id=teller")
    assert not_bound.status_code == 403, (not_bound.status_code, not_bound.text)
    assert not_bound.json().get("code") == "identity_not_bound", not_bound.text

    anonymous = initialize(gateway, None)
    assert anonymous.status_code == 401, (anonymous.status_code, anonymous.text)

    reviewer = initialize(gateway, gateway.alice.token)
    assert reviewer.status_code == 403, (reviewer.status_code, reviewer.text)


# ---- evidence ---------------------------------------------------------------------------------


async def test_every_call_is_in_the_verified_ledger_and_the_audit_feed(gateway: Gateway) -> None:
    async with connect(gateway.mcp_url, gateway.teller) as conn:
        allowed = await conn.client.call_tool("bank__lookup", {"account": "acct-2"})
        denied = await conn.client.call_tool("bank__transfer", {"amount": 50, "currency": "GBP", "to": "acct-3"})
        session = conn.session_id
    assert session, "Warden gave no Mcp-Session-Id"
    allowed_id = warden_meta(allowed)["call_id"]
    denied_id = warden_meta(denied)["call_id"]
    assert allowed_id != denied_id

    entries, report = gateway.ledger()
    assert report.kinds.get("mcp.call.decided", 0) >= 2 and report.kinds.get("mcp.call.completed", 0) >= 1, report.kinds

    def entries_of(kind: str, call_id: str) -> list[dict[str, Any]]:
        return [e for e in entries if e["kind"] == kind and mentions(e["payload"], call_id)]

    for call_id in (allowed_id, denied_id):
        decided = entries_of("mcp.call.decided", call_id)
        assert len(decided) == 1, f"{call_id}: {len(decided)} mcp.call.decided entries"
        assert mentions(decided[0]["payload"], session), decided[0]
    completed = entries_of("mcp.call.completed", allowed_id)
    assert len(completed) == 1 and mentions(completed[0]["payload"], session), completed
    assert ("status", "ok") in set(values_of(completed[0]["payload"])), completed[0]
    # The denied call never reached the tool server.
    assert not [e for e in entries_of("mcp.call.completed", denied_id) if ("status", "ok") in set(values_of(e["payload"]))]

    events = gateway.audit_events()
    done = [e for e in events if e.get("action") == "mcp.call.completed" and e.get("activity_id") == allowed_id]
    assert len(done) == 1, [e for e in events if str(e.get("action", "")).startswith("mcp")][-5:]
    assert done[0].get("workflow_id") == session, done[0]
    assert done[0].get("agent_id") == TELLER, done[0]
