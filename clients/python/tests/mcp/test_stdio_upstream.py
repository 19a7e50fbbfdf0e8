"""The MCP gateway (docs/mcp.md) with a tool server Warden runs itself:
`docs` is upstream.py listed by the operator in `[[mcp.stdio]]` (as
`docs-local`, given through Warden's environment settings) and registered
by the tenant admin with `{"stdio": "docs-local"}` under the name the
sample gateway policy knows (`docs`). Warden starts the process, speaks
newline-delimited JSON-RPC over its stdin and stdout, and gives it only
the environment the operator configured. Agents are made with the official
MCP Python SDK, as is the tool server.

The same Warden also serves the allow path of resources and prompts
(`resources/read`, `prompts/get`): a small gateway bundle of this module
lets one resource and one prompt of `docs` through, and the gateway must
still refuse what the policy allows only with obligations or a review."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from gatewaykit import (
    STDIO_ENV,
    TELLER,
    Gateway,
    StdioUpstream,
    call_entries,
    connect,
    refused_decision,
    text_of,
    warden_meta,
)
from mcp.shared.exceptions import MCPError
from mcp_types import TextContent, TextResourceContents
from upstream import INTERNAL_URI, INTRO_TEXT, INTRO_URI

import warden

pytestmark = pytest.mark.integration

MAX_TEXT_CHARS = 200
INTRO = f"mcp+docs:{INTRO_URI}"
INTERNAL = f"mcp+docs:{INTERNAL_URI}"


def stdio_docs(gw: Gateway) -> StdioUpstream:
    assert isinstance(gw.docs, StdioUpstream), gw.docs
    return gw.docs


# ---- a tool server run over stdio -----------------------------------------------------------


async def test_tools_list_shows_the_stdio_servers_tools(stdio_gateway: Gateway) -> None:
    upstreams = {u["name"] for u in stdio_gateway.admin.request("GET", "/v1/mcp/upstreams").json()}
    assert {"bank", "docs"} <= upstreams, upstreams
    async with connect(stdio_gateway.mcp_url, stdio_gateway.teller) as conn:
        listed = {t.name: t for t in (await conn.client.list_tools()).tools}
    assert {"docs__search", "bank__lookup", "bank__transfer"} <= set(listed), sorted(listed)
    assert listed["docs__search"].description == "Searches the documentation."
    assert set(listed["docs__search"].input_schema["properties"]) == {"query"}


async def test_call_runs_in_the_process_with_the_obligations(stdio_gateway: Gateway) -> None:
    docs = stdio_docs(stdio_gateway)
    before = docs.calls("search")
    async with connect(stdio_gateway.mcp_url, stdio_gateway.teller) as conn:
        result = await conn.client.call_tool("docs__search", {"query": "stdio"})
        assert docs.calls("search") == before + 1
        again = await conn.client.call_tool("docs__search", {"query": "again"})
    assert result.is_error is False and again.is_error is False, (result, again)
    # The process kept running between the calls, counting on.
    assert docs.calls("search") == before + 2
    text = text_of(result)
    # The tool server answered 500 characters; the policy cuts them to 200.
    assert text.startswith("Results for stdio: ") and len(text) == MAX_TEXT_CHARS, (len(text), text)
    meta = warden_meta(result)
    assert meta["outcome"] == "allow" and meta["decision_id"], meta
    assert meta.get("upstream", {}).get("status") == "ok", meta


async def test_the_process_gets_only_the_configured_environment(stdio_gateway: Gateway) -> None:
    async with connect(stdio_gateway.mcp_url, stdio_gateway.teller) as conn:
        result = await conn.client.call_tool("docs__search", {"query": "environment"})
    assert result.is_error is False, result
    # None of Warden's own (its bootstrap token, its settings, PATH, HOME).
    assert stdio_docs(stdio_gateway).environ() == sorted(STDIO_ENV)


def test_only_a_stdio_server_the_operator_lists_is_registered(stdio_gateway: Gateway) -> None:
    for body in (
        {"stdio": "not-listed"},
        # Either a URL or a stdio server, never both.
        {"stdio": "docs-local", "url": stdio_gateway.bank.url},
    ):
        with pytest.raises(warden.WardenError) as refused:
            stdio_gateway.put_upstream("other", body)
        assert (refused.value.status, refused.value.code) == (400, "invalid_upstream"), (body, refused.value)
    upstreams = {u["name"] for u in stdio_gateway.admin.request("GET", "/v1/mcp/upstreams").json()}
    assert "other" not in upstreams, upstreams


async def test_stdio_call_is_in_the_verified_ledger(stdio_gateway: Gateway) -> None:
    async with connect(stdio_gateway.mcp_url, stdio_gateway.teller) as conn:
        result = await conn.client.call_tool("docs__search", {"query": "ledger"})
        session = conn.session_id
    assert result.is_error is False, result
    call_id = warden_meta(result)["call_id"]

    entries, _ = stdio_gateway.ledger()
    decided = call_entries(entries, "mcp.call.decided", call_id=call_id)
    completed = call_entries(entries, "mcp.call.completed", call_id=call_id)
    assert len(decided) == 1 and len(completed) == 1, [e["kind"] for e in entries[-10:]]
    payload = completed[0]["payload"]
    assert payload["status"] == "ok", payload
    assert (payload["upstream"], payload["tool"], payload["method"]) == ("docs", "docs__search", "tools/call"), payload
    assert (payload["session_id"], payload["agent_id"]) == (session, TELLER), payload


# ---- resources and prompts under a policy that lets them through ----------------------------

#: A gateway bundle (package `warden.mcp`) of these tests: `resources/read`
#: of the handbook's introduction and `prompts/get` of `summarize` are
#: allowed as they are; the internal notes are allowed only with a result
#: obligation and `translate` only after a review, which the gateway must
#: refuse for resources and prompts; everything else is denied.
PASSTHROUGH_REGO = """\
package warden.mcp

