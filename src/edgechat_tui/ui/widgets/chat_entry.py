"""One item of the chat pane, as data: a message of the conversation or something the app said."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from textual.widget import Widget

from edgechat_tui.core.messages import Message, Usage
from edgechat_tui.ui.widgets.chat_rows import RowCache

__all__ = ["Entry", "EntryKind"]

EntryKind = Literal["user", "assistant", "error", "info", "warning"]


@dataclass(eq=False)
class Entry:
    """One item of the pane: a message of the conversation, or something the app said."""

    kind: EntryKind
    text: str
    hint: str | None = None
    advice: str | None = None
    model: str | None = None
    stopped: bool = False
    #: The reply is still streaming: its widget must stay mounted until it ends.
    live: bool = False
    #: What the service reported for a reply; and the line of figures shown under it
    #: (``312 in · 128 out · …``), made when its widget is first built (:attr:`ChatLog.describe_usage`).
    usage: Usage | None = None
    figures: str | None = None
    #: How many times in a row this same error happened (shown as ``×3``; errors only).
    repeat: int = 1
    widget: Widget | None = field(default=None, repr=False)
    #: The message's id in the conversation library's tree (None without a library).
    message_id: str | None = None
    #: ``(2, 3)`` for the second of three versions of this message (a branch); None when it has one.
    branch: tuple[int, int] | None = None
    #: The rows it takes: measured when it was last mounted, else estimated.
    rows: RowCache = field(default_factory=RowCache, repr=False)
    #: A reply of the early view: its lines from the render cache, for its first widget only.
    drawn: object | None = field(default=None, repr=False)

    def same_as(self, other: Entry) -> bool:
        """Shows the same thing as ``other`` (a message of the early view and the store's)."""
        return (self.kind, self.text, self.hint, self.advice, self.model, self.stopped, self.branch) == (
            other.kind, other.text, other.hint, other.advice, other.model, other.stopped, other.branch)

    @classmethod
    def from_message(cls, message: Message) -> Entry:
        kind: EntryKind = "user" if message.role == "user" else "assistant"
        if message.role == "system":
            return cls("info", f"system prompt: {message.content}")
        return cls(kind, message.content, model=message.model, stopped=message.stopped, usage=message.usage)

    @property
    def is_message(self) -> bool:
        """A stored message of the conversation (not a notice, not a reply still streaming)."""
        return self.kind in ("user", "assistant") and not self.live
