"""A profile's conversation library (blocking): its conversation files, their trash, and the index.

``<data>/<user>.chats/`` holds one file per conversation (``<id>.jsonl``, ``chat_file.py``), ``trash/``
for deleted ones (restorable for 30 days, then purged), ``migrated/`` for the single-conversation
history files it was made from (``migrate.py``), the profile's lock and the search index. Every call
blocks; code on an event loop goes through the local agent's ``LocalConversations``, which runs each in
a thread. Saving a turn touches only its conversation's file: its cost does not grow with the profile.
"""

from __future__ import annotations

import os
import stat
from _thread import allocate_lock  # threading's Lock, without importing threading (``edgechat search``)
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from edgechat_tui.core.errors import (
    ConversationConflict,
    ConversationNotFound,
    MessageNotFound,
    StorageError,
    UsageError,
)
from edgechat_tui.core.messages import Message, now_iso
from edgechat_tui.core.userid import validate_user_id
from edgechat_tui.storage.chat_index import ChatIndex
from edgechat_tui.storage.fs import DATA_DIR_HINT, ensure_private_dir, fsync_dir, hold_lock, storage_error
from edgechat_tui.storage.paths import CHAT_ID, ProfilePaths, check_chat_id, needs_migration, not_found

if TYPE_CHECKING:
    from edgechat_tui.core.conversations import ConversationSummary
    from edgechat_tui.core.hits import SearchHit
    from edgechat_tui.storage.chat_file import ConversationFile
    from edgechat_tui.storage.chat_format import Entry
    from edgechat_tui.storage.chat_tree import ChatState

# The conversation files' machinery (chat_file, chat_format, chat_tree, the store, migrate.py) is
# imported by the calls that read or write a file, not here: a search or a list answered from an
# index that is up to date loads none of it, which keeps ``edgechat search`` near ``--version``.

__all__ = ["Library"]


