"""The plumbing every request to an agent endpoint goes through: credentials, deadlines, body caps and
the one map from failures (transport failures, error answers, ``error`` events) to typed errors.

A mixin of :class:`~edgechat_tui.backends.remote.agent.RemoteAgent`: it uses the agent's endpoint,
HTTP client, credentials and settings. Nothing here puts a secret in a message: every error's text is
masked before it leaves (:meth:`RemoteRequests._redacting`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import httpx

from edgechat_tui.backends.remote.errors import STATUS_OF_CODE, error_from_answer
from edgechat_tui.backends.remote.turn import Exchange, chat_hint
from edgechat_tui.core.errors import EdgechatError, ProtocolError
from edgechat_tui.http.body import read_capped
from edgechat_tui.http.deadline import Deadline, DeadlineExceeded
from edgechat_tui.http.transport import Where, transport_error

if TYPE_CHECKING:
    from edgechat_tui.backends.remote.capabilities import Capabilities
    from edgechat_tui.backends.remote.endpoint import Endpoint
    from edgechat_tui.backends.remote.identity import Credentials, WhoAmI
    from edgechat_tui.http.client import HttpClient
    from edgechat_tui.http.text import Redactor

#: The largest JSON answer read (a reply, a history), counted decoded. A bigger one is refused.
MAX_JSON_BYTES = 8 * 1024 * 1024
#: Of an error answer, only this much is read: enough for any error body or the title of an HTML page.
MAX_ERROR_BYTES = 64 * 1024
#: A Retry-After longer than MAX_RETRY_WAIT (http/retry.py) is not waited for: the user gets the error
#: and decides.


class RemoteRequests:
    """Requests, answers and failures, as every route of the agent uses them."""

    _endpoint: Endpoint
    _http: HttpClient
    _credentials: Credentials
    _redactor: Redactor
    _caps: Capabilities | None
    _whoami: WhoAmI | None
    _identity_error: EdgechatError | None
    _user: str
    _user_given: bool
    _connect_timeout: float
    _read_timeout: float
    _reply_timeout: float | None

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


__all__ = ["MAX_ERROR_BYTES", "MAX_JSON_BYTES", "RemoteRequests"]
