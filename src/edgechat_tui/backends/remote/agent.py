"""RemoteAgent: a deployed agent endpoint (the seed's Worker, or ours) as an :class:`Agent`.

The protocol is docs/protocol.md: the seed contract (``POST /api/chat`` answering JSON) plus
extensions a server announces in its health answer (streaming, history, reset, auth). The client
takes the reply by the answer's content type, never by what it asked for, so one code path serves
the seed's Worker and ours.

A chat request is not idempotent: the server may store a turn whose answer never reached us. So a
message is sent again only when it certainly did not reach the server (connection refused, name not
resolved) or when the server said it did not process it (429 ``rate_limited``, 503), and only before
any text arrived. Everything else is reported, saying when the agent may have stored the turn.

Nothing here ever puts the token in a message, a repr or a log line: it lives in one attribute and
goes out in one header.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import html
import ipaddress
import json
import logging
import re
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from edgechat_tui import __version__
from edgechat_tui.backends.base import Agent, TurnInProgress
from edgechat_tui.core.errors import (
    AuthError,
    BackendError,
    BadRequest,
    ConnectionFailed,
    ContextTooLong,
    EdgechatError,
    NotFound,
    NotSupported,
    ProtocolError,
    QuotaExceeded,
    RateLimited,
    RequestTimeout,
    ServerError,
    UsageError,
)
from edgechat_tui.core.messages import AgentInfo, Done, Event, Message, Retrying, TextDelta, Usage
from edgechat_tui.core.sanitize import sanitize
from edgechat_tui.core.secret import Secret
from edgechat_tui.core.userid import validate_user_id
from edgechat_tui.http.retry import MAX_RETRY_WAIT, backoff_wait, parse_retry_after
from edgechat_tui.http.sse import ServerSentEvent, SSEError, SSEParser

log = logging.getLogger(__name__)

#: The largest JSON answer read (a reply, a history). A bigger one is refused, not buffered.
MAX_JSON_BYTES = 8 * 1024 * 1024
#: The longest streamed reply kept; text beyond it ends the turn with an error.
MAX_REPLY_CHARS = 8 * 1024 * 1024
#: The largest single event of a stream (one piece of a reply is a few bytes).
MAX_EVENT_BYTES = 1024 * 1024
#: Of an error answer, only this much is read: enough for any error body or the title of an HTML page.
MAX_ERROR_BYTES = 64 * 1024
#: Of server text (errors, details, titles), this many characters are shown.
MAX_SHOWN_CHARS = 300
#: A Retry-After longer than MAX_RETRY_WAIT (agent/retry.py) is not waited for: the user gets the error
#: and decides.

_CHAT_ACCEPT = "text/event-stream, application/json"
_TOKEN_HINT = "check remote_token, or EDGECHAT_REMOTE_TOKEN"
_URL_HINT = "check the --remote URL: it is the agent's base, such as https://host or https://host/prefix"
_MAY_HAVE_STORED_PART = "the agent may have stored the turn, whole or in part: check before sending it again"
_MAY_HAVE_ANSWERED = "the agent may still have stored your message and its reply: check before sending again"


# --- the endpoint's URL ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A checked agent URL: ``base`` without a trailing slash, ``shown`` for the header (no scheme)."""

    base: str
    scheme: str
    shown: str
    loopback: bool

    def url(self, path: str) -> str:
        """The URL of ``path`` ("/", "/api/chat") under the base, keeping the path prefix."""
        return self.base + path


