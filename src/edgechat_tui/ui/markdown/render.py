"""Rendering one Markdown block to terminal lines at a given width.

The renderer works from markdown-it tokens and builds Textual ``Content`` with styles that were
resolved beforehand (a :class:`~edgechat_tui.ui.markdown.style.Palette`), so rendering is plain
data work: no markup parser ever sees the text, and nothing in the output is clickable (links are
shown as text, with their URL). A block is rendered once when it becomes final and its lines are
kept. A line is a plain list of Rich Segments, not a Textual ``Strip``: a Strip allocates seven
small caches, which for every line of every reply in a long chat adds up to megabytes and to work
for each full garbage collection. The widget makes a Strip only for a line it draws.
"""

from __future__ import annotations

from collections.abc import Sequence

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode
from pygments.lexer import Lexer
from rich.cells import cell_len
from rich.segment import Segment
from textual.content import Content
from textual.style import Style

from edgechat_tui.ui.markdown import lexers
from edgechat_tui.ui.markdown.inline import (
    content_line,
    content_lines,
    fence_language,
    highlight,
    inline_content,
)
from edgechat_tui.ui.markdown.lexers import TAB_SIZE
from edgechat_tui.ui.markdown.selection import CODE_LABEL, CODE_TOP, PAD, mark
from edgechat_tui.ui.markdown.style import BULLETS, CODE_PAD, QUOTE_BAR, Line, Palette
from edgechat_tui.ui.markdown.table import render_table

__all__ = ["BlockRenderer"]


def _break_cycles(tree: SyntaxTreeNode) -> None:
    """Unlink a syntax tree (children point to parents): freed at once, not left to the cyclic GC,
    whose full collections over a huge reply's nodes made rendering it superlinear."""
    stack = [tree]
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        node.parent = None
        node.children = []


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
            return lexers.load(language)
        if not lexers.is_loaded(language):
            self.missing_lexers.add(lexers.normalise(language))
        return lexers.cached(language)

    def render_source(self, source: str) -> list[Line]:
        """Render the top-level block(s) in ``source``."""
        tree = SyntaxTreeNode(self.parser.parse(source))
        try:
            return self.render_nodes(tree.children, self.width, self.palette.base)
        finally:
            _break_cycles(tree)

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
        """The first line of a code panel: blank, with the language at its right.

        All of it is decoration (not copied); the label is marked so that a click on it is known.
        """
        line = self._panel_line([], width, (self.palette.base + self.palette.code_block).rich_style, language)
        label = len(line) - 2 if language and len(line) == 3 else -1
        return [Segment(segment.text, mark(segment.style, CODE_LABEL if index == label else CODE_TOP))
                for index, segment in enumerate(line)]

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
        pad = Segment(" " * CODE_PAD, mark(panel_style, PAD))  # decoration: not copied
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
        return render_table(node, width, base, self.palette)
