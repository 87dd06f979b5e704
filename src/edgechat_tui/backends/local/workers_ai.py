"""The Workers AI REST client: one chat request, streamed, retried, and every failure typed.

``chat()`` posts the messages to ``{api_base}/accounts/{account_id}/ai/run/{model}`` and yields
:class:`~edgechat_tui.core.messages.TextDelta` pieces as they arrive, a
:class:`~edgechat_tui.core.messages.Retrying` before each wait between attempts, and finally one
:class:`Completion` with the whole text and the usage. A failure is raised as an
:class:`~edgechat_tui.core.errors.EdgechatError` subclass whose message a user can act on.

Choices worth knowing:

- Answers are read as the service documents them (:mod:`.workers_ai_parse`); its errors are typed
  by :mod:`.workers_ai_errors`; failures of the connection by the one map of :mod:`edgechat_tui.http`,
  the same as the remote agent's. A stream that ends without ``[DONE]``, an event that is not a JSON
  object, or bytes that are not UTF-8 raise :class:`~edgechat_tui.core.errors.ProtocolError`: a reply
  that is silently short or corrupt would be saved as if it were whole.
- Retries (capacity, 429, 5xx, timeouts, connection failures) happen only before any text was
  yielded, so a reply is never shown twice. The wait is ``Retry-After`` when the service sends one
  (at most 60 s), else exponential backoff with full jitter.
- Error bodies are read up to 1 MiB, whole JSON answers up to 16 MiB and streamed replies up to 16 M
  characters, all counted after decoding; past that the connection is dropped, so a runaway answer
  cannot take the memory (or be saved into the history).
- ``read_timeout`` bounds the gap between two reads; ``reply_timeout`` the whole reply, retries
  included (None or 0: no bound).
- Closing the iterator (``aclose()``, or cancelling the task iterating it) closes the HTTP
  connection at once. Iterate with ``contextlib.aclosing`` so that happens when you stop early.
  After :meth:`WorkersAIClient.aclose` the client refuses requests (``ClientClosed``).
- The API token is sent in the Authorization header only. It is never part of a message or repr,
  and any echo of it in server text is replaced by ``[redacted]``.

When ``api_base`` is an AI Gateway Workers AI base (``.../{gateway}/workers-ai``), the model id is
appended to it directly, as the gateway expects.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote as url_quote

import httpx

from edgechat_tui.backends.local.workers_ai_errors import (
    MAX_QUOTE,
    PERMISSIONS_HINT,
    RequestContext,
    error_codes,
    excerpt,
    map_error,
    quote,
)
from edgechat_tui.backends.local.workers_ai_parse import finish_reason_of, parse_event, parse_whole
from edgechat_tui.core.errors import AuthError, ConfigError, ConnectionFailed, EdgechatError, ProtocolError
from edgechat_tui.core.messages import Retrying, TextDelta, Usage
from edgechat_tui.core.sanitize import sanitize
from edgechat_tui.core.secret import Secret
from edgechat_tui.http.body import iter_body, read_capped
from edgechat_tui.http.client import HttpClient, timeouts
from edgechat_tui.http.deadline import Deadline, DeadlineExceeded
from edgechat_tui.http.jsondata import JSONDataError, loads
from edgechat_tui.http.retry import backoff_wait, parse_retry_after, refused_wait, with_retries
from edgechat_tui.http.sse import SSEError, SSEParser
from edgechat_tui.http.text import Redactor
from edgechat_tui.http.transport import Where, transport_error
from edgechat_tui.http.unicode import SurrogateJoiner

DEFAULT_API_BASE = "https://api.cloudflare.com/client/v4"
#: Most of an error body read; the rest is never downloaded.
MAX_ERROR_BODY = 1024 * 1024
#: Most of a whole (non-streamed) answer read.
MAX_JSON_BODY = 16 * 1024 * 1024
#: Most characters of a streamed reply kept. No model writes this much within max_tokens; a stream that
#: goes on past it is a fault, and would otherwise grow in memory and then in the history file.
MAX_REPLY_CHARS = 16 * 1024 * 1024
#: Backoff: attempt n waits a random time up to min(30 s, BACKOFF_BASE * 2**(n-1)) (http/retry.py).
BACKOFF_BASE = 1.0


@dataclass(frozen=True, slots=True)
class Completion:
    """The reply is complete: its whole ``text`` (untrusted: sanitise before display) and usage."""

    text: str
    usage: Usage | None = None
    #: Why the model stopped, when the service said ("length": it reached ``max_tokens``).
    finish_reason: str | None = None


def _finish_reason(data: str | bytes) -> str | None:
    """The ``finish_reason`` an event or a whole answer carries (looked for only where the text has one)."""
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if isinstance(value, dict) and isinstance(value.get("result"), dict):
        value = value["result"]
    return finish_reason_of(value) if isinstance(value, dict) else None


ChatEvent = TextDelta | Retrying | Completion


class WorkersAIClient:
    """Talks to the Workers AI REST API for one account, over one pooled HTTP client."""

    def __init__(
        self,
        *,
        account_id: str,
        api_token: str,
        api_base: str = DEFAULT_API_BASE,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        reply_timeout: float | None = None,
        max_retries: int = 3,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.account_id = account_id
        self.api_base = api_base.rstrip("/")
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.reply_timeout = reply_timeout
        self.max_retries = max(0, max_retries)
        # A Secret, and the header only in the client's own Headers (whose repr masks it): a crash report
        # that prints the locals of every frame (Textual's does) then shows the token nowhere.
        self._token = Secret(api_token)
        self._redactor = Redactor([api_token])
        self._sleep = sleep
        self._random = random.Random()
        self._http = HttpClient(self.api_base, timeout=timeouts(connect=connect_timeout, read=read_timeout),
                                headers={"Authorization": f"Bearer {api_token}"}, transport=transport)

    def __repr__(self) -> str:
        return f"WorkersAIClient(account_id={self.account_id!r}, api_base={self.api_base!r})"

    async def aclose(self) -> None:
        """Close the pooled connections; the client refuses requests from then on."""
        await self._http.aclose()

    async def __aenter__(self) -> WorkersAIClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- URLs ---

    @property
    def _is_gateway(self) -> bool:
        return self.api_base.endswith("/workers-ai")

    def run_url(self, model: str) -> str:
        """Where a chat with ``model`` is posted. Raises ConfigError for a model id that is not one."""
        # The id goes into the path verbatim, slashes included; anything that could leave the
        # /ai/run/ path (dot segments, a query, a fragment) is refused instead of sent with the token.
        segments = model.split("/")
        if (not model or any(s in ("", ".", "..") for s in segments[1:]) or segments[0] in (".", "..")
                or re.search(r"[\s?#%\\\x00-\x1f\x7f]", model)):
            raise ConfigError(f"{sanitize(model)[:MAX_QUOTE]!r} is not a model id",
                              hint="model ids look like @cf/meta/llama-3.3-70b-instruct-fp8-fast")
        path = url_quote(model, safe="@/:._-+")
        if self._is_gateway:
            return f"{self.api_base}/{path}"
        return f"{self.api_base}/accounts/{url_quote(self.account_id, safe='')}/ai/run/{path}"

    def _context(self, url: str, model: str = "") -> RequestContext:
        return RequestContext(model=model, account_id=self.account_id, url=url, redactor=self._redactor)

    def _where(self, context: RequestContext, *, answered: bool = False, text_so_far: bool = False) -> Where:
        return Where(host=context.netloc, connect_timeout=self.connect_timeout,
                     read_timeout=self.read_timeout,
                     answered=answered, text_so_far=text_so_far, redactor=self._redactor)

    # --- chat ---

    async def chat(
        self,
        messages: list[dict[str, str]],
        *,
        model: str,
        max_tokens: int,
        temperature: float | None,
        session_id: str | None,
        stream: bool = True,
    ) -> AsyncIterator[ChatEvent]:
        """Ask ``model`` to answer ``messages``; yield text pieces, retry notices, then a Completion.

        ``session_id`` goes in the ``x-session-affinity`` header, so the service can reuse the
        cached prompt prefix of this conversation.
        """
        url = self.run_url(model)
        body: dict[str, Any] = {"messages": messages, "max_tokens": max_tokens, "stream": stream}
        if temperature is not None:
            body["temperature"] = temperature
        headers = {"Accept": "text/event-stream, application/json"}
        if session_id:
            headers["x-session-affinity"] = session_id
        context = self._context(url, model)
        deadline = Deadline(self.reply_timeout, slack=self.connect_timeout + 2 * self.read_timeout)

        def wait_for(error: EdgechatError, attempt: int) -> float | None:
            if not error.retryable or getattr(error, "code", None) == "reply_timeout":
                return None
            if isinstance(error, ConnectionFailed) and error.code == "refused":
                return refused_wait(attempt)
            return backoff_wait(attempt, getattr(error, "retry_after", None), base=BACKOFF_BASE,
                                rng=self._random)

        async def sleep(seconds: float) -> None:
            try:
                await deadline.run(self._sleep(seconds), longest=seconds)
            except DeadlineExceeded as exc:
                raise transport_error(exc, self._where(context)) from None

        retried = with_retries(lambda: self._attempt(url, body, headers, context, deadline),
                               max_attempts=self.max_retries + 1, wait_for=wait_for, sleep=sleep)
        async with contextlib.aclosing(retried) as events:
            async for event in events:
                yield event

    async def _attempt(self, url: str, body: dict[str, Any], headers: dict[str, str],
                       context: RequestContext, deadline: Deadline) -> AsyncIterator[ChatEvent]:
        response = await self._send(self._http.build_request("POST", url, json=body, headers=headers),
                                    context, deadline)
        try:
            if not 200 <= response.status_code < 300:
                raw, complete = await self._read(response, MAX_ERROR_BODY, context, deadline)
                raise map_error(response.status_code, _retry_after(response), raw, complete, context)
            content_type = response.headers.get("content-type", "")
            if "text/event-stream" in content_type:
                async with contextlib.aclosing(self._events(response, context, deadline)) as events:
                    async for event in events:
                        yield event
            else:
                # Also the answer to a stream request by a model that cannot stream.
                raw, complete = await self._read(response, MAX_JSON_BODY, context, deadline)
                if not complete:
                    raise ProtocolError(f"Workers AI sent an answer larger than {MAX_JSON_BODY // 2**20} MiB",
                                        hint="lower max_tokens", status=response.status_code)
                text, usage = parse_whole(response.status_code, _retry_after(response), raw, context)
                if text:
                    yield TextDelta(text)
                yield Completion(text, usage, _finish_reason(raw) if b"finish_reason" in raw else None)
        finally:
            # Closing a response that was not read to its end drops its connection at once.
            await response.aclose()

    async def _send(self, request: httpx.Request, context: RequestContext,
                    deadline: Deadline | None = None) -> httpx.Response:
        try:
            if deadline is None:
                return await self._http.send(request)
            return await deadline.run(self._http.send(request))
        except (httpx.HTTPError, DeadlineExceeded) as exc:
            raise transport_error(exc, self._where(context)) from None

    async def _read(self, response: httpx.Response, cap: int, context: RequestContext,
                    deadline: Deadline | None = None) -> tuple[bytes, bool]:
        try:
            return await read_capped(response, cap, deadline=deadline)
        except (httpx.HTTPError, DeadlineExceeded) as exc:
            raise transport_error(exc, self._where(context, answered=True)) from None

    async def _events(self, response: httpx.Response, context: RequestContext,
                      deadline: Deadline) -> AsyncIterator[ChatEvent]:
        parser = SSEParser()
        joiner = SurrogateJoiner()  # a character split over two events as JSON escapes is joined
        parts: list[str] = []
        chars = 0
        usage: Usage | None = None
        finish: str | None = None
        done = False
        async with contextlib.aclosing(iter_body(response, deadline=deadline)) as chunks:
            while not done:
                try:
                    chunk = await anext(chunks, None)
                except (httpx.HTTPError, DeadlineExceeded) as exc:
                    raise transport_error(exc, self._where(context, answered=True,
                                                           text_so_far=bool(parts))) from None
                try:
                    events = parser.feed(chunk) if chunk is not None else parser.end()
                except SSEError as exc:
                    raise ProtocolError(f"Workers AI sent a malformed reply stream: {exc}",
                                        hint="try again; if it keeps happening, try another model",
                                        status=response.status_code) from None
                for event in events:
                    if event.data.strip() == "[DONE]":
                        done = True
                        break
                    text, event_usage = parse_event(event.data, context)
                    usage = event_usage or usage
                    if "finish_reason" in event.data:
                        finish = _finish_reason(event.data) or finish
                    text = joiner.feed(text)
                    if text:
                        chars += len(text)
                        if chars > MAX_REPLY_CHARS:
                            raise ProtocolError(
                                f"Workers AI sent a reply longer than {MAX_REPLY_CHARS // 2**20} M "
                                "characters; the rest was not read",
                                hint="lower max_tokens, or try another model", status=response.status_code)
                        parts.append(text)
                        yield TextDelta(text)
                if chunk is None and not done:
                    raise ProtocolError(
                        "The reply stream ended before Workers AI said it was complete"
                        + (" (the reply so far is cut short)" if parts else ""),
                        hint="try again", status=response.status_code)
        rest = joiner.flush()
        if rest:
            parts.append(rest)
            yield TextDelta(rest)
        yield Completion("".join(parts), usage, finish)

    # --- token check ---

    async def verify_token(self) -> None:
        """Check that Cloudflare accepts the token (and that it is active). Raises AuthError if not.

        This says nothing of the token's permissions: Cloudflare's verify endpoint does not check
        scopes. A user token is checked at ``/user/tokens/verify``; when that refuses it, the
        account-owned endpoint ``/accounts/{id}/tokens/verify`` is asked too.
        """
        base = DEFAULT_API_BASE if self._is_gateway else self.api_base
        context = self._context(base)
        data = await self._verify_at(f"{base}/user/tokens/verify", context)
        if data is None and self.account_id:
            account = url_quote(self.account_id, safe="")
            data = await self._verify_at(f"{base}/accounts/{account}/tokens/verify", context)
        if data is None:
            raise AuthError("Cloudflare does not accept the API token", hint=PERMISSIONS_HINT, status=401)
        result = data.get("result") if isinstance(data, dict) else None
        status = result.get("status") if isinstance(result, dict) else None
        if status != "active":
            shown = quote(status, context) if isinstance(status, str) else "not active"
            raise AuthError(f"The API token is {shown}", hint=PERMISSIONS_HINT)

    async def _verify_at(self, url: str, context: RequestContext) -> dict[str, Any] | None:
        """The verify answer as JSON, None when the token is refused there; other failures raise."""
        # The client sends the token itself.
        deadline = Deadline(self.reply_timeout, slack=self.connect_timeout + 2 * self.read_timeout)
        response = await self._send(self._http.build_request("GET", url), context, deadline)
        try:
            raw, complete = await self._read(response, MAX_ERROR_BODY, context, deadline)
        finally:
            await response.aclose()
        if response.status_code in (401, 403):
            return None
        if response.status_code == 404 or (response.status_code == 400 and error_codes(raw) & {7003, 7000}):
            return None  # e.g. the account endpoint for a bad account id
        if not 200 <= response.status_code < 300:
            raise map_error(response.status_code, _retry_after(response), raw, complete, context)
        try:
            return loads(raw)
        except JSONDataError:
            raise ProtocolError(f"The token check got an answer that is not JSON: {excerpt(raw, context)}",
                                status=response.status_code) from None


def _retry_after(response: httpx.Response) -> float | None:
    return parse_retry_after(response.headers.get("retry-after"))


__all__ = ["DEFAULT_API_BASE", "ChatEvent", "Completion", "WorkersAIClient"]
