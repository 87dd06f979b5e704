"""The backends: what turns a message into a reply and keeps the conversation. Never imports Textual."""

from edgechat_tui.backends.base import Agent
from edgechat_tui.backends.factory import create_agent

__all__ = ["Agent", "create_agent"]
