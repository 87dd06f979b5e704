"""A model reply shown as Markdown, streamed in as it arrives, at a cost linear in its length.

Textual's ``Markdown`` mounts a widget per block, and a long reply of a few hundred blocks takes
seconds to lay out. This widget is a single line-API widget instead:

* the text is cut into top-level blocks (:mod:`edgechat_tui.ui.markdown.blocks`); a block that
  can no longer change is rendered once, to lines of Segments, and kept; only the open last block
  is re-rendered as text arrives;
* updates are coalesced: ``append`` only stores text, and at most one render happens per frame
  interval (longer if rendering itself is slow), so a fast stream cannot flood the event loop;
* only the lines that are on screen are drawn (``render_line``); the widget's height is its line
  count, so it sits in the chat's scroll container like any ``height: auto`` widget;
* a width or theme change re-renders the kept blocks from their source.

All text is untrusted: it is sanitised here (ESC, C0/C1 controls, escape sequences split across
chunks) and never meets a markup parser. Links are shown as text with their URL; nothing clicks
but a code block's language label, which copies the block.

The widget takes part in Textual's text selection: each drawn line carries the text offsets of its
characters, a selection is drawn in the ``screen--selection`` style, and ``get_selection`` gives
the selected part of the text as drawn (:mod:`edgechat_tui.ui.markdown.selection`: decoration such
as the code panel's padding is neither highlighted nor copied).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from time import monotonic
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style as RichStyle
from textual.content import Content
from textual.events import Click
from textual.geometry import Region, Size
from textual.message import Message
from textual.selection import Selection
from textual.strip import Strip
from textual.style import Style
from textual.widget import Widget

from edgechat_tui.core.sanitize import StreamSanitizer
from edgechat_tui.ui.markdown import lexers
from edgechat_tui.ui.markdown.blocks import BlockSplitter, new_parser
from edgechat_tui.ui.markdown.code_blocks import CodeBlock
from edgechat_tui.ui.markdown.document import RenderedDocument
from edgechat_tui.ui.markdown.selection import (
    CODE_LABEL,
    MARK,
    code_top_lines,
    highlighted,
    with_offsets,
)
from edgechat_tui.ui.markdown.style import Palette
from edgechat_tui.ui.widgets.reply_background import BackgroundSteps
from edgechat_tui.ui.widgets.reply_select import ReplySelection
from edgechat_tui.ui.widgets.reply_style import REPLY_COMPONENT_CLASSES, REPLY_CSS, build_palette


async def preload_code_colours(languages: tuple[str, ...] = lexers.COMMON_LANGUAGES) -> None:
    """Load the syntax lexers of common languages in a thread, ahead of the first reply with code.

    Without this, the first code block in a language is shown uncoloured for a moment while its
    lexer loads (off the event loop, but its ~0.1 s of CPU still competes with the app). Call it
    once the first frame is up, e.g. ``self.run_worker(preload_code_colours())`` in ``on_ready``.
    """
    await asyncio.to_thread(lexers.preload, languages)


def drawn_line(segments: list[Segment], y: int, width: int, base: Style | None) -> Strip:
    """Line ``y`` of a reply as drawn ``width`` cells wide: its segments with their text offsets (for
    selection), cut to the width or filled out in the base style (``base``: the palette's)."""
    length = Segment.get_line_length(segments)
    if length < width:
        return Strip(with_offsets(segments, y, width - length, base.rich_style if base is not None else None),
                     width)
    return Strip(with_offsets(segments, y), length).crop(0, width)


class ReplyMarkdown(BackgroundSteps, ReplySelection, Widget):
    """A reply rendered as Markdown; feed it with ``append`` and end it with ``finish``.

    ``ReplyMarkdown(text)`` shows a complete reply (history); ``ReplyMarkdown(final=False)``
    starts a streamed one. Text is sanitised inside, so no caller can forget to.
    """

    DEFAULT_CSS = REPLY_CSS
    COMPONENT_CLASSES: ClassVar[set[str]] = REPLY_COMPONENT_CLASSES

    UPDATE_INTERVAL: ClassVar[float] = 1 / 20
    """Least time between two renders of a streaming reply. Each render that adds lines costs a
    layout and a repaint of the scrolled chat (~12-15 ms at 100x40 here), and a key typed during
    one waits for it: measured at 200 tokens/s, 20 renders a second kept the 95th percentile of
    key-to-screen latency near 40 ms where 30 gave ~48 ms; 20 a second still reads as smooth."""

    STREAM_HEIGHT_STEP: ClassVar[int] = 4
    """While streaming, the height grows this many lines at a time, twice as many once the reply
    is taller than the screen (see ``_height``)."""

    MAX_HOLD: ClassVar[float] = 0.25
    """Longest a streaming reply waits unrendered because of ``hold`` (a typist never freezes it)."""

    class Failed(Message):
        """Rendering this reply raised: it now shows its text plain. The screen ends a live turn."""

        def __init__(self, reply: ReplyMarkdown, error: BaseException) -> None:
            super().__init__()
            self.reply = reply
            self.error = error

    def __init__(
        self,
        text: str = "",
        *,
        final: bool = True,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._sanitizer = StreamSanitizer()
        self._splitter = BlockSplitter()
        self._document = RenderedDocument(new_parser())
        self._parts: list[str] = []
        self._text_cache: str | None = ""
        self._palette_stale = True
        self._update_pending = False
        self._next_update = 0.0
        self._held_until = 0.0
        self._last_render = 0.0
        self._loading_lexers: set[str] = set()
        self._final = False
        # A long open block is rendered in a thread (markdown/background.py): while a step runs it
        # owns the splitter, and new text waits here.
        self._held_text: list[str] = []
        self._held_size = 0
        self._step_running = False
        self._close_pending = False
        #: Background steps finished (for tests and benches).
        self.background_steps = 0
        #: Set when rendering raised: from then on the text is shown plain (``_plain_lines``).
        self.failure: BaseException | None = None
        self._plain: tuple[int, list[list[Segment]]] | None = None
        self._code_blocks: tuple[str, list[CodeBlock]] = ("", [])
        self._restyle: Callable[[RichStyle | None], RichStyle] | None = None
        self._selection: Selection | None = None
        self._add(text)
        if final:
            self.finish()

    # -- public API -----------------------------------------------------------------------------

    @property
    def markdown(self) -> str:
        """The text so far, sanitised (what is rendered)."""
        if self._text_cache is None:
            self._text_cache = "".join(self._parts)
            self._parts = [self._text_cache]
        return self._text_cache

    @property
    def final(self) -> bool:
        """True once the stream has ended (``finish`` was called)."""
        return self._final

    def append(self, text: str) -> None:
        """Add streamed text. Cheap: rendering happens at most once per frame, later."""
        if self._final:
            raise RuntimeError("append() after finish()")
        if self._add(text):
            self._schedule_update()

    def finish(self) -> None:
        """The stream ended: every block is final (an open code block is closed) and rendered."""
        if self._final:
            return
        streaming_height = self._height()
        self._final = True
        self._add(self._sanitizer.flush())
        if self.failure is None and self._offload(closing=True):
            # Long: closed and rendered by a background step, so the loop never stalls on it.
            self._close_pending = True
            self._update_pending = False
            self._schedule_update()
            return
        if self.failure is None:
            try:
                self._feed_held()
                self._document.add_final(self._splitter.close())
                self._document.set_tail("")
            except Exception as error:
                self._failed(error)
        if self.is_mounted:
            self._update()
            if self._height() != streaming_height:  # the spare lines of streaming go
                self.refresh(layout=True)

    def rendered_lines(self) -> list[Strip]:
        """All lines as last rendered (final blocks and the open tail), for tests and tools."""
        return self._document.lines()

    def hold(self, seconds: float) -> None:
        """Render nothing new for ``seconds`` (at most :attr:`MAX_HOLD` since the last render).

        Called when the user types: the frame that shows their key then carries no layout of
        the growing reply, which is what made typing lag while a reply streamed.
        """
        if not self._final:
            self._held_until = max(self._held_until, monotonic() + seconds)

    @property
    def settled(self) -> bool:
        """True when nothing is waiting to be rendered (no update due, no lexer loading)."""
        return (not self._update_pending and not self._loading_lexers and not self._step_running
                and not self._close_pending)

    @property
    def rendering_in_background(self) -> bool:
        """True while a background step renders part of this reply."""
        return self._step_running

    # -- selection and code blocks (more in reply_select.py) ---------------------------------

    def on_click(self, event: Click) -> None:
        """A click on a code block's language label copies that block."""
        if event.style.meta.get(MARK) != CODE_LABEL:
            return
        event.stop()
        y = event.y
        index = sum(1 for top in code_top_lines(self._shown_lines()) if top <= y) - 1
        request = self.code_copy_request(index)
        if request is not None:
            self.post_message(request)

    # -- text intake ----------------------------------------------------------------------------

    def _add(self, text: str) -> bool:
        """Sanitise and store ``text``; True if anything is left to show."""
        safe = self._sanitizer.feed(text) if text else ""
        if not safe:
            return False
        self._parts.append(safe)
        self._text_cache = None
        self._plain = None
        if self.failure is None:
            if self._step_running:
                self._held_text.append(safe)
                self._held_size += len(safe)
            else:
                self._splitter.feed(safe)
        return True

    def _schedule_update(self) -> None:
        """Render soon, but not more often than once per update interval."""
        if self._update_pending or not self.is_mounted:
            return
        self._update_pending = True
        delay = self._next_update - monotonic()
        if delay > 0:
            self.set_timer(delay, self._update)
        else:
            self.call_later(self._update)

    def on_mount(self) -> None:
        self._schedule_update()

    def _take_text(self) -> None:
        """Move what became final from the splitter to the document, and give it the tail."""
        if not self._final and not self._step_running and not self._offload():
            self._feed_held()
            self._document.add_final(self._splitter.take_final())
            self._document.set_tail(self._splitter.tail)

    def _update(self) -> None:
        """Render what arrived since the last update, and refresh the lines that changed."""
        if self.failure is not None:
            self._update_pending = False
            self.refresh(layout=True)
            return
        try:
            self._render_update()
        except Exception as error:
            self._failed(error)

    def _failed(self, error: BaseException) -> None:
        """Rendering raised: show the text plain from now on, and tell the screen (once)."""
        self._update_pending = False
        if self.failure is None:
            self.failure = error
            self.log.error("reply rendering failed", repr(error))
            if self.is_mounted:
                self.post_message(self.Failed(self, error))
        if self.is_mounted:
            self.refresh(layout=True)

    def _plain_lines(self, width: int) -> list[list[Segment]]:
        """The text as plain wrapped lines: what is shown once rendering has failed."""
        if self._plain is None or self._plain[0] != width:
            lines = [[Segment(line.plain)] for line in Content(self.markdown).wrap(max(width, 1))]
            self._plain = (width, lines)
        return self._plain[1]

    def _render_update(self) -> None:
        started = monotonic()
        if not self._final and started < self._held_until and started - self._last_render < self.MAX_HOLD:
            self.set_timer(min(self._held_until, self._last_render + self.MAX_HOLD) - started, self._update)
            return
        self._update_pending = False
        self._last_render = started
        if self._step_running:
            return  # the step's end schedules the next update
        if self._close_pending or self._offload():
            self._start_step(close=self._close_pending)
            return
        self._take_text()
        document = self._document
        if document.width and not self._palette_stale:
            old_height = self._height()
            first_changed = document.render(defer_long_tail=True)
            self._refresh_from(first_changed, old_height)
            self._load_missing_lexers()
        else:
            self.refresh(layout=True)
        # Rendering slower than a frame stretches the interval, keeping the app responsive.
        self._next_update = monotonic() + max(self.UPDATE_INTERVAL, 2 * (monotonic() - started))

    def _refresh_from(self, first_changed: int, old_height: int) -> None:
        """Repaint lines from ``first_changed`` on; lay out again only if the height changed.

        Lines above ``first_changed`` keep their place and content, so Textual's own cache of
        them stays valid: a frame costs the changed lines, not the whole reply on screen.
        """
        height = self._height()
        end = max(height, old_height)
        region = Region(0, first_changed, max(self.size.width, 1), max(end - first_changed, 1))
        self.refresh(region, layout=height != old_height)

    def _height(self) -> int:
        """The widget's height in lines: while streaming, rounded up to a whole step.

        Each change of height costs a layout and a repaint of everything on screen below the
        reply's top; growing a few lines at a time makes that rarer. Once the reply is taller
        than the screen the chat scrolls with it, so each change repaints the whole pane (~12 ms
        here) and a key typed meanwhile waits behind it: then the step doubles. Measured at 200
        tokens/s in the real app, 8-line steps brought the 95th percentile of key-to-screen
        latency from ~61 ms to ~47 ms against 4-line ones. The spare lines are blank, and go when
        the reply is finished.
        """
        height = self._document.height
        step = self.STREAM_HEIGHT_STEP
        if self._final or step <= 1 or not height:
            return height
        if self.is_mounted and height > self.screen.size.height:
            step *= 2
        return -(-height // step) * step

    # -- code colours ---------------------------------------------------------------------------

    def _load_missing_lexers(self) -> None:
        for language in self._document.missing_lexers - self._loading_lexers:
            self._loading_lexers.add(language)
            self.run_worker(self._load_lexer(language), group="reply-lexers")

    async def _load_lexer(self, language: str) -> None:
        try:
            await asyncio.to_thread(lexers.load, language)
        finally:
            self._loading_lexers.discard(language)
        if lexers.cached(language) is None:
            return  # unknown language: the code stays uncoloured, as rendered
        if self.failure is not None:
            return
        old_height = self._height()
        try:
            first_changed = self._document.relex(language)
        except Exception as error:
            self._failed(error)
            return
        if first_changed is not None:
            self._refresh_from(first_changed, old_height)

    # -- rendering ------------------------------------------------------------------------------

    def notify_style_update(self) -> None:
        """Theme or CSS changed: rebuild the palette; lines are re-rendered if it differs."""
        self._palette_stale = True
        super().notify_style_update()

    def _build_palette(self) -> Palette:
        return build_palette(self)

    def _ensure_layout(self, width: int) -> None:
        """Bring the lines up to date for ``width`` and the current palette."""
        width = max(width, 1)
        document = self._document
        if self._palette_stale:
            self._palette_stale = False
            palette = self._build_palette()
            if palette != document.palette:
                document.reset(width, palette)
        if width != document.width and document.palette is not None:
            document.reset(width, document.palette)
        self._take_text()
        document.render(defer_long_tail=self.is_mounted)
        if document.tail_stale and not self._step_running:
            self._schedule_update()  # a background step renders the long tail at this width
        self._load_missing_lexers()

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return container.width

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        if self.failure is None:
            try:
                self._ensure_layout(width)
            except Exception as error:
                self._failed(error)
        if self.failure is not None:
            return len(self._plain_lines(width))
        return self._height()

    def render_line(self, y: int) -> Strip:
        width = self.content_size.width
        if width <= 0:
            return Strip([])
        document = self._document
        if self.failure is None and (width != document.width or self._palette_stale):
            try:
                self._ensure_layout(width)
            except Exception as error:
                self._failed(error)
        if self.failure is not None:
            plain = self._plain_lines(width)
            segments = plain[y] if y < len(plain) else []
        else:
            segments = document.line(y)
        selection = self._selection
        if selection is not None and (span := selection.get_span(y)) is not None:
            segments = highlighted(segments, span, self._selection_restyle())
        return drawn_line(segments, y, width, document.palette.base if document.palette is not None else None)
