"""Helpers of the MCP gateway's tests: the tool servers (upstream.py, run
as processes, or run by Warden itself over stdio), the Warden in front of
them with its tenant set up (the upstreams registered, the gateway policy
pushed, the agents' and the reviewers' tokens), and agents connecting to
its /mcp with the official MCP Python SDK. Every wait polls with a
deadline and fails loudly."""

from __future__ import annotations

import inspect
import json
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
from ledgerkit import REPO_ROOT
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, GetPromptResult, Implementation, ReadResourceResult, TextContent
import wardenproc
from wardenproc import WardenServer

import warden
from warden import verify

HERE = Path(__file__).resolve().parent
UPSTREAM_SERVER = HERE / "upstream.py"
POLICY_DIR = REPO_ROOT / "policies" / "mcp-gateway"
POLICY_BUNDLE = "mcp-gateway"
#: The agent the sample policy knows, and one it does not.
TELLER = "teller"
OTHER = "other"
#: The kernel step a gateway review holds (docs/mcp.md).
REVIEW_STEP_TOOL = "mcp.tools_call"
#: The JSON-RPC error of a refused `resources/read` or `prompts/get` (docs/mcp.md).
REFUSED = -32003
DEADLINE = 30.0

#: Settings of the Warden under test: the upstreams listen on loopback, and a
#: waiting call reports progress often enough for a test to see it.
WARDEN_SETTINGS = {
    "WARDEN_MCP__ALLOW_NETWORKS": '["127.0.0.0/8"]',
    "WARDEN_MCP__PROGRESS_INTERVAL_MS": "200",
}


