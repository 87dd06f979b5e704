"""Conversations on disk: the history files, their format and guarantees, and exports."""

from edgechat_tui.storage.store import HistoryStore, list_users

__all__ = ["HistoryStore", "list_users"]
