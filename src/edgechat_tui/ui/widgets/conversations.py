"""The conversation list: a side panel (Ctrl+B, or ``/chats``) of the profile's conversations.

Each row shows a conversation's title, its last activity and its message count; the open one is
marked ``●``. The panel shows one of three views: the active conversations, the archived ones, or
the trash (``v`` goes from one to the next). Its keys ask the screen to act with
:class:`ConversationPanel.Chosen` (open, rename, archive, restore, delete): the panel only shows
and asks, the screen's library does the work.

Every title came from a file or a server: untrusted, sanitised, and drawn as ``Content``.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from edgechat_tui.core.conversations import ConversationSummary
from edgechat_tui.core.sanitize import sanitize

__all__ = ["VIEWS", "ConversationPanel", "ConversationRows", "View", "activity_text", "row_content"]

View = Literal["active", "archived", "trash"]
VIEWS: tuple[View, ...] = ("active", "archived", "trash")
_HEADINGS = {"active": "Conversations", "archived": "Archived conversations", "trash": "Trash"}
_EMPTY = {"active": "No conversations yet: the first message starts one.",
          "archived": "Nothing archived.", "trash": "The trash is empty."}
TITLE_WIDTH = 30


def activity_text(iso: str) -> str:
    """``2025-01-01 10:00`` (local time) from an ISO 8601 time; the text itself if it is not one."""
    try:
        when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return sanitize(iso)[:16]
    if when.tzinfo is not None:
        when = when.astimezone()
    return when.strftime("%Y-%m-%d %H:%M")


def clean_title(title: str, *, width: int = TITLE_WIDTH) -> str:
    text = " ".join(sanitize(title).split()) or "(untitled)"
    return text if len(text) <= width else text[: width - 1] + "…"


def row_content(summary: ConversationSummary, *, current: bool) -> Content:
    """One row: ``● title`` and, under it, the last activity and the message count."""
    mark = ("● ", "bold $text-success") if current else ("  ", "")
    count = summary.message_count
    noun = "message" if count == 1 else "messages"
    detail = f"{activity_text(summary.updated)} · {count:,} {noun}"
    if summary.purge_at:
        detail += f" · until {activity_text(summary.purge_at)[:10]}"
    return Content.assemble(mark, (clean_title(summary.title), "bold" if current else ""), "\n",
                            ("  " + detail, "$text-muted"))


class ConversationRows(OptionList):
    """The rows; the panel's keys are bound here, so the footer shows them while the list has focus."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "ask('rename')", "Rename"),
        Binding("a", "ask('archive')", "Archive"),
        Binding("u", "ask('restore')", "Restore"),
        Binding("d,delete", "ask('delete')", "Delete"),
        Binding("v", "next_view", "Archived/trash"),
        Binding("escape", "close", "Close"),
    ]

    def action_ask(self, action: str) -> None:
        panel = self.parent
        if isinstance(panel, ConversationPanel):
            panel.ask(action)

    def action_next_view(self) -> None:
        panel = self.parent
        if isinstance(panel, ConversationPanel):
            panel.next_view()

    def action_close(self) -> None:
        panel = self.parent
        if isinstance(panel, ConversationPanel):
            panel.post_message(ConversationPanel.Chosen(panel, "close", None))


class ConversationPanel(Vertical):
    """The side panel. Hidden until :meth:`open`; the screen fills it with :meth:`show_list`."""

    DEFAULT_CSS = """
    ConversationPanel {
        width: 38;
        height: 1fr;
        background: $panel;
        border-right: tall $border-blurred;
        display: none;
    }
    ConversationPanel.-open { display: block; }
    ConversationPanel:focus-within { border-right: tall $border; }
    ConversationPanel #library-heading { height: 1; padding: 0 1; color: $text-accent; text-style: bold; }
    ConversationPanel #library-note { height: auto; padding: 0 1; color: $text-muted; }
    ConversationPanel OptionList, ConversationPanel OptionList:focus {
        height: 1fr; border: none; background: $panel; padding: 0;
    }
    """

    class Chosen(Message):
        """A key in the panel: ``action`` (open, rename, archive, restore, delete, close, view) on
        ``summary`` (None for close and view)."""

        def __init__(self, panel: ConversationPanel, action: str,
                     summary: ConversationSummary | None) -> None:
            super().__init__()
            self.panel = panel
            self.action = action
            self.summary = summary

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.view: View = "active"
        self.summaries: list[ConversationSummary] = []
        self.current_id: str | None = None
        self._heading = Static(id="library-heading")
        self._note = Static(id="library-note")
        self.rows = ConversationRows(id="library-rows")
        #: Set once a list has been shown (tests wait on it).
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield self._heading
        yield self.rows
        yield self._note

    @property
    def is_open(self) -> bool:
        return self.has_class("-open")

    def open(self) -> None:
        self.add_class("-open")
        self.rows.focus()

    def close(self) -> None:
        self.remove_class("-open")

    def show_list(self, summaries: list[ConversationSummary], *, view: View, current_id: str | None,
                  note: str = "") -> None:
        """Show ``summaries`` (newest first) as the ``view``; the highlight stays on the same id."""
        keep = self.highlighted.id if self.highlighted is not None else current_id
        self.view, self.summaries, self.current_id = view, list(summaries), current_id
        count = len(self.summaries)
        self._heading.update(Content(f"{_HEADINGS[view]} ({count:,})"))
        self.rows.clear_options()
        self.rows.add_options([Option(row_content(s, current=s.id == current_id), id=s.id)
                               for s in self.summaries])
        ids = [s.id for s in self.summaries]
        if ids:
            self.rows.highlighted = ids.index(keep) if keep in ids else 0
        self._note.update(Content(note or (_EMPTY[view] if not ids else self._keys_note())))
        self.loaded = True

    def _keys_note(self) -> str:
        if self.view == "active":
            return "Enter opens · r rename · a archive · d delete · v archived"
        if self.view == "archived":
            return "Enter opens (read only) · u restore · d delete · v trash"
        return "u restores · d deletes for good · v back to the list"

    @property
    def highlighted(self) -> ConversationSummary | None:
        index = self.rows.highlighted
        if index is None or not 0 <= index < len(self.summaries):
            return None
        return self.summaries[index]

    def ask(self, action: str) -> None:
        summary = self.highlighted
        if summary is not None:
            self.post_message(self.Chosen(self, action, summary))

    def next_view(self) -> None:
        self.view = VIEWS[(VIEWS.index(self.view) + 1) % len(VIEWS)]
        self.post_message(self.Chosen(self, "view", None))

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        summary = next((s for s in self.summaries if s.id == event.option.id), None)
        if summary is not None:
            self.post_message(self.Chosen(self, "highlight", summary))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        summary = next((s for s in self.summaries if s.id == event.option.id), None)
        if summary is not None:
            self.post_message(self.Chosen(self, "open", summary))
