"""The SSE parser against the WHATWG specification's rules."""

from __future__ import annotations

from warden import Event, SSEParser
from warden.sse import parse_events


def events(*chunks: bytes | str) -> list[Event]:
    return list(parse_events(chunks))


def test_basic_event_with_id_and_type() -> None:
    assert events(b"id: 7\nevent: execution.assigned\ndata: {\"a\":1}\n\n") == [
        Event("7", "execution.assigned", '{"a":1}')
    ]


def test_default_type_is_message_and_json() -> None:
    (e,) = events("data: [1, 2]\n\n")
    assert e.event == "message" and e.id is None and e.json() == [1, 2]


def test_multi_line_data_joined_with_newlines() -> None:
    (e,) = events("data: first\ndata:second\ndata\ndata:  two spaces\n\n")
    assert e.data == "first\nsecond\n\n two spaces"


def test_comments_and_keep_alives_are_ignored() -> None:
    assert events(":\n: keep-alive\n\n:ping\n\n") == []
    (e,) = events(": hello\ndata: x\n: between\n\n")
    assert e.data == "x"


def test_crlf_cr_and_lf_line_endings() -> None:
    got = events("data: a\r\n\r\ndata: b\r\rdata: c\n\n")
    assert [e.data for e in got] == ["a", "b", "c"]


def test_crlf_split_across_chunks() -> None:
    p = SSEParser()
    assert p.feed("data: a\r") == []
    assert p.feed("\n") == []
    out = p.feed("\r\n")
    assert [e.data for e, _ in out] == ["a"]


def test_utf8_split_across_chunks_and_bom() -> None:
    text = "\ufeffdata: caf\u00e9 \u2603\n\n".encode()
    chunks = [text[i : i + 1] for i in range(len(text))]
    (e,) = events(*chunks)
    assert e.data == "caf\u00e9 \u2603"


def test_only_a_leading_bom_is_dropped() -> None:
    # the second BOM is part of the field name, so the line is ignored
    assert events("\ufeff\ufeffdata: x\n\n") == []


def test_retry_field() -> None:
    p = SSEParser()
    p.feed("retry: 500\n\n")
    assert p.retry == 500
    p.feed("retry: 5x\n\nretry: -1\n\nretry:\n\n")
    assert p.retry == 500


def test_id_persists_and_null_is_ignored() -> None:
    p = SSEParser()
    out = p.feed("id: 1\ndata: a\n\ndata: b\n\nid: x\x00y\ndata: c\n\n")
    assert [(e.id, had) for e, had in out] == [("1", True), ("1", False), ("1", False)]


def test_empty_id_resets() -> None:
    p = SSEParser()
    out = p.feed("id: 1\ndata: a\n\nid\ndata: b\n\n")
    assert [e.id for e, _ in out] == ["1", None]
    assert p.last_event_id == ""


def test_no_data_no_event_but_id_kept() -> None:
    p = SSEParser()
    assert p.feed("id: 9\nevent: x\n\n") == []
    assert p.last_event_id == "9"
    (e, _), = p.feed("data: y\n\n")
    assert e.event == "message" and e.id == "9"


def test_incomplete_event_at_end_is_dropped() -> None:
    assert events("data: complete\n\ndata: partial\n") == [Event(None, "message", "complete")]


def test_unknown_fields_and_field_without_colon() -> None:
    (e,) = events("foo: bar\nevent\ndata: z\n\n")
    assert e == Event(None, "message", "z")


def test_reset_connection_drops_partial_event_and_its_id() -> None:
    p = SSEParser()
    p.feed("id: 4\ndata: a\n\nid: 5\ndata: half")
    assert p.last_event_id == "4"  # an id counts once its block ends
    p.reset_connection()
    assert p.last_event_id == "4"
    assert [e.data for e, _ in p.feed("data: new\n\n")] == ["new"]


def test_stream_closing_event_of_warden() -> None:
    (e,) = events('event: stream.closing\nretry: 500\ndata: {"reason":"shutdown","reconnect":true}\n\n')
    assert e.event == "stream.closing" and e.json()["reconnect"] is True
