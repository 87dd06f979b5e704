"""Rendering one Markdown block to terminal lines at a given width.

The renderer works from markdown-it tokens and builds Textual ``Content`` with styles that were
resolved beforehand (a :class:`Palette`), so rendering is plain data work: no markup parser ever
sees the text, and nothing in the output is clickable (links are shown as text, with their URL).
A block is rendered once when it becomes final and its lines are kept. A line is a plain list of
Rich Segments, not a Textual ``Strip``: a Strip allocates seven small caches, which for every line
of every reply in a long chat adds up to megabytes and to work for each full garbage collection.
The widget makes a Strip only for a line it draws.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from markdown_it import MarkdownIt
from markdown_it.token import Token
from markdown_it.tree import SyntaxTreeNode
from pygments.lexer import Lexer
from pygments.token import _TokenType
from rich.cells import cell_len
from rich.segment import Segment
from textual.content import Content, Span
from textual.style import Style

from edgechat_tui.ui.widgets import _md_lexers
from edgechat_tui.ui.widgets._md_lexers import TAB_SIZE

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


def default_palette(parse_style: Callable[[str], Style] = Style.parse) -> Palette:
    """A palette from plain colour names, for use without an app (tests of the renderer)."""
    from textual.highlight import HighlightTheme

    plain = Style.parse
    return Palette(
        base=Style(),
        headings=(
            plain("bold"),
            plain("bold underline"),
            plain("bold"),
            plain("italic"),
            plain("italic"),
            plain("dim"),
        ),
        code_inline=plain("reverse"),
        code_block=Style(),
        code_label=plain("dim"),
        link=plain("underline"),
        link_url=plain("dim"),
        quote=plain("italic"),
        quote_bar=plain("dim"),
        bullet=plain("bold"),
        rule=plain("dim"),
        table_border=plain("dim"),
        table_header=plain("bold"),
        code_tokens=resolve_code_theme(HighlightTheme.STYLES, parse_style),
    )


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
    links: list[tuple[int, str]] = []
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
            links.append((builder.length, str(token.attrs.get("href", ""))))
        elif kind == "link_close" and links:
            start, href = links.pop()
            label = "".join(builder.parts)[start:]
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


class BlockRenderer:
    """Renders Markdown block sources to lines for one width and palette."""

    def __init__(
        self, parser: MarkdownIt, palette: Palette, width: int, *, wait_for_lexers: bool = False
    ) -> None:
        self.parser = parser
        self.palette = palette
        self.width = max(width, 1)
        self._blank_style = palette.base.rich_style
        self.wait_for_lexers = wait_for_lexers
        self.missing_lexers: set[str] = set()
        """Languages of code shown uncoloured because their lexer was not loaded yet."""

    def _lexer(self, language: str) -> Lexer | None:
        if self.wait_for_lexers:
            return _md_lexers.load(language)
        if not _md_lexers.is_loaded(language):
            self.missing_lexers.add(_md_lexers.normalise(language))
        return _md_lexers.cached(language)

    def render_source(self, source: str) -> list[Line]:
        """Render the top-level block(s) in ``source``."""
        tokens = self.parser.parse(source)
        return self.render_nodes(SyntaxTreeNode(tokens).children, self.width, self.palette.base)

    # -- containers ---------------------------------------------------------------------------

    def render_nodes(
        self, nodes: Sequence[SyntaxTreeNode], width: int, base: Style, *, tight: bool = False
    ) -> list[Line]:
        """Blocks one after another, a blank line between them unless the list is tight."""
        lines: list[Line] = []
        for node in nodes:
            block = self.render_node(node, width, base, tight=tight)
            if not block:
                continue
            if lines and not tight:
                lines.append([])
            lines.extend(block)
        return lines

    def render_node(
        self, node: SyntaxTreeNode, width: int, base: Style, *, tight: bool = False
    ) -> list[Line]:
        kind = node.type
        if kind == "paragraph":
            return self._inline_strips(node, width, base)
        if kind == "heading":
            level = min(max(int(node.tag[1:]), 1), 6)
            return self._inline_strips(node, width, base + self.palette.headings[level - 1])
        if kind in ("fence", "code_block"):
            return self._code(node, width)
        if kind in ("bullet_list", "ordered_list"):
            return self._list(node, width, base)
        if kind == "blockquote":
            return self._quote(node, width, base)
        if kind == "table":
            return self._table(node, width, base)
        if kind == "hr":
            return [[Segment("─" * width, (base + self.palette.rule).rich_style)]]
        if node.children:
            return self.render_nodes(node.children, width, base, tight=tight)
        return content_lines(Content(node.content), width, base)

    def _inline_strips(self, node: SyntaxTreeNode, width: int, base: Style) -> list[Line]:
        inline = node.children[0] if node.children else None
        tokens = inline.token.children if inline is not None and inline.token is not None else None
        return content_lines(inline_content(tokens or [], self.palette), width, base)

    def _list(self, node: SyntaxTreeNode, width: int, base: Style) -> list[Line]:
        depth = 0
        parent = node.parent
        while parent is not None:
            depth += parent.type in ("bullet_list", "ordered_list")
            parent = parent.parent
        items = node.children
        tight = all(child.hidden for item in items for child in item.children if child.type == "paragraph")
        if node.type == "ordered_list":
            first = int(str(node.attrs.get("start", 1)))
            delimiter = node.markup or "."
            numbers = [f"{first + index}{delimiter} " for index in range(len(items))]
            marker_width = max(cell_len(number) for number in numbers)
            markers = [number.rjust(marker_width) for number in numbers]
        else:
            bullet = BULLETS[depth % len(BULLETS)]
            marker_width = cell_len(bullet)
            markers = [bullet] * len(items)
        inner_width = max(width - marker_width, 1)
        marker_style = (base + self.palette.bullet).rich_style
        indent = Segment(" " * marker_width, self._blank_style)
        lines: list[Line] = []
        for marker, item in zip(markers, items, strict=True):
            body = self.render_nodes(item.children, inner_width, base, tight=tight) or [[]]
            if lines and not tight:
                lines.append([])
            lines.append([Segment(marker, marker_style), *body[0]])
            lines.extend([indent, *line] for line in body[1:])
        return lines

    def _quote(self, node: SyntaxTreeNode, width: int, base: Style) -> list[Line]:
        inner_base = base + self.palette.quote
        body = self.render_nodes(node.children, max(width - cell_len(QUOTE_BAR), 1), inner_base)
        bar = Segment(QUOTE_BAR, (base + self.palette.quote_bar).rich_style)
        return [[bar, *line] for line in body or [[]]]

    def _code(self, node: SyntaxTreeNode, width: int) -> list[Line]:
        """A code block: syntax colours on a background panel, long lines folded, not cut."""
        language = fence_language(node.info)
        code = node.content[:-1] if node.content.endswith("\n") else node.content
        return [
            self.code_top(language, width),
            *self.code_lines(code, language, width),
            self.code_bottom(width),
        ]

    def code_top(self, language: str, width: int) -> Line:
        """The first line of a code panel: blank, with the language at its right."""
        return self._panel_line([], width, (self.palette.base + self.palette.code_block).rich_style, language)

    def code_bottom(self, width: int) -> Line:
        """The last line of a code panel."""
        return self._panel_line([], width, (self.palette.base + self.palette.code_block).rich_style)

    def code_lines(self, code: str, language: str, width: int) -> list[Line]:
        """The lines of code inside a panel, coloured if the language's lexer is loaded."""
        palette = self.palette
        panel = palette.base + palette.code_block
        panel_style = panel.rich_style
        lexer = self._lexer(language) if language else None
        content = highlight(code, lexer, palette.code_tokens) if lexer is not None else Content(code)
        inner = max(width - 2 * CODE_PAD, 1)
        pad = Segment(" " * CODE_PAD, panel_style)
        lines = []
        for line in content.split("\n", allow_blank=True):
            line = line.expand_tabs(TAB_SIZE)
            for part in line.fold(inner) if line.cell_length > inner else [line]:
                segments = [pad, *content_line(part, panel)]
                lines.append(self._panel_line(segments, width, panel_style))
        return lines

    def _panel_line(self, segments: Line, width: int, style: object, label: str = "") -> Line:
        """A full-width line of the code panel, optionally with the language at its right."""
        used = sum(cell_len(segment.text) for segment in segments)
        if label and cell_len(label) + 2 <= width - used:
            label_style = self.palette.base + self.palette.code_block + self.palette.code_label
            fill = width - used - cell_len(label) - CODE_PAD
            segments = [
                *segments,
                Segment(" " * fill, style),  # type: ignore[arg-type]
                Segment(label, label_style.rich_style),
                Segment(" " * CODE_PAD, style),  # type: ignore[arg-type]
            ]
        elif used < width:
            segments = [*segments, Segment(" " * (width - used), style)]  # type: ignore[arg-type]
        return segments

    def _table(self, node: SyntaxTreeNode, width: int, base: Style) -> list[Line]:
        from edgechat_tui.ui.widgets._md_table import render_table

        return render_table(node, width, base, self.palette)
