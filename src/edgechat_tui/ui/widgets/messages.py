"""The widgets of the chat pane: a user's message, a reply, an error, a notice.

Every piece of text here is untrusted or typed by the user, so none of it goes through a markup
parser: labels are ``Content`` built from plain strings, message bodies are sanitised first, and
replies are rendered by :class:`~edgechat_tui.ui.widgets.reply.ReplyMarkdown` (which sanitises too).

Each of them takes focus (:mod:`~edgechat_tui.ui.widgets.focusable`): the copy key copies a user's
message as typed, a reply's Markdown text, a notice's text; ``b`` on a reply copies its code blocks
one after another.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Static

from edgechat_tui.core.sanitize import sanitize
from edgechat_tui.ui.widgets.early_reply import EarlyReply
from edgechat_tui.ui.widgets.focusable import MESSAGE_BINDINGS, FocusableMessage
from edgechat_tui.ui.widgets.usage_line import UsageLine

if TYPE_CHECKING:
    from edgechat_tui.ui.render_cache import DrawnReply
    from edgechat_tui.ui.widgets.reply import ReplyMarkdown


def branch_marker(branch: tuple[int, int] | None) -> list[tuple[str, str]]:
    """``  ‹2/3›`` after a message's label when it is one of several versions (Alt+←/→ switch)."""
    if branch is None or branch[1] < 2:
        return []
    return [(f"  ‹{branch[0]}/{branch[1]}›", "bold $text-accent")]


class UserMessage(Static, FocusableMessage):
    """What the user sent, under their name."""

    DEFAULT_CSS = """
    UserMessage {
        margin: 1 0 0 0;
        padding: 0 1;
        border-left: outer $primary;
        background: $boost;
    }
    UserMessage:focus { border-left: outer $accent; background: $accent 15%; }
    """
    can_focus = True
    BINDINGS: ClassVar[list[BindingType]] = MESSAGE_BINDINGS

    def __init__(self, text: str, user: str, *, branch: tuple[int, int] | None = None) -> None:
        self.text = text
        self.branch = branch
        super().__init__(Content.assemble((user, "bold $text-primary"), *branch_marker(branch), "\n",
                                          sanitize(text)))

    def copy_text(self) -> tuple[str, str]:
        return sanitize(self.text), "your message"


class ReplyLabel(Static):
    """The line above a reply: who answered, and whether the reply is waiting, stopped or complete."""

    DEFAULT_CSS = """
    ReplyLabel { height: 1; color: $text-muted; }
    """