def toml_value(value: Any) -> str:
    """`value` written as a TOML value (dicts as inline tables).

    Warden reads the value of a `WARDEN_*` variable as TOML, so a table or
    an array of tables (`[[mcp.stdio]]`) is given in TOML's inline syntax,
    `[{name = "docs-local", args = ["--stdio"], env = {}}]`; the same in
    JSON (`{"name": "docs-local"}`) is not TOML and is refused ("invalid
    type: string ..., expected a sequence").
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        # A JSON string is a TOML basic string; ensure_ascii off, for no surrogate
        # pairs of \u escapes (which TOML refuses).
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_value(str(k))} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, probe: Callable[[], Any], timeout: float = DEADLINE, every: float = 0.1) -> Any:
    """Polls `probe` until it returns something truthy (wardenproc's poll,
    with this suite's deadline)."""
    return wardenproc.wait_for(what, probe, timeout, every)


async def await_for(
    what: str, probe: Callable[[], Any], timeout: float = DEADLINE, every: float = 0.2
) -> Any:
    """`wait_for` without blocking the event loop; `probe` may be a coroutine function."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
            if inspect.isawaitable(last):
                last = await last
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - kept as the last observation
            last = e
        await anyio.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {last!r}")


def unique_account() -> str:
    """An account the sample policy accepts (^acct-[0-9]+$), new for each
    call, so that no two tests share a review."""
    return f"acct-{time.time_ns() % 10**12:012d}{secrets.randbelow(1000):03d}"


# ---- the tool servers --------------------------------------------------------------------


class CallCounts:
    """What an upstream.py server ran, from its `--state` file."""

    calls_file: Path

    def calls(self, tool: str) -> int:
        """How many times `tool` (or `read:<uri>`, `prompt:<name>`) actually ran on this server."""
        if not self.calls_file.exists():
            return 0
        return int(json.loads(self.calls_file.read_text(encoding="utf-8")).get(tool, 0))


class Upstream(CallCounts):
    """upstream.py as a process on a free port; stop() and start() again
    keep the port and the counts of calls that ran."""

    def __init__(self, name: str, workdir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.calls_file = workdir / f"{name}-calls.json"
        self.switch = workdir / f"{name}-mutated"
        self.log_file = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def registration(self) -> dict[str, Any]:
        """The body of `PUT /v1/mcp/upstreams/{name}` that registers it."""
        return {"url": self.url}

    def start(self) -> Upstream:
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(UPSTREAM_SERVER), "--port", str(self.port), "--name", self.name,
                 "--state", str(self.calls_file), "--mutate-when", str(self.switch)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        wait_for(f"the {self.name} tool server to listen on {self.port}", self._listening)
        return self

    def _listening(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"the {self.name} tool server exited: {self.log_tail()}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        p = self.proc
        if p is not None and p.poll() is None:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
        self.proc = None

    def mutate(self, on: bool) -> None:
        """Changes (or restores) the definition `lookup` is listed with."""
        if on:
            self.switch.write_text("mutated\n", encoding="utf-8")
        else:
            self.switch.unlink(missing_ok=True)

    def log_tail(self, n: int = 40) -> str:
        if not self.log_file.exists():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-n:])


class StdioUpstream(CallCounts):
    """upstream.py as a local server the operator lists in `[[mcp.stdio]]`
    (as `<name>-local`, for every tenant) and the tenant registers as
    `name`: Warden starts it on first use, speaks to it over its stdin and
    stdout, and gives it `env` as its whole environment. Its stderr is
    discarded; it writes the names of the environment variables it got
    to `environ_file`."""

    def __init__(self, name: str, workdir: Path, env: dict[str, str]) -> None:
        self.name = name
        self.operator_name = f"{name}-local"
        self.env = dict(env)
        self.calls_file = workdir / f"{name}-stdio-calls.json"
        self.environ_file = workdir / f"{name}-stdio-environ.json"

    def operator_entry(self) -> dict[str, Any]:
        """Its `[[mcp.stdio]]` entry in Warden's configuration."""
        return {
            "name": self.operator_name,
            "command": sys.executable,
            "args": [str(UPSTREAM_SERVER), "--stdio", "--name", self.name,
                     "--state", str(self.calls_file), "--environ", str(self.environ_file)],
            "env": self.env,
            "tenants": ["*"],
        }

    def registration(self) -> dict[str, Any]:
        """The body of `PUT /v1/mcp/upstreams/{name}` that registers it."""
        return {"stdio": self.operator_name}

    def environ(self) -> list[str] | None:
        """The names of the environment variables it was started with
        (None before Warden started it)."""
        if not self.environ_file.exists():
            return None
        return list(json.loads(self.environ_file.read_text(encoding="utf-8")))

    def start(self) -> StdioUpstream:
        # Warden starts it (on first use) and stops it.
        return self

    def stop(self) -> None:
        pass

    def log_tail(self, n: int = 40) -> str:
        return "(run by Warden over stdio; its stderr is discarded)"


def stdio_settings(upstreams: list[StdioUpstream]) -> dict[str, str]:
    """The Warden settings that list `upstreams` as `[[mcp.stdio]]`."""
    return {"WARDEN_MCP__STDIO": toml_value([u.operator_entry() for u in upstreams])}


# ---- Warden and its tenant ---------------------------------------------------------------------


@dataclass
class Reviewer:
    token: str
    subject: str


@dataclass
class Gateway:
    """A Warden serving /mcp in front of `bank` and `docs`, with the
    sample gateway policy active and the tokens the tests act with."""

    warden: WardenServer
    admin: warden.Client
    bank: Upstream
    docs: Upstream | StdioUpstream
    #: The revision of the sample gateway policy pushed at the start.
    policy_revision: str = "1"
    #: An agent token bound to `teller`, one bound to `other`.
    teller: str = ""
    other: str = ""
    alice: Reviewer = field(default_factory=lambda: Reviewer("", ""))
    bob: Reviewer = field(default_factory=lambda: Reviewer("", ""))

    @property
    def url(self) -> str:
        return self.warden.url

    @property
    def mcp_url(self) -> str:
        return self.warden.url + "/mcp"

    def mint(self, name: str, roles: list[str], **kw: Any) -> str:
        return str(self.admin.create_token(name, roles, **kw)["token"])

    def put_upstream(self, name: str, body: dict[str, Any]) -> httpx.Response:
        """`PUT /v1/mcp/upstreams/{name}` as the tenant admin (a refusal
        raises `warden.WardenError`)."""
        return self.admin.request("PUT", f"/v1/mcp/upstreams/{name}", json=body)

    def register(self, upstream: Upstream | StdioUpstream) -> dict[str, Any]:
        """`PUT /v1/mcp/upstreams/{name}` as the tenant admin."""
        r = self.put_upstream(upstream.name, upstream.registration())
        assert r.status_code in (200, 201), (r.status_code, r.text)
        return dict(r.json()) if r.content else {}

    def push_bundle(self, data: bytes) -> dict[str, Any]:
        """A gateway bundle pushed as the tenant's `mcp-gateway` and
        activated; its own Rego tests pass."""
        pushed = self.admin.push_bundle(data, POLICY_BUNDLE, activate=True)
        assert pushed.get("tests_passed") is True, pushed.get("tests")
        return pushed

    def push_policy(self) -> dict[str, Any]:
        """The sample gateway policy, built from its directory, pushed and
        activated."""
        assert POLICY_DIR.is_dir(), f"the sample gateway policy is missing: {POLICY_DIR}"
        return self.push_bundle(warden.build_bundle_dir(POLICY_DIR, revision=self.policy_revision))

    def restore_policy(self) -> None:
        """The sample gateway policy active again (after a test pushed another)."""
        self.admin.activate_bundle(POLICY_BUNDLE, self.policy_revision)

    def tool_pin(self, upstream: str, tool: str) -> dict[str, Any]:
        """The tool's entry in `GET /v1/mcp/upstreams/{name}/tools`."""
        doc = self.admin.request("GET", f"/v1/mcp/upstreams/{upstream}/tools").json()
        tools = doc.get("tools", doc) if isinstance(doc, dict) else doc
        found = [t for t in tools if t.get("name") in (tool, f"{upstream}__{tool}")]
        assert len(found) == 1, f"{tool} is not listed once among {upstream}'s pinned tools: {doc}"
        return dict(found[0])

    def accept(self, upstream: str, tool: str) -> None:
        """`POST /v1/mcp/upstreams/{name}/tools/{tool}/accept` as the tenant admin."""
        r = self.admin.request("POST", f"/v1/mcp/upstreams/{upstream}/tools/{tool}/accept", json={})
        assert r.status_code < 300, (r.status_code, r.text)

    def ledger(self) -> tuple[list[dict[str, Any]], verify.ExportReport]:
        """The tenant's ledger, exported and verified offline with the
        Python verifier against the server's keys: its entries and the report."""
        data = self.admin.export()
        report = verify.verify_export(data, self.admin.verifier_keys())
        entries = []
        for line in data.splitlines()[1:]:
            obj = json.loads(line)
            if "kind" in obj and "index" in obj:
                entries.append(obj)
        assert len(entries) == report.entries, (len(entries), report)
        return entries, report

    def audit_events(self) -> list[dict[str, Any]]:
        """The whole audit feed (`GET /v1/audit/events`), in ledger order."""
        out: list[dict[str, Any]] = []
        after = None
        while True:
            page = self.admin.audit_feed(after=after, limit=1000)
            out.extend(item["event"] for item in page.get("events") or [])
            after = page.get("next_after")
            if after is None:
                return out

    def close(self) -> None:
        self.admin.close()
        for u in (self.bank, self.docs):
            u.stop()
        self.warden.stop()


#: The whole environment of a tool server Warden runs over stdio.
STDIO_ENV = {"LANG": "C.UTF-8", "DOCS_TRANSPORT": "stdio"}


def start_gateway(bin_path: Path, workdir: Path, *, stdio_docs: bool = False) -> Gateway:
    """Warden in front of `bank` (over HTTP) and `docs`: over HTTP too, or,
    with `stdio_docs`, the operator's `[[mcp.stdio]]` server `docs-local`
    that Warden runs, registered as `docs`."""
    settings = dict(WARDEN_SETTINGS)
    bank = Upstream("bank", workdir).start()
    docs: Upstream | StdioUpstream
    if stdio_docs:
        docs = StdioUpstream("docs", workdir, STDIO_ENV)
        settings.update(stdio_settings([docs]))
    else:
        docs = Upstream("docs", workdir).start()
    server = WardenServer(bin=bin_path, data_dir=workdir / "warden-data", settings=settings)
    gw = Gateway(warden=server, admin=None, bank=bank, docs=docs)  # type: ignore[arg-type]
    try:
        server.start()
        gw.admin = warden.Client(server.url, server.token)
        gw.register(bank)
        gw.register(docs)
        gw.push_policy()
        gw.teller = gw.mint("teller", ["agent"], agent_ids=[TELLER])
        gw.other = gw.mint("other", ["agent"], agent_ids=[OTHER])
        gw.alice = Reviewer(gw.mint("alice", ["reviewer"], subject="alice@bank.example"), "alice@bank.example")
        gw.bob = Reviewer(gw.mint("bob", ["reviewer"], subject="bob@bank.example"), "bob@bank.example")
    except BaseException:
        if gw.admin is not None:
            gw.admin.close()
        for u in (bank, docs):
            u.stop()
        server.stop()
        raise
    return gw


# ---- agents over MCP ---------------------------------------------------------------------------


@dataclass
class Connection:
    """An MCP session through the gateway: the SDK's client, and the
    session id Warden gave (the `Mcp-Session-Id` it answered with)."""

    client: Client = None  # type: ignore[assignment]
    session_id: str | None = None


@asynccontextmanager
async def connect(url: str, token: str, *, mode: str = "legacy") -> AsyncIterator[Connection]:
    """The SDK's client over streamable HTTP to `url`, with the token as a
    bearer. `mode="legacy"` negotiates with `initialize`; "auto" is what
    a default SDK client does (probes `server/discover` first)."""
    conn = Connection()

    async def remember_session(response: httpx2.Response) -> None:
        sid = response.headers.get("mcp-session-id")
        if sid:
            conn.session_id = sid

    async with httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {token}"},
        timeout=httpx2.Timeout(30.0, read=300.0),
        event_hooks={"response": [remember_session]},
    ) as http:
        client = Client(
            streamable_http_client(url, http_client=http),
            mode=mode,
            cache=None,
            client_info=Implementation(name="warden-mcp-tests", version="1.0.0"),
        )
        async with client:
            conn.client = client
            yield conn


