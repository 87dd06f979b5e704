"""Choosing the backend: the local agent, or a remote agent endpoint when one is configured."""

from __future__ import annotations

from collections.abc import Callable

from edgechat_tui.backends.base import Agent
from edgechat_tui.config.settings import Settings


def create_agent(settings: Settings, user: str, *, warn: Callable[[str], None] | None = None) -> Agent:
    """The agent for ``user``: remote when ``remote_url`` is set, else local.

    Raises InvalidUserId for a bad user id and MissingCredentials when local mode has no account
    id or token; touches no file and opens no connection.
    """
    if settings.remote_url:
        from edgechat_tui.backends.remote.agent import RemoteAgent

        token = settings.remote_token.reveal() if settings.remote_token else None
        return RemoteAgent(
            settings.remote_url,
            user,
            token=token,
            timeout=settings.remote_timeout,
            connect_timeout=settings.connect_timeout,
            reply_timeout=settings.reply_timeout,
            max_retries=settings.max_retries,
            warn=warn,
        )
    from edgechat_tui.backends.local.agent import LocalAgent

    return LocalAgent(settings, user, warn=warn)
