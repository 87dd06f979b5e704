"""Listing the profiles in a data folder (``edgechat users``): read-only, never repairs anything."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from edgechat_tui.core.errors import StorageError
from edgechat_tui.core.userid import validate_user_id
from edgechat_tui.storage.format import HISTORY_SUFFIX
from edgechat_tui.storage.fs import storage_error
from edgechat_tui.storage.store import HistoryStore

__all__ = ["UserSummary", "list_users"]


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
        names = sorted(entry.name for entry in os.scandir(data_dir) if entry.name.endswith(HISTORY_SUFFIX))
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise storage_error(exc, "list", data_dir) from exc
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
            store.read_quietly()
        except StorageError as exc:
            problem = exc.message
        if store.damage is not None:
            problem = f"damaged: {store.damage}"
        messages = store.messages
        if not messages and problem is None and not os.path.lexists(path):
            continue  # gone since the listing
        last = (messages[-1].time or None) if messages else None
        summaries.append(UserSummary(user, len(messages), last, path, problem))
    return summaries
