"""Inline Markdown (emphasis, code, links, breaks) as styled ``Content``, and Content as lines.

Links are not clickable: their text is styled and their URL follows in brackets when it says
something the text does not. No markup parser ever sees the text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from markdown_it.token import Token
from pygments.lexer import Lexer
from pygments.token import _TokenType
from rich.segment import Segment
from textual.content import Content, Span
from textual.style import Style

from edgechat_tui.ui.markdown.style import EMPHASIS, STRIKE, STRONG, Line, Palette

__all__ = ["content_line", "content_lines", "fence_language", "highlight", "inline_content"]


def fence_language(info: str) -> str:
    """The language of a code fence: the first word of its info string ("" if none)."""
    words = info.split(maxsplit=1)
    return words[0] if words else ""


def highlight(code: str, lexer: Lexer, tokens: Mapping[_TokenType, Style]) -> Content:
    """Code as Content with syntax colours from ``tokens`` (Pygments token type → style)."""
    spans: list[Span] = []
    position = 0
    for token_type, value in lexer.get_tokens(code):
        end = position + len(value)
        kind: _TokenType | None = token_type
        while kind is not None:
            style = tokens.get(kind)
            if style is not None:
                spans.append(Span(position, end, style))
                break
            kind = kind.parent
        position = end
    # The lexer may normalise text (e.g. a trailing newline): keep the source as given.
    return Content(code, [span for span in spans if span.end <= len(code)])


class _InlineBuilder:
    """Collects text and style spans for one run of inline Markdown."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.spans: list[Span] = []
        self.length = 0

    def add(self, text: str, style: Style | None = None) -> None:
        if not text:
            return
        if style is not None:
            self.spans.append(Span(self.length, self.length + len(text), style))
        self.parts.append(text)
        self.length += len(text)

    def content(self) -> Content:
        return Content("".join(self.parts), self.spans)


def inline_content(tokens: Sequence[Token], palette: Palette) -> Content:
    """Inline Markdown (emphasis, code, links, breaks) as styled Content.

    Links are not clickable: their text is styled and their URL follows in brackets when it says
    something the text does not.
    """
    builder = _InlineBuilder()
    open_styles: list[tuple[int, Style]] = []
    links: list[tuple[int, int, str]] = []
    for token in tokens:
        kind = token.type
        if kind == "text":
            builder.add(token.content)
        elif kind == "softbreak":
            builder.add(" ")
        elif kind == "hardbreak":
            builder.add("\n")
        elif kind == "code_inline":
            builder.add(token.content, palette.code_inline)
        elif kind in ("em_open", "strong_open", "s_open"):
            style = EMPHASIS if kind == "em_open" else STRONG if kind == "strong_open" else STRIKE
            open_styles.append((builder.length, style))
        elif kind in ("em_close", "strong_close", "s_close") and open_styles:
            start, style = open_styles.pop()
            if builder.length > start:
                builder.spans.append(Span(start, builder.length, style))
        elif kind == "link_open":
            links.append((builder.length, len(builder.parts), str(token.attrs.get("href", ""))))
        elif kind == "link_close" and links:
            start, first_part, href = links.pop()
            label = "".join(builder.parts[first_part:])  # this link's text only: linear in the reply
            builder.spans.append(Span(start, builder.length, palette.link))
            if href and href not in (label, f"mailto:{label}"):
                builder.add(f" ({href})", palette.link_url)
        elif kind == "image":
            alt = token.content or "image"
            builder.add(f"[{alt}]", palette.link)
            src = str(token.attrs.get("src", ""))
            if src:
                builder.add(f" ({src})", palette.link_url)
        else:  # anything else markdown-it may produce is shown as its text
            builder.add(token.content)
    return builder.content()


def content_lines(content: Content, width: int, base: Style) -> list[Line]:
    """Word-wrap Content to ``width`` and render each line on ``base``."""
    if width <= 0:
        return []
    return [content_line(line, base) for line in content.wrap(width)] or [[]]


def content_line(line: Content, base: Style) -> Line:
    """One line of Content (no wrapping), its styles laid over ``base``."""
    return [Segment(text, style.rich_style) for text, style in line.render(base, end="") if text]


