"""A whole reply drawn at a width, outside a ``ReplyMarkdown``: for the render cache and its fallback.

The lines are the ones ``ReplyMarkdown.render_line`` draws for the same text, width and styles
(the same sanitiser, splitter, document and line drawing), with every code lexer loaded first (as a
reply shows once its lexers have loaded). Tests hold the two equal.
"""

from __future__ import annotations

from typing import Any

from textual.strip import Strip
from textual.widget import Widget

from edgechat_tui.ui.markdown import lexers
from edgechat_tui.ui.markdown.blocks import BlockSplitter, new_parser
from edgechat_tui.ui.markdown.document import RenderedDocument
from edgechat_tui.ui.render_cache import drawn_text, encode_line
from edgechat_tui.ui.widgets.reply import drawn_line
from edgechat_tui.ui.widgets.reply_style import build_palette

__all__ = ["cache_record", "render_strips"]


def render_strips(text: str, width: int, widget: Widget) -> list[Strip]:
    """``text`` (a reply's Markdown) drawn ``width`` cells wide in the styles ``widget`` resolves."""
    width = max(width, 1)
    splitter = BlockSplitter()
    splitter.feed(drawn_text(text))
    document = RenderedDocument(new_parser())
    palette = build_palette(widget)
    document.reset(width, palette)
    document.add_final(splitter.close())
    document.set_tail("")
    document.render()
    for language in sorted(document.missing_lexers):
        if lexers.load(language) is not None:
            document.relex(language)
    return [drawn_line(document.line(y), y, width, palette.base) for y in range(document.height)]


def cache_record(text: str, widths: list[int], widget: Widget, styles: str) -> dict[str, Any]:
    """What the render cache keeps of one reply: its text, the styles and its lines at ``widths``."""
    return {"text": drawn_text(text), "styles": styles,
            "lines": {str(width): [encode_line(strip) for strip in render_strips(text, width, widget)]
                      for width in widths}}
