"""The conversation library's words and small pieces for the chat screen: what it says, its timings,
and the pane's entries for a branch (no Textual of its own)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from edgechat_tui.core.conversations import BranchMessage, ConversationSummary
from edgechat_tui.core.sanitize import sanitize
from edgechat_tui.ui.widgets.chat_log import Entry
from edgechat_tui.ui.widgets.conversations import clean_title

if TYPE_CHECKING:
    from edgechat_tui.core.errors import EdgechatError
    from edgechat_tui.ui.session import Session
    from edgechat_tui.ui.turn import TurnRunner
    from edgechat_tui.ui.widgets.chat_log import ChatLog
    from edgechat_tui.ui.widgets.conversations import ConversationPanel
    from edgechat_tui.ui.widgets.header import ChatHeader
    from edgechat_tui.ui.widgets.prompt import PromptArea
    from edgechat_tui.ui.widgets.status import StatusLine

__all__ = [
    "ARCHIVED_NOTE",
    "EARLY_FRAME_WAIT",
    "EDITING",
    "OPENING",
    "OPEN_WINDOW",
    "PREFETCH_DELAY",
    "PREFETCH_MOST",
    "REDRAWING",
    "TITLE_WATCH",
    "TRUNCATED",
    "UNAVAILABLE_HINT",
    "LibraryHost",
    "describe",
    "entries_from_branch",
    "hit_detail",
    "other_version",
    "unavailable",
    "version_detail",
]

UNAVAILABLE_HINT = ("this agent keeps a single conversation (a seed server does); the local agent and "
                    "edgechat's own Worker keep many")
EDITING = "Editing your last message: Enter sends it as a new version (a branch) · Esc cancels"
#: Entries mounted at once when a conversation is opened (the pane mounts more as the view needs).
OPEN_WINDOW = 6
#: How long an opened conversation's newest messages may take to be drawn before the whole is read.
EARLY_FRAME_WAIT = 0.5
#: The list's highlight must rest this long on a conversation before it is read ahead.
PREFETCH_DELAY = 0.12
#: Only a conversation of at most this many messages is read ahead (a few milliseconds to read).
PREFETCH_MOST = 1000
#: After a first exchange, the summary is read again this many seconds apart until its title changes.
TITLE_WATCH = (0.3, 0.7, 1.5, 3.0, 6.0, 12.0)
TRUNCATED = "The reply reached max_tokens and stopped there: /continue goes on with it."
REDRAWING = "The conversation is being updated: the message stays in the input; send it in a moment."
OPENING = "The conversation is being opened: the message stays in the input; send it in a moment."


def unavailable(what: str) -> tuple[str, str]:
    """The error for an action of the library when the agent has none."""
    return f"{what} is not available with this agent.", UNAVAILABLE_HINT


def entries_from_branch(messages: Iterable[BranchMessage]) -> list[Entry]:
    """The pane's entries for a branch: each with its id and, if it has siblings, its position."""
    entries: list[Entry] = []
    append = entries.append
    for item in messages:  # 10,000 of them for a long conversation: kept lean
        message = item.message
        role = message.role
        if role == "system":
            continue
        siblings = item.siblings
        branch = item.position if len(siblings) > 1 else None
        append(Entry("user" if role == "user" else "assistant", message.content, model=message.model,
                     stopped=message.stopped, usage=message.usage, message_id=item.id, branch=branch))
    return entries


ARCHIVED_NOTE = ("This conversation is archived: it can be read here, and restored from the list "
                 "(/chats archived, then u) to go on with it.")


def describe(summary: ConversationSummary) -> str:
    """``“Title”`` for notices (untrusted: sanitised, shortened)."""
    return f"“{clean_title(sanitize(summary.title), width=60)}”"


def version_detail(position: tuple[int, int]) -> str:
    """The status line's word on a message with several versions: ``version 2 of 3 · Alt+←/→ …``."""
    return f"version {position[0]} of {position[1]} · Alt+←/→ for the others"


def hit_detail(branch: Iterable[BranchMessage], message_id: str) -> str | None:
    """The status line after opening a search hit: its version, when it has others; else nothing."""
    hit = next((item for item in branch if item.id == message_id), None)
    return version_detail(hit.position) if hit is not None and hit.position[1] > 1 else None


def other_version(branch: list[BranchMessage], step: int, at: str | None) -> str | None:
    """The id of the version ``step`` away (wrapping) from message ``at`` of ``branch`` if it has
    several, else from the newest message that has several; None when none has."""
    several = [item for item in branch if len(item.siblings) > 1]
    target = next((item for item in several if item.id == at), several[-1] if several else None)
    if target is None:
        return None
    index = target.siblings.index(target.id) if target.id in target.siblings else 0
    return target.siblings[(index + step) % len(target.siblings)]


class LibraryHost(Protocol):
    """What the library needs of the chat screen."""

    session: Session

    @property
    def chat_log(self) -> ChatLog: ...
    @property
    def prompt(self) -> PromptArea: ...
    @property
    def status(self) -> StatusLine: ...
    @property
    def header(self) -> ChatHeader: ...
    @property
    def user(self) -> str: ...
    @property
    def turns(self) -> TurnRunner: ...
    @property
    def panel(self) -> ConversationPanel: ...

    async def say(self, text: str, *, warning: bool = False) -> None: ...
    async def say_error(self, error: EdgechatError | str, hint: str | None = None) -> None: ...
    def run_worker(self, work: Any, **kwargs: Any) -> Any: ...
    def refresh_context(self, next_text: str = "") -> None: ...
    def refresh_bindings(self) -> None: ...
    def show_ready(self, detail: str | None = None) -> None: ...
    def notify(self, message: str, **kwargs: Any) -> None: ...
    def warn(self, text: str) -> None: ...
