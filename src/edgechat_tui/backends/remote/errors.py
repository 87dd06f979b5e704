"""An agent endpoint's failed answers as the typed errors users read (docs/protocol.md, "Errors").

By the answer's ``code`` when it has one, else its status. Copes with the seed's ``{"error","details"}``,
ours ``{"error","code","details","retryAfter"}``, plain text, HTML error pages and empty bodies.
Server text is sanitised, masked (the token) and only then shortened.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from edgechat_tui.core.errors import (
    AuthError,
    BackendError,
    BadRequest,
    ContextTooLong,
    ConversationConflict,
    ConversationNotFound,
    EdgechatError,
    MessageNotFound,
    NotFound,
    QuotaExceeded,
    RateLimited,
    ServerError,
)
from edgechat_tui.http.jsondata import loads_object
from edgechat_tui.http.retry import parse_retry_after
from edgechat_tui.http.text import NO_SECRETS, Redactor, shown

#: Of server text (errors, details, titles), this many characters are shown.
MAX_SHOWN_CHARS = 300

TOKEN_HINT = "check remote_token, or EDGECHAT_REMOTE_TOKEN"
URL_HINT = "check the --remote URL: it is the agent's base, such as https://host or https://host/prefix"

ACCESS_HINT = "check access_client_id and access_client_secret, or access_token_command"
MISCONFIGURED_HINT = ("the agent's operator must fix the Worker's settings (its secrets and vars, see "
                      "docs/worker.md); nothing will work until then")

STATUS_OF_CODE = {
    "bad_request": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "misconfigured": 500,
    "unavailable": 503,
    "not_found": 404,
    "conversation_not_found": 404,
    "message_not_found": 404,
    "conflict": 409,
    "context_too_long": 413,
    "request_too_large": 413,
    "rate_limited": 429,
    "quota_exceeded": 429,
    "model_unavailable": 502,
    "internal": 500,
}


def error_from_answer(status: int, headers: httpx.Headers, body: bytes, url: str, *,
                      has_token: bool = False, redactor: Redactor = NO_SECRETS,
                      data: dict[str, Any] | None = None, verified_user: str | None = None,
                      access: bool = False) -> EdgechatError:
    """The typed error a user reads for a failed answer: by its ``code`` when it has one, else its status.

    ``data`` is the answer already parsed (an ``error`` event); otherwise ``body`` is parsed.
    ``verified_user`` is who ``whoami`` said the credential is (for a 403); ``access`` says the
    credentials are Cloudflare Access's (for what to check after a 401).
    """
    content_type = headers.get("content-type", "")
    if data is None:
        data = loads_object(body)
    code = data.get("code") if data is not None and isinstance(data.get("code"), str) else None
    said = _what_it_said(data, content_type, body, redactor)
    with_said = f": {said}" if said else ""
    retry_after = _retry_after(headers, data)
    kw: dict[str, Any] = {"status": status, "code": code}

    if code == "misconfigured":
        return ServerError(f"The agent is misconfigured and serves nothing ({status}){with_said}.",
                           hint=MISCONFIGURED_HINT, **kw)
    if code == "forbidden":
        whose = (f"your credential is {verified_user}'s" if verified_user
                 else "your credential belongs to another user")
        return AuthError(f"The agent refused: that is another user's conversation, and {whose} ({status})"
                         f"{with_said}.",
                         hint="leave --user out to use the credential's own user, or use that user's "
                              "credential", **kw)
    if code == "unauthorized" or status in (401, 403):
        if access and (code == "unauthorized" or status == 401):
            return AuthError(f"Cloudflare Access or the agent refused the Access credential "
                             f"({status}){with_said}.", hint=ACCESS_HINT, **kw)
        if has_token:
            return AuthError(f"The agent refused the token ({status}){with_said}.", hint=TOKEN_HINT, **kw)
        return AuthError(f"The agent needs a token ({status}){with_said}.",
                         hint="set remote_token, or EDGECHAT_REMOTE_TOKEN", **kw)
    library = _library_error(code, status, with_said)
    if library is not None:
        return library
    if code == "not_found" or status == 404:
        hint = URL_HINT
        if "/api/chat/api/" in url or url.endswith("/api/chat/"):
            hint = "leave /api/chat out of the --remote URL: give the agent's base URL"
        return NotFound(f"No agent endpoint at {shown(url, 200, redactor)} (404).", hint=hint, **kw)
    if code == "context_too_long" or status == 413:
        return ContextTooLong(f"The message is too long for the agent ({status}){with_said}.",
                              hint="shorten it, or start a new conversation", **kw)
    if code == "quota_exceeded":
        if data is not None and isinstance(data.get("limit"), str):
            return _user_limit(status, data, with_said, retry_after, kw)
        return QuotaExceeded(f"The agent's model allocation is used up ({status}){with_said}.",
                             hint="try again tomorrow, or ask the agent's operator", **kw)
    if code == "rate_limited" or status == 429:
        wait = f"try again in {retry_after:g} s" if retry_after is not None else "try again in a moment"
        return RateLimited(f"The agent is busy ({status}){with_said}.", hint=wait, retry_after=retry_after,
                           **kw)
    if code == "bad_request" or status == 400:
        return BadRequest(f"The agent rejected the request ({status}){with_said}.", **kw)
    if 300 <= status < 400:
        location = headers.get("location")
        where = f" to {shown(location, 200, redactor)}" if location else ""
        return BackendError(f"The agent's URL redirects{where} ({status}).",
                            hint="use the URL it redirects to as --remote", **kw)
    if status >= 500 or code in ("model_unavailable", "internal"):
        if code == "model_unavailable":
            message, hint = f"The agent's model failed ({status}){with_said}.", "try again later"
        elif code == "unavailable":
            message = f"The agent cannot check credentials just now ({status}){with_said}."
            hint = "try again in a moment; it could not reach the keys of Cloudflare Access"
        elif looks_like_html(content_type, body):
            message = f"The agent or a proxy before it failed ({status}){with_said}."
            hint = "try again later; if it persists, check the --remote URL"
        else:
            message = f"The agent failed to answer ({status}){with_said}."
            hint = "try again later" if status != 500 else (
                "try again later; the agent may have kept your message without a reply")
        return ServerError(message, hint=hint, retry_after=retry_after, **kw)
    hint = URL_HINT if looks_like_html(content_type, body) else None
    return BackendError(f"The agent answered {status}{with_said}.", hint=hint, **kw)


#: The library's refusals (docs/protocol.md, ``conversations``): what each means for the user.
LIBRARY_HINTS = {
    "conversation_not_found": "the id is unknown here, or the conversation is in the trash: list the "
                              "conversations (edgechat chats) to find it",
    "message_not_found": "the conversation changed since it was read: read its history again",
    "conflict": "nothing was sent or stored; an archived conversation must be restored first",
}


def _library_error(code: str | None, status: int, with_said: str) -> EdgechatError | None:
    """The library's codes as their own errors; None for any other answer."""
    if code == "conversation_not_found":
        error: EdgechatError = ConversationNotFound(
            f"The agent has no such conversation ({status}){with_said}.", hint=LIBRARY_HINTS[code])
    elif code == "message_not_found":
        error = MessageNotFound(f"The agent has no such message in that conversation ({status}){with_said}.",
                                hint=LIBRARY_HINTS[code])
    elif code == "conflict" or (code is None and status == 409):
        error = ConversationConflict(f"The agent refused: that does not apply to the conversation as it is "
                                     f"({status}){with_said}.", hint=LIBRARY_HINTS["conflict"])
    else:
        return None
    error.status = status  # type: ignore[attr-defined]
    error.code = code  # type: ignore[attr-defined]
    return error