class AssistantMessage(Vertical, FocusableMessage):
    """A reply: a label and the Markdown body. A live one is fed with :meth:`append`."""

    DEFAULT_CSS = """
    AssistantMessage {
        height: auto;
        margin: 1 0 0 0;
        padding: 0 1;
        border-left: outer $success;
    }
    AssistantMessage.-stopped { border-left: outer $warning; }
    AssistantMessage:focus { border-left: outer $accent; background: $accent 8%; }
    AssistantMessage > ReplyMarkdown { height: auto; }
    AssistantMessage > EarlyReply { height: auto; }
    """

    def __init__(self, text: str = "", *, model: str | None = None, stopped: bool = False,
                 live: bool = False, usage: str | None = None,
                 branch: tuple[int, int] | None = None, drawn: DrawnReply | None = None) -> None:
        super().__init__()
        self.branch = branch
        self.model = model
        self.stopped = stopped
        self.cut_off = False
        self.live = live
        self._note = "waiting for the reply…" if live else ""
        self.label = ReplyLabel(self._label())
        #: The reply's Markdown: in the early view, drawn from the render cache (``drawn``, its lines
        #: as last drawn) until the renderer has loaded (``upgrade``).
        self.body: ReplyMarkdown | EarlyReply
        if drawn is not None and not live:
            self.body = EarlyReply(drawn)
        else:
            from edgechat_tui.ui.widgets.reply import ReplyMarkdown  # not needed for the first frame

            self.body = ReplyMarkdown(text, final=not live)
        #: The code block the next ``b`` copies.
        self._next_code = 0
        #: The quiet line of figures under the reply (tokens, time, cost), when any are known.
        self.usage_line: UsageLine | None = UsageLine(usage) if usage else None
        if stopped:
            self.add_class("-stopped")

    def compose(self) -> ComposeResult:
        yield self.label
        yield self.body
        if self.usage_line is not None:
            yield self.usage_line

    def set_usage(self, text: str | None) -> None:
        """Show (or replace) the line of figures under the reply."""
        if not text:
            return
        if self.usage_line is None:
            self.usage_line = UsageLine(text)
            self.mount(self.usage_line)
        else:
            self.usage_line.show(text)

    can_focus = True
    BINDINGS: ClassVar[list[BindingType]] = [*MESSAGE_BINDINGS, Binding("b", "copy_code", "Copy code")]

    @property
    def text(self) -> str:
        """The reply so far, sanitised."""
        return self.body.markdown

    def copy_text(self) -> tuple[str, str]:
        return self.body.markdown, "the reply"

    async def upgrade(self) -> None:
        """The body drawn from the render cache gives way to a ``ReplyMarkdown`` (which draws the same
        lines, with its lexers loaded first): from then on the reply is selectable, its code copyable."""
        early = self.body
        if not isinstance(early, EarlyReply) or not early.is_mounted:
            return
        from edgechat_tui.ui.widgets.reply import ReplyMarkdown

        body = ReplyMarkdown(early.markdown)
        self.body = body
        with self.app.batch_update():
            await self.mount(body, after=early)
            await early.remove()

    async def action_copy_code(self) -> None:
        """Copy this reply's next code block (cycling), and show it."""
        await self.upgrade()
        if isinstance(self.body, EarlyReply):
            return  # not mounted yet
        count = self.body.code_block_count()
        if not count:
            self.notify("This reply has no code block.", severity="warning", markup=False, timeout=3)
            return
        index = self._next_code % count
        self._next_code = index + 1
        request = self.body.code_copy_request(index)
        if request is not None:
            self.body.show_code_block(index)
            self.post_message(request)

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
        parts += branch_marker(self.branch)
        if self.cut_off:
            parts += [("  ■ cut off", "bold $text-warning")]
        elif self.stopped:
            parts += [("  ■ stopped", "bold $text-warning")]
        if self._note:
            parts += [("  " + self._note, "italic $text-accent")]
        return Content.assemble(*parts)


class ErrorNotice(Static, FocusableMessage):
    """A failed turn or command: what went wrong and what to do about it."""

    DEFAULT_CSS = """
    ErrorNotice {
        margin: 1 0 0 0;
        padding: 0 1;
        border-left: outer $error;
        background: $error 10%;
    }
    ErrorNotice:focus { border-left: outer $accent; }
    """
    can_focus = True
    BINDINGS: ClassVar[list[BindingType]] = MESSAGE_BINDINGS

    def __init__(self, message: str, hint: str | None = None, advice: str | None = None, *,
                 repeat: int = 1) -> None:
        self.message = message
        self.hint = hint
        self.advice = advice
        self.repeat = repeat
        super().__init__(self._content())

    def set_repeat(self, repeat: int) -> None:
        """The same error happened ``repeat`` times in a row: say ``×N`` after its message."""
        self.repeat = repeat
        self.update(self._content())

    def _content(self) -> Content:
        parts: list[str | tuple[str, str]] = [("✖ " + sanitize(self.message), "bold $text-error")]
        if self.repeat > 1:
            parts += [(f"  ×{self.repeat}", "bold $text-warning")]
        if self.hint:
            parts += ["\n", ("→ " + sanitize(self.hint), "")]
        if self.advice:
            parts += ["\n", (sanitize(self.advice), "$text-muted")]
        return Content.assemble(*parts)

    def copy_text(self) -> tuple[str, str]:
        parts = (self.message, self.hint, self.advice)
        return "\n".join(sanitize(part) for part in parts if part), "the error"


class InfoNotice(Static, FocusableMessage):
    """Something the app says: a command's result, a warning from the store, a hint."""

    DEFAULT_CSS = """
    InfoNotice {
        margin: 1 0 0 0;
        padding: 0 1;
        color: $text-muted;
    }
    InfoNotice.-warning { color: $text-warning; }
    InfoNotice:focus { background: $accent 12%; }
    """
    can_focus = True
    BINDINGS: ClassVar[list[BindingType]] = MESSAGE_BINDINGS

    def __init__(self, text: str, *, warning: bool = False) -> None:
        self.text = text
        super().__init__(Content(sanitize(text)), classes="-warning" if warning else None)

    def copy_text(self) -> tuple[str, str]:
        return sanitize(self.text), "the notice"
