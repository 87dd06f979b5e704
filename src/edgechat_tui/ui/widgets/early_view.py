"""The chat pane's early view: the newest messages drawn in the first frame, then taken over.

A part of :class:`~edgechat_tui.ui.widgets.chat_log.ChatLog` (a mixin, for the pane's size): the
pane draws the tail read while Textual loaded (:mod:`edgechat_tui.ui.early`); when the store's view
comes and holds the same messages near its end, their widgets are kept as they are and only what is
newer is mounted after them, so nothing flickers or shows twice. When it does not hold them (the
file changed in between, a damaged file was repaired), the store's view replaces them in one update.

A conversation opened from the list is shown the same way (:meth:`EarlyView.show_early`): its newest
messages, read from the end of its file, while the whole of it is read in a thread. When the whole
comes, the view stays where it is: at the end if it was there, else on the message at its top.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any

from edgechat_tui.ui import render_cache
from edgechat_tui.ui.widgets.chat_entry import Entry

__all__ = ["EarlyView"]

if TYPE_CHECKING:
    from textual.widget import Widget

    from edgechat_tui.storage.tail import Tail

#: How many newer entries than the early view's may follow it in the store's view for its widgets
#: to be kept (warnings, turns another process added in between).
NEWER_AT_MOST = 16
_FENCE = re.compile(r"^ {0,3}(?:`{3,}|~{3,})[ \t]*([^\s`{]+)", re.MULTILINE)
#: Longer replies are not kept in the render cache (they render in steps, in a thread, anyway).
CACHED_CHARS = 16_000


def fewest_rows(entries: list[Any]) -> int:
    """The rows ``entries`` take at the fewest: a margin and a label each, a row per line of text."""
    return sum(3 + entry.text.count("\n") for entry in entries)


def fitting(entries: list[Any], rows: int, most: int = 16) -> int:
    """How many of the newest ``entries`` fill ``rows`` rows, at least (at most ``most``).

    Each is counted at its fewest rows (its margin, its label, one row per line of its text, no
    wrapping), so the count errs on the side of more entries: the screen is never left short.
    """
    used = count = 0
    for entry in reversed(entries):
        if count >= most or used >= rows:
            break
        used += 2 + entry.text.count("\n") + 1
        count += 1
    return max(count, 1)


class EarlyView:
    """The early view's part of the chat pane (mixed into ``ChatLog``, which provides the rest)."""

    _early: list[Any] | None
    _early_source: Any
    entries: list[Any]
    _start: int
    _end: int
    _empty_allowed: bool
    _later: Any
    _earlier: Any
    app: Any
    following: bool
    INITIAL_WINDOW: int
    _want_pages: Any
    _hold: Any
    _context_entry: Any
    _above: Any
    _below: Any
    drawn_path: Any
    show_vertical_scrollbar: Any
    _container_size: Any

    def arrange(self, size: Any) -> Any:
        """Lay out the pane's children in ``size`` (the pane's content area, less scrollbars).

        Textual scrolls an anchored pane to its end while it lays it out, against the pane's size
        of the last layout: none in the first one, so the first frame showed the pane scrolled past
        its end, empty, and the newest messages came a frame later. While the early view is shown
        and the pane has no size yet, its height is known here: the first frame shows them, as they
        stay (with the scrollbar they will have: ``_take_early``).
        """
        if self._early is not None and not self._container_size.height and size.height:
            self._container_size = type(size)(size.width, size.height)
        return super().arrange(size)  # type: ignore[misc]

    @property
    def early(self) -> bool:
        """True while the pane shows the early view (the store's has not come yet)."""
        return self._early is not None

    def _watch_early(self) -> None:
        """On mount: draw the tail when its read ends (if it has not yet), or forget it."""
        source = self._early_source
        if source is not None:
            if source.done:
                self._early_source = None  # read, and nothing to show early
            else:
                app = self.app  # taken here: the reading thread has no active app
                source.when_done(lambda tail: self._early_read(app, tail))
        if self._early is not None:
            self._update_markers()

    def _take_early(self, tail: Tail) -> list[Widget]:
        """The widgets of the early view of ``tail`` (the newest window of its messages)."""
        self._early_source = None
        entries = [Entry.from_message(m) for m in tail.messages if m.role != "system"]
        # Only what fills the screen: each message costs its widgets and its Markdown before the
        # first frame. The store's view mounts the rest of the window above, out of sight.
        shown = entries[-fitting(entries, self.app.size.height, self.INITIAL_WINDOW):] if entries else []
        self._early = shown
        self.entries = list(shown)
        self._start, self._end = 0, len(shown)
        self._early_more = not tail.whole or len(entries) > len(shown)
        self._empty_allowed = tail.whole
        # Replies as last drawn (the render cache): no Markdown renderer before the first frame.
        cache = render_cache.load(self.drawn_path) if self.drawn_path is not None and shown else {}
        #: What the cache held at start, (text, styles, widths) each: not drawn again at quit.
        self._drawn_kept = {(d.text, d.styles, tuple(sorted(d.lines))) for d in cache.values()}
        for entry in shown:
            if entry.kind == "assistant" and cache:
                entry.drawn = cache.get(render_cache.drawn_text(entry.text))
        widgets = [self._widget_for(entry) for entry in shown]
        for entry in shown:
            entry.drawn = None  # for the first widget only: a later one is a ReplyMarkdown
        if fewest_rows(shown) >= self.app.size.height:
            # Taller than the whole screen, so taller than the pane: its scrollbar is certain. Shown
            # from the first layout, the replies are laid out at the width they keep (see arrange).
            self.show_vertical_scrollbar = True
        return widgets

    def save_drawn(self) -> None:
        """Keep the newest replies' lines in the render cache, for the next start's first frame
        (when the app quits). Best effort: a cache that cannot be written is only not there."""
        path = self.drawn_path
        if path is None:
            return
        try:
            from edgechat_tui.ui.widgets.early_reply import styles_key
            from edgechat_tui.ui.widgets.messages import AssistantMessage
            from edgechat_tui.ui.widgets.reply import ReplyMarkdown
            from edgechat_tui.ui.widgets.reply_render import cache_record

            records, wanted = [], []
            # The replies the next start's early view will show: those that fill the screen.
            newest = self.entries[self._start:self._end]
            newest = newest[-fitting(newest, self.app.size.height, self.INITIAL_WINDOW):] if newest else []
            # Its first layout may come with the scrollbar or without: a cell narrower or wider.
            other = 1 if self.show_vertical_scrollbar else -1
            for entry in newest:
                widget = entry.widget
                if (entry.kind != "assistant" or entry.live or not isinstance(widget, AssistantMessage)
                        or not isinstance(widget.body, ReplyMarkdown)):
                    continue
                body = widget.body
                width = body.content_size.width
                if (not body.is_mounted or not body.final or body.failure is not None or width <= 1
                        or len(body.markdown) > CACHED_CHARS):
                    continue
                widths = sorted({width, width + other} - {0})
                wanted.append((body, widths, styles_key(body)))
            kept = getattr(self, "_drawn_kept", set())
            if all((render_cache.drawn_text(body.markdown), styles, tuple(widths)) in kept
                   for body, widths, styles in wanted):
                return  # the cache holds these already (opened, read, quit): nothing to draw
            records = [cache_record(body.markdown, widths, body, styles) for body, widths, styles in wanted]
            if records:
                render_cache.write(path, records)
        except Exception as error:  # never in the way of quitting
            self.app.log.warning("render cache not written", repr(error))

    async def upgrade_early_replies(self) -> None:
        """The replies drawn from the render cache take their ``ReplyMarkdown`` (once the renderer and
        the lexers have loaded: their lines then are the same)."""
        from edgechat_tui.ui.markdown import lexers
        from edgechat_tui.ui.widgets.early_reply import EarlyReply
        from edgechat_tui.ui.widgets.messages import AssistantMessage

        mounted = [entry.widget for entry in self.entries[self._start:self._end]]
        replies = [widget for widget in mounted
                   if isinstance(widget, AssistantMessage) and isinstance(widget.body, EarlyReply)]
        # The languages of their code blocks: loaded first, or a reply would show its code uncoloured
        # for a moment (a lexer loads in a thread).
        languages = {match.group(1) for reply in replies for match in _FENCE.finditer(reply.body.markdown)}
        await asyncio.to_thread(lexers.preload, tuple(sorted(languages)))
        for reply in replies:
            await reply.upgrade()

    def _early_read(self, app: Any, tail: Tail | None) -> None:
        """In the reading thread: the tail was read after the pane was composed."""
        try:
            app.call_from_thread(self._show_early, tail)
        except Exception:
            pass  # the app has ended (or is ending): nothing to draw; never a trace on the terminal

    async def _show_early(self, tail: Tail | None) -> None:
        if tail is None or self._early_source is None:  # nothing, or the store's view came first
            self._early_source = None
            return
        widgets = self._take_early(tail)
        with self.app.batch_update():
            if widgets:
                await self.mount_all(widgets, before=self._later)
            self._update_markers()
        self.anchor()

    async def show_early(self, entries: list[Entry]) -> None:
        """Show ``entries``, the newest of a conversation (not the whole), until
        :meth:`~edgechat_tui.ui.widgets.chat_log.ChatLog.show_conversation` brings the whole of it:
        it keeps these widgets where it holds the same messages at its end."""
        self._early_source = None  # the start-up's tail, if still being read, is not shown now
        self._hold = None
        self._context_entry = None
        await self._unmount(self.entries[self._start:self._end])
        # Only what fills the screen (each costs its widgets and its Markdown before it is drawn).
        shown = entries[-fitting(entries, self.app.size.height, len(entries)):] if entries else []
        self.entries = list(shown)
        self._early = list(shown)
        self._start, self._end = 0, len(shown)
        self._early_more = True
        self._empty_allowed = False
        self._above.set_rows(0)
        self._below.set_rows(0)
        widgets = [self._widget_for(entry) for entry in shown]
        with self.app.batch_update():
            if widgets:
                await self.mount_all(widgets, before=self._later)
            self._update_markers()
        self.anchor()

    def _early_at(self, entries: list[Any], early: list[Any]) -> int | None:
        """Where the early view's entries sit in ``entries`` (the latest such place), if anywhere
        near the end: at most a window of newer entries may follow (warnings, others' turns)."""
        k = len(early)
        if k == 0:
            return None
        last = len(entries) - k
        for at in range(last, max(-1, last - NEWER_AT_MOST - 1), -1):
            if all(a.same_as(b) for a, b in zip(entries[at:at + k], early, strict=True)):
                return at
        return None

    async def _adopt_early(self, entries: list[Any], at: int, early: list[Any], window: int) -> None:
        """The store's view holds the early view's entries at ``at``: keep their widgets, and the view
        where it is (``window``: how many of the newest entries are mounted at once, at least)."""
        following = self.following
        hold = None if following else self._current_hold()
        # Anything else the pane showed meanwhile (a command's notice) goes, as a replaced view's would.
        kept = {id(entry) for entry in early}
        await self._unmount([e for e in self.entries[self._start:self._end] if id(e) not in kept])
        for entry, shown in zip(entries[at:at + len(early)], early, strict=True):
            entry.widget = shown.widget
            if hold is not None and hold.entry is shown:
                hold.entry = entry  # the view is held on the whole's entry, with the same widget
        self.entries = entries
        self._start, self._end = at, at + len(early)
        self._empty_allowed = True
        newer = [self._widget_for(entry) for entry in entries[self._end:]]
        # The rest of the first window, above what is on screen (the view follows the end).
        self._start = max(0, min(at, len(entries) - window))
        older = [self._widget_for(entry) for entry in entries[self._start:at]]
        with self.app.batch_update():
            if older:
                await self.mount_all(older, after=self._earlier)
            if newer:
                await self.mount_all(newer, before=self._later)
            self._end = len(entries)
            await self._trim_top()
            self._update_markers()
        if hold is None:
            self.anchor()
            self._want_pages()  # earlier pages, while the window is too short to scroll
            return
        # Scrolled up from the end: the rows above the early view grew from none to the whole
        # conversation's; the message at the top of the view is held where it was.
        self._follow_end(False)
        self._hold = hold
        await self._pin()
        self._want_pages(force=True)
