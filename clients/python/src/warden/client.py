"""The synchronous client."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import IO, Any, TypeVar

import httpx

from . import _calls as c
from ._calls import UNSET, ReportStatus, Verdict
from ._version import __version__
from .errors import error_from_response
from .models import Decision
from .streams import EventStream, StreamOptions

__all__ = ["Client", "DEFAULT_TIMEOUT"]

T = TypeVar("T")
DEFAULT_TIMEOUT = 10.0


def _base_headers(token: str, extra: Mapping[str, str] | None) -> dict[str, str]:
    headers = {
        "authorization": f"Bearer {token}",
        "accept": "application/json",
        "user-agent": f"warden-client-python/{__version__}",
    }
    if extra:
        headers.update(extra)
    return headers


class Client:
    """A client of one Warden server, acting with one bearer token.

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
        transport: httpx.BaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        stream_options: StreamOptions | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.stream_options = stream_options or StreamOptions()
        self._http = httpx.Client(
            base_url=self.url,
            headers=_base_headers(token, headers),
            timeout=timeout,
            transport=transport,
        )

    # ---- plumbing -----------------------------------------------------------

    @property
    def http(self) -> httpx.Client:
        """The underlying ``httpx.Client``."""
        return self._http

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _send(self, call: c.Call[T]) -> T:
        response = self._http.request(
            call.method, call.path, params=call.params, content=call.body, headers=call.headers()
        )
        if response.status_code >= 300:
            raise error_from_response(response)
        return call.parse(response)

    def request(
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
        response = self._http.request(method, path, params=query or None, content=body, headers=h)
        if response.status_code >= 300:
            raise error_from_response(response)
        return response

    def health(self) -> dict[str, Any]:
        """``GET /health``."""
        return self._send(c.health())

    # ---- decisions ------------------------------------------------------------

    def decide(
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
        return self._send(c.decide(path, input, context, bundle, revision))

    def data(
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
        return self._send(c.data(path, input, pretty, metrics, provenance))

    def replay(self, decision_id: str) -> dict[str, Any]:
        """``POST /v1/decisions/{id}/replay``: ``match`` and the differences."""
        return self._send(c.replay(decision_id))

    def impact(
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
        return self._send(c.impact(bundle, revision, filter, after, limit, max_scan))

    # ---- audit ----------------------------------------------------------------

    def audit(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /v1/audit/events`` with one event: ``{accepted, duplicates, events}``."""
        return self._send(c.audit(event))

    def audit_batch(self, events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """``POST /v1/audit/events`` with a JSON array: all recorded or none."""
        return self._send(c.audit_batch(events))

    def audit_feed(self, *, after: int | None = None, limit: int | None = None) -> dict[str, Any]:
        """``GET /v1/audit/events``: one page of the audit feed."""
        return self._send(c.audit_feed(after, limit))

    # ---- bundles --------------------------------------------------------------

    def push_bundle(self, data: bytes, name: str, *, activate: bool = False, force: bool = False) -> dict[str, Any]:
        """``PUT /v1/bundles/{name}`` (an OPA bundle, ``.tar.gz``); with
        ``activate``, then activates the uploaded revision (``force``:
        even though its Rego tests failed) and adds the activation's answer
        under ``"activation"``."""
        uploaded = self._send(c.upload_bundle(data, name))
        if activate:
            uploaded["activation"] = self._send(c.activate_bundle(name, str(uploaded["revision"]), force))
        return uploaded

    def activate_bundle(self, name: str, revision: str, *, force: bool = False) -> dict[str, Any]:
        """``POST /v1/bundles/{name}/activate``."""
        return self._send(c.activate_bundle(name, revision, force))

    def rollback_bundle(self, name: str, revision: str | None = None, *, force: bool = False) -> dict[str, Any]:
        """``POST /v1/bundles/{name}/rollback``: to the previous (or the named) revision."""
        return self._send(c.rollback_bundle(name, revision, force))

    def list_bundles(self) -> list[dict[str, Any]]:
        """``GET /v1/bundles``."""
        return self._send(c.list_bundles())

    def get_bundle(self, name: str) -> dict[str, Any]:
        """``GET /v1/bundles/{name}``: its versions and the active one."""
        return self._send(c.get_bundle(name))

    def bundle_version(self, name: str, revision: str) -> dict[str, Any]:
        """``GET /v1/bundles/{name}/revisions/{revision}``, with its test report."""
        return self._send(c.bundle_version(name, revision))

    def bundle_content(self, name: str, revision: str) -> bytes:
        """The stored bundle's bytes."""
        return self._send(c.bundle_content(name, revision))

    # ---- ledger ---------------------------------------------------------------

    def ledger_keys(self) -> list[dict[str, Any]]:
        """``GET /v1/ledger/keys``: every signing key, current and retired,
        each with its ``verifier`` text."""
        return self._send(c.ledger_keys())

    def verifier_keys(self) -> list[str]:
        """The ``verifier`` texts of :meth:`ledger_keys`."""
        return [str(k["verifier"]) for k in self.ledger_keys()]

    def checkpoint(self) -> dict[str, Any]:
        """``GET /v1/ledger/checkpoint``: the latest signed checkpoint."""
        return self._send(c.checkpoint())

    def ledger_entry(self, index: int, *, tree_size: int | None = None) -> dict[str, Any]:
        """``GET /v1/ledger/entries/{index}``: the entry's bytes and inclusion proof."""
        return self._send(c.ledger_entry(index, tree_size))

    def consistency(self, first: int, second: int) -> dict[str, Any]:
        """``GET /v1/ledger/consistency?from=&to=``."""
        return self._send(c.consistency(first, second))

    def export(self, *, from_index: int | None = None, to_index: int | None = None) -> bytes:
        """``GET /v1/ledger/export``: the evidence file (NDJSON) in memory.
        Verify it with :func:`warden.verify.verify_export`."""
        return self._send(c.export(from_index, to_index))

    def export_to(
        self,
        file: str | os.PathLike[str] | IO[bytes],
        *,
        from_index: int | None = None,
        to_index: int | None = None,
    ) -> int:
        """Streams the evidence file to a path or binary file; returns its size."""
        call = c.export(from_index, to_index)
        with self._http.stream("GET", call.path, params=call.params) as response:
            if response.status_code >= 300:
                response.read()
                raise error_from_response(response)
            if isinstance(file, (str, os.PathLike)):
                with open(file, "wb") as f:
                    return _copy(response.iter_bytes(), f)
            return _copy(response.iter_bytes(), file)

    def rotate_ledger_key(self) -> dict[str, Any]:
        """``POST /v1/ledger/keys/rotate`` (platform admin)."""
        return self._send(c.rotate_ledger_key())

    # ---- tokens and tenants -----------------------------------------------------

    def create_token(
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
        return self._send(c.create_token(name, roles, subject, agent_ids, runner_ids, ttl_seconds, expires_at))

    def list_tokens(self) -> list[dict[str, Any]]:
        return self._send(c.list_tokens())

    def whoami(self) -> dict[str, Any]:
        """``GET /v1/whoami``: this client's token as the server knows it
        (id, tenant, roles, subject, agent and runner bindings, expiry)."""
        return self._send(c.whoami())

    def revoke_token(self, token_id: str) -> None:
        self._send(c.revoke_token(token_id))

    # ---- MCP gateway (docs/mcp.md) -------------------------------------

    def put_mcp_upstream(
        self, name: str, *, url: str | None = None, stdio: str | None = None, bearer_token: str | None = None
    ) -> dict[str, Any]:
        """``PUT /v1/mcp/upstreams/{name}`` (admin): a tool server at ``url``,
        or a local one the operator allows (``stdio``); ``version`` 1 when new."""
        return self._send(c.put_mcp_upstream(name, url, stdio, bearer_token))

    def mcp_upstreams(self) -> list[dict[str, Any]]:
        """``GET /v1/mcp/upstreams``: the tenant's tool servers (tokens never shown)."""
        return self._send(c.mcp_upstreams())

    def delete_mcp_upstream(self, name: str) -> None:
        """``DELETE /v1/mcp/upstreams/{name}`` (admin)."""
        self._send(c.delete_mcp_upstream(name))

    def mcp_upstream_tools(self, name: str) -> list[dict[str, Any]]:
        """``GET /v1/mcp/upstreams/{name}/tools``: pinned definitions, and which changed."""
        return self._send(c.mcp_upstream_tools(name))

    def accept_mcp_tool(self, name: str, tool: str) -> dict[str, Any]:
        """``POST /v1/mcp/upstreams/{name}/tools/{tool}/accept`` (admin): the
        changed definition becomes the pin."""
        return self._send(c.accept_mcp_tool(name, tool))

    def create_tenant(self, name: str) -> dict[str, Any]:
        """``POST /v1/tenants`` (platform admin): returns its first admin token."""
        return self._send(c.create_tenant(name))

    # ---- kernel -----------------------------------------------------------------

    def create_execution(
        self,
        agent_id: str,
        input: Any = None,
        *,
        labels: Mapping[str, Any] | None = None,
        timeout_seconds: int | None = None,
    ) -> dict[str, Any]:
        """``POST /v0/executions``: the execution, with its ``receipts``."""
        return self._send(c.create_execution(agent_id, input, labels, timeout_seconds))

    def executions(
        self, *, state: str | None = None, agent_id: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """``GET /v0/executions``: the tenant's executions, newest first, without their steps."""
        return self._send(c.executions(state, agent_id, limit))

    def execution(self, execution_id: str) -> dict[str, Any]:
        """``GET /v0/executions/{id}``: with every step attempt."""
        return self._send(c.execution(execution_id))

    def execution_history(self, execution_id: str) -> dict[str, Any]:
        """``GET /v0/executions/{id}/history``: each transition with its ledger index."""
        return self._send(c.execution_history(execution_id))

    def cancel_execution(self, execution_id: str, reason: str | None = None) -> dict[str, Any]:
        return self._send(c.cancel_execution(execution_id, reason))

    def signal_execution(self, execution_id: str, payload: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Resumes an execution waiting after a ``wait`` intent."""
        return self._send(c.signal_execution(execution_id, payload))

    def intent(self, execution_id: str, type: str, **fields: Any) -> dict[str, Any]:
        """``POST /v0/agents/intent``: ``type`` is ``invoke_tool`` (``tool``,
        ``arguments``, ``remote``, ``idempotent``, ``timeout_seconds``,
        ``retry``), ``complete`` (``output``), ``fail`` (``output`` or
        ``error``) or ``wait`` (``timeout_seconds``). A denied tool call
        raises :class:`warden.IntentDenied`."""
        return self._send(c.intent(execution_id, type, fields))

    def step_result(
        self,
        step_id: str,
        status: ReportStatus,
        *,
        output: Any = None,
        error: Any = None,
        retryable: bool | None = None,
    ) -> dict[str, Any]:
        """``POST /v0/agents/step-result``: a local step's report."""
        return self._send(c.step_result(step_id, status, output, error, retryable))

    def runner_result(
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
        return self._send(c.runner_result(runner_id, step_id, status, output, error, retryable))

    def approvals(self) -> list[dict[str, Any]]:
        """``GET /v0/approvals``: the steps waiting for review."""
        return self._send(c.approvals())

    def review(
        self, execution_id: str, step_id: str, decision: Verdict, reason: str, args_hash: str
    ) -> dict[str, Any]:
        """``POST /v0/executions/{id}/approvals``: a verdict bound to ``args_hash``."""
        return self._send(c.review(execution_id, step_id, decision, reason, args_hash))

    # ---- streams ----------------------------------------------------------------

    def agent_stream(
        self,
        agent_id: str | None = None,
        *,
        last_event_id: str | None = None,
        options: StreamOptions | None = None,
    ) -> EventStream:
        """``GET /v0/agents/stream``: ``execution.assigned``, ``step.assigned``,
        ``step.result``, ... as :class:`warden.Event`. ``last_event_id="0"``
        replays every message kept for the agent."""
        return EventStream(
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
    ) -> EventStream:
        """``GET /v0/runners/stream``: ``job.assigned``, ``job.cancelled``."""
        return EventStream(
            self._http,
            "/v0/runners/stream",
            c.runner_stream_params(runner_id, tools, non_idempotent),
            last_event_id=last_event_id,
            options=options or self.stream_options,
        )


def _copy(chunks: Any, f: IO[bytes]) -> int:
    n = 0
    for chunk in chunks:
        f.write(chunk)
        n += len(chunk)
    return n
