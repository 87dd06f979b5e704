"""Workers AI's answers as typed errors: the table of Cloudflare's codes, statuses and wordings.

:func:`map_error` reads a non-2xx answer (or an error reported inside a 200 stream or envelope) and
returns the :class:`~edgechat_tui.core.errors.BackendError` subclass a user can act on. Server text
in the messages is sanitised, stripped of any echo of the token and shortened (in that order, by
:func:`edgechat_tui.http.text.shown`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from edgechat_tui.core.errors import (
    AccountNotFound,
    AuthError,
    BackendError,
    BadRequest,
    ContextTooLong,
    ModelNotFound,
    NotFound,
    ProtocolError,
    QuotaExceeded,
    RateLimited,
    RequestTimeout,
    ServerError,
)
from edgechat_tui.http.jsondata import JSONDataError, loads
from edgechat_tui.http.text import Redactor, shown

#: Longest piece of server text quoted in a message.
MAX_QUOTE = 200

PERMISSIONS_HINT = (
    "the API token needs the Workers AI Read and Workers AI Edit permissions (the dashboard's "
    "\"Workers AI\" token template has both); set a new one with: edgechat config set api_token TOKEN"
)
MODEL_HINT = (
    "choose a model from https://developers.cloudflare.com/workers-ai/models/ and set it with: "
    "edgechat config set model MODEL_ID"
)


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What error messages may mention (and the one thing they must not: the token, only masked)."""

    model: str
    account_id: str
    url: str
    redactor: Redactor = field(repr=False, default_factory=Redactor)

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or self.url

    @property
    def netloc(self) -> str:
        return urlsplit(self.url).netloc or self.url


def quote(text: str, context: RequestContext, limit: int = MAX_QUOTE) -> str:
    """Server (or user) text made safe and short for a message: sanitised, one line, no token."""
    return shown(text, limit, context.redactor)


def excerpt(raw: bytes, context: RequestContext) -> str:
    """A short readable excerpt of a body that is not JSON (an HTML page's text, without tags)."""
    text = raw[:8192].decode("utf-8", "replace")
    text = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", text)
    text = re.sub(r"<[^>]*>", " ", text)
    quoted = quote(text, context, limit=120)
    return f"“{quoted}”" if quoted else "an empty body"


def error_codes(raw: bytes) -> set[int]:
    """The codes of a Cloudflare error envelope; empty when the body is not one."""
    try:
        data = loads(raw)
    except JSONDataError:
        return set()
    errors = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(errors, list):
        return set()
    return {e["code"] for e in errors if isinstance(e, dict) and type(e.get("code")) is int}


def _plain(value: Any) -> str:
    """A scalar as text; anything else (a list, an object: maybe nested deep enough to break repr) as ""."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def _said(data: Any) -> list[tuple[int | None, str]] | None:
    """The (code, message) pairs of an error envelope; None when ``data`` is not an object."""
    if not isinstance(data, dict):
        return None
    errors: list[tuple[int | None, str]] = []
    items = data.get("errors")
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            code = item.get("code")
            message = item.get("message")
            errors.append((code if type(code) is int else None, _plain(message)))
    if not errors and isinstance(data.get("error"), str):  # some proxies answer {"error": "..."}
        errors.append((None, data["error"]))
    return errors


def map_error(status: int, retry_after: float | None, raw: bytes, complete: bool,
              context: RequestContext, *, in_stream: bool = False, data: Any = None) -> BackendError:
    """The typed error for a non-2xx answer (or an error event), from its codes, status and wording.

    ``data`` is the answer already parsed (an error event); otherwise ``raw`` is parsed when complete.
    """
    if data is None and complete:
        try:
            data = loads(raw)
        except JSONDataError:
            data = None
    errors = _said(data)
    parsed = errors is not None
    errors = errors or []
    codes = {code for code, _ in errors if code is not None}
    code = next(iter(sorted(codes)), None)
    said = "; ".join(quote(re.sub(r"^\s*AiError:\s*", "", m), context) for _, m in errors if m)
    wording = said.lower()
    detail = f": {said}" if said else ""
    if not parsed:
        detail = f": {excerpt(raw, context)}"
        if not complete:
            detail += " (a body of more than 1 MiB, not read)"
    common: dict[str, Any] = {"status": status, "code": code}

    if 10000 in codes or (status in (401, 403) and not codes & {5016, 3023, 5018, 3041}):
        what = "refused the API token" if status != 403 else "says the API token may not do this"
        return AuthError(f"Cloudflare {what} ({status} {said or 'Authentication error'})",
                         hint=PERMISSIONS_HINT, **common)
    if 7003 in codes:
        return AccountNotFound(
            f"Cloudflare knows no account {quote(context.account_id, context, 64)!r} for this token",
            hint="check account_id: it is the 32-character id shown on the dashboard's Workers AI page; "
                 "set it with: edgechat config set account_id ID", **common)
    if codes & {5007, 3042}:
        return ModelNotFound(f"Workers AI has no model {quote(context.model, context, 100)!r}",
                             hint=MODEL_HINT, **common)
    if (codes & {5021, 3010} or status == 413 or "context window" in wording
            or "maximum context length" in wording):
        return ContextTooLong(f"The conversation is too long for the model's context window{detail}",
                              hint="start a new conversation, or lower max_tokens", **common)
    if codes & {3036, 4006} or "daily free allocation" in wording:
        return QuotaExceeded(
            "The account's daily Workers AI allocation is used up",
            hint="the free allocation of 10,000 neurons a day resets at 00:00 UTC; the Workers Paid plan "
                 "lifts it", **common)
    if 3040 in codes:
        return RateLimited("The model is out of capacity right now", retry_after=retry_after,
                           hint="try again in a minute, or choose a less busy model", **common)
    if status == 429:
        return RateLimited(f"Workers AI is refusing requests for now: too many requests{detail}",
                           retry_after=retry_after, hint="wait a minute and try again", **common)
    if codes & {3007, 3008} or status == 408:
        return RequestTimeout(f"Workers AI gave up on the request ({status}){detail}",
                              hint="try again", **common)
    if 5016 in codes:
        return BadRequest(f"This model needs its licence accepted first{detail}",
                          hint="send the single message 'agree' to this model once, then try again", **common)
    if status >= 500:
        return ServerError(f"Workers AI failed with {status}{detail}", retry_after=retry_after,
                           hint="this is on Cloudflare's side; try again shortly", **common)
    if not parsed:
        return ProtocolError(f"Workers AI answered {status} with something that is not its API{detail}",
                             hint=f"check api_base ({quote(context.host, context, 80)}) and your network",
                             **common)
    if in_stream:
        return ProtocolError(f"Workers AI failed in the middle of the reply{detail}", hint="try again",
                             **common)
    if status == 404:
        host = quote(context.host, context, 80)
        return NotFound(f"There is no Workers AI API at {host} ({status}){detail}", hint="check api_base",
                        **common)
    return BadRequest(f"Workers AI refused the request ({status}){detail}",
                      hint="if this keeps happening with this model, try another", **common)


def stream_error(event: dict[str, Any], context: RequestContext) -> BackendError:
    """An error reported inside a stream (after a 200): typed by its code like any other."""
    errors = event.get("errors")
    if not isinstance(errors, list):
        error = event.get("error")
        errors = [error if isinstance(error, dict) else {"message": _plain(error)}]
    return map_error(200, None, b"", True, context, in_stream=True, data={"errors": errors})


__all__ = ["MAX_QUOTE", "MODEL_HINT", "PERMISSIONS_HINT", "RequestContext", "error_codes", "excerpt",
           "map_error", "quote", "stream_error"]
