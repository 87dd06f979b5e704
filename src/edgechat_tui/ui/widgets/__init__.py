"""Widgets of the edgechat TUI.

``ReplyMarkdown`` is loaded on first use (module ``__getattr__``): it brings the Markdown parser,
which the first frame of the app does not need, and importing any widget module of this package
runs this file first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgechat_tui.ui.widgets.reply import ReplyMarkdown

__all__ = ["ReplyMarkdown"]


def __getattr__(name: str) -> Any:
    if name == "ReplyMarkdown":
        from edgechat_tui.ui.widgets.reply import ReplyMarkdown

        return ReplyMarkdown
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
