"""The library's index (SQLite, FTS5): conversations for the list, messages for search. Blocking.

Derived only from the conversation files and never holding anything they do not. Every use starts
with :meth:`ChatIndex.refresh`, which looks at each file's identity, size and mtime (one ``scandir`` of
the library and its trash) and re-reads only the files that changed, dropping what it holds of files that
are gone. A missing, damaged or older index is rebuilt from the files; deleting it loses nothing.
Writers take SQLite's write lock (``BEGIN IMMEDIATE``), so two processes never index one change twice.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
from _thread import RLock  # threading's RLock, without importing threading (``edgechat search``)
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgechat_tui.core.errors import StorageError, UsageError
from edgechat_tui.core.hits import SearchHit
from edgechat_tui.core.messages import stamp_ms
from edgechat_tui.core.sanitize import sanitize
from edgechat_tui.storage.chat_search import fts_query, make_snippet, query_terms
from edgechat_tui.storage.fs import (
    DATA_DIR_HINT,
    LOCK_TIMEOUT,
    hold_lock,
    open_regular,
    read_range,
    unlink_quietly,
)
from edgechat_tui.storage.paths import CHAT_ID, HISTORY_SUFFIX, ProfilePaths

if TYPE_CHECKING:
    from edgechat_tui.core.conversations import ConversationSummary
    from edgechat_tui.storage.chat_tree import ChatState

__all__ = ["INDEX_SCHEMA", "ChatIndex"]

#: Bumped when the tables change: an index of another version is rebuilt.
INDEX_SCHEMA = "3"

_TABLES = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS files(chat TEXT PRIMARY KEY, place TEXT, dev INTEGER, ino INTEGER,
                                 size INTEGER, mtime INTEGER);
CREATE TABLE IF NOT EXISTS chats(chat TEXT PRIMARY KEY, place TEXT, title TEXT, count INTEGER,
                                 created TEXT, updated TEXT, archived INTEGER, deleted TEXT);
CREATE INDEX IF NOT EXISTS chats_by_updated ON chats(place, archived, updated);
CREATE TABLE IF NOT EXISTS rows(chat TEXT, mid TEXT, row INTEGER, length INTEGER, PRIMARY KEY(chat, mid));
CREATE VIRTUAL TABLE IF NOT EXISTS msgs USING fts5(content, chat UNINDEXED, mid UNINDEXED,
    role UNINDEXED, time UNINDEXED, tokenize = 'unicode61 remove_diacritics 2');
"""

Stat = tuple[str, int, int, int, int]  # place, dev, ino, size, mtime_ns
_CANNOT_WRITE = {errno.EROFS, errno.EACCES, errno.EPERM}
_SLOT_BITS = 12  # messages per millisecond a rowid can tell apart
_MAX_MS = (1 << (62 - _SLOT_BITS)) - 1
_OPTIMIZE_AFTER = 5000  # messages indexed in one refresh


def _cannot_list(folder: Path, exc: OSError) -> StorageError:
    return StorageError(f"Could not list {folder}: {exc.strerror or exc}.", hint=DATA_DIR_HINT)


