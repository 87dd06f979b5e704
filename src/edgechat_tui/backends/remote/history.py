"""The stored conversation on an agent: reading its history (paged, bounded) and starting afresh.

:func:`decode_history` turns a history answer (docs/protocol.md, ``history``) into messages;
:class:`RemoteHistory` is the part of :class:`~edgechat_tui.backends.remote.agent.RemoteAgent` that
reads the history page by page (``history-pages``) within its bounds, and resets.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from edgechat_tui.backends.remote.errors import describe_body
from edgechat_tui.backends.remote.library_data import decode_branch_message, wire_chat_id
from edgechat_tui.backends.remote.requests import RemoteRequests
from edgechat_tui.backends.remote.turn import Exchange, Turn
from edgechat_tui.core.conversations import BranchMessage
from edgechat_tui.core.errors import BackendError, NotSupported, ProtocolError
from edgechat_tui.core.messages import Message
from edgechat_tui.http.jsondata import loads_object
from edgechat_tui.http.text import shown
from edgechat_tui.http.unicode import fix_surrogates

if TYPE_CHECKING:
    from edgechat_tui.backends.remote.capabilities import Capabilities

#: The most of a paged history read (history-pages): pages, and decoded bytes in all.
MAX_HISTORY_PAGES = 1000
MAX_HISTORY_BYTES = 64 * 1024 * 1024


def decode_history(data: dict[str, Any] | None, describe: str) -> list[Message]:
    """The conversation in a history answer, oldest first, without the system prompt.

    One unreadable entry is skipped rather than hiding the rest; text is repaired (surrogate halves),
    so nothing stored on the server can make a later command fail. ``describe`` names the body for
    the error when there is no message list at all.
    """
    messages = data.get("messages") if data is not None else None
    if not isinstance(messages, list):
        raise ProtocolError(f"The agent's history answer has no messages: {describe}.")
    history: list[Message] = []
    for item in messages:
        try:
            message = Message.from_json(item)
        except (ValueError, TypeError):
            continue
        if message.role == "system":
            continue
        fixed = {name: fix_surrogates(value) for name in ("content", "time", "model")
                 if isinstance(value := getattr(message, name), str) and fix_surrogates(value) != value}
        history.append(replace(message, **fixed) if fixed else message)
    return history


class RemoteHistory(RemoteRequests):
    """History and reset, over the agent's requests."""

    _session_messages: int
    _last_count: int | None
    #: The open conversation's id (a server with the library); None: the server's most recent one.
    _conversation_id: str | None
    _busy: bool  # a turn is running (the Agent's)
    _running: Turn | None  # the turn being sent (ChatTurns')

    #: Bounds on reading a paged history (instances may lower them: tests).
    max_history_pages = MAX_HISTORY_PAGES
    max_history_bytes = MAX_HISTORY_BYTES
    #: Messages asked for per page (history-pages); None: the server's page size.
    history_page_limit: int | None = None

    async def _capabilities(self) -> Capabilities:
        raise NotImplementedError  # the agent's: runs the health check once

    async def history(self) -> list[Message] | None:
        """The stored conversation when the agent shares it; None when it does not (the seed's)."""
        with self._redacting():
            return await self._history()

    async def _history(self) -> list[Message] | None:
        caps = await self._capabilities()
        if "history" not in caps.names:
            return None
        pages = await self._history_pages(caps)
        return [message for page in pages
                for message in decode_history(page, "JSON without the expected fields")]

    async def _branch(self) -> list[BranchMessage]:
        """The open conversation's current branch with each message's place in the tree (the library's)."""
        pages = await self._history_pages(await self._capabilities())
        branch = []
        for page in pages:
            branch.extend(m for item in page["messages"] if (m := decode_branch_message(item)) is not None)
        return branch

    async def _history_pages(self, caps: Capabilities) -> list[dict[str, Any]]:
        """Every page of the history, oldest page first, within the bounds. On a server with the
        library, of the open conversation (the most recent one until one is open: it is then open)."""
        library = "conversations" in caps.names
        # Only a server offering history-pages pages: another ignores ``before`` and would answer the
        # newest messages again, so its cursors are never followed.
        paged = "history-pages" in caps.names
        pages: list[dict[str, Any]] = []
        total = 0
        before: str | None = None
        seen: set[str] = set()
        for _page in range(self.max_history_pages):
            params = self._user_param() | ({"before": before} if before is not None else {})
            if library and self._conversation_id is not None:
                params["conversationId"] = self._conversation_id
            if paged and self.history_page_limit:
                params["limit"] = str(self.history_page_limit)
            data, size = await self._history_page(params)
            total += size
            if total > self.max_history_bytes:
                raise ProtocolError(
                    f"The conversation on the agent is larger than edgechat reads "
                    f"({self.max_history_bytes // (1024 * 1024)} MB); it was not read whole.",
                    hint="start a new conversation (/clear, or edgechat reset); the agent keeps this one")
            if library and self._conversation_id is None:
                # The most recent conversation, shown: it is the open one from now on, so that every
                # page, and the next message, are of it even if another client starts a newer one.
                self._conversation_id = wire_chat_id(data.get("conversationId"))
            pages.append(data)
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
        return pages[::-1]

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
            raise NotSupported("Starting afresh (edgechat reset, /clear) is not available on this agent.",
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
        # On a server with the library, the new conversation is the open one.
        self._conversation_id = wire_chat_id(data.get("conversationId"))
        archived = data.get("archived")
        return shown(archived, 200, self._redactor) if isinstance(archived, str) and archived else None


__all__ = ["MAX_HISTORY_BYTES", "MAX_HISTORY_PAGES", "RemoteHistory", "decode_history"]