default decision := {"outcome": "deny", "reasons": ["the pass-through test policy allows nothing else"]}

decision := {"outcome": "allow", "reasons": ["the handbook's introduction may be read"]} if {
	input.method == "resources/read"
	input.upstream.name == "docs"
	input.resource == {"name": "mcp+docs:docs://handbook/intro", "uri": "docs://handbook/intro"}
}

decision := {
	"outcome": "allow",
	"reasons": ["the internal notes may be read, cut short"],
	"obligations": {"max_text_chars": 10},
} if {
	input.method == "resources/read"
	input.upstream.name == "docs"
	input.resource.uri == "docs://handbook/internal"
}

decision := {"outcome": "allow", "reasons": ["summaries may be asked for"]} if {
	input.method == "prompts/get"
	input.upstream.name == "docs"
	input.prompt == {"name": "docs__summarize", "upstream_name": "summarize"}
}

decision := {
	"outcome": "require_approval",
	"reasons": ["translations need a reviewer"],
	"approval": {"reviewers": 1, "timeout_seconds": 60},
} if {
	input.method == "prompts/get"
	input.upstream.name == "docs"
	input.prompt.name == "docs__translate"
}

visible := set()
"""

PASSTHROUGH_TEST_REGO = """\
package warden.mcp.passthrough_test

import data.warden.mcp

read_of(uri) := {
	"method": "resources/read",
	"agent": {"id": "teller"},
	"upstream": {"name": "docs"},
	"resource": {"name": concat("", ["mcp+docs:", uri]), "uri": uri},
}

get_of(name) := {
	"method": "prompts/get",
	"agent": {"id": "teller"},
	"upstream": {"name": "docs"},
	"prompt": {"name": concat("", ["docs__", name]), "upstream_name": name},
}

test_the_introduction_is_read if {
	mcp.decision == {"outcome": "allow", "reasons": ["the handbook's introduction may be read"]} with input as read_of("docs://handbook/intro")
}

test_summarize_is_got if {
	mcp.decision.outcome == "allow" with input as get_of("summarize")
}

