"""A reply of the early view drawn from the render cache: no Markdown renderer before the first frame.

It takes the place of a ``ReplyMarkdown`` in a reply of the first frame and draws the lines the
render cache (:mod:`edgechat_tui.ui.render_cache`) kept, when they are for its width and for the
styles it resolves now (the theme, the colour mode, the CSS); otherwise it renders the text itself
(loading the renderer then, as before the cache). Once the renderer has loaded after the first
frame, the reply puts a ``ReplyMarkdown`` in its place (:meth:`AssistantMessage.upgrade`), which
draws the same lines and does the rest (selection, code blocks, a new width or theme).
"""

from __future__ import annotations

from typing import ClassVar

from textual.geometry import Size
from textual.strip import Strip
from textual.widget import Widget

from edgechat_tui.ui.render_cache import DrawnReply
from edgechat_tui.ui.widgets.reply_css import REPLY_COMPONENT_CLASSES, reply_css

__all__ = ["EarlyReply", "styles_key"]

_KEYS: dict[tuple[object, ...], str] = {}
_KEYS_KEPT = 16


def styles_key(widget: Widget) -> str:
    """Everything a reply's look takes from its styles, resolved for ``widget`` (a reply widget,
    mounted): its own style, each component class's, the colour mode, a dark or light theme."""
    app = widget.app
    base = widget.visual_style
    nodes = tuple((type(node).__name__, frozenset(node.classes), frozenset(node.get_pseudo_classes()))
                  for node in widget.ancestors_with_self)
    memo = (id(app.stylesheet.rules), app.theme, app.native_ansi_color, base, nodes)
    found = _KEYS.get(memo)
    if found is None:
        components = sorted(REPLY_COMPONENT_CLASSES)
        parts = [repr(base), *(f"{name}={widget.get_visual_style(name)!r}" for name in components),
                 f"ansi={app.native_ansi_color}", f"dark={app.current_theme.dark}"]
        found = "\n".join(parts)
        if len(_KEYS) >= _KEYS_KEPT:
            _KEYS.pop(next(iter(_KEYS)))
        _KEYS[memo] = found
    return found


class EarlyReply(Widget):
    """A finished reply's body drawn from ``drawn`` (its cached lines), or rendered if they do not fit."""

    DEFAULT_CSS = reply_css("EarlyReply")
    COMPONENT_CLASSES: ClassVar[set[str]] = REPLY_COMPONENT_CLASSES

    def __init__(self, drawn: DrawnReply) -> None:
        super().__init__()
        self._drawn = drawn
        self._styles_fit: bool | None = None
        self._rendered: dict[int, list[Strip]] = {}
        #: How many times the cached lines did not fit and the text was rendered (for tests).
        self.fallbacks = 0

    @property
    def markdown(self) -> str:
        """The reply's text, sanitised (as ``ReplyMarkdown.markdown``)."""
        return self._drawn.text

    @property
    def final(self) -> bool:
        return True

    def notify_style_update(self) -> None:
        self._styles_fit = None
        self._rendered.clear()
        super().notify_style_update()

    def _lines(self, width: int) -> list[Strip]:
        if self._styles_fit is None:
            self._styles_fit = styles_key(self) == self._drawn.styles
        if self._styles_fit and width in self._drawn.lines:
            return self._drawn.lines[width]
        lines = self._rendered.get(width)
        if lines is None:
            from edgechat_tui.ui.widgets.reply_render import render_strips  # only when the cache does not fit

            lines = self._rendered[width] = render_strips(self.markdown, width, self)
            self.fallbacks += 1
        return lines

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return container.width

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self._lines(max(width, 1)))

    def render_line(self, y: int) -> Strip:
        width = self.content_size.width
        if width <= 0:
            return Strip([])
        lines = self._lines(width)
        return lines[y] if y < len(lines) else Strip.blank(width)
