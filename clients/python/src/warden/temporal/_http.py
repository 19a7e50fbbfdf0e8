"""The few Warden routes the Temporal integration calls, over httpx.

Kept here (and not taken from :mod:`warden`'s client) so the worker-side
code owns its timeouts, its retry classification and its agent stream's
reconnection. Never imported by workflow code: only by activities, the
activity interceptor and the plugin, which run outside the sandbox.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any, AsyncIterator, Mapping

import httpx

log = logging.getLogger("warden.temporal")

# Statuses worth trying again: Warden said "not now" (503, 429), or the
# answer was lost (408, 502, 504).
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class WardenHTTPError(Exception):
    """A Warden answer that is not a success: ``status``, ``code`` and the
    RFC 9457 ``problem`` document (``{}`` when the body was not one)."""

    def __init__(self, status: int, code: str, problem: Mapping[str, Any]):
        detail = problem.get("detail") or problem.get("title") or ""
        super().__init__(f"warden answered {status} {code}: {detail}")
        self.status = status
        self.code = code
        self.problem = dict(problem)

    @property
    def retryable(self) -> bool:
        """Worth trying again: Warden is busy or away, or the execution
        waits for its agent's stream to come back (`not_assigned`)."""
        return self.status in RETRYABLE_STATUSES or self.code == "not_assigned"


@dataclass(frozen=True)
class StreamEvent:
    id: str | None
    event: str
    data: Any


class WardenHTTP:
    """One Warden base URL and one bearer token."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self._timeout = timeout
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _http(self) -> httpx.AsyncClient:
        # One pooled client per event loop (activities may run on another
        # loop than the one that built this object, e.g. in tests).
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = httpx.AsyncClient(
                base_url=self.url,
                headers={"authorization": f"Bearer {self._token}"},
                timeout=self._timeout,
                transport=self._transport,
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
            )
            self._loop = loop
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            try:
                await self._client.aclose()
            except RuntimeError:
                pass
            self._client = None

    async def request(self, method: str, path: str, body: Any = None, params: Mapping[str, Any] | None = None) -> Any:
        content = None
        headers = {}
        if body is not None:
            content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
            headers["content-type"] = "application/json"
        resp = await self._http().request(method, path, content=content, headers=headers, params=params)
        if resp.status_code >= 400:
            raise _problem(resp)
        if not resp.content:
            return None
        return resp.json()

    # -- kernel -----------------------------------------------------------

    async def create_execution(self, agent_id: str, input: Any, labels: Mapping[str, Any] | None = None,
                               timeout_seconds: int | None = None) -> dict:
        body: dict[str, Any] = {"agent_id": agent_id, "input": input, "labels": dict(labels or {})}
        if timeout_seconds is not None:
            body["timeout_seconds"] = timeout_seconds
        return await self.request("POST", "/v0/executions", body)

    async def execution(self, execution_id: str) -> dict:
        return await self.request("GET", f"/v0/executions/{execution_id}")

    async def execution_history(self, execution_id: str) -> list:
        doc = await self.request("GET", f"/v0/executions/{execution_id}/history")
        return doc.get("entries", []) if isinstance(doc, dict) else doc

    async def cancel_execution(self, execution_id: str, reason: str) -> dict:
        return await self.request("POST", f"/v0/executions/{execution_id}/cancel", {"reason": reason})

    async def intent(self, execution_id: str, type: str, **fields: Any) -> dict:
        body = {"execution_id": execution_id, "type": type}
        body.update({k: v for k, v in fields.items() if v is not None})
        return await self.request("POST", "/v0/agents/intent", body)

    async def step_result(self, step_id: str, status: str, *, output: Any = None, error: Any = None,
                          retryable: bool | None = None) -> dict:
        body: dict[str, Any] = {"step_id": step_id, "status": status}
        if output is not None:
            body["output"] = output
        if error is not None:
            body["error"] = error
        if retryable is not None:
            body["retryable"] = retryable
        return await self.request("POST", "/v0/agents/step-result", body)

    # -- audit ------------------------------------------------------------

    async def audit_batch(self, events: list[dict]) -> Any:
        return await self.request("POST", "/v1/audit/events", events)

    # -- the agent stream -------------------------------------------------

    async def agent_stream(self, agent_id: str, *, last_event_id: str | None = None,
                           stop: asyncio.Event | None = None,
                           on_open: Any = None) -> AsyncIterator[StreamEvent]:
        """The agent's SSE stream, reconnecting with ``Last-Event-ID`` for
        ever (with back-off) until ``stop`` is set or the consumer stops."""
        delay = 0.2
        while stop is None or not stop.is_set():
            headers = {"accept": "text/event-stream"}
            if last_event_id is not None:
                headers["last-event-id"] = last_event_id
            try:
                async with self._http().stream(
                    "GET", "/v0/agents/stream", params={"agent_id": agent_id}, headers=headers,
                    timeout=httpx.Timeout(self._timeout, read=None),
                ) as resp:
                    if resp.status_code >= 400:
                        await resp.aread()
                        err = _problem(resp)
                        if not err.retryable and err.status not in (401, 403, 409):
                            raise err
                        log.warning("warden agent stream refused (%s); retrying", err)
                    else:
                        delay = 0.2
                        if on_open is not None:
                            on_open()
                        async for ev in _parse_sse(resp):
                            if ev.id is not None:
                                last_event_id = ev.id
                            yield ev
            except (httpx.TransportError, httpx.StreamError) as e:
                log.info("warden agent stream dropped (%s); reconnecting", e)
            if stop is not None and stop.is_set():
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)


async def _parse_sse(resp: httpx.Response) -> AsyncIterator[StreamEvent]:
    event_id: str | None = None
    event = "message"
    data: list[str] = []
    async for line in resp.aiter_lines():
        if line == "":
            if data or event != "message":
                raw = "\n".join(data)
                try:
                    value: Any = json.loads(raw) if raw else None
                except ValueError:
                    value = raw
                yield StreamEvent(event_id, event, value)
            event, data = "message", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "id":
            event_id = value
        elif field == "event":
            event = value
        elif field == "data":
            data.append(value)


def _problem(resp: httpx.Response) -> WardenHTTPError:
    try:
        doc = resp.json()
        if not isinstance(doc, dict):
            doc = {"detail": str(doc)}
    except ValueError:
        doc = {"detail": resp.text[:500]}
    return WardenHTTPError(resp.status_code, str(doc.get("code") or f"http_{resp.status_code}"), doc)
