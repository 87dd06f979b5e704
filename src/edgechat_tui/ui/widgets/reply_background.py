"""The part of :class:`~edgechat_tui.ui.widgets.reply.ReplyMarkdown` that renders a long open block
in a thread (:mod:`edgechat_tui.ui.markdown.background`), so the event loop never waits on it.

While a step runs it owns the widget's block splitter: text that arrives meanwhile waits in
``_held_text`` and is handed to the next step (or to the splitter once the step is over).
"""

from __future__ import annotations

import asyncio
from time import monotonic
from typing import Any

from markdown_it import MarkdownIt

from edgechat_tui.ui.markdown.background import OFFLOAD_CHARS, render_step
from edgechat_tui.ui.markdown.blocks import new_parser
from edgechat_tui.ui.markdown.style import Palette

__all__ = ["BackgroundSteps"]


class BackgroundSteps:
    """Mixed into ReplyMarkdown (``self`` is the widget; it owns the attributes used here)."""

    _step_parser: MarkdownIt | None = None
    _held_text: list[str]
    _held_size: int
    _step_running: bool
    _close_pending: bool
    _final: bool
    _splitter: Any
    _document: Any

    def _feed_held(self) -> None:
        """Give the splitter the text that arrived while a background step owned it."""
        if self._held_text and not self._step_running:
            for text in self._held_text:
                self._splitter.feed(text)
            self._held_text = []
            self._held_size = 0

    def _offload(self, *, closing: bool = False) -> bool:
        """True when the open text is long enough to be rendered off the event loop."""
        document = self._document
        if not self.is_mounted or not document.width or document.palette is None or self._palette_stale:
            return False
        if self._final and not closing and not self._close_pending:
            return False
        return (self._step_running or self._document.tail_stale
                or self._splitter.size + self._held_size >= OFFLOAD_CHARS)

    def _start_step(self, *, close: bool) -> None:
        document = self._document
        assert document.palette is not None
        text = "".join(self._held_text)
        self._held_text = []
        self._held_size = 0
        self._step_running = True
        if close:
            self._close_pending = False
        if self._step_parser is None:
            self._step_parser = new_parser()  # the thread's own: a parser is not shared across threads
        self.run_worker(self._step(text, close, document.width, document.palette), group="reply-render",
                        exit_on_error=False)

    async def _step(self, text: str, close: bool, width: int, palette: Palette) -> None:
        started = monotonic()
        assert self._step_parser is not None
        try:
            step = await asyncio.to_thread(render_step, self._splitter, self._step_parser, text,
                                           close=close, width=width, palette=palette)
        except Exception as error:
            self._step_running = False
            self._failed(error)
            return
        self._step_running = False
        self.background_steps += 1
        old_height = self._height()
        first_changed = self._document.install(step)
        if close and self._height() != old_height:
            self.refresh(layout=True)
        self._refresh_from(first_changed, old_height)
        self._load_missing_lexers()
        # Each step re-renders the open block whole: spacing them by their own length keeps the
        # thread to half the time (and half the interpreter) whatever the block's size.
        self._next_update = monotonic() + max(self.UPDATE_INTERVAL, monotonic() - started)
        if self._held_text or self._close_pending:
            self._schedule_update()
