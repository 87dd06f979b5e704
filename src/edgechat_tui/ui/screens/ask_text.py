"""A one-line text question in a dialog (renaming a conversation from the list)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, Static

__all__ = ["AskTextScreen"]


class AskTextScreen(ModalScreen["str | None"]):
    """Asks ``question`` with ``value`` filled in; dismisses with the text (Enter) or None (Esc).

    An empty answer is refused in place (the dialog stays, with the reason under the field).
    """

    DEFAULT_CSS = """
    AskTextScreen { align: center middle; }
    AskTextScreen > Vertical {
        width: 64;
        height: auto;
        padding: 1 2;
        border: thick $accent 80%;
        background: $surface;
    }
    AskTextScreen #ask-note { color: $text-muted; height: auto; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, value: str = "") -> None:
        super().__init__()
        self.question = question
        self.field = Input(value=value, id="ask-input")
        self.note = Static(Content("Enter saves · Esc cancels"), id="ask-note")

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Content(self.question))
            yield self.field
            yield self.note

    def on_mount(self) -> None:
        self.field.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if not text:
            self.note.update(Content("The title cannot be empty (Esc cancels)."))
            return
        self.dismiss(text)

    def action_cancel(self) -> None:
        self.dismiss(None)
