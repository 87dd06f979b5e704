"""The Agent interface: the one thing the UI and the CLI know about a backend.

A backend (the local agent, or a remote agent endpoint) turns a user's message into a stream of events:

    async for event in agent.send("hello"):
        match event:
            case TextDelta(text): ...            # a piece of the reply, as it arrives
            case Retrying(attempt, ...): ...     # a failed attempt, the next one in ``wait`` seconds
            case Done(message, count, ...): ...  # the reply is complete and saved

A failure is raised as an :class:`~edgechat_tui.errors.EdgechatError` subclass from the iteration;
when that happens nothing of the turn was saved. Cancelling the task that iterates (the UI's Stop,
Ctrl+C in one-shot mode) ends the request at once; the partial reply is saved, marked stopped.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]


def now_iso() -> str:
    """The current time as an ISO 8601 string in UTC, to the millisecond."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts as the model service reported them (any of them may be missing)."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None

    def to_json(self) -> dict[str, int]:
        return {k: v for k, v in (("prompt_tokens", self.prompt_tokens),
                                  ("completion_tokens", self.completion_tokens),
                                  ("total_tokens", self.total_tokens)) if v is not None}

    @classmethod
    def from_json(cls, data: Any) -> Usage | None:
        # Called for every reply when a history loads: kept free of per-call closures.
        if not isinstance(data, dict):
            return None
        counts = [data.get("prompt_tokens"), data.get("completion_tokens"), data.get("total_tokens")]
        counts = [n if type(n) is int and n >= 0 else None for n in counts]
        if counts == [None, None, None]:
            return None
        return cls(*counts)


@dataclass(frozen=True, slots=True)
class Message:
    """One message of a conversation. Replies also record the model, usage and whether they were stopped."""

    role: Role
    content: str
    time: str = field(default_factory=now_iso)
    model: str | None = None
    usage: Usage | None = None
    stopped: bool = False

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"role": self.role, "content": self.content, "time": self.time}
        if self.model is not None:
            data["model"] = self.model
        if self.usage is not None:
            data["usage"] = self.usage.to_json()
        if self.stopped:
            data["stopped"] = True
        return data

    @classmethod
    def from_json(cls, data: Any) -> Message:
        """Build a message from its stored form. Raises ValueError when the form is not a message."""
        if not isinstance(data, dict):
            raise ValueError("a message must be a JSON object")
        role, content = data.get("role"), data.get("content")
        if role not in ("system", "user", "assistant"):
            raise ValueError(f"unknown role {role!r}")
        if not isinstance(content, str):
            raise ValueError("a message's content must be a string")
        time = data.get("time")
        model = data.get("model")
        return cls(
            role=role,
            content=content,
            time=time if isinstance(time, str) else "",
            model=model if isinstance(model, str) else None,
            usage=Usage.from_json(data.get("usage")),
            stopped=data.get("stopped") is True,
        )


@dataclass(frozen=True, slots=True)
class ContextInfo:
    """What was (or will be) sent to the model: for the status line's ``ctx 3.1k/24k · 18 of 40``."""

    messages_sent: int  # history messages included, excluding the system prompt and the new message
    messages_total: int  # history messages stored
    tokens_estimated: int  # estimated prompt tokens plus max_tokens
    window: int  # the model's context window in tokens


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the reply. Untrusted: sanitise before display."""

    text: str


@dataclass(frozen=True, slots=True)
class Retrying:
    """Attempt ``attempt`` failed with ``reason``; the next of ``max_attempts`` starts in ``wait`` seconds."""

    attempt: int
    max_attempts: int
    wait: float
    reason: str


@dataclass(frozen=True, slots=True)
class Done:
    """The turn is complete and saved.

    ``message_count`` counts stored messages excluding the system prompt, as the seed's agent does
    (2 after the first turn). ``stopped`` is True when the user stopped the reply early.
    """

    message: Message
    message_count: int
    usage: Usage | None = None
    context: ContextInfo | None = None
    stopped: bool = False


Event = TextDelta | Retrying | Done


@dataclass(frozen=True, slots=True)
class AgentInfo:
    """What the header shows: who, where, which model, and what the backend can do."""

    user: str
    mode: Literal["local", "remote"]
    model: str | None
    host: str | None = None  # the remote host, None in local mode
    streams: bool = True  # replies arrive in pieces (False: wait for the whole reply)
    shares_history: bool = True  # history() returns the stored conversation
    can_reset: bool = True


class Agent(abc.ABC):
    """A backend that keeps one user's conversation and answers their messages."""

    #: The turn kept when the user stopped the last reply (None when nothing had arrived to keep).
    stopped_turn: Done | None = None
    _busy = False

    @contextlib.contextmanager
    def _one_turn_at_a_time(self, text: str) -> Iterator[None]:
        """What every agent checks before a turn: there is something to send, and no turn under way."""
        from edgechat_tui.errors import EmptyMessage, UsageError

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

        Raises an :class:`~edgechat_tui.errors.EdgechatError` subclass on failure (nothing saved).
        """

    @abc.abstractmethod
    async def history(self) -> list[Message] | None:
        """The stored conversation, oldest first; None when the agent does not share it."""

    @abc.abstractmethod
    async def reset(self) -> str | None:
        """Start a new conversation. Returns where the old one was archived, if anywhere.

        Raises :class:`~edgechat_tui.errors.NotSupported` when the agent cannot reset.
        """

    async def context_preview(self, next_text: str = "") -> ContextInfo | None:
        """What the next request would send, without sending it. None when unknown (remote agents)."""
        return None

    def set_model(self, model: str) -> None:
        """Use ``model`` from the next message on. Raises NotSupported where the agent picks its model."""
        from edgechat_tui.errors import NotSupported

        raise NotSupported("This agent chooses its own model.")

    def set_system_prompt(self, text: str) -> None:
        """Use ``text`` as the system prompt from now on. Raises NotSupported if the agent cannot."""
        from edgechat_tui.errors import NotSupported

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
