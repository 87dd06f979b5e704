"""The chat pane's context marker: the line above the first message still sent to the model.

A part of :class:`~edgechat_tui.ui.widgets.chat_log.ChatLog` (a mixin): the agent's
``ContextInfo`` says how many of the stored messages are sent; the marker sits above the first of
them while its widget is mounted, and is hidden otherwise.
"""

from __future__ import annotations

from typing import Any

from edgechat_tui.ui.widgets.chat_entry import Entry
from edgechat_tui.ui.widgets.chat_markers import ContextMarker

__all__ = ["ContextLine"]


class ContextLine:
    """The context marker's part of the chat pane (mixed into ``ChatLog``, which provides the rest)."""

    entries: list[Entry]
    _context_entry: Entry | None
    _context_line: ContextMarker
    children: Any
    move_child: Any

    def set_context_start(self, sent: int, total: int) -> None:
        """The model is sent the newest ``sent`` of ``total`` stored messages: mark where they begin."""
        self._context_entry = None
        if 0 <= sent < total:
            first = total - sent  # the index, among stored messages, of the first one sent
            index = 0
            for entry in self.entries:
                if entry.is_message:
                    if index == first:
                        self._context_entry = entry
                        break
                    index += 1
        if self._context_entry is not None:
            self._context_line.show_earlier(total - sent)
        self._place_context_marker()

    def _place_context_marker(self) -> None:
        entry = self._context_entry
        widget = entry.widget if entry is not None else None
        shown = widget is not None and widget.parent is self and entry in self.entries
        self._context_line.set_class(shown, "-shown")
        if shown and widget is not None and self._context_line.is_mounted:
            children = self.children
            at = children.index(widget)
            if at == 0 or children[at - 1] is not self._context_line:
                self.move_child(self._context_line, before=widget)

    @property
    def context_marker(self) -> ContextMarker:
        return self._context_line
