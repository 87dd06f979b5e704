"""The Agent interface: the one thing the UI and the CLI know about a backend.

A backend (the local agent, or a remote agent endpoint) turns a user's message into a stream of events:

    async for event in agent.send("hello"):
        match event:
            case TextDelta(text): ...            # a piece of the reply, as it arrives
            case Retrying(attempt, ...): ...     # a failed attempt, the next one in ``wait`` seconds
            case Done(message, count, ...): ...  # the reply is complete and saved

The base class owns a turn's life, the same for every backend (:meth:`Agent.send`):

- one turn at a time: a second ``send`` while one runs is refused with UsageError;
- ``Done`` ends the stream: nothing is yielded or saved after it, even when the caller then closes it;
- stopped (the task cancelled, or the stream closed before ``Done``): the text that arrived is saved
  marked stopped, *before* the next turn may start; nothing is saved when no text had arrived;
- failed after some text arrived (a dropped connection, a protocol error): the same, and the error is
  raised with ``error.kept_partial`` set to the :class:`Done` (``stopped=True``) of what was kept. A
  failure before any text (or a failure to save) keeps nothing: ``getattr(error, "kept_partial", None)``
  is None;
- a storage error while saving a stopped reply never replaces the cancellation or the failure that
  ended the turn: it is reported through :meth:`Agent._warn` (the UI's warning line, or the log).

A backend implements :meth:`Agent._run_turn` (the turn itself, ending with ``Done`` once the complete turn
is saved) and :meth:`Agent._save_stopped` (keep a partial reply).

Besides ``send`` (action ``"chat"``), an agent with a conversation library (``agent.conversations`` not
None) offers three more turns through the same life: :meth:`Agent.regenerate` (a new reply to the last
question, kept beside the old one as a branch), :meth:`Agent.edit` (the last question replaced by new
text, a branch with its own reply) and :meth:`Agent.continue_reply` (more of a reply that stopped at
``max_tokens`` or was stopped, appended to it). ``_run_turn`` reads ``turn.action`` and ``turn.target``;
an agent that does not offer them raises NotSupported.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from edgechat_tui.core.errors import EmptyMessage, NotSupported, StorageError, UsageError
from edgechat_tui.core.messages import AgentInfo, ContextInfo, Done, Event, Message, TextDelta

if TYPE_CHECKING:
    from edgechat_tui.backends.conversations import Conversations

__all__ = ["TURN_ACTIONS", "Agent", "TurnInProgress", "run_to_completion"]

TURN_ACTIONS = ("chat", "regenerate", "edit", "continue")

_log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class TurnInProgress:
    """One turn as the base class follows it: the user's message, the text shown so far, the end."""

    user_message: Message
    #: "chat" (send), "regenerate", "edit" or "continue". For regenerate and continue ``user_message``
    #: is the question of the reply concerned, as stored (its text is not sent again as new).
    action: str = "chat"
    #: The message the action concerns (``message_id`` of regenerate/edit), None for the default one.
    target: str | None = None
    #: How many stored messages (system prompt aside) the caller has shown, if it says: a backend
    #: that builds the context itself refuses the turn (HistoryChanged) when it holds more or fewer.
    seen: int | None = None
    parts: list[str] = field(default_factory=list)  # every TextDelta yielded, in order
    context: ContextInfo | None = None  # what was sent, when the backend knows (set by _run_turn)
    done: Done | None = None  # the Done that ended the turn, once yielded

    @property
    def text(self) -> str:
        return self.user_message.content

    @property
    def partial(self) -> str:
        """The reply's text shown so far."""
        return "".join(self.parts)


async def run_to_completion(awaitable: Awaitable[T]) -> tuple[T, bool]:
    """Await ``awaitable`` to its end even if the caller is cancelled meanwhile.

    Returns its result and whether a cancellation arrived during the wait (the caller then raises
    CancelledError itself, once its state is right). A save running in a thread goes on when the task
    awaiting it is cancelled: waiting for it is how a turn is kept exactly once.
    """
    task = asyncio.ensure_future(awaitable)
    cancelled = False
    while True:
        try:
            return await asyncio.shield(task), cancelled
        except asyncio.CancelledError:
            if task.cancelled():
                raise
            cancelled = True


