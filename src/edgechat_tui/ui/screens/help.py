"""``/help`` (or F1): the commands and the keys, on one screen.

Each entry is a row of two cells, the command (or key) and what it does, so a description that
wraps at a narrow width keeps its indent (a hanging indent) instead of starting under the command.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from edgechat_tui.ui.commands.registry import SLASH_COMMANDS

__all__ = ["KEYS", "HelpScreen", "help_rows"]

KEYS: tuple[tuple[str, str], ...] = (
    ("Enter", "send the message (or run the command)"),
    ("Ctrl+J", "new line (Shift+Enter or Alt+Enter where the terminal tells them apart)"),
    ("Up / Down", "in an empty input: earlier messages you sent"),
    ("Tab", "complete a /command"),
    ("Esc", "stop the reply or the retry countdown (what arrived is kept, marked stopped)"),
    ("Ctrl+R", "send a message that failed again"),
    ("Ctrl+B", "the conversation list: Enter opens, r renames, a archives, u restores, d deletes, "
               "v shows the archive, then the trash"),
    ("Ctrl+G", "a new version of the last reply (/regen)"),
    ("Alt+← / Alt+→", "the previous / next version of the focused message (else the newest marked ‹2/3›)"),
    ("F2", "after the API refused the credentials: the setup screen (as /setup)"),
    ("PgUp / PgDn", "a screen up / down the conversation (every press counts)"),
    ("Ctrl+Home", "the first message of the conversation (Home on a message)"),
    ("Ctrl+End", "back to the newest message (End on a message)"),
    ("Ctrl+C", "copy the selection (drag over any text); else stop the reply"),
    ("Ctrl+Up", "onto the messages: ↑/↓ k/j move, c copies, b copies code, Esc back"),
    ("click", "on a code block's language label: copy the block"),
    ("Ctrl+P", "command palette: every action, and the colour themes"),
    ("F1", "this help"),
    ("Ctrl+Q", "quit"),
)
FOOTNOTE = "Replies are Markdown. Links do not open on click. Esc, Enter or F1 closes this."


def help_rows() -> list[tuple[str, list[tuple[str, str]]]]:
    """The help's sections: (title, [(command or key, what it does)]) (shared with the tests)."""
    commands = [(command.usage, command.summary) for command in SLASH_COMMANDS]
    commands.append(("//text", "sends a message that begins with /"))
    return [("Commands", commands), ("Keys", list(KEYS))]


#: The name column's width: a longer name (``/chats [archived|trash]``) wraps within it, so that the
#: descriptions keep their room on a narrow terminal.
NAME_CELLS = 16


class HelpRow(Horizontal):
    """One entry: the name in a fixed-width cell, what it does in the rest (wrapping under itself)."""

    DEFAULT_CSS = """
    HelpRow { height: auto; width: 1fr; }
    HelpRow > .name { width: auto; padding: 0 3 0 2; text-style: bold; }
    HelpRow > .what { width: 1fr; }
    """

    def __init__(self, name: str, what: str, name_width: int) -> None:
        super().__init__()
        self._name = name
        self._what = what
        self._name_width = name_width

    def compose(self) -> ComposeResult:
        name = Static(Content(self._name), classes="name")
        name.styles.width = self._name_width + 5  # the padding's 2 + 3: a longer name wraps in its cell
        yield name
        yield Static(Content(self._what), classes="what")


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 96;
        max-width: 100%;
        height: auto;
        max-height: 90%;
        padding: 1 2;
        border: thick $accent 80%;
        background: $surface;
    }
    HelpScreen .section { width: 1fr; text-style: bold; color: $text-accent; }
    HelpScreen .gap { height: 1; }
    HelpScreen .footnote { width: 1fr; color: $text-muted; margin-top: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,enter,f1,q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        sections = help_rows()
        width = min(max(len(name) for _, rows in sections for name, _ in rows), NAME_CELLS)
        with VerticalScroll() as scroll:
            scroll.border_title = "edgechat help"
            for index, (title, rows) in enumerate(sections):
                if index:
                    yield Static("", classes="gap")
                yield Static(Content(title), classes="section")
                for name, what in rows:
                    yield HelpRow(name, what, width)
            yield Static(Content(FOOTNOTE), classes="footnote")
