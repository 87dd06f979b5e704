"""What one store knows of its history file: the messages read, which file, and where reading stopped.

Kept apart from the store's operations so that both stay small: the store decides *when* to read
(under which lock), this decides *what* the bytes mean for the cache.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgechat_tui.storage.format import Decoder, scan_file, scan_records
from edgechat_tui.storage.fs import read_range, storage_error

__all__ = ["FileView", "Snapshot"]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Bytes read from a history file under its lock, to be parsed after the lock is released."""

    identity: tuple[int, int]  # (st_dev, st_ino): which file it was
    data: bytes
    full: bool  # the whole file, or only what follows the last read


class FileView:
    """The cached state of one history file. Not thread-safe: the store's mutex guards it."""

    def __init__(self, user: str, path: Path, decode: Decoder | None = None, kind: str = "history") -> None:
        self.user = user
        self.path = path
        self.decode = decode
        self.kind = kind
        self.messages: list[Any] = []  # messages (a history) or entries (a conversation), in file order
        self.identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the file last read
        self.end = 0  # offset just past the last readable record
        self.size = 0  # the file's size at the last read (more than ``end`` when a torn tail follows)
        self.damage: str | None = None  # why the file must be moved aside, None when it need not be

    def forget(self) -> None:
        self.messages = []
        self.identity = None
        self.end = self.size = 0
        self.damage = None

    def sync(self, fd: int) -> None:
        """Bring the cached messages up to date with the open file (the caller holds the lock)."""
        if not self.apply(self.fetch(fd)):
            self.forget()
            self.apply(self.fetch(fd))

    def fetch(self, fd: int) -> Snapshot:
        """Read what is new since the last read, or the whole file if it is not the one last read.

        Only this needs the lock; parsing (the slow part of a long history) can happen after it.
        """
        try:
            st = os.fstat(fd)
            identity = (st.st_dev, st.st_ino)
            if identity == self.identity and st.st_size >= self.end and self.damage is None:
                return Snapshot(identity, read_range(fd, self.end, st.st_size - self.end), full=False)
            # A new file (first read, archived, repaired), or one that shrank or is damaged.
            return Snapshot(identity, read_range(fd, 0, st.st_size), full=True)
        except OSError as exc:
            raise storage_error(exc, "read", self.path) from exc

    def apply(self, snapshot: Snapshot) -> bool:
        """Take a snapshot into the cache. False when new bytes show damage: read the whole file then."""
        if not snapshot.full:
            scan = scan_records(snapshot.data, self.end, 0, self.decode)
            if scan.damage is not None:
                return False
            self.messages.extend(scan.messages)
            self.end, self.size = scan.end, scan.size
            return True
        scan = scan_file(snapshot.data, self.user, self.path, self.decode, self.kind)
        self.messages = scan.messages
        self.identity = snapshot.identity
        self.end, self.size = scan.end, scan.size
        self.damage = scan.damage
        return True
