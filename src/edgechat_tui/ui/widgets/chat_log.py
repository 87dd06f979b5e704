"""The chat pane: the whole conversation in a list, only a window of it mounted as widgets.

Textual lays out every mounted widget on every change, so a pane that mounted 10,000 messages
would be slow to open and to scroll. The pane keeps every entry as data and mounts a window of
them: the newest :data:`INITIAL_WINDOW` on open, :data:`PAGE` more when the user scrolls to the
top (or to the bottom of a window that is not the newest), and never more than
:data:`MAX_MOUNTED` at once: mounting at one end unmounts the far end.

The pane follows the end of the conversation (Textual's anchor) while the user is at the bottom,
and stays put when they scroll up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from textual.containers import VerticalScroll
from textual.content import Content
from textual.events import Click
from textual.widget import Widget
from textual.widgets import Static

from edgechat_tui.core.messages import Message
from edgechat_tui.ui.widgets.messages import AssistantMessage, ErrorNotice, InfoNotice, UserMessage

INITIAL_WINDOW = 16
# Small pages, mounted a screen ahead of the edge: each costs one short pause, before it is needed.
PAGE = 10
MAX_MOUNTED = 70
# At least this many rows from the top (or bottom) the next page is mounted; a screen's height if more.
EDGE_ROWS = 2
# Re-pin the view this many frames after a page is mounted: replies lay themselves out over a few.
PIN_FRAMES = 4

EntryKind = Literal["user", "assistant", "error", "info", "warning"]


@dataclass(eq=False)
class Entry:
    """One item of the pane: a message of the conversation, or something the app said."""

    kind: EntryKind
    text: str
    hint: str | None = None
    advice: str | None = None
    model: str | None = None
    stopped: bool = False
    #: The reply is still streaming: its widget must stay mounted until it ends.
    live: bool = False
    widget: Widget | None = field(default=None, repr=False)

    @classmethod
    def from_message(cls, message: Message) -> Entry:
        kind: EntryKind = "user" if message.role == "user" else "assistant"
        if message.role == "system":
            return cls("info", f"system prompt: {message.content}")
        return cls(kind, message.content, model=message.model, stopped=message.stopped)


class PagingMarker(Static):
    """``▲ 9,970 earlier messages: scroll up to see them`` (click to load them)."""

    DEFAULT_CSS = """
    PagingMarker {
        width: 1fr;
        height: 1;
        content-align: center middle;
        color: $text-muted;
        background: $boost;
        display: none;
    }
    PagingMarker.-shown { display: block; }
    PagingMarker:hover { color: $text-accent; }
    """

    def __init__(self, direction: Literal["earlier", "later"], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.direction = direction

    def show_count(self, count: int) -> None:
        self.set_class(count > 0, "-shown")
        if count:
            arrow, where = ("▲", "up") if self.direction == "earlier" else ("▼", "down")
            noun = "message" if count == 1 else "messages"
            self.update(Content(f"{arrow} {count:,} {self.direction} {noun}: "
                                f"scroll {where} or click to see them"))

    async def _on_click(self, event: Click) -> None:
        event.stop()
        log = self.parent
        if isinstance(log, ChatLog):
            if self.direction == "earlier":
                await log.load_earlier()
            else:
                await log.load_later()


class EmptyState(Static):
    DEFAULT_CSS = """
    EmptyState {
        width: 1fr;
        height: auto;
        margin: 2 0;
        content-align: center middle;
        text-align: center;
        color: $text-muted;
        display: none;
    }
    EmptyState.-shown { display: block; }
    """


class ChatLog(VerticalScroll):
    """The conversation pane. Entries are data; only a bounded window of them is mounted."""

    DEFAULT_CSS = """
    ChatLog {
        height: 1fr;
        padding: 0 1 1 1;
        scrollbar-size-vertical: 1;
    }
    """
    # No content of its own to draw: Textual skips painting it (cheaper with long panes).
    BLANK = True

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.can_focus = False
        self.entries: list[Entry] = []
        self._start = 0  # entries[_start:_end] are mounted
        self._end = 0
        self._paging = False
        self._pinning = False
        self._earlier = PagingMarker("earlier")
        self._later = PagingMarker("later")
        self._empty = EmptyState(Content("No messages yet: type below and press Enter.  "
                                         "/help lists the commands."))
        self._empty_allowed = False
        self.user = ""

    def compose(self):
        yield self._earlier
        yield self._later
        yield self._empty

    def on_mount(self) -> None:
        self.anchor()

    # --- what is mounted ----------------------------------------------------------------------

    @property
    def window(self) -> tuple[int, int]:
        """The range of entries mounted, as (start, end)."""
        return self._start, self._end

    @property
    def mounted_widget_count(self) -> int:
        """Widgets in the pane's subtree, markers included (what layout has to deal with)."""
        return sum(1 for _ in self.walk_children(with_self=False))

    def _widget_for(self, entry: Entry) -> Widget:
        if entry.widget is not None and entry.live:
            return entry.widget
        widget: Widget
        if entry.kind == "user":
            widget = UserMessage(entry.text, self.user)
        elif entry.kind == "assistant":
            widget = AssistantMessage(entry.text, model=entry.model, stopped=entry.stopped, live=entry.live)
        elif entry.kind == "error":
            widget = ErrorNotice(entry.text, entry.hint, entry.advice)
        else:
            widget = InfoNotice(entry.text, warning=entry.kind == "warning")
        entry.widget = widget
        return widget

    def _update_markers(self) -> None:
        self._earlier.show_count(self._start)
        self._later.show_count(len(self.entries) - self._end)
        self._empty.set_class(self._empty_allowed and not self.entries, "-shown")

    def _follow_end(self, follow: bool) -> None:
        """Follow new content only when the newest entry is mounted.

        Otherwise reaching the bottom of an older window would re-anchor the pane, and each page
        mounted below would pull the view down to mount the next: a runaway to the end.
        """
        if follow:
            # Armed but released: the view re-anchors when the user reaches the bottom.
            self._anchored = True
            self._anchor_released = self.scroll_y < self.max_scroll_y
        else:
            self._anchored = False

    # --- changing the conversation -------------------------------------------------------------

    async def show_conversation(self, entries: Iterable[Entry], *, user: str) -> None:
        """Replace the pane's content (on start, after /user or /clear), scrolled to the end."""
        self.user = user
        await self._unmount(self.entries[self._start:self._end])
        self.entries = list(entries)
        self._end = len(self.entries)
        self._start = max(0, self._end - INITIAL_WINDOW)
        self._empty_allowed = True
        widgets = [self._widget_for(entry) for entry in self.entries[self._start:self._end]]
        with self.app.batch_update():
            if widgets:
                await self.mount_all(widgets, before=self._later)
            self._update_markers()
        self.anchor()
        await self._fill_view()

    async def _fill_view(self) -> None:
        """Mount earlier pages while the window is too short to scroll (the user could not page)."""
        for _ in range(MAX_MOUNTED // PAGE):
            if self._start == 0 or not await self.wait_for_refresh():
                return
            if self.max_scroll_y > EDGE_ROWS:
                return
            await self.load_earlier()

    async def add(self, entry: Entry) -> Widget:
        """Add an entry at the end (jumping to the end first if an older window is shown)."""
        if self._end < len(self.entries):
            await self.jump_to_end()
        self.entries.append(entry)
        widget = self._widget_for(entry)
        await self.mount(widget, before=self._later)
        self._end = len(self.entries)
        await self._trim_top()
        self._update_markers()
        return widget

    def discard_entry(self, entry: Entry) -> None:
        """Take an entry out of the conversation (a turn that failed or was stopped before any text).

        The entry leaves the list at once; its widget is removed in the background.
        """
        try:
            index = self.entries.index(entry)
        except ValueError:
            return
        in_window = self._start <= index < self._end
        widget = entry.widget if in_window else None
        if in_window:
            self._end -= 1
        elif index < self._start:
            self._start -= 1
            self._end -= 1
        del self.entries[index]
        entry.widget = None
        entry.live = False
        if widget is not None:
            widget.remove()
        self._update_markers()

    def scroll_to_latest(self) -> None:
        """Show the end and follow it again (after the user sends a message)."""
        self.anchor()

    # --- paging -------------------------------------------------------------------------------

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self._paging or self._pinning or not self.is_mounted:
            return
        edge = max(EDGE_ROWS, self.size.height)
        if new_value <= edge and self._start > 0 and new_value < old_value:
            self._page(self.load_earlier)
        elif (new_value >= self.max_scroll_y - edge and self._end < len(self.entries)
              and new_value > old_value):
            self._page(self.load_later)

    def _page(self, load) -> None:
        self._paging = True

        async def run() -> None:
            try:
                await load()
            finally:
                self._paging = False

        self.run_worker(run(), group="chat-paging", exit_on_error=False)

    async def load_earlier(self, count: int = PAGE) -> int:
        """Mount up to ``count`` earlier entries above the window, keeping the view where it is."""
        if self._start == 0:
            return 0
        new_start = max(0, self._start - count)
        ref = self.entries[self._start].widget if self._end > self._start else None
        offset = ref.virtual_region.y - self.scroll_y if ref is not None else 0
        widgets = [self._widget_for(entry) for entry in self.entries[new_start:self._start]]
        self._follow_end(False)
        with self.app.batch_update():
            await self.mount_all(widgets, after=self._earlier)
            self._start = new_start
            await self._trim_bottom()
            self._update_markers()
        if ref is not None:
            await self._pin(ref, offset)
        self._follow_end(self._end == len(self.entries))
        return len(widgets)

    async def load_later(self, count: int = PAGE) -> int:
        """Mount up to ``count`` later entries below the window (when an older window is shown)."""
        if self._end >= len(self.entries):
            return 0
        new_end = min(len(self.entries), self._end + count)
        ref = self.entries[self._end - 1].widget if self._end > self._start else None
        offset = ref.virtual_region.y - self.scroll_y if ref is not None else 0
        widgets = [self._widget_for(entry) for entry in self.entries[self._end:new_end]]
        self._follow_end(False)
        with self.app.batch_update():
            await self.mount_all(widgets, before=self._later)
            self._end = new_end
            await self._trim_top()
            self._update_markers()
        if ref is not None:
            await self._pin(ref, offset)
        self._follow_end(self._end == len(self.entries))
        return len(widgets)

    async def jump_to_end(self) -> None:
        """Mount the newest window again and show it."""
        await self._unmount(self.entries[self._start:self._end])
        self._end = len(self.entries)
        self._start = max(0, self._end - INITIAL_WINDOW)
        widgets = [self._widget_for(entry) for entry in self.entries[self._start:self._end]]
        with self.app.batch_update():
            if widgets:
                await self.mount_all(widgets, before=self._later)
            self._update_markers()
        self.anchor()

    async def _trim_top(self) -> None:
        excess = (self._end - self._start) - MAX_MOUNTED
        if excess <= 0:
            return
        victims = [e for e in self.entries[self._start:self._start + excess] if not e.live]
        at_bottom = self.scroll_y >= self.max_scroll_y
        ref = self.entries[self._end - 1].widget
        offset = ref.virtual_region.y - self.scroll_y if ref is not None else 0
        await self._unmount(victims)
        self._start += len(victims)
        if ref is not None and not at_bottom and not self._paging:
            await self._pin(ref, offset)

    async def _trim_bottom(self) -> None:
        excess = (self._end - self._start) - MAX_MOUNTED
        if excess <= 0:
            return
        tail = self.entries[self._end - excess:self._end]
        if any(entry.live for entry in tail):
            return  # a streaming reply stays mounted; the window shrinks once it ends
        await self._unmount(tail)
        self._end -= excess

    async def _unmount(self, entries: list[Entry]) -> None:
        widgets = [entry.widget for entry in entries if entry.widget is not None]
        for entry in entries:
            if not entry.live:
                entry.widget = None
        if widgets:
            await self.remove_children(widgets)

    async def _pin(self, ref: Widget, offset: float) -> None:
        """Keep ``ref`` at ``offset`` rows from the top of the view while the new page lays out."""
        self._pinning = True
        try:
            for _ in range(PIN_FRAMES):
                if not await self.wait_for_refresh():
                    await asyncio.sleep(0)
                if not ref.is_mounted:
                    return
                target = ref.virtual_region.y - offset
                if abs(self.scroll_y - target) >= 1:
                    self.scroll_to(y=target, animate=False, immediate=True)
        finally:
            self._pinning = False
