"""The quiet line under a reply: ``312 in · 128 out · 3.2 s · 40 tok/s · 41.3 neurons · $0.00045``."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from edgechat_tui.core.sanitize import sanitize

__all__ = ["UsageLine"]


class UsageLine(Static):
    """Figures about one reply, muted, under its text. Built from plain text, never markup."""

    DEFAULT_CSS = """
    UsageLine { height: 1; color: $text-muted; text-style: dim; }
    """

    def __init__(self, text: str) -> None:
        self.text = sanitize(text)
        super().__init__(Content(self.text))

    def show(self, text: str) -> None:
        self.text = sanitize(text)
        self.update(Content(self.text))
