"""RemoteAgent: a deployed agent endpoint (the seed's Worker, or ours) as an :class:`Agent`.

The protocol is docs/protocol.md: the seed contract (``POST /api/chat`` answering JSON) plus
extensions a server announces in its health answer (streaming, history, reset, auth). The client
takes the reply by the answer's content type, never by what it asked for, so one code path serves
the seed's Worker and ours.

A chat request is not idempotent by itself: the server may store a turn whose answer never reached
us. Each turn carries an ``Idempotency-Key`` of its own (the same on every attempt); a server that
offers ``idempotency`` stores a turn once per key, so there a turn is also sent again after a timeout
or a connection lost after sending, even mid-reply (the repeat's text already shown is skipped).
Elsewhere a message is sent again only when it certainly did not reach the server (connection
refused, name not resolved) or when the server said it did not process it (429 ``rate_limited``,
503), and only before any text arrived. Everything else is reported, saying when the agent may have
stored the turn.

Who is asking (:mod:`.identity`): the configured credentials go on every request but the health
check; on a server that verifies the caller (``authMode`` ``user-tokens`` or ``access``) the health
check asks ``whoami``, and that user is the one used, or a ``--user`` that differs is refused before
anything is sent.

The pieces: :mod:`.endpoint` (the URL), :mod:`.capabilities` (the health answer), :mod:`.errors`
(failed answers), :mod:`.replies` (reading chat answers), :mod:`.history`; transport failures, body
caps, retries and the reply deadline come from :mod:`edgechat_tui.http`, shared with the local agent.

Nothing here ever puts the token in a message, a repr or a log line: it lives in one attribute and
goes out in one header, and every error's text is masked before it leaves.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx

from edgechat_tui.backends.base import Agent
from edgechat_tui.backends.remote.capabilities import Capabilities
from edgechat_tui.backends.remote.endpoint import Endpoint, parse_endpoint
from edgechat_tui.backends.remote.errors import (
    STATUS_OF_CODE,
    URL_HINT,
    describe_body,
    error_from_answer,
)
from edgechat_tui.backends.remote.history import decode_history
from edgechat_tui.backends.remote.identity import Credentials, WhoAmI, parse_whoami
from edgechat_tui.backends.remote.turn import ChatTurns, Exchange, chat_hint
from edgechat_tui.core.errors import (
    BackendError,
    EdgechatError,
    NotSupported,
    ProtocolError,
    ServerError,
    UsageError,
)
from edgechat_tui.core.messages import AgentInfo, Message
from edgechat_tui.core.secret import Secret
from edgechat_tui.core.userid import validate_user_id
from edgechat_tui.http.body import read_capped
from edgechat_tui.http.client import HttpClient, timeouts
from edgechat_tui.http.deadline import Deadline, DeadlineExceeded
from edgechat_tui.http.jsondata import loads_object
from edgechat_tui.http.text import shown
from edgechat_tui.http.transport import Where, transport_error

log = logging.getLogger(__name__)

#: The largest JSON answer read (a reply, a history), counted decoded. A bigger one is refused.
MAX_JSON_BYTES = 8 * 1024 * 1024
#: Of an error answer, only this much is read: enough for any error body or the title of an HTML page.
MAX_ERROR_BYTES = 64 * 1024
#: A Retry-After longer than MAX_RETRY_WAIT (http/retry.py) is not waited for: the user gets the error
#: and decides.


#: The most of a paged history read (history-pages): pages, and decoded bytes in all.
MAX_HISTORY_PAGES = 1000
MAX_HISTORY_BYTES = 64 * 1024 * 1024


class RemoteAgent(ChatTurns, Agent):
    """Talks to an agent endpoint at ``url`` as ``user``.

    ``timeout`` is how long to wait for data (the whole reply from a seed server, which answers only
    when the model is done; between two pieces from a streaming one); ``connect_timeout`` for a
    connection; ``reply_timeout`` bounds a whole request, a reply's retries included (None or 0:
    no bound). ``transport`` replaces httpx's network transport (tests, proxies). ``warn`` receives
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
        reply_timeout: float | None = 600.0,
        transport: httpx.AsyncBaseTransport | None = None,
        warn: Callable[[str], None] | None = None,
        max_retries: int = 3,
        retry_delay: float = 1.0,
        user_given: bool = True,
        access_client_id: str | None = None,
        access_client_secret: str | Secret | None = None,
        access_token_command: str | None = None,
    ) -> None:
        self._user = validate_user_id(user)
        #: The user named the profile (--user): on a server that verifies the caller, it must agree.
        self._user_given = user_given
        self._whoami: WhoAmI | None = None
        self._identity_error: EdgechatError | None = None
        self._endpoint = parse_endpoint(url)
        # Every secret is held in a Secret inside Credentials, so that vars(), debuggers and
        # tracebacks with locals do not show it either.
        self._credentials = Credentials(token=token, access_client_id=access_client_id,
                                        access_client_secret=access_client_secret,
                                        access_token_command=access_token_command,
                                        on_secret=self._learn_secret)
        self._redactor = self._credentials.redactor()
        self._read_timeout = timeout
        self._connect_timeout = connect_timeout
        self._reply_timeout = reply_timeout
        self._http = HttpClient(self._endpoint.base, timeout=timeouts(connect=connect_timeout, read=timeout),
                                transport=transport)
        self._warn = warn or log.warning
        self._max_retries = max(0, max_retries)
        self._retry_delay = max(0.0, retry_delay)
        self._caps: Capabilities | None = None
        self._streamed = False  # a chat answer came as a stream even if the health did not say so
        self._session_messages = 0  # messages of this session's turns: the count's fallback
        self._last_count: int | None = None
        if self._credentials.any and self._endpoint.scheme == "http" and not self._endpoint.loopback:
            self._warn(
                f"The remote token is sent over plain http to {self._endpoint.shown}: anyone on the way "
                "can read it. Use an https:// URL."
            )

    #: Bounds on reading a paged history (instances may lower them: tests).
    max_history_pages = MAX_HISTORY_PAGES
    max_history_bytes = MAX_HISTORY_BYTES
    #: Messages asked for per page (history-pages); None: the server's page size.
    history_page_limit: int | None = None

    def __repr__(self) -> str:
        token = "set" if self._credentials.any else "none"
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
    def whoami(self) -> WhoAmI | None:
        """What the agent's ``whoami`` said at the health check; None when it was not asked."""
        return self._whoami

    @property
    def user(self) -> str:
        """Whose conversation this is: the verified user once ``whoami`` said, else the one given."""
        return self._user

    @property
    def info(self) -> AgentInfo:
        caps = self._caps or Capabilities()
        return AgentInfo(
            user=self._user,
            user_verified=bool(self._whoami and self._whoami.user_id),
            auth_mode=caps.auth_mode if self._caps else None,
            mode="remote",
            model=caps.model,
            host=self._endpoint.shown,
            streams="stream" in caps.names or self._streamed,
            shares_history="history" in caps.names,
            can_reset="reset" in caps.names,
        )

    # --- HTTP plumbing ------------------------------------------------------------------------

    def _headers(self, accept: str, *, auth: bool = True) -> dict[str, str]:
        """The request's own headers; the credentials are added by :meth:`_request` (unless public)."""
        return {"Accept": accept}

    def _learn_secret(self, secret: str) -> None:
        """A secret fetched on the way (the Access command's token) is masked from now on."""
        self._redactor = self._credentials.redactor()

    def _user_param(self) -> dict[str, str]:
        """The ``userId`` a request carries: the verified one, or the client's; none when the server
        verifies the caller and did not say who that is (it then acts for the credential's user)."""
        caps = self._caps
        if caps is not None and caps.verifies_user and self._whoami is None and not self._user_given:
            return {}
        return {"userId": self._user}

    def _redact(self, text: str) -> str:
        """``text`` with the token masked: a server may echo what it was sent into its error text."""
        return self._redactor.mask(text)

    @contextlib.contextmanager
    def _redacting(self) -> Iterator[None]:
        """Mask the token in any error raised inside, before anyone prints it (a last net: server
        text is masked where it is quoted, before it is shortened)."""
        try:
            yield
        except EdgechatError as error:
            error.message = self._redact(error.message)
            error.hint = self._redact(error.hint) if error.hint else error.hint
            error.args = (error.message, *error.args[1:])
            raise

    @contextlib.asynccontextmanager
    async def _request(self, method: str, url: str, exchange: Exchange, deadline: Deadline, *,
                       public: bool = False, **kw: Any) -> AsyncIterator[httpx.Response]:
        """Send a request within ``deadline``; the answer is closed after, dropping an unread connection.

        Carries the credentials unless ``public`` (the health check). Refused before anything is sent
        when the health check found the user does not agree with ``whoami``. A 401 to a token from
        access_token_command runs the command again and sends once more (a 401 was not processed).
        """
        if self._identity_error is not None and not public:
            raise self._identity_error
        headers = dict(kw.pop("headers", None) or {})
        for attempt in (1, 2):
            if not public:
                headers.update(await deadline.run(self._credentials.headers()))
            request = self._http.build_request(method, url, headers=headers, **kw)
            response = await deadline.run(self._http.send(request))
            if response.status_code == 401 and attempt == 1 and not public and self._credentials.refreshable:
                await response.aclose()
                self._credentials.forget_access_token()
                continue
            break
        exchange.answered = True
        try:
            yield response
        finally:
            await response.aclose()

    async def _read_json(self, response: httpx.Response, deadline: Deadline,
                         hint: str | None = None) -> bytes:
        """The whole body, up to MAX_JSON_BYTES decoded; a ProtocolError past it (nothing more is read)."""
        body, complete = await read_capped(response, MAX_JSON_BYTES, deadline=deadline)
        if not complete:
            raise ProtocolError(f"The agent's answer is larger than {MAX_JSON_BYTES // (1024 * 1024)} MB; "
                                "it was not read.", hint=hint)
        return body

    def _deadline(self) -> Deadline:
        """The deadline of one request (of a chat turn, retries included), from now."""
        return Deadline(self._reply_timeout, slack=self._connect_timeout + 2 * self._read_timeout)

    async def aclose(self) -> None:
        """Close the connections; the agent refuses requests from then on."""
        await self._http.aclose()

    # --- health and capabilities --------------------------------------------------------------

    async def check(self) -> str:
        """GET the base URL; learn what the server offers. Raises when it is not a healthy agent."""
        with self._redacting():
            return self._redact(await self._check())

    async def _check(self) -> str:
        url = self._endpoint.url("/")
        exchange, deadline = Exchange(), self._deadline()
        with self._transport_errors(exchange):
            headers = self._headers("application/json", auth=False)  # the health check never needs a token
            async with self._request("GET", url, exchange, deadline, public=True,
                                     headers=headers) as response:
                if response.status_code != 200:
                    raise await self._error_from(response, url, deadline)
                body = await self._read_json(response, deadline)
        content_type = response.headers.get("content-type", "")
        data = loads_object(body)
        if data is None or not isinstance(data.get("status"), str):
            raise ProtocolError(f"{url} does not answer as an agent: "
                                f"{describe_body(content_type, body, self._redactor)}.", hint=URL_HINT)
        if data["status"].lower() != "ok":
            raise ServerError(f"The agent says it is not healthy: status {shown(data['status'], 60)}.",
                              status=response.status_code)
        self._caps = Capabilities.from_health(data)
        status = self._caps.describe()
        if self._caps.auth and not self._credentials.any:
            status += ("; it is behind Cloudflare Access: set access_token_command or an Access service token"
                       if self._caps.auth_mode == "access" else "; it needs a token: set remote_token")
            return status
        if self._caps.asks_whoami:
            await self._ask_whoami()
            if self._whoami is not None and self._whoami.user_id:
                status += f"; you are {self._whoami.user_id}"
        return status

    async def _ask_whoami(self) -> None:
        """Ask who the agent takes us for, and settle the user: the verified one, or a clear error."""
        url = self._endpoint.url("/api/whoami")
        exchange, deadline = Exchange(), Deadline(self._reply_timeout)
        with self._transport_errors(exchange):
            async with self._request("GET", url, exchange, deadline,
                                     headers=self._headers("application/json")) as response:
                if response.status_code == 404 and not (self._caps and self._caps.verifies_user):
                    return  # a server that lists whoami but does not answer it: nothing learnt
                if response.status_code != 200:
                    raise await self._error_from(response, url, deadline)
                body = await self._read_json(response, deadline)
        answer = parse_whoami(loads_object(body))
        if answer is None:
            what = describe_body(response.headers.get("content-type", ""), body, self._redactor)
            raise ProtocolError(f"The agent's whoami answer cannot be read: {what}.")
        self._whoami = answer
        verified = answer.user_id
        if verified is None:
            return  # modes none and token: the client names the user
        try:
            verified = validate_user_id(verified)
        except UsageError:
            raise ProtocolError(f"The agent says you are {shown(verified, 80, self._redactor)!r}, which is "
                                "not a user id edgechat can use.") from None
        if self._user_given and verified != self._user:
            self._identity_error = UsageError(
                f"--user {self._user} does not match who the agent says you are: {verified}. "
                "Nothing was sent.",
                hint=f"leave --user out (the agent knows you as {verified}), or use the credential of "
                     f"{self._user}")
            raise self._identity_error
        self._user = verified

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
        caps = await self._capabilities()
        if "history" not in caps.names:
            return None
        # Only a server offering history-pages pages: another ignores ``before`` and would answer the
        # newest messages again, so its cursors are never followed.
        paged = "history-pages" in caps.names
        pages: list[list[Message]] = []
        total = 0
        before: str | None = None
        seen: set[str] = set()
        for _page in range(self.max_history_pages):
            params = self._user_param() | ({"before": before} if before is not None else {})
            if paged and self.history_page_limit:
                params["limit"] = str(self.history_page_limit)
            data, size = await self._history_page(params)
            total += size
            if total > self.max_history_bytes:
                raise ProtocolError(
                    f"The conversation on the agent is larger than edgechat reads "
                    f"({self.max_history_bytes // (1024 * 1024)} MB); it was not read whole.",
                    hint="start a new conversation (/clear, or edgechat reset); the agent keeps this one")
            pages.append(decode_history(data, "JSON without the expected fields"))
            previous = data.get("previous") if paged else None
            if not isinstance(previous, str) or not previous:
                break
            if previous in seen:
                raise ProtocolError("The agent's history pages lead back to a page already read; "
                                    "the history was not read whole.")
            seen.add(previous)
            before = previous
        else:
            raise ProtocolError(
                f"The conversation on the agent has more than {self.max_history_pages} pages; "
                "it was not read whole.",
                hint="start a new conversation (/clear, or edgechat reset); the agent keeps this one")
        return [message for page in reversed(pages) for message in page]

    async def _history_page(self, params: dict[str, str]) -> tuple[dict[str, Any], int]:
        """One history answer, parsed, and its size in bytes (decoded)."""
        url = self._endpoint.url("/api/history")
        exchange, deadline = Exchange(), self._deadline()
        with self._transport_errors(exchange):
            async with self._request("GET", url, exchange, deadline, params=params,
                                     headers=self._headers("application/json")) as response:
                if response.status_code != 200:
                    raise await self._error_from(response, str(response.url), deadline)
                body = await self._read_json(response, deadline)
        data = loads_object(body)
        if data is None or not isinstance(data.get("messages"), list):
            describe = describe_body(response.headers.get("content-type", ""), body, self._redactor)
            raise ProtocolError(f"The agent's history answer has no messages: {describe}.")
        return data, len(body)

    async def reset(self) -> str | None:
        """Start a new conversation on the server; NotSupported where the agent has no reset."""
        with self._redacting():
            return await self._reset()

    async def _reset(self) -> str | None:
        if "reset" not in (await self._capabilities()).names:
            raise NotSupported("/clear is not available on this agent.",
                               hint="it does not offer a reset: the conversation goes on")
        url = self._endpoint.url("/api/reset")
        exchange, deadline = Exchange(), self._deadline()
        with self._transport_errors(exchange):
            async with self._request("POST", url, exchange, deadline, json=self._user_param(),
                                     headers=self._headers("application/json")) as response:
                if response.status_code != 200:
                    raise await self._error_from(response, url, deadline)
                body = await self._read_json(response, deadline)
        data = loads_object(body)
        if data is None:
            what = describe_body(response.headers.get("content-type", ""), body, self._redactor)
            raise ProtocolError(f"The agent's reset answer is not JSON: {what}.")
        if data.get("ok") is False:
            raise BackendError("The agent did not start a new conversation.", status=response.status_code)
        self._session_messages = 0
        self._last_count = 0
        archived = data.get("archived")
        return shown(archived, 200, self._redactor) if isinstance(archived, str) and archived else None

    # --- failures -----------------------------------------------------------------------------

    def _where(self, exchange: Exchange) -> Where:
        return Where(host=self._endpoint.netloc, connect_timeout=self._connect_timeout,
                     read_timeout=self._read_timeout, answered=exchange.answered,
                     text_so_far=bool(exchange.parts), redactor=self._redactor)

    @contextlib.contextmanager
    def _transport_errors(self, exchange: Exchange, *, chat: bool = False) -> Iterator[None]:
        """Turn transport failures inside into the typed errors users read (the one map in http/),
        with, for a chat message, a hint saying whether the agent may have stored the turn."""
        try:
            yield
        except (httpx.HTTPError, DeadlineExceeded) as exc:
            error = transport_error(exc, self._where(exchange))
            if chat:
                error.hint = chat_hint(error, exchange)
            raise error from None

    async def _error_from(self, response: httpx.Response, url: str, deadline: Deadline) -> EdgechatError:
        """The typed error for a failed answer, read (at most MAX_ERROR_BYTES of it) and mapped."""
        try:
            body, _complete = await read_capped(response, MAX_ERROR_BYTES, deadline=deadline)
        except httpx.HTTPError:
            body = b""
        return error_from_answer(response.status_code, response.headers, body, url,
                                 has_token=self._credentials.any, redactor=self._redactor,
                                 **self._error_context())

    def _error_from_event(self, data: dict[str, Any]) -> EdgechatError:
        """An ``error`` event: mapped like an answer with the status its code stands for."""
        code = data.get("code")
        status = STATUS_OF_CODE.get(code, 500) if isinstance(code, str) else 500
        return error_from_answer(status, httpx.Headers({"content-type": "application/json"}), b"",
                                 self._endpoint.url("/api/chat"), has_token=self._credentials.any,
                                 redactor=self._redactor, data=data, **self._error_context())

    def _error_context(self) -> dict[str, Any]:
        """What the error map needs to say whose a refused credential is and what to check."""
        return {"verified_user": self._whoami.user_id if self._whoami else None,
                "access": self._credentials.access or bool(self._caps and self._caps.auth_mode == "access")}


__all__ = ["RemoteAgent"]
