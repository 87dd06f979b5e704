"""Conversations on disk: the history files, their format and guarantees, and exports.

``format`` (pure encode/decode), ``fs`` (durable writes, safe opens, the lock: one copy), ``repair``,
``store`` (``HistoryStore``, blocking), ``async_store`` (the same calls in a thread, for event loops),
``users`` (listing profiles) and ``export`` (Markdown and JSON files).
"""

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
