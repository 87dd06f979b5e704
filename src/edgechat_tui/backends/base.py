"""The Agent interface: the one thing the UI and the CLI know about a backend.

A backend (the local agent, or a remote agent endpoint) turns a user's message into a stream of events:

    async for event in agent.send("hello"):
        match event:
            case TextDelta(text): ...            # a piece of the reply, as it arrives
            case Retrying(attempt, ...): ...     # a failed attempt, the next one in ``wait`` seconds
            case Done(message, count, ...): ...  # the reply is complete and saved

A failure is raised as an :class:`~edgechat_tui.core.errors.EdgechatError` subclass from the iteration;
when that happens nothing of the turn was saved. Cancelling the task that iterates (the UI's Stop,
Ctrl+C in one-shot mode) ends the request at once; the partial reply is saved, marked stopped.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import AsyncIterator, Iterator

from edgechat_tui.core.messages import AgentInfo, ContextInfo, Done, Event, Message


class Agent(abc.ABC):
    """A backend that keeps one user's conversation and answers their messages."""

    #: The turn kept when the user stopped the last reply (None when nothing had arrived to keep).
    stopped_turn: Done | None = None
    _busy = False

    @contextlib.contextmanager
    def _one_turn_at_a_time(self, text: str) -> Iterator[None]:
        """What every agent checks before a turn: there is something to send, and no turn under way."""
        from edgechat_tui.core.errors import EmptyMessage, UsageError

        if not text.strip():
            raise EmptyMessage("There is nothing to send.", hint="type a message first")
        if self._busy:
            raise UsageError("A reply is still coming.", hint="wait for it, or stop it with Esc")
        self._busy = True
        self.stopped_turn = None
        try:
            yield
        finally:
            self._busy = False

    @property
    @abc.abstractmethod
    def info(self) -> AgentInfo:
        """Who and what this agent is, for the header. Cheap; never does I/O."""

    @abc.abstractmethod
    def send(self, text: str) -> AsyncIterator[Event]:
        """Send ``text`` as the user and stream the answer's events, ending with :class:`Done`.

        Raises an :class:`~edgechat_tui.core.errors.EdgechatError` subclass on failure (nothing saved).
        """

    @abc.abstractmethod
    async def history(self) -> list[Message] | None:
        """The stored conversation, oldest first; None when the agent does not share it."""

    @abc.abstractmethod
    async def reset(self) -> str | None:
        """Start a new conversation. Returns where the old one was archived, if anywhere.

        Raises :class:`~edgechat_tui.core.errors.NotSupported` when the agent cannot reset.
        """

    async def context_preview(self, next_text: str = "") -> ContextInfo | None:
        """What the next request would send, without sending it. None when unknown (remote agents)."""
        return None

    def set_model(self, model: str) -> None:
        """Use ``model`` from the next message on. Raises NotSupported where the agent picks its model."""
        from edgechat_tui.core.errors import NotSupported

        raise NotSupported("This agent chooses its own model.")

    def set_system_prompt(self, text: str) -> None:
        """Use ``text`` as the system prompt from now on. Raises NotSupported if the agent cannot."""
        from edgechat_tui.core.errors import NotSupported

        raise NotSupported("This agent keeps its own system prompt.")

    async def check(self) -> str:
        """A short health check ("reachable", a version...). Raises EdgechatError when unhealthy."""
        return "ok"

    async def aclose(self) -> None:  # noqa: B027 - optional hook with nothing to do by default
        """Release connections and files."""

    async def __aenter__(self) -> Agent:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