def parse_endpoint(url: str) -> Endpoint:
    """Check ``url`` as an agent endpoint's base URL; raise UsageError saying what is wrong.

    Only http and https; a path prefix is kept (``https://host/team`` -> ``https://host/team/api/chat``);
    no user name or password in it (they would travel in clear and show in messages: use remote_token).
    """
    text = url.strip() if isinstance(url, str) else ""
    if not text:
        raise UsageError("The remote URL is empty.", hint="give the agent's URL, such as https://host")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        shown = f"'{scheme}:'" if scheme else "none"
        raise UsageError(
            f"The remote URL must start with http:// or https:// (its scheme is {shown}).",
            hint="give the agent's URL, such as https://host or https://host/prefix",
        )
    if "@" in parts.netloc:
        # Not echoed: the part before '@' may be a password.
        raise UsageError("The remote URL must not carry a user name or password.",
                         hint="give the token with remote_token instead")
    try:
        host, _port = parts.hostname, parts.port
    except ValueError:
        raise UsageError(f"The remote URL has an invalid port: {_shown(parts.netloc)}.") from None
    if not host:
        raise UsageError(f"The remote URL has no host: {_shown(text)}.",
                         hint="give the agent's URL, such as https://host")
    if parts.query or parts.fragment:
        raise UsageError("The remote URL must not have a query (?...) or a fragment (#...).",
                         hint="give the agent's base URL, such as https://host/prefix")
    path = parts.path.rstrip("/")
    netloc = parts.netloc.lower()
    return Endpoint(
        base=f"{scheme}://{netloc}{path}",
        scheme=scheme,
        shown=f"{netloc}{path}",
        loopback=is_loopback(host),
    )


def is_loopback(host: str) -> bool:
    """True for names and addresses that never leave this machine."""
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


# --- what a server offers ----------------------------------------------------------------------------


_NONE: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the health answer said. The default (nothing known) is the seed's: no extensions."""

    service: str | None = None
    protocol: int | None = None
    names: frozenset[str] = field(default_factory=frozenset)
    auth: bool = False
    model: str | None = None

    @classmethod
    def from_health(cls, data: dict[str, Any]) -> Capabilities:
        """Read a health answer leniently: unknown names are kept but unused, wrong types ignored."""
        names = data.get("capabilities")
        protocol = data.get("protocol")
        service, model = data.get("service"), data.get("model")
        return cls(
            service=_shown(service, 80) if isinstance(service, str) and service.strip() else None,
            protocol=protocol if isinstance(protocol, int) and not isinstance(protocol, bool) else None,
            names=frozenset(n for n in names if isinstance(n, str)) if isinstance(names, list) else _NONE,
            auth=data.get("auth") is True,
            model=_shown(model, 120) if isinstance(model, str) and model.strip() else None,
        )

    def describe(self) -> str:
        """A short status for the header: who answered and what it offers."""
        who = self.service or "an agent"
        if self.protocol is None and not self.names:
            return f"reachable: {who} (seed protocol)"
        offered = ", ".join(sorted(self.names)) or "no extensions"
        return f"reachable: {who}, protocol {self.protocol if self.protocol is not None else '?'} ({offered})"


# --- the agent ---------------------------------------------------------------------------------------


@dataclass
class _Exchange:
    """How far a request got, for the error that ends it: did an answer start, did text arrive."""

    answered: bool = False  # response headers arrived: the request certainly reached the server
    parts: list[str] = field(default_factory=list)  # the reply's text shown so far


@dataclass
class _Turn(_Exchange):
    """A chat turn in progress: the user's message, and whether the turn completed (and was kept)."""

    user_message: Message = field(default_factory=lambda: Message(role="user", content=""))
    chars: int = 0
    completed: bool = False