_LIMIT_NAMES = {"daily_tokens": "your tokens for today", "turns_per_minute": "your turns for this minute"}


def reset_time(reset_at: Any, retry_after: float | None, now: datetime | None = None) -> datetime | None:
    """When a per-user limit resets, from ``resetAt`` (ISO 8601) or else ``retryAfter`` seconds from now."""
    now = now or datetime.now(UTC)
    if isinstance(reset_at, str):
        try:
            when = datetime.fromisoformat(reset_at.strip().replace("Z", "+00:00"))
        except ValueError:
            when = None
        if when is not None:
            return when if when.tzinfo else when.replace(tzinfo=UTC)
    if retry_after is not None:
        return now + timedelta(seconds=retry_after)
    return None


def describe_reset(when: datetime, now: datetime | None = None) -> str:
    """``at 01:00 (local time), in 3 h 35 min``: the local clock time, and how long until then."""
    now = now or datetime.now(UTC)
    local, local_now = when.astimezone(), now.astimezone()
    clock = local.strftime("%H:%M:%S") if (when - now).total_seconds() < 120 else local.strftime("%H:%M")
    if local.date() != local_now.date():
        clock = local.strftime("%a %d %b ") + clock
    seconds = max(0, round((when - now).total_seconds()))
    if seconds >= 3600:
        left = f"{seconds // 3600} h {seconds % 3600 // 60} min"
    elif seconds >= 60:
        left = f"{seconds // 60} min {seconds % 60} s" if seconds < 600 else f"{seconds // 60} min"
    else:
        left = f"{seconds} s"
    zone = local.strftime("%Z") or "local time"
    return f"at {clock} ({zone}), in {left}"


