"""The chat screen's copy and focus keys: Ctrl+C, moving through the messages, copying them.

Kept apart from the screen's module so the screen only binds the keys and hands over:

- **Ctrl+C** means one thing: copy the selection if there is one (the mouse's in the pane, or the
  input's own), else stop a streaming reply (as Esc), else the usual hint of how to quit;
- **Ctrl+Up** from the input moves the focus onto the last message; on a message
  Up/Down (k/j) move between messages, loading earlier or later ones the pane has not mounted;
  Down past the last message (or Esc) goes back to the input, and so does any other character
  typed there (it lands in the input);
- every copy goes through the screen's :class:`~edgechat_tui.ui.clipboard.Clipboard` and says in
  a notification how many characters went where.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Protocol

from textual.app import App
from textual.widget import Widget

from edgechat_tui.ui.widgets.chat_log import ChatLog
from edgechat_tui.ui.widgets.focusable import FocusableMessage
from edgechat_tui.ui.widgets.prompt import PromptArea

if TYPE_CHECKING:
    from edgechat_tui.ui.clipboard import Clipboard

__all__ = ["ChatKeysHost", "copy_to_clipboard", "ctrl_c", "focus_last_message", "move_focus"]


class ChatKeysHost(Protocol):
    """What these keys need of the chat screen."""

    clipboard: Clipboard

    @property
    def app(self) -> App[Any]: ...
    @property
    def chat_log(self) -> ChatLog: ...
    @property
    def prompt(self) -> PromptArea: ...
    @property
    def turn(self) -> object | None: ...
    @property
    def focused(self) -> Widget | None: ...

    def get_selected_text(self) -> str | None: ...
    def action_stop(self) -> None: ...
    def notify(self, message: str, **kwargs: Any) -> None: ...
    def run_worker(self, work: Awaitable[Any], **kwargs: Any) -> Any: ...


def copy_to_clipboard(screen: ChatKeysHost, text: str, what: str) -> None:
    """Copy ``text`` in the background (a clipboard tool is a process) and say how it went."""

    async def copy() -> None:
        result = await screen.clipboard.copy(text)
        worked = result.osc52 or (result.tool is not None and result.tool_error is None)
        screen.notify(result.notice(what), severity="information" if worked else "warning",
                      markup=False, timeout=5)

    screen.run_worker(copy(), group="clipboard", exit_on_error=False)


def ctrl_c(screen: ChatKeysHost) -> None:
    """Copy the selection; else stop the reply; else tell how to quit."""
    selected = screen.get_selected_text()
    if selected:
        copy_to_clipboard(screen, selected, "the selection")
        return
    prompt = screen.prompt
    if screen.focused is prompt and prompt.selected_text:
        copy_to_clipboard(screen, prompt.selected_text, "the selected input")
        return
    if screen.turn is not None:
        screen.action_stop()
        return
    screen.app.action_help_quit()


def _entry_index(log: ChatLog, widget: object) -> int | None:
    for index in range(*log.window):
        if log.entries[index].widget is widget:
            return index
    return None


def focused_message_id(screen: ChatKeysHost) -> str | None:
    """The id (in its conversation's tree) of the message that has the focus, if one has."""
    log = screen.chat_log
    index = _entry_index(log, screen.focused)
    return None if index is None else log.entries[index].message_id


def focus_last_message(screen: ChatKeysHost) -> bool:
    """Put the focus on the newest message of the pane (mounting the newest window if needed)."""
    log = screen.chat_log
    if not log.entries:
        screen.notify("No messages yet.", markup=False, timeout=3)
        return False

    async def focus() -> None:
        if log.window[1] < len(log.entries):
            await log.jump_to_end()
        widget = log.entries[-1].widget
        if isinstance(widget, FocusableMessage):
            widget.focus()

    screen.run_worker(focus(), group="message-focus", exclusive=True, exit_on_error=False)
    return True


async def move_focus(screen: ChatKeysHost, widget: object, step: int, typed: str = "") -> None:
    """From the focused message ``widget``, ``step`` messages on; 0 (or past the end): the input.

    ``typed`` (a character typed on the message) goes into the input, which takes the focus.
    """
    log = screen.chat_log
    if typed:
        screen.prompt.focus()
        screen.prompt.insert(typed)
        return
    index = _entry_index(log, widget)
    if step == 0 or index is None:
        if step == 0 and screen.turn is not None:
            screen.action_stop()  # Esc stops a reply wherever the focus is
            return
        screen.prompt.focus()
        return
    target = index + step
    if target < 0:
        screen.app.bell()
        return
    if target >= len(log.entries):
        screen.prompt.focus()
        return
    start, end = log.window
    if target < start:
        await log.load_earlier()
    elif target >= end:
        await log.load_later()
    found = log.entries[target].widget if target < len(log.entries) else None
    if isinstance(found, FocusableMessage) and found.is_mounted:
        found.focus()