class RemoteAgent(Agent):
    """Talks to an agent endpoint at ``url`` as ``user``.

    ``timeout`` is how long to wait for data (the whole reply from a seed server, which answers only
    when the model is done; between two pieces from a streaming one); ``connect_timeout`` for a
    connection. ``transport`` replaces httpx's network transport (tests, proxies). ``warn`` receives
    warnings for the user (a token over plain http); without it they go to the log.
    """

    def __init__(
        self,
        url: str,
        user: str,
        *,
        token: str | Secret | None = None,
        timeout: float = 120.0,
        connect_timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        warn: Callable[[str], None] | None = None,
        max_retries: int = 3,
        retry_delay: float = 1.0,
    ) -> None:
        self._user = validate_user_id(user)
        self._endpoint = parse_endpoint(url)
        if isinstance(token, Secret):
            token = token.reveal()
        if token is not None and (not token.strip() or any(ch.isspace() or ord(ch) < 32 or ord(ch) > 126
                                                           for ch in token)):
            # Not echoed, not even in part: it is a secret.
            raise UsageError("remote_token is empty or holds characters an HTTP header cannot carry.",
                             hint="set it again, without spaces or line breaks")
        # Held in a Secret so that vars(), debuggers and tracebacks with locals do not show it either.
        self.__token = Secret(token) if token else None
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._read_timeout = timeout
        self._connect_timeout = connect_timeout
        self._transport = transport
        self._warn = warn or log.warning
        self._max_retries = max(0, max_retries)
        self._retry_delay = max(0.0, retry_delay)
        self._client: httpx.AsyncClient | None = None
        self._caps: Capabilities | None = None
        self._streamed = False  # a chat answer came as a stream even if the health did not say so
        self._turns: list[Message] = []
        self._last_count: int | None = None
        if self.__token and self._endpoint.scheme == "http" and not self._endpoint.loopback:
            self._warn(
                f"The remote token is sent over plain http to {self._endpoint.shown}: anyone on the way "
                "can read it. Use an https:// URL."
            )

    def __repr__(self) -> str:
        token = "set" if self.__token else "none"
        return f"RemoteAgent(url={self._endpoint.base!r}, user={self._user!r}, token={token})"

    # --- what it is ---------------------------------------------------------------------------

    @property
    def endpoint(self) -> Endpoint:
        return self._endpoint

    @property
    def capabilities(self) -> Capabilities | None:
        """What the health check learnt; None before it ran."""
        return self._caps

    @property
    def info(self) -> AgentInfo:
        caps = self._caps or Capabilities()
        return AgentInfo(
            user=self._user,
            mode="remote",
            model=caps.model,
            host=self._endpoint.shown,
            streams="stream" in caps.names or self._streamed,
            shares_history="history" in caps.names,
            can_reset="reset" in caps.names,
        )

    @property
    def session_messages(self) -> list[Message]:
        """This session's turns, oldest first: what the screen shows when the agent does not share history."""
        return list(self._turns)

    # --- HTTP plumbing ------------------------------------------------------------------------

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=self._transport,
                verify=_tls_context(),
                timeout=self._timeout,
                follow_redirects=False,  # a redirected POST could be sent twice, or to another host
                headers={"User-Agent": f"edgechat/{__version__}"},
            )
        return self._client

    def _headers(self, accept: str, *, auth: bool = True) -> dict[str, str]:
        headers = {"Accept": accept}
        if auth and self.__token:
            headers["Authorization"] = f"Bearer {self.__token.reveal()}"
        return headers

    def _redact(self, text: str) -> str:
        """``text`` with the token masked: a server may echo what it was sent into its error text."""
        return text.replace(self.__token.reveal(), "********") if self.__token else text

    @contextlib.contextmanager
    def _redacting(self) -> Iterator[None]:
        """Mask the token in any error raised inside, before anyone prints it."""
        try:
            yield
        except EdgechatError as error:
            error.message = self._redact(error.message)
            error.hint = self._redact(error.hint) if error.hint else error.hint
            error.args = (error.message, *error.args[1:])
            raise

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    # --- health and capabilities --------------------------------------------------------------

    async def check(self) -> str:
        """GET the base URL; learn what the server offers. Raises when it is not a healthy agent."""
        with self._redacting():
            return self._redact(await self._check())

    async def _check(self) -> str:
        url = self._endpoint.url("/")
        turn = _Exchange()
        with self._transport_errors(turn):
            headers = self._headers("application/json", auth=False)  # the health check never needs a token
            async with self._http().stream("GET", url, headers=headers) as response:
                turn.answered = True
                if response.status_code != 200:
                    raise await self._error_from(response, url)
                body = await _read_capped(response, MAX_JSON_BYTES)
        data = _json_object(body)
        if data is None or not isinstance(data.get("status"), str):
            raise ProtocolError(f"{url} does not answer as an agent: {_describe_body(response, body)}.",
                                hint=_URL_HINT)
        if data["status"].lower() != "ok":
            raise ServerError(f"The agent says it is not healthy: status {_shown(data['status'], 60)}.",
                              status=response.status_code)
        self._caps = Capabilities.from_health(data)
        status = self._caps.describe()
        if self._caps.auth and not self.__token:
            status += "; it needs a token: set remote_token"
        return status

    async def _capabilities(self) -> Capabilities:
        if self._caps is None:
            await self.check()
        assert self._caps is not None
        return self._caps

    # --- history and reset --------------------------------------------------------------------

    async def history(self) -> list[Message] | None:
        """The stored conversation when the agent shares it; None when it does not (the seed's)."""
        with self._redacting():
            return await self._history()

    async def _history(self) -> list[Message] | None:
        if "history" not in (await self._capabilities()).names:
            return None
        url = self._endpoint.url("/api/history")
        turn = _Exchange()
        with self._transport_errors(turn):
            async with self._http().stream("GET", url, params={"userId": self._user},
                                           headers=self._headers("application/json")) as response:
                turn.answered = True
                if response.status_code != 200:
                    raise await self._error_from(response, str(response.url))
                body = await _read_capped(response, MAX_JSON_BYTES)
        data = _json_object(body)
        messages = data.get("messages") if data is not None else None
        if not isinstance(messages, list):
            raise ProtocolError(f"The agent's history answer has no messages: "
                                f"{_describe_body(response, body)}.")
        history: list[Message] = []
        for item in messages:
            try:
                message = Message.from_json(item)
            except ValueError:
                continue  # one unreadable entry should not hide the rest of the conversation
            if message.role != "system":
                history.append(message)
        return history

    async def reset(self) -> str | None:
        """Start a new conversation on the server; NotSupported where the agent has no reset."""
        with self._redacting():
            return await self._reset()

    async def _reset(self) -> str | None:
        if "reset" not in (await self._capabilities()).names:
            raise NotSupported("/clear is not available on this agent.",
                               hint="it does not offer a reset: the conversation goes on")
        url = self._endpoint.url("/api/reset")
        turn = _Exchange()
        with self._transport_errors(turn):
            async with self._http().stream("POST", url, json={"userId": self._user},
                                           headers=self._headers("application/json")) as response:
                turn.answered = True
                if response.status_code != 200:
                    raise await self._error_from(response, url)
                body = await _read_capped(response, MAX_JSON_BYTES)
        data = _json_object(body)
        if data is None:
            raise ProtocolError(f"The agent's reset answer is not JSON: {_describe_body(response, body)}.")
        if data.get("ok") is False:
            raise BackendError("The agent did not start a new conversation.", status=response.status_code)
        self._turns.clear()
        self._last_count = 0
        archived = data.get("archived")
        return _shown(archived, 200) if isinstance(archived, str) and archived else None

    # --- a turn -------------------------------------------------------------------------------

    async def _run_turn(self, turn: TurnInProgress) -> AsyncIterator[Event]:
        with self._redacting():
            async with contextlib.aclosing(self._turn(_Turn(user_message=turn.user_message))) as events:
                async for event in events:
                    yield event

    async def _turn(self, turn: _Turn) -> AsyncIterator[Event]:
        attempts = self._max_retries + 1
        for attempt in range(1, attempts + 1):
            try:
                async with contextlib.aclosing(self._attempt(turn)) as events:
                    async for event in events:
                        yield event
                return
            except (ConnectionFailed, RateLimited, ServerError) as exc:
                wait = self._retry_wait(exc, attempt)
                if wait is None or turn.parts or attempt == attempts:
                    raise
                reason = self._redact(exc.message)
                yield Retrying(attempt=attempt, max_attempts=attempts, wait=wait, reason=reason)
                await asyncio.sleep(wait)

    def _retry_wait(self, exc: BackendError, attempt: int) -> float | None:
        """How long to wait before sending again, or None when sending again could duplicate the turn."""
        if isinstance(exc, ConnectionFailed):
            # A name that does not exist will not exist in a second either: only a resolver's
            # temporary failure and a refused connection (a server restarting) are worth another try.
            if exc.reached_server or exc.code not in ("refused", "dns_temporary"):
                return None
            retry_after = None
        elif isinstance(exc, RateLimited):
            if exc.code not in (None, "rate_limited"):
                return None
            retry_after = exc.retry_after
        elif isinstance(exc, ServerError):
            if exc.status != 503:
                return None
            retry_after = exc.retry_after
        else:
            return None
        if retry_after is not None and retry_after > MAX_RETRY_WAIT:
            return None
        return round(backoff_wait(attempt, retry_after, base=self._retry_delay), 3)

    async def _attempt(self, turn: _Turn) -> AsyncIterator[Event]:
        url = self._endpoint.url("/api/chat")
        turn.answered = False
        body = {"message": turn.user_message.content, "userId": self._user}
        with self._transport_errors(turn, chat=True):
            async with self._http().stream("POST", url, json=body, headers=self._headers(_CHAT_ACCEPT)) \
                    as response:
                turn.answered = True
                if not 200 <= response.status_code < 300:
                    raise await self._error_from(response, url)
                if _media_type(response) == "text/event-stream":
                    self._streamed = True
                    async with contextlib.aclosing(self._read_stream(response, turn)) as events:
                        async for event in events:
                            yield event
                else:
                    for event in await self._read_json_reply(response, turn):
                        yield event

    async def _read_json_reply(self, response: httpx.Response, turn: _Turn) -> list[Event]:
        """The seed's answer: the whole reply at once. The turn is kept before it is shown."""
        body = await _read_capped(response, MAX_JSON_BYTES, hint=_MAY_HAVE_ANSWERED)
        data = _json_object(body)
        reply = data.get("message") if data is not None else None
        if not isinstance(reply, str):
            what = _describe_body(response, body) if data is None else "it has no reply in it"
            raise ProtocolError(f"The agent's answer cannot be read: {what}.",
                                hint=_URL_HINT if _looks_like_html(response, body) else _MAY_HAVE_ANSWERED)
        done = self._complete(turn, reply, data.get("messageCount"), None)
        return [TextDelta(reply), done] if reply else [done]

    async def _read_stream(self, response: httpx.Response, turn: _Turn) -> AsyncIterator[Event]:
        """A streamed answer: a TextDelta per ``delta`` event, Done at ``done``."""
        async for name, data in _sse_events(response):
            if name == "delta":
                piece = data.get("text")
                if not isinstance(piece, str):
                    raise ProtocolError("The agent sent a piece of its reply without text.",
                                        hint=_MAY_HAVE_ANSWERED)
                if not piece:
                    continue
                turn.chars += len(piece)
                if turn.chars > MAX_REPLY_CHARS:
                    raise ProtocolError(
                        f"The reply is longer than {MAX_REPLY_CHARS // (1024 * 1024)} M characters; the rest "
                        "was not read.", hint=_MAY_HAVE_ANSWERED)
                turn.parts.append(piece)
                yield TextDelta(piece)
            elif name == "done":
                reply = data.get("message")
                if not isinstance(reply, str):
                    reply = "".join(turn.parts)
                usage = Usage.from_json(data.get("usage"))
                yield self._complete(turn, reply, data.get("messageCount"), usage)
                return
            elif name == "error":
                raise self._error_from_event(data)
            # Unknown event names are ignored, as the protocol says.
        raise ProtocolError(
            "The reply stream ended before the agent said it was done." if turn.parts
            else "The reply stream ended without a reply.",
            hint=_MAY_HAVE_STORED_PART,
        )

    def _complete(self, turn: _Turn, reply: str, count: Any, usage: Usage | None) -> Done:
        """Keep the finished turn in this session and build its Done."""
        model = self._caps.model if self._caps else None
        message = Message(role="assistant", content=reply, model=model, usage=usage)
        if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
            message_count = count
        else:  # a server that does not count: ours is a best guess, never shown as exact
            message_count = (self._last_count or len(self._turns)) + 2
        self._last_count = message_count
        self._turns += [turn.user_message, message]
        turn.completed = True
        return Done(message=message, message_count=message_count, usage=usage)

    async def _save_stopped(self, turn: TurnInProgress) -> Done | None:
        # The user stopped the reply (or it broke off): keep what arrived, marked stopped. The server
        # may have stored the turn too (whole or as it was), which is its business.
        if len(self._turns) >= 2 and self._turns[-2] is turn.user_message:
            return None  # kept already: a whole reply arrived and completed before the stream closed
        model = self._caps.model if self._caps else None
        reply = Message(role="assistant", content=turn.partial, model=model, stopped=True)
        self._turns += [turn.user_message, reply]
        count = (self._last_count or 0) + 2
        return Done(message=reply, message_count=count, stopped=True)

    # --- failures -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _transport_errors(self, turn: _Exchange, *, chat: bool = False) -> Iterator[None]:
        """Turn httpx's transport failures inside into the typed errors users read."""
        host = self._endpoint.shown
        try:
            yield
        except httpx.ConnectTimeout:
            raise ConnectionFailed(
                f"Could not connect to {host} within {self._connect_timeout:g} s.",
                hint=("your message was not sent; " if chat else "") + "check the URL and your network",
                code="connect_timeout", reached_server=False) from None
        except httpx.ConnectError as exc:
            reason = _connect_failure(exc)
            messages = {
                "dns": f"The agent's host name {_host_of(host)!r} does not resolve.",
                "dns_temporary": f"The agent's host name {_host_of(host)!r} could not be resolved just now.",
                "refused": f"{host} refused the connection: no agent is listening there.",
                "tls": f"A secure connection to {host} failed: {_shown(_root(exc), 160)}.",
            }
            raise ConnectionFailed(
                messages.get(reason, f"Could not connect to {host}: {_shown(_root(exc), 160)}."),
                hint=("your message was not sent; " if chat else "") + "check --remote and your network",
                code=reason, reached_server=False) from None
        except httpx.TimeoutException as exc:
            if isinstance(exc, httpx.ReadTimeout) and turn.parts:
                raise RequestTimeout(
                    f"The agent stopped sending for {self._read_timeout:g} s; the reply is incomplete.",
                    hint=_MAY_HAVE_ANSWERED, code="timeout") from None
            if chat:
                raise RequestTimeout(
                    f"No answer from the agent within {self._read_timeout:g} s.",
                    hint=f"{_MAY_HAVE_ANSWERED}; a slow model may need a longer remote_timeout",
                    code="timeout", may_have_answered=not isinstance(exc, httpx.PoolTimeout)) from None
            raise RequestTimeout(f"No answer from {host} within {self._read_timeout:g} s.",
                                 hint="try again later", code="timeout") from None
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError, httpx.CloseError):
            if not turn.answered:
                raise ConnectionFailed(
                    f"The connection to {host} was lost before the agent answered.",
                    hint=_MAY_HAVE_ANSWERED if chat else "try again", code="lost",
                    reached_server=True) from None
            if chat:
                raise ProtocolError(
                    "The connection was lost in the middle of the agent's reply." if turn.parts
                    else "The connection was lost while the agent's answer arrived.",
                    hint=_MAY_HAVE_STORED_PART) from None
            raise ProtocolError(f"The connection was lost while {host} answered.", hint="try again") from None
        except httpx.DecodingError as exc:
            raise ProtocolError(f"The agent's answer could not be decoded: {_shown(str(exc), 120)}.",
                                hint=_MAY_HAVE_ANSWERED if chat else None) from None
        except httpx.TooManyRedirects:
            raise BackendError(f"{host} redirects in a loop.", hint=_URL_HINT) from None
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise UsageError(f"The remote URL cannot be used: {_shown(str(exc), 120)}.",
                             hint=_URL_HINT) from None


    async def _error_from(self, response: httpx.Response, url: str) -> EdgechatError:
        """The typed error for a failed answer, read (at most MAX_ERROR_BYTES of it) and mapped."""
        try:
            body = await _read_capped(response, MAX_ERROR_BYTES, truncate=True)
        except (httpx.TransportError, httpx.DecodingError):
            body = b""
        return error_from_answer(response.status_code, response.headers, body, url,
                                 has_token=self.__token is not None)

    def _error_from_event(self, data: dict[str, Any]) -> EdgechatError:
        """An ``error`` event: mapped like an answer with the status its code stands for."""
        code = data.get("code")
        status = _STATUS_OF_CODE.get(code, 500) if isinstance(code, str) else 500
        return error_from_answer(status, httpx.Headers({"content-type": "application/json"}),
                                 json.dumps(data).encode(), self._endpoint.url("/api/chat"),
                                 has_token=self.__token is not None)


