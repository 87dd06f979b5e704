"""One step of a long reply's rendering, done off the event loop.

A reply whose open last block is long (a 640 KB list, a 2 MB paragraph) costs seconds to parse and
render; done on the event loop, that froze the app (Esc took seconds to act) and, repeated as the
block grew, made the whole reply cost time quadratic in its size. Such steps run in a thread
instead: the step owns the block splitter while it runs (the widget holds new text back until it
ends) and returns lines that the widget installs into its document on the loop. Nothing here
touches a widget or the document.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass

from markdown_it import MarkdownIt

from edgechat_tui.ui.markdown.blocks import BlockSplitter
from edgechat_tui.ui.markdown.render import BlockRenderer
from edgechat_tui.ui.markdown.style import Line, Palette

__all__ = ["OFFLOAD_CHARS", "RenderedStep", "render_step"]

#: An open block at least this long is rendered in a thread (a few ms of work below it).
OFFLOAD_CHARS = 16_000


@dataclass
class RenderedStep:
    """What a step rendered, for ``width`` and ``palette``: new final blocks and the open tail."""

    blocks: list[tuple[str, list[Line], frozenset[str]]]
    tail: str
    tail_lines: list[Line]
    tail_missing: frozenset[str]
    width: int
    palette: Palette


def render_step(splitter: BlockSplitter, parser: MarkdownIt, text: str, *, close: bool, width: int,
                palette: Palette) -> RenderedStep:
    """Feed ``text`` to ``splitter``, take what became final (all of it if ``close``), render it.

    Blocking, and safe in a worker thread as long as no one else uses ``splitter`` or ``parser``
    meanwhile. The open tail is rendered whole, so its cost is linear in its length.
    """
    # No cyclic collection while a step allocates: a full one scans every line of the reply with
    # the interpreter held, stalling the event loop. The step's own garbage is acyclic (see
    # render._break_cycles) and is freed as it goes; collections resume when the step ends.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _render_step(splitter, parser, text, close=close, width=width, palette=palette)
    finally:
        if was_enabled:
            gc.enable()


def _render_step(splitter: BlockSplitter, parser: MarkdownIt, text: str, *, close: bool, width: int,
                 palette: Palette) -> RenderedStep:
    if text:
        splitter.feed(text)
    sources = splitter.close() if close else splitter.take_final()
    tail = "" if close else splitter.tail
    # In a thread, a code block's lexer can be loaded here: the block is coloured as it is shown.
    renderer = BlockRenderer(parser, palette, width, wait_for_lexers=True)
    blocks = []
    for source in sources:
        renderer.missing_lexers = set()
        blocks.append((source, renderer.render_source(source), frozenset(renderer.missing_lexers)))
    renderer.missing_lexers = set()
    tail_lines = renderer.render_source(tail) if tail.strip() else []
    return RenderedStep(blocks, tail, tail_lines, frozenset(renderer.missing_lexers), width, palette)
