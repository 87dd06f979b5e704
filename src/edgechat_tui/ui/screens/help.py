"""``/help`` (or F1): the commands and the keys, on one screen."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from edgechat_tui.ui.commands.registry import SLASH_COMMANDS

KEYS: tuple[tuple[str, str], ...] = (
    ("Enter", "send the message (or run the command)"),
    ("Ctrl+J", "new line (Shift+Enter or Alt+Enter where the terminal tells them apart)"),
    ("Up / Down", "in an empty input: earlier messages you sent"),
    ("Tab", "complete a /command"),
    ("Esc", "stop the reply or the retry countdown (what arrived is kept, marked stopped)"),
    ("Ctrl+R", "send a message that failed again"),
    ("PgUp / PgDn", "scroll the conversation; earlier messages load at the top"),
    ("Ctrl+End", "back to the newest message"),
    ("Ctrl+P", "command palette: every action, and the colour themes"),
    ("F1", "this help"),
    ("Ctrl+Q", "quit"),
)


def help_text() -> Content:
    """The help as styled plain text (shared with the tests)."""
    width = max(len(command.usage) for command in SLASH_COMMANDS)
    key_width = max(len(key) for key, _ in KEYS)
    parts: list[str | tuple[str, str]] = [("Commands", "bold $text-accent"), "\n"]
    for command in SLASH_COMMANDS:
        parts += [(f"  {command.usage.ljust(width)}", "bold"), f"   {command.summary}\n"]
    parts += [(f"  {'//text'.ljust(width)}", "bold"), "   sends a message that begins with /\n\n"]
    parts += [("Keys", "bold $text-accent"), "\n"]
    for key, what in KEYS:
        parts += [(f"  {key.ljust(key_width)}", "bold"), f"   {what}\n"]
    parts += ["\n", ("Replies are Markdown. Links do not open on click. Esc, Enter or F1 closes this.",
                     "$text-muted")]
    return Content.assemble(*parts)


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
    HelpScreen Static { width: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,enter,f1,q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = "edgechat help"
            yield Static(help_text())