def refused_decision(error: MCPError) -> str:
    """The decision a refused `resources/read` or `prompts/get` names: the
    JSON-RPC error is -32003 and its message names the decision."""
    assert error.code == REFUSED, (error.code, error.message)
    found = re.match(r"Denied by Warden's gateway policy \(decision ([^)\s]+)\): (.+)", error.message)
    assert found is not None and found.group(1) != "none", error.message
    return found.group(1)


def call_entries(entries: list[dict[str, Any]], kind: str, **payload: Any) -> list[dict[str, Any]]:
    """The ledger entries of `kind` whose payload has every given member."""
    return [e for e in entries if e["kind"] == kind and all(e["payload"].get(k) == v for k, v in payload.items())]


def text_of(result: CallToolResult) -> str:
    return "".join(c.text for c in result.content if isinstance(c, TextContent))


def json_text(result: CallToolResult) -> Any:
    texts = [c.text for c in result.content if isinstance(c, TextContent)]
    assert len(texts) == 1, f"expected one text block: {result}"
    return json.loads(texts[0])


def warden_meta(result: CallToolResult | ReadResourceResult | GetPromptResult) -> dict[str, Any]:
    """The result's `_meta.warden`."""
    meta = result.meta or {}
    assert isinstance(meta.get("warden"), dict), f"no _meta.warden in {result.model_dump(by_alias=True)}"
    return dict(meta["warden"])


