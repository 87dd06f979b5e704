"""The client layer: everything that talks to a model or stores a conversation. Never imports Textual."""

from edgechat_tui.agent.base import (
    Agent,
    AgentInfo,
    ContextInfo,
    Done,
    Event,
    Message,
    Retrying,
    TextDelta,
    Usage,
)

__all__ = [
    "Agent",
    "AgentInfo",
    "ContextInfo",
    "Done",
    "Event",
    "Message",
    "Retrying",
    "TextDelta",
    "Usage",
]
