"""The chat session: the profile in use, its agent, and the choices made for this session.

One object, owned by the app and handed down to the chat screen and the commands. The app alone
moves it from one profile to another (:meth:`begin_switch`, :meth:`attach`, :meth:`mark_ready`,
:meth:`abandon_switch`); everyone reads it. No Textual here.

A message can be sent only while the session is :attr:`ready`: an agent exists *and* its history
is on screen. While a profile starts, while its history loads, and while ``/user`` connects to
another one, the session is not ready, so a message typed then is refused (it stays in the input)
instead of being shown and then wiped by the history, or sent as the profile being left.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from edgechat_tui.backends.base import Agent
from edgechat_tui.config.settings import Settings
from edgechat_tui.core.errors import EdgechatError
from edgechat_tui.ui.catalog_state import SessionCatalog

__all__ = ["Session", "SessionState"]

SessionState = Literal["starting", "connecting", "loading", "ready", "failed"]


class Session:
    """The profile, its agent, and the session's ``/model`` and ``/system`` overrides."""

    def __init__(self, settings: Settings, user: str) -> None:
        self.settings = settings
        self._user = user
        self._agent: Agent | None = None
        self._state: SessionState = "starting"
        #: /model and /system for this session: kept across /user, never saved.
        self.model_override: str | None = None
        self.system_prompt_override: str | None = None
        #: The models /model offers, their windows and prices (local mode; ui/catalog_state.py).
        self.catalog = SessionCatalog(self)
        #: The TUI's ``--chat ID`` and ``--new``: the conversation to open at start (library agents).
        self.start_chat: str | None = None
        self.start_new = False

    # --- what everyone reads -------------------------------------------------------------------

    @property
    def user(self) -> str:
        """The profile in use (the one being left, while ``/user`` connects)."""
        return self._user

    @property
    def agent(self) -> Agent | None:
        """The agent of :attr:`user`, or None before the first one exists."""
        return self._agent

    @property
    def state(self) -> SessionState:
        return self._state

    @property
    def ready(self) -> bool:
        """True when a message can be sent: an agent exists and its conversation is shown."""
        return self._state == "ready" and self._agent is not None

    @property
    def busy_reason(self) -> str:
        """Why a message cannot be sent now, for the user (when not :attr:`ready`)."""
        if self._state == "connecting" and self._agent is not None:
            return "Switching profile: the message stays in the input; send it once the switch is done."
        if self._state == "loading":
            return "The conversation is still loading: the message stays in the input."
        return "Not connected yet: the message stays in the input."

    @property
    def remote(self) -> bool:
        return bool(self.settings.remote_url)

    @property
    def remote_host(self) -> str:
        return urlsplit(self.settings.remote_url).hostname or "" if self.settings.remote_url else ""

    @property
    def mode_label(self) -> str:
        """``local`` or ``remote HOST``, for the header before the agent says more."""
        return f"remote {self.remote_host}".strip() if self.remote else "local"

    @property
    def system_prompt(self) -> str:
        """The system prompt in effect: this session's, else the configured one."""
        if self.system_prompt_override is not None:
            return self.system_prompt_override
        return self.settings.system_prompt

    # --- this session's choices ----------------------------------------------------------------

    def use_model(self, model: str) -> None:
        """``/model ID``: the agent uses it now, and every agent of this session after it.

        Raises the agent's :class:`EdgechatError` (a remote agent may not let the client choose).
        """
        if self._agent is not None:
            self._agent.set_model(model)
            self.catalog.apply_window()  # the catalog's window for it, when the catalog knows it
        self.model_override = model

    def use_system_prompt(self, prompt: str) -> None:
        """``/system TEXT``: as :meth:`use_model`, for the system prompt."""
        if self._agent is not None:
            self._agent.set_system_prompt(prompt)
        self.system_prompt_override = prompt

    def apply_overrides(self, agent: Agent) -> None:
        """Give a new agent this session's ``/model`` and ``/system`` choices."""
        try:
            if self.model_override:
                agent.set_model(self.model_override)
                self.catalog.apply_window(agent)
            if self.system_prompt_override is not None:
                agent.set_system_prompt(self.system_prompt_override)
        except EdgechatError:
            pass  # a remote agent picks its own: the header shows what it says

    # --- the app moves it ----------------------------------------------------------------------

    def begin_switch(self) -> None:
        """An agent is being created (at start, after setup, or for ``/user``): sending waits."""
        self._state = "connecting"

    def attach(self, agent: Agent, user: str) -> Agent | None:
        """``agent`` (for ``user``) is the session's now; its history is loading. Returns the old one."""
        old, self._agent, self._user = self._agent, agent, user
        self._state = "loading"
        return old

    def mark_ready(self) -> None:
        """The conversation is shown: messages can be sent."""
        self._state = "ready" if self._agent is not None else "failed"

    def abandon_switch(self) -> None:
        """Creating the agent failed: back to the agent there was, if any."""
        self._state = "ready" if self._agent is not None else "failed"

    def detach(self) -> Agent | None:
        """The app is closing: the agent is no longer the session's (returned, to be closed)."""
        agent, self._agent = self._agent, None
        self._state = "failed"
        return agent
