"""Per-user conversation history: one append-only JSON Lines file per user (``HistoryStore``).

Why this shape:

- **Append-only JSON Lines** makes saving a turn cost the same whether the history holds two messages or
  a hundred thousand: a turn is one line written at the end of the file, never a rewrite.
- **One line per turn** (the user's message and the reply together) makes a turn one unit on disk: it is
  there whole or not at all, and the pair is always adjacent even when several processes write.
- **A sidecar lock file** (``<user>.lock``, ``fcntl.flock``) serialises writers across processes. It is a
  separate file so that archiving (a rename of the history file) cannot pull the lock out from under a
  process that holds it.
- **Damage is never destroyed** (:mod:`.repair`). The format is in :mod:`.format`, the file-system steps
  in :mod:`.fs`.

Every method blocks (disk, fsync, a lock wait of up to 30 s). Code on an event loop uses
:class:`~edgechat_tui.storage.async_store.AsyncHistoryStore`, which runs each call in a thread.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edgechat_tui.core.errors import NewerSchemaError, StorageError
from edgechat_tui.core.messages import Message
from edgechat_tui.core.userid import validate_user_id
from edgechat_tui.storage.format import (
    HISTORY_SUFFIX,
    Decoder,
    check_header,
    clean_message,
    encode_header,
    encode_turn,
)
from edgechat_tui.storage.fs import (
    LOCK_TIMEOUT,
    durable_write,
    ensure_private_dir,
    hold_lock,
    make_private,
    open_regular,
    read_first_line,
    read_range,
    remove_stale_temps,
    storage_error,
    write_all,
)
from edgechat_tui.storage.repair import archive_file, cut_tail, move_aside, readable_lines
from edgechat_tui.storage.view import FileView, Snapshot

__all__ = ["HistoryStore"]

_log = logging.getLogger(__name__)


class HistoryStore:
    """One user's conversation on disk, shared safely with other edgechat processes.

    The store keeps the messages it has read and the offset where its reading stopped, so that
    :meth:`refresh` and :meth:`append_turn` read only what other processes added since. Separate
    instances (in one process or many) coordinate through the lock file; one instance may also be used
    from several threads (a mutex guards its cache).
    """

    def __init__(self, data_dir: Path, user: str, *, warn: Callable[[str], None] | None = None,
                 name: str | None = None, lock_path: Path | None = None, kind: str = "history",
                 decode: Decoder | None = None, header: Callable[..., bytes] | None = None) -> None:
        # Validate before anything else: the id becomes a file name.
        self.user = validate_user_id(user)
        self.data_dir = Path(data_dir)
        # A conversation file of the library (storage/chat_file.py) is the same machinery with its own
        # name (the conversation's id), the profile's lock, its own header kind and record decoder.
        self.name = name or self.user
        self.path = self.data_dir / f"{self.name}{HISTORY_SUFFIX}"
        self.lock_path = lock_path or self.data_dir / f"{user}.lock"
        self._kind = kind
        self._header = header or (lambda **extra: encode_header(self.user, **extra))
        self._decode = decode
        self._warn = warn if warn is not None else _log.warning
        self._view = FileView(self.user, self.path, decode, kind)
        self._announced_tail: tuple[object, ...] | None = None
        self._dir_checked = False
        self._loop_guard = False
        self._mutex = threading.RLock()  # guards the cached state above within this process

    def forbid_event_loop(self) -> None:
        """From now on, refuse (RuntimeError) any call that does I/O from a thread running an event loop.

        :class:`~edgechat_tui.storage.async_store.AsyncHistoryStore` sets this on the store it wraps.
        """
        self._loop_guard = True

    def _io(self, name: str) -> None:
        if not self._loop_guard:
            return
        asyncio = sys.modules.get("asyncio")  # not imported: no loop can be running (a CLI command)
        if asyncio is None:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop on this thread: blocking is fine here
        raise RuntimeError(f"HistoryStore.{name} blocks on the disk and the lock: await it through "
                           "AsyncHistoryStore instead of calling it on the event loop")

    # -- Reading -------------------------------------------------------------------------------------

    @property
    def messages(self) -> list[Message]:
        """The messages as of the last load, refresh or append (a copy: changing it changes nothing)."""
        with self._mutex:
            return list(self._view.messages)

    def message_count(self) -> int:
        """How many messages the history holds, as of the last load, refresh or append."""
        with self._mutex:
            return len(self._view.messages)

    @property
    def damage(self) -> str | None:
        """Why the file last read needs moving aside (None when it does not)."""
        with self._mutex:
            return self._view.damage

    def load(self) -> list[Message]:
        """Read the whole history from disk.

        A torn last line is dropped (with a warning). A damaged file is moved aside to
        ``<user>.corrupt-<time>`` and its readable turns carried over into a new file (with a warning
        saying where). Raises NewerSchemaError for a newer format, StorageError for a file that belongs
        to another user or that cannot be read.
        """
        self._io("load")
        with self._mutex:
            self._view.forget()
            return self._read()

    def refresh(self) -> list[Message]:
        """Pick up what other processes appended since the last read, reading only the new bytes.

        Reads the whole file again only if it was replaced (archived, recovered) meanwhile. Returns all
        messages.
        """
        self._io("refresh")
        with self._mutex:
            if self._view.identity is not None:
                try:
                    st = os.lstat(self.path)
                except FileNotFoundError:
                    self._view.forget()  # archived by another process: the conversation starts afresh
                    return []
                except OSError as exc:
                    raise storage_error(exc, "read", self.path) from exc
                unchanged = (st.st_dev, st.st_ino) == self._view.identity and st.st_size == self._view.size
                # With a torn tail pending, another process may have cut it and appended a record of
                # the same length, so an unchanged size proves nothing: read again.
                if unchanged and self._view.size == self._view.end:
                    return list(self._view.messages)
            return self._read()

    def read_quietly(self) -> None:
        """Read the file under a shared lock without repairing it or creating a lock file (listing)."""
        self._io("read_quietly")
        with self._mutex, hold_lock(self.lock_path, exclusive=False, create=False, timeout=LOCK_TIMEOUT):
            fd = self._open_existing(os.O_RDONLY, fix_mode=False)  # listing only reads
            if fd is None:
                self._view.forget()
                return
            try:
                self._view.sync(fd)
            finally:
                os.close(fd)

    def _read(self) -> list[Message]:
        snapshot = self._snapshot() if self._path_exists() else None
        if snapshot is not None and not self._view.apply(snapshot):
            self._view.forget()
            snapshot = self._snapshot()
            if snapshot is not None:
                self._view.apply(snapshot)
        if snapshot is None:
            self._view.forget()
            return []
        if self._view.damage is not None:
            try:
                with self._locked(exclusive=True):
                    self._repair()
            except NewerSchemaError:
                raise
            except StorageError as exc:
                # Show what can be read; saving stays impossible until the file can be moved aside.
                self._warn(
                    f"The history file {self.path} is damaged ({self._view.damage}) and could not be moved "
                    f"aside: {exc}. Showing the {len(self._view.messages)} messages that could be read."
                )
        self._announce_tail()
        return list(self._view.messages)

    def _path_exists(self) -> bool:
        try:
            os.lstat(self.path)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise storage_error(exc, "read", self.path) from exc
        return True

    def _open_existing(self, flags: int, *, fix_mode: bool = True) -> int | None:
        """Open the history file, or None if it does not exist. Refuses anything but a regular file
        (a link, a FIFO, a device, a folder), and makes a file of ours that others can read 0600."""
        try:
            fd = open_regular(self.path, flags)
        except OSError as exc:
            raise storage_error(exc, "open", self.path) from exc
        if fd is not None and fix_mode:
            try:
                make_private(fd, self.path, self._warn)
            except BaseException:
                os.close(fd)
                raise
        return fd

    def _snapshot(self) -> Snapshot | None:
        """Under the shared lock, what :meth:`_fetch` reads; None when there is no file."""
        with self._locked(exclusive=False):
            fd = self._open_existing(os.O_RDONLY)
            if fd is None:
                return None
            try:
                return self._view.fetch(fd)
            finally:
                os.close(fd)

    def _announce_tail(self) -> None:
        tail = self._view.size - self._view.end
        if tail <= 0 or self._view.damage is not None:
            return
        key = (self._view.identity, self._view.end, self._view.size)
        if key == self._announced_tail:
            return
        self._announced_tail = key
        self._warn(
            f"The last entry of {self.path} is incomplete ({tail} bytes, most likely a write that was "
            f"interrupted) and was skipped. Its bytes will be kept in {self.name}.torn-<time> when the "
            "next turn is saved."
        )

    # -- Writing -------------------------------------------------------------------------------------

    def append_turn(self, user_message: Message, reply: Message) -> int:
        """Save a completed turn durably and return the number of stored messages.

        The turn is one line, written under the exclusive lock after picking up other processes'
        turns, and fsync'ed (with the folder, when the file is new) before this returns. On failure
        nothing of the turn remains on disk and StorageError says why.
        """
        self._io("append_turn")
        if not isinstance(user_message, Message) or not isinstance(reply, Message):
            raise TypeError("append_turn takes two Message objects")
        if user_message.role != "user" or reply.role != "assistant":
            raise ValueError("a turn is a user message followed by an assistant reply")
        # What is cached is what a reader of the line gets back: valid Unicode, however it came in.
        user_message, reply = clean_message(user_message), clean_message(reply)
        record = encode_turn(user_message, reply)
        with self._mutex:
            return self._append(lambda _items: (record, [user_message, reply]), create=True)

    def append_record(self, make: Callable[[list[Any]], tuple[bytes, list[Any]]], *,
                      create: bool = True) -> list[Any]:
        """Append the record ``make(items)`` returns, ``make`` called under the exclusive lock with every
        item read so far (others' records included), so what it writes follows what is on disk.

        ``make`` returns (the line, the items it adds) and may raise to write nothing. Without
        ``create``, a missing file raises FileNotFoundError instead of being created. Returns all items.
        """
        self._io("append_record")
        with self._mutex:
            self._append(make, create=create)
            return list(self._view.messages)

    def _append(self, make: Callable[[list[Any]], tuple[bytes, list[Any]]], *, create: bool) -> int:
        self._ensure_data_dir()
        with self._locked(exclusive=True):
            fd = self._open_existing(os.O_RDWR | os.O_APPEND)
            if fd is None:
                if not create:
                    raise FileNotFoundError(self.path)
                self._view.forget()
                record, items = make([])
                self._create(self._header() + record)
            else:
                fd = self._prepare_to_append(fd)
                try:
                    record, items = make(list(self._view.messages))
                    # An empty file (or one whose torn header was just cut) gets its header now.
                    payload = record if self._view.end > 0 else self._header() + record
                    self._write_durably(fd, payload)
                finally:
                    os.close(fd)
            self._view.messages += items
            return len(self._view.messages)

    def _prepare_to_append(self, fd: int) -> int:
        """Under the exclusive lock: take in others' turns, repair damage, cut a torn last line.

        Returns the descriptor to append to (a new one if the file was repaired, i.e. replaced).
        """
        try:
            self._view.sync(fd)
            if self._view.damage is not None:
                os.close(fd)
                fd = -1
                self._repair()
                reopened = self._open_existing(os.O_RDWR | os.O_APPEND)
                if reopened is None:  # cannot happen under the lock, but never write blind
                    raise StorageError(f"The history file {self.path} vanished while being repaired.")
                fd = reopened
                self._view.sync(fd)
            if self._view.size > self._view.end:
                cut, kept = cut_tail(fd, self.path, self.name, self._view.end, self._view.size)
                self._view.size = self._view.end
                self._warn(f"Removed an incomplete last entry ({cut} bytes) from {self.path}; "
                           f"its bytes are kept in {kept}.")
        except BaseException:
            if fd >= 0:
                os.close(fd)
            raise
        return fd

    def _write_durably(self, fd: int, payload: bytes) -> None:
        """Append ``payload`` and fsync; on failure take the partial write back off."""
        try:
            write_all(fd, payload)
            os.fsync(fd)
        except OSError as exc:
            try:
                os.ftruncate(fd, self._view.end)
                os.fsync(fd)
            except OSError:
                pass  # what remains is a torn tail: the next read drops it and the next write cuts it
            raise storage_error(exc, "save the turn to", self.path) from exc
        self._view.end += len(payload)
        self._view.size = self._view.end

    def _create(self, content: bytes) -> None:
        """Create the history file whole (temp file + rename), so no reader ever sees half a header."""
        remove_stale_temps(self.path)
        try:
            durable_write(self.path, content, hidden=False)
            st = os.lstat(self.path)
        except OSError as exc:
            raise storage_error(exc, "create", self.path) from exc
        self._view.identity = (st.st_dev, st.st_ino)
        self._view.end = self._view.size = len(content)

    def _repair(self) -> None:
        """Under the exclusive lock: move a damaged file aside and carry its readable turns over."""
        fd = self._open_existing(os.O_RDONLY)
        if fd is None:
            self._view.forget()
            return
        try:
            self._view.forget()
            self._view.sync(fd)  # read afresh: another process may have repaired it already
            if self._view.damage is None:
                return
            try:
                data = read_range(fd, 0, self._view.size)
            except OSError as exc:
                raise storage_error(exc, "read", self.path) from exc
        finally:
            os.close(fd)
        remove_stale_temps(self.path)
        aside = move_aside(self.path, self.user, data, readable_lines(data, self._decode), stem=self.name,
                           header=lambda name: self._header(recovered_from=name))
        reason, recovered = self._view.damage, len(self._view.messages)
        self._view.forget()
        fd = self._open_existing(os.O_RDONLY)
        if fd is not None:
            try:
                self._view.sync(fd)
            finally:
                os.close(fd)
        self._warn(
            f"The history file {self.path} was damaged ({reason}). It was moved to {aside} (kept, never "
            f"overwritten), and the {recovered} messages that could be read were kept in a new "
            f"{self.path.name}."
        )

    def archive(self) -> Path | None:
        """Start a new conversation: rename the history to ``<user>.<time>.archived`` (never delete it).

        Returns the archive's path, or None when there was no history. Refuses (with NewerSchemaError or
        StorageError) a file of a newer format or of another user, however long its header.
        """
        self._io("archive")
        with self._mutex:
            if not self._path_exists():  # without creating the folder just to find nothing
                self._view.forget()
                return None
            return self._archive()

    def _archive(self) -> Path | None:
        with self._locked(exclusive=True):
            fd = self._open_existing(os.O_RDONLY)
            if fd is None:
                self._view.forget()
                return None
            try:
                first, complete = read_first_line(fd)  # whole, however long: a header is never skipped
            except OSError as exc:
                raise storage_error(exc, "read", self.path) from exc
            finally:
                os.close(fd)
            if complete:
                check_header(first, self.user, self.path, self._kind)  # raises if not ours to move
            target = archive_file(self.path, self.user)
            self._view.forget()
            return target

    # -- Locking and the folder ----------------------------------------------------------------------

    def _ensure_data_dir(self) -> None:
        # Checked once per store: the warning about a folder others may write in is said once.
        if self._dir_checked and self.data_dir.is_dir():
            return
        ensure_private_dir(self.data_dir, self._warn)
        self._dir_checked = True

    @contextmanager
    def _locked(self, *, exclusive: bool) -> Iterator[None]:
        """Hold the user's lock: exclusive to write, shared to read (so no write is seen half done)."""
        with hold_lock(self.lock_path, exclusive=exclusive, timeout=LOCK_TIMEOUT):
            yield
