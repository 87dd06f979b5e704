"""The Workers AI REST client: one chat request, streamed, retried, and every failure typed.

``chat()`` posts the messages to ``{api_base}/accounts/{account_id}/ai/run/{model}`` and yields
:class:`~edgechat_tui.backends.base.TextDelta` pieces as they arrive, a
:class:`~edgechat_tui.backends.base.Retrying` before each wait between attempts, and finally one
:class:`Completion` with the whole text and the usage. A failure is raised as an
:class:`~edgechat_tui.core.errors.EdgechatError` subclass whose message a user can act on.

Choices worth knowing:

- Streams are read as the service documents them (``shared/reference/cloudflare.md`` 1.4): text
  from ``response`` (a string, or a number for some models) or OpenAI-style
  ``choices[0].delta.content``; usage from whichever event carries it; the reply ends at
  ``data: [DONE]``; unknown keys are ignored. A stream that ends without ``[DONE]``, an event that
  is not a JSON object, or bytes that are not UTF-8 raise :class:`~edgechat_tui.core.errors.ProtocolError`:
  a reply that is silently short or corrupt would be saved as if it were whole.
- A connection that breaks in the middle of a stream raises
  :class:`~edgechat_tui.core.errors.ConnectionFailed` (``reached_server=True``), a stream that stops
  sending for ``read_timeout`` seconds :class:`~edgechat_tui.core.errors.RequestTimeout`.
- Retries (capacity, 429, 5xx, timeouts, connection failures) happen only before any text was
  yielded, so a reply is never shown twice. The wait is ``Retry-After`` when the service sends one
  (at most 60 s), else exponential backoff with full jitter.
- Error bodies are read up to 1 MiB, whole JSON answers up to 16 MiB and streamed replies up to 16 M
  characters; past that the connection is dropped, so a runaway answer cannot take the memory (or be
  saved into the history).
- Closing the iterator (``aclose()``, or cancelling the task iterating it) closes the HTTP
  connection at once. Iterate with ``contextlib.aclosing`` so that happens when you stop early.
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
import ssl
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from edgechat_tui import __version__
from edgechat_tui.core.errors import (
    AccountNotFound,
    AuthError,
    BackendError,
    BadRequest,
    ConfigError,
    ConnectionFailed,
    ContextTooLong,
    EdgechatError,
    ModelNotFound,
    NotFound,
    ProtocolError,
    QuotaExceeded,
    RateLimited,
    RequestTimeout,
    ServerError,
)
from edgechat_tui.core.messages import Retrying, TextDelta, Usage
from edgechat_tui.core.sanitize import sanitize
from edgechat_tui.core.secret import Secret
from edgechat_tui.http.retry import backoff_wait, parse_retry_after
from edgechat_tui.http.sse import SSEError, SSEParser

DEFAULT_API_BASE = "https://api.cloudflare.com/client/v4"
#: Most of an error body read; the rest is never downloaded.
MAX_ERROR_BODY = 1024 * 1024
#: Most of a whole (non-streamed) answer read.
MAX_JSON_BODY = 16 * 1024 * 1024
#: Most characters of a streamed reply kept. No model writes this much within max_tokens; a stream that
#: goes on past it is a fault, and would otherwise grow in memory and then in the history file.
MAX_REPLY_CHARS = 16 * 1024 * 1024
#: Backoff: attempt n waits a random time up to min(30 s, BACKOFF_BASE * 2**(n-1)) (agent/retry.py).
BACKOFF_BASE = 1.0
#: Longest piece of server text quoted in a message.
MAX_QUOTE = 200

_PERMISSIONS_HINT = (
    "the API token needs the Workers AI Read and Workers AI Edit permissions (the dashboard's "
    "\"Workers AI\" token template has both); set a new one with: edgechat config set api_token TOKEN"
)
_MODEL_HINT = (
    "choose a model from https://developers.cloudflare.com/workers-ai/models/ and set it with: "
    "edgechat config set model MODEL_ID"
)


_tls_lock = threading.Lock()
_shared_tls: ssl.SSLContext | None = None


def _tls_context(api_base: str) -> ssl.SSLContext:
    """The TLS settings for ``api_base``: httpx's defaults, built once per process.

    Loading the CA bundle costs a noticeable part of a one-shot run, so every client shares one
    context. A plain-HTTP base (a loopback test server, a local proxy) gets a strict context with no
    trust anchors instead: no TLS happens there, and should it ever, verification fails closed.
    """
    global _shared_tls
    if urlsplit(api_base).scheme == "http":
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    with _tls_lock:
        if _shared_tls is None:
            _shared_tls = httpx.create_ssl_context()
        return _shared_tls


@dataclass(frozen=True, slots=True)
class Completion:
    """The reply is complete: its whole ``text`` (untrusted: sanitise before display) and usage."""

    text: str
    usage: Usage | None = None


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
        max_retries: int = 3,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.account_id = account_id
        self.api_base = api_base.rstrip("/")
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_retries = max(0, max_retries)
        # A Secret, and the header only in the client's own Headers (whose repr masks it): a crash report
        # that prints the locals of every frame (Textual's does) then shows the token nowhere.
        self._token = Secret(api_token)
        self._sleep = sleep
        self._random = random.Random()
        self._http = httpx.AsyncClient(
            transport=transport,
            verify=_tls_context(self.api_base) if transport is None else True,
            timeout=httpx.Timeout(connect=connect_timeout, read=read_timeout, write=read_timeout,
                                  pool=connect_timeout),
            headers={"User-Agent": f"edgechat/{__version__}", "Authorization": f"Bearer {api_token}"},
            follow_redirects=False,  # a redirect would carry the token to wherever it points
        )

    def __repr__(self) -> str:
        return f"WorkersAIClient(account_id={self.account_id!r}, api_base={self.api_base!r})"

    async def aclose(self) -> None:
        """Close the pooled connections."""
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
        path = quote(model, safe="@/:._-+")
        if self._is_gateway:
            return f"{self.api_base}/{path}"
        return f"{self.api_base}/accounts/{quote(self.account_id, safe='')}/ai/run/{path}"

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
        context = _Context(model=model, account_id=self.account_id, url=url, token=self._token.reveal())
        max_attempts = self.max_retries + 1
        attempt = 0
        while True:
            attempt += 1
            sent_text = False
            failure: EdgechatError
            try:
                # aclosing: when our caller stops early, the attempt (and its connection) ends now.
                async with contextlib.aclosing(self._attempt(url, body, headers, stream, context)) as events:
                    async for event in events:
                        if isinstance(event, TextDelta) and event.text:
                            sent_text = True
                        yield event
                return
            except EdgechatError as error:
                if sent_text or not error.retryable or attempt >= max_attempts:
                    raise
                failure = error
            wait = self._wait_before(attempt, getattr(failure, "retry_after", None))
            yield Retrying(attempt=attempt, max_attempts=max_attempts, wait=wait, reason=failure.message)
            await self._sleep(wait)

    def _wait_before(self, attempt: int, retry_after: float | None) -> float:
        return backoff_wait(attempt, retry_after, base=BACKOFF_BASE, rng=self._random)

    async def _attempt(self, url: str, body: dict[str, Any], headers: dict[str, str], stream: bool,
                       context: _Context) -> AsyncIterator[ChatEvent]:
        request = self._http.build_request("POST", url, json=body, headers=headers)
        response = await self._send(request, context)
        try:
            if not 200 <= response.status_code < 300:
                raw, complete = await _read_capped(response, MAX_ERROR_BODY, context)
                raise _map_error(response.status_code, _retry_after(response), raw, complete, context)
            content_type = response.headers.get("content-type", "")
            if "text/event-stream" in content_type:
                async with contextlib.aclosing(self._read_stream(response, context)) as events:
                    async for event in events:
                        yield event
            else:
                # Also the answer to a stream request by a model that cannot stream.
                raw, complete = await _read_capped(response, MAX_JSON_BODY, context)
                if not complete:
                    raise ProtocolError(f"Workers AI sent an answer larger than {MAX_JSON_BODY // 2**20} MiB",
                                        hint="lower max_tokens", status=response.status_code)
                text, usage = _parse_whole(response, raw, context)
                if text:
                    yield TextDelta(text)
                yield Completion(text, usage)
        finally:
            # Closing a response that was not read to its end drops its connection at once.
            await response.aclose()

    async def _send(self, request: httpx.Request, context: _Context) -> httpx.Response:
        try:
            return await self._http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise _transport_error(exc, context, phase="request") from None

    async def _read_stream(self, response: httpx.Response, context: _Context) -> AsyncIterator[ChatEvent]:
        async with contextlib.aclosing(response.aiter_bytes()) as chunks:
            async for event in self._events(response, chunks, context):
                yield event

    async def _events(self, response: httpx.Response, chunks: AsyncIterator[bytes],
                      context: _Context) -> AsyncIterator[ChatEvent]:
        parser = SSEParser()
        parts: list[str] = []
        chars = 0
        usage: Usage | None = None
        done = False
        while not done:
            try:
                chunk = await anext(chunks, None)
            except httpx.HTTPError as exc:
                raise _transport_error(exc, context, phase="stream", text_so_far=bool(parts)) from None
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
                text, event_usage = _parse_event(event.data, context)
                usage = event_usage or usage
                if text:
                    chars += len(text)
                    if chars > MAX_REPLY_CHARS:
                        raise ProtocolError(
                            f"Workers AI sent a reply longer than {MAX_REPLY_CHARS // 2**20} M characters; "
                            "the rest was not read", hint="lower max_tokens, or try another model",
                            status=response.status_code)
                    parts.append(text)
                    yield TextDelta(text)
            if chunk is None and not done:
                raise ProtocolError(
                    "The reply stream ended before Workers AI said it was complete"
                    + (" (the reply so far is cut short)" if parts else ""),
                    hint="try again", status=response.status_code)
        yield Completion("".join(parts), usage)

    # --- token check ---

    async def verify_token(self) -> None:
        """Check that Cloudflare accepts the token (and that it is active). Raises AuthError if not.

        This says nothing of the token's permissions: Cloudflare's verify endpoint does not check
        scopes. A user token is checked at ``/user/tokens/verify``; when that refuses it, the
        account-owned endpoint ``/accounts/{id}/tokens/verify`` is asked too.
        """
        base = DEFAULT_API_BASE if self._is_gateway else self.api_base
        context = _Context(model="", account_id=self.account_id, url=base, token=self._token.reveal())
        data = await self._verify_at(f"{base}/user/tokens/verify", context)
        if data is None and self.account_id:
            account = quote(self.account_id, safe="")
            data = await self._verify_at(f"{base}/accounts/{account}/tokens/verify", context)
        if data is None:
            raise AuthError("Cloudflare does not accept the API token", hint=_PERMISSIONS_HINT, status=401)
        result = data.get("result") if isinstance(data, dict) else None
        status = result.get("status") if isinstance(result, dict) else None
        if status != "active":
            shown = _quote(str(status), context) if status is not None else "not active"
            raise AuthError(f"The API token is {shown}", hint=_PERMISSIONS_HINT)

    async def _verify_at(self, url: str, context: _Context) -> dict[str, Any] | None:
        """The verify answer as JSON, None when the token is refused there; other failures raise."""
        request = self._http.build_request("GET", url)  # the client sends the token itself
        response = await self._send(request, context)
        try:
            raw, complete = await _read_capped(response, MAX_ERROR_BODY, context)
        finally:
            await response.aclose()
        if response.status_code in (401, 403):
            return None
        if response.status_code == 404 or (response.status_code == 400 and _codes(raw) & {7003, 7000}):
            return None  # e.g. the account endpoint for a bad account id
        if not 200 <= response.status_code < 300:
            raise _map_error(response.status_code, _retry_after(response), raw, complete, context)
        try:
            return json.loads(raw)
        except ValueError:
            raise ProtocolError(f"The token check got an answer that is not JSON: {_excerpt(raw, context)}",
                                status=response.status_code) from None


# --- Mapping answers to errors ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Context:
    """What error messages may mention (and the one thing they must not)."""

    model: str
    account_id: str
    url: str
    token: str = field(repr=False)  # for masking echoes of it; never shown

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or self.url


async def _read_capped(response: httpx.Response, limit: int, context: _Context) -> tuple[bytes, bool]:
    """Read at most ``limit`` bytes of the body. Returns the bytes and whether that was all of it."""
    buffer = bytearray()
    try:
        async for chunk in response.aiter_bytes():
            buffer += chunk
            if len(buffer) > limit:
                return bytes(buffer[:limit]), False
    except httpx.HTTPError as exc:
        raise _transport_error(exc, context, phase="body") from None
    return bytes(buffer), True


def _redact(text: str, context: _Context) -> str:
    return text.replace(context.token, "[redacted]") if context.token else text


def _quote(text: str, context: _Context, limit: int = MAX_QUOTE) -> str:
    """Server (or user) text made safe and short for a message: sanitised, one line, no token."""
    text = _redact(sanitize(text), context)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _excerpt(raw: bytes, context: _Context) -> str:
    """A short readable excerpt of a body that is not JSON (an HTML page's text, without tags)."""
    text = raw[:8192].decode("utf-8", "replace")
    text = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", text)
    text = re.sub(r"<[^>]*>", " ", text)
    quoted = _quote(text, context, limit=120)
    return f"“{quoted}”" if quoted else "an empty body"


def _codes(raw: bytes) -> set[int]:
    try:
        data = json.loads(raw)
    except ValueError:
        return set()
    errors = data.get("errors") if isinstance(data, dict) else None
    return {e["code"] for e in errors or [] if isinstance(e, dict) and isinstance(e.get("code"), int)}


def _retry_after(response: httpx.Response) -> float | None:
    return parse_retry_after(response.headers.get("retry-after"))


def _map_error(status: int, retry_after: float | None, raw: bytes, complete: bool,
               context: _Context, *, in_stream: bool = False) -> BackendError:
    """The typed error for a non-2xx answer (or an error event), from its codes, status and wording."""
    errors: list[tuple[int | None, str]] = []
    parsed = False
    if complete:
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if isinstance(data, dict):
            parsed = True
            for item in data.get("errors") or []:
                if isinstance(item, dict):
                    code = item.get("code")
                    errors.append((code if isinstance(code, int) else None, str(item.get("message") or "")))
            if not errors and isinstance(data.get("error"), str):  # some proxies answer {"error": "..."}
                errors.append((None, data["error"]))
    codes = {code for code, _ in errors if code is not None}
    code = next(iter(sorted(codes)), None)
    said = "; ".join(_quote(re.sub(r"^\s*AiError:\s*", "", m), context) for _, m in errors if m)
    wording = said.lower()
    detail = f": {said}" if said else ""
    if not parsed:
        detail = f": {_excerpt(raw, context)}"
        if not complete:
            detail += " (a body of more than 1 MiB, not read)"
    common = {"status": status, "code": code}

    if 10000 in codes or (status in (401, 403) and not codes & {5016, 3023, 5018, 3041}):
        what = "refused the API token" if status != 403 else "says the API token may not do this"
        return AuthError(f"Cloudflare {what} ({status} {said or 'Authentication error'})",
                         hint=_PERMISSIONS_HINT, **common)
    if 7003 in codes:
        return AccountNotFound(
            f"Cloudflare knows no account {_quote(context.account_id, context, 64)!r} for this token",
            hint="check account_id: it is the 32-character id shown on the dashboard's Workers AI page; "
                 "set it with: edgechat config set account_id ID", **common)
    if codes & {5007, 3042}:
        return ModelNotFound(f"Workers AI has no model {_quote(context.model, context, 100)!r}",
                             hint=_MODEL_HINT, **common)
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
                             hint=f"check api_base ({_quote(context.host, context, 80)}) and your network",
                             **common)
    if in_stream:
        return ProtocolError(f"Workers AI failed in the middle of the reply{detail}", hint="try again",
                             **common)
    if status == 404:
        host = _quote(context.host, context, 80)
        return NotFound(f"There is no Workers AI API at {host} ({status}){detail}", hint="check api_base",
                        **common)
    return BadRequest(f"Workers AI refused the request ({status}){detail}",
                      hint="if this keeps happening with this model, try another", **common)


