"""File-system primitives, in one copy: durable writes, opening only regular files, the lock with a
deadline, reading a range, free names, and OSErrors turned into errors a user can act on.

Everything here blocks (fsync, flock waits): callers on an event loop go through
:mod:`edgechat_tui.storage.async_store`, which runs it in a thread.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from edgechat_tui.core.errors import StorageError

__all__ = [
    "DATA_DIR_HINT",
    "LOCK_TIMEOUT",
    "NO_HARD_LINKS",
    "NotARegularFile",
    "acquire_lock",
    "durable_write",
    "ensure_private_dir",
    "free_name",
    "fsync_dir",
    "hold_lock",
    "make_private",
    "not_a_regular_file",
    "open_regular",
    "read_first_line",
    "read_range",
    "remove_stale_temps",
    "storage_error",
    "unlink_quietly",
    "write_all",
    "write_temp",
]

DATA_DIR_HINT = "check the folder's permissions, or choose another with --data-dir or EDGECHAT_DATA_DIR"
_PLAIN_FILE_HINT = "move it away; edgechat keeps its files as plain files in its own folder"
#: Errors from link() that mean "this file system cannot make hard links", not "something is wrong".
NO_HARD_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV,
                           errno.ENOSYS})
# Never follow a symbolic link, never block on a FIFO or a device, never leak into a child process.
#: How long to wait for another process's lock before giving up. Writers hold it for milliseconds, so a
#: wait this long means a process is stuck (on a hung network file system, say), not merely busy.
LOCK_TIMEOUT = 30.0
_SAFE_OPEN = os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


def storage_error(exc: OSError, doing: str, path: Path) -> StorageError:
    """A StorageError a user can act on, from the OSError that ``doing`` (e.g. "write") ``path`` raised."""
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        return StorageError(f"The disk is full: could not {doing} {path}.",
                            hint="free some disk space and try again; nothing was saved by this attempt")
    if code == errno.EROFS:
        return StorageError(f"Could not {doing} {path}: the file system is read-only.", hint=DATA_DIR_HINT)
    if code in (errno.EACCES, errno.EPERM):
        return StorageError(f"Could not {doing} {path}: permission denied.", hint=DATA_DIR_HINT)
    if code == errno.ENOTDIR:
        return StorageError(f"Could not {doing} {path}: a part of that path is a file, not a folder.",
                            hint=DATA_DIR_HINT)
    if code == errno.EFBIG:
        return StorageError(f"Could not {doing} {path}: the file would exceed a file size limit.",
                            hint="archive the conversation (reset) or raise the limit")
    if code == errno.ELOOP:
        return not_a_regular_file(path, link=True)
    if code in (errno.EISDIR, errno.ENXIO, errno.ENODEV):
        return not_a_regular_file(path)
    reason = exc.strerror or type(exc).__name__
    return StorageError(f"Could not {doing} {path}: {reason}.", hint=DATA_DIR_HINT)


class NotARegularFile(StorageError):
    """A path edgechat opens is a symbolic link, a FIFO, a device or a folder: refused, left as it is."""


def not_a_regular_file(path: Path, *, link: bool = False) -> NotARegularFile:
    if link:
        return NotARegularFile(f"{path} is a symbolic link, which edgechat does not follow.",
                               hint=_PLAIN_FILE_HINT)
    return NotARegularFile(f"{path} is not a regular file.", hint=_PLAIN_FILE_HINT)


def open_regular(path: Path, flags: int, *, mode: int = 0o600) -> int | None:
    """Open ``path`` if it is a regular file (not a link, FIFO, device or folder); None if it is absent.

    Raises NotARegularFile for anything else, and the OSError for other failures (for the caller to
    word). ``flags`` may include ``os.O_CREAT`` (then FileNotFoundError means the folder is missing). A
    symbolic link is refused, even a dangling one, so no file is ever created where a link points.
    """
    try:
        fd = os.open(path, flags | _SAFE_OPEN, mode)
    except FileNotFoundError:
        if flags & os.O_CREAT:
            raise
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise not_a_regular_file(path, link=True) from None
        if exc.errno in (errno.EISDIR, errno.ENXIO, errno.ENODEV):
            raise not_a_regular_file(path) from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise not_a_regular_file(path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable (its entry lives in the directory)."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def read_range(fd: int, start: int, length: int) -> bytes:
    chunks = []
    while length > 0:
        chunk = os.pread(fd, min(length, 1 << 24), start)
        if not chunk:
            break
        chunks.append(chunk)
        start += len(chunk)
        length -= len(chunk)
    return b"".join(chunks)


def read_first_line(fd: int) -> tuple[bytes, bool]:
    """The first line of the file (without its newline), however long, and whether it is complete."""
    chunks: list[bytes] = []
    offset = 0
    size = 1 << 16
    while True:
        chunk = os.pread(fd, size, offset)
        if not chunk:
            return b"".join(chunks), False
        newline = chunk.find(b"\n")
        if newline >= 0:
            chunks.append(chunk[:newline])
            return b"".join(chunks), True
        chunks.append(chunk)
        offset += len(chunk)
        size = min(size * 2, 1 << 24)


def _stamp() -> str:
    """A file-name-safe UTC time (no colons: they are not allowed in file names everywhere)."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def free_name(directory: Path, make: Callable[[str], str]) -> Path:
    """The first ``make(stamp)``, ``make(stamp-2)``... that does not exist yet (never overwrite)."""
    stamp = _stamp()
    candidate = directory / make(stamp)
    n = 1
    while os.path.lexists(candidate):
        n += 1
        candidate = directory / make(f"{stamp}-{n}")
    return candidate


