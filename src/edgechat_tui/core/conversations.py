"""The conversation library's data: summaries for the list, search hits, and the current branch.

Plain frozen dataclasses with no I/O, shared by the local library, the remote client, the CLI and the UI.
``SearchHit`` is in ``hits.py`` (a search needs it alone) and named here too.
Every text field here came from a file or a server: untrusted, sanitised before it is shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edgechat_tui.core.hits import SearchHit
from edgechat_tui.core.messages import Message

__all__ = ["BranchMessage", "ConversationSummary", "SearchHit"]


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    """One conversation as the list shows it.

    ``id``: short, sortable by creation, safe as a file name (the local library: 14 characters of
    lower-case Crockford base32, as the Worker's). ``message_count``: messages on the current branch.
    ``created``/``updated``: ISO 8601 (``updated``: the newest message; renaming does not change it).
    ``deleted_at``/``purge_at``: set for a conversation in the trash only.
    """

    id: str
    title: str
    message_count: int
    created: str
    updated: str
    archived: bool = False
    deleted_at: str | None = None
    purge_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The CLI's ``chats --json`` form."""
        data: dict[str, Any] = {"id": self.id, "title": self.title, "messageCount": self.message_count,
                                "created": self.created, "updated": self.updated, "archived": self.archived}
        if self.deleted_at is not None:
            data["deletedAt"] = self.deleted_at
            data["purgeAt"] = self.purge_at
        return data


@dataclass(frozen=True, slots=True)
class BranchMessage:
    """A message of the current branch, with its place in the conversation's tree.

    ``id`` is unique within the profile (a string: the remote agent's integers are given as text).
    ``siblings``: the ids of every message with the same parent, this one included, oldest first; a
    message with more than one shows ``2/3`` and can be switched to another. ``truncated``: a reply that
    reached ``max_tokens`` (``continue`` goes on with it).
    """

    message: Message
    id: str
    parent: str | None = None
    siblings: tuple[str, ...] = field(default=())
    truncated: bool = False

    @property
    def position(self) -> tuple[int, int]:
        """``(index, count)``, 1-based, among its siblings: ``(2, 3)`` shows as ``2/3``."""
        if not self.siblings or self.id not in self.siblings:
            return (1, 1)
        return (self.siblings.index(self.id) + 1, len(self.siblings))
