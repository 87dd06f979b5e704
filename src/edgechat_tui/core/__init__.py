"""What every layer shares, with no I/O, no Textual and no httpx: messages and events, errors, secrets,
user ids, the model table, and making untrusted text safe for a terminal."""

from edgechat_tui.core.errors import EdgechatError
from edgechat_tui.core.messages import (
    AgentInfo,
    ContextInfo,
    Done,
    Event,
    Message,
    Retrying,
    TextDelta,
    Usage,
)
from edgechat_tui.core.sanitize import StreamSanitizer, sanitize
from edgechat_tui.core.secret import Secret
from edgechat_tui.core.userid import validate_user_id

__all__ = [
    "AgentInfo",
    "ContextInfo",
    "Done",
    "EdgechatError",
    "Event",
    "Message",
    "Retrying",
    "Secret",
    "StreamSanitizer",
    "TextDelta",
    "Usage",
    "sanitize",
    "validate_user_id",
]
