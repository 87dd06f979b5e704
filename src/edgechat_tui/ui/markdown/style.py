"""The shared vocabulary of the reply renderer: a rendered line, the resolved styles (the palette),
and the marks and paddings every block kind uses.

The styles are resolved once by the widget from its CSS and theme, so rendering does no style parsing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pygments.token import _TokenType
from rich.segment import Segment
from textual.style import Style

__all__ = [
    "BULLETS", "CODE_PAD", "EMPHASIS", "QUOTE_BAR", "STRIKE", "STRONG", "Line", "Palette",
    "resolve_code_theme",
]

Line = list[Segment]
"""One rendered line: Segments laid left to right, at most the render width in cells."""

BULLETS = ("• ", "◦ ", "▪ ", "‣ ")
QUOTE_BAR = "▌ "
CODE_PAD = 1  # columns of background either side of code


@dataclass(frozen=True)
class Palette:
    """Resolved styles for every part of a reply; built by the widget from its CSS and theme."""

    base: Style
    headings: tuple[Style, Style, Style, Style, Style, Style]
    code_inline: Style
    code_block: Style
    code_label: Style
    link: Style
    link_url: Style
    quote: Style
    quote_bar: Style
    bullet: Style
    rule: Style
    table_border: Style
    table_header: Style
    code_tokens: Mapping[_TokenType, Style]

    @property
    def blank(self) -> Segment:
        """The style of empty space, so that padding shows the widget's background."""
        return Segment(" ", self.base.rich_style)


EMPHASIS = Style(italic=True)
STRONG = Style(bold=True)
STRIKE = Style(strike=True)


def resolve_code_theme(
    styles: Mapping[_TokenType, str], parse_style: Callable[[str], Style]
) -> dict[_TokenType, Style]:
    """Resolve a Pygments token → style-string theme once, so highlighting does no parsing."""
    resolved: dict[_TokenType, Style] = {}
    for token_type, text in styles.items():
        if not text:
            continue
        try:
            resolved[token_type] = parse_style(text)
        except Exception:  # a theme entry this app cannot resolve is shown unstyled
            continue
    return resolved