test_the_rest_is_denied if {
	mcp.decision.outcome == "deny" with input as read_of("docs://handbook/other")
	mcp.decision.outcome == "deny" with input as get_of("outline")
	mcp.decision.outcome == "deny" with input as {"method": "tools/call", "agent": {"id": "teller"}, "tool": {"name": "docs__search"}}
	count(mcp.visible) == 0
}
"""


@pytest.fixture
def passthrough_policy(stdio_gateway: Gateway) -> Iterator[dict[str, Any]]:
    """The pass-through bundle active as the tenant's gateway policy for one
    test; the sample policy active again after it."""
    data = warden.build_bundle(
        {"passthrough.rego": PASSTHROUGH_REGO, "passthrough_test.rego": PASSTHROUGH_TEST_REGO},
        revision=f"passthrough.{time.time_ns()}",
        roots=["warden/mcp"],
    )
    pushed = stdio_gateway.push_bundle(data)
    try:
        yield pushed
    finally:
        stdio_gateway.restore_policy()


async def test_the_allowed_resource_and_prompt_come_back(
    stdio_gateway: Gateway, passthrough_policy: dict[str, Any]
) -> None:
    docs = stdio_docs(stdio_gateway)
    reads, gets = docs.calls(f"read:{INTRO_URI}"), docs.calls("prompt:summarize")
    async with connect(stdio_gateway.mcp_url, stdio_gateway.teller) as conn:
        read = await conn.client.read_resource(INTRO)
        got = await conn.client.get_prompt("docs__summarize", {"topic": "reviews"})
    assert docs.calls(f"read:{INTRO_URI}") == reads + 1
    assert docs.calls("prompt:summarize") == gets + 1

    assert len(read.contents) == 1, read
    content = read.contents[0]
    assert isinstance(content, TextResourceContents) and content.text == INTRO_TEXT, read
    assert warden_meta(read)["outcome"] == "allow", read

    assert len(got.messages) == 1, got
    message = got.messages[0]
    assert message.role == "user" and isinstance(message.content, TextContent), got
    assert message.content.text == "Summarize what the documentation says about reviews.", got
    assert warden_meta(got)["outcome"] == "allow", got


async def test_obligations_and_reviews_are_refused_for_resources_and_prompts(
    stdio_gateway: Gateway, passthrough_policy: dict[str, Any]
) -> None:
    docs = stdio_docs(stdio_gateway)
    internal, translate = docs.calls(f"read:{INTERNAL_URI}"), docs.calls("prompt:translate")
    refusals: dict[str, tuple[str, str]] = {}
    async with connect(stdio_gateway.mcp_url, stdio_gateway.teller) as conn:
        with pytest.raises(MCPError) as obliged:
            await conn.client.read_resource(INTERNAL)
        refusals["obligations"] = (refused_decision(obliged.value), obliged.value.message)
        with pytest.raises(MCPError) as reviewed:
            await conn.client.get_prompt("docs__translate", {"text": "hello"})
        refusals["review"] = (refused_decision(reviewed.value), reviewed.value.message)
        # Neither what the policy does not name.
        with pytest.raises(MCPError) as other:
            await conn.client.get_prompt("docs__outline", {})
        refusals["unnamed"] = (refused_decision(other.value), other.value.message)
    assert docs.calls(f"read:{INTERNAL_URI}") == internal
    assert docs.calls("prompt:translate") == translate

    assert "result obligations apply to tool calls" in refusals["obligations"][1], refusals
    assert "cannot wait for a review" in refusals["review"][1], refusals
    assert "allows nothing else" in refusals["unnamed"][1], refusals

    # Each refusal is on record as a denial, and never reached the tool server.
    entries, _ = stdio_gateway.ledger()
    for what, (decision_id, _) in refusals.items():
        decided = call_entries(entries, "mcp.call.decided", decision_id=decision_id)
        assert len(decided) == 1, (what, decision_id)
        assert decided[0]["payload"]["outcome"] == "deny", decided[0]
        call_id = decided[0]["payload"]["call_id"]
        assert not call_entries(entries, "mcp.call.completed", call_id=call_id), (what, call_id)
    assert call_entries(entries, "mcp.call.decided", decision_id=refusals["obligations"][0])[0]["payload"]["resource"] == INTERNAL


async def test_resource_reads_and_prompts_are_in_the_verified_ledger(
    stdio_gateway: Gateway, passthrough_policy: dict[str, Any]
) -> None:
    async with connect(stdio_gateway.mcp_url, stdio_gateway.teller) as conn:
        read = await conn.client.read_resource(INTRO)
        got = await conn.client.get_prompt("docs__summarize", {"topic": "evidence"})
        session = conn.session_id
    read_meta, got_meta = warden_meta(read), warden_meta(got)

    entries, report = stdio_gateway.ledger()
    for meta, method, key, name in (
        (read_meta, "resources/read", "resource", INTRO),
        (got_meta, "prompts/get", "prompt", "docs__summarize"),
    ):
        decided = call_entries(entries, "mcp.call.decided", call_id=meta["call_id"])
        completed = call_entries(entries, "mcp.call.completed", call_id=meta["call_id"])
        assert len(decided) == 1 and len(completed) == 1, (method, [e["kind"] for e in entries[-10:]])
        for entry in (decided[0], completed[0]):
            payload = entry["payload"]
            assert (payload["method"], payload[key], payload["upstream"]) == (method, name, "docs"), payload
            assert (payload["session_id"], payload["agent_id"]) == (session, TELLER), payload
            assert "tool" not in payload, payload
        assert decided[0]["payload"]["outcome"] == "allow", decided[0]
        assert decided[0]["payload"]["decision_id"] == meta["decision_id"], (decided[0], meta)
        assert completed[0]["payload"]["status"] == "ok", completed[0]
    assert report.entries == len(entries)
