"""Splitting a growing Markdown text into top-level blocks, of which all but the last are final.

A streamed reply only ever grows at its end, and CommonMark decides block structure line by line:
once a later top-level block has started, the blocks before it can no longer change. So a reply
can be cut into blocks that are parsed and rendered once, plus an open tail that is re-parsed as
text arrives. Re-parsing only the tail keeps the cost of a long reply linear in its length.

Two rules keep that sound:

* Only complete lines (ended by a newline) are parsed to decide what is final: a half-typed last
  line such as ``***`` may yet become ``***x`` and join the paragraph above it.
* A block is final only once the line *after* the start of the next block is complete too. With
  complete lines alone this is not needed for CommonMark or GitHub tables (a table is recognised
  from its header and delimiter rows, both complete before the split appears), but it costs only
  one line of delay and guards any construct decided by looking one line ahead.

Every block's source text is kept exactly, including the blank lines after it, so the blocks
joined back together are the whole text.
"""

from __future__ import annotations

import re
import types
from itertools import pairwise

from markdown_it import MarkdownIt
from markdown_it.parser_block import ParserBlock
from markdown_it.rules_block import StateBlock

__all__ = ["BlockSplitter", "block_parser", "block_start_lines", "new_parser"]


def new_parser() -> MarkdownIt:
    """The Markdown dialect of replies: CommonMark with GitHub tables and strikethrough.

    Raw HTML is off: a reply's ``<div>`` or ``<script>`` is shown as the text it is. Link
    reference definitions (``[x]: https://...``) are off too and show as the text they are: a
    definition may come after the link that uses it, which would make a block depend on text that
    has not arrived yet, and a hidden definition is a URL the reader never sees.
    """
    parser = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"]).disable("reference")
    parser.block.tokenize = types.MethodType(_tokenize_flattening, parser.block)  # type: ignore[method-assign]
    return parser


# Block markers at the start of a line: quote marks and bullets, with their blanks (an ordered
# list's numbers are kept: they are words the reader may need).
_LEADING_MARKERS = re.compile(r"^(?:[ \t]*(?:>|[-*+](?=[ \t]|$))[ \t]?)+")


def _flatten(text: str) -> str:
    """Lines nested deeper than the parser goes, without their block markers, one line each."""
    lines = [_LEADING_MARKERS.sub("", line).strip() for line in text.splitlines()]
    return "  \n".join(line for line in lines if line)  # hard breaks: one source line, one line


def _tokenize_flattening(self: ParserBlock, state: StateBlock, startLine: int, endLine: int) -> None:
    """markdown-it's block loop, except at its nesting limit.

    There markdown-it skips the rest of the range ("we should not care about content"): 30 nested
    quotes or a 30-deep list lost their deepest text, and a lazy paragraph after it. Here what is
    left of the range becomes one paragraph, its lines shown flat (markers dropped), so nothing the
    model wrote disappears; the limit still bounds the recursion.
    """
    rules = self.ruler.getRules("")
    line = startLine
    max_nesting = state.md.options.maxNesting
    has_empty_lines = False
    while line < endLine:
        state.line = line = state.skipEmptyLines(line)
        if line >= endLine:
            break
        if state.sCount[line] < state.blkIndent:
            break  # the end of a nested block (a quote, a list item)
        if state.level >= max_nesting:
            text = _flatten(state.getLines(line, endLine, state.blkIndent, False))
            if text:
                token = state.push("paragraph_open", "p", 1)
                token.map = [line, endLine]
                token = state.push("inline", "", 0)
                token.content = text
                token.map = [line, endLine]
                token.children = []
                state.push("paragraph_close", "p", -1)
            state.line = endLine
            break
        ok = False
        for rule in rules:
            ok = rule(state, line, endLine, False)
            if ok:
                if state.line <= line:
                    raise RuntimeError("block rule didn't increment state.line")
                break
        if not ok:
            raise RuntimeError("none of the block rules matched")
        state.tight = not has_empty_lines
        line = state.line
        if (line - 1) < endLine and state.isEmpty(line - 1):
            has_empty_lines = True
        if line < endLine and state.isEmpty(line):
            has_empty_lines = True
            line += 1
            state.line = line


