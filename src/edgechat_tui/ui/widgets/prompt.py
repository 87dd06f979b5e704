"""The input box: multi-line, Enter sends, Ctrl+J adds a line, Up/Down recall, slash completion.

Shift+Enter looks the same as Enter in most terminals, so the new-line key that works everywhere is
Ctrl+J (a terminal sends it as a line feed); Shift+Enter and Alt+Enter work where the terminal tells
them apart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Protocol

from textual import events
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Static, TextArea

from edgechat_tui.core.sanitize import sanitize

PLACEHOLDER = "Message edgechat…  Enter sends · Ctrl+J new line · /help for commands"
MAX_SUGGESTIONS = 8


class Suggestion(Protocol):
    """A completion as the list shows it (the command registry's ``Suggestion`` is one)."""

    @property
    def label(self) -> str: ...
    @property
    def replacement(self) -> str: ...
    @property
    def summary(self) -> str: ...
    @property
    def complete(self) -> bool: ...


class CommandSuggestions(Static):
    """The completion list shown above the input while a slash command is typed."""

    DEFAULT_CSS = """
    CommandSuggestions {
        height: auto;
        max-height: 10;
        padding: 0 1;
        background: $panel;
        display: none;
    }
    CommandSuggestions.-open { display: block; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.items: list[Suggestion] = []
        self.highlighted = 0

    @property
    def is_open(self) -> bool:
        return bool(self.items)

    @property
    def current(self) -> Suggestion | None:
        return self.items[self.highlighted] if self.items else None

    def show(self, items: list[Suggestion]) -> None:
        items = items[:MAX_SUGGESTIONS]
        if items == self.items:
            return  # most keys typed change nothing here: no repaint, no new layout
        keep = self.current.replacement if self.current else None
        self.items = items
        replacements = [item.replacement for item in self.items]
        self.highlighted = replacements.index(keep) if keep in replacements else 0
        self.set_class(bool(self.items), "-open")
        self._render_items()

    def close(self) -> None:
        self.show([])

    def move(self, step: int) -> None:
        if self.items:
            self.highlighted = (self.highlighted + step) % len(self.items)
            self._render_items()

    def _render_items(self) -> None:
        width = max((len(item.label) for item in self.items), default=0)
        lines: list[Content] = []
        for index, item in enumerate(self.items):
            style = "bold $text-accent on $boost" if index == self.highlighted else ""
            line = Content.assemble((item.label.ljust(width), style), ("   " + item.summary, "$text-muted"))
            lines.append(line)
        self.update(Content("\n").join(lines))

    async def _on_click(self, event: events.Click) -> None:
        index = event.y
        if 0 <= index < len(self.items):
            self.highlighted = index
            prompt = self.screen.query_one(PromptArea)
            prompt.accept_suggestion(submit=True)


class PromptArea(TextArea):
    """The message input. Posts :class:`PromptArea.Submitted` on Enter."""

    DEFAULT_CSS = """
    PromptArea {
        height: auto;
        min-height: 3;
        max-height: 12;
        border: tall $border-blurred;
        padding: 0 1;
        background: $surface;
    }
    PromptArea:focus { border: tall $border; }
    PromptArea.-refused { border: tall $warning; border-subtitle-color: $text-warning; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+j", "newline", "New line", key_display="^j"),
        Binding("shift+enter,alt+enter", "newline", "New line", show=False),
    ]

    class Submitted(Message):
        """Enter was pressed: ``text`` is what the box held. The box is emptied at once, so keys typed
        before the screen handles this message start a new text; a screen that cannot use ``text``
        gives it back with :meth:`PromptArea.restore`."""

        def __init__(self, prompt: PromptArea, text: str) -> None:
            super().__init__()
            self.prompt = prompt
            self.text = text

        @property
        def control(self) -> PromptArea:
            return self.prompt

    def __init__(
        self,
        *,
        id: str | None = None,
        suggestions: CommandSuggestions | None = None,
        completer: Callable[[str], list[Suggestion]] | None = None,
    ) -> None:
        super().__init__(
            soft_wrap=True,
            tab_behavior="focus",
            show_line_numbers=False,
            highlight_cursor_line=False,
            placeholder=PLACEHOLDER,
            id=id,
        )
        self.suggestions = suggestions
        self.completer = completer
        #: Messages the user sent, oldest first, for Up/Down recall.
        self.recall_list: list[str] = []
        self._recall_index: int | None = None
        self._recalled = ""
        self._refusal_timer: Timer | None = None

    # --- keys ---------------------------------------------------------------------------------

    async def _on_key(self, event: events.Key) -> None:
        # Runs before TextArea's own handler; prevent_default() keeps that one from running.
        key = event.key
        handled = self._key_for_suggestions(key) or self._key_for_recall(key)
        if not handled and key == "enter":
            self.submit()
            handled = True
        if handled:
            event.stop()
            event.prevent_default()

    def _key_for_suggestions(self, key: str) -> bool:
        suggestions = self.suggestions
        if suggestions is None or self.completer is None:
            return False
        if key in ("up", "down", "tab", "enter"):
            # The list follows the text through Changed messages, which queue behind keys typed
            # (or pasted) quickly: bring it up to date before acting on it.
            suggestions.show(self.completer(self.text))
        if not suggestions.is_open:
            return False
        if key in ("up", "down"):
            suggestions.move(-1 if key == "up" else 1)
            return True
        if key == "tab":
            self.accept_suggestion(submit=False)
            return True
        if key == "escape":
            suggestions.close()
            return True
        current = suggestions.current
        if key == "enter" and current is not None and current.replacement.rstrip() != self.text.strip():
            # Enter on a half-typed name takes the highlighted completion (and runs it when complete).
            self.accept_suggestion(submit=True)
            return True
        return False

    def accept_suggestion(self, *, submit: bool) -> None:
        suggestions = self.suggestions
        current = suggestions.current if suggestions else None
        if current is None:
            return
        self.set_text(current.replacement)
        if submit and current.complete:
            self.submit()

    def _key_for_recall(self, key: str) -> bool:
        row, _ = self.cursor_location
        recalling = self._recall_index is not None and self.text == self._recalled
        if key == "up" and (self.text == "" or recalling) and row == 0:
            return self._recall(-1)
        if key == "down" and recalling and row == self.document.line_count - 1:
            return self._recall(+1)
        return False

    def _recall(self, step: int) -> bool:
        if not self.recall_list:
            return False
        index = len(self.recall_list) if self._recall_index is None else self._recall_index
        index += step
        if index < 0:
            return True  # already at the oldest: stay
        if index >= len(self.recall_list):
            self._recall_index = None
            self._recalled = ""
            self.set_text("")
            return True
        self._recall_index = index
        self._recalled = self.recall_list[index]
        self.set_text(self._recalled)
        return True

    async def _on_paste(self, event: events.Paste) -> None:
        # Pasted text may come from anywhere (a web page, a log): the box never shows its escape
        # sequences or control characters. Runs instead of TextArea's own paste handler.
        event.prevent_default()
        if self.read_only:
            return
        text = sanitize(event.text.replace("\r\n", "\n").replace("\r", "\n"))
        if result := self.replace(text, *self.selection):
            self.move_cursor(result.end_location)
        self.focus()

    def action_newline(self) -> None:
        self.insert("\n")

    # --- text ---------------------------------------------------------------------------------

    def submit(self) -> None:
        """Hand the text to the screen and empty the box in the same step (see :class:`Submitted`)."""
        text = self.text
        if text.strip():
            self._recall_index = None
            self.clear()
        self.post_message(self.Submitted(self, text))

    def restore(self, text: str) -> None:
        """Give back a submitted ``text`` the screen could not use, before anything typed since."""
        if not text.strip() or self.text == text:
            return
        self.set_text(text if not self.text else text.rstrip("\n") + "\n" + self.text)

    def set_text(self, text: str) -> None:
        """Replace the text and put the cursor at its end."""
        self.load_text(text)
        self.move_cursor(self.document.end)

    def show_refusal(self, reason: str, seconds: float = 5.0) -> None:
        """Say under the box why Enter did nothing (the text stays for the user to send later)."""
        self.add_class("-refused")
        self.border_subtitle = Content(reason)
        if self._refusal_timer is not None:
            self._refusal_timer.stop()
        self._refusal_timer = self.set_timer(seconds, self.clear_refusal)

    def clear_refusal(self) -> None:
        if self._refusal_timer is not None:
            self._refusal_timer.stop()
            self._refusal_timer = None
        self.remove_class("-refused")
        self.border_subtitle = None

    def close_suggestions(self) -> None:
        if self.suggestions is not None:
            self.suggestions.close()

    def remember(self, text: str) -> None:
        """Add a sent message to the recall list."""
        if text.strip() and (not self.recall_list or self.recall_list[-1] != text):
            self.recall_list.append(text)
        self._recall_index = None
        self._recalled = ""

    def _on_text_area_changed(self, event: TextArea.Changed) -> None:
        if self.suggestions is not None and self.completer is not None:
            self.suggestions.show(self.completer(self.text))
