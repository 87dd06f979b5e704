"""The chat pane: the whole conversation in a list, only a window of it mounted as widgets.

Textual lays out every mounted widget on every change, so a pane that mounted 10,000 messages
would be slow to open and to scroll. The pane keeps every entry as data and mounts a window of
them: the newest :data:`INITIAL_WINDOW` on open, more as the view nears either end of the window,
and never more than :data:`MAX_MOUNTED` at once: mounting at one end unmounts the far end.

Above and below the window, blank rows (:class:`~.chat_markers.Reserve`) stand for the entries not
mounted: the rows each took when it was last shown, or an estimate (:mod:`.chat_rows`). So the
scrollbar tells where the view is in the whole conversation, and a page is a screen's height
whatever is mounted.

While pages are mounted the view is *held*: the entry at the top of the view stays at the same
row, however the rows above it change as they are laid out. Paging (PgUp/PgDn) moves the held
view at once, a screen per press, even while a page is still being mounted, so held keys are all
counted and the view never jumps back. Far moves (Ctrl+Home, Ctrl+End, a drag of the scrollbar
deep into the reserve) mount the window they need instead of every page on the way.

The pane follows the end of the conversation (Textual's anchor) while the user is at the bottom,
and stays put when they scroll up.

**The first frame.** Given an :class:`~edgechat_tui.storage.tail.EarlyTail` (the newest messages,
read while Textual loaded), the pane draws them in its first frame, before the store has loaded.
When the store's view comes (:meth:`ChatLog.show_conversation`) and holds those same messages, the
pane keeps their widgets, as they are, and only adds what is new (warnings, turns added meanwhile by
another process): nothing flickers, nothing shows twice. When it does not hold them, the store's view
replaces them in one update.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widget import Widget

from edgechat_tui.ui.widgets.chat_context import ContextLine
from edgechat_tui.ui.widgets.chat_entry import Entry
from edgechat_tui.ui.widgets.chat_markers import ContextMarker, EmptyState, PagingMarker, Reserve
from edgechat_tui.ui.widgets.chat_paging import INITIAL_WINDOW, MAX_MOUNTED, PAGE, Hold, PagingMixin
from edgechat_tui.ui.widgets.chat_rows import rows_of
from edgechat_tui.ui.widgets.early_view import EarlyView
from edgechat_tui.ui.widgets.messages import AssistantMessage, ErrorNotice, InfoNotice, UserMessage

if TYPE_CHECKING:
    from edgechat_tui.storage.tail import EarlyTail

__all__ = ["INITIAL_WINDOW", "MAX_MOUNTED", "PAGE", "ChatLog", "Entry", "PagingMarker"]


class ChatLog(EarlyView, ContextLine, PagingMixin, VerticalScroll):
    """The conversation pane. Entries are data; only a bounded window of them is mounted."""

    DEFAULT_CSS = """
    ChatLog {
        height: 1fr;
        padding: 0 1 1 1;
        scrollbar-size-vertical: 1;
    }
    """
    # When the focus is inside the pane (on a message): the keys move through the whole conversation.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+home", "scroll_home", "Start", show=False),
        Binding("ctrl+end", "scroll_end", "Newest", show=False),
    ]
    # No content of its own to draw: Textual skips painting it (cheaper with long panes).
    BLANK = True
    INITIAL_WINDOW = INITIAL_WINDOW

    def __init__(self, *, id: str | None = None, early: EarlyTail | None = None, user: str = "") -> None:
        super().__init__(id=id)
        self.can_focus = False
        self.entries: list[Entry] = []
        self._start = 0  # entries[_start:_end] are mounted
        self._end = 0
        self._paging = False
        self._pinning = False
        self._moving = False
        self._hold: Hold | None = None
        self._above = Reserve()
        self._below = Reserve()
        self._earlier = PagingMarker("earlier")
        self._later = PagingMarker("later")
        self._context_line = ContextMarker()
        self._context_entry: Entry | None = None
        self._empty = EmptyState(Content("No messages yet: type below and press Enter.  "
                                         "/help lists the commands."))
        self._empty_allowed = False
        self.user = user
        #: The tail being read for the first frame, until it is drawn or the store's view comes.
        self._early_source = early
        #: The entries drawn from it, until the store's view takes them over (or replaces them).
        self._early: list[Entry] | None = None
        self._early_more = False  # the early view is not the whole conversation
        #: Makes the line of figures under a stored reply (set by the chat screen: it knows the prices).
        self.describe_usage: Callable[[Entry], str | None] | None = None
        self.drawn_path: Path | None = None  # the render cache (early_view.py); set by the chat screen

    def compose(self):
        yield self._above
        yield self._earlier
        tail = self._early_source.result() if self._early_source is not None else None
        if tail is not None:
            yield from self._take_early(tail)
        yield self._context_line
        yield self._later
        yield self._below
        yield self._empty

    def on_mount(self) -> None:
        self.anchor()
        self._watch_early()

    # --- what is mounted ----------------------------------------------------------------------

    @property
    def window(self) -> tuple[int, int]:
        """The range of entries mounted, as (start, end)."""
        return self._start, self._end

    @property
    def mounted_widget_count(self) -> int:
        """Widgets in the pane's subtree, markers included (what layout has to deal with)."""
        return sum(1 for _ in self.walk_children(with_self=False))

    @property
    def busy(self) -> bool:
        """Pages are being mounted, or the view is being held while they lay out."""
        return self._paging or self._pinning

    @property
    def reserved_rows(self) -> tuple[int, int]:
        """The blank rows standing for the entries above and below the window."""
        return self._above.rows, self._below.rows

    def message_count(self) -> int:
        """How many stored messages the pane shows (notices and a streaming reply aside)."""
        return sum(1 for entry in self.entries if entry.is_message)

    def _widget_for(self, entry: Entry) -> Widget:
        if entry.widget is not None and entry.live:
            return entry.widget
        widget: Widget
        if entry.kind == "user":
            widget = UserMessage(entry.text, self.user, branch=entry.branch)
        elif entry.kind == "assistant":
            if entry.figures is None and self.describe_usage is not None and not entry.live:
                entry.figures = self.describe_usage(entry)
            widget = AssistantMessage(entry.text, model=entry.model, stopped=entry.stopped, live=entry.live,
                                      usage=entry.figures, branch=entry.branch, drawn=entry.drawn)
        elif entry.kind == "error":
            widget = ErrorNotice(entry.text, entry.hint, entry.advice, repeat=entry.repeat)
        else:
            widget = InfoNotice(entry.text, warning=entry.kind == "warning")
        entry.widget = widget
        return widget

    def _width(self) -> int:
        return self.scrollable_content_region.width or self.size.width or 80

    def _page_rows(self) -> int:
        """A page: the pane's height."""
        return max(1, self.scrollable_content_region.height or self.size.height)

    def _update_markers(self) -> None:
        if self._early is not None and self._early_more:
            self._earlier.show_loading()
            self._later.show_count(0)
            self._empty.set_class(False, "-shown")
            return
        width = self._width()
        # Each marker's row is part of the rows reserved for what it counts, so that the whole
        # conversation takes as many rows whatever is mounted.
        above = sum(rows_of(entry, width) for entry in self.entries[:self._start])
        below = sum(rows_of(entry, width) for entry in self.entries[self._end:])
        self._above.set_rows(above - (1 if self._start > 0 else 0))
        self._below.set_rows(below - (1 if self._end < len(self.entries) else 0))
        self._earlier.show_count(self._start)
        self._later.show_count(len(self.entries) - self._end)
        self._empty.set_class(self._empty_allowed and not self.entries, "-shown")
        self._place_context_marker()

    # --- changing the conversation -------------------------------------------------------------

    async def show_conversation(self, entries: Iterable[Entry], *, user: str,
                                window: int = INITIAL_WINDOW) -> None:
        """Replace the pane's content (on start, after /user or /clear), scrolled to the end.

        ``window``: how many of the newest entries to mount at once (fewer show sooner; earlier
        pages are mounted as the view needs them, as when scrolling up)."""
        entries = list(entries)
        early, self._early = self._early, None
        self._early_source = None  # a tail read after this is not shown
        if early is not None and user == self.user:
            at = self._early_at(entries, early)
            if at is not None:
                await self._adopt_early(entries, at, early, window)
                return
        self.user = user
        self._hold = None
        self._context_entry = None
        await self._unmount(self.entries[self._start:self._end])
        self.entries = list(entries)
        self._empty_allowed = True
        await self._mount_window(max(0, len(self.entries) - window), len(self.entries))
        self.anchor()
        self._want_pages()

    async def add(self, entry: Entry) -> Widget:
        """Add an entry at the end (jumping to the end first if an older window is shown).

        An error identical to the entry just before it (message, hint and advice) is not added
        again: that entry counts the repeat (``×3``) instead, so a failure met again and again
        does not fill the pane.
        """
        if self._end < len(self.entries):
            await self.jump_to_end()
        repeated = self._repeat_of(entry)
        if repeated is not None:
            return repeated
        self.entries.append(entry)
        widget = self._widget_for(entry)
        # The window includes the entry before the mount is awaited: a scroll while it mounts
        # must not see it as a later entry to load (which mounted it a second time).
        self._end = len(self.entries)
        await self.mount(widget, before=self._later)
        await self._trim_top()
        self._update_markers()
        return widget

    def _repeat_of(self, entry: Entry) -> Widget | None:
        """Count ``entry`` on the last entry when it repeats that error; its widget, or None."""
        last = self.entries[-1] if self.entries else None
        if (entry.kind != "error" or last is None or last.kind != "error"
                or (last.text, last.hint, last.advice) != (entry.text, entry.hint, entry.advice)
                or not isinstance(last.widget, ErrorNotice)):
            return None
        last.repeat += entry.repeat
        last.widget.set_repeat(last.repeat)
        self.anchor()
        return last.widget

    async def extend(self, entries: list[Entry]) -> None:
        """Add entries at the end without moving the view (turns another process added).

        Mounted when the newest entry is (the view follows them if it was at the bottom), else
        counted in the marker and the reserve below.
        """
        if not entries:
            return
        newest_mounted = self._end == len(self.entries)
        self.entries.extend(entries)
        if newest_mounted:
            widgets = [self._widget_for(entry) for entry in entries]
            with self.app.batch_update():
                await self.mount_all(widgets, before=self._later)
                self._end = len(self.entries)
                await self._trim_top()
                self._update_markers()
        else:
            self._update_markers()

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
        if self._hold is not None and self._hold.entry is entry:
            self._hold = None
        if widget is not None:
            widget.remove()
        self._update_markers()

    def scroll_to_latest(self) -> None:
        """Show the end and follow it again (after the user sends a message)."""
        self._hold = None
        self.anchor()

    # --- moving through the conversation -------------------------------------------------------

    def page(self, pages: int) -> None:
        """Move the view ``pages`` screens (negative: up), at once; pages are mounted as needed.

        Every call moves the view, including calls made while a page is still being mounted
        (a held key): the held view takes each one.
        """
        step = pages * self._page_rows()
        if self._hold is None and self._near_reserve(self.scroll_y + step):
            self._hold = self._current_hold()
        hold = self._hold
        if hold is not None and hold.entry.widget is not None and hold.entry.widget.is_mounted:
            hold.offset -= step
            self._apply_hold()
        else:
            self._move(self.scroll_y + step)
        self._want_pages()

    def action_page_up(self) -> None:
        self.page(-1)

    def action_page_down(self) -> None:
        self.page(1)

    async def action_scroll_home(self) -> None:
        await self.jump_to_start()

    async def action_scroll_end(self) -> None:
        await self.jump_to_end()

    @property
    def can_jump(self) -> bool:
        """False while a reply streams into the pane: its widget stays mounted, so the window stays."""
        return not any(entry.live for entry in self.entries[self._start:self._end])

    async def jump_to_start(self) -> bool:
        """Mount the oldest window and show its top. False (nothing done) while a reply streams."""
        if not self.entries:
            return True
        if not self.can_jump:
            self.notify("The start is shown once the reply has ended (Esc stops it).", markup=False)
            return False
        async with self._jumping():  # no fill begun for the old view goes on over this window
            self._hold = None
            self._follow_end(False)
            await self._mount_window(0, min(len(self.entries), INITIAL_WINDOW))
        first = self.entries[0].widget
        self._hold = Hold(self.entries[0], first.styles.margin.top if first is not None else 0)
        self._move(0)
        self._want_pages(force=True)
        return True

    async def jump_to_end(self) -> None:
        """Mount the newest window again and show it."""
        self._hold = None
        if self._end < len(self.entries) and self.can_jump:
            await self._mount_window(max(0, len(self.entries) - INITIAL_WINDOW), len(self.entries))
        self.anchor()
        self._want_pages()

    async def jump_to(self, index: int) -> Widget | None:
        """Mount a window around entry ``index`` and show it at the top of the view (a search hit)."""
        if not 0 <= index < len(self.entries) or not self.can_jump:
            return None
        async with self._jumping():
            self._hold = None
            self._follow_end(False)
            start = max(0, index - PAGE)
            await self._mount_window(start, min(len(self.entries), max(index, start) + INITIAL_WINDOW))
        target = self.entries[index].widget
        if target is not None:
            self._hold = Hold(self.entries[index], target.styles.margin.top)
            await self._pin()
            self._want_pages(force=True)
        self._follow_end(self._end == len(self.entries))
        return target

    async def _mount_window(self, start: int, end: int) -> None:
        """Unmount what is mounted and mount ``entries[start:end]`` (the reserves take the rest)."""
        await self._unmount(self.entries[self._start:self._end])
        self._start, self._end = start, end
        widgets = [self._widget_for(entry) for entry in self.entries[start:end]]
        with self.app.batch_update():
            if widgets:
                await self.mount_all(widgets, before=self._later)
            self._update_markers()

    # --- paging -------------------------------------------------------------------------------

    async def load_earlier(self, count: int = PAGE) -> int:
        """Mount up to ``count`` earlier entries above the window, keeping the view where it is."""
        if self._start == 0:
            return 0
        # Following the end (anchored at the bottom): the anchor keeps the bottom where it is.
        following = self.following
        own = self._hold is None and not following
        if own:
            self._hold = self._current_hold()
        new_start = max(0, self._start - count)
        widgets = [self._widget_for(entry) for entry in self.entries[new_start:self._start]]
        if not following:
            self._follow_end(False)
        with self.app.batch_update():
            await self.mount_all(widgets, after=self._earlier)
            self._start = new_start
            await self._trim_bottom()
            self._update_markers()
        await self._pin()
        if not following:
            self._follow_end(self._end == len(self.entries))
        if own and not self._paging:
            self._hold = None
        return len(widgets)

    @property
    def following(self) -> bool:
        """The view follows the end: the newest entry is mounted and the view is anchored at it."""
        return self._anchored and not self._anchor_released and self._end == len(self.entries)

    async def load_later(self, count: int = PAGE) -> int:
        """Mount up to ``count`` later entries below the window (when an older window is shown)."""
        if self._end >= len(self.entries):
            return 0
        own = self._hold is None
        if own:
            self._hold = self._current_hold()
        new_end = min(len(self.entries), self._end + count)
        widgets = [self._widget_for(entry) for entry in self.entries[self._end:new_end]]
        self._follow_end(False)
        with self.app.batch_update():
            await self.mount_all(widgets, before=self._later)
            self._end = new_end
            await self._trim_top()
            self._update_markers()
        await self._pin()
        self._follow_end(self._end == len(self.entries))
        if own and not self._paging:
            self._hold = None
        return len(widgets)

    def _clear_of_view(self, entry: Entry, above: bool) -> bool:
        """``entry`` is a screen or more away from the view (or not laid out yet), on that side."""
        widget = entry.widget
        if widget is None or not widget.is_mounted:
            return True
        region, top, screen = widget.virtual_region, self.scroll_y, self._page_rows()
        if above:
            return region.bottom < top - screen or (self.following and region.bottom < top)
        return region.y > top + 2 * screen

    async def _trim_top(self) -> None:
        excess = (self._end - self._start) - MAX_MOUNTED
        if excess <= 0:
            return
        victims = []
        for entry in self.entries[self._start:self._start + excess]:
            if entry.live or not self._clear_of_view(entry, above=True):
                break  # what is in view (or near it) stays mounted
            victims.append(entry)
        await self._unmount(victims)  # measured first: the reserve above takes their exact rows
        self._start += len(victims)

    async def _trim_bottom(self) -> None:
        excess = (self._end - self._start) - MAX_MOUNTED
        if excess <= 0:
            return
        count = 0
        for entry in reversed(self.entries[self._end - excess:self._end]):
            if entry.live or not self._clear_of_view(entry, above=False):
                break  # a streaming reply, or what is in view, stays mounted
            count += 1
        if count:
            await self._unmount(self.entries[self._end - count:self._end])
            self._end -= count

    async def _unmount(self, entries: list[Entry]) -> None:
        width = self._width()
        widgets = []
        for entry in entries:
            widget = entry.widget
            if widget is None:
                continue
            widgets.append(widget)
            if widget.is_mounted and widget.size.height > 0:
                entry.rows.measured = widget.virtual_region_with_margin.height
                entry.rows.measured_width = width
            if not entry.live:
                entry.widget = None
        if widgets:
            await self.remove_children(widgets)