def block_parser() -> MarkdownIt:
    """The same dialect, stopping after block structure (no inline parsing): enough to split."""
    return new_parser().disable("inline")


def block_start_lines(parser: MarkdownIt, text: str) -> list[int]:
    """The line numbers where the top-level blocks of ``text`` start, in order."""
    return [
        token.map[0]
        for token in parser.parse(text)
        if token.level == 0 and token.nesting >= 0 and token.map is not None
    ]


class BlockSplitter:
    """Cut a text that grows at its end into final top-level blocks and an open tail.

    ``feed`` adds text; ``take_final`` returns the blocks that became final since the last call;
    ``tail`` is the rest, still open. ``close`` ends the text: every block becomes final.
    Feeding costs nothing but a string append; the parsing happens in ``take_final``, and only
    when a line was completed since the previous call, and only over the open tail.
    """

    def __init__(self) -> None:
        self._parser = block_parser()
        self._tail = ""
        self._pending: list[str] = []
        self._pending_size = 0
        # Set when the tail gained a newline since it was last split: only then can a block end.
        self._new_line = False
        self._closed = False

    @property
    def tail(self) -> str:
        """The text after the final blocks; it may still change as text arrives."""
        self._join()
        return self._tail

    def feed(self, text: str) -> None:
        """Add text at the end (kept in pieces: joining on every token made a long block quadratic)."""
        if self._closed:
            raise RuntimeError("feed() after close()")
        if text:
            self._pending.append(text)
            self._pending_size += len(text)
            if "\n" in text:
                self._new_line = True

    @property
    def size(self) -> int:
        """Characters not yet final (the tail's length), without joining them."""
        return len(self._tail) + self._pending_size

    def _join(self) -> None:
        if self._pending:
            self._tail += "".join(self._pending)
            self._pending = []
            self._pending_size = 0

    def take_final(self) -> list[str]:
        """Blocks that became final since the previous call, as source text, in order."""
        if self._closed or not self._new_line:
            return []
        self._new_line = False
        self._join()
        complete_end = self._tail.rfind("\n") + 1
        lines = self._tail[:complete_end].splitlines(keepends=True)
        starts = block_start_lines(self._parser, self._tail[:complete_end])
        # starts[i + 1] begins the block after block i; block i is final when that block's
        # first two lines are complete (see the module docstring).
        final_count = 0
        for index in range(1, len(starts)):
            if starts[index] + 1 < len(lines):
                final_count = index
        if final_count == 0:
            return []
        return self._cut(lines, starts[: final_count + 1])

    def close(self) -> list[str]:
        """End of text: split what is left into blocks, all final, and return them."""
        if self._closed:
            return []
        self._closed = True
        self._join()
        if not self._tail:
            return []
        lines = self._tail.splitlines(keepends=True)
        starts = block_start_lines(self._parser, self._tail)
        if not starts:
            # Only blank lines: keep them as one block so the blocks still add up to the text.
            blocks, self._tail = [self._tail], ""
            return blocks
        return self._cut(lines, [*starts, len(lines)])

    def _cut(self, lines: list[str], bounds: list[int]) -> list[str]:
        """Move the blocks between consecutive ``bounds`` (line numbers) out of the tail.

        The first block also takes any lines before the first start (leading blank lines),
        so that the blocks joined are exactly the text that was fed.
        """
        bounds = [0, *bounds[1:]]
        blocks = ["".join(lines[start:end]) for start, end in pairwise(bounds)]
        consumed = sum(len(block) for block in blocks)
        self._tail = self._tail[consumed:]
        return blocks
