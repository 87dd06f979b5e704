"""Putting a damaged history right without destroying anything: the file-system steps.

Both run under the user's exclusive lock (the store holds it). A torn last line is cut off only after its
bytes are kept in ``<user>.torn-<time>``; an unreadable file is kept whole as ``<user>.corrupt-<time>`` and
its readable turns are carried over into a fresh file. See docs/storage.md for every case.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from edgechat_tui.storage.format import Decoder, decode_record, encode_header, lines
from edgechat_tui.storage.fs import (
    NO_HARD_LINKS,
    free_name,
    fsync_dir,
    read_range,
    storage_error,
    unlink_quietly,
    write_all,
    write_temp,
)

__all__ = ["archive_file", "cut_tail", "move_aside", "readable_lines"]


def cut_tail(fd: int, path: Path, user: str, end: int, size: int) -> tuple[int, Path]:
    # ``user``: the stem of the kept file's name (a history's user, a conversation's id)
    """Cut ``path``'s bytes from ``end`` to ``size`` (a torn last line), keeping them in a torn- file.

    Returns how many bytes were cut and where they are kept. Raises StorageError, leaving the file as it
    was (or the tail cut and also kept, which the next read finds a complete file).
    """
    data_dir = path.parent
    try:
        tail = read_range(fd, end, size - end)
    except OSError as exc:
        raise storage_error(exc, "read", path) from exc
    kept = free_name(data_dir, lambda stamp: f"{user}.torn-{stamp}")
    try:
        out = os.open(kept, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            write_all(out, tail)
            os.fsync(out)
        finally:
            os.close(out)
        fsync_dir(data_dir)
    except OSError as exc:
        unlink_quietly(kept)
        raise storage_error(exc, "save the incomplete last entry to", kept) from exc
    try:
        os.ftruncate(fd, end)
        os.fsync(fd)
    except OSError as exc:
        raise storage_error(exc, "cut the incomplete last entry from", path) from exc
    return len(tail), kept


def move_aside(path: Path, user: str, data: bytes, readable: list[bytes], *, stem: str | None = None,
               header: Callable[[str], bytes] | None = None) -> Path:
    """Keep the damaged ``path`` as ``<stem>.corrupt-<time>`` and put a file of its ``readable`` lines
    (each ending with a newline) in its place. There is never a moment without a history file.

    ``stem`` defaults to ``user``; ``header(aside_name)`` makes the new file's header (default: a
    history's, naming ``user``)."""
    data_dir = path.parent
    stem = stem or user
    aside = free_name(data_dir, lambda stamp: f"{stem}.corrupt-{stamp}")
    first = header(aside.name) if header else encode_header(user, recovered_from=aside.name)
    content = first + b"".join(readable)
    try:
        tmp = write_temp(path, content, hidden=False)
    except OSError as exc:
        raise storage_error(exc, "write a repaired copy of", path) from exc
    try:
        try:
            # A hard link keeps the damaged file at its own name until the new one replaces it.
            os.link(path, aside)
        except OSError as exc:
            if exc.errno not in NO_HARD_LINKS:
                raise
            os.rename(path, aside)
        os.replace(tmp, path)
        fsync_dir(data_dir)
    except OSError as exc:
        unlink_quietly(tmp)
        raise storage_error(exc, "move aside the damaged", path) from exc
    return aside


def readable_lines(data: bytes, decode: Decoder | None = None) -> list[bytes]:
    """The raw turn lines of ``data`` that can be read, each ending with its newline."""
    decode = decode or decode_record
    kept = []
    for start, stop, complete in lines(data):
        if complete and decode(data[start:stop]) is not None:
            kept.append(data[start : stop + 1])
    return kept


def archive_file(path: Path, user: str) -> Path:
    """Rename ``path`` to ``<user>.<time>.archived``, never replacing a file; returns the new name."""
    data_dir = path.parent
    target = free_name(data_dir, lambda stamp: f"{user}.{stamp}.archived")
    try:
        try:
            os.link(path, target)  # never replaces an existing file, unlike rename
            os.unlink(path)
        except OSError as exc:
            if exc.errno not in NO_HARD_LINKS:
                raise
            os.rename(path, target)
        fsync_dir(data_dir)
    except OSError as exc:
        raise storage_error(exc, "archive", path) from exc
    return target
