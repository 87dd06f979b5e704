"""Per-user conversation history: one append-only JSON Lines file per user.

Why this shape:

- **Append-only JSON Lines** makes saving a turn cost the same whether the history holds two messages or
  a hundred thousand: a turn is one line written at the end of the file, never a rewrite.
- **One line per turn** (the user's message and the reply together) makes a turn one unit on disk: it is
  there whole or not at all, and the pair is always adjacent even when several processes write.
- **A sidecar lock file** (``<user>.lock``, ``fcntl.flock``) serialises writers across processes. It is a
  separate file so that archiving (a rename of the history file) cannot pull the lock out from under a
  process that holds it.
- **Damage is never destroyed**: a torn last line is cut off only after its bytes are kept in a
  ``<user>.torn-<time>`` file; an unreadable file is moved aside to ``<user>.corrupt-<time>`` and the readable
  turns carried over into a fresh file. See docs/storage.md for every case.

The file starts with a header line naming the schema version and the user it belongs to::

    {"edgechat": "history", "schema": 1, "user": "alice", "created": "2025-01-01T12:00:00.000Z"}
    {"messages":[{"role":"user","content":"hi","time":"..."},{"role":"assistant","content":"hello",...}]}

The user id in the header matters on case-insensitive file systems, where ``Alice.jsonl`` and
``alice.jsonl`` are one file: a store refuses a file whose header names another user rather than show one
user another's conversation.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import re
import secrets
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edgechat_tui.core.errors import NewerSchemaError, StorageError
from edgechat_tui.core.messages import Message, now_iso
from edgechat_tui.core.userid import validate_user_id

__all__ = [
    "SCHEMA_VERSION",
    "HistoryStore",
    "UserSummary",
    "encode_header",
    "encode_turn",
    "list_users",
]

#: The version of the file format this code writes and reads. A file with a higher one is left untouched.
SCHEMA_VERSION = 1
HISTORY_SUFFIX = ".jsonl"
#: How long to wait for another process's lock before giving up. Writers hold it for milliseconds, so a
#: wait this long means a process is stuck (on a hung network file system, say), not merely busy.
LOCK_TIMEOUT = 30.0

_log = logging.getLogger(__name__)
_DATA_DIR_HINT = "check the folder's permissions, or choose another with --data-dir or EDGECHAT_DATA_DIR"
# Errors from link() that mean "this file system cannot make hard links", not "something is wrong".
_NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV, errno.ENOSYS}


# --- The format -----------------------------------------------------------------------------------


def encode_header(user: str, created: str | None = None, **extra: str) -> bytes:
    """The first line of a history file: format, schema version, owner, creation time."""
    header: dict[str, Any] = {"edgechat": "history", "schema": SCHEMA_VERSION, "user": user,
                              "created": created or now_iso(), **extra}
    return (json.dumps(header, ensure_ascii=False) + "\n").encode("utf-8")


def encode_turn(user_message: Message, reply: Message) -> bytes:
    """One turn as one line: the unit that is either on disk whole or not at all."""
    return _encode_line({"messages": [user_message.to_json(), reply.to_json()]})


def _encode_line(record: dict[str, Any]) -> bytes:
    # json.dumps escapes newlines and control characters, so a record can never span two lines.
    text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    try:
        return (text + "\n").encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (from a broken decoder upstream) has no UTF-8 form; \u escapes keep it valid.
        return (json.dumps(record, ensure_ascii=True, separators=(",", ":")) + "\n").encode("ascii")


def _decode_record(line: bytes) -> list[Message] | None:
    """The messages of one turn line, or None when the line is not a readable turn."""
    try:
        data = json.loads(line.decode("utf-8"))
        if not isinstance(data, dict):
            return None
        messages = data.get("messages")
        if not isinstance(messages, list) or not messages:
            return None
        return [Message.from_json(m) for m in messages]
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None


def _check_header(line: bytes, user: str, path: Path) -> str | None:
    """None when ``line`` is a header this code may use for ``user``; else why it is not a header.

    Raises NewerSchemaError for a newer format and StorageError for a file that belongs to another user:
    both mean "do not touch this file", unlike a missing header, which is damage to recover from.
    """
    try:
        data = json.loads(line.decode("utf-8"))
    except (ValueError, RecursionError):
        return "its first line is not an edgechat history header"
    if not isinstance(data, dict) or data.get("edgechat") != "history":
        return "its first line is not an edgechat history header"
    schema = data.get("schema")
    if not isinstance(schema, int) or isinstance(schema, bool) or schema < 1:
        return "its header has no valid schema version"
    if schema > SCHEMA_VERSION:
        raise NewerSchemaError(
            f"The history file {path} was written by a newer edgechat (format version {schema}; "
            f"this one reads version {SCHEMA_VERSION}). It was left untouched.",
            hint="upgrade edgechat to use this history",
        )
    owner = data.get("user")
    if not isinstance(owner, str):
        return "its header names no user"
    if owner != user:
        raise _foreign_file_error(path, user, owner)
    return None


def _foreign_file_error(path: Path, user: str, owner: str) -> StorageError:
    try:
        shown = repr(validate_user_id(owner))
    except Exception:
        shown = "another user"  # not a valid id: do not echo file content
    if owner.lower() == user.lower():
        return StorageError(
            f"The history file {path} belongs to user {shown}, not {user!r}: user ids that differ only in "
            "case share one file on this file system. It was left untouched.",
            hint=f"use the user id {shown}, or a user id that differs by more than case",
        )
    return StorageError(
        f"The history file {path} belongs to user {shown}, not {user!r}. It was left untouched.",
        hint="move the file away if it was copied there by mistake",
    )


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """Bytes read from a history file under its lock, to be parsed after the lock is released."""

    identity: tuple[int, int]  # (st_dev, st_ino): which file it was
    data: bytes
    full: bool  # the whole file, or only what follows the last read


@dataclass
class _Scan:
    """What reading (part of) a history file found."""

    messages: list[Message]
    end: int  # offset just past the last readable record: where the next record belongs
    size: int  # the file's size when read; more than ``end`` when a torn last line follows
    damage: str | None = None  # why the file must be moved aside, None when it need not be


def _lines(data: bytes, start: int = 0) -> Iterator[tuple[int, int, bool]]:
    """(start, stop, complete) of each line; stop excludes the newline; the last may lack one."""
    pos = start
    while pos < len(data):
        newline = data.find(b"\n", pos)
        if newline < 0:
            yield pos, len(data), False
            return
        yield pos, newline, True
        pos = newline + 1


def _scan_records(data: bytes, base: int, start: int = 0) -> _Scan:
    """Read turn lines from ``data[start:]`` (the bytes of the file from offset ``base``).

    Anything after the last readable record that is at most one line (a fragment without a newline,
    or one unreadable line) is a torn tail: what a write cut short leaves. Unreadable lines followed by
    readable ones, or several unreadable lines at the end, are damage.
    """
    messages: list[Message] = []
    end = start  # relative to data
    pending = 0  # unreadable lines (and fragments) since the last readable record
    damaged = 0
    for line_start, stop, complete in _lines(data, start):
        line = data[line_start:stop]
        if complete and not line.strip():
            if pending == 0:
                end = stop + 1  # blank lines carry nothing; step over them
            continue
        turn = _decode_record(line) if complete else None
        if turn is None:
            pending += 1
            continue
        damaged += pending
        pending = 0
        messages.extend(turn)
        end = stop + 1
    scan = _Scan(messages, base + end, base + len(data))
    if pending > 1:
        damaged += pending
    if damaged:
        scan.damage = f"{damaged} of its lines cannot be read"
    return scan


def _scan_file(data: bytes, user: str, path: Path) -> _Scan:
    """Read a whole history file: its header, then its turns."""
    if not data:
        return _Scan([], 0, 0)  # an empty file: no history yet (the header comes with the first turn)
    first = next(_lines(data))
    if not first[2]:
        # Only a fragment: a header cut short. Nothing was ever saved after it, so it is a torn tail.
        return _Scan([], 0, len(data))
    problem = _check_header(data[: first[1]], user, path)
    if problem is None:
        return _scan_records(data, 0, first[1] + 1)
    # No usable header: keep whatever turns can be read, and move the file aside.
    scan = _scan_records(data, 0, 0)
    scan.damage = problem
    return scan


# --- Errors ---------------------------------------------------------------------------------------


def _storage_error(exc: OSError, doing: str, path: Path) -> StorageError:
    """A StorageError a user can act on, from the OSError that ``doing`` (e.g. "write") ``path`` raised."""
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        return StorageError(f"The disk is full: could not {doing} {path}.",
                            hint="free some disk space and try again; nothing was saved by this attempt")
    if code == errno.EROFS:
        return StorageError(f"Could not {doing} {path}: the file system is read-only.", hint=_DATA_DIR_HINT)
    if code in (errno.EACCES, errno.EPERM):
        return StorageError(f"Could not {doing} {path}: permission denied.", hint=_DATA_DIR_HINT)
    if code == errno.ENOTDIR:
        return StorageError(f"Could not {doing} {path}: a part of that path is a file, not a folder.",
                            hint=_DATA_DIR_HINT)
    if code == errno.EFBIG:
        return StorageError(f"Could not {doing} {path}: the file would exceed a file size limit.",
                            hint="archive the conversation (reset) or raise the limit")
    reason = exc.strerror or type(exc).__name__
    return StorageError(f"Could not {doing} {path}: {reason}.", hint=_DATA_DIR_HINT)


# --- Small file-system helpers --------------------------------------------------------------------


def _fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable (its entry lives in the directory)."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _read_range(fd: int, start: int, length: int) -> bytes:
    chunks = []
    while length > 0:
        chunk = os.pread(fd, min(length, 1 << 24), start)
        if not chunk:
            break
        chunks.append(chunk)
        start += len(chunk)
        length -= len(chunk)
    return b"".join(chunks)


def _stamp() -> str:
    """A file-name-safe UTC time (no colons: they are not allowed in file names everywhere)."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def _free_name(directory: Path, make: Callable[[str], str]) -> Path:
    """The first ``make(stamp)``, ``make(stamp-2)``... that does not exist yet (never overwrite)."""
    stamp = _stamp()
    candidate = directory / make(stamp)
    n = 1
    while os.path.lexists(candidate):
        n += 1
        candidate = directory / make(f"{stamp}-{n}")
    return candidate


