"""The conversation's newest messages, read while Textual loads, for the chat screen's first frame.

No Textual here: the CLI imports this module, and starts the read, before it imports the app.
The chat pane draws what the read found in its first frame (``ChatLog``), and the store's view,
loaded after, takes over the same widgets when its newest messages are the same ones.
"""

from __future__ import annotations

from edgechat_tui.config.settings import Settings
from edgechat_tui.storage.tail import EarlyTail, current_conversation

__all__ = ["EARLY_MESSAGES", "start_early_tail"]

#: How many of the newest messages the read looks for: the chat pane's first window
#: (``chat_log.INITIAL_WINDOW``; a test holds the two equal).
EARLY_MESSAGES = 16


def start_early_tail(settings: Settings, user: str, *, chat: str | None = None) -> EarlyTail | None:
    """Start reading ``user``'s newest messages in a thread (of conversation ``chat``, the TUI's
    ``--chat ID``; by default the most recent); None where there is nothing to read early (a remote
    agent keeps the history on its server)."""
    if settings.remote_url:
        return None
    try:
        path = current_conversation(settings.data_dir, user, chat)
    except Exception:  # a bad id or data dir: the app's own start says what is wrong
        return None
    return EarlyTail(path, user, EARLY_MESSAGES)