def _transport_error(exc: httpx.HTTPError, context: _Context, *, phase: str,
                     text_so_far: bool = False) -> EdgechatError:
    """The typed error for a failure of the connection itself (no HTTP answer to map)."""
    host = _quote(context.host, context, 80)
    why = _quote(str(exc) or type(exc).__name__, context, 120)
    if isinstance(exc, httpx.ConnectTimeout):
        return RequestTimeout(f"Could not connect to {host} in time", may_have_answered=False,
                              hint="check your network connection")
    if isinstance(exc, httpx.PoolTimeout):
        return RequestTimeout(f"No connection to {host} became free in time", may_have_answered=False,
                              hint="try again")
    if isinstance(exc, httpx.TimeoutException):
        where = "in the middle of the reply" if text_so_far else "before answering"
        return RequestTimeout(f"Workers AI stopped sending {where}",
                              hint="try again; the service may be busy")
    if isinstance(exc, httpx.ConnectError):
        return ConnectionFailed(f"Could not connect to {host}: {why}", reached_server=False,
                                hint="check your network connection, and api_base if you changed it")
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return ConfigError(f"api_base is not a usable URL: {why}",
                           hint=f"the default is {DEFAULT_API_BASE}; "
                                "set it with: edgechat config set api_base URL")
    if isinstance(exc, httpx.DecodingError):
        return ProtocolError(f"Workers AI sent a body that could not be decoded: {why}", hint="try again")
    if isinstance(exc, httpx.TransportError):
        if phase == "request":
            message = f"The connection to {host} closed before an answer came"
        else:
            message = f"The connection to {host} broke before the reply was complete"
        return ConnectionFailed(f"{message} ({why})", reached_server=True,
                                hint="check your network connection and try again")
    return ProtocolError(f"The request to {host} failed: {why}", hint="try again")


