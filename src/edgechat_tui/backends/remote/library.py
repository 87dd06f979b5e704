"""The conversation library on an agent endpoint: :class:`RemoteConversations`, the
:class:`~edgechat_tui.backends.conversations.Conversations` of a server that offers ``conversations``
(and ``search``), over the routes of docs/protocol.md.

It goes through its agent's requests (credentials, deadlines, body caps, the error map) and keeps the
open conversation in the agent (``_conversation_id``), where the agent's turns and history read it.
Ids are checked before anything is sent (a malformed one is ConversationNotFound or MessageNotFound,
as the server would say); every answer is read as untrusted (:mod:`.library_data`).
"""

from __future__ import annotations

import asyncio
import itertools
from typing import TYPE_CHECKING, Any

from edgechat_tui.backends.conversations import Conversations
from edgechat_tui.backends.remote.errors import describe_body
from edgechat_tui.backends.remote.library_data import (
    check_chat_id,
    decode_hits,
    decode_summaries,
    message_number,
    one_summary,
    wire_chat_id,
)
from edgechat_tui.backends.remote.turn import Exchange
from edgechat_tui.core.conversations import BranchMessage, ConversationSummary, SearchHit
from edgechat_tui.core.errors import (
    ConnectionFailed,
    ConversationConflict,
    ConversationNotFound,
    EdgechatError,
    NotSupported,
    ProtocolError,
    RateLimited,
    RequestTimeout,
    ServerError,
    UsageError,
)
from edgechat_tui.core.sanitize import sanitize
from edgechat_tui.http.jsondata import loads_object
from edgechat_tui.http.retry import MAX_RETRY_WAIT, backoff_wait
from edgechat_tui.http.unicode import fix_surrogates
from edgechat_tui.storage.chat_search import query_terms

if TYPE_CHECKING:
    from edgechat_tui.backends.remote.history import RemoteHistory

#: The longest search query the protocol takes, and the most results one search asks for.
MAX_QUERY_CHARS = 500
MAX_SEARCH_LIMIT = 200
#: The longest title sent (the server cleans and cuts it to 80 characters).
MAX_TITLE_INPUT = 10_000
_BUSY_HINT = "wait for the reply, or stop it with Esc"