# --- turning answers into errors ---------------------------------------------------------------------

_STATUS_OF_CODE = {
    "bad_request": 400,
    "unauthorized": 401,
    "not_found": 404,
    "context_too_long": 413,
    "rate_limited": 429,
    "quota_exceeded": 429,
    "model_unavailable": 502,
    "internal": 500,
}


def error_from_answer(status: int, headers: httpx.Headers, body: bytes, url: str, *,
                      has_token: bool = False) -> EdgechatError:
    """The typed error a user reads for a failed answer: by its ``code`` when it has one, else its status.

    Copes with the seed's ``{"error","details"}``, our ``{"error","code","details","retryAfter"}``, plain
    text, HTML error pages and empty bodies. Server text is sanitised and shortened.
    """
    content_type = headers.get("content-type", "")
    data = _json_object(body)
    code = data.get("code") if data is not None and isinstance(data.get("code"), str) else None
    said = _what_it_said(data, content_type, body)
    with_said = f": {said}" if said else ""
    retry_after = _retry_after(headers, data)
    kw: dict[str, Any] = {"status": status, "code": code}

    if code == "unauthorized" or status in (401, 403):
        if has_token:
            return AuthError(f"The agent refused the token ({status}){with_said}.", hint=_TOKEN_HINT, **kw)
        return AuthError(f"The agent needs a token ({status}){with_said}.",
                         hint="set remote_token, or EDGECHAT_REMOTE_TOKEN", **kw)
    if code == "not_found" or status == 404:
        hint = _URL_HINT
        if "/api/chat/api/" in url or url.endswith("/api/chat/"):
            hint = "leave /api/chat out of the --remote URL: give the agent's base URL"
        return NotFound(f"No agent endpoint at {url} (404).", hint=hint, **kw)
    if code == "context_too_long" or status == 413:
        return ContextTooLong(f"The message is too long for the agent ({status}){with_said}.",
                              hint="shorten it, or start a new conversation", **kw)
    if code == "quota_exceeded":
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
        where = f" to {_shown(location, 200)}" if location else ""
        return BackendError(f"The agent's URL redirects{where} ({status}).",
                            hint="use the URL it redirects to as --remote", **kw)
    if status >= 500 or code in ("model_unavailable", "internal"):
        if code == "model_unavailable":
            message, hint = f"The agent's model failed ({status}){with_said}.", "try again later"
        elif _looks_like_html(headers, body):
            message = f"The agent or a proxy before it failed ({status}){with_said}."
            hint = "try again later; if it persists, check the --remote URL"
        else:
            message = f"The agent failed to answer ({status}){with_said}."
            hint = "try again later" if status != 500 else (
                "try again later; the agent may have kept your message without a reply")
        return ServerError(message, hint=hint, retry_after=retry_after, **kw)
    hint = _URL_HINT if _looks_like_html(headers, body) else None
    return BackendError(f"The agent answered {status}{with_said}.", hint=hint, **kw)