async def find_review(
    reviewer: warden.AsyncClient, marker: str, *, exclude: frozenset[str] = frozenset(), timeout: float = DEADLINE
) -> dict[str, Any]:
    """The gateway review waiting in `GET /v0/approvals` whose arguments
    hold `marker` (a call's unique account), other than the executions in
    `exclude`."""

    async def probe() -> dict[str, Any] | None:
        waiting = await reviewer.approvals()
        mine = [
            w for w in waiting
            if w["step"]["tool"] == REVIEW_STEP_TOOL
            and marker in json.dumps(w["step"]["arguments"])
            and w["execution_id"] not in exclude
        ]
        assert len(mine) <= 1, f"more than one review waits for {marker}: {mine}"
        return mine[0] if mine else None

    return dict(await await_for(f"a review of the call to {marker} in /v0/approvals", probe, timeout))


async def verdict(reviewer: warden.AsyncClient, review: dict[str, Any], decision: str, reason: str) -> dict[str, Any]:
    """`POST /v0/executions/{id}/approvals` on the review's step, bound to its arguments' hash."""
    step = review["step"]
    return await reviewer.review(review["execution_id"], step["id"], decision, reason, step["args_hash"])  # type: ignore[arg-type]


def values_of(doc: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, scalar value) in a JSON document, at any depth."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            if isinstance(v, (dict, list)):
                yield from values_of(v)
            else:
                yield k, v
    elif isinstance(doc, list):
        for v in doc:
            yield from values_of(v)


def mentions(doc: Any, value: str) -> bool:
    return any(v == value for _, v in values_of(doc))
