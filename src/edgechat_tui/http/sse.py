"""An incremental parser for Server-Sent Events: bytes in, events out, whatever the chunking.

It follows the WHATWG "event stream interpretation" rules: lines end with CRLF, LF or CR (a CR at
the end of one chunk and an LF at the start of the next are one line end); a leading UTF-8 BOM is
dropped; lines starting with ``:`` are comments; a line without a colon is a field with an empty
value; one space after the colon is dropped; several ``data`` lines join with ``\\n``; a blank line
dispatches the event; ``id`` values holding NUL are ignored; ``retry`` takes only digits.

Two choices differ from a browser, because the reader is a chat client that must not show a reply
that is silently wrong:

- Bytes that are not UTF-8 raise :class:`SSEError` instead of becoming U+FFFD: a reply with
  replaced characters would look complete but be corrupt, and the service never sends such bytes.
- :meth:`SSEParser.end` dispatches an event left unterminated when the stream ended (many servers
  omit the final blank line), so the caller can judge it (for example, see that it is a cut JSON
  document) rather than lose it.

A line or event longer than ``max_event_bytes`` raises :class:`SSEError`, so a server that never
sends a line end cannot fill the memory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_BOM = b"\xef\xbb\xbf"
_LINE_END = re.compile(rb"\r\n|\r|\n")
DEFAULT_MAX_EVENT_BYTES = 4 * 1024 * 1024


class SSEError(ValueError):
    """The byte stream is not a valid event stream (bad UTF-8, or an event too large)."""


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched event. ``id`` is the last event id seen so far (it carries over), as in browsers."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEParser:
    """Feed it bytes as they arrive; it returns the events completed by each chunk."""

    def __init__(self, *, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self._max = max_event_bytes
        self._buffer = bytearray()
        self._scanned = 0  # bytes of the buffer already searched for a line end (none there)
        self._at_start = True  # a BOM may still come
        self._skip_lf = False  # the previous chunk ended with CR: an LF now is part of that line end
        self._data: list[str] = []
        self._data_size = 0
        self._has_data = False
        self._event = ""
        self._last_id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Parse ``chunk`` and return the events it completed (often none, sometimes several)."""
        if not chunk:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        self._buffer += chunk
        if self._at_start:
            if len(self._buffer) < len(_BOM) and _BOM.startswith(bytes(self._buffer)):
                return []  # could still be a BOM cut in two
            if self._buffer.startswith(_BOM):
                del self._buffer[: len(_BOM)]
            self._at_start = False

        events: list[ServerSentEvent] = []
        buffer = self._buffer
        start = 0
        # Search only the new bytes: a long line trickled in small chunks is scanned once, not once a
        # chunk (which made parsing quadratic in the line's length).
        position = self._scanned
        while True:
            match = _LINE_END.search(buffer, position)
            if match is None:
                break
            if match.group() == b"\r" and match.end() == len(buffer):
                self._skip_lf = True  # CR last in the chunk: a following LF belongs to it
            event = self._line(bytes(buffer[start : match.start()]))
            if event is not None:
                events.append(event)
            start = position = match.end()
        del buffer[:start]
        self._scanned = len(buffer)
        if len(buffer) > self._max:
            raise SSEError(f"an event stream line is longer than {self._max} bytes")
        return events

    def end(self) -> list[ServerSentEvent]:
        """The stream has ended: dispatch what an unterminated last line or event holds."""
        events: list[ServerSentEvent] = []
        if self._at_start and self._buffer:
            self._at_start = False  # a stream shorter than a BOM: what it holds is a line
        if self._buffer:
            line, self._buffer = bytes(self._buffer), bytearray()
            self._scanned = 0
            self._line(line)
        event = self._dispatch()
        if event is not None:
            events.append(event)
        return events

    # -- internals --

    def _line(self, raw: bytes) -> ServerSentEvent | None:
        if not raw:
            return self._dispatch()
        if raw[:1] == b":":
            return None  # a comment (keep-alive)
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SSEError(f"the event stream holds bytes that are not UTF-8 (at byte {exc.start})") from None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data_size += len(raw)
            if self._data_size > self._max:
                raise SSEError(f"an event is larger than {self._max} bytes")
            self._data.append(value)
            self._has_data = True
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._last_id = value
        elif name == "retry":
            if value.isascii() and value.isdigit():
                self._retry = int(value)
        # any other field name is ignored, as the standard says
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        if not self._has_data:
            self._event = ""
            return None
        event = ServerSentEvent(
            data="\n".join(self._data),
            event=self._event or "message",
            id=self._last_id,
            retry=self._retry,
        )
        self._data = []
        self._data_size = 0
        self._has_data = False
        self._event = ""
        return event
