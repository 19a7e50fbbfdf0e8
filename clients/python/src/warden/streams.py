"""Agent and runner streams: Server-Sent Events that reconnect by
themselves with ``Last-Event-ID`` and never hand out an event twice."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from types import TracebackType

import httpx

from .errors import WardenError, error_from_response
from .sse import Event, SSEParser

__all__ = ["StreamOptions", "EventStream", "AsyncEventStream"]

RETRYABLE_STATUS = frozenset({408, 429})


@dataclass(frozen=True)
class StreamOptions:
    """How a stream reconnects.

    The first wait is the server's ``retry:`` (when it sent one) or
    ``backoff_initial`` seconds, doubled after each failed attempt up to
    ``backoff_max``, with jitter, and never shorter than a ``Retry-After``.
    ``max_attempts`` bounds consecutive failed attempts (``None``: for
    ever); past it the last error is raised. ``read_timeout`` is the
    longest silence before the connection is taken for dead (Warden sends
    a keep-alive comment every 15 seconds). ``reconnect=False`` ends the
    iteration when the connection ends.
    """

    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    max_attempts: int | None = None
    read_timeout: float | None = 60.0
    connect_timeout: float = 10.0
    reconnect: bool = True
    remember_ids: int = 10_000


class _Retry(Exception):
    def __init__(self, cause: BaseException, retry_after: float | None) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.retry_after = retry_after


class _Core:
    """What the synchronous and asynchronous streams share: the parser,
    the ids already handed out, the back-off."""

    def __init__(self, path: str, params: dict[str, str], last_event_id: str | None, options: StreamOptions) -> None:
        self.path = path
        self.params = params
        self.options = options
        self.parser = SSEParser(last_event_id)
        self.closed = False
        self.failures = 0
        self.reconnects = 0
        self.connections = 0
        self._ids: set[str] = set()
        self._order: deque[str] = deque()
        self._high: int | None = None
        if last_event_id is not None and last_event_id.isdigit():
            self._high = int(last_event_id)

    @property
    def last_event_id(self) -> str | None:
        return self.parser.last_event_id

    def headers(self) -> dict[str, str]:
        h = {"accept": "text/event-stream", "cache-control": "no-cache"}
        if self.parser.last_event_id:
            h["last-event-id"] = self.parser.last_event_id
        return h

    def timeout(self) -> httpx.Timeout:
        o = self.options
        return httpx.Timeout(o.connect_timeout, read=o.read_timeout)

    def seen(self, event_id: str | None) -> bool:
        """Whether an event with this id was already handed out; records it."""
        if event_id is None:
            return False
        if event_id.isdigit() and len(event_id) < 20:
            n = int(event_id)
            if self._high is not None and n <= self._high:
                return True
            self._high = n
        if event_id in self._ids:
            return True
        self._ids.add(event_id)
        self._order.append(event_id)
        if len(self._order) > self.options.remember_ids:
            self._ids.discard(self._order.popleft())
        return False

    def check_status(self, response: httpx.Response, body: bytes) -> None:
        err = error_from_response(response, body)
        if response.status_code >= 500 or response.status_code in RETRYABLE_STATUS:
            raise _Retry(err, err.retry_after)
        raise err

    def next_delay(self, retry_after: float | None) -> float:
        o = self.options
        base = self.parser.retry / 1000.0 if self.parser.retry is not None else o.backoff_initial
        delay = min(o.backoff_max, base * (2 ** max(0, self.failures - 1)))
        delay = delay * random.uniform(0.5, 1.0) if delay > 0 else 0.0
        if retry_after is not None:
            delay = max(delay, min(retry_after, max(o.backoff_max, retry_after)))
        return delay

    def give_up(self, cause: BaseException) -> bool:
        o = self.options
        return o.max_attempts is not None and self.failures >= o.max_attempts


class EventStream(Iterator[Event]):
    """An agent's or runner's stream (synchronous). Iterate it for
    :class:`Event` objects; it reconnects by itself (see
    :class:`StreamOptions`). Use it as a context manager or call
    :meth:`close`. :meth:`open` connects at once (otherwise the first
    iteration does), so a caller can start work knowing the stream is
    registered.
    """

    def __init__(
        self,
        client: httpx.Client,
        path: str,
        params: dict[str, str],
        *,
        last_event_id: str | None = None,
        options: StreamOptions | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._core = _Core(path, params, last_event_id, options or StreamOptions())
        self._sleep = sleep
        self._response: httpx.Response | None = None
        self._lock = threading.Lock()
        self._gen = self._run()

    @property
    def last_event_id(self) -> str | None:
        """The id a reconnection sends as ``Last-Event-ID``."""
        return self._core.last_event_id

    @property
    def reconnects(self) -> int:
        """How many times the stream reconnected."""
        return self._core.reconnects

    def open(self) -> EventStream:
        """Connects now (retrying as configured); raises :class:`WardenError`
        for a refusal such as 401 or 403."""
        if self._response is None:
            self._connect_retrying()
        return self

    def _connect_once(self) -> None:
        core = self._core
        request = self._client.build_request(
            "GET", core.path, params=core.params, headers=core.headers(), timeout=core.timeout()
        )
        try:
            response = self._client.send(request, stream=True)
        except httpx.TransportError as e:
            raise _Retry(e, None) from e
        if response.status_code >= 300:
            try:
                body = response.read()
            except httpx.TransportError:
                body = b""
            finally:
                response.close()
            core.check_status(response, body)
        with self._lock:
            if core.closed:
                response.close()
                return
            self._response = response
        core.connections += 1

    def _connect_retrying(self) -> None:
        core = self._core
        while not core.closed:
            try:
                self._connect_once()
                return
            except _Retry as r:
                core.failures += 1
                if not core.options.reconnect or core.give_up(r.cause):
                    raise r.cause from None
                self._sleep(core.next_delay(r.retry_after))

    def _run(self) -> Iterator[Event]:
        core = self._core
        while not core.closed:
            if self._response is None:
                self._connect_retrying()
                if self._response is None:
                    return
            response = self._response
            delivered = False
            try:
                for chunk in response.iter_bytes():
                    for event, had_id in core.parser.feed(chunk):
                        if had_id and core.seen(event.id):
                            continue
                        delivered = True
                        core.failures = 0
                        yield event
                    if core.closed:
                        return
            except (httpx.TransportError, httpx.StreamError):
                pass
            finally:
                with self._lock:
                    self._response = None
                response.close()
            if core.closed or not core.options.reconnect:
                return
            core.parser.reset_connection()
            core.reconnects += 1
            if not delivered:
                core.failures += 1
                if core.give_up(RuntimeError("stream ended")):
                    raise WardenError(0, "stream_ended", "the stream kept ending without delivering events")
            self._sleep(core.next_delay(None))

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> Event:
        return next(self._gen)

    def close(self) -> None:
        """Ends the stream (safe from another thread)."""
        self._core.closed = True
        with self._lock:
            response = self._response
        if response is not None:
            try:
                response.close()
            except Exception:  # noqa: BLE001 - closing from another thread may race
                pass

    def __enter__(self) -> EventStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncEventStream(AsyncIterator[Event]):
    """The asynchronous :class:`EventStream`: ``async for event in stream``."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        path: str,
        params: dict[str, str],
        *,
        last_event_id: str | None = None,
        options: StreamOptions | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._client = client
        self._core = _Core(path, params, last_event_id, options or StreamOptions())
        self._sleep = sleep
        self._response: httpx.Response | None = None
        self._gen = self._run()

    @property
    def last_event_id(self) -> str | None:
        return self._core.last_event_id

    @property
    def reconnects(self) -> int:
        return self._core.reconnects

    async def open(self) -> AsyncEventStream:
        if self._response is None:
            await self._connect_retrying()
        return self

    async def _connect_once(self) -> None:
        core = self._core
        request = self._client.build_request(
            "GET", core.path, params=core.params, headers=core.headers(), timeout=core.timeout()
        )
        try:
            response = await self._client.send(request, stream=True)
        except httpx.TransportError as e:
            raise _Retry(e, None) from e
        if response.status_code >= 300:
            try:
                body = await response.aread()
            except httpx.TransportError:
                body = b""
            finally:
                await response.aclose()
            core.check_status(response, body)
        if core.closed:
            await response.aclose()
            return
        self._response = response
        core.connections += 1

    async def _connect_retrying(self) -> None:
        core = self._core
        while not core.closed:
            try:
                await self._connect_once()
                return
            except _Retry as r:
                core.failures += 1
                if not core.options.reconnect or core.give_up(r.cause):
                    raise r.cause from None
                await self._sleep(core.next_delay(r.retry_after))

    async def _run(self) -> AsyncGenerator[Event, None]:
        core = self._core
        while not core.closed:
            if self._response is None:
                await self._connect_retrying()
                if self._response is None:
                    return
            response = self._response
            delivered = False
            try:
                async for chunk in response.aiter_bytes():
                    for event, had_id in core.parser.feed(chunk):
                        if had_id and core.seen(event.id):
                            continue
                        delivered = True
                        core.failures = 0
                        yield event
                    if core.closed:
                        return
            except (httpx.TransportError, httpx.StreamError):
                pass
            finally:
                self._response = None
                await response.aclose()
            if core.closed or not core.options.reconnect:
                return
            core.parser.reset_connection()
            core.reconnects += 1
            if not delivered:
                core.failures += 1
                if core.give_up(RuntimeError("stream ended")):
                    raise WardenError(0, "stream_ended", "the stream kept ending without delivering events")
            await self._sleep(core.next_delay(None))

    def __aiter__(self) -> AsyncEventStream:
        return self

    async def __anext__(self) -> Event:
        return await self._gen.__anext__()

    async def aclose(self) -> None:
        """Ends the stream."""
        self._core.closed = True
        response = self._response
        if response is not None:
            await response.aclose()
        try:
            await self._gen.aclose()
        except RuntimeError:  # the generator is running in another task
            pass

    async def __aenter__(self) -> AsyncEventStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
