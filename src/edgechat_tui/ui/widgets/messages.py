"""The widgets of the chat pane: a user's message, a reply, an error, a notice.

Every piece of text here is untrusted or typed by the user, so none of it goes through a markup
parser: labels are ``Content`` built from plain strings, message bodies are sanitised first, and
replies are rendered by :class:`~edgechat_tui.ui.widgets.reply.ReplyMarkdown` (which sanitises too).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Static

from edgechat_tui.core.sanitize import sanitize

if TYPE_CHECKING:
    from edgechat_tui.ui.widgets.reply import ReplyMarkdown


class UserMessage(Static):
    """What the user sent, under their name."""

    DEFAULT_CSS = """
    UserMessage {
        margin: 1 0 0 0;
        padding: 0 1;
        border-left: outer $primary;
        background: $boost;
    }
    """

    def __init__(self, text: str, user: str) -> None:
        self.text = text
        super().__init__(Content.assemble((user, "bold $text-primary"), "\n", sanitize(text)))


class ReplyLabel(Static):
    """The line above a reply: who answered, and whether the reply is waiting, stopped or complete."""

    DEFAULT_CSS = """
    ReplyLabel { height: 1; color: $text-muted; }
    """


class AssistantMessage(Vertical):
    """A reply: a label and the Markdown body. A live one is fed with :meth:`append`."""

    DEFAULT_CSS = """
    AssistantMessage {
        height: auto;
        margin: 1 0 0 0;
        padding: 0 1;
        border-left: outer $success;
    }
    AssistantMessage.-stopped { border-left: outer $warning; }
    AssistantMessage > ReplyMarkdown { height: auto; }
    """

    def __init__(self, text: str = "", *, model: str | None = None, stopped: bool = False,
                 live: bool = False) -> None:
        super().__init__()
        from edgechat_tui.ui.widgets.reply import ReplyMarkdown  # Markdown is not needed for the first frame

        self.model = model
        self.stopped = stopped
        self.cut_off = False
        self.live = live
        self._note = "waiting for the reply…" if live else ""
        self.label = ReplyLabel(self._label())
        self.body: ReplyMarkdown = ReplyMarkdown(text, final=not live)
        if stopped:
            self.add_class("-stopped")

    def compose(self) -> ComposeResult:
        yield self.label
        yield self.body

    @property
    def text(self) -> str:
        """The reply so far, sanitised."""
        return self.body.markdown

    def append(self, text: str) -> None:
        if self._note:
            self.set_note("")
        self.body.append(text)

    def finish(self, *, stopped: bool = False, cut_off: bool = False) -> None:
        """The reply is complete, stopped, or cut off (the connection dropped): say so in the label."""
        self.live = False
        self.cut_off = cut_off
        self.stopped = stopped or cut_off
        self.body.finish()
        self.set_class(self.stopped, "-stopped")
        self.set_note("")

    def set_note(self, note: str) -> None:
        """A word in the label about a live reply: "waiting for the reply…", "retrying in 3 s"."""
        self._note = note
        self.label.update(self._label(), layout=False)

    def _label(self) -> Content:
        parts: list[str | tuple[str, str]] = [("assistant", "bold $text-success")]
        if self.model:
            parts += [("  " + sanitize(self.model), "$text-muted")]
        if self.cut_off:
            parts += [("  ■ cut off", "bold $text-warning")]
        elif self.stopped:
            parts += [("  ■ stopped", "bold $text-warning")]
        if self._note:
            parts += [("  " + self._note, "italic $text-accent")]
        return Content.assemble(*parts)


class ErrorNotice(Static):
    """A failed turn or command: what went wrong and what to do about it."""

    DEFAULT_CSS = """
    ErrorNotice {
        margin: 1 0 0 0;
        padding: 0 1;
        border-left: outer $error;
        background: $error 10%;
    }
    """

    def __init__(self, message: str, hint: str | None = None, advice: str | None = None) -> None:
        self.message = message
        self.hint = hint
        self.advice = advice
        parts: list[str | tuple[str, str]] = [("✖ " + sanitize(message), "bold $text-error")]
        if hint:
            parts += ["\n", ("→ " + sanitize(hint), "")]
        if advice:
            parts += ["\n", (sanitize(advice), "$text-muted")]
        super().__init__(Content.assemble(*parts))


class InfoNotice(Static):
    """Something the app says: a command's result, a warning from the store, a hint."""

    DEFAULT_CSS = """
    InfoNotice {
        margin: 1 0 0 0;
        padding: 0 1;
        color: $text-muted;
    }
    InfoNotice.-warning { color: $text-warning; }
    """

    def __init__(self, text: str, *, warning: bool = False) -> None:
        self.text = text
        super().__init__(Content(sanitize(text)), classes="-warning" if warning else None)
