"""The one-line header: who is chatting, where the agent runs, and which model answers."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from edgechat_tui.core.sanitize import sanitize


class ChatHeader(Static):
    """``edgechat │ alice │ local │ @cf/meta/llama-3.3-70b-instruct-fp8-fast``.

    Built from ``Content`` pieces, never markup: a model id typed by the user may hold brackets.
    """

    DEFAULT_CSS = """
    ChatHeader {
        dock: top;
        height: 1;
        width: 1fr;
        background: $panel;
        color: $foreground;
        padding: 0 1;
    }
    """

    def __init__(self, user: str, mode: str, model: str | None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.user = user
        self.mode = mode
        self.model = model
        self.update(self._content())

    def show(self, *, user: str, mode: str, model: str | None) -> None:
        """Show another user, mode or model (after /user, /model, or once the agent is known)."""
        self.user, self.mode, self.model = user, mode, model
        self.update(self._content(), layout=False)

    def _content(self) -> Content:
        separator = ("  │  ", "$text-muted")
        parts: list[str | tuple[str, str]] = [("edgechat", "bold $accent"), separator,
                                              (self.user, "bold"), separator, (sanitize(self.mode), "")]
        if self.model:
            parts += [separator, (sanitize(self.model), "$text-secondary")]
        return Content.assemble(*parts)
