"""Whether a profile exists on this machine: a history file, current or archived."""

from __future__ import annotations

from pathlib import Path

from edgechat_tui.core.userid import validate_user_id
from edgechat_tui.storage.store import HISTORY_SUFFIX

__all__ = ["profile_exists"]


def profile_exists(data_dir: Path, user: str) -> bool:
    """True when ``user`` has a conversation in ``data_dir``, or one archived by a reset."""
    user = validate_user_id(user)
    if (data_dir / f"{user}{HISTORY_SUFFIX}").exists():
        return True
    try:
        # User ids hold no glob characters (validated above); archives are ``<user>.<time>.archived``.
        return any(p.name.startswith(f"{user}.") for p in data_dir.glob(f"{user}.*.archived"))
    except OSError:
        return False
