"""A chat turn with an agent endpoint: send the message, read the reply, retry only when it is safe.

Everything about one message and its reply lives here, apart from the plumbing :class:`RemoteAgent`
gives it (requests, error mapping, the token): which failures may be sent again (never one that may
have reached the server's model), the seed's whole JSON answer or our event stream, counting the
turn, and keeping a reply the user stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from edgechat_tui.backends.base import TurnInProgress
from edgechat_tui.backends.remote.errors import URL_HINT, describe_body, looks_like_html, media_type
from edgechat_tui.backends.remote.library_data import message_number, wire_chat_id, wire_message_id
from edgechat_tui.backends.remote.replies import MAY_HAVE_ANSWERED, MAY_HAVE_STORED_PART, sse_events
from edgechat_tui.core.errors import (
    ConnectionFailed,
    EdgechatError,
    ProtocolError,
    RateLimited,
    RequestTimeout,
    ServerError,
)
from edgechat_tui.core.messages import Done, Event, Message, TextDelta, Usage
from edgechat_tui.http.deadline import Deadline
from edgechat_tui.http.jsondata import loads_object
from edgechat_tui.http.retry import MAX_RETRY_WAIT, backoff_wait, refused_wait, with_retries
from edgechat_tui.http.unicode import SurrogateJoiner, fix_surrogates

if TYPE_CHECKING:
    from edgechat_tui.backends.remote.capabilities import Capabilities
    from edgechat_tui.backends.remote.endpoint import Endpoint

#: The longest streamed reply kept; text beyond it ends the turn with an error.
MAX_REPLY_CHARS = 8 * 1024 * 1024
_CHAT_ACCEPT = "text/event-stream, application/json"


def new_idempotency_key() -> str:
    """A new turn's Idempotency-Key: 32 URL-safe characters (visible ASCII, as the protocol asks)."""
    return secrets.token_urlsafe(24)


@dataclass
class Exchange:
    """How far a request got, for the error that ends it: did an answer start, did text arrive."""

    answered: bool = False  # response headers arrived: the request certainly reached the server
    parts: list[str] = field(default_factory=list)  # the reply's text shown so far


@dataclass
class Turn(Exchange):
    """A chat turn in progress: the user's message, and whether the turn completed (and was kept)."""

    user_message: Message = field(default_factory=lambda: Message(role="user", content=""))
    chars: int = 0
    completed: bool = False
    #: The turn's Idempotency-Key: made once, sent on every attempt of this turn (and no other).
    key: str = field(default_factory=new_idempotency_key)
    #: Of a repeated attempt's reply, the text already shown by an earlier one (not shown twice).
    echo: str = ""
    attempts: int = 0
    #: "chat", "regenerate", "edit" or "continue" (TurnInProgress.action), and the message it concerns.
    action: str = "chat"
    target: str | None = None
    #: The conversation the turn goes to (None: the agent's most recent one, for a chat).
    conversation: str | None = None
    #: Of a continue: the reply as it was before (its answer's ``message`` is the whole reply).
    base: str = ""


def skip_echo(turn: Turn, piece: str) -> str:
    """What of ``piece`` is new: a repeated attempt's reply starts with the text already shown."""
    if not turn.echo:
        return piece
    common = 0
    for a, b in zip(piece, turn.echo, strict=False):
        if a != b:
            break
        common += 1
    if common == len(piece) and common < len(turn.echo):
        turn.echo = turn.echo[common:]
        return ""
    # All of the echo consumed (or the reply differs from what was shown: show what is new of it).
    turn.echo = ""
    return piece[common:]


