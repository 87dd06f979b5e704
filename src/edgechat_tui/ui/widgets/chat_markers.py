"""The chat pane's furniture: the rows reserved for messages not mounted, the empty state, and the
line where the context sent to the model begins."""

from __future__ import annotations

from typing import Literal

from textual.content import Content
from textual.events import Click
from textual.widget import Widget
from textual.widgets import Static

__all__ = ["ContextMarker", "EmptyState", "PagingMarker", "Reserve"]


class Reserve(Widget):
    """Blank rows standing for the messages above (or below) the mounted window.

    They make the scrollbar's thumb as long, and as far down, as the view is in the whole
    conversation; scrolling into them mounts the messages they stand for.
    """

    DEFAULT_CSS = """
    Reserve { width: 1fr; height: 0; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows = 0

    def set_rows(self, rows: int) -> None:
        rows = max(0, int(rows))
        if rows != self.rows:
            self.rows = rows
            self.styles.height = rows


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


class ContextMarker(Static):
    """``── the model is sent the messages from here on (12 earlier ones are not) ──``."""

    DEFAULT_CSS = """
    ContextMarker {
        width: 1fr;
        height: 1;
        margin: 1 0 0 0;
        color: $text-warning;
        content-align: center middle;
        display: none;
    }
    ContextMarker.-shown { display: block; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.earlier = 0

    def show_earlier(self, earlier: int) -> None:
        """``earlier`` messages above the marker are no longer sent."""
        self.earlier = earlier
        noun = "message" if earlier == 1 else "messages"
        self.update(Content(f"── context starts here: the {earlier:,} {noun} above are no longer "
                            f"sent to the model ──"))


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
            arrow, where, key = (("▲", "up", "Ctrl+Home: the start") if self.direction == "earlier"
                                 else ("▼", "down", "Ctrl+End: the newest"))
            noun = "message" if count == 1 else "messages"
            self.update(Content(f"{arrow} {count:,} {self.direction} {noun}: "
                                f"scroll {where} or click to see them · {key}"))

    def show_loading(self) -> None:
        """Earlier messages exist, not counted yet (the early view, before the store has loaded)."""
        self.add_class("-shown")
        self.update(Content("▲ earlier messages: loading…"))

    async def _on_click(self, event: Click) -> None:
        event.stop()
        log = self.parent  # the chat pane (ChatLog)
        load = getattr(log, "load_earlier" if self.direction == "earlier" else "load_later", None)
        if load is not None:
            await load()