def _user_limit(status: int, data: dict[str, Any], with_said: str, retry_after: float | None,
                kw: dict[str, Any]) -> EdgechatError:
    """A per-user limit (``quota_exceeded`` with ``limit``): says which, and when it resets."""
    limit = data.get("limit")
    what = _LIMIT_NAMES.get(limit, f"your {shown(limit, 40)} limit") if isinstance(limit, str) else "a limit"
    when = reset_time(data.get("resetAt"), retry_after)
    resets = f"it resets {describe_reset(when)}" if when else "ask the agent's operator when it resets"
    error = QuotaExceeded(f"You have reached a per-user limit of this agent, {what} ({status}){with_said}; "
                          f"{resets}.",
                          hint=f"{resets}; the agent's operator sets the per-user limits", **kw)
    error.reset_at = when  # type: ignore[attr-defined]
    return error


def _what_it_said(data: dict[str, Any] | None, content_type: str, body: bytes, redactor: Redactor) -> str:
    """The server's own words about a failure: error and details, a page's title, or plain text."""
    if data is not None:
        words = [shown(w, MAX_SHOWN_CHARS, redactor).rstrip(". ")
                 for w in (data.get("error"), data.get("details")) if isinstance(w, str) and w.strip()]
        if len(words) == 2 and words[0] in words[1]:
            words = words[1:]  # details that repeat the error, with a code in front ("3040: Capacity...")
        return ": ".join(words)
    if looks_like_html(content_type, body):
        title = html_title(body, redactor)
        return f"an HTML page titled '{title}'" if title else "an HTML page"
    text = body.decode("utf-8", "replace").strip()
    return shown(text, MAX_SHOWN_CHARS, redactor) if text else ""


def describe_body(content_type: str, body: bytes, redactor: Redactor = NO_SECRETS) -> str:
    """What an unreadable answer was, for a message: an HTML page, some text, nothing."""
    if looks_like_html(content_type, body):
        title = html_title(body, redactor)
        return f"an HTML page titled '{title}'" if title else "an HTML page"
    if not body.strip():
        return "an empty answer"
    if loads_object(body) is not None:
        return "JSON without the expected fields"
    kind = shown(media_type(content_type), 60) or "no content type"
    return f"not JSON ({kind}): '{shown(body.decode('utf-8', 'replace'), 80, redactor)}'"


_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body")


def looks_like_html(content_type: str, body: bytes) -> bool:
    head = body[:512].lstrip().lower()
    return "html" in content_type.lower() or head.startswith(_HTML_STARTS)


def html_title(body: bytes, redactor: Redactor = NO_SECRETS) -> str | None:
    match = re.search(rb"<title[^>]*>(.*?)</title", body[:65536], re.IGNORECASE | re.DOTALL)
    if not match:
        return None
    title = shown(html.unescape(match.group(1).decode("utf-8", "replace")), 120, redactor)
    return title or None


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _retry_after(headers: httpx.Headers, data: dict[str, Any] | None) -> float | None:
    """Seconds to wait, from the Retry-After header (seconds or an HTTP date) or the body's retryAfter."""
    seconds = parse_retry_after(headers.get("retry-after"))
    if seconds is None and data is not None:
        value = data.get("retryAfter")
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            seconds = float(value)
    return seconds


__all__ = [
    "ACCESS_HINT",
    "LIBRARY_HINTS",
    "MAX_SHOWN_CHARS",
    "MISCONFIGURED_HINT",
    "STATUS_OF_CODE",
    "TOKEN_HINT",
    "URL_HINT",
    "describe_body",
    "describe_reset",
    "error_from_answer",
    "html_title",
    "looks_like_html",
    "media_type",
    "reset_time",
]
