"""A conversation as its records fold into it: the tree of messages, the current leaf, title, flags.

Pure: entries in (``chat_format.py``), state out. The current branch runs from the leaf up through
the parents; a record adding messages makes its last one the leaf, a switch record moves it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from edgechat_tui.core.conversations import BranchMessage, ConversationSummary
from edgechat_tui.core.messages import Message
from edgechat_tui.storage.chat_format import AppendEntry, Entry, MessageEntry, MetaEntry, SwitchEntry

__all__ = ["TRASH_DAYS", "ChatState", "Node"]

#: Days a conversation stays in the trash before it is purged.
TRASH_DAYS = 30


@dataclass(slots=True)
class Node:
    id: str
    parent: str | None
    message: Message
    truncated: bool
    order: int  # position in the file: siblings are oldest first


class ChatState:
    """What one conversation file says, folded."""

    def __init__(self, chat_id: str, created: str) -> None:
        self.id = chat_id
        self.created = created
        self.nodes: dict[str, Node] = {}
        self.children: dict[str | None, list[str]] = {}
        self.leaf: str | None = None
        self.title = ""
        self.title_source: str | None = None
        self.archived = False
        self.deleted_at: str | None = None
        self.updated = created

    def apply(self, entries: list[Entry]) -> None:
        for entry in entries:
            if isinstance(entry, MessageEntry):
                if entry.id in self.nodes:
                    continue  # the same message twice (a copy joined by hand): the first counts
                parent = entry.parent if entry.parent in self.nodes else None
                self.nodes[entry.id] = Node(entry.id, parent, entry.message, entry.truncated, len(self.nodes))
                self.children.setdefault(parent, []).append(entry.id)
                self.leaf = entry.id
                self._touch(entry.message.time)
            elif isinstance(entry, AppendEntry):
                node = self.nodes.get(entry.id)
                if node is None:
                    continue
                old = node.message
                node.message = replace(old, content=old.content + entry.content, stopped=entry.stopped,
                                       usage=entry.usage or old.usage)
                node.truncated = entry.truncated
                self._touch(entry.time)
            elif isinstance(entry, SwitchEntry):
                if entry.leaf in self.nodes:
                    self.leaf = entry.leaf
            elif isinstance(entry, MetaEntry):
                fields = entry.fields
                if "title" in fields:
                    self.title, self.title_source = fields["title"], fields["titleSource"]
                if "archived" in fields:
                    self.archived = fields["archived"]
                if "deleted" in fields:
                    self.deleted_at = fields["deleted"]

    def _touch(self, when: str) -> None:
        if when and when > self.updated:
            self.updated = when

    # --- the tree -------------------------------------------------------------------------------

    def branch_nodes(self, leaf: str | None = None) -> list[Node]:
        """The path from ``leaf`` (default: the current one) up to the first message, oldest first."""
        path: list[Node] = []
        seen: set[str] = set()
        current = self.leaf if leaf is None else leaf
        while current is not None and current not in seen:
            seen.add(current)
            node = self.nodes[current]
            path.append(node)
            current = node.parent
        path.reverse()
        return path

    def siblings(self, node: Node) -> tuple[str, ...]:
        return tuple(self.children.get(node.parent, ()))

    def descend(self, message_id: str) -> str:
        """The newest leaf below ``message_id`` (at each step the newest child)."""
        current = message_id
        while self.children.get(current):
            current = self.children[current][-1]
        return current

    def branch(self) -> list[BranchMessage]:
        return [BranchMessage(node.message, node.id, node.parent, self.siblings(node), node.truncated)
                for node in self.branch_nodes()]

    def messages(self) -> list[Message]:
        return [node.message for node in self.branch_nodes()]

    def first_exchange(self) -> tuple[str, str] | None:
        """The first question and its first reply, for a title."""
        roots = self.children.get(None, [])
        if not roots:
            return None
        question = self.nodes[roots[0]]
        replies = self.children.get(question.id, [])
        if question.message.role != "user" or not replies:
            return None
        return question.message.content, self.nodes[replies[0]].message.content

    def summary(self, *, in_trash: bool = False) -> ConversationSummary:
        deleted = purge = None
        if in_trash:
            deleted = self.deleted_at or self.updated
            purge = purge_time(deleted)
        return ConversationSummary(self.id, self.title, len(self.branch_nodes()), self.created, self.updated,
                                   self.archived, deleted, purge)


def purge_time(deleted_at: str) -> str:
    """When a conversation deleted at ``deleted_at`` leaves the trash for good."""
    try:
        when = datetime.fromisoformat(deleted_at.replace("Z", "+00:00"))
    except ValueError:
        when = datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when + timedelta(days=TRASH_DAYS)).astimezone(UTC).isoformat(timespec="milliseconds") \
        .replace("+00:00", "Z")
