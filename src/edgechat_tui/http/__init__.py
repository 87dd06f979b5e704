"""The one HTTP layer both backends use: SSE parsing and retry waits (httpx is imported by the clients)."""

from edgechat_tui.http.retry import backoff_wait, parse_retry_after
from edgechat_tui.http.sse import ServerSentEvent, SSEError, SSEParser

__all__ = ["SSEError", "SSEParser", "ServerSentEvent", "backoff_wait", "parse_retry_after"]
