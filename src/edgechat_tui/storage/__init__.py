"""Conversations on disk: the history files, their format and guarantees, and exports.

``format`` (pure encode/decode), ``fs`` (durable writes, safe opens, the lock: one copy), ``repair``,
``store`` (``HistoryStore``, blocking), ``async_store`` (the same calls in a thread, for event loops),
``users`` (listing profiles) and ``export`` (Markdown and JSON files).

The names below load with their module on first use, not with the package: importing one storage
module (``edgechat search`` needs only the library's index) does not import all of them.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgechat_tui.storage.async_store import AsyncHistoryStore
    from edgechat_tui.storage.format import SCHEMA_VERSION, encode_header, encode_turn
    from edgechat_tui.storage.store import HistoryStore
    from edgechat_tui.storage.users import UserSummary, list_users

__all__ = [
    "SCHEMA_VERSION",
    "AsyncHistoryStore",
    "HistoryStore",
    "UserSummary",
    "encode_header",
    "encode_turn",
    "list_users",
]

_WHERE = {"SCHEMA_VERSION": "format", "encode_header": "format", "encode_turn": "format",
          "AsyncHistoryStore": "async_store", "HistoryStore": "store", "UserSummary": "users",
          "list_users": "users"}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