def _what_it_said(data: dict[str, Any] | None, content_type: str, body: bytes) -> str:
    """The server's own words about a failure: error and details, a page's title, or plain text."""
    if data is not None:
        words = [_shown(w).rstrip(". ") for w in (data.get("error"), data.get("details"))
                 if isinstance(w, str) and w.strip()]
        if len(words) == 2 and words[0] in words[1]:
            words = words[1:]  # details that repeat the error, with a code in front ("3040: Capacity...")
        return ": ".join(words)
    if _looks_like_html(content_type, body):
        title = _html_title(body)
        return f"an HTML page titled '{title}'" if title else "an HTML page"
    text = body.decode("utf-8", "replace").strip()
    return _shown(text) if text else ""


def _describe_body(response: httpx.Response, body: bytes) -> str:
    """What an unreadable answer was, for a message: an HTML page, some text, nothing."""
    if _looks_like_html(response, body):
        title = _html_title(body)
        return f"an HTML page titled '{title}'" if title else "an HTML page"
    if not body.strip():
        return "an empty answer"
    if _json_object(body) is not None:
        return "JSON without the expected fields"
    kind = _media_type(response) or "no content type"
    return f"not JSON ({kind}): '{_shown(body.decode('utf-8', 'replace'), 80)}'"


_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body")


