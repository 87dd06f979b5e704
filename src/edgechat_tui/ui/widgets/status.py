"""The status line under the chat: connection state, context use, and streaming speed."""

from __future__ import annotations

from typing import Literal

from textual.content import Content
from textual.widgets import Static

from edgechat_tui.core.sanitize import sanitize

Tone = Literal["idle", "busy", "warning", "error"]
_TONE_STYLE: dict[Tone, str] = {
    "idle": "$text-success",
    "busy": "$text-accent",
    "warning": "$text-warning",
    "error": "$text-error",
}


class StatusLine(Static):
    """One line in three parts: ``● ready  │  ctx 3.1k/24k · 18 of 40 messages  │  42 tok/s``.

    Updated many times a second while a reply streams, so it never asks for a new layout: its size
    does not change.
    """

    DEFAULT_CSS = """
    StatusLine {
        height: 1;
        width: 1fr;
        padding: 0 1;
        background: $surface;
        color: $text-muted;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.state = "starting"
        self.tone: Tone = "busy"
        self.context: str | None = None
        self.detail: str | None = None
        self.update(self._content())

    def set_state(self, state: str, tone: Tone = "idle", *, detail: str | None = None) -> None:
        """The connection or turn state (``ready``, ``streaming``, ``retrying in 4 s``…) and a detail."""
        self.state, self.tone, self.detail = sanitize(state), tone, detail
        self._refresh()

    def set_detail(self, detail: str | None) -> None:
        self.detail = detail
        self._refresh()

    def set_context(self, context: str | None) -> None:
        self.context = context
        self._refresh()

    @property
    def plain(self) -> str:
        """The line as plain text (what tests and screen readers see)."""
        return self._content().plain

    def _refresh(self) -> None:
        self.update(self._content(), layout=False)

    def _content(self) -> Content:
        separator = ("  │  ", "$text-muted")
        tone = _TONE_STYLE[self.tone]
        parts: list[str | tuple[str, str]] = [("● ", tone), (self.state, tone)]
        if self.context:
            parts += [separator, self.context]
        if self.detail:
            parts += [separator, sanitize(self.detail)]
        return Content.assemble(*parts)
