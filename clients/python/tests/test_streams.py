"""Streams reconnect with Last-Event-ID after a drop or a 5xx, with
back-off, and never hand out an event twice."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

import warden
from warden import StreamOptions

FAST = StreamOptions(backoff_initial=0.01, backoff_max=0.05, read_timeout=5.0)


class Script:
    """A fake agent stream: each connection plays the next act."""

    def __init__(self, acts: list[tuple[int, list[bytes], bool]]) -> None:
        self.acts = acts
        self.last_event_ids: list[str | None] = []
        self.paths: list[str] = []

    def act(self, request: httpx.Request) -> tuple[int, list[bytes], bool]:
        self.last_event_ids.append(request.headers.get("last-event-id"))
        self.paths.append(str(request.url))
        i = len(self.last_event_ids) - 1
        if i >= len(self.acts):
            # nothing more to say: hold the connection with keep-alives only
            return 200, [b": keep-alive\n\n"], False
        return self.acts[i]


class SyncBody(httpx.SyncByteStream):
    def __init__(self, chunks: list[bytes], drop: bool) -> None:
        self.chunks, self.drop = chunks, drop

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks
        if self.drop:
            raise httpx.ReadError("connection reset by peer")


class AsyncBody(httpx.AsyncByteStream):
    def __init__(self, chunks: list[bytes], drop: bool) -> None:
        self.chunks, self.drop = chunks, drop

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for c in self.chunks:
            yield c
        if self.drop:
            raise httpx.ReadError("connection reset by peer")


def problem(status: int, code: str) -> list[bytes]:
    return [json.dumps({"type": f"urn:warden:problem:{code}", "status": status, "code": code, "detail": code}).encode()]


def standard_script() -> Script:
    return Script(
        [
            # 1: two events, then half of a third, then the connection drops
            (200, [b"retry: 20\n", b"id: 1\nevent: execution.assigned\ndata: {\"n\":1}\n\n",
                   b"id: 2\nevent: step.assigned\nda", b"ta: {\"n\":2}\n\n", b"id: 3\ndata: {\"n\":"], True),
            # 2: resumes after 2 but replays 2 again (must be skipped), then 3, then ends cleanly
            (200, [b": hello\n\n", b"id: 2\nevent: step.assigned\ndata: {\"n\":2}\n\n",
                   b"id: 3\nevent: step.result\ndata: {\"n\":3}\n\n"], False),
            # 3: the instance is draining
            (503, problem(503, "shutting_down"), False),
            # 4: resumes after 3
            (200, [b"id: 4\ndata: {\"n\":4}\n\n", b":\n\n", b"event: stream.closing\ndata: {\"reconnect\":true}\n\n",
                   b"id: 5\ndata: {\"n\":5}\n\n"], False),
        ]
    )


def sync_transport(script: Script) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        status, chunks, drop = script.act(request)
        headers = {"content-type": "text/event-stream" if status == 200 else "application/problem+json"}
        if status == 503:
            headers["retry-after"] = "0"
        return httpx.Response(status, headers=headers, stream=SyncBody(chunks, drop))

    return httpx.MockTransport(handler)


def async_transport(script: Script) -> httpx.MockTransport:
    async def handler(request: httpx.Request) -> httpx.Response:
        status, chunks, drop = script.act(request)
        headers = {"content-type": "text/event-stream" if status == 200 else "application/problem+json"}
        return httpx.Response(status, headers=headers, stream=AsyncBody(chunks, drop))

    return httpx.MockTransport(handler)


def test_sync_stream_resumes_without_duplicates() -> None:
    script = standard_script()
    sleeps: list[float] = []
    client = warden.Client("http://warden.test", "tok", transport=sync_transport(script))
    stream = client.agent_stream("claims-agent", options=FAST)
    stream._sleep = sleeps.append  # record the back-off instead of waiting
    got = []
    for event in stream:
        got.append(event)
        if event.id == "5":
            break
    stream.close()
    assert [(e.id, e.event) for e in got] == [
        ("1", "execution.assigned"), ("2", "step.assigned"), ("3", "step.result"),
        ("4", "message"), ("4", "stream.closing"), ("5", "message"),
    ]
    assert [e.json() for e in got if e.event != "stream.closing"] == [{"n": i} for i in range(1, 6)]
    assert script.last_event_ids == [None, "2", "3", "3"]
    assert all("agent_id=claims-agent" in p for p in script.paths)
    assert stream.reconnects == 2
    # back-off starts from the server's retry (20 ms) and grows after a failure
    assert len(sleeps) == 3 and 0.0 < sleeps[0] <= 0.02
    assert stream.last_event_id == "5"


async def test_async_stream_resumes_without_duplicates() -> None:
    script = standard_script()
    sleeps: list[float] = []

    async def fake_sleep(s: float) -> None:
        sleeps.append(s)

    async with warden.AsyncClient("http://warden.test", "tok", transport=async_transport(script)) as client:
        stream = client.agent_stream("claims-agent", options=FAST)
        stream._sleep = fake_sleep
        got = []
        async for event in stream:
            got.append(event)
            if event.id == "5":
                break
        await stream.aclose()
    assert [e.id for e in got] == ["1", "2", "3", "4", "4", "5"]
    assert script.last_event_ids == [None, "2", "3", "3"]
    assert len(sleeps) == 3


def test_refusal_is_raised_not_retried() -> None:
    script = Script([(403, problem(403, "identity_not_bound"), False)])
    client = warden.Client("http://warden.test", "tok", transport=sync_transport(script))
    with pytest.raises(warden.AuthError) as e:
        client.agent_stream("other-agent", options=FAST).open()
    assert e.value.code == "identity_not_bound" and e.value.status == 403
    assert len(script.last_event_ids) == 1


def test_refusal_on_reconnect_ends_the_iteration_with_the_error() -> None:
    script = Script([(200, [b"id: 1\ndata: a\n\n"], True), (401, problem(401, "invalid_token"), False)])
    client = warden.Client("http://warden.test", "tok", transport=sync_transport(script))
    stream = client.agent_stream(options=FAST)
    stream._sleep = lambda s: None
    it = iter(stream)
    assert next(it).data == "a"
    with pytest.raises(warden.AuthError) as e:
        next(it)
    assert e.value.code == "invalid_token"
    assert script.last_event_ids == [None, "1"]


def test_gives_up_after_max_attempts() -> None:
    script = Script([(503, problem(503, "store_unavailable"), False)] * 5)
    client = warden.Client("http://warden.test", "tok", transport=sync_transport(script))
    stream = client.agent_stream(options=StreamOptions(backoff_initial=0.0, max_attempts=3))
    stream._sleep = lambda s: None
    with pytest.raises(warden.ServerError) as e:
        stream.open()
    assert e.value.code == "store_unavailable"
    assert len(script.last_event_ids) == 3


def test_runner_stream_parameters_and_initial_last_event_id() -> None:
    script = Script([(200, [b"id: 8\ndata: x\n\nid: 9\nevent: job.assigned\ndata: {}\n\n"], False)])
    client = warden.Client("http://warden.test", "tok", transport=sync_transport(script))
    stream = client.runner_stream("r1", tools=["a", "b"], non_idempotent=["b"], last_event_id="8", options=FAST)
    event = next(iter(stream))
    stream.close()
    # 8 was already handled by the caller: only 9 is new
    assert event.id == "9" and event.event == "job.assigned"
    assert script.last_event_ids == ["8"]
    url = httpx.URL(script.paths[0])
    assert url.params["tools"] == "a,b" and url.params["non_idempotent"] == "b" and url.params["runner_id"] == "r1"


# ---- against a real HTTP server that drops the connection mid-chunk ----------------


class DroppingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[str | None] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def chunk(self, data: bytes) -> None:
        try:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
        except OSError:  # the client went away
            self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802
        type(self).seen.append(self.headers.get("Last-Event-ID"))
        n = len(type(self).seen)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if n == 1:
            self.chunk(b"id: 10\ndata: one\n\n")
            self.chunk(b"id: 11\ndata: two\n\nid: 12\ndata: thr")
            # drop the connection in the middle of the body
            self.connection.shutdown(socket.SHUT_RDWR)
            self.connection.close()
            return
        last = int(self.headers.get("Last-Event-ID") or "0")
        for i in range(last - 1, 15):  # replays one already seen
            self.chunk(f"id: {i}\ndata: n{i}\n\n".encode())
        self.chunk(b": keep-alive\n\n")
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            pass
        self.close_connection = True


def test_real_server_drop_and_resume() -> None:
    DroppingHandler.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), DroppingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with warden.Client(url, "tok") as client, client.agent_stream("a", options=FAST) as stream:
            got = []
            for event in stream:
                got.append((event.id, event.data))
                if event.id == "14":
                    break
        assert got == [("10", "one"), ("11", "two"), ("12", "n12"), ("13", "n13"), ("14", "n14")]
        assert DroppingHandler.seen == [None, "11"]
    finally:
        server.shutdown()
        server.server_close()