def _looks_like_html(source: httpx.Response | httpx.Headers | str, body: bytes) -> bool:
    if isinstance(source, httpx.Response):
        content_type = source.headers.get("content-type", "")
    elif isinstance(source, httpx.Headers):
        content_type = source.get("content-type", "")
    else:
        content_type = source
    head = body[:512].lstrip().lower()
    return "html" in content_type.lower() or head.startswith(_HTML_STARTS)


def _html_title(body: bytes) -> str | None:
    match = re.search(rb"<title[^>]*>(.*?)</title", body, re.IGNORECASE | re.DOTALL)
    if not match:
        return None
    title = _shown(html.unescape(match.group(1).decode("utf-8", "replace")), 120)
    return title or None


def _retry_after(headers: httpx.Headers, data: dict[str, Any] | None) -> float | None:
    """Seconds to wait, from the Retry-After header (seconds or an HTTP date) or the body's retryAfter."""
    seconds = parse_retry_after(headers.get("retry-after"))
    if seconds is None and data is not None:
        value = data.get("retryAfter")
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            seconds = float(value)
    return seconds


def _connect_failure(exc: BaseException) -> str:
    """Why a connection failed, read from the cause chain: "dns" (no such name), "dns_temporary" (the
    resolver failed), "refused", "tls" or "unreachable"."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, socket.gaierror):
            return "dns_temporary" if current.errno == socket.EAI_AGAIN else "dns"
        if isinstance(current, ConnectionRefusedError):
            return "refused"
        if isinstance(current, ssl.SSLError):
            return "tls"
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    text = str(exc).lower()
    if "name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text \
            or "name resolution" in text:
        return "dns"
    if "refused" in text:
        return "refused"
    return "unreachable"


def _root(exc: BaseException) -> str:
    """The innermost cause's text: the useful part of a chained transport error."""
    while (exc.__cause__ or exc.__context__) is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return str(exc) or type(exc).__name__


