"""The chat screen's parts made on first use: the turn runner, the library and the clipboard.

Their modules (and the commands', which they import) load when a part is first needed, after the
first frame, not with the screen: the conversation is on screen sooner. Reading a part makes it;
:meth:`ChatParts.made` tells whether it exists without making it (the first frame asks whether a
reply streams, and none can before the turn runner exists).
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from textual.app import App

    from edgechat_tui.core.errors import EdgechatError
    from edgechat_tui.ui.clipboard import Clipboard
    from edgechat_tui.ui.library import Library
    from edgechat_tui.ui.turn import Turn, TurnRunner

__all__ = ["ChatParts"]


class ChatParts:
    """Mixed into the chat screen, which is the host each part is made for."""

    app: App[Any]
    if TYPE_CHECKING:  # the screen's (ChatDialogs); a stub here would hide it

        def _failure_offer(self, error: EdgechatError) -> str | None: ...

    @cached_property
    def turns(self) -> TurnRunner:
        from edgechat_tui.ui.turn import TurnRunner

        turns = TurnRunner(self)  # type: ignore[arg-type]
        turns.failure_offer = self._failure_offer
        return turns

    @cached_property
    def clipboard(self) -> Clipboard:
        """Where copies go (OSC 52 and the system tool); tests put a recording one here."""
        from edgechat_tui.ui.clipboard import Clipboard

        return Clipboard(lambda: self.app)

    @cached_property
    def library(self) -> Library:
        from edgechat_tui.ui.library import Library

        return Library(self)  # type: ignore[arg-type]

    def made(self, part: str) -> bool:
        """Whether ``part`` ("turns", "library", "clipboard") exists yet."""
        return part in self.__dict__

    @property
    def turn(self) -> Turn | None:
        return self.turns.turn if self.made("turns") else None

    @property
    def streaming(self) -> bool:
        return self.turn is not None

    @property
    def opening(self) -> bool:
        return self.made("library") and self.library.opening

    async def summary_changed(self) -> None:
        """The open conversation's file changed elsewhere: its title (and the list) read again."""
        if self.made("library"):
            await self.library.refresh_current()