class ChatIndex:
    """One profile's index. Thread-safe (one connection, behind a mutex); every call blocks."""

    def __init__(self, paths: ProfilePaths, *, warn: Callable[[str], None]) -> None:
        self.paths = paths
        self._warn = warn
        self._conn: sqlite3.Connection | None = None
        self._mutex = RLock()
        self._warned: set[str] = set()
        self._in_memory = False

    # --- the connection -------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        path = self.paths.index
        in_memory = self._in_memory
        if in_memory:
            self._conn = self._connect(":memory:")
            return self._conn
        try:
            fd = open_regular(path, os.O_RDWR | os.O_CREAT)  # 0600, never through a link
            os.close(fd)  # type: ignore[arg-type]
        except OSError as exc:
            if exc.errno not in _CANNOT_WRITE:
                raise StorageError(f"Could not open the search index {path}: {exc.strerror or exc}.",
                                   hint=DATA_DIR_HINT) from exc
            in_memory = True  # a folder we may not write in: an index in memory, built from the files
        try:
            conn = self._connect(":memory:" if in_memory else str(path))
        except sqlite3.OperationalError as exc:
            if "readonly" not in str(exc).replace(" ", "") and "read-only" not in str(exc):
                raise
            conn = self._connect(":memory:")
        self._conn = conn
        return conn

    @staticmethod
    def _connect(where: str) -> sqlite3.Connection:
        conn = sqlite3.connect(where, timeout=LOCK_TIMEOUT, isolation_level=None, check_same_thread=False)
        try:
            if where != ":memory:":
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")  # derived data: a lost write is rebuilt
            conn.executescript(_TABLES)
            row = conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is None:
                conn.execute("INSERT OR IGNORE INTO meta VALUES('schema', ?)", (INDEX_SCHEMA,))
            elif row[0] != INDEX_SCHEMA:
                raise sqlite3.DatabaseError("index of another version")
        except BaseException:
            conn.close()
            raise
        return conn

    def _discard(self) -> None:
        """Throw the index away (it is only derived); the next use rebuilds it from the files."""
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None
        for suffix in ("", "-wal", "-shm"):
            unlink_quietly(Path(f"{self.paths.index}{suffix}"))

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """The connection, with a damaged or foreign-version index rebuilt once."""
        with self._mutex:
            for attempt in range(3):
                try:
                    conn = self._open()
                    self._refresh(conn)
                    break
                except sqlite3.DatabaseError as exc:
                    if attempt == 2 or self._in_memory or "locked" in str(exc):
                        raise StorageError(f"The search index {self.paths.index} cannot be used: {exc}.",
                                           hint="delete it; it is rebuilt from the conversations") from exc
                    self._discard()
                    # Damaged: rebuilt once. Still failing (a full disk, a failing device): this
                    # process keeps an index in memory, built from the files, and the files are untouched.
                    self._in_memory = attempt == 1
            yield conn

    def close(self) -> None:
        with self._mutex:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # --- keeping it true to the files -----------------------------------------------------------

    def _files(self) -> dict[str, Stat]:
        found: dict[str, Stat] = {}
        for place in ("trash", "active"):  # a file in both (never, but) counts where it is active
            folder = self.paths.folder(place)
            try:
                fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise _cannot_list(folder, exc) from exc
            try:
                # Listed through the folder's descriptor, each entry's lstat is one fstatat relative to
                # it rather than a walk of the whole path: about a third less for a thousand files. The
                # entries' stat needs the descriptor open.
                found.update(self._listed(fd, place))
            except OSError as exc:
                raise _cannot_list(folder, exc) from exc
            finally:
                os.close(fd)
        return found

    @staticmethod
    def _listed(fd: int, place: str) -> Iterator[tuple[str, Stat]]:
        with os.scandir(fd) as entries:
            for entry in entries:
                name = entry.name
                if not name.endswith(HISTORY_SUFFIX) or not CHAT_ID.fullmatch(name[: -len(HISTORY_SUFFIX)]):
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                yield name[: -len(HISTORY_SUFFIX)], (place, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def refresh(self) -> None:
        with self._db():
            pass

    @staticmethod
    def _listing(seen: dict[str, Stat]) -> bytes:
        """Every file's place, identity, size and mtime in one value, cheap to make (no text for the
        numbers). Two listings are equal only for the same files in the same order; the same files
        listed in another order only cost the full comparison."""
        numbers = array("q")
        try:
            for place, dev, ino, size, mtime in seen.values():
                numbers.extend((place == "trash", dev, ino, size, mtime))
        except OverflowError:  # a number beyond 64 bits: its text instead
            return repr(list(seen.items())).encode()
        return "\0".join(seen).encode() + b"\0" + numbers.tobytes()

    def _refresh(self, conn: sqlite3.Connection) -> None:
        seen = self._files()
        # The files as the index last matched them all, in one row: the common case (nothing changed)
        # costs one scandir and one row, not the whole table (a thousand rows) compared in Python.
        listing = self._listing(seen)
        row = conn.execute("SELECT value FROM meta WHERE key='files'").fetchone()
        if row is not None and row[0] == listing:
            return
        known = {row[0]: tuple(row[1:]) for row in conn.execute("SELECT * FROM files")}
        if all(known.get(chat) == stat for chat, stat in seen.items()) and known.keys() <= seen.keys():
            return  # nothing changed, in an index without the row yet: the next change writes it
        conn.execute("BEGIN IMMEDIATE")
        try:
            known = {row[0]: tuple(row[1:]) for row in conn.execute("SELECT * FROM files")}
            for chat in known.keys() - seen.keys():
                self._forget(conn, chat)
            added = 0
            free: dict[int, int] = {}  # the next free rowid of each millisecond, for this transaction
            for chat, stat in seen.items():
                if known.get(chat) != stat:
                    added += self._index_file(conn, chat, stat[0], free)
            if added >= _OPTIMIZE_AFTER:
                # Many messages indexed at once (a rebuild) leave the search index in many segments,
                # and a prefix query merges them all: made one, ``lisbon*`` over 100,000 messages
                # takes a third of the time; the rebuild of 100,000 messages takes at most 0.8 s more
                # (docs/benchmarks.md).
                conn.execute("INSERT INTO msgs(msgs) VALUES('optimize')")
            self._note_listing(conn, seen, listing)
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise

    @staticmethod
    def _note_listing(conn: sqlite3.Connection, seen: dict[str, Stat], listing: bytes) -> None:
        """Record ``listing`` only when the index holds every file of it as it was listed. A file left
        out (unreadable) or changed since it was listed keeps the row away, so every use compares the
        whole table and reads that file again, as it would without the row."""
        indexed = {row[0]: tuple(row[1:]) for row in conn.execute("SELECT * FROM files")}
        if indexed == seen:
            conn.execute("INSERT OR REPLACE INTO meta VALUES('files', ?)", (listing,))
        else:
            conn.execute("DELETE FROM meta WHERE key='files'")

    def _forget(self, conn: sqlite3.Connection, chat: str) -> None:
        conn.execute("DELETE FROM msgs WHERE rowid IN (SELECT row FROM rows WHERE chat=?)", (chat,))
        for table in ("rows", "chats", "files"):
            conn.execute(f"DELETE FROM {table} WHERE chat=?", (chat,))  # fixed table names

    def _read(self, chat: str, place: str) -> tuple[ChatState, Stat] | None:
        """A conversation file read as it is (no repair: that is for its next use), None when unreadable."""
        # The machinery that reads conversation files loads only here, when a file changed: answering
        # from an index that is up to date (``edgechat search``, most of the time) imports none of it.
        from edgechat_tui.storage.chat_file import created_of
        from edgechat_tui.storage.chat_format import CHAT_KIND, decode_chat_record
        from edgechat_tui.storage.chat_tree import ChatState
        from edgechat_tui.storage.format import scan_file

        path = self.paths.chat_path(chat, place)
        try:
            with hold_lock(self.paths.lock, exclusive=False, create=False):
                fd = open_regular(path, os.O_RDONLY)
                if fd is None:
                    return None
                try:
                    st = os.fstat(fd)
                    data = read_range(fd, 0, st.st_size)
                finally:
                    os.close(fd)
            scan = scan_file(data, self.paths.user, path, decode_chat_record, CHAT_KIND)
        except (OSError, StorageError) as exc:
            if chat not in self._warned:
                self._warned.add(chat)
                self._warn(f"The conversation {path} is left out of the list and search: {exc}")
            return None
        state = ChatState(chat, created_of(chat))
        state.apply(scan.messages)
        return state, (place, st.st_dev, st.st_ino, len(data), st.st_mtime_ns)

    def _index_file(self, conn: sqlite3.Connection, chat: str, place: str, free: dict[int, int]) -> int:
        """(Re)index one conversation's file; how many messages it added to the search index."""
        read = self._read(chat, place)
        if read is None:
            self._forget(conn, chat)
            return 0
        state, stat = read
        rows = {mid: (row, length) for mid, row, length in
                conn.execute("SELECT mid, row, length FROM rows WHERE chat=?", (chat,))}
        added = 0
        for node in state.nodes.values():
            content = node.message.content
            old = rows.pop(node.id, None)
            if old is not None and old[1] == len(content):
                continue
            if old is not None:
                conn.execute("DELETE FROM msgs WHERE rowid=?", (old[0],))
            added += 1
            # Indexed as the pane shows it: a word inside an escape sequence is not shown, so not found.
            row = self._insert(conn, sanitize(content), chat, node.id, node.message.role,
                               node.message.time or state.created, free)
            conn.execute("INSERT OR REPLACE INTO rows VALUES(?, ?, ?, ?)", (chat, node.id, row, len(content)))
        for mid, (row, _length) in rows.items():  # messages the file no longer holds (a repair)
            conn.execute("DELETE FROM msgs WHERE rowid=?", (row,))
            conn.execute("DELETE FROM rows WHERE chat=? AND mid=?", (chat, mid))
        deleted = (state.deleted_at or state.updated) if place == "trash" else None
        conn.execute("INSERT OR REPLACE INTO chats VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
                     (chat, place, state.title, len(state.branch_nodes()), state.created, state.updated,
                      int(state.archived), deleted))
        conn.execute("INSERT OR REPLACE INTO files VALUES(?, ?, ?, ?, ?, ?)", (chat, *stat))
        return added

    @staticmethod
    def _insert(conn: sqlite3.Connection, content: str, chat: str, mid: str, role: str, when: str,
                free: dict[int, int]) -> int:
        """Index one message under a rowid that sorts as its time does (ms, then a free slot), so a
        search walks the matches newest first and stops at its limit instead of sorting them all.

        ``free`` remembers, for the transaction, the next slot of each millisecond already used: many
        messages of one millisecond (an imported history) cost one lookup each, not a walk over all
        the slots taken before them. A millisecond with more messages than slots goes on into the
        next one's, and the point lookup steps over any slot already taken there."""
        ms = stamp_ms(when) or 0
        base = max(0, min(ms, _MAX_MS)) << _SLOT_BITS
        row = free.get(base)
        if row is None:
            taken = conn.execute("SELECT max(rowid) FROM msgs WHERE rowid >= ? AND rowid < ?",
                                 (base, base + (1 << _SLOT_BITS))).fetchone()[0]
            row = base if taken is None else taken + 1
        while conn.execute("SELECT 1 FROM msgs WHERE rowid = ?", (row,)).fetchone():
            row += 1
        conn.execute("INSERT INTO msgs(rowid, content, chat, mid, role, time) VALUES(?, ?, ?, ?, ?, ?)",
                     (row, content, chat, mid, role, when))
        free[base] = row + 1
        return row

    # --- answers --------------------------------------------------------------------------------

    @staticmethod
    def _summaries(rows: Any) -> list[ConversationSummary]:
        from edgechat_tui.core.conversations import ConversationSummary
        from edgechat_tui.storage.chat_tree import purge_time

        found = []
        for chat, place, title, count, created, updated, archived, deleted in rows:
            found.append(ConversationSummary(chat, title or "", count, created, updated, bool(archived),
                                             deleted if place == "trash" else None,
                                             purge_time(deleted) if place == "trash" and deleted else None))
        return found

    def list(self, *, archived: bool = False, deleted: bool = False) -> list[ConversationSummary]:
        with self._db() as conn:
            if deleted:
                rows = conn.execute("SELECT * FROM chats WHERE place='trash' "
                                    "ORDER BY updated DESC, chat DESC")
            else:
                rows = conn.execute("SELECT * FROM chats WHERE place='active' AND archived=? "
                                    "ORDER BY updated DESC, chat DESC", (int(archived),))
            return self._summaries(rows)

    def most_recent(self) -> ConversationSummary | None:
        with self._db() as conn:
            row = conn.execute("SELECT * FROM chats WHERE place='active' AND archived=0 "
                               "ORDER BY updated DESC, chat DESC LIMIT 1").fetchone()
            return self._summaries([row])[0] if row else None

    def expired(self, now: str) -> list[str]:
        """Conversations whose 30 days in the trash are over."""
        from edgechat_tui.storage.chat_tree import purge_time

        with self._db() as conn:
            rows = conn.execute("SELECT chat, deleted FROM chats WHERE place='trash'").fetchall()
        return [chat for chat, deleted in rows if purge_time(deleted or now) <= now]

    @staticmethod
    def check_query(query: str) -> list[str]:
        """The terms of ``query``; UsageError for one that is too long or has no word."""
        if len(query) > 500:
            raise UsageError("A search is at most 500 characters.")
        terms = query_terms(query)
        if not terms:
            raise UsageError("There is nothing to search for: give a word.", hint="edgechat search WORDS")
        return terms

    def search(self, query: str, *, limit: int = 50) -> list[SearchHit]:
        """Messages of every conversation but the trash's, matching every word of ``query`` (each as
        the start of a word, case and accents folded), newest first."""
        terms = self.check_query(query)
        limit = max(1, min(int(limit), 200))
        with self._db() as conn:
            rows = conn.execute(
                "SELECT m.chat, m.mid, m.role, m.time, m.content, c.title, c.archived FROM msgs m "
                "JOIN chats c ON c.chat = m.chat WHERE msgs MATCH ? AND c.place = 'active' "
                "ORDER BY m.rowid DESC LIMIT ?", (fts_query(terms), limit)).fetchall()
        hits = []
        for chat, mid, role, time, content, title, archived in rows:
            snippet, highlights = make_snippet(content, terms)
            hits.append(SearchHit(chat, title or "", role, time, snippet, tuple(highlights), mid,
                                  bool(archived)))
        return hits
