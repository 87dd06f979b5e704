"""Reading Workers AI's successful answers: one stream event, or a whole JSON envelope.

As the service documents them (``shared/reference/cloudflare.md`` 1.4): text from ``response`` (a
string, or a number for some models) or OpenAI-style ``choices[0].delta.content`` /
``choices[0].message.content``; usage from whichever event carries it; unknown keys ignored. Data
that is not understood is a :class:`~edgechat_tui.core.errors.ProtocolError`, never a traceback
(JSON nested too deep included). A stream's pieces may hold surrogate halves (the client joins them
across pieces); a whole answer's text has them repaired here.
"""

from __future__ import annotations

import json
from typing import Any

from edgechat_tui.backends.local.workers_ai_errors import (
    RequestContext,
    excerpt,
    map_error,
    quote,
    stream_error,
)
from edgechat_tui.core.errors import ProtocolError
from edgechat_tui.core.messages import Usage
from edgechat_tui.http.jsondata import JSONDataError, dumps, loads
from edgechat_tui.http.unicode import fix_surrogates


def text_of(value: Any) -> str | None:
    """``response`` as text: strings as they are, numbers written out (some models send them)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return dumps(value)
    return None


def finish_reason_of(event: dict[str, Any]) -> str | None:
    """Why the model stopped, when the data says: ``finish_reason`` at the top (the native API) or in
    ``choices[0]`` (OpenAI-style); "length" means it reached ``max_tokens``."""
    reason = event.get("finish_reason")
    choices = event.get("choices")
    if reason is None and isinstance(choices, list) and choices and isinstance(choices[0], dict):
        reason = choices[0].get("finish_reason")
    return reason if isinstance(reason, str) else None


def parse_event(data: str, context: RequestContext) -> tuple[str, Usage | None]:
    """One stream event's text and usage. Raises ProtocolError for an event that is not understood."""
    try:
        event = json.loads(data)  # not jsondata.loads: this runs once per piece of a reply
    except (ValueError, RecursionError):  # RecursionError: JSON nested too deep
        event = None
    if not isinstance(event, dict):
        shown = quote(data, context, 80)
        raise ProtocolError(f"Workers AI sent malformed data in the reply stream: “{shown}”",
                            hint="try again; if it keeps happening, try another model")
    if event.get("errors") or event.get("error"):
        raise stream_error(event, context)
    usage = Usage.from_json(event.get("usage"))
    response = event.get("response")
    if response is not None:
        text = text_of(response)
        if text is None:
            raise ProtocolError("Workers AI sent a reply piece that is not text", hint="try another model")
        return text, usage
    choices = event.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        delta = choices[0].get("delta")
        content = delta.get("content") if isinstance(delta, dict) else None
        return (content if isinstance(content, str) else ""), usage
    return "", usage


def parse_whole(status: int, retry_after: float | None, raw: bytes,
                context: RequestContext) -> tuple[str, Usage | None]:
    """Text and usage from a whole JSON answer in the Cloudflare envelope."""
    try:
        data = loads(raw)
    except JSONDataError:
        raise ProtocolError(f"Workers AI answered with something that is not JSON: {excerpt(raw, context)}",
                            hint="check api_base and your network", status=status) from None
    if not isinstance(data, dict):
        raise ProtocolError("Workers AI answered with JSON that is not its envelope", status=status)
    if data.get("success") is False or data.get("errors"):
        raise map_error(status, retry_after, raw, True, context, in_stream=True, data=data)
    result = data.get("result")
    if not isinstance(result, dict):
        raise ProtocolError("Workers AI's answer has no result", hint="try again", status=status)
    usage = Usage.from_json(result.get("usage"))
    response_value = result.get("response")
    if response_value is not None:
        text = text_of(response_value)
        if text is None:  # JSON mode answers with an object
            try:
                text = dumps(response_value)
            except JSONDataError:
                raise ProtocolError("Workers AI's answer is nested too deep to read", status=status) from None
        return fix_surrogates(text), usage
    choices = result.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message")
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            return fix_surrogates(content), usage
    raise ProtocolError("Workers AI's answer holds no reply text", hint="try another model", status=status)


__all__ = ["finish_reason_of", "parse_event", "parse_whole", "text_of"]
