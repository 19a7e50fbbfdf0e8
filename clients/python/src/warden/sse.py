"""A Server-Sent Events parser following the WHATWG HTML specification's
"event stream interpretation": lines end in CRLF, LF or CR; a leading BOM
is dropped; ``:`` lines are comments (keep-alives); ``data`` lines join with
``\\n``; ``id`` sets the last event id (unless it holds U+0000); ``retry``
sets the reconnection time when it is all ASCII digits; a blank line
dispatches the event, unless no data was given; an event not ended by a
blank line when the stream ends is dropped.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["Event", "SSEParser", "parse_events"]


@dataclass(frozen=True)
class Event:
    """One dispatched event: ``id`` is the stream's last event id when it
    was dispatched (``None`` before any), ``event`` its type (``message``
    by default) and ``data`` its data."""

    id: str | None
    event: str
    data: str

    def json(self) -> Any:
        """The data parsed as JSON."""
        return json.loads(self.data)


class SSEParser:
    """An incremental parser: :meth:`feed` bytes (or text) as they arrive,
    get the events they complete.

    ``last_event_id`` (the specification's last event id string, set when
    a block ends) and ``retry`` (milliseconds, the reconnection time)
    persist across events and connections.
    :attr:`dispatched_with_id` tells whether the last event returned had an
    ``id`` field of its own (used to recognise events already seen after a
    reconnection).
    """

    def __init__(self, last_event_id: str | None = None) -> None:
        self.last_event_id: str | None = last_event_id
        self._id_buffer: str | None = last_event_id
        self.retry: int | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""
        self._started = False
        self._after_cr = False
        self._data: list[str] = []
        self._has_data = False
        self._event_type = ""
        self._id_in_block = False

    def reset_connection(self) -> None:
        """Forgets a partial event and partial line, as a new connection
        does; keeps ``last_event_id`` and ``retry``."""
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""
        self._started = False
        self._after_cr = False
        self._id_buffer = self.last_event_id
        self._data = []
        self._has_data = False
        self._event_type = ""
        self._id_in_block = False

    def feed(self, chunk: bytes | str) -> list[tuple[Event, bool]]:
        """Returns the events completed by ``chunk``, each with whether its
        block carried an ``id`` field."""
        text = self._decoder.decode(chunk) if isinstance(chunk, (bytes, bytearray)) else chunk
        if not self._started and text:
            self._started = True
            if text.startswith("\ufeff"):
                text = text[1:]
        out: list[tuple[Event, bool]] = []
        if self._after_cr and text.startswith("\n"):
            text = text[1:]
        self._after_cr = False
        buf = self._pending + text
        start = 0
        n = len(buf)
        i = 0
        while i < n:
            c = buf[i]
            if c == "\r" or c == "\n":
                line = buf[start:i]
                if c == "\r":
                    if i + 1 < n:
                        if buf[i + 1] == "\n":
                            i += 1
                    else:
                        self._after_cr = True
                start = i + 1
                ev = self._line(line)
                if ev is not None:
                    out.append(ev)
            i += 1
        self._pending = buf[start:]
        return out

    def _line(self, line: str) -> tuple[Event, bool] | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event_type = value
        elif name == "data":
            self._data.append(value)
            self._has_data = True
        elif name == "id":
            if "\x00" not in value:
                self._id_buffer = value
                self._id_in_block = True
        elif name == "retry":
            if value and value.isascii() and value.isdigit():
                self.retry = int(value)
        return None

    def _dispatch(self) -> tuple[Event, bool] | None:
        # The id of a block takes effect when the block ends, so a
        # reconnection never claims an event that was cut off.
        self.last_event_id = self._id_buffer
        had_id = self._id_in_block
        self._id_in_block = False
        if not self._has_data:
            self._event_type = ""
            self._data = []
            return None
        event = Event(
            id=self.last_event_id if self.last_event_id != "" else None,
            event=self._event_type or "message",
            data="\n".join(self._data),
        )
        self._data = []
        self._has_data = False
        self._event_type = ""
        return event, had_id


def parse_events(chunks: Iterable[bytes | str]) -> Iterator[Event]:
    """Parses a whole stream (an iterable of chunks) into its events."""
    parser = SSEParser()
    for chunk in chunks:
        for event, _ in parser.feed(chunk):
            yield event