class ChatTurns:
    """The turn logic of :class:`~edgechat_tui.backends.remote.agent.RemoteAgent` (a mixin: it uses the
    agent's requests, error mapping and settings)."""

    _caps: Capabilities | None
    _last_count: int | None
    _session_messages: int
    _streamed: bool
    _max_retries: int
    _retry_delay: float
    _reply_timeout: float | None
    _conversation_id: str | None
    #: The turn being sent (for keeping its reply when it stops), None between turns.
    _running: Turn | None = None

    # --- a turn: everything about one message and its reply lives in this section -----------------

    async def _run_turn(self, progress: TurnInProgress) -> AsyncIterator[Event]:
        # The base class (Agent.send) owns the turn's life: one at a time, and a stopped or cut-off
        # reply kept through _save_stopped. Here: send, read, retry when it is safe.
        turn = Turn(user_message=progress.user_message, action=progress.action, target=progress.target)
        with self._redacting():
            await self._prepare_turn(turn)
            self._running = turn
            deadline = self._deadline()
            async with contextlib.aclosing(self._send_turn(turn, deadline)) as events:
                async for event in events:
                    yield event

    async def _send_turn(self, turn: Turn, deadline: Deadline) -> AsyncIterator[Event]:
        async def sleep(seconds: float) -> None:
            with self._transport_errors(turn, chat=True):
                await deadline.run(asyncio.sleep(seconds), longest=seconds)

        # With idempotency a repeat of the turn's key returns the stored turn: sending again is safe
        # even after text arrived (the repeat's reply begins with what was shown, which is skipped).
        retried = with_retries(lambda: self._attempt(turn, deadline), max_attempts=self._max_retries + 1,
                               wait_for=self._retry_wait, sleep=sleep,
                               reason=lambda error: self._redact(error.message),
                               retry_after_text=self._idempotent())
        async with contextlib.aclosing(retried) as events:
            async for event in events:
                yield event

    async def _prepare_turn(self, turn: Turn) -> None:
        """Settle where the turn goes before it is sent (the agent's: its open conversation)."""

    def _idempotent(self) -> bool:
        """The server stores a turn once per Idempotency-Key (its health answer says so)."""
        return self._caps is not None and "idempotency" in self._caps.names

    def _retry_wait(self, exc: EdgechatError, attempt: int) -> float | None:
        """How long to wait before sending again, or None when sending again could duplicate the turn."""
        if isinstance(exc, ConnectionFailed) and exc.code == "refused" and not exc.reached_server:
            # Nothing was sent: soon and briefly (http/retry.py's refused_wait).
            return round(refused_wait(attempt, base=self._retry_delay), 3)
        if self._idempotent() and _may_retry_idempotent(exc):
            return round(backoff_wait(attempt, None, base=self._retry_delay), 3)
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

    async def _attempt(self, turn: Turn, deadline: Deadline) -> AsyncIterator[Event]:
        url, body = turn_request(self._endpoint, turn, self._user_param())
        turn.answered = False
        turn.attempts += 1
        turn.echo = "".join(turn.parts)  # what an earlier attempt showed: a repeat's reply begins with it
        headers = self._headers(_CHAT_ACCEPT) | {"Idempotency-Key": turn.key}
        with self._transport_errors(turn, chat=True):
            async with self._request("POST", url, turn, deadline, json=body, headers=headers) as response:
                if not 200 <= response.status_code < 300:
                    raise await self._error_from(response, url, deadline)
                stream = media_type(response.headers.get("content-type", "")) == "text/event-stream"
                if turn.action == "continue" and (
                        not stream or response.headers.get("idempotent-replayed", "").lower() == "true"):
                    # A continue's JSON answer, and a replayed stream, hold the whole reply, not the
                    # added text: what was there before is echo too.
                    turn.echo = turn.base + turn.echo
                if stream:
                    self._streamed = True
                    async with contextlib.aclosing(self._read_stream(response, turn, deadline)) as events:
                        async for event in events:
                            yield event
                else:
                    for event in await self._read_json_reply(response, turn, deadline):
                        yield event

    async def _read_json_reply(self, response: httpx.Response, turn: Turn, deadline: Deadline) -> list[Event]:
        """The seed's answer: the whole reply at once. The turn is kept before it is shown."""
        body = await self._read_json(response, deadline, hint=MAY_HAVE_ANSWERED)
        data = loads_object(body)
        reply = data.get("message") if data is not None else None
        if not isinstance(reply, str):
            content_type = response.headers.get("content-type", "")
            what = (describe_body(content_type, body, self._redactor) if data is None
                    else "it has no reply in it")
            raise ProtocolError(f"The agent's answer cannot be read: {what}.",
                                hint=URL_HINT if looks_like_html(content_type, body) else MAY_HAVE_ANSWERED)
        reply = fix_surrogates(reply)
        new = skip_echo(turn, reply)
        done = self._complete(turn, reply, data.get("messageCount"), Usage.from_json(data.get("usage")),
                              data)
        return [TextDelta(new), done] if new else [done]

    async def _read_stream(self, response: httpx.Response, turn: Turn, deadline: Deadline,
                           ) -> AsyncIterator[Event]:
        """A streamed answer: a TextDelta per ``delta`` event, Done at ``done``."""
        joiner = SurrogateJoiner()  # a character split over two deltas as JSON escapes is joined
        async for name, data in sse_events(response, deadline):
            if name == "delta":
                piece = data.get("text")
                if not isinstance(piece, str):
                    raise ProtocolError("The agent sent a piece of its reply without text.",
                                        hint=MAY_HAVE_ANSWERED)
                piece = skip_echo(turn, joiner.feed(piece))
                if not piece:
                    continue
                turn.chars += len(piece)
                if turn.chars > MAX_REPLY_CHARS:
                    raise ProtocolError(
                        f"The reply is longer than {MAX_REPLY_CHARS // (1024 * 1024)} M characters; the rest "
                        "was not read.", hint=MAY_HAVE_ANSWERED)
                turn.parts.append(piece)
                yield TextDelta(piece)
            elif name == "done":
                rest = skip_echo(turn, joiner.flush())
                if rest:
                    turn.parts.append(rest)
                    yield TextDelta(rest)
                reply = data.get("message")
                reply = fix_surrogates(reply) if isinstance(reply, str) else "".join(turn.parts)
                usage = Usage.from_json(data.get("usage"))
                yield self._complete(turn, reply, data.get("messageCount"), usage, data)
                return
            elif name == "error":
                raise self._error_from_event(data)
            # Unknown event names are ignored, as the protocol says.
        raise ProtocolError(
            "The reply stream ended before the agent said it was done." if turn.parts
            else "The reply stream ended without a reply.",
            hint=MAY_HAVE_STORED_PART, code="incomplete",
        )

    def _complete(self, turn: Turn, reply: str, count: Any, usage: Usage | None,
                  data: dict[str, Any] | None = None) -> Done:
        """Count the finished turn in this session and build its Done (a replay: the stored turn)."""
        model = self._caps.model if self._caps else None
        data = data or {}
        stopped = data.get("stopped") is True  # a replay of a reply stopped early
        message = Message(role="assistant", content=reply, model=model, usage=usage, stopped=stopped)
        if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
            message_count = count
        else:  # a server that does not count: ours is a best guess, never shown as exact
            message_count = (self._last_count or self._session_messages) + added_messages(turn.action)
        self._last_count = message_count
        self._session_messages += added_messages(turn.action)
        turn.completed = True
        conversation = wire_chat_id(data.get("conversationId"))
        if conversation is not None:
            self._conversation_id = conversation  # where a chat without an id went: the open one now
        return Done(message=message, message_count=message_count, usage=usage,
                    replayed=data.get("replayed") is True, conversation_id=conversation or turn.conversation,
                    message_id=wire_message_id(data.get("messageId")),
                    truncated=data.get("truncated") is True)

    async def _save_stopped(self, turn: TurnInProgress) -> Done | None:
        # The user stopped the reply (or it broke off): keep what arrived, marked stopped. The server
        # may have stored the turn too (whole or as it was), which is its business.
        model = self._caps.model if self._caps else None
        running = self._running
        base = running.base if running is not None and running.action == "continue" else ""
        reply = Message(role="assistant", content=base + turn.partial, model=model, stopped=True)
        self._session_messages += added_messages(turn.action)
        count = (self._last_count or 0) + added_messages(turn.action)
        return Done(message=reply, message_count=count, stopped=True,
                    conversation_id=running.conversation if running is not None else None)


