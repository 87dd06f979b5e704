"""Listing the profiles in a data folder (``edgechat users``): read-only, never repairs anything."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from edgechat_tui.core.errors import StorageError
from edgechat_tui.core.userid import validate_user_id
from edgechat_tui.storage.chat_file import ProfilePaths, created_of
from edgechat_tui.storage.chat_format import CHAT_ID, CHAT_KIND, LIBRARY_SUFFIX, decode_chat_record
from edgechat_tui.storage.chat_tree import ChatState
from edgechat_tui.storage.format import HISTORY_SUFFIX, scan_file
from edgechat_tui.storage.fs import hold_lock, storage_error
from edgechat_tui.storage.store import HistoryStore

__all__ = ["LIBRARY_SUFFIX", "UserSummary", "list_users"]


@dataclass(frozen=True, slots=True)
class UserSummary:
    """One user's history as ``edgechat users`` shows it.

    ``problem`` says why the file could not be fully read (damaged, newer format, another user's, not a
    regular file); ``message_count`` then counts only what could be read.
    """

    user: str
    message_count: int
    last_activity: str | None
    path: Path
    problem: str | None = field(default=None)


def list_users(data_dir: Path) -> list[UserSummary]:
    """Every user with a history in ``data_dir``, by user id, with message counts and last activity.

    Read-only: a damaged file is counted as far as it can be read and reported in ``problem``, never
    moved or cut (that happens when its own user next uses it). No lock file is created.
    """
    data_dir = Path(data_dir)
    try:
        entries = list(os.scandir(data_dir))
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise storage_error(exc, "list", data_dir) from exc
    names = sorted(entry.name for entry in entries if entry.name.endswith(HISTORY_SUFFIX))
    libraries = {entry.name[: -len(LIBRARY_SUFFIX)] for entry in entries
                 if entry.name.endswith(LIBRARY_SUFFIX) and entry.is_dir(follow_symlinks=False)}
    summaries = {}
    for name in names:
        user = name[: -len(HISTORY_SUFFIX)]
        try:
            validate_user_id(user)
        except Exception:
            continue  # not a history file of ours
        summary = _history_summary(data_dir, user)
        if summary is not None:
            summaries[user] = summary
    for user in libraries:
        try:
            validate_user_id(user)
        except Exception:
            continue
        summaries[user] = _with_library(data_dir, user, summaries.get(user))
    return [summaries[user] for user in sorted(summaries)]


def _with_library(data_dir: Path, user: str, old: UserSummary | None) -> UserSummary:
    """The profile's library counted in: messages on each conversation's current branch (the trash
    left out), the newest activity. Read only, as the index would read them (never repaired here)."""
    paths = ProfilePaths(data_dir, user)
    count = old.message_count if old else 0
    last = old.last_activity if old else None
    problem = old.problem if old else None
    try:
        names = sorted(os.listdir(paths.root))
    except OSError as exc:
        return UserSummary(user, count, last, paths.root, problem or f"cannot be listed: {exc.strerror}")
    for name in names:
        stem = name[: -len(HISTORY_SUFFIX)]
        if not name.endswith(HISTORY_SUFFIX) or not CHAT_ID.fullmatch(stem):
            continue
        path = paths.root / name
        try:
            with hold_lock(paths.lock, exclusive=False, create=False):
                data = path.read_bytes() if os.path.isfile(path) and not os.path.islink(path) else b""
            scan = scan_file(data, user, path, decode_chat_record, CHAT_KIND)
        except (OSError, StorageError) as exc:
            problem = problem or f"{name}: {getattr(exc, 'message', None) or exc}"
            continue
        state = ChatState(stem, created_of(stem))
        state.apply(scan.messages)
        count += len(state.branch_nodes())
        if state.nodes and (last is None or state.updated > last):
            last = state.updated
        if scan.damage is not None:
            problem = problem or f"{name} damaged: {scan.damage}"
    return UserSummary(user, count, last, paths.root, problem)


def _history_summary(data_dir: Path, user: str) -> UserSummary | None:
    """A profile's single-conversation history file (not migrated yet) as listed."""
    name = f"{user}{HISTORY_SUFFIX}"
    path = data_dir / name
    store = HistoryStore(data_dir, user, warn=lambda _message: None)
    problem = None
    try:
        store.read_quietly()
    except StorageError as exc:
        problem = exc.message
    if store.damage is not None:
        problem = f"damaged: {store.damage}"
    messages = store.messages
    if not messages and problem is None and not os.path.lexists(path):
        return None  # gone since the listing
    last = (messages[-1].time or None) if messages else None
    return UserSummary(user, len(messages), last, path, problem)
