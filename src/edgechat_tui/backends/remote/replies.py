"""Reading an agent's chat answers: the seed's whole JSON, or our stream of server-sent events."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

from edgechat_tui.core.errors import ProtocolError
from edgechat_tui.http.body import iter_body
from edgechat_tui.http.deadline import Deadline
from edgechat_tui.http.jsondata import loads_object
from edgechat_tui.http.sse import ServerSentEvent, SSEError, SSEParser
from edgechat_tui.http.text import shown

#: The largest single event of a stream (one piece of a reply is a few bytes).
MAX_EVENT_BYTES = 1024 * 1024
MAY_HAVE_ANSWERED = "the agent may still have stored your message and its reply: check before sending again"
MAY_HAVE_STORED_PART = "the agent may have stored the turn, whole or in part: check before sending it again"

_KNOWN_EVENTS = frozenset({"delta", "done", "error"})


async def sse_events(response: httpx.Response, deadline: Deadline | None = None,
                     ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """The (name, data) of each delta, done and error event of an SSE answer, as they arrive.

    Other events and comments are skipped. Data that is not a JSON object is a ProtocolError, except
    in an event the end of the stream cut short: that one is dropped, and the caller reports the
    stream as ended before ``done``. Transport failures are raised as httpx raises them.
    """
    parser = SSEParser(max_event_bytes=MAX_EVENT_BYTES)
    try:
        async with contextlib.aclosing(iter_body(response, deadline=deadline)) as chunks:
            async for chunk in chunks:
                for event in parser.feed(chunk):
                    if event.event in _KNOWN_EVENTS:
                        yield event.event, event_data(event)
        last = parser.end()
    except SSEError as exc:
        raise ProtocolError(f"The agent's reply stream is malformed: {exc}.",
                            hint=MAY_HAVE_ANSWERED) from None
    for event in last:
        if event.event in _KNOWN_EVENTS and loads_object(event.data) is not None:
            yield event.event, event_data(event)


def event_data(event: ServerSentEvent) -> dict[str, Any]:
    data = loads_object(event.data)
    if data is None:
        raise ProtocolError(
            f"The agent sent a '{shown(event.event, 40)}' event that is not JSON: '{shown(event.data, 80)}'.",
            hint=MAY_HAVE_ANSWERED)
    return data


__all__ = ["MAX_EVENT_BYTES", "MAY_HAVE_ANSWERED", "MAY_HAVE_STORED_PART", "event_data", "sse_events"]