def _may_retry_idempotent(exc: EdgechatError) -> bool:
    """With idempotency, what else is worth sending again: a timeout or a connection lost after
    sending, a stream cut short. Not a name that does not resolve, a TLS failure or the reply deadline."""
    if isinstance(exc, ConnectionFailed):
        return exc.code in ("lost", "refused", "dns_temporary", "connect_timeout", "unreachable")
    if isinstance(exc, RequestTimeout):
        return exc.code == "timeout"
    if isinstance(exc, ProtocolError):
        return exc.code == "incomplete"
    return False


def turn_request(endpoint: Endpoint, turn: Turn, user: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """The URL and JSON body of one attempt of ``turn`` (docs/protocol.md, ``conversations``: a turn)."""
    if turn.action == "chat":
        body: dict[str, Any] = {"message": turn.user_message.content, **user}
        if turn.conversation is not None:
            body["conversationId"] = turn.conversation
        return endpoint.url("/api/chat"), body
    assert turn.conversation is not None, "a library turn has its conversation settled first"
    body = dict(user)
    if turn.action == "edit":
        body["message"] = turn.user_message.content
    if turn.action in ("regenerate", "edit") and turn.target is not None:
        body["messageId"] = message_number(turn.target)
    return endpoint.url(f"/api/conversations/{turn.conversation}/{turn.action}"), body


def added_messages(action: str) -> int:
    """How many messages a turn adds to the current branch: a chat two; a regenerated reply, an edited
    question with its reply, a continued reply none (they replace, or extend, what was there)."""
    return 2 if action == "chat" else 0


def chat_hint(error: EdgechatError, exchange: Exchange) -> str | None:
    """What a transport failure means for a chat message sent to an agent (which stores turns)."""
    if isinstance(error, ConnectionFailed):
        if not error.reached_server:
            return f"your message was not sent; {error.hint}"
        return MAY_HAVE_STORED_PART if exchange.answered else MAY_HAVE_ANSWERED
    if isinstance(error, RequestTimeout):
        if not error.may_have_answered:
            return f"your message was not sent; {error.hint}"
        if error.code == "reply_timeout":
            return f"{MAY_HAVE_ANSWERED}; {error.hint}"
        if exchange.parts:
            return MAY_HAVE_ANSWERED
        return f"{MAY_HAVE_ANSWERED}; a slow model may need a longer remote_timeout"
    if isinstance(error, ProtocolError):
        return MAY_HAVE_ANSWERED
    return error.hint



__all__ = ["MAX_REPLY_CHARS", "ChatTurns", "Exchange", "Turn", "added_messages", "chat_hint",
           "new_idempotency_key", "skip_echo", "turn_request"]
