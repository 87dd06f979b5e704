"""The chat pane's paging: the view held on an entry while pages are mounted and laid out.

:class:`PagingMixin` is the part of :class:`~edgechat_tui.ui.widgets.chat_log.ChatLog` that moves
through a long conversation: it knows where the view is (the entry at its top and that entry's
row), mounts pages toward where the view goes, jumps when the view goes far, and re-applies the
held view each frame until the new rows have settled. See chat_log's docstring for the whole.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from edgechat_tui.ui.widgets.chat_entry import Entry
from edgechat_tui.ui.widgets.chat_rows import index_at_row, rows_of

__all__ = ["EDGE_ROWS", "INITIAL_WINDOW", "JUMP_SCREENS", "MAX_MOUNTED", "PAGE", "PIN_FRAMES",
           "SETTLED_FRAMES",
           "Hold", "PagingMixin"]

INITIAL_WINDOW = 16
# The least mounted at once when the view nears an edge of the window.
PAGE = 10
MAX_MOUNTED = 70
# At least this many rows from the top (or bottom) the next page is mounted; a screen's height if more.
EDGE_ROWS = 2
# A view this many screens inside a reserve mounts the window there instead of every page on the way.
JUMP_SCREENS = 3
# The held view is re-applied each frame after a page is mounted, until the entry under it has
# stayed still for SETTLED_FRAMES frames (replies lay themselves out over a few), at most PIN_FRAMES.
PIN_FRAMES = 12
SETTLED_FRAMES = 2


@dataclass
class Hold:
    """The view, held on an entry: the entry's top is ``offset`` rows below the view's top."""

    entry: Entry
    offset: float


class PagingMixin:
    """Paging for the chat pane (mixed into ChatLog, which provides the attributes used here)."""

    # Provided by ChatLog / Textual's Widget:
    entries: list[Entry]
    _start: int
    _end: int
    _paging: bool
    _pinning: bool
    _moving: bool
    _again: bool = False
    _hold: Hold | None
    _above: Any
    _below: Any
    scroll_y: float
    max_scroll_y: float
    virtual_size: Any
    is_mounted: bool
    _anchored: bool
    _anchor_released: bool
    refresh: Any

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self._moving or not self.is_mounted:
            return
        hold = self._hold
        if hold is not None and hold.entry.widget is not None and hold.entry.widget.is_mounted:
            hold.offset = hold.entry.widget.virtual_region.y - new_value  # the user moved (wheel, drag)
        self._want_pages()

    def _follow_end(self, follow: bool) -> None:
        """Follow new content only when the newest entry is mounted.

        Otherwise reaching the bottom of an older window would re-anchor the pane, and each page
        mounted below would pull the view down to mount the next: a runaway to the end.
        """
        if follow:
            # Armed but released: the view re-anchors at the bottom. Content that fits is at its bottom,
            # whatever (negative) offset an anchored layout of shorter content left: re-anchored.
            self._anchored = True
            self._anchor_released = 0 < self.max_scroll_y and self.scroll_y < self.max_scroll_y
            if not self._anchor_released:
                self.refresh(layout=True)
        else:
            self._anchored = False

    def _move(self, y: float) -> None:
        self._moving = True
        try:
            self.scroll_to(y=y, animate=False, immediate=True)
        finally:
            self._moving = False

    def _view_top(self) -> float:
        """Where the view's top is, or will be once the held view is applied."""
        hold = self._hold
        if hold is not None and hold.entry.widget is not None and hold.entry.widget.is_mounted:
            return hold.entry.widget.virtual_region.y - hold.offset
        return self.scroll_y

    def _below_top(self) -> float:
        return self._below.virtual_region.y if self._below.is_mounted else self.virtual_size.height

    def _near_reserve(self, top: float) -> bool:
        edge = max(EDGE_ROWS, self._page_rows())
        return ((self._start > 0 and top < self._above.rows + edge)
                or (self._end < len(self.entries) and top + 2 * edge > self._below_top()))

    def _current_hold(self) -> Hold | None:
        """The entry at the top of the view (the nearest mounted one if the view is in a reserve)."""
        top = self.scroll_y
        last: tuple[Entry, float] | None = None
        for entry in self.entries[self._start:self._end]:
            widget = entry.widget
            if widget is None or not widget.is_mounted:
                continue
            region = widget.virtual_region
            if region.bottom > top:
                return Hold(entry, region.y - top)
            last = (entry, region.y)
        return Hold(last[0], last[1] - top) if last is not None else None

    def _apply_hold(self) -> None:
        hold = self._hold
        if hold is None:
            return
        widget = hold.entry.widget
        if widget is None or not widget.is_mounted:
            self._hold = None
            return
        y = widget.virtual_region.y
        target = y - hold.offset
        at_top, at_end = self._start == 0, self._end == len(self.entries)
        if (target < 0 and at_top) or (target > self.max_scroll_y and at_end):
            target = min(max(0.0, target), self.max_scroll_y)
            hold.offset = y - target  # nothing more to mount that way: the excess is dropped
        if abs(self.scroll_y - target) >= 1:
            self._move(target)

    _halted: bool = False
    _fill_worker: Any = None

    @contextlib.asynccontextmanager
    async def _jumping(self) -> AsyncIterator[None]:
        """While a jump mounts its window: the pages under way end their step, and no more are
        started (else a fill begun for the old view goes on over the new window)."""
        self._halted = True
        try:
            worker = self._fill_worker
            if worker is not None and self._paging:
                with contextlib.suppress(Exception):
                    await worker.wait()
            self._again = False
            yield
        finally:
            self._halted = False

    def _want_pages(self, *, force: bool = False) -> None:
        """Start mounting pages in the background if the view is near a reserve."""
        if not self.is_mounted or self._halted:
            return
        if self._paging:
            self._again = True  # looked at again once the pages under way are mounted
            return
        if not force and not self._near_reserve(self._view_top()):
            return
        self._paging = True
        self._fill_worker = self.run_worker(self._fill(), group="chat-paging", exit_on_error=False)

    async def _fill(self) -> None:
        """Mount what the view needs, a step at a time, holding the view; then let go of it."""
        try:
            # What was just mounted (a window, a page) is laid out first: before that, positions
            # and the scroll range are those of the old content.
            if not await self.wait_for_refresh():
                await asyncio.sleep(0)
            await self._pin()
            for _ in range(4 * MAX_MOUNTED):  # bounded: each step mounts at least one entry
                if self._halted or not await self._step():
                    break
        finally:
            self._paging = False
            self._hold = None
            if self._again:
                self._again = False
                self.call_later(self._want_pages)

    async def _step(self) -> bool:
        """One page (or one jump) toward where the view is. False when the view needs none."""
        top, screen = self._view_top(), self._page_rows()
        width = self._width()
        edge = max(EDGE_ROWS, screen)
        if self._start > 0 and top < self._above.rows + edge:
            missing = self._above.rows + edge - top
            if missing > (JUMP_SCREENS + 1) * screen and self.can_jump:
                await self._jump_to_row(top)
                return True
            count, rows = 0, 0
            while self._start - count > 0 and (rows < missing or count < PAGE):
                count += 1
                rows += rows_of(self.entries[self._start - count], width)
            await self.load_earlier(min(count, MAX_MOUNTED - PAGE))
            return True
        below = self._below_top()
        if self._end < len(self.entries) and top + 2 * edge > below:
            missing = top + 2 * edge - below
            if missing > (JUMP_SCREENS + 2) * screen and self.can_jump:
                await self._jump_to_row(top)
                return True
            count, rows = 0, 0
            while self._end + count < len(self.entries) and (rows < missing or count < PAGE):
                rows += rows_of(self.entries[self._end + count], width)
                count += 1
            await self.load_later(min(count, MAX_MOUNTED - PAGE))
            return True
        return False

    async def _jump_to_row(self, top: float) -> None:
        """Mount the window around the entry at row ``top`` of the reserves, and show it there."""
        width = self._width()
        if top < self._above.rows:
            index = index_at_row(self.entries[:self._start], top, width)
            entry_top = sum(rows_of(entry, width) for entry in self.entries[:index])
        else:
            below = self._below_top()
            index = self._end + index_at_row(self.entries[self._end:], top - below, width)
            entry_top = below + sum(rows_of(entry, width) for entry in self.entries[self._end:index])
        start = max(0, index - PAGE)
        end = min(len(self.entries), max(index + INITIAL_WINDOW, start + INITIAL_WINDOW))
        self._follow_end(False)
        await self._mount_window(start, end)
        self._hold = Hold(self.entries[index], entry_top - top)
        await self._pin()
        self._follow_end(self._end == len(self.entries))

    async def _pin(self) -> None:
        """Re-apply the held view each frame while what was mounted lays itself out."""
        if self._hold is None:
            return
        self._pinning = True
        try:
            last, still = None, 0
            for _ in range(PIN_FRAMES):
                if not await self.wait_for_refresh():
                    await asyncio.sleep(0)
                hold = self._hold
                if hold is None or hold.entry.widget is None or not hold.entry.widget.is_mounted:
                    return
                self._apply_hold()
                y = hold.entry.widget.virtual_region.y
                still = still + 1 if y == last else 0
                last = y
                if still >= SETTLED_FRAMES:
                    return
        finally:
            self._pinning = False