# --- Reading successful answers ---------------------------------------------------------------------


def _text_of(value: Any) -> str | None:
    """``response`` as text: strings as they are, numbers written out (some models send them)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return json.dumps(value)
    return None


def _parse_event(data: str, context: _Context) -> tuple[str, Usage | None]:
    """One stream event's text and usage. Raises ProtocolError for an event that is not understood."""
    try:
        event = json.loads(data)
    except ValueError:
        event = None
    if not isinstance(event, dict):
        shown = _quote(data, context, 80)
        raise ProtocolError(f"Workers AI sent malformed data in the reply stream: “{shown}”",
                            hint="try again; if it keeps happening, try another model")
    if event.get("errors") or event.get("error"):
        raise _stream_error(event, context)
    usage = Usage.from_json(event.get("usage"))
    response = event.get("response")
    if response is not None:
        text = _text_of(response)
        if text is None:
            raise ProtocolError("Workers AI sent a reply piece that is not text", hint="try another model")
        return text, usage
    choices = event.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        delta = choices[0].get("delta")
        content = delta.get("content") if isinstance(delta, dict) else None
        return (content if isinstance(content, str) else ""), usage
    return "", usage


def _stream_error(event: dict[str, Any], context: _Context) -> BackendError:
    """An error reported inside a stream (after a 200): typed by its code like any other."""
    errors = event.get("errors")
    if not isinstance(errors, list):
        error = event.get("error")
        errors = [error if isinstance(error, dict) else {"message": str(error)}]
    return _map_error(200, None, json.dumps({"errors": errors}).encode(), True, context, in_stream=True)


