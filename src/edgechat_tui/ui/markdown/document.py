"""The rendered lines of a reply: final blocks rendered once and kept, plus the open tail.

This is the bookkeeping behind ``ReplyMarkdown``, kept free of widget concerns so it can be
reasoned about (and tested) alone: which blocks are rendered, where each one's lines start, what
changed since the last render, and which blocks wait for a code lexer to be coloured.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from markdown_it import MarkdownIt
from textual.strip import Strip

from edgechat_tui.ui.markdown.background import OFFLOAD_CHARS, RenderedStep
from edgechat_tui.ui.markdown.blocks import block_parser
from edgechat_tui.ui.markdown.inline import fence_language
from edgechat_tui.ui.markdown.render import BlockRenderer
from edgechat_tui.ui.markdown.style import Line, Palette

__all__ = ["FENCE_PIECE", "LONG_TAIL", "RenderedDocument"]

_BLANK: Line = []
# An open code block in the tail is rendered in pieces of this many lines, each kept once its
# lines are complete, so a long script streaming in costs a frame only its last piece.
FENCE_PIECE = 32
# Tails shorter than this are simply rendered whole: looking for an open code block costs more.
LONG_TAIL = 2000


@dataclass
class _Block:
    source: str
    lines: list[Line] = field(default_factory=list)
    missing_lexers: frozenset[str] = frozenset()


class RenderedDocument:
    """Lines of final blocks (a blank line between blocks) followed by the open tail's lines."""

    def __init__(self, parser: MarkdownIt) -> None:
        self._parser = parser
        self._blocks: list[_Block] = []
        self._rendered = 0  # blocks[:rendered] have lines at the current width and palette
        self._lines: list[Line] = []
        self._starts: list[int] = []  # first line of each rendered block in _lines
        self._tail = ""
        self._tail_lines: list[Line] = []
        self._tail_missing: frozenset[str] = frozenset()
        self._tail_dirty = False
        # Pieces of the tail's open code block already rendered: (code text, its lines).
        self._fence_pieces: list[tuple[str, list[Line]]] = []
        self._fence_language = ""
        self._block_parser = block_parser()
        self.width = 0
        self.palette: Palette | None = None
        #: The tail's lines are from an earlier width or palette, or text: a background step is due.
        self.tail_stale = False

    # -- input ----------------------------------------------------------------------------------

    def add_final(self, sources: list[str]) -> None:
        """Blocks that will not change any more, in order."""
        self._blocks.extend(_Block(source) for source in sources)

    def set_tail(self, text: str) -> None:
        """The open last part of the text (may be empty)."""
        if text != self._tail:
            self._tail = text
            self._tail_dirty = True

    def install(self, step: RenderedStep) -> int:
        """Take what a background step rendered; the first line that may have changed.

        Lines rendered for another width or palette (the window was resized meanwhile) are not
        used: their blocks are kept as sources, to be rendered for the current one.
        """
        first_changed = len(self._lines)
        current = step.width == self.width and step.palette == self.palette
        if not current or self._rendered != len(self._blocks):
            self.add_final([source for source, _, _ in step.blocks])
            self.set_tail(step.tail)
            return 0
        for source, lines, missing in step.blocks:
            block = _Block(source, lines, missing)
            self._blocks.append(block)
            self._append_lines(block)
        self._rendered = len(self._blocks)
        self._tail = step.tail
        self._tail_lines = step.tail_lines
        self._tail_missing = step.tail_missing
        self._tail_dirty = False
        self.tail_stale = False
        self._fence_pieces = []
        return first_changed

    def reset(self, width: int, palette: Palette) -> None:
        """New width or palette: every block is rendered again on the next ``render``."""
        self.width = width
        self.palette = palette
        self._rendered = 0
        self._lines = []
        self._starts = []
        self._fence_pieces = []
        self._tail_dirty = True

    # -- output ---------------------------------------------------------------------------------

    @property
    def height(self) -> int:
        return len(self._lines) + self._tail_offset() + len(self._tail_lines)

    @property
    def final_height(self) -> int:
        """Lines of the final blocks: these never change until the width or palette does."""
        return len(self._lines)

    def line(self, y: int) -> Line:
        """Line ``y`` (blank past the end); do not modify it."""
        if y < len(self._lines):
            return self._lines[y]
        index = y - len(self._lines) - self._tail_offset()
        if 0 <= index < len(self._tail_lines):
            return self._tail_lines[index]
        return _BLANK

    def lines(self) -> list[Strip]:
        """All lines as Strips, for tests and tools."""
        return [Strip(self.line(y)) for y in range(self.height)]

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

    def render(self, *, defer_long_tail: bool = False) -> int:
        """Render what is new (blocks, a changed tail); the first line that may have changed.

        With ``defer_long_tail``, a tail of :data:`OFFLOAD_CHARS` or more is not rendered here (it
        would hold the event loop): its last lines stay, and :attr:`tail_stale` says a background
        step should render it.
        """
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
            if defer_long_tail and len(self._tail) >= OFFLOAD_CHARS:
                self.tail_stale = True
            else:
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
        self.tail_stale = False
        if not self._tail.strip():
            self._tail_lines = []
            self._tail_missing = frozenset()
            self._fence_pieces = []
            return
        renderer.missing_lexers = set()
        fence = self._open_fence() if len(self._tail) >= LONG_TAIL else None
        if fence is None:
            self._fence_pieces = []
            self._tail_lines = renderer.render_source(self._tail)
        else:
            head, info, code = fence
            lines = renderer.render_source(head) if head.strip() else []
            if lines:
                lines.append(_BLANK)
            lines.extend(self._render_fence(renderer, fence_language(info), code))
            self._tail_lines = lines
        self._tail_missing = frozenset(renderer.missing_lexers)

    def _open_fence(self) -> tuple[str, str, str] | None:
        """(text before it, info, code) if the tail ends in a code fence, else None."""
        tokens = [t for t in self._block_parser.parse(self._tail) if t.level == 0 and t.map is not None]
        if not tokens or tokens[-1].type != "fence":
            return None
        last = tokens[-1]
        assert last.map is not None
        lines = self._tail.splitlines(keepends=True)
        head = "".join(lines[: last.map[0]])
        code = last.content[:-1] if last.content.endswith("\n") else last.content
        return head, last.info, code

    def _render_fence(self, renderer: BlockRenderer, language: str, code: str) -> list[Line]:
        """An open code block's panel, reusing the pieces whose lines are all complete.

        Each piece is coloured on its own, so a string or comment spanning two pieces may look
        wrong while the block streams in; the block is rendered whole once it is final.
        """
        if language != self._fence_language:
            self._fence_language = language
            self._fence_pieces = []
        lines = code.split("\n")
        out = [renderer.code_top(language, self.width)]
        start = 0
        index = 0
        # A piece is reusable once a line after it exists: then all its lines are complete.
        while start + FENCE_PIECE < len(lines):
            text = "\n".join(lines[start : start + FENCE_PIECE])
            if index < len(self._fence_pieces) and self._fence_pieces[index][0] == text:
                piece = self._fence_pieces[index][1]
            else:
                del self._fence_pieces[index:]
                piece = renderer.code_lines(text, language, self.width)
                self._fence_pieces.append((text, piece))
            out.extend(piece)
            start += FENCE_PIECE
            index += 1
        del self._fence_pieces[index:]
        out.extend(renderer.code_lines("\n".join(lines[start:]), language, self.width))
        out.append(renderer.code_bottom(self.width))
        return out

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
        if language in self._tail_missing and len(self._tail) < OFFLOAD_CHARS:
            # (a long tail is rendered again by the next background step, with the lexer loaded)
            self._fence_pieces = []  # rendered without colours: render them again
            self._render_tail(renderer)
            first = len(self._lines) if first is None else first
        return first

    def _rebuild_lines(self) -> None:
        self._lines = []
        self._starts = []
        for block in self._blocks[: self._rendered]:
            self._append_lines(block)
