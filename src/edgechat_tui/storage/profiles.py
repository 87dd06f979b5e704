"""Whether a profile is certainly absent from this machine: no history file, current or archived."""

from __future__ import annotations

import os
from pathlib import Path

from edgechat_tui.core.userid import validate_user_id
from edgechat_tui.storage.paths import HISTORY_SUFFIX

__all__ = ["profile_missing"]


def profile_missing(data_dir: Path, user: str) -> bool:
    """True only when ``user`` certainly has no conversation in ``data_dir``, current or archived.

    When the data dir cannot be looked at (it is a file, say, or unreadable) the answer is False, so
    the store itself reports what is wrong with it, rather than a missing profile.
    """
    user = validate_user_id(user)
    try:
        names = os.listdir(data_dir)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    if f"{user}.chats" in names:
        return False  # the profile's conversation library
    current = f"{user}{HISTORY_SUFFIX}"
    # Archives are ``<user>.<time>.archived`` (a dotted id's archives may count for a shorter id too:
    # then that id is only said to exist, and its history shows empty).
    return not any(name == current or (name.startswith(f"{user}.") and name.endswith(".archived"))
                   for name in names)
