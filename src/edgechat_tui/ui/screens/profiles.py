"""``/user`` with no name: the profiles of this machine in a list, the current one marked.

Enter (or a click) picks one; Esc closes the list and nothing changes. A profile is shown with its
message count and last activity, as ``edgechat users`` shows them; a history that could not be read
whole says so. Every field is shown through ``Content`` (sanitised), never markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from edgechat_tui.core.sanitize import sanitize
from edgechat_tui.storage.users import UserSummary

__all__ = ["ProfilePicker", "profile_label"]

CURRENT_MARK = "●"


def _when(time: str | None) -> str:
    """``2025-01-01T10:00:01.000Z`` -> ``2025-01-01 10:00`` (as stored: UTC)."""
    if not time:
        return "no messages yet"
    clean = sanitize(time)
    date, _, rest = clean.partition("T")
    return f"last {date} {rest[:5]} UTC".strip() if rest else f"last {clean}"


def profile_label(summary: UserSummary | None, user: str, *, current: bool, width: int) -> Content:
    """One row of the list: the mark, the user, the count and the last activity (or the problem)."""
    mark = (f"{CURRENT_MARK} ", "bold $text-success") if current else ("  ", "")
    name = sanitize(user).ljust(width)
    parts: list[str | tuple[str, str]] = [mark, (name, "bold" if current else "")]
    if summary is None:
        parts.append(("   no messages yet", "$text-muted"))
    else:
        noun = "message" if summary.message_count == 1 else "messages"
        parts.append((f"   {summary.message_count:,} {noun} · {_when(summary.last_activity)}", "$text-muted"))
        if summary.problem:
            parts.append((f" · {sanitize(summary.problem)}", "$text-warning"))
    if current:
        parts.append(("  (current)", "$text-success"))
    return Content.assemble(*parts)


class ProfilePicker(ModalScreen[str | None]):
    """Dismisses with the chosen user id, or None on Esc."""

    DEFAULT_CSS = """
    ProfilePicker { align: center middle; }
    ProfilePicker > Vertical {
        width: 84;
        max-width: 100%;
        height: auto;
        max-height: 90%;
        padding: 1 2;
        border: thick $accent 80%;
        background: $surface;
    }
    ProfilePicker OptionList { height: auto; max-height: 20; margin: 1 0; }
    ProfilePicker .help { color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close")]

    def __init__(self, summaries: Sequence[UserSummary], *, current: str) -> None:
        super().__init__()
        self.current = current
        by_user = {summary.user: summary for summary in summaries}
        #: The profiles listed, in order: those with a history, and the current one even without.
        self.users = sorted(set(by_user) | {current})
        self._summaries = by_user

    def compose(self) -> ComposeResult:
        width = max(len(user) for user in self.users)
        options = [Option(profile_label(self._summaries.get(user), user, current=user == self.current,
                                        width=width), id=user)
                   for user in self.users]
        with Vertical() as box:
            box.border_title = "Profiles"
            yield Static(Content("Pick a profile to switch to (its own conversation)."))
            yield OptionList(*options, id="profiles", markup=False)
            yield Static(Content("Enter switches · Esc closes · a new profile: /user NAME"), classes="help")

    def on_mount(self) -> None:
        options = self.query_one("#profiles", OptionList)
        options.focus()
        options.highlighted = self.users.index(self.current)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_close(self) -> None:
        self.dismiss(None)