def acquire_lock(fd: int, *, exclusive: bool, lock_path: Path, timeout: float) -> None:
    """flock with a deadline, so a stuck process elsewhere gives an error instead of a hang.

    Blocks for up to ``timeout`` seconds: never call it on an event loop.
    """
    operation = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while True:
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        except OSError as exc:
            raise storage_error(exc, "lock", lock_path) from exc
        if time.monotonic() >= deadline:
            raise StorageError(
                f"Another process has held the history lock {lock_path} for more than {timeout:.0f} s.",
                hint="close other edgechat sessions for this user, or end the one that is stuck",
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.005)


def write_temp(path: Path, data: bytes, *, mode: int = 0o600, hidden: bool = True) -> Path:
    """Write ``data`` durably (written, fsynced) to a new temp file beside ``path``; return its name.

    The name is ``[.]<name>.<pid>-<hex>.tmp``. Raises OSError; on failure no temp file is left.
    """
    tmp = path.with_name(f"{'.' if hidden else ''}{path.name}.{os.getpid()}-{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _SAFE_OPEN, mode)
    try:
        os.fchmod(fd, mode)  # the umask filters os.open's mode; the file gets exactly ``mode``
        write_all(fd, data)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        unlink_quietly(tmp)
        raise
    os.close(fd)
    return tmp


def durable_write(path: Path, data: bytes, *, mode: int = 0o600, replace: bool = True,
                  hidden: bool = True) -> None:
    """Put ``data`` at ``path`` whole or not at all, and make it survive a crash.

    A temp file beside it is written and fsynced, then renamed over ``path`` (``replace``), or linked
    to it (``replace=False``: raises FileExistsError rather than replace a file made meanwhile); then
    the folder is fsynced, since the new name lives there. The file has exactly ``mode``. Raises OSError.
    """
    tmp = write_temp(path, data, mode=mode, hidden=hidden)
    try:
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except OSError as exc:
                if exc.errno not in NO_HARD_LINKS:
                    raise
                if os.path.lexists(path):  # a file system without hard links: check, then rename
                    raise FileExistsError(errno.EEXIST, "File exists", str(path)) from None
                os.rename(tmp, path)
    finally:
        unlink_quietly(tmp)
    fsync_dir(path.parent)


def remove_stale_temps(path: Path) -> None:
    """Delete the temp files (``<name>.<pid>-<hex>.tmp``) that killed processes left beside ``path``.

    Call it only under the lock that every writer of those temp files holds: any that exist then belong
    to a process that died before renaming it into place.
    """
    pattern = re.compile(re.escape(f"{path.name}.") + r"\d+-[0-9a-f]{8}\.tmp")
    try:
        stale = [entry.path for entry in os.scandir(path.parent) if pattern.fullmatch(entry.name)]
    except OSError:
        return  # only tidying: the write that follows reports any real problem
    for name in stale:
        unlink_quietly(Path(name))


def unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


@contextmanager
def hold_lock(lock_path: Path, *, exclusive: bool, create: bool = True,
              timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the flock on ``lock_path``: exclusive to write, shared to read.

    The lock file is opened like every other file (a regular file, never through a link). A reader that
    cannot open it (a read-only folder) reads without it: nobody can be writing there either.
    ``create=False`` (for listing) reads without it when it does not exist. Closing the descriptor
    releases the lock.
    """
    fd = _open_lock_file(lock_path, exclusive, create)
    if fd is None:
        yield
        return
    try:
        acquire_lock(fd, exclusive=exclusive, lock_path=lock_path, timeout=timeout)
        yield
    finally:
        os.close(fd)


def _open_lock_file(lock_path: Path, exclusive: bool, create: bool) -> int | None:
    try:
        return open_regular(lock_path, os.O_RDWR | (os.O_CREAT if create or exclusive else 0))
    except OSError as exc:
        if exclusive:
            if exc.errno == errno.ENOTDIR:
                raise StorageError(f"The history folder {lock_path.parent} is a file, not a folder.",
                                   hint=DATA_DIR_HINT) from exc
            raise storage_error(exc, "create the lock file", lock_path) from exc
    try:
        return open_regular(lock_path, os.O_RDONLY)  # flock works on a read-only descriptor too
    except OSError:
        return None


def ensure_private_dir(directory: Path, warn: Callable[[str], None]) -> None:
    """Before writing in ``directory``: create it 0700, or check that it is a folder that is ours.

    A folder owned by another user (which they could fill with files of their own) is refused when we
    could write in it; one that others may write in is written to, with a warning. One that exists
    keeps its mode: it may be a folder the user chose and shares on purpose.
    """
    try:
        directory.mkdir(mode=0o700, parents=True)
        os.chmod(directory, 0o700)  # mkdir's mode is filtered by the umask
        return
    except FileExistsError:
        pass
    except OSError as exc:
        raise storage_error(exc, "create the history folder", directory) from exc
    try:
        st = os.stat(directory)
    except OSError as exc:
        raise storage_error(exc, "open the history folder", directory) from exc
    if not stat.S_ISDIR(st.st_mode):
        raise StorageError(f"The history folder {directory} is a file, not a folder.", hint=DATA_DIR_HINT)
    # A folder we cannot write in fails at the write itself, with the clearer "permission denied".
    if st.st_uid != os.geteuid() and os.access(directory, os.W_OK):
        raise StorageError(
            f"The history folder {directory} belongs to another user (uid {st.st_uid}), who could read "
            "or replace what edgechat writes there.",
            hint="choose a folder of your own with --data-dir or EDGECHAT_DATA_DIR")
    if st.st_mode & 0o022:
        warn(f"The history folder {directory} can be written by other users (mode "
             f"{stat.S_IMODE(st.st_mode):o}), who could replace its files: run chmod 700 {directory}")


def make_private(fd: int, path: Path, warn: Callable[[str], None]) -> None:
    """A file of ours that others may read or write is made 0600 (the mode edgechat creates it with)."""
    st = os.fstat(fd)
    if not st.st_mode & 0o077 or st.st_uid != os.geteuid():
        return
    try:
        os.fchmod(fd, 0o600)
    except OSError as exc:
        if exc.errno == errno.EROFS:
            return  # a read-only copy (a backup, a mounted image): nothing edgechat writes goes there
        warn(f"{path} can be read by other users (mode {stat.S_IMODE(st.st_mode):o}): run chmod 600 {path}")
