"""Parsing JSON that a server sent: any failure is a ValueError, never a RecursionError.

``json.loads`` raises RecursionError on an array nested 100,000 deep; that must read as "not valid
JSON" to the caller (a clear protocol error), not escape as a traceback.
"""

from __future__ import annotations

import json
from typing import Any


class JSONDataError(ValueError):
    """The bytes are not JSON that can be read (malformed, not UTF-8, or nested too deep)."""


def loads(data: bytes | str) -> Any:
    """Parse ``data``; raise JSONDataError for anything that is not readable JSON."""
    try:
        return json.loads(data)
    except RecursionError:
        raise JSONDataError("JSON nested too deep") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise JSONDataError(str(exc)) from None


def loads_object(data: bytes | str) -> dict[str, Any] | None:
    """The JSON object in ``data``; None when it is not JSON, or JSON but not an object."""
    try:
        value = loads(data)
    except JSONDataError:
        return None
    return value if isinstance(value, dict) else None


def dumps(value: Any) -> str:
    """``value`` as JSON text (non-ASCII kept); raises JSONDataError when it is nested too deep."""
    try:
        return json.dumps(value, ensure_ascii=False)
    except (RecursionError, ValueError, TypeError) as exc:
        raise JSONDataError(f"cannot write the value as JSON: {type(exc).__name__}") from None


__all__ = ["JSONDataError", "dumps", "loads", "loads_object"]
