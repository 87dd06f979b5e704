"""The local agent's conversation library: :class:`~edgechat_tui.backends.conversations.Conversations`
over the profile's :class:`~edgechat_tui.storage.library.Library`, every file and SQLite call in a thread.

The *open* conversation is where the agent's turns go. Until one is opened or created it is the most
recent one (found when first needed); a profile without any gets one with its first message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from edgechat_tui.backends.conversations import Conversations
from edgechat_tui.core.conversations import BranchMessage, ConversationSummary, SearchHit
from edgechat_tui.core.errors import ConversationConflict, UsageError
from edgechat_tui.core.messages import Message
from edgechat_tui.storage.chat_file import check_chat_id
from edgechat_tui.storage.chat_format import new_chat_id
from edgechat_tui.storage.chat_tree import ChatState
from edgechat_tui.storage.library import Library
from edgechat_tui.storage.tail import read_branch_tail

__all__ = ["LocalConversations"]

T = TypeVar("T")


class LocalConversations(Conversations):
    """One profile's conversations on this machine, and which one is open."""

    def __init__(self, library: Library, busy: Callable[[], bool]) -> None:
        library.forbid_event_loop()
        self.library = library
        self._busy = busy
        self._open: str | None = None
        self._resolved = False  # whether ``_open`` has been decided (it may be None: none yet)
        self._reserved: str | None = None  # the id a first message will create
        self._fresh = False  # the next first message makes a conversation of its own

    @staticmethod
    async def _run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(fn, *args, **kwargs)

    def _refuse_while_busy(self, what: str) -> None:
        if self._busy():
            raise UsageError(f"A reply is still coming: {what} after it.",
                             hint="wait for it, or stop it with Esc")

    # --- the open conversation (used by the agent) ------------------------------------------------

    async def open_id(self) -> str | None:
        if not self._resolved:
            recent = await self._run(self.library.most_recent)
            if not self._resolved:
                self._open, self._resolved = (recent.id if recent else None), True
        return self._open

    async def open_state(self) -> ChatState | None:
        chat_id = await self.open_id()
        if chat_id is None:
            return None
        state, _place = await self._run(self.library.state, chat_id)
        return state

    async def ensure_open(self) -> tuple[str, str | None]:
        """The open conversation's id, and how a first message saves into it: None (it exists), "first"
        (the profile had none: join one another process starts meanwhile, else create it) or "new"
        (create it: the open one was deleted). Nothing exists until that turn is saved."""
        chat_id = await self.open_id()
        if chat_id is not None:
            return chat_id, None
        if self._reserved is None:
            self._reserved = new_chat_id()
        return self._reserved, "new" if self._fresh else "first"

    def opened(self, reserved: str, chat_id: str) -> None:
        """The first message went to conversation ``chat_id``: it is the open one now."""
        if self._reserved == reserved:
            self._reserved = None
        if self._open is None:
            self._open, self._resolved, self._fresh = chat_id, True, False

    def forget_open(self) -> None:
        """The next message starts a new conversation (the open one was deleted)."""
        self._open, self._resolved, self._fresh = None, True, True

    # --- Conversations ----------------------------------------------------------------------------

    async def list(self, *, archived: bool = False, deleted: bool = False) -> list[ConversationSummary]:
        return await self._run(self.library.list, archived=archived, deleted=deleted)

    async def current(self) -> ConversationSummary | None:
        chat_id = await self.open_id()
        return None if chat_id is None else await self.get(chat_id)

    async def get(self, chat_id: str) -> ConversationSummary:
        return await self._run(self.library.summary, chat_id)

    async def create(self, title: str | None = None) -> ConversationSummary:
        self._refuse_while_busy("start a new conversation")
        created = await self._run(self.library.create, title)
        self._open, self._resolved = created.id, True
        return created

    async def open(self, chat_id: str) -> ConversationSummary:
        self._refuse_while_busy("open another conversation")
        state, place = await self._run(self.library.state, chat_id)
        if place == "trash":
            raise ConversationConflict("This conversation is in the trash.",
                                       hint=f"restore it first: edgechat chats restore {chat_id} "
                                            "(in the chat: /chats trash, then u)")
        self._open, self._resolved = chat_id, True
        return state.summary()

    async def rename(self, chat_id: str, title: str) -> ConversationSummary:
        return await self._run(self.library.rename, chat_id, title)

    async def archive(self, chat_id: str) -> ConversationSummary:
        if chat_id == self._open:
            self._refuse_while_busy("archive this conversation")
        return await self._run(self.library.archive, chat_id)

    async def restore(self, chat_id: str) -> ConversationSummary:
        return await self._run(self.library.restore, chat_id)

    async def delete(self, chat_id: str, *, purge: bool = False) -> ConversationSummary | None:
        if chat_id == self._open:
            self._refuse_while_busy("delete this conversation")
        result = await self._run(self.library.delete, chat_id, purge=purge)
        if chat_id == self._open:
            self.forget_open()
        return result

    async def replies_since(self, since: datetime) -> list[Message]:
        return await self._run(self.library.replies_since, since)

    async def search(self, query: str, *, limit: int = 50) -> list[SearchHit]:
        return await self._run(self.library.search, query, limit=limit)

    async def branch(self) -> list[BranchMessage]:
        state = await self.open_state()
        # 10,000 messages for a long conversation: made in the thread, not on the event loop.
        return [] if state is None else await self._run(state.branch)

    async def peek(self, chat_id: str, count: int) -> list[BranchMessage] | None:
        path = self.library.paths.chat_path(check_chat_id(chat_id))  # the active folder: not the trash
        return await self._run(read_branch_tail, path, self.library.user, count)

    async def switch(self, message_id: str) -> list[BranchMessage]:
        self._refuse_while_busy("switch branches")
        chat_id = await self.open_id()
        if chat_id is None:
            raise ConversationConflict("There is no conversation open to switch branches in.")
        state = await self._run(self.library.switch, chat_id, message_id)
        return await self._run(state.branch)
