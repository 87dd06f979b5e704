"""The conversation library's words and small pieces for the chat screen: what it says, its timings,
and the pane's entries for a branch (no Textual of its own)."""

from __future__ import annotations

from collections.abc import Iterable

from edgechat_tui.core.conversations import BranchMessage, ConversationSummary
from edgechat_tui.core.sanitize import sanitize
from edgechat_tui.ui.widgets.chat_log import Entry
from edgechat_tui.ui.widgets.conversations import clean_title

__all__ = ["ARCHIVED_NOTE", "EARLY_FRAME_WAIT", "EDITING", "OPENING", "OPEN_WINDOW", "PREFETCH_DELAY",
           "PREFETCH_MOST", "REDRAWING", "TITLE_WATCH", "TRUNCATED", "UNAVAILABLE_HINT", "describe",
           "entries_from_branch", "hit_detail", "unavailable", "version_detail"]

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