class Library:
    """One profile's conversations. Thread-safe; every call blocks (disk, fsync, lock, SQLite)."""

    def __init__(self, data_dir: Path, user: str, *, warn: Callable[[str], None]) -> None:
        self.user = validate_user_id(user)
        self.paths = ProfilePaths(Path(data_dir), self.user)
        self._warn = warn
        self._files: dict[str, ConversationFile] = {}
        self._files_mutex = allocate_lock()
        self._ready_mutex = allocate_lock()
        self._ready = False
        self._loop_guard = False
        self.index = ChatIndex(self.paths, warn=warn)

    def forbid_event_loop(self) -> None:
        self._loop_guard = True

    # --- being ready ----------------------------------------------------------------------------

    def ready(self) -> None:
        """On first use (once a process): migrate the profile's old history files (``migrate.py``),
        purge the conversations whose time in the trash is over."""
        if self._ready:
            return
        with self._ready_mutex:
            if self._ready:
                return
            self._check_data_dir()
            if needs_migration(self.paths):
                from edgechat_tui.storage.migrate import migrate_profile

                self._ensure_folders()
                migrate_profile(self.paths, warn=self._warn)
            if self._trash_holds_any():
                self._purge_expired()
            self._ready = True

    def _trash_holds_any(self) -> bool:
        try:
            with os.scandir(self.paths.trash) as entries:
                return any(entry.name.endswith(".jsonl") for entry in entries)
        except OSError:
            return False

    def _check_data_dir(self) -> None:
        """A data folder that is a file (or under one) is said so, not taken for an empty profile."""
        try:
            st = os.stat(self.paths.data_dir)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise storage_error(exc, "open the history folder", self.paths.data_dir) from exc
        if not stat.S_ISDIR(st.st_mode):
            raise StorageError(f"The history folder {self.paths.data_dir} is a file, not a folder.",
                               hint=DATA_DIR_HINT)

    def _indexed(self) -> bool:
        """Whether there is a library to index (nothing is created just to list or search)."""
        self.ready()
        return os.path.isdir(self.paths.root)

    def exists(self) -> bool:
        """Whether the profile has a library or anything to migrate into one."""
        return os.path.isdir(self.paths.root) or needs_migration(self.paths)

    def _ensure_folders(self) -> None:
        ensure_private_dir(self.paths.data_dir, self._warn)
        for folder in (self.paths.root, self.paths.trash):
            try:
                folder.mkdir(mode=0o700, exist_ok=True)
            except OSError as exc:
                raise storage_error(exc, "create the folder", folder) from exc

    # --- conversations --------------------------------------------------------------------------

    def file(self, chat_id: str) -> ConversationFile:
        from edgechat_tui.storage.chat_file import ConversationFile

        check_chat_id(chat_id)
        with self._files_mutex:
            found = self._files.get(chat_id)
            if found is None:
                found = self._files[chat_id] = ConversationFile(self.paths, chat_id, warn=self._warn)
                if self._loop_guard:
                    found.forbid_event_loop()
            return found

    def state(self, chat_id: str) -> tuple[ChatState, str]:
        self.ready()
        return self.file(chat_id).read()

    def summary(self, chat_id: str) -> ConversationSummary:
        state, place = self.state(chat_id)
        return state.summary(in_trash=place == "trash")

    def create(self, title: str | None = None) -> ConversationSummary:
        from edgechat_tui.storage.chat_format import MetaEntry, encode_meta, new_chat_id

        self.ready()
        self._ensure_folders()
        fields: dict[str, object] = {}
        if title is not None:
            fields = {"title": self._clean(title), "titleSource": "user"}
        chat_id = new_chat_id()
        state = self.file(chat_id).create(encode_meta(fields), [MetaEntry(fields)])
        return state.summary()

    @staticmethod
    def _clean(title: str) -> str:
        from edgechat_tui.storage.chat_format import clean_title

        cleaned = clean_title(title)
        if not cleaned:
            raise UsageError("A title needs something printable.", hint="give a few words")
        return cleaned

    def append(self, chat_id: str, make: Callable[[ChatState], tuple[bytes, list[Entry]]], *,
               create: bool = False) -> ChatState:
        """Append a record to a conversation (``create``: a first message makes its file)."""
        self.ready()
        if create:
            self._ensure_folders()
        return self.file(chat_id).append(make, create=create)[0]

    def append_first(self, chat_id: str, make: Callable[[ChatState], tuple[bytes, list[Entry]]]) -> ChatState:
        """A first message in a profile that had no conversation: it goes to one another process
        started meanwhile (so processes starting at once share one), else creates ``chat_id``'s."""
        self.ready()
        self._ensure_folders()
        with hold_lock(self.paths.root / "create.lock", exclusive=True):
            others = []
            for path in self.paths.root.glob("*.jsonl"):
                if path.stem != chat_id and CHAT_ID.fullmatch(path.stem):
                    try:
                        state, place = self.file(path.stem).read()
                    except (ConversationNotFound, StorageError):
                        continue
                    if place == "active" and not state.archived:
                        others.append(state)
            if others:
                joined = max(others, key=lambda state: (state.updated, state.id))
                return self.file(joined.id).append(make)[0]
            return self.file(chat_id).append(make, create=True)[0]

    def _meta(self, chat_id: str, fields: dict[str, object],
              check: Callable[[ChatState], None] | None = None) -> ConversationSummary:
        from edgechat_tui.storage.chat_format import MetaEntry, encode_meta

        def make(state: ChatState) -> tuple[bytes, list[Entry]]:
            if check is not None:
                check(state)
            return encode_meta(fields), [MetaEntry(fields)]

        self.ready()
        state, place = self.file(chat_id).append(make)
        return state.summary(in_trash=place == "trash")

    def rename(self, chat_id: str, title: str) -> ConversationSummary:
        return self._meta(chat_id, {"title": self._clean(title), "titleSource": "user"})

    def set_model_title(self, chat_id: str, title: str) -> bool:
        """A generated title, unless the user has set one meanwhile. True when it was written."""
        from edgechat_tui.storage.chat_format import MetaEntry, clean_title, encode_meta

        title = clean_title(title)
        if not title:
            return False
        written = []

        def make(state: ChatState) -> tuple[bytes, list[Entry]]:
            fields: dict[str, object] = {}
            if state.title_source != "user":
                fields = {"title": title, "titleSource": "model"}
                written.append(True)
            return encode_meta(fields), [MetaEntry(fields)]

        self.append(chat_id, make)
        return bool(written)

    def archive(self, chat_id: str) -> ConversationSummary:
        state, place = self.state(chat_id)
        if state.archived:
            return state.summary(in_trash=place == "trash")
        return self._meta(chat_id, {"archived": True})

    def restore(self, chat_id: str) -> ConversationSummary:
        state, place = self.state(chat_id)
        if place == "trash":
            self._move(chat_id, "trash", "active")
        if state.archived:
            return self._meta(chat_id, {"archived": False})
        return self.summary(chat_id)

    def delete(self, chat_id: str, *, purge: bool = False) -> ConversationSummary | None:
        state, place = self.state(chat_id)
        if purge:
            if place != "trash":
                raise ConversationConflict("Only a conversation in the trash can be purged.",
                                           hint="delete it first; it stays in the trash for 30 days")
            self._purge(chat_id)
            return None
        if place == "trash":
            return state.summary(in_trash=True)
        self._meta(chat_id, {"deleted": now_iso()})
        self._move(chat_id, "active", "trash")
        return self.summary(chat_id)

    def switch(self, chat_id: str, message_id: str) -> ChatState:
        from edgechat_tui.storage.chat_format import SwitchEntry, encode_switch

        def make(state: ChatState) -> tuple[bytes, list[Entry]]:
            if state.archived:
                raise ConversationConflict("This conversation is archived: it can be read, not changed.",
                                           hint="restore it first")
            if message_id not in state.nodes:
                raise MessageNotFound(f"There is no message {message_id} in this conversation.")
            leaf = state.descend(message_id)
            return encode_switch(leaf), [SwitchEntry(leaf)]

        return self.append(chat_id, make)

    def _move(self, chat_id: str, source: str, target: str) -> None:
        """Move a conversation's file between the library and its trash (one rename, under the lock)."""
        self._ensure_folders()
        src, dst = self.paths.chat_path(chat_id, source), self.paths.chat_path(chat_id, target)
        with hold_lock(self.paths.lock, exclusive=True):
            if os.path.lexists(dst):
                if not os.path.lexists(src):
                    return  # another process moved it already
                raise StorageError(f"{dst} already exists; {src} was left where it is.")
            try:
                os.rename(src, dst)
                fsync_dir(dst.parent)
                fsync_dir(src.parent)
            except FileNotFoundError:
                if not os.path.lexists(dst):
                    raise not_found(chat_id) from None
            except OSError as exc:
                raise storage_error(exc, "move", src) from exc

    def _purge(self, chat_id: str) -> None:
        path = self.paths.chat_path(chat_id, "trash")
        with hold_lock(self.paths.lock, exclusive=True):
            try:
                os.unlink(path)
                fsync_dir(path.parent)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise storage_error(exc, "remove", path) from exc

    def purge_expired(self) -> list[str]:
        """Remove the conversations whose 30 days in the trash are over; their ids."""
        self.ready()
        return self._purge_expired()

    def _purge_expired(self) -> list[str]:
        gone = self.index.expired(now_iso())
        for chat_id in gone:
            self._purge(chat_id)
        return gone

    # --- the index ------------------------------------------------------------------------------

    def list(self, *, archived: bool = False, deleted: bool = False) -> list[ConversationSummary]:
        if not self._indexed():
            return []
        return self.index.list(archived=archived, deleted=deleted)

    def most_recent(self) -> ConversationSummary | None:
        if not self._indexed():
            return None
        return self.index.most_recent()

    def replies_since(self, since: datetime) -> list[Message]:
        """Every reply stored at or after ``since`` (an aware time), in every conversation of the profile
        (active, archived and in the trash) and on every branch: what was spent since then, whichever
        conversation or branch the reply is on now."""
        if not self._indexed():
            return []
        found: list[Message] = []
        summaries = [*self.index.list(), *self.index.list(archived=True), *self.index.list(deleted=True)]
        for summary in summaries:
            if _before(summary.updated, since):
                continue  # nothing in it is newer than its newest message (one that does not parse is read)
            try:
                state, _place = self.state(summary.id)
            except ConversationNotFound:
                continue  # gone since the list was read
            found += [node.message for node in state.nodes.values()
                      if node.message.role == "assistant" and _at_or_after(node.message.time, since)]
        return found

    def search(self, query: str, *, limit: int = 50) -> list[SearchHit]:
        if not self._indexed():
            self.index.check_query(query)
            return []
        return self.index.search(query, limit=limit)

    def close(self) -> None:
        self.index.close()


def _moment(stamp: object) -> datetime | None:
    """ISO 8601 ``stamp`` as an aware time; None for one that does not parse or has no zone (a stored
    field is untrusted)."""
    if not isinstance(stamp, str):
        return None
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _at_or_after(stamp: object, since: datetime) -> bool:
    moment = _moment(stamp)
    return moment is not None and moment >= since


def _before(stamp: object, since: datetime) -> bool:
    moment = _moment(stamp)
    return moment is not None and moment < since
