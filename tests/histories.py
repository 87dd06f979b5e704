"""What a profile's library holds, read straight from its files for tests (no index, no repair, no lock).

The one helper the tests use to look at stored conversations, instead of reading ``<user>.jsonl``.
"""

from __future__ import annotations

from pathlib import Path

from edgechat_tui.core.messages import Message
from edgechat_tui.storage.chat_file import ProfilePaths, created_of
from edgechat_tui.storage.chat_format import CHAT_ID, CHAT_KIND, decode_chat_record
from edgechat_tui.storage.chat_tree import ChatState
from edgechat_tui.storage.format import scan_file

__all__ = ["conversations", "library_dir", "most_recent", "stored_messages"]


def library_dir(data_dir: Path, user: str = "default") -> Path:
    return ProfilePaths(Path(data_dir), user).root


def conversations(data_dir: Path, user: str = "default", place: str = "active") -> list[ChatState]:
    """Every conversation of the profile in the library (or its trash), oldest first."""
    paths = ProfilePaths(Path(data_dir), user)
    folder = paths.folder(place)
    if not folder.is_dir():
        return []
    states = []
    for path in sorted(folder.glob("*.jsonl")):
        if not CHAT_ID.fullmatch(path.stem):
            continue
        scan = scan_file(path.read_bytes(), user, path, decode_chat_record, CHAT_KIND)
        state = ChatState(path.stem, created_of(path.stem))
        state.apply(scan.messages)
        states.append(state)
    return states


def most_recent(data_dir: Path, user: str = "default") -> ChatState | None:
    """The conversation a message without ``--chat`` goes to: not archived, newest ``updated``."""
    active = [s for s in conversations(data_dir, user) if not s.archived]
    return max(active, key=lambda s: (s.updated, s.id)) if active else None


def stored_messages(data_dir: Path, user: str = "default", chat: str | None = None) -> list[Message]:
    """The current branch of conversation ``chat`` (default: the most recent one), oldest first."""
    if chat is not None:
        state = next((s for s in conversations(data_dir, user) if s.id == chat), None)
    else:
        state = most_recent(data_dir, user)
    return state.messages() if state is not None else []
