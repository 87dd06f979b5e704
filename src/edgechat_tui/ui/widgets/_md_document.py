"""The rendered lines of a reply: final blocks rendered once and kept, plus the open tail.

This is the bookkeeping behind ``ReplyMarkdown``, kept free of widget concerns so it can be
reasoned about (and tested) alone: which blocks are rendered, where each one's lines start, what
changed since the last render, and which blocks wait for a code lexer to be coloured.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from markdown_it import MarkdownIt
from textual.strip import Strip

from edgechat_tui.ui.widgets._md_render import BlockRenderer, Palette

_BLANK = Strip([])


@dataclass
class _Block:
    source: str
    lines: list[Strip] = field(default_factory=list)
    missing_lexers: frozenset[str] = frozenset()


class RenderedDocument:
    """Lines of final blocks (a blank line between blocks) followed by the open tail's lines."""

    def __init__(self, parser: MarkdownIt) -> None:
        self._parser = parser
        self._blocks: list[_Block] = []
        self._rendered = 0  # blocks[:rendered] have lines at the current width and palette
        self._lines: list[Strip] = []
        self._starts: list[int] = []  # first line of each rendered block in _lines
        self._tail = ""
        self._tail_lines: list[Strip] = []
        self._tail_missing: frozenset[str] = frozenset()
        self._tail_dirty = False
        self.width = 0
        self.palette: Palette | None = None

    # -- input ----------------------------------------------------------------------------------

    def add_final(self, sources: list[str]) -> None:
        """Blocks that will not change any more, in order."""
        self._blocks.extend(_Block(source) for source in sources)

    def set_tail(self, text: str) -> None:
        """The open last part of the text (may be empty)."""
        if text != self._tail:
            self._tail = text
            self._tail_dirty = True

    def reset(self, width: int, palette: Palette) -> None:
        """New width or palette: every block is rendered again on the next ``render``."""
        self.width = width
        self.palette = palette
        self._rendered = 0
        self._lines = []
        self._starts = []
        self._tail_dirty = True

    # -- output ---------------------------------------------------------------------------------

    @property
    def height(self) -> int:
        return len(self._lines) + self._tail_offset() + len(self._tail_lines)

    @property
    def final_height(self) -> int:
        """Lines of the final blocks: these never change until the width or palette does."""
        return len(self._lines)

    def line(self, y: int) -> Strip:
        """Line ``y`` (blank past the end)."""
        if y < len(self._lines):
            return self._lines[y]
        index = y - len(self._lines) - self._tail_offset()
        if 0 <= index < len(self._tail_lines):
            return self._tail_lines[index]
        return _BLANK

    def lines(self) -> list[Strip]:
        """All lines, for tests and tools."""
        return [self.line(y) for y in range(self.height)]

    @property
    def missing_lexers(self) -> set[str]:
        """Languages whose code is shown uncoloured until their lexer is loaded."""
        missing = set(self._tail_missing)
        for block in self._blocks[: self._rendered]:
            missing |= block.missing_lexers
        return missing

    def _tail_offset(self) -> int:
        """1 when a blank line parts the tail from the final blocks above it."""
        return 1 if self._tail_lines and self._lines else 0

    def render(self) -> int:
        """Render what is new (blocks, a changed tail); the first line that may have changed."""
        if self.palette is None or not self.width:
            return 0
        first_changed = len(self._lines)
        renderer = BlockRenderer(self._parser, self.palette, self.width)
        for block in self._blocks[self._rendered :]:
            renderer.missing_lexers = set()
            block.lines = renderer.render_source(block.source)
            block.missing_lexers = frozenset(renderer.missing_lexers)
            self._append_lines(block)
        self._rendered = len(self._blocks)
        if self._tail_dirty or first_changed != len(self._lines):
            self._render_tail(renderer)
        return first_changed

    def _append_lines(self, block: _Block) -> None:
        if not block.lines:
            self._starts.append(len(self._lines))
            return
        if self._lines:
            self._lines.append(_BLANK)
        self._starts.append(len(self._lines))
        self._lines.extend(block.lines)

    def _render_tail(self, renderer: BlockRenderer) -> None:
        self._tail_dirty = False
        if not self._tail.strip():
            self._tail_lines = []
            self._tail_missing = frozenset()
            return
        renderer.missing_lexers = set()
        self._tail_lines = renderer.render_source(self._tail)
        self._tail_missing = frozenset(renderer.missing_lexers)

    def relex(self, language: str) -> int | None:
        """Re-render what waited for ``language``'s lexer, now loaded; the first changed line.

        None if nothing was waiting. Colours do not change line counts, but if they did the
        lines are rebuilt from the blocks, so the result stays right either way.
        """
        if self.palette is None or not self.width:
            return None
        renderer = BlockRenderer(self._parser, self.palette, self.width)
        first: int | None = None
        rebuild = False
        for index, block in enumerate(self._blocks[: self._rendered]):
            if language not in block.missing_lexers:
                continue
            renderer.missing_lexers = set()
            lines = renderer.render_source(block.source)
            block.missing_lexers = frozenset(renderer.missing_lexers)
            start = self._starts[index]
            first = start if first is None else min(first, start)
            if len(lines) == len(block.lines) and not rebuild:
                self._lines[start : start + len(lines)] = lines
            else:
                rebuild = True
            block.lines = lines
        if rebuild:
            self._rebuild_lines()
        if language in self._tail_missing:
            self._render_tail(renderer)
            first = len(self._lines) if first is None else first
        return first

    def _rebuild_lines(self) -> None:
        self._lines = []
        self._starts = []
        for block in self._blocks[: self._rendered]:
            self._append_lines(block)