class Agent(abc.ABC):
    """A backend that keeps one user's conversation and answers their messages."""

    _busy = False

    async def send(self, text: str, *, seen: int | None = None) -> AsyncIterator[Event]:
        """Send ``text`` as the user and stream the answer's events, ending with :class:`Done`.

        Raises an :class:`~edgechat_tui.core.errors.EdgechatError` subclass on failure; see the module's
        docstring for what is kept when a turn is stopped or fails part way. ``seen``: how many stored
        messages the caller shows; an agent that builds the context itself (the local one) raises
        :class:`~edgechat_tui.core.errors.HistoryChanged` before sending anything when the history
        holds another number (another process added turns), so a reply never answers what the user
        has not seen.
        """
        if not text.strip():
            raise EmptyMessage("There is nothing to send.", hint="type a message first")
        turn = TurnInProgress(Message(role="user", content=text), seen=seen)
        async with contextlib.aclosing(self._turn_life(turn)) as events:
            async for event in events:
                yield event

    async def regenerate(self, message_id: str | None = None) -> AsyncIterator[Event]:
        """A new reply to the question of reply ``message_id`` (default: the last reply), kept beside the
        old one as a sibling; the model sees the branch up to that question. Events as ``send``'s."""
        self._require_library("Regenerating a reply")
        turn = TurnInProgress(Message(role="user", content=""), action="regenerate", target=message_id)
        async with contextlib.aclosing(self._turn_life(turn)) as events:
            async for event in events:
                yield event

    async def edit(self, text: str, message_id: str | None = None) -> AsyncIterator[Event]:
        """``text`` as a new version of question ``message_id`` (default: the last question), a sibling
        of it with its own reply; the earlier branch is kept. Events as ``send``'s."""
        if not text.strip():
            raise EmptyMessage("There is nothing to send.", hint="type a message first")
        self._require_library("Editing a message")
        turn = TurnInProgress(Message(role="user", content=text), action="edit", target=message_id)
        async with contextlib.aclosing(self._turn_life(turn)) as events:
            async for event in events:
                yield event

    async def continue_reply(self) -> AsyncIterator[Event]:
        """More of the last reply (one that reached ``max_tokens`` or was stopped), appended to it.
        ``TextDelta`` carries the added text; ``Done.message`` is the whole reply."""
        self._require_library("Continuing a reply")
        turn = TurnInProgress(Message(role="user", content=""), action="continue")
        async with contextlib.aclosing(self._turn_life(turn)) as events:
            async for event in events:
                yield event

    def _require_library(self, what: str) -> None:
        if self.conversations is None:
            raise NotSupported(f"{what} needs an agent that keeps conversations as trees.",
                               hint="the local agent and edgechat's own Worker do")

    @property
    def conversations(self) -> Conversations | None:
        """The profile's conversation library, or None when the agent keeps one conversation only."""
        return None

    async def _turn_life(self, turn: TurnInProgress) -> AsyncIterator[Event]:
        """The life of one turn, the same for every action: see the module's docstring."""
        if self._busy:
            raise UsageError("A reply is still coming.", hint="wait for it, or stop it with Esc")
        self._busy = True
        try:
            async with contextlib.aclosing(self._run_turn(turn)) as events:
                async for event in events:
                    if isinstance(event, TextDelta):
                        turn.parts.append(event.text)
                    elif isinstance(event, Done):
                        turn.done = event
                    yield event
                    if turn.done is not None:
                        return  # the turn is complete and saved: nothing comes after Done
        except (asyncio.CancelledError, GeneratorExit):
            if turn.done is None:
                await self._keep_partial(turn)
            raise
        except Exception as error:
            if turn.done is None and turn.parts and not isinstance(error, StorageError):
                # What was shown stays: saved as Esc saves it (marked stopped), and the error says so.
                error.kept_partial = await self._keep_partial(turn)  # type: ignore[attr-defined]
            raise
        finally:
            self._busy = False

    async def _keep_partial(self, turn: TurnInProgress) -> Done | None:
        """Save the partial reply (if any text arrived) and wait for the save, even if cancelled again.

        Never raises: a failed save is reported with :meth:`_warn`, so that the cancellation or the
        error that ended the turn is what propagates.
        """
        if not turn.parts:
            return None  # nothing to keep: the UI puts the typed text back instead
        try:
            done, _cancelled = await run_to_completion(self._save_stopped(turn))
        except Exception as error:  # any failure to save is reported, never raised
            self._warn(f"The stopped reply could not be saved: {error}")
            return None
        return done

    @abc.abstractmethod
    def _run_turn(self, turn: TurnInProgress) -> AsyncIterator[Event]:
        """The backend's turn: stream TextDelta/Retrying events, then save the complete turn and yield
        its :class:`Done`. A failure raises (nothing saved); the base class handles stops and partials."""

    @abc.abstractmethod
    async def _save_stopped(self, turn: TurnInProgress) -> Done | None:
        """Keep ``turn.partial`` (never empty) as the reply, marked stopped; return its Done."""

    def _warn(self, text: str) -> None:
        """Tell the user something went wrong beside the turn (the local agent shows it in the UI)."""
        _log.warning("%s", text)

    @property
    @abc.abstractmethod
    def info(self) -> AgentInfo:
        """Who and what this agent is, for the header. Cheap; never does I/O."""

    @abc.abstractmethod
    async def history(self) -> list[Message] | None:
        """The stored conversation, oldest first; None when the agent does not share it."""

    @abc.abstractmethod
    async def reset(self) -> str | None:
        """Start a new conversation. Returns where the old one was archived, if anywhere.

        Raises :class:`~edgechat_tui.core.errors.NotSupported` when the agent cannot reset.
        """

    async def history_stamp(self) -> object | None:
        """A cheap value that changes when the stored conversation changes (another process appended
        to it), for watching it without reading it; None when the agent cannot tell (then only
        :meth:`history` says). Never blocks the loop."""
        return None

    async def context_preview(self, next_text: str = "") -> ContextInfo | None:
        """What the next request would send, without sending it. None when unknown (remote agents)."""
        return None

    def set_model(self, model: str) -> None:
        """Use ``model`` from the next message on. Raises NotSupported where the agent picks its model."""
        raise NotSupported("This agent chooses its own model.")

    def set_system_prompt(self, text: str) -> None:
        """Use ``text`` as the system prompt from now on. Raises NotSupported if the agent cannot."""
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
