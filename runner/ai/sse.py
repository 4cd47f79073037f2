"""Server-sent events, parsed incrementally from the byte chunks of a streamed answer.

Follows the HTML standard's event-stream rules that AI services use: lines end in
CRLF, LF or CR; `data:` lines of one event are joined with LF; a blank line ends the
event; lines starting with ':' are comments. Consumed bytes are dropped from the
buffer as they are parsed, and a line arriving in many chunks is scanned for its end
only once, so a long stream or a long line costs linear time.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Iterator

_LINE_END = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True)
class ServerSentEvent:
    event: str      # "message" when the server named none
    data: str


class EventStreamError(ValueError):
    """The byte stream is not a valid event stream (for instance, not UTF-8)."""


class EventStreamParser:
    """Feed byte chunks, get the events they complete."""

    def __init__(self):
        self._buffer = bytearray()
        # How far the buffer is known to hold no line end: a long line arriving in many
        # chunks is scanned once, not again from its start on every feed.
        self._scanned = 0
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        self._buffer += chunk
        events = []
        start = 0
        buffer = self._buffer
        scan_from = self._scanned
        while True:
            match = _LINE_END.search(buffer, scan_from)
            if match is None:
                scan_from = len(buffer)
                break
            # A CR at the very end may be the first half of a CRLF split across chunks:
            # it is looked at again with the next chunk.
            if match.group() == b"\r" and match.end() == len(buffer):
                scan_from = match.start()
                break
            event = self._line(bytes(buffer[start:match.start()]))
            if event is not None:
                events.append(event)
            start = scan_from = match.end()
        del buffer[:start]
        self._scanned = scan_from - start
        return events

    def close(self) -> list[ServerSentEvent]:
        """The end of the stream: a CR held back as a possible CRLF ends its line after all;
        an unfinished line or event is dropped, as the standard says."""
        events = []
        if self._buffer.endswith(b"\r"):
            event = self._line(bytes(self._buffer[:-1]))
            if event is not None:
                events.append(event)
        self._buffer.clear()
        self._scanned = 0
        self._event, self._data = "", []
        return events

    def _line(self, raw: bytes) -> ServerSentEvent | None:
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise EventStreamError(f"event stream line is not UTF-8 ({error.reason} at byte {error.start})") from None
        if not line:
            if not self._data:
                self._event = ""
                return None
            event = ServerSentEvent(self._event or "message", "\n".join(self._data))
            self._event, self._data = "", []
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        return None     # "id" and "retry" do not matter for a one-shot answer


def parse_events(chunks: Iterable[bytes]) -> Iterator[ServerSentEvent]:
    """All events of a stream of byte chunks."""
    parser = EventStreamParser()
    for chunk in chunks:
        yield from parser.feed(chunk)
    yield from parser.close()
