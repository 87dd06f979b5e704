"""Widgets of the edgechat TUI."""

from edgechat_tui.ui.widgets.reply import ReplyMarkdown

__all__ = ["ReplyMarkdown"]
