"""A search's answer: one message that matched, as the library, the remote client, the CLI and the UI
share it. A frozen dataclass with no I/O; every text field came from a file or a server: untrusted,
sanitised before it is shown.

On its own (``core/conversations.py`` names it too) so that ``edgechat search`` loads it without the
list's and the branch's classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["SearchHit"]


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One message that matched a search, newest first in a result list.

    ``snippet`` is a short excerpt around the match; ``highlights`` are ``(start, end)`` character
    offsets into ``snippet`` of each matched word. ``message_id`` opens the conversation at that message.
    """

    chat: str
    title: str
    role: str
    time: str
    snippet: str
    highlights: tuple[tuple[int, int], ...] = ()
    message_id: str | None = None
    archived: bool = False

    def to_json(self) -> dict[str, Any]:
        """The CLI's ``search --json`` form."""
        return {"chat": self.chat, "title": self.title, "role": self.role, "time": self.time,
                "snippet": self.snippet}
