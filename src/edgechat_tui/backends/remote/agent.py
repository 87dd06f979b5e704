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

The pieces: :mod:`.endpoint` (the URL), :mod:`.capabilities` (the health answer), :mod:`.requests`
(credentials, deadlines, body caps and the map from failures to errors), :mod:`.errors` (failed
answers), :mod:`.turn` and :mod:`.replies` (a turn, and reading its answer), :mod:`.history` (history
and reset); transport failures, body caps, retries and the reply deadline come from
:mod:`edgechat_tui.http`, shared with the local agent.

Nothing here ever puts the token in a message, a repr or a log line: it lives in one attribute and
goes out in one header, and every error's text is masked before it leaves.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import httpx

from edgechat_tui.backends.base import Agent
from edgechat_tui.backends.remote.capabilities import Capabilities
from edgechat_tui.backends.remote.endpoint import Endpoint, parse_endpoint
from edgechat_tui.backends.remote.errors import (
    URL_HINT,
    describe_body,
)
from edgechat_tui.backends.remote.history import RemoteHistory
from edgechat_tui.backends.remote.identity import Credentials, WhoAmI, parse_whoami
from edgechat_tui.backends.remote.library import RemoteConversations
from edgechat_tui.backends.remote.library_data import message_number
from edgechat_tui.backends.remote.turn import ChatTurns, Exchange, Turn
from edgechat_tui.core.errors import (
    ConversationConflict,
    EdgechatError,
    NotSupported,
    ProtocolError,
    ServerError,
    UsageError,
)
from edgechat_tui.core.messages import AgentInfo, Event
from edgechat_tui.core.secret import Secret
from edgechat_tui.core.userid import validate_user_id
from edgechat_tui.http.client import HttpClient, timeouts
from edgechat_tui.http.deadline import Deadline
from edgechat_tui.http.jsondata import loads_object
from edgechat_tui.http.text import shown

log = logging.getLogger(__name__)

class RemoteAgent(RemoteHistory, ChatTurns, Agent):
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
        #: The open conversation (a server with the library): where turns go and what history shows.
        self._conversation_id: str | None = None
        self._library: RemoteConversations | None = None
        if self._credentials.any and self._endpoint.scheme == "http" and not self._endpoint.loopback:
            self._warn(
                f"The remote token is sent over plain http to {self._endpoint.shown}: anyone on the way "
                "can read it. Use an https:// URL."
            )

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


    # --- the conversation library ---------------------------------------------------------------

    @property
    def conversations(self) -> RemoteConversations | None:
        """The library, when the health check found the server offers ``conversations``; else None
        (a seed server, or one without it: one conversation per user)."""
        if self._caps is None or "conversations" not in self._caps.names:
            return None
        if self._library is None:
            self._library = RemoteConversations(self)
        return self._library

    def _require_library(self, what: str) -> None:
        if self.conversations is None:
            raise NotSupported(f"{what} is not available on this agent ({self._endpoint.shown}): it keeps "
                               "one conversation per user, without branches.",
                               hint="the conversation goes on as it is; edgechat's own Worker keeps many")

    async def regenerate(self, message_id: str | None = None) -> AsyncIterator[Event]:
        await self._capabilities()  # what the server offers decides, so the health check comes first
        async with contextlib.aclosing(super().regenerate(message_id)) as events:
            async for event in events:
                yield event

    async def edit(self, text: str, message_id: str | None = None) -> AsyncIterator[Event]:
        if text.strip():  # an empty one is refused as such by the base, before anything is sent
            await self._capabilities()
        async with contextlib.aclosing(super().edit(text, message_id)) as events:
            async for event in events:
                yield event

    async def continue_reply(self) -> AsyncIterator[Event]:
        await self._capabilities()
        async with contextlib.aclosing(super().continue_reply()) as events:
            async for event in events:
                yield event

    async def _prepare_turn(self, turn: Turn) -> None:
        """A turn goes to the open conversation; regenerate, edit and continue need one (the most recent
        when none is open yet), and continue the reply as it is (its answer holds the whole reply)."""
        library = self.conversations
        if library is None:
            return  # one conversation per user: a chat as the seed has it
        if turn.action == "chat":
            turn.conversation = self._conversation_id
            return
        if self._conversation_id is None and await library.current() is None:
            raise ConversationConflict(
                "There is no conversation yet: nothing to regenerate, edit or continue.",
                hint="send a message first")
        turn.conversation = self._conversation_id
        if turn.target is not None:
            message_number(turn.target)  # a malformed id is refused before anything is sent
        if turn.action == "continue":
            turn.base = await library.leaf_reply(str(turn.conversation))

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


__all__ = ["RemoteAgent"]
