"""The one-line header: who is chatting, where the agent runs, and which model answers."""

from __future__ import annotations

from rich.cells import cell_len
from textual.content import Content
from textual.widgets import Static

from edgechat_tui.core.sanitize import sanitize

#: The longest conversation title the header shows whole (a longer one is cut, with …).
TITLE_WIDTH = 48

__all__ = ["ChatHeader", "header_parts"]

SEPARATOR = "  │  "
ELLIPSIS = "…"
# A model cut shorter than this says nothing useful: it is left out instead.
MIN_MODEL_CELLS = 10


def _shorten(text: str, cells: int) -> str:
    """``text`` cut to ``cells`` terminal cells, with an ellipsis when cut; "" when nothing fits."""
    if cell_len(text) <= cells:
        return text
    if cells <= 1:
        return ""
    out = ""
    for char in text:
        if cell_len(out + char) > cells - 1:
            break
        out += char
    return out + ELLIPSIS


def _short_model(model: str) -> str:
    """``@cf/meta/llama-3.3-70b-instruct-fp8-fast`` -> ``llama-3.3-70b-instruct-fp8-fast``."""
    return model.rsplit("/", 1)[-1] or model


def header_parts(user: str, mode: str, model: str | None, width: int) -> list[str]:
    """The header's words for a line ``width`` cells wide: ``[brand, user, mode, model]`` as fits.

    The whole line when it fits; else the model without its ``@cf/vendor/`` prefix, then cut with
    an ellipsis; then the model is left out (with its separator), then the mode is cut, then the
    brand goes; the user is always there (cut only when nothing else is left). No separator is
    ever left without a word after it.
    """
    brand, user, mode = "edgechat", sanitize(user), sanitize(mode)
    model = sanitize(model) if model else ""

    def length(words: list[str]) -> int:
        return sum(cell_len(word) for word in words) + cell_len(SEPARATOR) * (len(words) - 1)

    head = [brand, user, mode]
    if model:
        for candidate in (model, _short_model(model)):
            if length([*head, candidate]) <= width:
                return [*head, candidate]
        room = width - length(head) - cell_len(SEPARATOR)
        if room >= MIN_MODEL_CELLS:
            return [*head, _shorten(_short_model(model), room)]
    if length(head) <= width:
        return head
    room = width - length([brand, user]) - cell_len(SEPARATOR)
    if mode and room >= MIN_MODEL_CELLS:
        return [brand, user, _shorten(mode, room)]
    if length([brand, user]) <= width:
        return [brand, user]
    return [_shorten(user, width)]


class ChatHeader(Static):
    """``edgechat │ alice │ local │ @cf/meta/llama-3.3-70b-instruct-fp8-fast``, fitted to its width.

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
        #: The open conversation's title (the conversation library), None without one.
        self.title: str | None = None
        self.title_shown: str | None = None

    def set_title(self, title: str | None) -> None:
        """Show the open conversation's title (untrusted: sanitised, one line), or none."""
        title = " ".join(sanitize(title).split()) if title else None
        long = title is not None and len(title) > TITLE_WIDTH
        self.title_shown = title[:TITLE_WIDTH - 1] + "…" if long and title else title
        if title != self.title:
            self.title = title or None
            self.refresh()

    def show(self, *, user: str, mode: str, model: str | None) -> None:
        """Show another user, mode or model (after /user, /model, or once the agent is known)."""
        self.user, self.mode, self.model = user, mode, model
        self.refresh()

    @property
    def plain(self) -> str:
        """The line as shown at the widget's current width."""
        return self._content().plain

    def render(self) -> Content:
        return self._content()

    def _content(self) -> Content:
        width = self.content_size.width or 1000
        words, title = self._fitted(width)
        styles = ["bold $accent", "bold", "", "$text-secondary"][:len(words)]
        if len(words) == 1:  # only the user is left
            styles = ["bold"]
        pieces = list(zip(words, styles, strict=True))
        if title:  # after the brand: the conversation's title
            pieces.insert(1, (title, "bold $text-accent"))
        parts: list[str | tuple[str, str]] = []
        for index, (word, style) in enumerate(pieces):
            if index:
                parts.append((SEPARATOR, "$text-muted"))
            parts.append((word, style))
        return Content.assemble(*parts)

    def _fitted(self, width: int) -> tuple[list[str], str | None]:
        """The header's words and the title as fit ``width``: the title goes before the model does,
        and is cut (or left out) only when the brand, the user and the mode leave no room for it."""
        words = header_parts(self.user, self.mode, self.model, width)
        title = self.title_shown
        if not title:
            return words, None
        separator = cell_len(SEPARATOR)
        with_title = header_parts(self.user, self.mode, self.model, width - cell_len(title) - separator)
        if len(with_title) >= 3 and with_title[0] == "edgechat":
            return with_title, title
        fixed = header_parts(self.user, self.mode, None, width)
        room = width - sum(cell_len(word) for word in fixed) - separator * len(fixed)
        if room >= MIN_MODEL_CELLS and fixed[0] == "edgechat":
            return fixed, _shorten(title, room)
        return words, None