def _parse_whole(response: httpx.Response, raw: bytes, context: _Context) -> tuple[str, Usage | None]:
    """Text and usage from a whole JSON answer in the Cloudflare envelope."""
    try:
        data = json.loads(raw)
    except ValueError:
        raise ProtocolError(f"Workers AI answered with something that is not JSON: {_excerpt(raw, context)}",
                            hint="check api_base and your network", status=response.status_code) from None
    if not isinstance(data, dict):
        raise ProtocolError("Workers AI answered with JSON that is not its envelope",
                            status=response.status_code)
    if data.get("success") is False or data.get("errors"):
        raise _map_error(response.status_code, _retry_after(response), raw, True, context, in_stream=True)
    result = data.get("result")
    if not isinstance(result, dict):
        raise ProtocolError("Workers AI's answer has no result", hint="try again",
                            status=response.status_code)
    usage = Usage.from_json(result.get("usage"))
    response_value = result.get("response")
    if response_value is not None:
        text = _text_of(response_value)
        if text is None:  # JSON mode answers with an object
            text = json.dumps(response_value, ensure_ascii=False)
        return text, usage
    choices = result.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message")
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            return content, usage
    raise ProtocolError("Workers AI's answer holds no reply text", hint="try another model",
                        status=response.status_code)


__all__ = ["DEFAULT_API_BASE", "ChatEvent", "Completion", "WorkersAIClient"]
