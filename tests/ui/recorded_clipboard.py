"""A clipboard the tests record through: the app's copy path writes into it, the test reads it.

It is the app's own :class:`~edgechat_tui.ui.clipboard.Clipboard` (OSC 52 through the app, the
sanitising, the notice), with no system tool unless one is given, keeping every copy's result.
"""

from __future__ import annotations

from typing import Any

from edgechat_tui.ui.clipboard import Clipboard, ClipboardTool, CopyResult


class RecordedClipboard(Clipboard):
    def __init__(self, app: Any, tool: ClipboardTool | None = None, **kwargs: Any) -> None:
        super().__init__(lambda: app, tool=tool, **kwargs)
        self.results: list[CopyResult] = []

    def record(self, result: CopyResult) -> CopyResult:
        self.results.append(result)
        return result

    @property
    def copies(self) -> list[str]:
        """The texts copied, oldest first."""
        return [result.text for result in self.results]


def record_copies(app: Any, **kwargs: Any) -> RecordedClipboard:
    """Put a recording clipboard on ``app``'s chat screen and return it."""
    clipboard = RecordedClipboard(app, **kwargs)
    app.chat.clipboard = clipboard
    return clipboard
