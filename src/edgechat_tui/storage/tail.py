"""The newest messages of a conversation, read from the end of its file while the TUI starts.

The chat screen draws these in its first frame; the store (:class:`~.store.HistoryStore`), which
reads and parses the whole file, loads meanwhile in the background, and its view replaces them.
So the tail must never show something the store would not: it reads by the store's rules
(``docs/storage.md``) with the store's own parser, and where it cannot be sure it shows nothing.

- No file, an empty file, or one with only a header: no messages (``Tail.whole``).
- A torn last line (no newline yet: a write under way in another process, or one cut short; or a
  single unreadable last line): dropped, as the store drops it.
- An unreadable line before readable ones (damage): the readable turns, which are exactly what the
  store keeps when it moves the file aside. The store warns about it; the tail says nothing.
- A header that is not ours to read (a newer schema, another user's file) or no header at all, a
  link, a FIFO, a device, anything unreadable: ``None``, nothing early; the store says why.

Read-only, and lighter than the store: no lock is taken (a reader without it can see at most a
line not yet complete, which is a torn tail and dropped), no lock file is created, nothing is
repaired, cut or moved, and no mode is changed.

Which file is the current conversation is :func:`current_conversation`'s one decision.

The same read, with the messages' ids (:func:`read_branch_tail`), shows the newest messages of a long
conversation opened from the list while the whole of it is read in a thread (``ui/library.py``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgechat_tui.core.conversations import BranchMessage
from edgechat_tui.core.errors import EdgechatError
from edgechat_tui.core.messages import Message, stamp_ms
from edgechat_tui.core.userid import validate_user_id
from edgechat_tui.storage.chat_format import (
    CHAT_ID,
    CHAT_KIND,
    LIBRARY_SUFFIX,
    AppendEntry,
    MessageEntry,
    MetaEntry,
    decode_chat_record,
    id_time_ms,
)
from edgechat_tui.storage.format import HISTORY_SUFFIX, Decoder, check_header, scan_records
from edgechat_tui.storage.fs import open_regular, read_first_line, read_range

__all__ = ["EarlyTail", "Tail", "current_conversation", "read_branch_tail", "read_chat_tail", "read_tail"]

#: The first read from the end of the file; doubled until enough messages are found.
FIRST_CHUNK = 64 * 1024
#: No more than this is read from the end: a longer tail waits for the store.
MAX_CHUNK = 4 * 1024 * 1024
#: The first read for :func:`read_branch_tail` (a few messages: what fills a screen).
BRANCH_CHUNK = 16 * 1024
#: How many conversation files, changed last first, :func:`current_conversation` looks into at most.
RECENT_LOOKS = 8
#: How far a message's time may run ahead of its file's change time (a reply is stamped as it
#: begins, and written as it ends, on the same clock; the slack is for clocks stepped meanwhile).
STAMP_SLACK_MS = 2_000
#: The records read from the end of a file for its newest message (renames may follow it).
ACTIVITY_ENTRIES = 4


def current_conversation(data_dir: Path, user: str, chat: str | None = None) -> Path:
    """The file holding ``user``'s conversation ``chat``, by default the one the chat screen opens.

    With a library (``<user>.chats/``), the most recent conversation is the index's: the active one
    with the newest message (its creation when it has none; the later id on a tie). It is found
    without the index (SQLite, and maybe a rebuild, are the store's to do): the files changed last are
    looked into, newest change first, reading the end of each (:func:`_activity`), until the next
    file's change is older than the newest message found. A rename, an archive or a restore changes
    a file but not its newest message, so an older conversation renamed is not taken for the most
    recent one. Past :data:`RECENT_LOOKS` files the newest found is taken; at worst the store's view
    replaces the early one. Before the first migration, the old single history file.
    """
    user = validate_user_id(user)
    folder = Path(data_dir) / f"{user}{LIBRARY_SUFFIX}"
    if chat is not None:
        if not CHAT_ID.fullmatch(chat):
            raise ValueError("not a conversation id")
        return folder / f"{chat}{HISTORY_SUFFIX}"
    try:
        with os.scandir(folder) as found:
            files = [(item.stat(follow_symlinks=False).st_mtime_ns, item.path) for item in found
                     if item.name.endswith(HISTORY_SUFFIX)
                     and CHAT_ID.fullmatch(item.name[:-len(HISTORY_SUFFIX)])
                     and item.is_file(follow_symlinks=False)]
    except FileNotFoundError:
        return Path(data_dir) / f"{user}{HISTORY_SUFFIX}"
    if not files:
        return folder / f"none{HISTORY_SUFFIX}"  # nothing yet: no file, an empty view
    files.sort(reverse=True)
    best: tuple[int, str, str] | None = None  # (newest activity in ms, file name, path)
    for changed_ns, path in files[:RECENT_LOOKS]:
        if best is not None and changed_ns // 1_000_000 + STAMP_SLACK_MS < best[0]:
            break  # changed before the newest message found was written: nothing newer in it
        activity = _activity(Path(path), user)
        found = None if activity is None else (activity, os.path.basename(path), path)
        if found is not None and (best is None or found > best):
            best = found
    return Path(best[2] if best is not None else files[0][1])


def _activity(path: Path, user: str) -> int | None:
    """When (ms) the conversation at ``path`` last had a message, by the end of its file: the newest
    time of a message or a continuation there, else its creation (its id's time); None when the end
    of the file says it is archived, or it cannot be read early."""
    tail = read_tail(path, user, ACTIVITY_ENTRIES, kind=CHAT_KIND, decode=decode_chat_record,
                     first_chunk=BRANCH_CHUNK)
    if tail is None:
        return None
    newest: int | None = None
    archived = False
    for entry in tail.messages:
        when = None
        if isinstance(entry, MessageEntry):
            when = entry.message.time
        elif isinstance(entry, AppendEntry):
            when = entry.time
        elif isinstance(entry, MetaEntry) and "archived" in entry.fields:
            archived = bool(entry.fields["archived"])
        ms = stamp_ms(when)
        if ms is not None and (newest is None or ms > newest):
            newest = ms
    if archived:
        return None
    return newest if newest is not None else id_time_ms(path.name[:-len(HISTORY_SUFFIX)])


def read_chat_tail(path: Path, user: str, count: int) -> Tail | None:
    """:func:`read_tail` for a conversation of the library (a tree of messages): the newest messages
    when they are sure to be the current branch, else None.

    Sure means: the records read are messages only, each the child of the one before (a regenerated
    or edited message, a branch switch, a continued reply, an archived or deleted conversation all
    leave it to the store), so the last one is the branch's leaf and what comes before it is its
    branch. A conversation whose file does not exist yet is empty.
    """
    chain = _read_chain(path, user, count)
    if chain is None or isinstance(chain, Tail):
        return chain
    entries, whole = chain
    return Tail(Path(path), [entry.message for entry in entries], whole)


def read_branch_tail(path: Path, user: str, count: int) -> list[BranchMessage] | None:
    """The newest ``count`` messages (fewer if it holds fewer) of the current branch of the library's
    conversation at ``path``, as :meth:`ChatState.branch` gives them (ids, parents, siblings), when the
    end of the file is sure to be that branch (:func:`read_chat_tail`'s rules); None when it is not,
    when the file holds no message or is not there (it may be in the trash): the whole read decides.

    Every message of the chain but the first has one sibling, itself: a sibling would be another child
    of the message before it, written after it, so in the chain. The first one's siblings may lie
    before what was read: it is left out unless the read reached the header."""
    chain = _read_chain(path, user, count + 1, BRANCH_CHUNK)
    if chain is None or isinstance(chain, Tail):
        return None
    entries, whole = chain
    if not whole:
        entries = entries[1:]
    return [BranchMessage(entry.message, entry.id, entry.parent, (entry.id,), entry.truncated)
            for entry in entries[-count:]] or None


def _read_chain(path: Path, user: str, count: int, first_chunk: int | None = None,
                ) -> tuple[list[MessageEntry], bool] | Tail | None:
    """The message entries at the end of the file when they are a chain to its last message (and
    whether the read reached the header); the Tail itself when it holds no message; else None."""
    tail = read_tail(path, user, count, kind=CHAT_KIND, decode=decode_chat_record, first_chunk=first_chunk)
    if tail is None or not tail.messages:
        return tail
    entries: list[MessageEntry] = []
    previous: str | None = None
    first = True
    for entry in tail.messages:
        if isinstance(entry, MetaEntry):
            if entry.fields.get("archived") or entry.fields.get("deleted"):
                return None
            continue
        if not isinstance(entry, MessageEntry):
            return None  # a switch or an appended continuation: the store works the branch out
        if first:
            if tail.whole and entry.parent is not None:
                return None
        elif entry.parent != previous:
            return None
        first = False
        previous = entry.id
        entries.append(entry)
    return entries, tail.whole


@dataclass(frozen=True)
class Tail:
    """The newest ``messages`` of the file at ``path``, oldest first."""

    path: Path
    messages: list[Message]
    #: True when the messages are the whole conversation (the read reached the header).
    whole: bool


def read_tail(path: Path, user: str, count: int, *, kind: str = "history",
              decode: Decoder | None = None, first_chunk: int | None = None) -> Tail | None:
    """At least ``count`` of the newest messages of ``user``'s history at ``path`` (fewer if it holds
    fewer), or None when the file cannot be shown early (see the module's rules). Never raises.

    ``kind`` and ``decode``: the header's kind and the record reader, for a conversation of the
    library (then ``messages`` holds the records' entries: :func:`read_chat_tail` reads them);
    ``first_chunk``: the first read's size (default :data:`FIRST_CHUNK`), doubled until enough."""
    try:
        user = validate_user_id(user)
        fd = open_regular(Path(path), os.O_RDONLY)
    except (OSError, EdgechatError):
        return None
    if fd is None:
        return Tail(Path(path), [], True)
    try:
        return _read(fd, Path(path), user, count, kind, decode, first_chunk or FIRST_CHUNK)
    except (OSError, EdgechatError, ValueError):
        return None
    finally:
        os.close(fd)


def _read(fd: int, path: Path, user: str, count: int, kind: str, decode: Decoder | None,
          chunk: int) -> Tail | None:
    size = os.fstat(fd).st_size
    if size == 0:
        return Tail(path, [], True)
    header, complete = read_first_line(fd)
    if not complete:
        return Tail(path, [], True)  # a torn header: the store shows an empty conversation too
    if check_header(header, user, path, kind) is not None:  # raises for a newer schema or another user
        return None
    body = len(header) + 1  # where the first turn starts
    while True:
        start = max(body, size - chunk)
        if start == body:
            messages = scan_records(read_range(fd, body, size - body), body, decode=decode).messages
            return Tail(path, messages, True)
        # One byte before ``start``, to know whether ``start`` begins a line; then drop the
        # partial first line (its start lies before the chunk).
        data = read_range(fd, start - 1, size - start + 1)
        first = data.find(b"\n")
        if first >= 0:
            messages = scan_records(data, start - 1, first + 1, decode=decode).messages
            if len(messages) >= count or chunk >= MAX_CHUNK:
                return Tail(path, messages, False)
        elif chunk >= MAX_CHUNK:
            return Tail(path, [], False)
        chunk *= 2


class EarlyTail:
    """:func:`read_tail` in a thread of its own, started at once (before Textual is imported).

    :meth:`result` never waits; :meth:`when_done` runs a callback once the read is over (in the
    reading thread, or at once when it already is).
    """

    def __init__(self, path: Path, user: str, count: int) -> None:
        self.path = path
        self._done = threading.Event()
        self._result: Tail | None = None
        self._callbacks: list[Callable[[Tail | None], None]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, args=(path, user, count),
                                        name="edgechat-tail", daemon=True)
        self._thread.start()

    def _run(self, path: Path, user: str, count: int) -> None:
        # Nothing may escape this thread: a traceback printed now would land on the TUI's screen.
        try:
            result = (read_chat_tail if path.parent.name.endswith(LIBRARY_SUFFIX) else read_tail)(
                path, user, count)
        except Exception:
            result = None
        with self._lock:
            self._result = result
            self._done.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            try:
                callback(result)
            except Exception:
                pass

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def result(self) -> Tail | None:
        """The tail, or None when it is not read yet or cannot be shown early."""
        return self._result if self._done.is_set() else None

    def when_done(self, callback: Callable[[Tail | None], None]) -> None:
        with self._lock:
            if not self._done.is_set():
                self._callbacks.append(callback)
                return
        callback(self._result)

    def wait(self, timeout: float | None = None) -> Tail | None:
        """Wait for the read (tests and tools; the app never waits)."""
        self._done.wait(timeout)
        return self.result()