def _host_of(shown: str) -> str:
    return shown.split("/", 1)[0]


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context for every client: loading the CA bundle takes a noticeable ~0.15 s."""
    return httpx.create_ssl_context()


# --- reading bodies ----------------------------------------------------------------------------------


async def _read_capped(response: httpx.Response, cap: int, *, truncate: bool = False,
                       hint: str | None = None) -> bytes:
    """At most ``cap`` bytes of ``response``'s body: a ProtocolError past it (or the first ``cap``, with
    ``truncate``). Nothing larger is ever buffered, whatever the server sends or declares."""
    declared = response.headers.get("content-length")
    too_large = ProtocolError(f"The agent's answer is larger than {_size(cap)}; it was not read.", hint=hint)
    if not truncate and declared and declared.isdigit() and int(declared) > cap:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > cap:
            if truncate:
                break
            raise too_large
    return b"".join(chunks)[:cap]


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MB" if n >= 1024 * 1024 else f"{n // 1024} KB"


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _media_type(response: httpx.Response) -> str:
    return response.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _shown(text: object, limit: int = MAX_SHOWN_CHARS) -> str:
    """Server text made safe to show: no escape sequences or control characters, one line, shortened."""
    clean = " ".join(sanitize(str(text)).split())
    return clean if len(clean) <= limit else clean[: limit - 1].rstrip() + "…"


_KNOWN_EVENTS = frozenset({"delta", "done", "error"})


async def _sse_events(response: httpx.Response) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """The (name, data) of each delta, done and error event of an SSE answer, as they arrive.

    Other events and comments are skipped. Data that is not a JSON object is a ProtocolError, except
    in an event the end of the stream cut short: that one is dropped, and the caller reports the
    stream as ended before ``done``.
    """
    parser = SSEParser(max_event_bytes=MAX_EVENT_BYTES)
    try:
        async for chunk in response.aiter_bytes():
            for event in parser.feed(chunk):
                if event.event in _KNOWN_EVENTS:
                    yield event.event, _event_data(event)
        last = parser.end()
    except SSEError as exc:
        raise ProtocolError(f"The agent's reply stream is malformed: {exc}.",
                            hint=_MAY_HAVE_ANSWERED) from None
    for event in last:
        if event.event in _KNOWN_EVENTS and _json_object(event.data.encode()) is not None:
            yield event.event, _event_data(event)


def _event_data(event: ServerSentEvent) -> dict[str, Any]:
    data = _json_object(event.data.encode())
    if data is None:
        raise ProtocolError(
            f"The agent sent a '{event.event}' event that is not JSON: '{_shown(event.data, 80)}'.",
            hint=_MAY_HAVE_ANSWERED)
    return data