class RemoteConversations(Conversations):
    """One user's conversations on an agent endpoint (its ``conversations`` extension)."""

    def __init__(self, agent: RemoteHistory) -> None:
        self._agent = agent

    def __repr__(self) -> str:
        return f"RemoteConversations({self._agent!r})"

    # --- reading ----------------------------------------------------------------------------------

    async def list(self, *, archived: bool = False, deleted: bool = False) -> list[ConversationSummary]:
        return (await self._list(archived=archived, deleted=deleted))[0]

    async def _list(self, *, archived: bool = False, deleted: bool = False,
                    ) -> tuple[list[ConversationSummary], str | None]:
        if archived and deleted:
            raise UsageError("List archived conversations or the trash, not both at once.")
        params = {"archived": "1"} if archived else {"deleted": "1"} if deleted else {}
        data = await self._call("GET", "/api/conversations", "the list of conversations", params=params)
        return decode_summaries(data, self._agent._redactor), wire_chat_id(data.get("current"))

    async def current(self) -> ConversationSummary | None:
        agent = self._agent
        if agent._conversation_id is not None:
            try:
                summary = await self.get(agent._conversation_id)
            except ConversationNotFound:
                summary = None
            if summary is not None and summary.deleted_at is None:
                return summary
            agent._conversation_id = None  # deleted elsewhere: the most recent one is open instead
        summaries, current = await self._list()
        found = next((s for s in summaries if s.id == current), None)
        if found is not None:
            agent._conversation_id = found.id
        return found

    async def get(self, chat_id: str) -> ConversationSummary:
        chat_id = check_chat_id(chat_id)
        data = await self._call("GET", f"/api/conversations/{chat_id}", "a conversation")
        return self._same(one_summary(data, "a conversation", self._agent._redactor), chat_id)

    async def search(self, query: str, *, limit: int = 50) -> list[SearchHit]:
        caps = await self._agent._capabilities()
        if "search" not in caps.names:
            raise NotSupported("Search is not available on this agent: it keeps conversations but does not "
                               "offer search.", hint="open the conversations from the list instead")
        if not isinstance(query, str) or not query_terms(sanitize(query)):
            # The words as the Worker finds them (letters and digits): "***" is refused here, as
            # locally, not sent to be refused with a 400.
            raise UsageError("There is nothing to search for: give a word.", hint="edgechat search WORDS")
        if len(query) > MAX_QUERY_CHARS:
            raise UsageError(f"A search is at most {MAX_QUERY_CHARS} characters.", hint="use fewer words")
        limit = max(1, min(int(limit), MAX_SEARCH_LIMIT))
        data = await self._call("GET", "/api/search", "a search", params={"q": query, "limit": str(limit)})
        return decode_hits(data, limit, self._agent._redactor)

    async def leaf_reply(self, chat_id: str) -> str:
        """The text of conversation ``chat_id``'s last reply as stored ("" when its leaf is not a reply):
        what a continue's answer begins with."""
        data = await self._call("GET", "/api/history", "a history",
                                params={"conversationId": check_chat_id(chat_id), "limit": "1"})
        messages = data.get("messages")
        last = messages[-1] if isinstance(messages, list) and messages else None
        if not isinstance(last, dict) or last.get("role") != "assistant" \
                or not isinstance(last.get("content"), str):
            return ""
        return fix_surrogates(last["content"])

    async def branch(self) -> list[BranchMessage]:
        agent = self._agent
        with agent._redacting():
            return await agent._branch()

    # --- changing -------------------------------------------------------------------------------

    async def create(self, title: str | None = None) -> ConversationSummary:
        self._not_while_busy(None, "start a new conversation")
        body: dict[str, Any] = {}
        if title is not None:
            body["title"] = self._title(title)
        data = await self._call("POST", "/api/conversations", "a new conversation", body=body)
        summary = one_summary(data, "a new conversation", self._agent._redactor)
        self._agent._conversation_id = summary.id
        return summary

    async def open(self, chat_id: str) -> ConversationSummary:
        self._not_while_busy(None, "open another conversation")
        summary = await self.get(chat_id)
        if summary.deleted_at is not None:
            raise ConversationConflict(f"Conversation {summary.id} is in the trash.",
                                       hint="restore it first, then open it")
        self._agent._conversation_id = summary.id
        return summary

    async def rename(self, chat_id: str, title: str) -> ConversationSummary:
        chat_id = check_chat_id(chat_id)
        return await self._action(chat_id, "rename", {"title": self._title(title)})

    async def archive(self, chat_id: str) -> ConversationSummary:
        chat_id = check_chat_id(chat_id)
        self._not_while_busy(chat_id, "archive it")
        return await self._action(chat_id, "archive", {})

    async def restore(self, chat_id: str) -> ConversationSummary:
        return await self._action(check_chat_id(chat_id), "restore", {})

    async def delete(self, chat_id: str, *, purge: bool = False) -> ConversationSummary | None:
        chat_id = check_chat_id(chat_id)
        self._not_while_busy(chat_id, "delete it")
        path = f"/api/conversations/{chat_id}/delete"
        data = await self._call("POST", path, "a delete", body={"purge": True} if purge else {})
        if self._agent._conversation_id == chat_id:
            self._agent._conversation_id = None  # gone from view: the next message goes to the most recent
        if purge:
            if data.get("purged") != chat_id:
                raise ProtocolError("The agent's answer to a purge does not say the conversation is gone.")
            return None
        return self._same(one_summary(data, "a delete", self._agent._redactor), chat_id)

    async def switch(self, message_id: str) -> list[BranchMessage]:
        agent = self._agent
        number = message_number(message_id)
        chat_id = agent._conversation_id
        if chat_id is None:
            current = await self.current()
            if current is None:
                raise ConversationConflict("There is no conversation yet: no branch to switch to.")
            chat_id = current.id
        self._not_while_busy(chat_id, "switch its branch")
        await self._action(chat_id, "switch", {"messageId": number})
        return await self.branch()

    # --- plumbing -------------------------------------------------------------------------------

    async def _action(self, chat_id: str, action: str, body: dict[str, Any]) -> ConversationSummary:
        data = await self._call("POST", f"/api/conversations/{chat_id}/{action}", f"a {action}", body=body)
        return self._same(one_summary(data, f"a {action}", self._agent._redactor), chat_id)

    async def _call(self, method: str, path: str, what: str, *, params: dict[str, str] | None = None,
                    body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One request of the library, answered 200 with a JSON object; a typed error otherwise.

        Sent again (within ``max_retries``, with backoff) when it did not reach the server, or the server
        said it did not process it (429 ``rate_limited``, 503); after a lost connection or a timeout only
        when doing it twice is doing it once (a read, a rename, an archive...; not a create or a purge).
        """
        agent = self._agent
        with agent._redacting():
            await agent._capabilities()
            repeatable = method == "GET" or (path.rsplit("/", 1)[-1] in _REPEATABLE
                                             and not (body or {}).get("purge"))
            for attempt in itertools.count(1):
                try:
                    return await self._call_once(method, path, what, params, body)
                except EdgechatError as error:
                    wait = _retry_wait(error, attempt, agent._max_retries, agent._retry_delay, repeatable)
                    if wait is None:
                        raise
                await asyncio.sleep(wait)
            raise AssertionError("unreachable")

    async def _call_once(self, method: str, path: str, what: str, params: dict[str, str] | None,
                         body: dict[str, Any] | None) -> dict[str, Any]:
        agent = self._agent
        url = agent._endpoint.url(path)
        exchange, deadline = Exchange(), agent._deadline()
        user = agent._user_param()
        kw: dict[str, Any] = ({"json": user | (body or {})} if method == "POST"
                              else {"params": user | (params or {})})
        with agent._transport_errors(exchange):
            async with agent._request(method, url, exchange, deadline,
                                      headers=agent._headers("application/json"), **kw) as response:
                if response.status_code != 200:
                    raise await agent._error_from(response, str(response.url), deadline)
                raw = await agent._read_json(response, deadline)
        data = loads_object(raw)
        if data is None:
            shown = describe_body(response.headers.get("content-type", ""), raw, agent._redactor)
            raise ProtocolError(f"The agent's answer to {what} cannot be read: {shown}.")
        return data

    @staticmethod
    def _same(summary: ConversationSummary, chat_id: str) -> ConversationSummary:
        if summary.id != chat_id:
            raise ProtocolError(f"The agent answered about conversation {summary.id} when asked about "
                                f"{chat_id}.")
        return summary

    @staticmethod
    def _title(title: str) -> str:
        if not isinstance(title, str) or not sanitize(title).strip():
            raise UsageError("A title needs something printable.", hint="give the conversation a few words")
        return title[:MAX_TITLE_INPUT]

    def _not_while_busy(self, chat_id: str | None, what: str) -> None:
        """A reply streaming into a conversation: changing it (or which one is open) waits for the reply."""
        agent = self._agent
        if not agent._busy:
            return
        running = agent._running.conversation if agent._running is not None else None
        if chat_id is None or chat_id == running or chat_id == agent._conversation_id:
            raise UsageError(f"A reply is still coming: {what} once it is done.", hint=_BUSY_HINT)


#: The library's changes that, done twice, are done once (a lost answer may be asked again).
_REPEATABLE = frozenset({"rename", "archive", "restore", "delete", "switch"})


def _retry_wait(error: EdgechatError, attempt: int, max_retries: int, base: float,
                repeatable: bool) -> float | None:
    """Seconds before sending a library request again, or None: not again."""
    if attempt > max_retries:
        return None
    retry_after = None
    if isinstance(error, ConnectionFailed):
        if error.reached_server or error.code not in ("refused", "dns_temporary"):
            if not (repeatable and error.code in ("lost", "connect_timeout", "refused", "dns_temporary")):
                return None
    elif isinstance(error, RequestTimeout):
        if not (repeatable and error.code == "timeout"):
            return None
    elif isinstance(error, RateLimited) and error.code in (None, "rate_limited"):
        retry_after = error.retry_after
    elif isinstance(error, ServerError) and error.status == 503:
        retry_after = error.retry_after
    else:
        return None
    if retry_after is not None and retry_after > MAX_RETRY_WAIT:
        return None
    return backoff_wait(attempt, retry_after, base=base)


__all__ = ["MAX_QUERY_CHARS", "MAX_SEARCH_LIMIT", "RemoteConversations"]
