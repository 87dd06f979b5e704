"""Where a profile's files are, and the shape of their names: the library's folder, its trash, lock and
index, a conversation's file, and the old single-conversation history files still to migrate.

Light on purpose (no file format, no store): ``edgechat search`` finds its index with this alone, and
loads the machinery that reads conversation files only when one changed (``chat_index.py``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from edgechat_tui.core.errors import ConversationNotFound

__all__ = ["CHAT_ID", "HISTORY_SUFFIX", "LIBRARY_SUFFIX", "ProfilePaths", "check_chat_id", "legacy_sources",
           "needs_migration", "not_found"]

#: Every history file, and every conversation's file, ends so.
HISTORY_SUFFIX = ".jsonl"
#: A profile's library is the folder ``<data>/<user>.chats/``.
LIBRARY_SUFFIX = ".chats"
#: A conversation id: ten characters of its creation time in ms, four random (as the Worker's), in
#: Crockford's base32, lower case.
CHAT_ID = re.compile(r"[0-9a-hjkmnp-tv-z]{14}")


@dataclass(frozen=True, slots=True)
class ProfilePaths:
    """Where a profile's library lives: ``<data>/<user>.chats/`` with its trash, lock and index."""

    data_dir: Path
    user: str

    @property
    def root(self) -> Path:
        return self.data_dir / f"{self.user}{LIBRARY_SUFFIX}"

    @property
    def trash(self) -> Path:
        return self.root / "trash"

    @property
    def migrated(self) -> Path:
        return self.root / "migrated"

    @property
    def lock(self) -> Path:
        return self.root / "profile.lock"

    @property
    def index(self) -> Path:
        return self.root / "index.sqlite3"

    def folder(self, place: str) -> Path:
        return self.trash if place == "trash" else self.root

    def chat_path(self, chat_id: str, place: str = "active") -> Path:
        return self.folder(place) / f"{chat_id}{HISTORY_SUFFIX}"


def check_chat_id(chat_id: str) -> str:
    """``chat_id`` if it is the shape of a conversation id, else ConversationNotFound."""
    if not isinstance(chat_id, str) or not CHAT_ID.fullmatch(chat_id):
        shown = chat_id if isinstance(chat_id, str) and chat_id.isprintable() and len(chat_id) <= 40 else "…"
        raise ConversationNotFound(f"There is no conversation {shown!r}: a conversation id is 14 letters "
                                   "and digits.", hint="edgechat chats lists them")
    return chat_id


def not_found(chat_id: str) -> ConversationNotFound:
    return ConversationNotFound(f"There is no conversation {chat_id} in this profile.",
                                hint="edgechat chats lists them (--archived for the archive)")


def _archive_name(user: str) -> re.Pattern[str]:
    return re.compile(re.escape(user) + r"\.\d{8}T\d{6}Z(?:-\d+)?\.archived")


def legacy_sources(paths: ProfilePaths) -> list[Path]:
    """The profile's old history files: the archived ones (oldest first), then the current one."""
    try:
        names = os.listdir(paths.data_dir)
    except OSError:
        return []
    pattern = _archive_name(paths.user)
    found = sorted(name for name in names if pattern.fullmatch(name))
    current = f"{paths.user}{HISTORY_SUFFIX}"
    if current in names:
        found.append(current)
    return [paths.data_dir / name for name in found]


def needs_migration(paths: ProfilePaths) -> bool:
    """Whether old history files wait to become conversations of the library (``migrate.py``)."""
    return bool(legacy_sources(paths))