def _acquire(fd: int, operation: int, lock_path: Path, timeout: float) -> None:
    """flock with a deadline, so a stuck process elsewhere gives an error instead of a hang."""
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while True:
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        except OSError as exc:
            raise _storage_error(exc, "lock", lock_path) from exc
        if time.monotonic() >= deadline:
            raise StorageError(
                f"Another process has held the history lock {lock_path} for more than {timeout:.0f} s.",
                hint="close other edgechat sessions for this user, or end the one that is stuck",
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.005)


# --- The store ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserSummary:
    """One user's history as ``edgechat users`` shows it.

    ``problem`` says why the file could not be fully read (damaged, newer format, another user's);
    ``message_count`` then counts only what could be read.
    """

    user: str
    message_count: int
    last_activity: str | None
    path: Path
    problem: str | None = field(default=None)


class HistoryStore:
    """One user's conversation on disk, shared safely with other edgechat processes.

    The store keeps the messages it has read and the offset where its reading stopped, so that
    :meth:`refresh` and :meth:`append_turn` read only what other processes added since. Separate
    instances (in one process or many) coordinate through the lock file; one instance may also be used
    from several threads (the agent reads history in a worker thread while it saves on the event loop).
    """

    def __init__(self, data_dir: Path, user: str, *, warn: Callable[[str], None] | None = None) -> None:
        # Validate before anything else: the id becomes a file name.
        self.user = validate_user_id(user)
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / f"{user}{HISTORY_SUFFIX}"
        self.lock_path = self.data_dir / f"{user}.lock"
        self._warn = warn if warn is not None else _log.warning
        self._messages: list[Message] = []
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the file last read
        self._end = 0  # offset just past the last readable record
        self._size = 0  # the file's size at the last read (more than _end when a torn tail follows)
        self._damage: str | None = None
        self._announced_tail: tuple[object, ...] | None = None
        self._mutex = threading.RLock()  # guards the cached state above within this process

    # -- Reading -------------------------------------------------------------------------------------

    @property
    def messages(self) -> list[Message]:
        """The messages as of the last load, refresh or append (a copy: changing it changes nothing)."""
        with self._mutex:
            return list(self._messages)

    def message_count(self) -> int:
        """How many messages the history holds, as of the last load, refresh or append."""
        with self._mutex:
            return len(self._messages)

    def load(self) -> list[Message]:
        """Read the whole history from disk.

        A torn last line is dropped (with a warning). A damaged file is moved aside to
        ``<user>.corrupt-<time>`` and its readable turns carried over into a new file (with a warning
        saying where). Raises NewerSchemaError for a newer format, StorageError for a file that belongs
        to another user or that cannot be read.
        """
        with self._mutex:
            self._forget()
            return self._read()

    def refresh(self) -> list[Message]:
        """Pick up what other processes appended since the last read, reading only the new bytes.

        Reads the whole file again only if it was replaced (archived, recovered) meanwhile. Returns all
        messages.
        """
        with self._mutex:
            if self._identity is not None:
                try:
                    st = os.stat(self.path)
                except FileNotFoundError:
                    self._forget()  # archived by another process: the conversation starts afresh
                    return []
                except OSError as exc:
                    raise _storage_error(exc, "read", self.path) from exc
                unchanged = (st.st_dev, st.st_ino) == self._identity and st.st_size == self._size
                # With a torn tail pending, another process may have cut it and appended a record of
                # the same length, so an unchanged size proves nothing: read again.
                if unchanged and self._size == self._end:
                    return list(self._messages)
            return self._read()

    def _read(self) -> list[Message]:
        snapshot = self._snapshot() if self._path_exists() else None
        if snapshot is not None and not self._apply(snapshot):
            self._forget()
            snapshot = self._snapshot()
            if snapshot is not None:
                self._apply(snapshot)
        if snapshot is None:
            self._forget()
            return []
        if self._damage is not None:
            try:
                with self._locked(exclusive=True):
                    self._repair()
            except NewerSchemaError:
                raise
            except StorageError as exc:
                # Show what can be read; saving stays impossible until the file can be moved aside.
                self._warn(
                    f"The history file {self.path} is damaged ({self._damage}) and could not be moved aside: "
                    f"{exc}. Showing the {len(self._messages)} messages that could be read."
                )
        self._announce_tail()
        return list(self._messages)

    def _path_exists(self) -> bool:
        try:
            os.stat(self.path)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise _storage_error(exc, "read", self.path) from exc
        return True

    def _open_existing(self, flags: int) -> int | None:
        """Open the history file, or None if it does not exist. Refuses anything but a regular file."""
        try:
            # O_NONBLOCK so that a FIFO in its place cannot hang us; it has no effect on regular files.
            fd = os.open(self.path, flags | os.O_NONBLOCK)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _storage_error(exc, "open", self.path) from exc
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise StorageError(f"{self.path} is not a regular file.",
                                   hint="move it away; edgechat keeps each user's history in a plain file")
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _forget(self) -> None:
        self._messages = []
        self._identity = None
        self._end = self._size = 0
        self._damage = None

    def _sync(self, fd: int) -> None:
        """Bring the cached messages up to date with the open file (the caller holds the lock)."""
        if not self._apply(self._fetch(fd)):
            self._forget()
            self._apply(self._fetch(fd))

    def _fetch(self, fd: int) -> _Snapshot:
        """Read what is new since the last read, or the whole file if it is not the one last read.

        Only this needs the lock; parsing (the slow part of a long history) can happen after it.
        """
        try:
            st = os.fstat(fd)
            identity = (st.st_dev, st.st_ino)
            if identity == self._identity and st.st_size >= self._end and self._damage is None:
                return _Snapshot(identity, _read_range(fd, self._end, st.st_size - self._end), full=False)
            # A new file (first read, archived, repaired), or one that shrank or is damaged.
            return _Snapshot(identity, _read_range(fd, 0, st.st_size), full=True)
        except OSError as exc:
            raise _storage_error(exc, "read", self.path) from exc

    def _apply(self, snapshot: _Snapshot) -> bool:
        """Take a snapshot into the cache. False when new bytes show damage: read the whole file then."""
        if not snapshot.full:
            scan = _scan_records(snapshot.data, self._end)
            if scan.damage is not None:
                return False
            self._messages.extend(scan.messages)
            self._end, self._size = scan.end, scan.size
            return True
        scan = _scan_file(snapshot.data, self.user, self.path)
        self._messages = scan.messages
        self._identity = snapshot.identity
        self._end, self._size = scan.end, scan.size
        self._damage = scan.damage
        return True

    def _snapshot(self) -> _Snapshot | None:
        """Under the shared lock, what :meth:`_fetch` reads; None when there is no file."""
        with self._locked(exclusive=False):
            fd = self._open_existing(os.O_RDONLY)
            if fd is None:
                return None
            try:
                return self._fetch(fd)
            finally:
                os.close(fd)

    def _announce_tail(self) -> None:
        tail = self._size - self._end
        if tail <= 0 or self._damage is not None:
            return
        key = (self._identity, self._end, self._size)
        if key == self._announced_tail:
            return
        self._announced_tail = key
        self._warn(
            f"The last entry of {self.path} is incomplete ({tail} bytes, most likely a write that was "
            f"interrupted) and was skipped. Its bytes will be kept in {self.user}.torn-<time> when the "
            "next turn is saved."
        )

    # -- Writing -------------------------------------------------------------------------------------

    def append_turn(self, user_message: Message, reply: Message) -> int:
        """Save a completed turn durably and return the number of stored messages.

        The turn is one line, written under the exclusive lock after picking up other processes'
        turns, and fsync'ed (with the folder, when the file is new) before this returns. On failure
        nothing of the turn remains on disk and StorageError says why.
        """
        if not isinstance(user_message, Message) or not isinstance(reply, Message):
            raise TypeError("append_turn takes two Message objects")
        if user_message.role != "user" or reply.role != "assistant":
            raise ValueError("a turn is a user message followed by an assistant reply")
        record = encode_turn(user_message, reply)
        with self._mutex:
            return self._append(user_message, reply, record)

    def _append(self, user_message: Message, reply: Message, record: bytes) -> int:
        self._ensure_data_dir()
        with self._locked(exclusive=True):
            fd = self._open_existing(os.O_RDWR | os.O_APPEND)
            if fd is None:
                self._forget()
                self._create(encode_header(self.user) + record)
            else:
                fd = self._prepare_to_append(fd)
                try:
                    # An empty file (or one whose torn header was just cut) gets its header now.
                    payload = record if self._end > 0 else encode_header(self.user) + record
                    self._write_durably(fd, payload)
                finally:
                    os.close(fd)
            self._messages += (user_message, reply)
            return len(self._messages)

    def _prepare_to_append(self, fd: int) -> int:
        """Under the exclusive lock: take in others' turns, repair damage, cut a torn last line.

        Returns the descriptor to append to (a new one if the file was repaired, i.e. replaced).
        """
        try:
            self._sync(fd)
            if self._damage is not None:
                os.close(fd)
                fd = -1
                self._repair()
                reopened = self._open_existing(os.O_RDWR | os.O_APPEND)
                if reopened is None:  # cannot happen under the lock, but never write blind
                    raise StorageError(f"The history file {self.path} vanished while being repaired.")
                fd = reopened
                self._sync(fd)
            if self._size > self._end:
                self._cut_tail(fd)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            raise
        return fd

    def _write_durably(self, fd: int, payload: bytes) -> None:
        """Append ``payload`` and fsync; on failure take the partial write back off."""
        try:
            _write_all(fd, payload)
            os.fsync(fd)
        except OSError as exc:
            try:
                os.ftruncate(fd, self._end)
                os.fsync(fd)
            except OSError:
                pass  # what remains is a torn tail: the next read drops it and the next write cuts it
            raise _storage_error(exc, "save the turn to", self.path) from exc
        self._end += len(payload)
        self._size = self._end

    def _create(self, content: bytes) -> None:
        """Create the history file whole (temp file + rename), so no reader ever sees half a header."""
        tmp = self._write_temp(content)
        try:
            os.replace(tmp, self.path)
            _fsync_dir(self.data_dir)
            st = os.stat(self.path)
        except OSError as exc:
            _unlink_quietly(tmp)
            raise _storage_error(exc, "create", self.path) from exc
        self._identity = (st.st_dev, st.st_ino)
        self._end = self._size = len(content)

    def _write_temp(self, content: bytes) -> Path:
        """Write ``content`` to a new temp file beside the history, durably, for an atomic rename."""
        self._remove_stale_temps()
        tmp = self.data_dir / f"{self.user}{HISTORY_SUFFIX}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise _storage_error(exc, "create", tmp) from exc
        try:
            _write_all(fd, content)
            os.fsync(fd)
        except OSError as exc:
            os.close(fd)
            _unlink_quietly(tmp)
            raise _storage_error(exc, "write", tmp) from exc
        os.close(fd)
        return tmp

    def _remove_stale_temps(self) -> None:
        """Delete temp files that a killed process left behind.

        Temp files are written only under the exclusive lock, which the caller holds, so any that exist
        belong to a process that died before renaming it. Each held a new file whose first turn was
        never reported saved, or a repaired copy of a file that was kept aside: nothing is lost.
        """
        pattern = re.compile(re.escape(f"{self.user}{HISTORY_SUFFIX}.") + r"\d+-[0-9a-f]{8}\.tmp")
        try:
            stale = [entry.path for entry in os.scandir(self.data_dir) if pattern.fullmatch(entry.name)]
        except OSError:
            return  # only tidying: the write that follows reports any real problem
        for path in stale:
            _unlink_quietly(Path(path))

    def _cut_tail(self, fd: int) -> None:
        """Cut the torn last line off (so the next record is not glued to it), keeping its bytes."""
        try:
            tail = _read_range(fd, self._end, self._size - self._end)
        except OSError as exc:
            raise _storage_error(exc, "read", self.path) from exc
        kept = _free_name(self.data_dir, lambda stamp: f"{self.user}.torn-{stamp}")
        try:
            out = os.open(kept, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                _write_all(out, tail)
                os.fsync(out)
            finally:
                os.close(out)
            _fsync_dir(self.data_dir)
        except OSError as exc:
            _unlink_quietly(kept)
            raise _storage_error(exc, "save the incomplete last entry to", kept) from exc
        try:
            os.ftruncate(fd, self._end)
            os.fsync(fd)
        except OSError as exc:
            raise _storage_error(exc, "cut the incomplete last entry from", self.path) from exc
        self._size = self._end
        self._warn(
            f"Removed an incomplete last entry ({len(tail)} bytes) from {self.path}; "
            f"its bytes are kept in {kept}."
        )

    def _repair(self) -> None:
        """Under the exclusive lock: move a damaged file aside and carry its readable turns over."""
        fd = self._open_existing(os.O_RDONLY)
        if fd is None:
            self._forget()
            return
        try:
            self._forget()
            self._sync(fd)  # read afresh: another process may have repaired it already
            if self._damage is None:
                return
            try:
                data = _read_range(fd, 0, self._size)
            except OSError as exc:
                raise _storage_error(exc, "read", self.path) from exc
        finally:
            os.close(fd)
        readable = self._readable_lines(data)
        aside = _free_name(self.data_dir, lambda stamp: f"{self.user}.corrupt-{stamp}")
        content = encode_header(self.user, recovered_from=aside.name) + b"".join(readable)
        tmp = self._write_temp(content)
        try:
            try:
                # A hard link keeps the damaged file at its own name until the new one replaces it, so
                # there is no moment without a history file.
                os.link(self.path, aside)
            except OSError as exc:
                if exc.errno not in _NO_HARD_LINKS:
                    raise
                os.rename(self.path, aside)
            os.replace(tmp, self.path)
            _fsync_dir(self.data_dir)
        except OSError as exc:
            _unlink_quietly(tmp)
            raise _storage_error(exc, "move aside the damaged", self.path) from exc
        reason, recovered = self._damage, len(self._messages)
        self._forget()
        fd = self._open_existing(os.O_RDONLY)
        if fd is not None:
            try:
                self._sync(fd)
            finally:
                os.close(fd)
        self._warn(
            f"The history file {self.path} was damaged ({reason}). It was moved to {aside} (kept, never "
            f"overwritten), and the {recovered} messages that could be read were kept in a new "
            f"{self.path.name}."
        )

    def _readable_lines(self, data: bytes) -> list[bytes]:
        """The raw turn lines of ``data`` that can be read, each ending with a newline."""
        kept = []
        for start, stop, complete in _lines(data):
            if complete and _decode_record(data[start:stop]) is not None:
                kept.append(data[start : stop + 1])
        return kept

    def archive(self) -> Path | None:
        """Start a new conversation: rename the history to ``<user>.<time>.archived`` (never delete it).

        Returns the archive's path, or None when there was no history. Refuses (with NewerSchemaError or
        StorageError) a file of a newer format or of another user.
        """
        with self._mutex:
            if not self._path_exists():  # without creating the folder just to find nothing
                self._forget()
                return None
            return self._archive()

    def _archive(self) -> Path | None:
        with self._locked(exclusive=True):
            fd = self._open_existing(os.O_RDONLY)
            if fd is None:
                self._forget()
                return None
            try:
                head = _read_range(fd, 0, 1 << 16)
            except OSError as exc:
                raise _storage_error(exc, "read", self.path) from exc
            finally:
                os.close(fd)
            first = next(_lines(head), None)
            if first is not None and first[2]:
                _check_header(head[: first[1]], self.user, self.path)  # raises if not ours to move
            target = _free_name(self.data_dir, lambda stamp: f"{self.user}.{stamp}.archived")
            try:
                try:
                    os.link(self.path, target)  # never replaces an existing file, unlike rename
                    os.unlink(self.path)
                except OSError as exc:
                    if exc.errno not in _NO_HARD_LINKS:
                        raise
                    os.rename(self.path, target)
                _fsync_dir(self.data_dir)
            except OSError as exc:
                raise _storage_error(exc, "archive", self.path) from exc
            self._forget()
            return target

    # -- Locking and the folder ----------------------------------------------------------------------

    def _ensure_data_dir(self) -> None:
        try:
            self.data_dir.mkdir(mode=0o700, parents=True)
            os.chmod(self.data_dir, 0o700)  # mkdir's mode is filtered by the umask
        except FileExistsError:
            if not self.data_dir.is_dir():
                raise StorageError(f"The history folder {self.data_dir} is a file, not a folder.",
                                   hint=_DATA_DIR_HINT) from None
        except OSError as exc:
            raise _storage_error(exc, "create the history folder", self.data_dir) from exc

    @contextmanager
    def _locked(self, *, exclusive: bool, create: bool = True) -> Iterator[None]:
        """Hold the user's lock: exclusive to write, shared to read (so no write is seen half done).

        A reader that cannot open the lock file (a read-only folder) reads without it: nobody can be
        writing there either. ``create=False`` (for listing) reads without it when it does not exist.
        """
        fd = self._open_lock_file(exclusive, create)
        if fd is None:
            yield
            return
        try:
            _acquire(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH, self.lock_path, LOCK_TIMEOUT)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def _open_lock_file(self, exclusive: bool, create: bool) -> int | None:
        try:
            return os.open(self.lock_path, os.O_RDWR | (os.O_CREAT if create or exclusive else 0), 0o600)
        except OSError as exc:
            if exclusive:
                if exc.errno == errno.ENOTDIR:
                    raise StorageError(f"The history folder {self.data_dir} is a file, not a folder.",
                                       hint=_DATA_DIR_HINT) from exc
                raise _storage_error(exc, "create the lock file", self.lock_path) from exc
        try:
            return os.open(self.lock_path, os.O_RDONLY)  # flock works on a read-only descriptor too
        except OSError:
            return None


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def list_users(data_dir: Path) -> list[UserSummary]:
    """Every user with a history in ``data_dir``, by user id, with message counts and last activity.

    Read-only: a damaged file is counted as far as it can be read and reported in ``problem``, never
    moved or cut (that happens when its own user next uses it).
    """
    data_dir = Path(data_dir)
    try:
        names = sorted(entry.name for entry in os.scandir(data_dir) if entry.name.endswith(HISTORY_SUFFIX))
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise _storage_error(exc, "list", data_dir) from exc
    summaries = []
    for name in names:
        user = name[: -len(HISTORY_SUFFIX)]
        try:
            validate_user_id(user)
        except Exception:
            continue  # not a history file of ours
        path = data_dir / name
        store = HistoryStore(data_dir, user, warn=lambda _message: None)
        problem = None
        try:
            with store._locked(exclusive=False, create=False):
                fd = store._open_existing(os.O_RDONLY)
                if fd is None:
                    continue
                try:
                    store._sync(fd)
                finally:
                    os.close(fd)
        except StorageError as exc:
            problem = exc.message
        if store._damage is not None:
            problem = f"damaged: {store._damage}"
        messages = store._messages
        last = (messages[-1].time or None) if messages else None
        summaries.append(UserSummary(user, len(messages), last, path, problem))
    return summaries
