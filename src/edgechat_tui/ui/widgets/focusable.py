"""Messages in the pane take focus: keys to move between them and to copy one (or its code).

A message widget mixes in :class:`FocusableMessage`. It asks, with messages that bubble up to the
screen, for what only the screen can do: move the focus to another message (the pane mounts a
window of the conversation, so the next one may need mounting first), or put text on the
clipboard (:class:`CopyRequest`). A click does not focus a message, so clicking or dragging in the
pane to select text leaves the focus where it was (usually the input).
"""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.events import Key
from textual.message import Message
from textual.widget import Widget

__all__ = ["MESSAGE_BINDINGS", "CopyRequest", "FocusableMessage", "MoveFocus"]


class CopyRequest(Message):
    """Put ``text`` on the clipboard; ``what`` names it in the notice ("the reply", "code block 2 of 3")."""

    def __init__(self, text: str, what: str) -> None:
        super().__init__()
        self.text = text
        self.what = what


class MoveFocus(Message):
    """Move the focus from ``widget`` to the message ``step`` away (-1 earlier, +1 later), or back
    to the input when ``step`` is 0; ``typed``: a character typed on the message, for the input."""

    def __init__(self, widget: Widget, step: int, typed: str = "") -> None:
        super().__init__()
        self.widget = widget
        self.step = step
        self.typed = typed


MESSAGE_BINDINGS: list[BindingType] = [
    Binding("up,k", "move(-1)", "Earlier", key_display="↑/k"),
    Binding("down,j", "move(1)", "Later", key_display="↓/j"),
    Binding("c", "copy_message", "Copy"),
    Binding("escape", "leave", "Input", show=False),
]
"""The keys of a focused message. Each message class sets ``BINDINGS`` from these (``Static``
does not pass its bases' bindings on) and ``can_focus = True``."""


class FocusableMessage(Widget):
    """A message of the pane that can take focus; subclasses say what :meth:`copy_text` gives.

    List it after the widget class (``class UserMessage(Static, FocusableMessage)``): Textual takes
    CSS from the first base only, and bindings from every base.
    """

    can_focus = True
    BINDINGS: ClassVar[list[BindingType]] = MESSAGE_BINDINGS

    def on_key(self, event: Key) -> None:
        """A character that is none of the message's keys goes to the input, which takes the focus:
        typing is never lost on a focused message."""
        if event.is_printable and event.character and event.key not in self._bindings.key_to_bindings:
            event.stop()
            event.prevent_default()
            self.post_message(MoveFocus(self, 0, typed=event.character))

    def focus_on_click(self) -> bool:
        return False  # selecting text with the mouse must not take the focus from the input

    def copy_text(self) -> tuple[str, str]:
        """What the copy key copies, and how the notice names it."""
        raise NotImplementedError

    def action_move(self, step: int) -> None:
        self.post_message(MoveFocus(self, step))

    def action_leave(self) -> None:
        self.post_message(MoveFocus(self, 0))

    def action_copy_message(self) -> None:
        text, what = self.copy_text()
        self.post_message(CopyRequest(text, what))
