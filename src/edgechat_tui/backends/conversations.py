"""The conversation library facet of an agent: many conversations per profile, branches, search.

``agent.conversations`` is a :class:`Conversations` when the backend keeps many conversations (the local
agent; a remote agent whose server offers ``conversations``), and None otherwise (a seed server): the UI
and the CLI then say what is not available there and go on with the one conversation.

The agent talks to one conversation at a time, the *open* one: ``send``, ``regenerate``, ``edit`` and
``continue_reply`` go to it, ``history`` shows its current branch. :meth:`Conversations.create` and
:meth:`Conversations.open` change which one is open. Every method may raise
:class:`~edgechat_tui.core.errors.ConversationNotFound` for an unknown id; a method that would change a
conversation while a reply is streaming into it raises UsageError.
"""

from __future__ import annotations

import abc
from datetime import datetime

from edgechat_tui.core.conversations import BranchMessage, ConversationSummary, SearchHit
from edgechat_tui.core.messages import Message

__all__ = ["Conversations"]


class Conversations(abc.ABC):
    """One profile's conversations."""

    @abc.abstractmethod
    async def list(self, *, archived: bool = False, deleted: bool = False) -> list[ConversationSummary]:
        """The active conversations (or the archived ones, or the trash), newest ``updated`` first."""

    @abc.abstractmethod
    async def current(self) -> ConversationSummary | None:
        """The open conversation; None when the profile has none yet (the first message creates one)."""

    @abc.abstractmethod
    async def get(self, chat_id: str) -> ConversationSummary:
        """One conversation by id (also one archived or in the trash)."""

    @abc.abstractmethod
    async def create(self, title: str | None = None) -> ConversationSummary:
        """Start a new, empty conversation and open it. A ``title`` given is the user's own."""

    @abc.abstractmethod
    async def open(self, chat_id: str) -> ConversationSummary:
        """Open conversation ``chat_id``: the next message goes there. An archived one opens to read;
        sending into it raises ConversationConflict until it is restored."""

    @abc.abstractmethod
    async def rename(self, chat_id: str, title: str) -> ConversationSummary:
        """Set a title (cleaned: one line, at most 80 characters). A user's title is never replaced."""

    @abc.abstractmethod
    async def archive(self, chat_id: str) -> ConversationSummary:
        """Put a conversation aside: out of the list, read-only, restorable."""

    @abc.abstractmethod
    async def restore(self, chat_id: str) -> ConversationSummary:
        """Bring a conversation back from the archive or the trash."""

    @abc.abstractmethod
    async def delete(self, chat_id: str, *, purge: bool = False) -> ConversationSummary | None:
        """Move a conversation to the trash (kept 30 days, restorable); ``purge=True`` on one already in
        the trash removes it for good and returns None."""

    @abc.abstractmethod
    async def search(self, query: str, *, limit: int = 50) -> list[SearchHit]:
        """Messages of every conversation (not the trash) matching ``query``'s words, newest first."""

    @abc.abstractmethod
    async def branch(self) -> list[BranchMessage]:
        """The open conversation's current branch, oldest first, with each message's id and siblings."""

    @abc.abstractmethod
    async def switch(self, message_id: str) -> list[BranchMessage]:
        """Make the current branch run through ``message_id`` (down to its newest leaf); the new branch."""

    async def replies_since(self, since: datetime) -> list[Message] | None:
        """Every reply stored at or after ``since`` in any conversation and on any branch (for
        ``/usage``'s "today"); None where the backend cannot tell (the default)."""
        return None

    async def peek(self, chat_id: str, count: int) -> list[BranchMessage] | None:
        """The newest ``count`` messages of conversation ``chat_id``'s current branch, read cheaply (the
        end of its file), before it is opened; None when they cannot be read so (this default: a server's
        conversation), or are not sure to be that branch: :meth:`open` and :meth:`branch` then tell."""
        return None
