"""Choosing the backend: the local agent, or a remote agent endpoint when one is configured."""

from __future__ import annotations

from collections.abc import Callable

from edgechat_tui.backends.base import Agent
from edgechat_tui.config.settings import Settings


def create_agent(settings: Settings, user: str, *, warn: Callable[[str], None] | None = None,
                 user_given: bool | None = None, library_only: bool = False) -> Agent:
    """The agent for ``user``: remote when ``remote_url`` is set, else local.

    ``user_given``: the user named ``user`` (``--user``), so on an agent that verifies who is asking
    it must agree with ``whoami``; otherwise the agent's ``whoami`` decides. Unsaid, ``user`` counts
    as given when it is not the settings' default profile.

    Raises InvalidUserId for a bad user id and MissingCredentials when local mode has no account
    id or token (unless ``library_only``: the agent is for its conversation library, and sends no
    turn); touches no file and opens no connection.
    """
    if settings.remote_url:
        from edgechat_tui.backends.remote.agent import RemoteAgent

        token = settings.remote_token.reveal() if settings.remote_token else None
        if user_given is None:
            user_given = user != settings.user
        return RemoteAgent(
            settings.remote_url,
            user,
            token=token,
            user_given=user_given,
            access_client_id=settings.values.get("access_client_id"),
            access_client_secret=settings.values.get("access_client_secret"),
            access_token_command=settings.values.get("access_token_command"),
            timeout=settings.remote_timeout,
            connect_timeout=settings.connect_timeout,
            reply_timeout=settings.reply_timeout,
            max_retries=settings.max_retries,
            warn=warn,
        )
    from edgechat_tui.backends.local.agent import LocalAgent

    # Listing, reading and searching conversations need no model: no credentials are asked for.
    return LocalAgent(settings, user, warn=warn, need_model=not library_only)
