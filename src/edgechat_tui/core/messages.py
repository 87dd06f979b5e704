"""The conversation's data: messages, usage, what context was sent, and the events of a turn.

Plain frozen dataclasses with no I/O, shared by every layer."""


from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]


def now_iso() -> str:
    """The current time as an ISO 8601 string in UTC, to the millisecond."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def stamp_ms(stamp: object) -> int | None:
    """A stored time (ISO 8601, as :func:`now_iso` writes it) in milliseconds since the epoch;
    None when it is not a time."""
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)
    except (ValueError, OverflowError, OSError):
        return None


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
    #: The agent answered a repeat of the turn with the turn it had stored (an idempotent retry).
    replayed: bool = False
    #: Where the turn went (the library's conversation id), when the agent keeps many conversations.
    conversation_id: str | None = None
    #: The reply's id in that conversation's tree, when the agent gives one.
    message_id: str | None = None
    #: The reply reached ``max_tokens``: ``continue_reply`` goes on with it.
    truncated: bool = False


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
    #: ``user`` is the one the agent verified from the credential (its ``whoami``), not a choice.
    user_verified: bool = False
    #: The remote agent's identity mode ("none", "token", "user-tokens", "access"); None when unknown.
    auth_mode: str | None = None
