"""The asynchronous client: the same methods as :class:`warden.Client`, awaited."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import IO, Any, TypeVar

import httpx

from . import _calls as c
from ._calls import UNSET, ReportStatus, Verdict
from .errors import error_from_response
from .client import DEFAULT_TIMEOUT, _base_headers
from .models import Decision
from .streams import AsyncEventStream, StreamOptions

__all__ = ["AsyncClient"]

T = TypeVar("T")


class AsyncClient:
    """The asynchronous :class:`warden.Client`: the same methods, each a
    coroutine (streams are async iterators). Use ``async with`` or
    :meth:`aclose`.

    ``url`` is the server's base URL (``http://127.0.0.1:8181``), ``token``
    a token minted by ``POST /v1/tokens`` (or the bootstrap token).
    ``timeout`` bounds each request (connect, read, write); streams use
    :class:`StreamOptions` instead. ``transport`` replaces the network
    (e.g. ``httpx.MockTransport`` in tests).

    Every non-2xx answer raises :class:`warden.WardenError` (a subclass by
    status class) carrying the problem's ``code``.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        stream_options: StreamOptions | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.stream_options = stream_options or StreamOptions()
        self._http = httpx.AsyncClient(
            base_url=self.url,
            headers=_base_headers(token, headers),
            timeout=timeout,
            transport=transport,
        )

    # ---- plumbing -----------------------------------------------------------

    @property
    def http(self) -> httpx.AsyncClient:
        """The underlying ``httpx.Client``."""
        return self._http

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _send(self, call: c.Call[T]) -> T:
        response = await self._http.request(
            call.method, call.path, params=call.params, content=call.body, headers=call.headers()
        )
        if response.status_code >= 300:
            raise error_from_response(response)
        return call.parse(response)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = UNSET,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Any route: raises :class:`WardenError` on a non-2xx answer."""
        h = dict(headers or {})
        body = content
        if json is not UNSET:
            body = c.dumps(json)
            h.setdefault("content-type", "application/json")
        query = {k: c._param(v) for k, v in (params or {}).items() if v is not None}
        response = await self._http.request(method, path, params=query or None, content=body, headers=h)
        if response.status_code >= 300:
            raise error_from_response(response)
        return response

    async def health(self) -> dict[str, Any]:
        """``GET /health``."""
        return await self._send(c.health())

    # ---- decisions ------------------------------------------------------------

    async def decide(
        self,
        path: str,
        input: Any = UNSET,
        *,
        context: dict[str, Any] | None = None,
        bundle: str | Mapping[str, Any] | None = None,
        revision: str | None = None,
    ) -> Decision:
        """``POST /v1/decisions``: evaluates a rule or package path.

        Leave ``input`` out for an undefined input (``None`` sends null).
        ``context`` is kept with the decision, unseen by the policy;
        ``bundle`` (and ``revision``) pin a version instead of the active one.
        """
        return await self._send(c.decide(path, input, context, bundle, revision))

    async def data(
        self,
        path: str,
        input: Any = None,
        *,
        pretty: bool = False,
        metrics: bool = False,
        provenance: bool = False,
    ) -> dict[str, Any]:
        """OPA's data API, ``POST /v1/data/{path}``: the whole answer,
        ``{"result": …, "decision_id": …}`` (no ``result`` when undefined)."""
        return await self._send(c.data(path, input, pretty, metrics, provenance))

    async def replay(self, decision_id: str) -> dict[str, Any]:
        """``POST /v1/decisions/{id}/replay``: ``match`` and the differences."""
        return await self._send(c.replay(decision_id))

    async def impact(
        self,
        bundle: str,
        revision: str,
        *,
        filter: Mapping[str, Any] | None = None,
        after: int | None = None,
        limit: int | None = None,
        max_scan: int | None = None,
    ) -> dict[str, Any]:
        """``POST /v1/impact``: past decisions a candidate revision would flip."""
        return await self._send(c.impact(bundle, revision, filter, after, limit, max_scan))

    # ---- audit ----------------------------------------------------------------

    async def audit(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /v1/audit/events`` with one event: ``{accepted, duplicates, events}``."""
        return await self._send(c.audit(event))

    async def audit_batch(self, events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """``POST /v1/audit/events`` with a JSON array: all recorded or none."""
        return await self._send(c.audit_batch(events))

    async def audit_feed(self, *, after: int | None = None, limit: int | None = None) -> dict[str, Any]:
        """``GET /v1/audit/events``: one page of the audit feed."""
        return await self._send(c.audit_feed(after, limit))

    # ---- bundles --------------------------------------------------------------

    async def push_bundle(self, data: bytes, name: str, *, activate: bool = False, force: bool = False) -> dict[str, Any]:
        """``PUT /v1/bundles/{name}`` (an OPA bundle, ``.tar.gz``); with
        ``activate``, then activates the uploaded revision (``force``:
        even though its Rego tests failed) and adds the activation's answer
        under ``"activation"``."""
        uploaded = await self._send(c.upload_bundle(data, name))
        if activate:
            uploaded["activation"] = await self._send(c.activate_bundle(name, str(uploaded["revision"]), force))
        return uploaded

    async def activate_bundle(self, name: str, revision: str, *, force: bool = False) -> dict[str, Any]:
        """``POST /v1/bundles/{name}/activate``."""
        return await self._send(c.activate_bundle(name, revision, force))

    async def rollback_bundle(self, name: str, revision: str | None = None, *, force: bool = False) -> dict[str, Any]:
        """``POST /v1/bundles/{name}/rollback``: to the previous (or the named) revision."""
        return await self._send(c.rollback_bundle(name, revision, force))

    async def list_bundles(self) -> list[dict[str, Any]]:
        """``GET /v1/bundles``."""
        return await self._send(c.list_bundles())

    async def get_bundle(self, name: str) -> dict[str, Any]:
        """``GET /v1/bundles/{name}``: its versions and the active one."""
        return await self._send(c.get_bundle(name))

    async def bundle_version(self, name: str, revision: str) -> dict[str, Any]:
        """``GET /v1/bundles/{name}/revisions/{revision}``, with its test report."""
        return await self._send(c.bundle_version(name, revision))

    async def bundle_content(self, name: str, revision: str) -> bytes:
        """The stored bundle's bytes."""
        return await self._send(c.bundle_content(name, revision))

    # ---- ledger ---------------------------------------------------------------

    async def ledger_keys(self) -> list[dict[str, Any]]:
        """``GET /v1/ledger/keys``: every signing key, current and retired,
        each with its ``verifier`` text."""
        return await self._send(c.ledger_keys())

    async def verifier_keys(self) -> list[str]:
        """The ``verifier`` texts of :meth:`ledger_keys`."""
        return [str(k["verifier"]) for k in await self.ledger_keys()]

    async def checkpoint(self) -> dict[str, Any]:
        """``GET /v1/ledger/checkpoint``: the latest signed checkpoint."""
        return await self._send(c.checkpoint())

    async def ledger_entry(self, index: int, *, tree_size: int | None = None) -> dict[str, Any]:
        """``GET /v1/ledger/entries/{index}``: the entry's bytes and inclusion proof."""
        return await self._send(c.ledger_entry(index, tree_size))

    async def consistency(self, first: int, second: int) -> dict[str, Any]:
        """``GET /v1/ledger/consistency?from=&to=``."""
        return await self._send(c.consistency(first, second))

    async def export(self, *, from_index: int | None = None, to_index: int | None = None) -> bytes:
        """``GET /v1/ledger/export``: the evidence file (NDJSON) in memory.
        Verify it with :func:`warden.verify.verify_export`."""
        return await self._send(c.export(from_index, to_index))

    async def export_to(
        self,
        file: str | os.PathLike[str] | IO[bytes],
        *,
        from_index: int | None = None,
        to_index: int | None = None,
    ) -> int:
        """Streams the evidence file to a path or binary file; returns its size."""
        call = c.export(from_index, to_index)
        async with self._http.stream("GET", call.path, params=call.params) as response:
            if response.status_code >= 300:
                await response.aread()
                raise error_from_response(response)
            if isinstance(file, (str, os.PathLike)):
                with open(file, "wb") as f:
                    return await _copy(response.aiter_bytes(), f)
            return await _copy(response.aiter_bytes(), file)

    async def rotate_ledger_key(self) -> dict[str, Any]:
        """``POST /v1/ledger/keys/rotate`` (platform admin)."""
        return await self._send(c.rotate_ledger_key())

    # ---- tokens and tenants -----------------------------------------------------

    async def create_token(
        self,
        name: str,
        roles: Sequence[str],
        *,
        subject: str | None = None,
        agent_ids: Sequence[str] | None = None,
        runner_ids: Sequence[str] | None = None,
        ttl_seconds: int | None = None,
        expires_at: str | None = None,
    ) -> dict[str, Any]:
        """``POST /v1/tokens``: the answer holds the secret in ``token`` (shown once)."""
        return await self._send(c.create_token(name, roles, subject, agent_ids, runner_ids, ttl_seconds, expires_at))

    async def list_tokens(self) -> list[dict[str, Any]]:
        return await self._send(c.list_tokens())

    async def whoami(self) -> dict[str, Any]:
        """``GET /v1/whoami``: this client's token as the server knows it
        (id, tenant, roles, subject, agent and runner bindings, expiry)."""
        return await self._send(c.whoami())

    async def revoke_token(self, token_id: str) -> None:
        await self._send(c.revoke_token(token_id))

    # ---- MCP gateway (docs/mcp.md) -------------------------------------

    async def put_mcp_upstream(
        self, name: str, *, url: str | None = None, stdio: str | None = None, bearer_token: str | None = None
    ) -> dict[str, Any]:
        """``PUT /v1/mcp/upstreams/{name}`` (admin): a tool server at ``url``,
        or a local one the operator allows (``stdio``); ``version`` 1 when new."""
        return await self._send(c.put_mcp_upstream(name, url, stdio, bearer_token))

    async def mcp_upstreams(self) -> list[dict[str, Any]]:
        """``GET /v1/mcp/upstreams``: the tenant's tool servers (tokens never shown)."""
        return await self._send(c.mcp_upstreams())

    async def delete_mcp_upstream(self, name: str) -> None:
        """``DELETE /v1/mcp/upstreams/{name}`` (admin)."""
        await self._send(c.delete_mcp_upstream(name))

    async def mcp_upstream_tools(self, name: str) -> list[dict[str, Any]]:
        """``GET /v1/mcp/upstreams/{name}/tools``: pinned definitions, and which changed."""
        return await self._send(c.mcp_upstream_tools(name))

    async def accept_mcp_tool(self, name: str, tool: str) -> dict[str, Any]:
        """``POST /v1/mcp/upstreams/{name}/tools/{tool}/accept`` (admin): the
        changed definition becomes the pin."""
        return await self._send(c.accept_mcp_tool(name, tool))

    async def create_tenant(self, name: str) -> dict[str, Any]:
        """``POST /v1/tenants`` (platform admin): returns its first admin token."""
        return await self._send(c.create_tenant(name))

    # ---- kernel -----------------------------------------------------------------

    async def create_execution(
        self,
        agent_id: str,
        input: Any = None,
        *,
        labels: Mapping[str, Any] | None = None,
        timeout_seconds: int | None = None,
    ) -> dict[str, Any]:
        """``POST /v0/executions``: the execution, with its ``receipts``."""
        return await self._send(c.create_execution(agent_id, input, labels, timeout_seconds))

    async def executions(
        self, *, state: str | None = None, agent_id: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """``GET /v0/executions``: the tenant's executions, newest first, without their steps."""
        return await self._send(c.executions(state, agent_id, limit))

    async def execution(self, execution_id: str) -> dict[str, Any]:
        """``GET /v0/executions/{id}``: with every step attempt."""
        return await self._send(c.execution(execution_id))

    async def execution_history(self, execution_id: str) -> dict[str, Any]:
        """``GET /v0/executions/{id}/history``: each transition with its ledger index."""
        return await self._send(c.execution_history(execution_id))

    async def cancel_execution(self, execution_id: str, reason: str | None = None) -> dict[str, Any]:
        return await self._send(c.cancel_execution(execution_id, reason))

    async def signal_execution(self, execution_id: str, payload: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Resumes an execution waiting after a ``wait`` intent."""
        return await self._send(c.signal_execution(execution_id, payload))

    async def intent(self, execution_id: str, type: str, **fields: Any) -> dict[str, Any]:
        """``POST /v0/agents/intent``: ``type`` is ``invoke_tool`` (``tool``,
        ``arguments``, ``remote``, ``idempotent``, ``timeout_seconds``,
        ``retry``), ``complete`` (``output``), ``fail`` (``output`` or
        ``error``) or ``wait`` (``timeout_seconds``). A denied tool call
        raises :class:`warden.IntentDenied`."""
        return await self._send(c.intent(execution_id, type, fields))

    async def step_result(
        self,
        step_id: str,
        status: ReportStatus,
        *,
        output: Any = None,
        error: Any = None,
        retryable: bool | None = None,
    ) -> dict[str, Any]:
        """``POST /v0/agents/step-result``: a local step's report."""
        return await self._send(c.step_result(step_id, status, output, error, retryable))

    async def runner_result(
        self,
        runner_id: str,
        step_id: str,
        status: ReportStatus,
        *,
        output: Any = None,
        error: Any = None,
        retryable: bool | None = None,
    ) -> dict[str, Any]:
        """``POST /v0/runners/{id}/results``: a remote job's report."""
        return await self._send(c.runner_result(runner_id, step_id, status, output, error, retryable))

    async def approvals(self) -> list[dict[str, Any]]:
        """``GET /v0/approvals``: the steps waiting for review."""
        return await self._send(c.approvals())

    async def review(
        self, execution_id: str, step_id: str, decision: Verdict, reason: str, args_hash: str
    ) -> dict[str, Any]:
        """``POST /v0/executions/{id}/approvals``: a verdict bound to ``args_hash``."""
        return await self._send(c.review(execution_id, step_id, decision, reason, args_hash))

    # ---- streams ----------------------------------------------------------------

    def agent_stream(
        self,
        agent_id: str | None = None,
        *,
        last_event_id: str | None = None,
        options: StreamOptions | None = None,
    ) -> AsyncEventStream:
        """``GET /v0/agents/stream``: ``execution.assigned``, ``step.assigned``,
        ``step.result``, ... as :class:`warden.Event`. ``last_event_id="0"``
        replays every message kept for the agent."""
        return AsyncEventStream(
            self._http,
            "/v0/agents/stream",
            c.agent_stream_params(agent_id),
            last_event_id=last_event_id,
            options=options or self.stream_options,
        )

    def runner_stream(
        self,
        runner_id: str | None = None,
        *,
        tools: str | Sequence[str],
        non_idempotent: str | Sequence[str] | None = None,
        last_event_id: str | None = None,
        options: StreamOptions | None = None,
    ) -> AsyncEventStream:
        """``GET /v0/runners/stream``: ``job.assigned``, ``job.cancelled``."""
        return AsyncEventStream(
            self._http,
            "/v0/runners/stream",
            c.runner_stream_params(runner_id, tools, non_idempotent),
            last_event_id=last_event_id,
            options=options or self.stream_options,
        )


async def _copy(chunks: Any, f: IO[bytes]) -> int:
    n = 0
    async for chunk in chunks:
        f.write(chunk)
        n += len(chunk)
    return n
