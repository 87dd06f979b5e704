"""One conversation's file (blocking): read, appended under the profile's lock, in the library or its trash.

The file is a :class:`~edgechat_tui.storage.store.HistoryStore` file with the conversation's own header
and records (``chat_format.py``), so it has every guarantee of a history file: one append per record,
fsynced; a torn tail cut and kept; damage moved aside; a newer schema left untouched; 0600. Records are
built under the lock from what is on disk (:meth:`ConversationFile.append`), so a turn written by another
process meanwhile is the parent of ours, never a lost sibling.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edgechat_tui.storage.chat_format import CHAT_KIND, Entry, chat_header, decode_chat_record, id_time_ms
from edgechat_tui.storage.chat_tree import ChatState
from edgechat_tui.storage.paths import ProfilePaths, check_chat_id, not_found
from edgechat_tui.storage.store import HistoryStore

__all__ = ["ConversationFile", "ProfilePaths", "check_chat_id", "created_of", "not_found"]


def created_of(chat_id: str) -> str:
    """The creation time an id carries, as ISO 8601 (the id is made from it)."""
    when = datetime.fromtimestamp(id_time_ms(chat_id) / 1000, UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ConversationFile:
    """A conversation's file, wherever it is (the library, or its trash). Every call blocks."""

    def __init__(self, paths: ProfilePaths, chat_id: str, *, warn: Callable[[str], None]) -> None:
        self.paths = paths
        self.id = check_chat_id(chat_id)
        self.created = created_of(chat_id)

        def store(place: str) -> HistoryStore:
            return HistoryStore(paths.folder(place), paths.user, warn=warn, name=chat_id,
                                lock_path=paths.lock, kind=CHAT_KIND, decode=decode_chat_record,
                                header=lambda **extra: chat_header(paths.user, chat_id, self.created,
                                                                   **extra))

        self._stores = {"active": store("active"), "trash": store("trash")}
        self._cache: tuple[int, Any, Any, ChatState] | None = None

    def forbid_event_loop(self) -> None:
        for store in self._stores.values():
            store.forbid_event_loop()

    def _state(self, items: list[Entry]) -> ChatState:
        """The folded state of ``items``, reusing the last fold when they only grew since."""
        cached = self._cache
        if cached is not None and 0 < cached[0] <= len(items) and items[0] is cached[1] \
                and items[cached[0] - 1] is cached[2]:
            state = cached[3]
            state.apply(items[cached[0]:])
        else:
            state = ChatState(self.id, self.created)
            state.apply(items)
        self._cache = (len(items), items[0], items[-1], state) if items else None
        return state

    def place(self) -> str | None:
        """Where the file is now ("active", "trash"), None when it is nowhere."""
        for place in ("active", "trash"):
            if os.path.lexists(self._stores[place].path):
                return place
        return None

    def read(self) -> tuple[ChatState, str]:
        """The conversation as on disk now, and where it is. ConversationNotFound when it is nowhere."""
        for _attempt in range(2):  # a move between the two looks is looked for again
            for place in ("active", "trash"):
                store = self._stores[place]
                if not os.path.lexists(store.path):
                    continue
                items = store.refresh()
                if items or os.path.lexists(store.path):
                    return self._state(items), place
        raise not_found(self.id)

    def create(self, record: bytes, entries: list[Entry]) -> ChatState:
        """Write the new conversation's file: its header and first record, whole (temp file, rename)."""
        items = self._stores["active"].append_record(lambda _items: (record, entries), create=True)
        return self._state(items)

    def append(self, make: Callable[[ChatState], tuple[bytes, list[Entry]]], *,
               create: bool = False) -> tuple[ChatState, str]:
        """Append ``make(state)``'s record, built under the lock from the conversation as on disk.

        ``make`` may raise (ConversationConflict, MessageNotFound) to write nothing. A conversation moved
        to the trash meanwhile takes the record there; one that is gone raises ConversationNotFound, or
        with ``create`` (a first message) is created with this record.
        """
        if create and self.place() is None:
            items = self._stores["active"].append_record(lambda items: make(self._state(items)), create=True)
            return self._state(items), "active"
        for _attempt in range(3):
            for place in ("active", "trash"):
                store = self._stores[place]
                try:
                    items = store.append_record(lambda items: make(self._state(items)), create=False)
                except FileNotFoundError:
                    continue
                return self._state(items), place
        raise not_found(self.id)

    def path(self, place: str = "active") -> Path:
        return self._stores[place].path
