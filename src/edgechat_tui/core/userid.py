"""User ids: the rules that keep one user's files apart from everyone else's."""

from __future__ import annotations

import re

from edgechat_tui.core.errors import InvalidUserId

MAX_LENGTH = 64
_VALID = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9._\-]{0,63}")
_DEVICE_NAMES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
RULES = "1 to 64 characters of A-Z a-z 0-9 . _ -, not starting with a dot"


def validate_user_id(user_id: object) -> str:
    """Return ``user_id`` if it is valid, else raise :class:`InvalidUserId` saying why.

    The rules make a user id safe as a file name on every platform: no path separators, no ``..``,
    no NUL or control characters, no spaces, nothing hidden.
    """
    if not isinstance(user_id, str) or user_id == "":
        raise InvalidUserId("A user id cannot be empty.", hint=f"use {RULES}")
    if _VALID.fullmatch(user_id) and ".." not in user_id and not _is_device_name(user_id):
        return user_id
    shown = user_id.encode("unicode_escape").decode("ascii")
    if len(shown) > 80:
        shown = shown[:77] + "..."
    if _VALID.fullmatch(user_id) and ".." in user_id:
        why = "it contains '..'"
    elif _VALID.fullmatch(user_id):
        why = "it is a device name on Windows"
    elif len(user_id) > MAX_LENGTH:
        why = f"it is {len(user_id)} characters long"
    elif user_id.startswith("."):
        why = "it starts with a dot"
    else:
        bad = next(ch for ch in user_id if not re.fullmatch(r"[A-Za-z0-9._\-]", ch))
        why = f"it contains {bad.encode('unicode_escape').decode('ascii') or repr(bad)!s}"
        if bad in "/\\":
            why = "it contains a path separator"
        elif bad == " ":
            why = "it contains a space"
    raise InvalidUserId(f"Invalid user id '{shown}': {why}.", hint=f"use {RULES}")


def _is_device_name(user_id: str) -> bool:
    # Windows reserves these names with any extension ("nul.txt" names the null device too).
    return user_id.split(".", 1)[0].lower() in _DEVICE_NAMES
